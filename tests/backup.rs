//! Backups with real node processes: a backup restored into a fresh home keeps the
//! organisation's id, waits to publish until its own entries are synced back from a peer,
//! and then continues the same chain with no fork, even when the backup is older than the
//! chain's head. A wrong passphrase, a used home and a missing file are refused and write
//! nothing.

mod common;

use common::{Node, cairn, json, ok, wait_for};

#[test]
fn a_restored_home_continues_its_chain_after_syncing_without_a_fork() {
    let root = tempfile::tempdir().expect("temp dir");
    let passphrase = root.path().join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple\n").expect("passphrase file");
    let pass = passphrase.to_str().expect("utf-8 path");
    let original_home = Node::init(root.path(), "Riverside Trust");
    let peer_home = Node::init(root.path(), "Hillside Carers");
    let original = Node::start(&original_home, &["--no-kademlia"]);
    let peer = Node::start(
        &peer_home,
        &["--no-kademlia", "--peer", &original.address()],
    );
    let org = json(&original_home, &["whoami"])["org"].clone();
    for title in ["First", "Second", "Third"] {
        original.publish(title);
    }

    // A backup now, then two more entries: the backup is older than the chain's head.
    let backup = root.path().join("riverside.cairn-backup");
    let backup_arg = backup.to_str().expect("utf-8 path");
    ok(
        &original_home,
        &["backup", backup_arg, "--passphrase-file", pass],
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&backup).expect("backup").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the backup is private");
    let again = cairn(
        &original_home,
        &["backup", backup_arg, "--passphrase-file", pass],
    );
    assert_eq!(again.status.code(), Some(1), "a backup never overwrites");
    original.publish("Fourth");
    let head = original.publish("Fifth");
    wait_for("the peer to hold the newest entry", || peer.has(&head));
    let original_peer = original.peer_id();
    let mut original = original;
    original.stop();

    // Restored into a fresh home: a wrong passphrase writes nothing.
    let restored_home = root.path().join("restored");
    let wrong = root.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase at all\n").expect("wrong passphrase");
    let refused = cairn(
        &restored_home,
        &[
            "restore",
            backup_arg,
            "--passphrase-file",
            wrong.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("passphrase does not open"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!restored_home.join("keys").exists(), "nothing was written");
    ok(
        &restored_home,
        &["restore", backup_arg, "--passphrase-file", pass],
    );
    assert_eq!(
        json(&restored_home, &["whoami"])["org"],
        org,
        "the same organisation"
    );
    let twice = cairn(
        &restored_home,
        &["restore", backup_arg, "--passphrase-file", pass],
    );
    assert_eq!(
        twice.status.code(),
        Some(1),
        "a home with an identity is not overwritten"
    );

    // Publishing waits for a sync: the backup does not know the last two entries.
    let early = cairn(
        &restored_home,
        &["publish", "--kind", "learning", "--title", "Too early"],
    );
    assert_eq!(early.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("restored from a backup"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );

    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(restored_home.join("node-state.json")).expect("state file"),
    )
    .expect("state JSON");
    assert_eq!(state["hold_until_synced"], true);
    assert!(
        state["restore_heads"]
            .as_object()
            .is_some_and(|heads| heads.values().any(|seq| seq == 3)),
        "the backup knew three entries: {state}"
    );

    // A complete sync with a node that holds none of this organisation's entries does not
    // lift the hold.
    let stranger_home = Node::init(root.path(), "Stranger Group");
    let stranger = Node::start(&stranger_home, &["--no-kademlia"]);
    let restored = Node::start(
        &restored_home,
        &["--no-kademlia", "--peer", &stranger.address()],
    );
    assert_ne!(
        restored.peer_id(),
        original_peer,
        "a restored home is a new node"
    );
    wait_for("a complete sync with the stranger", || {
        restored.status()["connected_peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|peer| peer["last_sync"]["ok"] == true))
    });
    let still = cairn(
        &restored_home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Still too early",
        ],
    );
    assert_eq!(still.status.code(), Some(1), "the hold stays");

    // With the peer that holds the entries, it catches up, and publishing goes ahead.
    ok(&restored_home, &["peer", "add", &peer.address()]);
    wait_for("the restored node to catch up", || restored.has(&head));
    let mut next = None;
    wait_for("publishing to be allowed after the sync", || {
        let output = cairn(
            &restored_home,
            &[
                "--json", "publish", "--kind", "learning", "--title", "Sixth",
            ],
        );
        if output.status.success() {
            next = serde_json::from_slice::<serde_json::Value>(&output.stdout).ok();
        }
        next.is_some()
    });
    let next = next.expect("published");
    assert_eq!(next["seq"], 6, "the chain continues after the fifth entry");
    assert_eq!(next["org"], org);
    let id = next["id"].as_str().expect("an id").to_string();
    wait_for("the peer to hold the sixth entry", || peer.has(&id));
    let status = json(&peer_home, &["status"]);
    assert_eq!(
        status["forked_authors"].as_array().map(Vec::len),
        Some(0),
        "no fork: {status}"
    );
}

#[test]
fn confirm_lifts_the_hold_when_no_peer_holds_the_entries() {
    let root = tempfile::tempdir().expect("temp dir");
    let passphrase = root.path().join("passphrase");
    std::fs::write(&passphrase, "a long enough passphrase\n").expect("passphrase file");
    let pass = passphrase.to_str().expect("utf-8 path");
    let home = Node::init(root.path(), "Solo Org");
    let short = root.path().join("short");
    std::fs::write(&short, "too short\n").expect("short passphrase");
    let backup = root.path().join("solo.backup");
    let backup_arg = backup.to_str().expect("utf-8 path");
    let weak = cairn(
        &home,
        &[
            "backup",
            backup_arg,
            "--passphrase-file",
            short.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(weak.status.code(), Some(1), "a short passphrase is refused");
    ok(&home, &["backup", backup_arg, "--passphrase-file", pass]);
    let restored = root.path().join("restored");
    ok(
        &restored,
        &["restore", backup_arg, "--passphrase-file", pass],
    );
    assert_eq!(
        cairn(
            &restored,
            &["publish", "--kind", "learning", "--title", "Held"]
        )
        .status
        .code(),
        Some(1)
    );
    ok(&restored, &["restore", "--confirm"]);
    ok(
        &restored,
        &["publish", "--kind", "learning", "--title", "Allowed"],
    );
}
