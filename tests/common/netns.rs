//! Running real `cairn` processes inside network namespaces (needs root): the commands, and a
//! node in a namespace that is killed when dropped. Each test builds its own network.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// Runs a program to completion.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{program} {args:?}: {err}"))
}

/// Runs `ip ARGS...`, which must succeed.
pub fn ip(args: &[&str]) {
    let output = run("ip", args);
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates a namespace, or says why it cannot be created here (not root, no `ip`). The
/// caller skips its test with that reason, except under CI, where it must run.
pub fn try_add_namespace(name: &str) -> Result<(), String> {
    let probe = Command::new("ip")
        .args(["netns", "add", name])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run ip: {err}"))?;
    if probe.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&probe.stderr).trim().to_string())
    }
}

/// Says that a namespace test cannot run here; under CI that is a failure.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run {test}, but network namespaces failed: {reason}"
    );
    eprintln!(
        "SKIPPED {test}: cannot create network namespaces here ({reason}); run as root to include it"
    );
}

/// `cairn --home HOME ARGS...` run inside namespace `ns`.
pub fn cairn(ns: &str, home: &Path, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", ns, env!("CARGO_BIN_EXE_cairn"), "--home"];
    all.push(home.to_str().expect("utf-8 path"));
    all.extend_from_slice(args);
    run("ip", &all)
}

/// A `cairn node` process in a namespace, killed when dropped.
pub struct NsNode {
    pub ns: String,
    pub home: PathBuf,
    child: Option<Child>,
}

impl NsNode {
    /// Starts `cairn node ARGS...` in `ns`, its log beside the home (`HOME.log`).
    pub fn spawn(ns: &str, home: &Path, args: &[&str]) -> Self {
        let mut all = vec!["netns", "exec", ns, env!("CARGO_BIN_EXE_cairn"), "--home"];
        all.push(home.to_str().expect("utf-8 path"));
        all.push("node");
        all.extend_from_slice(args);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.with_extension("log"))
            .expect("log file");
        let child = Command::new("ip")
            .args(&all)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node");
        Self {
            ns: ns.to_string(),
            home: home.to_path_buf(),
            child: Some(child),
        }
    }

    /// `cairn --json status` while the node runs.
    pub fn status(&self) -> Option<Value> {
        let output = cairn(&self.ns, &self.home, &["--json", "status"]);
        serde_json::from_slice::<Value>(&output.stdout)
            .ok()
            .filter(|status| status["running"] == true)
    }

    /// Runs `cairn ARGS...` for this node, which must succeed; returns its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = cairn(&self.ns, &self.home, args);
        assert!(
            output.status.success(),
            "cairn {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Publishes an entry; returns its id.
    pub fn publish(&self, title: &str) -> String {
        self.ok(&["publish", "--kind", "failure", "--title", title])
            .trim()
            .to_string()
    }

    /// Whether the node holds entry `id`.
    pub fn has(&self, id: &str) -> bool {
        cairn(&self.ns, &self.home, &["show", id]).status.success()
    }

    /// The node's process id (`ip netns exec` becomes the node).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the node's process has used so far: CPU time (ms) and bytes written through
    /// system calls (its sockets, mostly; what it receives by `recvmsg` is not counted).
    pub fn usage(&self) -> Usage {
        let pid = self.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 14th and 15th fields, in clock ticks (100 a second on Linux).
        let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("proc io");
        let field = |name: &str| -> u64 {
            io.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().parse().ok())
                .expect("proc io field")
        };
        Usage {
            cpu_ms: ticks * 10,
            written_bytes: field("wchar:"),
        }
    }

    /// Kills the node (as a power cut would) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        self.kill();
        super::show_log_if_failing(&self.home);
    }
}

/// What a process used, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub cpu_ms: u64,
    pub written_bytes: u64,
}
