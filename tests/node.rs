//! Black-box tests of `cairn node`: real daemons on loopback (port 0, mDNS off, separate
//! homes), driven through the real CLI, plus a misbehaving libp2p peer built here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{DEADLINE, Node, cairn, json, ok, wait_for};

#[test]
fn an_entry_published_at_a_reaches_c_through_b() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        Node::init(dir.path(), "a"),
        Node::init(dir.path(), "b"),
        Node::init(dir.path(), "c"),
    );
    // Without Kademlia, C never learns of A from B: the entry must pass through B.
    let a = Node::start(&a, &["--no-kademlia"]);
    let b = Node::start(&b, &["--peer", &a.address(), "--no-kademlia"]);
    let c = Node::start(&c, &["--peer", &b.address(), "--no-kademlia"]);
    let (a_id, b_id) = (a.peer_id(), b.peer_id());
    wait_for("B connected to A", || b.connected_to(&a_id));
    wait_for("C connected to B", || c.connected_to(&b_id));
    assert!(!c.connected_to(&a_id), "A and C are not directly connected");
    // Gossip meshes form on the heartbeat; publish until the first one gets through, then
    // every later one must arrive too.
    wait_for("the space mesh between B and C", || {
        c.status()["connected_peers"][0]["spaces"]
            .as_array()
            .is_some_and(|spaces| !spaces.is_empty())
            && b.status()["connected_peers"]
                .as_array()
                .expect("peers")
                .iter()
                .all(|p| !p["spaces"].as_array().expect("spaces").is_empty())
    });
    let id = a.publish("Shared along the line");
    wait_for("the entry at C", || c.has(&id));
    assert!(b.has(&id));
    let entry = json(&c.home, &["show", &id]);
    assert_eq!(entry["org_name"], "a");
    assert_eq!(entry["title"], "Shared along the line");
}

#[test]
fn a_restarted_node_keeps_identity_peers_and_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Node::init(dir.path(), "a"), Node::init(dir.path(), "b"));
    let a = Node::start(&a, &[]);
    let mut b = Node::start(&b, &[]);
    ok(&b.home, &["peer", "add", &a.address()]);
    let id = b.publish("Before the restart");
    let (b_peer, a_peer) = (b.peer_id(), a.peer_id());
    let status = b.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    assert!(!b.home.join("api.address").exists() && !b.home.join("api.token").exists());

    let b = Node::start(&b.home.clone(), &[]);
    assert_eq!(b.peer_id(), b_peer, "same identity");
    assert!(b.has(&id), "same entries");
    wait_for("B reconnects to A by itself", || b.connected_to(&a_peer));
    wait_for("A holds B's entry (shared after the restart)", || {
        a.has(&id)
    });
}

#[test]
fn the_node_limits_glibc_to_two_malloc_arenas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(&Node::init(dir.path(), "a"), &[]);
    let pid = node.child.as_ref().expect("running").id();
    // Started without the variable, it re-executed itself with it, keeping its process id.
    let environment = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        environment
            .split(|byte| *byte == 0)
            .any(|variable| variable == b"MALLOC_ARENA_MAX=2"),
        "the node runs with MALLOC_ARENA_MAX=2"
    );
}

#[test]
fn the_api_needs_the_token_and_listens_on_loopback_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Node::start(&Node::init(dir.path(), "a"), &[]);
    let address = std::fs::read_to_string(a.home.join("api.address")).expect("address");
    let address = address.trim();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let token_mode = std::fs::metadata(a.home.join("api.token"))
        .expect("token")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(token_mode, 0o600);
    let token = std::fs::read_to_string(a.home.join("api.token")).expect("token");

    let request = |host: &str, auth: Option<&str>| -> String {
        let mut stream = TcpStream::connect(address).expect("connect");
        let auth = auth
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /api/status HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    };
    assert!(request(address, None).starts_with("HTTP/1.1 401"));
    assert!(request(address, Some("wrong")).starts_with("HTTP/1.1 401"));
    assert!(request("evil.example:80", Some(token.trim())).starts_with("HTTP/1.1 403"));
    assert!(request(address, Some(token.trim())).starts_with("HTTP/1.1 200"));

    // A non-loopback API address is refused unless explicitly allowed.
    let b = Node::init(dir.path(), "b");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--home")
        .arg(&b)
        .args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "0.0.0.0:0",
            "--no-mdns",
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a loopback address"));
}

