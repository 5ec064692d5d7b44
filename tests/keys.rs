//! Organisation keys with real node processes: a rotation while one node is offline, after
//! which a thief of the old key gets nothing new accepted anywhere (and what it slipped to the
//! offline node goes once the rotation arrives); two histories of a key log exposed; an
//! organisation from before key logs adopting one and keeping its id; and a network of mixed
//! versions, where a node that reads only format 1 ignores format 2 entries without blocking
//! whoever sent them.

mod common;

use std::path::{Path, PathBuf};

use common::{Node, cairn, json, ok, wait_for};

/// A copy of `home` as a thief would take it (another computer: its own node key).
fn steal(home: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(home)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success());
    for file in ["keys/node.key", "api.address", "api.token"] {
        let _ = std::fs::remove_file(to.join(file));
    }
}

/// The next-key file of `home`, copied aside as the admin would keep it offline.
fn next_key_offline(home: &Path, root: &Path, name: &str) -> PathBuf {
    let offline = root.join(name);
    std::fs::copy(home.join("keys/org.next.key"), &offline).expect("copy the next key");
    std::fs::set_permissions(
        &offline,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("private");
    offline
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs a catch-up sync of `home`'s node with the peer `peer_id` and returns once it ended.
fn sync_with(home: &Path, peer_id: &str) {
    ok(home, &["sync", "--peer", peer_id]);
}

#[test]
fn after_a_rotation_the_old_keys_new_entries_are_refused_everywhere() {
    let root = tempfile::tempdir().expect("temp dir");
    let riverside = Node::init(root.path(), "Riverside");
    let hillside = Node::init(root.path(), "Hillside");
    let lakeside = Node::init(root.path(), "Lakeside");
    let org = json(&riverside, &["whoami"])["org"].clone();
    let a = Node::start(&riverside, &["--no-kademlia"]);
    let b = Node::start(&hillside, &["--no-kademlia", "--peer", &a.address()]);
    let mut c = Node::start(&lakeside, &["--no-kademlia", "--peer", &a.address()]);
    let before = a.publish("Before the rotation");
    wait_for("both peers to hold the first entry", || {
        b.has(&before) && c.has(&before)
    });
    // A laptop with the home on it is stolen; Lakeside goes offline.
    let thief_home = root.path().join("Thief");
    steal(&riverside, &thief_home);
    c.stop();

    // Riverside rotates with the next key it kept offline, and carries on.
    let next = next_key_offline(&riverside, root.path(), "riverside.next");
    let mut a = a;
    a.stop();
    let rotated = cairn(&riverside, &["org", "rotate", "--next-key", path(&next)]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let wrong = cairn(&riverside, &["org", "rotate", "--next-key", path(&next)]);
    assert_eq!(
        wrong.status.code(),
        Some(1),
        "a used next key cannot rotate again"
    );
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("not the next key"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert_eq!(
        json(&riverside, &["whoami"])["org"],
        org,
        "the id outlives the key"
    );
    let a = Node::start(&riverside, &["--no-kademlia", "--peer", &b.address()]);
    let after = a.publish("After the rotation");
    wait_for("Hillside to take the re-credentialed entry", || {
        b.has(&after)
    });

    // The thief, with the old key and its node not running, publishes as the member and as
    // a member of its own making: its own store has not heard of the rotation either.
    let stolen = ok(
        &thief_home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Written with the stolen key",
        ],
    )
    .trim()
    .to_string();
    ok(&thief_home, &["member", "add", "Mallory"]);
    let made_up = ok(
        &thief_home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "By a made-up member",
            "--as",
            "Mallory",
        ],
    )
    .trim()
    .to_string();

    // Lakeside comes back talking only to the thief: it has not heard of the rotation, so it
    // takes the thief's entries for now.
    let c = Node::start(&lakeside, &["--no-kademlia"]);
    let thief = Node::start(&thief_home, &["--no-kademlia", "--peer", &c.address()]);
    wait_for("Lakeside to take the thief's entries", || {
        c.has(&stolen) && c.has(&made_up)
    });

    // Hillside, which holds the rotation, takes neither, and blames nobody.
    ok(&thief_home, &["peer", "add", &b.address()]);
    wait_for("the thief to reach Hillside", || {
        b.connected_to(&thief.peer_id())
    });
    sync_with(&hillside, &thief.peer_id());
    assert!(!b.has(&stolen) && !b.has(&made_up), "Hillside refused both");
    assert!(
        b.status()["blocked_peers"]
            .as_array()
            .expect("array")
            .is_empty(),
        "a refusal under a key log blames nobody"
    );

    // Once Lakeside meets Hillside, the rotation arrives and the thief's entries go.
    ok(&lakeside, &["peer", "add", &b.address()]);
    wait_for("Lakeside to take the entry after the rotation", || {
        c.has(&after)
    });
    wait_for(
        "Lakeside to drop what the old key wrote after its cut-off",
        || !c.has(&stolen) && !c.has(&made_up),
    );
    assert!(
        c.has(&before),
        "entries from before the rotation stay valid"
    );
    drop(thief);
}

#[test]
fn two_histories_of_a_key_log_are_exposed() {
    let root = tempfile::tempdir().expect("temp dir");
    let riverside = Node::init(root.path(), "Riverside");
    let hillside = Node::init(root.path(), "Hillside");
    // Someone copies the home with its next key, and rotates with it too.
    let copy = root.path().join("Copy");
    steal(&riverside, &copy);
    let next = next_key_offline(&riverside, root.path(), "riverside.next");
    ok(&riverside, &["org", "rotate", "--next-key", path(&next)]);
    ok(&copy, &["org", "rotate", "--next-key", path(&next)]);
    let b = Node::start(&hillside, &["--no-kademlia"]);
    let a = Node::start(&riverside, &["--no-kademlia", "--peer", &b.address()]);
    let first = a.publish("Under the first history");
    wait_for("Hillside to hold the first history", || b.has(&first));
    let other = Node::start(&copy, &["--no-kademlia", "--peer", &a.address()]);
    wait_for("Riverside to see the second history", || {
        json(&riverside, &["org", "keys"])["duplicity"] == true
    });
    let status = ok(&riverside, &["status"]);
    assert!(status.contains("two different histories"), "{status}");
    drop(other);
}

/// A home as a release before key logs left it: the organisation's id is its key.
fn legacy_home(root: &Path, name: &str, seed: u8) -> PathBuf {
    use cairn_core::{Credential, CredentialClaims, SecretKey, Timestamp};
    use std::os::unix::fs::PermissionsExt;
    let home = root.join(name);
    let keys = home.join("keys");
    std::fs::create_dir_all(&keys).expect("keys folder");
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("mode");
    let org_key = SecretKey::from_seed([seed; 32]);
    let member_key = SecretKey::from_seed([seed.wrapping_add(100); 32]);
    let credential = Credential::issue(
        &org_key,
        CredentialClaims {
            org: org_key.org_id(),
            org_name: name.into(),
            member: member_key.member_id(),
            member_name: format!("Member of {name}"),
            issued: Timestamp::now(),
            expires: None,
        },
    )
    .expect("credential");
    for (file, key) in [("org.key", &org_key), ("member.key", &member_key)] {
        let path = keys.join(file);
        std::fs::write(&path, format!("{}\n", hex::encode(key.seed()))).expect("key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("mode");
    }
    std::fs::write(
        keys.join("member.credential"),
        format!("{}\n", hex::encode(credential.as_bytes())),
    )
    .expect("credential");
    cairn_store::Store::create(&home.join("store"), cairn_store::Config::default()).expect("store");
    home
}

#[test]
fn an_organisation_from_before_key_logs_adopts_one_and_keeps_its_id() {
    let root = tempfile::tempdir().expect("temp dir");
    let old = legacy_home(root.path(), "Oldtown", 7);
    let hillside = Node::init(root.path(), "Hillside");
    let org = json(&old, &["whoami"])["org"].clone();
    let keys = json(&old, &["org", "keys"]);
    assert_eq!(keys["events"], 0);
    let b = Node::start(&hillside, &["--no-kademlia"]);
    let mut a = Node::start(&old, &["--no-kademlia", "--peer", &b.address()]);
    let before = a.publish("Before the log");
    wait_for("Hillside to hold the old-style entry", || b.has(&before));
    a.stop();

    ok(&old, &["org", "adopt"]);
    assert_eq!(json(&old, &["whoami"])["org"], org, "adopting keeps the id");
    let again = cairn(&old, &["org", "adopt"]);
    assert_eq!(again.status.code(), Some(1), "a log is adopted once");
    let next = next_key_offline(&old, root.path(), "oldtown.next");
    ok(&old, &["org", "rotate", "--next-key", path(&next)]);
    assert_eq!(json(&old, &["whoami"])["org"], org, "rotating keeps the id");
    let keys = json(&old, &["org", "keys"]);
    assert_eq!(
        (keys["events"].clone(), keys["id_is_first_key"].clone()),
        (2.into(), true.into())
    );

    let a = Node::start(&old, &["--no-kademlia", "--peer", &b.address()]);
    let after = a.publish("After the rotation");
    wait_for("Hillside to take the rotated organisation's entry", || {
        b.has(&after)
    });
    let listed = json(&hillside, &["list", "--limit", "100"]);
    let orgs: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter(|entry| entry["id"] == before || entry["id"] == after)
        .map(|entry| entry["org"].as_str().expect("org"))
        .collect();
    assert_eq!(orgs.len(), 2);
    assert!(orgs.iter().all(|listed| *listed == org), "{orgs:?}");
}

#[test]
fn a_node_that_reads_only_format_1_ignores_format_2_without_blocking_its_sender() {
    let root = tempfile::tempdir().expect("temp dir");
    // Newtown is a new organisation (format 2); Midtown and Oldtown are from before key logs
    // (format 1), and Oldtown's node reads format 1 only, as an older release does.
    let newtown = Node::init(root.path(), "Newtown");
    let midtown = legacy_home(root.path(), "Midtown", 8);
    let oldtown = legacy_home(root.path(), "Oldtown", 9);
    let m = Node::start(&midtown, &["--no-kademlia"]);
    let n = Node::start(&newtown, &["--no-kademlia", "--peer", &m.address()]);
    let o = Node::spawn_with_env(
        &oldtown,
        &["--no-kademlia", "--peer", &m.address()],
        &[(cairn_core::entry::FORMAT_LIMIT_VARIABLE, "1")],
    );
    o.wait_ready();
    let newer = n.publish("In the newer format");
    wait_for("Midtown to take the newer format", || m.has(&newer));
    let older = m.publish("In the older format");
    wait_for("Oldtown to take Midtown's entry", || o.has(&older));
    sync_with(&oldtown, &m.peer_id());
    assert!(
        !o.has(&newer),
        "Oldtown cannot read format 2 and ignores it"
    );
    let newer_again = n.publish("Another in the newer format");
    let older_again = m.publish("Another in the older format");
    wait_for("Midtown to take the second newer entry", || {
        m.has(&newer_again)
    });
    wait_for("Oldtown to keep taking Midtown's entries", || {
        o.has(&older_again)
    });
    assert!(o.connected_to(&m.peer_id()), "still connected");
    assert!(
        o.status()["blocked_peers"]
            .as_array()
            .expect("array")
            .is_empty(),
        "Oldtown blamed nobody for a format it does not know"
    );
}
