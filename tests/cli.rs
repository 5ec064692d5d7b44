//! Black-box tests of the real `cairn` binary, each in its own temporary home.

use std::path::PathBuf;
use std::process::{Command, Stdio};

mod common;

use common::{cairn, json, ok};

fn initialised() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    ok(
        &home,
        &["init", "--org", "Riverside Trust", "--name", "Ana Silva"],
    );
    (dir, home)
}

#[test]
fn init_creates_a_private_identity_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, home) = initialised();
    let mode = |path: PathBuf| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(home.clone()), 0o700);
    assert_eq!(mode(home.join("keys/org.key")), 0o600);
    assert_eq!(mode(home.join("keys/member.key")), 0o600);
    assert!(
        std::fs::read_to_string(home.join("config.toml"))
            .expect("config")
            .contains("# ")
    );

    let me = json(&home, &["whoami"]);
    assert_eq!(me["org_name"], "Riverside Trust");
    assert_eq!(me["member_name"], "Ana Silva");
    assert_eq!(me["org"].as_str().expect("org id").len(), 64);

    let again = cairn(&home, &["init", "--org", "Someone Else"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(
        json(&home, &["whoami"])["org_name"],
        "Riverside Trust",
        "the identity is unchanged"
    );
}

#[test]
fn publish_many_then_list_and_show() {
    let (_dir, home) = initialised();
    let mut ids = Vec::new();
    for index in 0..30 {
        let kind = ["learning", "failure", "question"][index % 3];
        let title = format!("Entry {index}");
        let tag = format!("batch-{}", index % 2);
        let stdout = ok(
            &home,
            &[
                "publish",
                "--kind",
                kind,
                "--title",
                &title,
                "--summary",
                "Plain words",
                "--tag",
                &tag,
            ],
        );
        let id = stdout.trim().to_string();
        assert_eq!(id.len(), 64, "publish prints only the id: {stdout:?}");
        ids.push(id);
    }
    let listed = json(&home, &["list", "--limit", "100"]);
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 30);
    assert_eq!(listed[0]["id"], ids[29], "newest first");
    for field in [
        "id",
        "kind",
        "title",
        "summary",
        "body",
        "tags",
        "spaces",
        "author",
        "author_name",
        "org",
        "org_name",
        "seq",
        "created",
    ] {
        assert!(listed[0].get(field).is_some(), "missing field {field}");
    }
    assert_eq!(listed[0]["seq"], 30);
    assert_eq!(listed[0]["spaces"][0], "commons");
    assert!(
        listed[0]["created"]
            .as_str()
            .expect("created")
            .ends_with('Z')
    );

    assert_eq!(
        json(&home, &["list", "--kind", "failure"])
            .as_array()
            .expect("array")
            .len(),
        10
    );
    assert_eq!(
        json(&home, &["list", "--tag", "batch-1", "--limit", "100"])
            .as_array()
            .expect("array")
            .len(),
        15
    );
    assert_eq!(
        json(&home, &["list", "--org", "riverside trust", "--limit", "5"])
            .as_array()
            .expect("array")
            .len(),
        5
    );
    assert_eq!(
        json(&home, &["list", "--author", "Nobody"])
            .as_array()
            .expect("array")
            .len(),
        0
    );
    assert_eq!(
        json(&home, &["list", "--space", "housing"])
            .as_array()
            .expect("array")
            .len(),
        0
    );

    let shown = json(&home, &["show", &ids[4][..10]]);
    assert_eq!(shown["id"], ids[4]);
    assert_eq!(shown["title"], "Entry 4");
    let text = common::plain(&ok(&home, &["show", &ids[4]]));
    assert!(
        text.contains("Entry 4") && text.contains("Ana Silva") && text.contains("Riverside Trust")
    );
    let text_list = common::plain(&ok(&home, &["list", "--limit", "3"]));
    assert!(text_list.contains("Entry 29"));
}

