//! The one harness the black-box tests share: running the real `cairn` binary in a home and
//! waiting for conditions with a generous deadline (never a fixed sleep).

#![allow(dead_code)] // Each test file uses a different part.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
