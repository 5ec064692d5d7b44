//! Invitations with real node processes: a ticket from `cairn invite` lets another node join
//! (connect, remember the node, join its spaces); forged, unsigned, expired and reused
//! single-use tickets are refused, each with a message saying what to do.

mod common;

use common::{Node, cairn, ok, wait_for};

#[test]
fn invite_and_join_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Node::init(dir.path(), "a"), Node::init(dir.path(), "b"));
    let a = Node::start(&a, &[]);
    ok(&a.home, &["space", "join", "housing"]);
    let b = Node::start(&b, &[]);
    let ticket = ok(&a.home, &["invite"]);
    assert_eq!(
        ticket.lines().count(),
        1,
        "invite prints one line: {ticket:?}"
    );
    assert!(ticket.starts_with("cairn-invite2-"));
    ok(&b.home, &["join", ticket.trim()]);
    let a_id = a.peer_id();
    wait_for("B connected to A", || b.connected_to(&a_id));
    let status = b.status();
    let spaces: Vec<&str> = status["spaces"]
        .as_array()
        .expect("spaces")
        .iter()
        .map(|s| s.as_str().expect("str"))
        .collect();
    assert!(
        spaces.contains(&"housing") && spaces.contains(&"commons"),
        "{spaces:?}"
    );
    assert!(
        status["known_peers"]
            .as_array()
            .expect("known")
            .iter()
            .any(|p| p.as_str().expect("str").ends_with(&a_id))
    );
    // A damaged ticket is refused with a clear message.
    let mut damaged = ticket.trim().to_string();
    damaged.truncate(damaged.len() - 4);
    let output = cairn(&b.home, &["join", &damaged]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ticket"));
    // An entry in the new space reaches B.
    let id = ok(
        &a.home,
        &[
            "publish", "--kind", "question", "--title", "Housing?", "--space", "housing",
        ],
    )
    .trim()
    .to_string();
    wait_for("the housing entry at B", || b.has(&id));
}

/// Re-encodes a ticket with one byte of its signed invitation changed and a checksum that
/// matches: what a forger who edited the ticket would produce.
fn forged(ticket: &str) -> String {
    use sha2::Digest;
    let body = ticket
        .trim()
        .strip_prefix("cairn-invite2-")
        .expect("a ticket");
    let mut bytes = data_encoding::BASE32_NOPAD
        .decode(body.to_uppercase().as_bytes())
        .expect("base32");
    bytes.truncate(bytes.len() - 4);
    // A byte of the organisation's name, in the signed claims.
    bytes[70] ^= 1;
    let checksum = sha2::Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum[..4]);
    format!(
        "cairn-invite2-{}",
        data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
    )
}

#[test]
fn invitations_are_signed_expire_and_single_use_ones_work_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Node::start(&Node::init(dir.path(), "a"), &[]);
    let b = Node::start(&Node::init(dir.path(), "b"), &[]);
    let c = Node::start(&Node::init(dir.path(), "c"), &[]);
    let refused = |home: &std::path::Path, ticket: &str| {
        let output = cairn(home, &["join", ticket.trim()]);
        assert_eq!(output.status.code(), Some(1), "the join was not refused");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    // Forged: the checksum matches, the signature does not.
    let ticket = ok(&a.home, &["invite"]);
    let error = refused(&b.home, &forged(&ticket));
    assert!(error.contains("not a genuine invitation"), "{error}");
    // Unsigned tickets of the first format say what to do.
    let error = refused(
        &b.home,
        "cairn-invite1-mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi",
    );
    assert!(error.contains("run `cairn invite` again"), "{error}");

    // Single use: the first node gets in, the second is refused by the inviting node.
    let once = ok(&a.home, &["invite", "--single-use"]);
    ok(&b.home, &["join", once.trim()]);
    let error = refused(&c.home, &once);
    assert!(error.contains("has been used"), "{error}");
    // It stays used after the inviting node restarts (the state file keeps it).
    let mut a = a;
    let port = a
        .address()
        .split("/tcp/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a TCP port")
        .to_string();
    a.stop();
    let a = Node::start(
        &a.home,
        &["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")],
    );
    let error = refused(&c.home, &once);
    assert!(error.contains("has been used"), "{error}");
    // A reusable one works for both.
    let open = ok(&a.home, &["invite"]);
    ok(&c.home, &["join", open.trim()]);
    let a_id = a.peer_id();
    wait_for("C connected to A", || c.connected_to(&a_id));

    // Expired: refused by the joining node, with when and what to do.
    let short = ok(&a.home, &["invite", "--expires", "1s"]);
    common::wait_until("the short invitation to expire", common::DEADLINE, || {
        let output = cairn(&b.home, &["join", short.trim()]);
        String::from_utf8_lossy(&output.stderr).contains("expired on")
    });
    let error = refused(&b.home, &short);
    assert!(error.contains("ask a for a new one"), "{error}");
}