#[test]
fn unicode_and_markdown_bodies_survive_exactly() {
    let (dir, home) = initialised();
    let body = "# Ein Überblick\n\nCroeso! 欢迎 — *emphasis*, `code`, and a list:\n\n- один\n- اثنان\n\n> quoted 🙂\n";
    let body_path = dir.path().join("body.md");
    std::fs::write(&body_path, body).expect("write body");
    let id = ok(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Sesiynau caffi ☕",
            "--body-file",
            body_path.to_str().expect("path"),
            "--context",
            "Gwasanaeth cymunedol",
            "--tag",
            "Cymraeg",
            "--space",
            "mental-health",
            "--language",
            "cy",
        ],
    );
    let shown = json(&home, &["show", id.trim()]);
    assert_eq!(shown["body"], body);
    assert_eq!(shown["title"], "Sesiynau caffi ☕");
    assert_eq!(shown["sections"]["context"], "Gwasanaeth cymunedol");
    assert_eq!(shown["tags"][0], "cymraeg");
    assert_eq!(shown["spaces"][0], "mental-health");
    assert_eq!(shown["language"], "cy");

    // The body can come from standard input too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "--home",
            home.to_str().expect("path"),
            "publish",
            "--kind",
            "question",
            "--title",
            "Stdin",
            "--body-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("Ο χρόνος **μετράει**".as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let id = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        json(&home, &["show", id.trim()])["body"],
        "Ο χρόνος **μετράει**"
    );
}

#[test]
fn bad_flags_exit_2_with_a_helpful_message() {
    let (_dir, home) = initialised();
    for args in [
        vec!["publish", "--kind", "rumour", "--title", "x"],
        vec!["publish", "--title", "missing kind"],
        vec!["list", "--limit", "many"],
        vec!["frobnicate"],
        vec!["show"],
    ] {
        let output = cairn(&home, &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("error:") && (stderr.contains("--help") || stderr.contains("Usage")),
            "{args:?}: {stderr}"
        );
    }
    let help = ok(&home, &["--help"]);
    assert!(help.contains("Exit status") && help.contains("usage error"));
    // Invalid values the parser cannot see are failures (1) that say what to fix.
    let output = cairn(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "x",
            "--space",
            "Not A Space",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("lowercase letters"));
    let output = cairn(
        &home,
        &[
            "publish", "--kind", "learning", "--title", "x", "--tag", "no!",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let output = cairn(&home, &["show", "ffff"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cairn list"));
}

#[test]
fn a_home_that_was_never_initialised_gives_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("never");
    for args in [
        vec!["list"],
        vec!["whoami"],
        vec!["show", "abcd"],
        vec!["publish", "--kind", "learning", "--title", "x"],
    ] {
        let output = cairn(&home, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cairn init"), "{args:?}: {stderr}");
    }
    assert!(!home.exists(), "reading commands must not create a home");
}

#[test]
fn a_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, home) = initialised();
    let key = home.join("keys/member.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let output = cairn(&home, &["whoami"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("chmod 600"));
}

#[test]
fn replies_responses_and_links_gather_under_the_entry_without_a_node() {
    let (_dir, home) = initialised();
    let target = ok(
        &home,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Online group went quiet",
            "--body",
            "x",
        ],
    )
    .trim()
    .to_string();
    let reply = ok(
        &home,
        &[
            "reply",
            &target[..10],
            "--text",
            "We kept one *in-person* meeting a month.",
        ],
    );
    assert_eq!(reply.trim().len(), 64, "reply prints its id: {reply}");
    for (kind, note) in [("me-too", "Same here"), ("thank-you", ""), ("me-too", "")] {
        let mut args = vec!["respond", target.as_str(), "--type", kind];
        if !note.is_empty() {
            args.extend(["--note", note]);
        }
        ok(&home, &args);
    }
    let linked = ok(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Monthly tea fixed it",
            "--body",
            "y",
            "--builds-on",
            &target[..12],
        ],
    )
    .trim()
    .to_string();

    // The list shows stories only; replies and responses sit under their entry.
    let listed = json(&home, &["list"]);
    let kinds: Vec<_> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect();
    assert_eq!(kinds, ["learning", "failure"]);

    let shown = json(&home, &["show", &target]);
    let related = shown["related"].as_array().expect("related");
    assert_eq!(related.len(), 5, "1 reply, 3 responses, 1 link: {shown}");
    assert_eq!(related[0]["kind"], "reply");
    assert_eq!(
        related[0]["body"],
        "We kept one *in-person* meeting a month."
    );
    assert_eq!(related[1]["response"]["type"], "me-too");
    assert_eq!(related[1]["response"]["note"], "Same here");
    assert_eq!(related[4]["id"], linked.as_str());
    assert_eq!(related[4]["refs"][0]["kind"], "builds-on");

    let text = common::plain(&ok(&home, &["show", &target]));
    let me_too = text.find("Me too").expect("responses grouped by type");
    let thank_you = text.find("Thank you").expect("thank-you group");
    assert!(thank_you < me_too, "groups in their usual order:\n{text}");
    assert_eq!(
        text.matches("Me too").count(),
        1,
        "one heading per type:\n{text}"
    );
    assert!(text.contains("Replies") && text.contains("in-person"));
    assert!(text.contains("builds-on: Monthly tea fixed it"), "{text}");

    // Mistakes get clear errors and exit codes.
    let unknown = cairn(&home, &["respond", &target, "--type", "like"]);
    assert_eq!(
        unknown.status.code(),
        Some(2),
        "a like is not a response type"
    );
    let missing = cairn(&home, &["reply", "abcdef", "--text", "hello"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("abcdef"));
}

#[test]
fn search_finds_entries_and_reindex_rebuilds_the_index() {
    let (_dir, home) = initialised();
    let wanted = ok(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Carers trained as peer researchers",
            "--summary",
            "They heard about money worries our staff never did.",
            "--body",
            "z",
            "--tag",
            "peer research",
        ],
    )
    .trim()
    .to_string();
    ok(
        &home,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Grant reporting took over",
            "--body",
            "w",
        ],
    );
    let found = json(&home, &["search", "researcher money"]);
    let ids: Vec<_> = found
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&wanted));
    assert!(
        ok(&home, &["search", "nothing-like-this"]).contains("Nothing matches"),
        "an empty result says so"
    );

    // A damaged index is rebuilt from the store.
    let index = home.join("search");
    for file in std::fs::read_dir(&index).expect("index dir") {
        let path = file.expect("entry").path();
        if path.is_file() {
            std::fs::write(&path, b"garbage").expect("damage the index");
        }
    }
    let rebuilt = json(&home, &["reindex"]);
    // The two stories and the organisation's inception.
    assert_eq!(rebuilt["entries"], 3);
    assert_eq!(
        json(&home, &["search", "grant"])
            .as_array()
            .expect("array")
            .len(),
        1
    );
}