#[test]
fn an_entry_published_while_the_node_was_down_is_shared_when_it_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Node::init(dir.path(), "a"), Node::init(dir.path(), "b"));
    let a = Node::start(&a, &[]);
    let offline = ok(
        &b,
        &["publish", "--kind", "failure", "--title", "Written offline"],
    )
    .trim()
    .to_string();
    let b = Node::start(&b, &["--peer", &a.address()]);
    wait_for("A holds the entry B wrote offline", || a.has(&offline));
    assert!(b.has(&offline));
}

#[test]
fn an_uninitialised_home_gets_an_identity_when_the_node_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("fresh");
    let node = Node::start(&home, &[]);
    assert_eq!(node.status()["org_name"], "Unnamed organisation");
    let log = std::fs::read_to_string(home.with_extension("log")).expect("log");
    assert!(
        log.contains("cairn rename --org"),
        "the node says how to rename: {log}"
    );
}

#[test]
fn a_forged_entry_is_rejected_not_stored_not_relayed_and_its_sender_is_blocked() {
    use common::gossip::{commons, drive, gossip_client, loopback};
    use libp2p::gossipsub;
    use libp2p::swarm::SwarmEvent;

    let dir = tempfile::tempdir().expect("tempdir");
    let b = Node::start(&Node::init(dir.path(), "b"), &[]);
    let c = Node::start(&Node::init(dir.path(), "c"), &["--peer", &b.address()]);
    let b_peer: libp2p::PeerId = b.peer_id().parse().expect("peer id");
    wait_for("C connected to B", || c.connected_to(&b_peer.to_string()));

    // A valid entry with one bit of its signature flipped.
    let author = cairn_core::testkit::Author::from_seeds(7, 8, "Forgers Ltd", "Mallory");
    let entry = author
        .chain(1, cairn_core::testkit::EPOCH, 300)
        .expect("entry")
        .remove(0);
    let mut forged = entry.encode();
    let signature_at = 4 + entry.signed_header().len() - 1;
    forged[signature_at] ^= 0x01;
    let forged_id = cairn_core::entry::frame_id(&forged)
        .expect("frame")
        .to_string();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let misbehaving_peer = runtime.block_on(async {
        let mut swarm = gossip_client(loopback(1));
        swarm
            .dial(b.address().parse::<libp2p::Multiaddr>().expect("address"))
            .expect("dial");
        // Wait until B has told us it is in the space, then send the forgery.
        drive(&mut swarm, "B's subscription", |event| {
            matches!(event, SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) if *peer_id == b_peer)
        })
        .await;
        swarm
            .behaviour_mut()
            .publish(commons(), forged.clone())
            .expect("publish the forgery");
        // B must drop the connection: the sender is blocked.
        drive(&mut swarm, "B to close the connection", |event| {
            matches!(event, SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } if *peer_id == b_peer)
        })
        .await;
        *swarm.local_peer_id()
    });

    wait_for("B to list the forger as blocked", || {
        b.status()["blocked_peers"]
            .as_array()
            .expect("blocked")
            .iter()
            .any(|peer| peer == &misbehaving_peer.to_string())
    });
    // The link from B to C works: a real entry published after the forgery gets through...
    let real = b.publish("Published after the forgery");
    wait_for("the real entry at C", || c.has(&real));
    // ...but the forgery was neither stored at B nor relayed to C.
    assert!(!b.has(&forged_id), "B stored the forged entry");
    assert!(!c.has(&forged_id), "C received the forged entry");
    // The real entry, and B's and C's inceptions.
    assert_eq!(b.status()["entries"], 3);
}

/// Publishes `count` entries through the node's API, quickly, from one process per entry.
fn publish_many(node: &Node, count: usize, prefix: &str) -> Vec<String> {
    (0..count)
        .map(|index| node.publish(&format!("{prefix} {index}")))
        .collect()
}

fn entry_count(node: &Node) -> u64 {
    node.entry_count()
}

