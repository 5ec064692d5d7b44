//! The same operations give the same entries and the same answers with or without a running
//! node: the CLI's two backends (the service on the store, the node's API) are one path.

mod common;

use std::path::Path;

use common::{Node, json, ok};
use serde_json::Value;

/// The operations, run in order in `home`; returns the ids of the entries they published.
fn run_sequence(home: &Path) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let step = |ids: &mut Vec<String>, args: &[&str]| {
        let id = ok(home, args).trim().to_string();
        assert_eq!(id.len(), 64, "cairn {args:?} printed {id:?}, not an id");
        ids.push(id);
    };
    ok(home, &["space", "join", "housing"]);
    step(
        &mut ids,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Drop-in hours nobody came to",
            "--summary",
            "We set hours that suited us, not the people we meant to meet.",
            "--tag",
            "outreach",
        ],
    );
    ok(home, &["member", "add", "Bo Lind"]);
    let first = ids[0].clone();
    step(
        &mut ids,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Evening hours, chosen together",
            "--builds-on",
            &first[..12],
            "--as",
            "Bo Lind",
        ],
    );
    step(
        &mut ids,
        &["reply", &first[..12], "--text", "We saw the same in Leeds."],
    );
    step(
        &mut ids,
        &["respond", &first, "--type", "me-too", "--note", "same here"],
    );
    step(
        &mut ids,
        &[
            "amend",
            &first[..10],
            "--title",
            "Drop-in hours that suited only us",
        ],
    );
    // Amending through the revision's own id revises the same story.
    let revision = ids[4].clone();
    step(
        &mut ids,
        &["amend", &revision, "--summary", "Our hours, not theirs."],
    );
    let reply = ids[2].clone();
    step(&mut ids, &["retract", &reply, "--reason", "posted twice"]);
    step(
        &mut ids,
        &["profile", "set", "--org", "--about", "A housing charity"],
    );
    // `member revoke` says what it did in words; its id comes with --json.
    let revocation = json(home, &["member", "revoke", "Bo Lind", "--reason", "left"]);
    ids.push(revocation["id"].as_str().expect("id").to_string());
    ok(home, &["follow", "Parity org"]);
    ok(home, &["policy", "follow"]);
    ok(home, &["policy", "open"]);
    ids
}

/// What must agree between the two runs: everything in an entry's header but its creation
/// time and signature (and so its id), with references as positions in the sequence.
fn comparable(home: &Path, ids: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let shown = json(home, &["show", id]);
            let position = |target: &Value| {
                ids.iter()
                    .position(|id| Some(id.as_str()) == target.as_str())
                    .map_or_else(|| Value::from("outside"), Value::from)
            };
            let refs: Vec<Value> = shown["refs"]
                .as_array()
                .expect("refs")
                .iter()
                .map(|r| serde_json::json!([r["kind"], position(&r["target"])]))
                .collect();
            serde_json::json!({
                "kind": shown["kind"],
                "spaces": shown["spaces"],
                "refs": refs,
                "seq": shown["seq"],
                "author_name": shown["author_name"],
                "org_name": shown["org_name"],
                "on_behalf": shown["on_behalf"],
                "title": shown["title"],
                "summary": shown["summary"],
                "tags": shown["tags"],
                "retracted": shown["retracted"],
                "former_member": shown["former_member"],
                "related": shown["related"].as_array().expect("related").len(),
            })
        })
        .collect()
}

/// The answers to list, search and the other reads, with ids replaced by positions.
fn answers(home: &Path, ids: &[String]) -> Value {
    let positions = |listing: Value| -> Vec<Value> {
        listing
            .as_array()
            .expect("array")
            .iter()
            .map(|entry| {
                let id = entry["id"].as_str().expect("id");
                serde_json::json!([
                    ids.iter().position(|known| known == id),
                    entry["title"],
                    entry["retracted"],
                    entry["former_member"]
                ])
            })
            .collect()
    };
    serde_json::json!({
        "list": positions(json(home, &["list", "--limit", "50"])),
        "list_replies": positions(json(home, &["list", "--kind", "reply"])),
        "list_by_org": positions(json(home, &["list", "--org", "Parity org"])),
        "search": positions(json(home, &["search", "hours"])),
        "search_revised": positions(json(home, &["search", "theirs"])),
        "members": json(home, &["member", "list"]).as_array().expect("members").iter()
            .map(|m| serde_json::json!([m["name"], m["revoked_after"]])).collect::<Vec<_>>(),
        "profile": json(home, &["profile", "show"])["about"],
        "policy": policy_without_ids(home),
    })
}

/// The policy with organisation ids left out: they differ between the two homes, and names
/// and the rest must not.
fn policy_without_ids(home: &Path) -> Value {
    let mut policy = json(home, &["policy"]);
    for list in ["followed", "blocked"] {
        for org in policy[list].as_array_mut().expect("orgs") {
            org["org"] = Value::Null;
        }
    }
    policy
}

#[test]
fn the_same_operations_give_the_same_entries_with_or_without_a_node() {
    let root = tempfile::tempdir().expect("temp dir");
    let offline = Node::init(root.path(), "Parity org");
    let online = root.path().join("online");
    ok(&online, &["init", "--org", "Parity org"]);

    let offline_ids = run_sequence(&offline);
    let offline_entries = comparable(&offline, &offline_ids);
    let offline_answers = answers(&offline, &offline_ids);

    let _node = Node::start(&online, &[]);
    let online_ids = run_sequence(&online);
    let online_entries = comparable(&online, &online_ids);
    let online_answers = answers(&online, &online_ids);

    for (step, (without, with)) in offline_entries.iter().zip(&online_entries).enumerate() {
        assert_eq!(
            without, with,
            "entry {step} differs: without a node, then with one"
        );
    }
    assert_eq!(offline_answers, online_answers);
    // The sequence published to the joined spaces, `housing` among them, and the revocation
    // and profile went to every joined space, as the node does.
    let revocation = &offline_entries[8];
    assert_eq!(revocation["kind"], "revoke");
    assert_eq!(
        revocation["spaces"],
        serde_json::json!(["commons", "housing"])
    );
}

#[test]
fn a_listing_is_not_cut_by_the_node() {
    let root = tempfile::tempdir().expect("temp dir");
    let home = Node::init(root.path(), "Lister");
    // More entries than one page of the API holds (1,000).
    const ENTRIES: usize = 1_005;
    for index in 0..ENTRIES {
        ok(
            &home,
            &[
                "publish",
                "--kind",
                "learning",
                "--title",
                &format!("Entry {index}"),
            ],
        );
    }
    let page = |home: &Path, after: Option<&str>| -> Value {
        let mut args = vec!["list", "--limit", "400"];
        if let Some(after) = after {
            args.extend(["--after", after]);
        }
        json(home, &args)
    };
    let walk = |home: &Path| -> Vec<String> {
        let mut titles = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let listing = page(home, after.as_deref());
            let entries = listing.as_array().expect("array");
            titles.extend(
                entries
                    .iter()
                    .map(|e| e["title"].as_str().expect("title").to_string()),
            );
            match entries.last().and_then(|last| last["cursor"].as_str()) {
                Some(cursor) => after = Some(cursor.to_string()),
                None => break,
            }
        }
        titles
    };
    let offline = walk(&home);
    assert_eq!(offline.len(), ENTRIES);
    let mut unique = offline.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ENTRIES, "a page repeated entries");
    let _node = Node::start(&home, &[]);
    assert_eq!(walk(&home), offline);
    let all = json(&home, &["list", "--limit", "100000"]);
    assert_eq!(all.as_array().expect("array").len(), ENTRIES);
}
