//! The one harness the black-box tests share: running the real `cairn` binary in a home and
//! waiting for conditions with a generous deadline (never a fixed sleep).

#![allow(dead_code)] // Each test file uses a different part.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod gossip;
pub mod netns;

/// How long any condition may take on a busy two-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `cairn --home HOME ARGS...`.
pub fn cairn(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CAIRN_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("the cairn binary runs")
}

/// Runs a command that must succeed and returns its standard output.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let output = cairn(home, args);
    assert!(
        output.status.success(),
        "cairn {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Text output without the bidirectional isolates the CLI puts around each field that came
/// from an entry, for comparing with plain text.
pub fn plain(output: &str) -> String {
    output.replace(['\u{2068}', '\u{2069}'], "")
}

/// Runs a command with `--json` and parses its output.
pub fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(home, &all)).expect("valid JSON")
}

/// Polls a condition until it holds; panics naming `what` after `deadline`.
pub fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// [`wait_until`] with the standard deadline.
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    wait_until(what, DEADLINE, condition);
}

/// How many key events the home's store (or its running node) holds.
pub fn key_event_count(home: &Path) -> u64 {
    json(home, &["list", "--kind", "key-event", "--limit", "100000"])
        .as_array()
        .expect("array")
        .len() as u64
}

/// The home's organisation id (64 hex digits).
pub fn org_id(home: &Path) -> String {
    json(home, &["whoami"])["org"]
        .as_str()
        .expect("an organisation id")
        .to_string()
}

/// Peak resident memory of a process (VmHWM), in MiB.
pub fn peak_memory_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .expect("VmHWM in kB");
    kib / 1024
}

/// One chain of `per_org` valid entries (bodies of about 1 kB, from a day ago) from each of
/// `orgs` fresh organisations nobody follows, as encoded frames.
pub fn stranger_chains(orgs: usize, per_org: usize) -> Vec<Vec<Vec<u8>>> {
    let start = cairn_core::Timestamp(cairn_core::Timestamp::now().0 - 24 * 3_600_000);
    (0..orgs)
        .map(|index| {
            let seed = u8::try_from(index).expect("at most 150 organisations");
            cairn_core::testkit::Author::from_seeds(
                seed + 1,
                seed + 101,
                &format!("Flood {index}"),
                "Flooder",
            )
            .chain(per_org, start, 1_000)
            .expect("chain")
            .iter()
            .map(cairn_core::Entry::encode)
            .collect()
        })
        .collect()
}

/// Stores `frames` (all valid) into the home's store, no node running, as sync stores them:
/// batches without a flush each, one flush at the end. No budget for strangers applies.
pub fn store_frames(home: &Path, frames: &[Vec<u8>]) {
    let config = cairn_store::Config {
        budgets: cairn_store::Budgets::unlimited(),
        ..cairn_store::Config::default()
    };
    let store = cairn_store::Store::open(&home.join("store"), config).expect("store");
    for chunk in frames.chunks(1_000) {
        for result in store
            .insert_batch_unflushed(chunk, cairn_core::Timestamp::now())
            .expect("insert")
        {
            result.expect("valid entry");
        }
    }
    store.flush().expect("flush");
}

/// Sets `key = value` in the home's config file, where the key is already written.
pub fn set_config(home: &Path, key: &str, value: &str) {
    let path = home.join("config.toml");
    let mut config = std::fs::read_to_string(&path).expect("config");
    let line = format!("\n{key} = ");
    let start = config.find(&line).expect("the key in the config") + 1;
    let end = start + config[start..].find('\n').expect("line end");
    config.replace_range(start..end, &format!("{key} = {value}"));
    std::fs::write(&path, config).expect("config written");
}

/// Lifts the home's budgets for strangers (organisations it does not follow), for tests
/// that sync many entries from organisations nobody follows; `tests/abuse.rs` tests the
/// budgets themselves.
pub fn lift_stranger_budgets(home: &Path) {
    for key in ["stranger_entries", "stranger_kb", "strangers_mb"] {
        set_config(home, key, "1000000000");
    }
}

/// A `cairn node` process in its own home; stopped with SIGTERM when dropped.
pub struct Node {
    pub home: PathBuf,
    pub child: Option<Child>,
}

impl Node {
    pub fn init(root: &Path, name: &str) -> PathBuf {
        let home = root.join(name);
        ok(&home, &["init", "--org", name]);
        home
    }

    pub fn start(home: &Path, extra: &[&str]) -> Self {
        let node = Self::spawn(home, extra);
        node.wait_ready();
        node
    }

    /// Starts the node process without waiting for it to be ready.
    pub fn spawn(home: &Path, extra: &[&str]) -> Self {
        Self::spawn_with_env(home, extra, &[])
    }

    /// [`Node::spawn`] with extra environment variables for the node process.
    pub fn spawn_with_env(home: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
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
                "--no-upnp",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            // The node sets its own (see `the_node_limits_glibc_to_two_malloc_arenas`).
            .env_remove("MALLOC_ARENA_MAX")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        Self {
            home: home.to_path_buf(),
            child: Some(child),
        }
    }

    /// Waits until the node answers on its API and listens for peers.
    pub fn wait_ready(&self) {
        let home = &self.home;
        wait_for("the node's API", || {
            home.join("api.address").exists()
                && cairn(home, &["--json", "status"]).status.success()
                && self.status()["listen_addrs"]
                    .as_array()
                    .is_some_and(|addrs| !addrs.is_empty())
        });
    }

    pub fn status(&self) -> Value {
        json(&self.home, &["status"])
    }

    /// A dialable address of this node, with its peer id.
    pub fn address(&self) -> String {
        let status = self.status();
        format!(
            "{}/p2p/{}",
            status["listen_addrs"][0].as_str().expect("address"),
            status["peer_id"].as_str().expect("peer id")
        )
    }

    pub fn peer_id(&self) -> String {
        self.status()["peer_id"]
            .as_str()
            .expect("peer id")
            .to_string()
    }

    /// How many entries the node holds besides key events (each organisation's inception and
    /// rotations, which every node collects whatever it joined).
    pub fn entry_count(&self) -> u64 {
        let held = self.status()["entries"].as_u64().expect("entries");
        held.saturating_sub(key_event_count(&self.home))
    }

    pub fn has(&self, id: &str) -> bool {
        json(&self.home, &["list", "--limit", "1000"])
            .as_array()
            .expect("array")
            .iter()
            .any(|entry| entry["id"] == id)
    }

    pub fn connected_to(&self, peer: &str) -> bool {
        self.status()["connected_peers"]
            .as_array()
            .expect("array")
            .iter()
            .any(|p| p["peer_id"] == peer)
    }

    pub fn publish(&self, title: &str) -> String {
        ok(
            &self.home,
            &["publish", "--kind", "learning", "--title", title],
        )
        .trim()
        .to_string()
    }

    /// Stops the node with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
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

/// How much of a node's log a failing test prints.
const LOG_TAIL_LINES: usize = 60;

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        show_log_if_failing(&self.home);
    }
}

/// A failing test shows what each of its nodes was doing (the end of `HOME.log`), so a
/// failure on CI explains itself without a rerun.
pub fn show_log_if_failing(home: &Path) {
    if std::thread::panicking() {
        let path = home.with_extension("log");
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        eprintln!("--- last {} lines of {} ---", tail.len(), path.display());
        for line in tail {
            eprintln!("{line}");
        }
    }
}