#[test]
fn a_node_that_was_offline_catches_up_on_500_entries_when_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Node::init(dir.path(), "a"), Node::init(dir.path(), "b"));
    let a = Node::start(&a, &[]);
    let mut b_node = Node::start(&b, &["--peer", &a.address()]);
    let a_id = a.peer_id();
    wait_for("B connected to A", || b_node.connected_to(&a_id));
    assert!(b_node.stop().success());
    // B follows A, so A's entries are not held to a stranger's budget of 100.
    ok(&b, &["follow", &common::org_id(&a.home)]);

    let ids = publish_many(&a, 500, "While B was away");
    let b = Node::start(&b, &["--peer", &a.address()]);
    let started = Instant::now();
    wait_for("B holds all 500 entries", || entry_count(&b) == 500);
    let caught_up = started.elapsed();
    assert!(b.has(&ids[0]) && b.has(&ids[499]));
    // The sync's record is written once its last batch is stored, a moment after the count.
    wait_for("B's record of the sync", || {
        !b.status()["connected_peers"][0]["last_sync"].is_null()
    });
    let record = &b.status()["connected_peers"][0]["last_sync"];
    assert_eq!(record["ok"], true, "{record}");
    println!("B caught up on 500 entries in {caught_up:?}");
}

#[test]
fn two_nodes_that_published_while_apart_converge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (Node::init(dir.path(), "a"), Node::init(dir.path(), "b"));
    let a = Node::start(&a, &[]);
    let b_offline_ids: Vec<String> = (0..40)
        .map(|index| {
            ok(
                &b,
                &[
                    "publish",
                    "--kind",
                    "learning",
                    "--title",
                    &format!("B alone {index}"),
                ],
            )
            .trim()
            .to_string()
        })
        .collect();
    let a_ids = publish_many(&a, 60, "A alone");
    let b = Node::start(&b, &["--peer", &a.address()]);
    wait_for("both hold all 100 entries", || {
        entry_count(&a) == 100 && entry_count(&b) == 100
    });
    assert!(a.has(&b_offline_ids[39]) && b.has(&a_ids[59]));
}

#[test]
fn in_a_line_the_middle_node_restarts_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        Node::init(dir.path(), "a"),
        Node::init(dir.path(), "b"),
        Node::init(dir.path(), "c"),
    );
    // Without Kademlia, C never learns of A from B: everything must pass through B.
    let a = Node::start(&a, &["--sync-interval", "1", "--no-kademlia"]);
    let mut b_node = Node::start(
        &b,
        &[
            "--peer",
            &a.address(),
            "--sync-interval",
            "1",
            "--no-kademlia",
        ],
    );
    let b_address = b_node.address();
    let c = Node::start(
        &c,
        &[
            "--peer",
            &b_address,
            "--sync-interval",
            "1",
            "--no-kademlia",
        ],
    );
    let before = publish_many(&a, 20, "Before the restart");
    wait_for("C holds the first entries", || entry_count(&c) == 20);

    assert!(b_node.stop().success());
    let during = publish_many(&a, 30, "While B restarts");
    // B comes back on the same port, so C's redial finds it.
    let port = b_address.split('/').nth(4).expect("port").to_string();
    let b = Node::start(
        &b,
        &[
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
            "--peer",
            &a.address(),
            "--sync-interval",
            "1",
            "--no-kademlia",
        ],
    );
    wait_for("C holds every entry, through B", || entry_count(&c) == 50);
    assert!(c.has(&before[0]) && c.has(&during[29]));
    assert_eq!(entry_count(&b), 50);
    assert!(!c.connected_to(&a.peer_id()), "A and C never connect");
}

