//! Crash safety: a child publishes continuously through the real binary and is killed with
//! SIGKILL at random moments; every entry it acknowledged (printed its id) must be present,
//! valid and listed when the store is reopened, and the author's chain must stay whole.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_core::{EntryId, Timestamp, Verifier};
use cairn_store::{Config, Filter, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROUNDS: usize = 40;
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn acknowledged_entries_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let cairn = env!("CARGO_BIN_EXE_cairn");
    let status = Command::new(cairn)
        .args([
            "--home",
            home.to_str().expect("path"),
            "init",
            "--org",
            "Crash Test Org",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(status.success());

    let mut rng = StdRng::seed_from_u64(0x5EED);
    let mut acknowledged: Vec<EntryId> = Vec::new();
    for round in 0..ROUNDS {
        // A shell loop of publishes in its own process group, so one kill stops whichever
        // publish is running, at whatever step it has reached.
        let script = format!(
            "i=0; while :; do i=$((i+1)); \"{cairn}\" --home \"{}\" publish --kind failure --title \"round {round} entry $i\" --summary 'killed at random' || exit 1; done",
            home.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn publisher");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = mpsc::sync_channel::<String>(1024);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the loop to be publishing, then let it run a random while before the kill.
        let started = Instant::now();
        let first = lines_rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("round {round}: no publish within {DEADLINE:?}"));
        let mut round_lines = vec![first];
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(0..400));
        while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            match lines_rx.recv_timeout(left) {
                Ok(line) => round_lines.push(line),
                Err(_) => break,
            }
        }
        let pgid = child.id().to_string();
        let killed = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status()
            .expect("kill");
        assert!(killed.success(), "round {round}: kill failed");
        child.wait().expect("reap");
        reader.join().expect("reader");
        round_lines.extend(lines_rx.try_iter());
        // Only whole ids count as acknowledged; a line cut by the kill does not.
        for line in round_lines {
            if let Ok(id) = line.parse::<EntryId>() {
                acknowledged.push(id);
            }
        }
        assert!(started.elapsed() < DEADLINE * 2);

        let store = Store::open(&home.join("store"), Config::default()).unwrap_or_else(|err| {
            panic!("round {round}: the store does not reopen after SIGKILL: {err}")
        });
        let verifier = Verifier::new();
        for id in &acknowledged {
            let entry = store
                .get(id)
                .unwrap_or_else(|err| panic!("round {round}: reading {id}: {err}"))
                .unwrap_or_else(|| panic!("round {round}: acknowledged entry {id} is missing"));
            verifier
                .verify(&entry, Timestamp::now())
                .unwrap_or_else(|err| panic!("round {round}: {id} invalid: {err}"));
        }
        let listed: HashSet<EntryId> = store
            .newest(&Filter::default())
            .map(|entry| entry.expect("listing reads").id())
            .collect();
        assert!(
            acknowledged.iter().all(|id| listed.contains(id)),
            "round {round}: an acknowledged entry is not listed"
        );
        assert!(
            store.wanted().expect("wanted").is_empty(),
            "round {round}: the chain has a gap"
        );
        let count = store.count().expect("count");
        let author = store
            .get(&acknowledged[0])
            .expect("get")
            .expect("present")
            .header()
            .author;
        let (head, _) = store.chain_head(&author).expect("head").expect("a chain");
        // Beside the chain, the store holds the organisation's inception.
        assert_eq!(
            head as usize + 1,
            count,
            "round {round}: seqs 1..={head} are all held"
        );
        assert!(
            store.forks(None).expect("forks").is_empty(),
            "round {round}: a crash made a fork"
        );
    }
    assert!(
        acknowledged.len() >= ROUNDS,
        "only {} entries were acknowledged",
        acknowledged.len()
    );
    println!(
        "{ROUNDS} SIGKILLs, {} acknowledged entries all present and valid",
        acknowledged.len()
    );
}