#[test]
fn members_and_entries_published_on_behalf_of_the_organisation() {
    let (_dir, home) = initialised();
    let added = json(&home, &["member", "add", "Kofi Mensah"]);
    assert_eq!(added["name"], "Kofi Mensah");
    let again = cairn(&home, &["member", "add", "kofi mensah"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "the same name twice is refused"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("keys/members/kofi-mensah.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let by_kofi = json(
        &home,
        &[
            "publish",
            "--as",
            "Kofi Mensah",
            "--kind",
            "learning",
            "--title",
            "From Kofi",
            "--body",
            "x",
        ],
    );
    assert_eq!(by_kofi["author_name"], "Kofi Mensah");
    assert_eq!(by_kofi["author"], added["member"]);

    let by_org = json(
        &home,
        &[
            "publish",
            "--on-behalf",
            "--kind",
            "failure",
            "--title",
            "From all of us",
            "--body",
            "y",
        ],
    );
    assert_eq!(by_org["on_behalf"], true);
    assert_eq!(
        by_org["author"],
        json(&home, &["org", "keys"])["current_key"],
        "signed by the organisation's current key"
    );
    let listed = common::plain(&ok(&home, &["list"]));
    assert!(
        listed.contains("Riverside Trust (your organisation), author withheld"),
        "{listed}"
    );
    assert!(
        listed.contains("Kofi Mensah of Riverside Trust"),
        "{listed}"
    );

    let unknown = cairn(
        &home,
        &[
            "publish", "--as", "Nobody", "--kind", "learning", "--title", "t",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("cairn member add"));
    let both = cairn(
        &home,
        &[
            "publish",
            "--as",
            "Kofi Mensah",
            "--on-behalf",
            "--kind",
            "learning",
            "--title",
            "t",
        ],
    );
    assert_eq!(both.status.code(), Some(2), "--as and --on-behalf conflict");

    // Revoking without a node: earlier entries stay, marked; later ones are refused.
    ok(
        &home,
        &["member", "revoke", "Kofi Mensah", "--reason", "Moved on"],
    );
    assert_eq!(json(&home, &["member", "list"])[0]["revoked_after"], 1);
    let shown = json(&home, &["show", by_kofi["id"].as_str().expect("id")]);
    assert_eq!(shown["former_member"], true);
    let refused = cairn(
        &home,
        &[
            "publish",
            "--as",
            "Kofi Mensah",
            "--kind",
            "learning",
            "--title",
            "t",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("removed by their organisation"));
}

#[test]
fn amend_publishes_a_revision_that_supersedes_and_keeps_history() {
    let (_dir, home) = initialised();
    let original = ok(
        &home,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Rota collapsed",
            "--summary",
            "First telling.",
            "--body",
            "x",
            "--tag",
            "volunteers",
        ],
    )
    .trim()
    .to_string();
    let revision = ok(
        &home,
        &[
            "amend",
            &original[..10],
            "--summary",
            "Second telling, with numbers.",
            "--tag",
            "rota",
        ],
    )
    .trim()
    .to_string();
    assert_ne!(revision, original);
    // Amending an earlier revision's id revises the same story.
    ok(
        &home,
        &["amend", &revision, "--title", "Rota collapsed in winter"],
    );

    let listed = json(&home, &["list"]);
    let listed = listed.as_array().expect("array");
    assert_eq!(
        listed.len(),
        1,
        "revisions are not listed as entries of their own"
    );
    let shown = common::plain(&ok(&home, &["show", &original]));
    assert!(shown.contains("Rota collapsed in winter"), "{shown}");
    assert!(shown.contains("Second telling, with numbers."), "{shown}");
    assert!(shown.contains("Revised by the author"), "{shown}");
    assert!(ok(&home, &["list"]).contains("Rota collapsed in winter"));
    let related = json(&home, &["show", &original])["related"].clone();
    assert_eq!(
        related
            .as_array()
            .expect("related")
            .iter()
            .filter(|entry| entry["kind"] == "amend")
            .count(),
        2,
        "both revisions stay visible"
    );
    // Search finds the story by its revised words and shows the story, not the revision.
    let found = json(&home, &["search", "numbers"]);
    assert_eq!(found[0]["id"], original.as_str());

    // Only the author may amend.
    ok(&home, &["member", "add", "Other Person"]);
    let refused = cairn(
        &home,
        &[
            "amend",
            &original,
            "--as",
            "Other Person",
            "--title",
            "Mine now",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only its author"));
}

#[test]
fn profiles_of_the_organisation_and_of_members() {
    let (_dir, home) = initialised();
    ok(
        &home,
        &[
            "profile",
            "set",
            "--org",
            "--about",
            "A housing charity in Leeds.",
            "--website",
            "https://example.org",
        ],
    );
    ok(&home, &["profile", "set", "--about", "Peer researcher."]);
    ok(
        &home,
        &[
            "profile",
            "set",
            "--org",
            "--about",
            "A housing charity in Leeds and Bradford.",
        ],
    );
    let org = json(&home, &["profile", "show"]);
    assert_eq!(org["name"], "Riverside Trust");
    assert_eq!(
        org["about"], "A housing charity in Leeds and Bradford.",
        "the newest wins"
    );
    let me = json(&home, &["whoami"])["member"]
        .as_str()
        .expect("member")
        .to_string();
    assert_eq!(
        json(&home, &["profile", "show", &me])["about"],
        "Peer researcher."
    );
    let bad = cairn(
        &home,
        &["profile", "set", "--website", "javascript:alert(1)"],
    );
    assert_eq!(bad.status.code(), Some(1), "only http(s) and mailto links");
    // Profiles are not stories: the timeline stays empty.
    assert_eq!(json(&home, &["list"]).as_array().expect("array").len(), 0);
}

#[test]
fn an_oversized_body_file_is_refused_before_it_is_read_whole() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = common::Node::init(dir.path(), "Riverside Trust");
    // 100 MB, sparse: costs no disk, and reading it whole would cost 100 MB of memory.
    let big = dir.path().join("big.md");
    std::fs::File::create(&big)
        .and_then(|file| file.set_len(100 << 20))
        .expect("a large file");
    let output = common::cairn(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Too long",
            "--body-file",
            big.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("more than an entry can hold"), "{error}");
}