#[test]
fn an_entry_in_two_spaces_reaches_members_of_either() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        Node::init(dir.path(), "a"),
        Node::init(dir.path(), "b"),
        Node::init(dir.path(), "c"),
    );
    let a = Node::start(&a, &[]);
    ok(&a.home, &["space", "join", "housing"]);
    let b = Node::start(&b, &["--peer", &a.address()]);
    ok(&b.home, &["space", "leave", "commons"]);
    ok(&b.home, &["space", "join", "housing"]);
    let c = Node::start(&c, &["--peer", &a.address()]);
    let a_id = a.peer_id();
    wait_for("B and C connected to A", || {
        b.connected_to(&a_id) && c.connected_to(&a_id)
    });
    wait_for("A sees B in housing", || {
        a.status()["connected_peers"]
            .as_array()
            .expect("peers")
            .iter()
            .any(|p| {
                p["spaces"]
                    .as_array()
                    .expect("spaces")
                    .iter()
                    .any(|s| s == "housing")
            })
    });
    let id = ok(
        &a.home,
        &[
            "publish", "--kind", "learning", "--title", "Both", "--space", "commons", "--space",
            "housing",
        ],
    )
    .trim()
    .to_string();
    wait_for("B (housing only) and C (commons) hold it", || {
        b.has(&id) && c.has(&id)
    });
}

#[test]
fn a_reply_and_a_response_written_at_b_show_under_the_entry_at_a() {
    let root = tempfile::tempdir().expect("temp dir");
    let a = Node::start(&Node::init(root.path(), "A"), &["--no-kademlia"]);
    let b = Node::start(
        &Node::init(root.path(), "B"),
        &["--no-kademlia", "--peer", &a.address()],
    );
    wait_for("B to connect to A", || b.connected_to(&a.peer_id()));
    let id = a.publish("Asking for help with our evaluation");
    wait_for("the entry to reach B", || b.has(&id));
    ok(
        &b.home,
        &["reply", &id, "--text", "We had the same problem."],
    );
    ok(
        &b.home,
        &[
            "respond",
            &id,
            "--type",
            "offer-to-talk",
            "--note",
            "Call us",
        ],
    );
    wait_for("the reply and the response to reach A", || {
        json(&a.home, &["show", &id])["related"]
            .as_array()
            .is_some_and(|related| related.len() == 2)
    });
    let shown = common::plain(&ok(&a.home, &["show", &id]));
    assert!(shown.contains("Happy to talk about it"), "{shown}");
    assert!(shown.contains("Member of B of B (stranger "), "{shown}");
    assert!(shown.contains("): Call us"), "{shown}");
    assert!(shown.contains("We had the same problem."), "{shown}");
    // Found by search at A as soon as it is indexed.
    wait_for("A's search to find the reply", || {
        json(&a.home, &["search", "same problem"])
            .as_array()
            .is_some_and(|hits| hits.len() == 1)
    });
    // Once the start-up comparison with the store has run, status says search is current.
    wait_for("A's status to report its search index up to date", || {
        a.status()["search_up_to_date"] == true
    });
}

