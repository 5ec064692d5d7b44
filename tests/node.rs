//! Black-box tests of `cairn node`: real daemons on loopback (port 0, mDNS off, separate
//! homes), driven through the real CLI, plus a misbehaving libp2p peer built here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn cairn(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CAIRN_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("the cairn binary runs")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let output = cairn(home, args);
    assert!(
        output.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(home, &all)).expect("JSON output")
}

/// Waits for a condition, polling; panics with `what` after the deadline.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `cairn node` process in its own home; stopped with SIGTERM when dropped.
struct Node {
    home: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn init(root: &Path, name: &str) -> PathBuf {
        let home = root.join(name);
        ok(&home, &["init", "--org", name]);
        home
    }

    fn start(home: &Path, extra: &[&str]) -> Self {
        let _ = std::fs::remove_file(home.join("api.address"));
        let log = std::fs::File::create(home.with_extension("log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--home")
            .arg(home)
            .args([
                "node",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
                "--no-mdns",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        let node = Self {
            home: home.to_path_buf(),
            child: Some(child),
        };
        wait_for("the node's API", || {
            home.join("api.address").exists()
                && cairn(home, &["--json", "status"]).status.success()
                && node.status()["listen_addrs"]
                    .as_array()
                    .is_some_and(|addrs| !addrs.is_empty())
        });
        node
    }

    fn status(&self) -> Value {
        json(&self.home, &["status"])
    }

    /// A dialable address of this node, with its peer id.
    fn address(&self) -> String {
        let status = self.status();
        format!(
            "{}/p2p/{}",
            status["listen_addrs"][0].as_str().expect("address"),
            status["peer_id"].as_str().expect("peer id")
        )
    }

    fn peer_id(&self) -> String {
        self.status()["peer_id"]
            .as_str()
            .expect("peer id")
            .to_string()
    }

    fn has(&self, id: &str) -> bool {
        json(&self.home, &["list", "--limit", "1000"])
            .as_array()
            .expect("array")
            .iter()
            .any(|entry| entry["id"] == id)
    }

    fn connected_to(&self, peer: &str) -> bool {
        self.status()["connected_peers"]
            .as_array()
            .expect("array")
            .iter()
            .any(|p| p["peer_id"] == peer)
    }

    fn publish(&self, title: &str) -> String {
        ok(
            &self.home,
            &["publish", "--kind", "learning", "--title", title],
        )
        .trim()
        .to_string()
    }

    /// Stops the node with SIGTERM and returns its exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("the node did not stop within {DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn an_entry_published_at_a_reaches_c_through_b() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (
        Node::init(dir.path(), "a"),
        Node::init(dir.path(), "b"),
        Node::init(dir.path(), "c"),
    );
    let a = Node::start(&a, &[]);
    let b = Node::start(&b, &["--peer", &a.address()]);
    let c = Node::start(&c, &["--peer", &b.address()]);
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
    assert!(ticket.starts_with("cairn-invite1-"));
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