#[test]
fn the_demo_starts_three_nodes_serves_a_login_link_and_cleans_up_on_ctrl_c() {
    use std::io::BufRead;
    let mut demo = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("demo")
        .env_remove("CAIRN_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cairn demo starts");
    let stdout = demo.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut homes = Vec::new();
    let mut url = None;
    let mut all_spread = false;
    while url.is_none() {
        let remaining = DEADLINE.saturating_sub(started.elapsed());
        let line = lines_rx
            .recv_timeout(remaining)
            .expect("the demo prints a login link in time");
        if let Some(home) = line.split(", home ").nth(1) {
            homes.push(std::path::PathBuf::from(home.trim_end_matches(')')));
        }
        all_spread |= line.starts_with("Every node holds every entry");
        if let Some(link) = line.trim().strip_prefix("http://") {
            url = Some(link.to_string());
        }
    }
    assert_eq!(homes.len(), 3, "three homes were announced");
    assert!(all_spread, "the demo waited for the entries to spread");
    assert!(homes.iter().all(|home| home.exists()));

    // The link logs a browser in: a redirect that sets the session cookie.
    let url = url.expect("a link");
    let (host, path) = url.split_once('/').expect("host and path");
    let mut stream = TcpStream::connect(host).expect("connect to the demo node");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 303"), "{response}");
    assert!(
        response
            .to_lowercase()
            .contains("set-cookie: cairn_session_")
    );

    // Ctrl-C stops everything and removes the homes.
    let _ = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status();
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE * 2 {
            let _ = demo.kill();
            panic!("the demo did not stop after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the demo exits cleanly: {status:?}");
    for home in &homes {
        assert!(!home.exists(), "{} was removed", home.display());
    }
}

/// Copies a folder tree (a stopped or never-started home).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_fork_proof_reaches_every_node_and_flags_the_author() {
    let root = tempfile::tempdir().expect("temp dir");
    let a_home = Node::init(root.path(), "A");
    // A second copy of A's keys and store: publishing from both signs two entries with the
    // same sequence number, which is what a fork is.
    let twin_home = root.path().join("A-twin");
    copy_dir(&a_home, &twin_home);
    let author = json(&a_home, &["whoami"])["member"]
        .as_str()
        .expect("member id")
        .to_string();

    let b = Node::start(&Node::init(root.path(), "B"), &["--no-kademlia"]);
    let a = Node::start(&a_home, &["--no-kademlia", "--peer", &b.address()]);
    let c = Node::start(
        &Node::init(root.path(), "C"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    wait_for("A and C to connect to B", || {
        b.connected_to(&a.peer_id()) && b.connected_to(&c.peer_id())
    });
    let first = a.publish("The first entry number one");
    wait_for("the first entry to reach C", || c.has(&first));

    // The twin signs its own entry number one offline, then joins through C.
    let second = ok(
        &twin_home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "A different entry number one",
        ],
    )
    .trim()
    .to_string();
    assert_ne!(first, second);
    let _ = std::fs::remove_file(twin_home.join("keys/node.key"));
    let _ = std::fs::remove_file(twin_home.join("node-state.json"));
    let twin = Node::start(&twin_home, &["--no-kademlia", "--peer", &c.address()]);
    wait_for("the twin to connect to C", || {
        twin.connected_to(&c.peer_id())
    });

    for node in [&a, &b, &c] {
        wait_for("every node to hold the fork proof", || {
            node.status()["forked_authors"]
                .as_array()
                .is_some_and(|forked| forked.iter().any(|f| f["author"] == author.as_str()))
        });
        // The entry in the chain stays; it is flagged in list and show.
        let listed = json(&node.home, &["list"]);
        let entry = listed
            .as_array()
            .expect("array")
            .iter()
            .find(|entry| entry["author"] == author.as_str())
            .expect("the author's entry is listed")
            .clone();
        assert_eq!(entry["author_forked"], true);
        assert!(ok(&node.home, &["show", entry["id"].as_str().expect("id")]).contains("fork"));
    }
    assert!(ok(&b.home, &["status"]).contains("signed two different entries"));
}

#[test]
fn a_retraction_removes_the_body_everywhere_including_a_node_that_was_offline() {
    let root = tempfile::tempdir().expect("temp dir");
    let b = Node::start(&Node::init(root.path(), "B"), &["--no-kademlia"]);
    let a = Node::start(
        &Node::init(root.path(), "A"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    let c_home = Node::init(root.path(), "C");
    let mut c = Node::start(&c_home, &["--no-kademlia", "--peer", &b.address()]);
    wait_for("A and C to connect to B", || {
        b.connected_to(&a.peer_id()) && b.connected_to(&c.peer_id())
    });
    let id = ok(
        &a.home,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Named a participant by mistake",
            "--body",
            "The kumquat incident details.",
        ],
    )
    .trim()
    .to_string();
    wait_for("every node to hold the entry", || b.has(&id) && c.has(&id));
    assert!(c.stop().success());

    // B refuses to retract someone else's entry; A retracts its own.
    let refused = cairn(&b.home, &["retract", &id, "--reason", "not mine"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only its author"));
    ok(
        &a.home,
        &["retract", &id, "--reason", "It named a participant."],
    );

    let retracted = |home: &std::path::Path| {
        let output = cairn(home, &["--json", "show", &id]);
        let Ok(shown) = serde_json::from_slice::<serde_json::Value>(&output.stdout) else {
            return false; // Not held yet.
        };
        shown["retracted"] == "It named a participant."
            && shown["body"] == ""
            && shown["title"] == ""
    };
    wait_for("A and B to drop the body", || {
        retracted(&a.home) && retracted(&b.home)
    });
    wait_for("B's search to forget the text", || {
        json(&b.home, &["search", "kumquat"])
            .as_array()
            .is_some_and(Vec::is_empty)
    });

    // C was offline: it learns of the retraction by sync when it returns.
    let c = Node::start(&c_home, &["--no-kademlia", "--peer", &b.address()]);
    wait_for("C to drop the body after catching up", || {
        retracted(&c.home)
    });
    assert!(
        common::plain(&ok(&c.home, &["list"]))
            .contains("retracted by the author: It named a participant.")
    );

    // A new node gets the header without its body, plus the retraction, and blocks nobody.
    let d = Node::start(
        &Node::init(root.path(), "D"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    wait_for("D to hold the retracted entry", || retracted(&d.home));
    assert!(
        d.status()["blocked_peers"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "serving a retracted entry is not misbehaviour"
    );
    assert!(d.connected_to(&b.peer_id()));
}

#[test]
fn a_revoked_members_later_entry_is_refused_by_every_peer() {
    let root = tempfile::tempdir().expect("temp dir");
    let a_home = Node::init(root.path(), "A");
    ok(&a_home, &["member", "add", "Sam Example"]);
    let first = ok(
        &a_home,
        &[
            "publish",
            "--as",
            "Sam Example",
            "--kind",
            "learning",
            "--title",
            "Sam's first",
        ],
    )
    .trim()
    .to_string();
    // Sam's own copy of the keys (say, a laptop), holding Sam's entry number 1.
    let sams_laptop = root.path().join("sams-laptop");
    copy_dir(&a_home, &sams_laptop);

    let b = Node::start(&Node::init(root.path(), "B"), &["--no-kademlia"]);
    let a = Node::start(&a_home, &["--no-kademlia", "--peer", &b.address()]);
    let c = Node::start(
        &Node::init(root.path(), "C"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    wait_for("Sam's first entry to reach C", || c.has(&first));
    let members = json(&a.home, &["member", "list"]);
    assert_eq!(members[0]["name"], "Sam Example");
    assert!(members[0]["revoked_after"].is_null());

    ok(
        &a.home,
        &[
            "member",
            "revoke",
            "Sam Example",
            "--reason",
            "Left the charity",
        ],
    );
    assert_eq!(json(&a.home, &["member", "list"])[0]["revoked_after"], 1);
    let former = |node: &Node| json(&node.home, &["show", &first])["former_member"] == true;
    wait_for("every node to learn of the revocation", || {
        former(&a) && former(&b) && former(&c)
    });

    // Sam signs entry number 2 afterwards and tries to share it through C.
    let later = ok(
        &sams_laptop,
        &[
            "publish",
            "--as",
            "Sam Example",
            "--kind",
            "failure",
            "--title",
            "After leaving",
        ],
    )
    .trim()
    .to_string();
    let _ = std::fs::remove_file(sams_laptop.join("keys/node.key"));
    let _ = std::fs::remove_file(sams_laptop.join("node-state.json"));
    let laptop = Node::start(&sams_laptop, &["--no-kademlia", "--peer", &c.address()]);
    wait_for("the laptop to connect to C", || {
        laptop.connected_to(&c.peer_id())
    });
    wait_for("C to finish a sync with the laptop", || {
        c.status()["connected_peers"]
            .as_array()
            .is_some_and(|peers| {
                peers.iter().any(|peer| {
                    peer["peer_id"] == laptop.peer_id().as_str() && peer["last_sync"]["ok"] == true
                })
            })
    });
    ok(&a.home, &["sync"]);
    ok(&b.home, &["sync"]);
    assert!(
        c.status()["blocked_peers"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "sending a revoked member's entry is not misbehaviour: the sender may not know yet"
    );
    for node in [&a, &b, &c] {
        assert!(
            !node.has(&later),
            "{} holds the revoked member's later entry",
            node.home.display()
        );
        assert!(
            node.has(&first),
            "the entry from before the revocation stays"
        );
    }
    // Publishing as Sam from the organisation's own node is refused too, with a reason.
    let refused = cairn(
        &a.home,
        &[
            "publish",
            "--as",
            "Sam Example",
            "--kind",
            "learning",
            "--title",
            "x",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("removed by their organisation"));
}

#[test]
fn a_block_purges_an_organisations_entries_and_they_stay_purged_across_syncs() {
    let root = tempfile::tempdir().expect("temp dir");
    let b = Node::start(&Node::init(root.path(), "Hub"), &["--no-kademlia"]);
    let x = Node::start(
        &Node::init(root.path(), "Spam Org"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    let a = Node::start(
        &Node::init(root.path(), "Careful Trust"),
        &["--no-kademlia", "--peer", &b.address()],
    );
    wait_for("X and A to connect to B", || {
        b.connected_to(&x.peer_id()) && b.connected_to(&a.peer_id())
    });
    let spam = publish_many(&x, 5, "Spam");
    let kept = a.publish("Careful Trust's own entry");
    wait_for("X's entries to reach A", || spam.iter().all(|id| a.has(id)));

    let blocked = json(&a.home, &["block", "spam org", "--reason", "Off topic"]);
    // The five and the organisation's inception.
    assert_eq!(blocked["removed"], 6);
    assert_eq!(blocked["blocked"][0]["reason"], "Off topic");
    assert!(
        spam.iter().all(|id| !a.has(id)),
        "the block removed every entry"
    );
    assert!(a.has(&kept));

    // X keeps publishing; B relays; A refuses, and syncs never bring anything back.
    let more = x.publish("Spam after the block");
    wait_for("B to hold X's new entry", || b.has(&more));
    for round in 0..3 {
        let synced = json(&a.home, &["sync"]);
        let from_b = synced
            .as_array()
            .expect("records")
            .iter()
            .find(|record| record["peer_id"] == b.peer_id().as_str())
            .expect("a sync with B")
            .clone();
        assert_eq!(from_b["ok"], true, "round {round}: {from_b}");
        if round > 0 {
            assert_eq!(
                from_b["fetched"], 0,
                "refused entries are not fetched again: {from_b}"
            );
        }
    }
    assert!(!a.has(&more) && spam.iter().all(|id| !a.has(id)));
    assert!(
        a.status()["blocked_peers"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "relaying a blocked organisation's entries is not misbehaviour"
    );

    // Lifting the block lets them back in.
    ok(&a.home, &["unblock", "spam org"]);
    ok(&a.home, &["sync"]);
    wait_for("X's entries to return after unblocking", || {
        a.has(&more) && spam.iter().all(|id| a.has(id))
    });
}

#[test]
fn a_command_waits_for_a_node_that_is_starting() {
    use std::io::BufRead;
    let root = tempfile::tempdir().expect("temp dir");
    let home = Node::init(root.path(), "Early riser");
    let id = ok(
        &home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Before the node",
        ],
    )
    .trim()
    .to_string();
    // Something holds the store and offers no API yet, as a node does while it starts.
    let held = cairn_store::Store::open(&home.join("store"), cairn_store::Config::default())
        .expect("store");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--home")
        .arg(&home)
        .args(["--json", "list"])
        .env_remove("CAIRN_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cairn runs");
    let mut errors = std::io::BufReader::new(command.stderr.take().expect("stderr"));
    let mut said = String::new();
    errors.read_line(&mut said).expect("read stderr");
    assert!(
        said.contains("waiting for the node that is starting"),
        "the command said {said:?}"
    );
    // The node starts (it waits for the store too), and the store comes free.
    let node = Node::spawn(&home, &[]);
    drop(held);
    let output = command.wait_with_output().expect("the command ends");
    let mut rest = String::new();
    errors.read_to_string(&mut rest).expect("read stderr");
    assert!(output.status.success(), "the command failed: {rest}");
    let listed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON from the command");
    assert_eq!(listed[0]["id"], id.as_str());
    node.wait_ready();
    assert!(node.has(&id));
}

#[test]
fn search_through_the_node_finds_an_entry_as_soon_as_it_is_published() {
    let root = tempfile::tempdir().expect("temp dir");
    let home = Node::init(root.path(), "Quick finder");
    let _node = Node::start(&home, &[]);
    for round in 0..5 {
        let word = format!("zygomorphic{round}");
        let id = ok(
            &home,
            &[
                "publish",
                "--kind",
                "learning",
                "--title",
                &format!("A {word} rota"),
            ],
        );
        // No waiting: the node acknowledged the entry, so search must see it.
        let found = json(&home, &["search", &word]);
        assert_eq!(
            found[0]["id"],
            id.trim(),
            "round {round}: search did not find the entry just published"
        );
    }
}
