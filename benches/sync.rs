//! Catch-up sync between real `cairn node` processes on loopback, each figure beside a limit
//! measured in the same run:
//!
//! (a) catch-up of k = 1,000 and 10,000 missing (newest) entries on top of n = 100,000 shared:
//!     reconciliation round trips (target <= 3), bytes on the wire against the missing entries'
//!     own size (target <= 1.1x plus reconciliation), and time against ingesting the same
//!     entries into a copy of the store locally (target <= 1.5x), the median of several
//!     rounds, each with fresh copies and its own local ingest (measured just before and
//!     just after its sync, the mean of the two);
//! (b) cold bootstrap of an empty node from a peer holding 100,000 entries: entries/s (target
//!     >= 25,000/s), beside the same entries stored locally into an empty store, and each
//!     node's peak memory (VmHWM; target <= 256 MB);
//! (c) the in-sync check at n = 100,000: one round trip, under 1 KB.
//!
//! Run with `cargo bench --bench sync`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod harness;

use cairn_core::Timestamp;
use cairn_core::testkit::{Author, EPOCH};
use cairn_store::{Config, Store};
use serde_json::Value;

const SHARED: usize = 100_000;
const AUTHORS: usize = 50;
const DEADLINE: Duration = Duration::from_secs(600);
/// Catch-up is measured this many times, each with fresh copies, and the median ratio
/// reported: a single run of a 100 ms exchange swings by half on a shared machine.
const ROUNDS: usize = 7;

fn main() {
    // The local-ingest limit runs in a process of its own (see `ingest_in_fresh_process`).
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, home, frames] = args.as_slice()
        && flag == LOCAL_INGEST
    {
        let frames = read_frames(Path::new(frames));
        let took = ingest(Path::new(home), &frames);
        println!("{}", took.as_micros());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    println!("generating {SHARED} shared + 10,000 newer entries...");
    let started = Instant::now();
    let (shared, newer) = entries(SHARED, 10_000);
    println!("  done in {:.1?}", started.elapsed());

    // The base: an initialised home holding the shared entries.
    let base = root.join("base");
    init(&base, "Base");
    ingest(&base, &shared);
    // A node that has been running has a current search index; build it before copying, so
    // no node below spends its start indexing the whole store.
    cairn(&base, &["reindex"]);

    // `--bootstrap-only` skips (a) and (c), and `--catch-up-only` skips (b): for profiling.
    let only = |flag: &str| args.iter().any(|arg| arg == flag);
    let catch_up_ks: &[usize] = if only("--bootstrap-only") {
        &[]
    } else {
        &[1_000, 10_000]
    };
    let mut in_sync = None;
    for &k in catch_up_ks {
        // The server: the shared entries and the k newest, indexed as if they had arrived live.
        let server_home = copy_home(&base, &root.join(format!("server-{k}")));
        ingest(&server_home, &newer[..k]);
        cairn(&server_home, &["reindex"]);
        let missing_bytes: usize = newer[..k].iter().map(Vec::len).sum();
        println!(
            "\n(a) catch-up of k = {k} newest entries on n = {SHARED} shared, {ROUNDS} rounds:"
        );
        let mut rounds = Vec::new();
        for round in 1..=ROUNDS {
            let home = |name: &str| root.join(format!("{name}-{k}-{round}"));
            let local_before = ingest_into_copy(&base, &home("reference"), &newer[..k]);
            let server = Node::start(&copy_home(&server_home, &home("server")), &[]);
            server.wait_until_settled();
            let client = Node::start(
                &copy_home(&base, &home("client")),
                &["--peer", &server.address()],
            );
            let record = client.wait_for_sync(SHARED + k);
            let millis = record["millis"].as_f64().expect("millis");
            if k == 10_000 && round == ROUNDS {
                // (c) Both now hold the same set: a fresh sync is the in-sync check.
                let again = client.sync_now();
                in_sync = Some((again["round_trips"].clone(), again["bytes"].clone()));
            }
            drop((client, server));
            for name in ["server", "client"] {
                std::fs::remove_dir_all(home(name)).expect("remove a node's copy");
            }
            let local_after = ingest_into_copy(&base, &home("reference"), &newer[..k]);
            let local = (local_before + local_after) / 2;
            let ratio = millis / local.as_secs_f64() / 1_000.0;
            println!(
                "  round {round}: sync {millis:.0} ms, local ingest {} ms (before {} ms, after {} ms), ratio {ratio:.2}",
                local.as_millis(),
                local_before.as_millis(),
                local_after.as_millis()
            );
            rounds.push((ratio, record));
        }
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (ratio, record) = &rounds[rounds.len() / 2];
        let bytes = record["bytes"].as_f64().expect("bytes");
        let reconcile = record["reconcile_round_trips"]
            .as_u64()
            .expect("round trips");
        println!(
            "  reconciliation round trips {reconcile} (target <= 3: {}), all round trips {}",
            pass(reconcile <= 3),
            record["round_trips"]
        );
        println!(
            "  bytes {:.0} KiB = {:.3}x the missing entries' {:.0} KiB (target <= 1.1x plus reconciliation: {})",
            bytes / 1024.0,
            bytes / missing_bytes as f64,
            missing_bytes as f64 / 1024.0,
            pass(bytes <= 1.1 * missing_bytes as f64 + 64.0 * 1024.0)
        );
        println!(
            "  time: median ratio {ratio:.2} to a local ingest of the same entries (target <= 1.5x: {})",
            pass(*ratio <= 1.5)
        );
        std::fs::remove_dir_all(&server_home).expect("remove the server's home");
    }
    if let Some((round_trips, bytes)) = in_sync {
        println!("\n(c) in-sync check at n = {}:", SHARED + 10_000);
        println!(
            "  {round_trips} round trip(s), {bytes} bytes (target 1 round trip under 1 KB: {})",
            pass(round_trips == 1 && bytes.as_u64().is_some_and(|b| b < 1_024))
        );
    }

    if only("--catch-up-only") {
        return;
    }
    // (b) Cold bootstrap, and the limit beside it: a fresh process storing the same entries
    // into an empty store of its own, with no node running.
    let reference = root.join("empty-reference");
    init(&reference, "Reference");
    let local = ingest_in_fresh_process(&reference, &shared);
    std::fs::remove_dir_all(&reference).expect("remove the reference home");
    let local_rate = SHARED as f64 / local.as_secs_f64();
    let server = Node::start(&base, &[]);
    server.wait_until_settled();
    let empty = root.join("empty");
    init(&empty, "Empty");
    let server_cpu = server.cpu_seconds();
    let client = Node::start(&empty, &["--peer", &server.address()]);
    let record = client.wait_for_sync(SHARED);
    let cpu_per_entry = |seconds: f64| seconds * 1e6 / SHARED as f64;
    let (client_cpu, server_cpu) = (
        cpu_per_entry(client.cpu_seconds()),
        cpu_per_entry(server.cpu_seconds() - server_cpu),
    );
    let rate = SHARED as f64 / (record["millis"].as_f64().expect("millis") / 1_000.0);
    println!("\n(b) cold bootstrap of an empty node from a peer holding {SHARED} entries:");
    println!(
        "  {rate:.0} entries/s (target >= 25,000/s: {}), streamed: {}",
        pass(rate >= 25_000.0),
        record["streamed"]
    );
    println!(
        "  the same entries stored locally into an empty store: {local_rate:.0} entries/s; \
         bootstrap / local = {:.2}",
        rate / local_rate
    );
    println!(
        "  CPU time per entry: bootstrapping node {client_cpu:.0} us, serving node {server_cpu:.0} us \
         (both on 2 cores: 25,000/s leaves 80 us for the two together)"
    );
    println!(
        "  peak memory: serving node {} MB, bootstrapping node {} MB (target <= 256 MB: {})",
        server.peak_mb(),
        client.peak_mb(),
        pass(server.peak_mb() <= 256 && client.peak_mb() <= 256)
    );
    println!(
        "  serving node {}; bootstrapping node {}",
        server.memory_report(),
        client.memory_report()
    );
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// `shared` entries then `newer` ones, ~1 KB each, from `AUTHORS` authors; as frames.
fn entries(shared: usize, newer: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let per_author = (shared + newer) / AUTHORS;
    let chains: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..AUTHORS)
            .map(|author| {
                scope.spawn(move || {
                    let seed = u8::try_from(author).expect("few authors");
                    let member =
                        Author::from_seeds(seed + 1, seed + 100, "Bench org", "Bench member");
                    member
                        .chain(per_author, EPOCH, 800)
                        .expect("chain")
                        .iter()
                        .map(|entry| entry.encode())
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .collect()
    });
    // The newest entries of each chain are the "newer" ones. Both sets are in the order sync
    // delivers them, (created, id), so the local-ingest limits store them in the same order
    // as the pulling node does.
    let cut = per_author - newer / AUTHORS;
    let shared = chains
        .iter()
        .flat_map(|chain| chain[..cut].iter().cloned())
        .collect();
    let newer = chains
        .iter()
        .flat_map(|chain| chain[cut..].iter().cloned())
        .collect();
    (in_sync_order(shared), in_sync_order(newer))
}

fn in_sync_order(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames.sort_by_cached_key(|frame| {
        let entry = cairn_core::Entry::decode(frame).expect("bench entries decode");
        (entry.header().created, entry.id())
    });
    frames
}

fn cairn(home: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("cairn runs");
    assert!(
        output.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A home whose node takes every organisation's entries (the bench's authors are strangers
/// to it, and a stranger's budget would stop the catch-up at 100 entries each).
fn init(home: &Path, name: &str) {
    cairn(home, &["init", "--org", name]);
    harness::lift_stranger_budgets(home);
}

const LOCAL_INGEST: &str = "--local-ingest";

/// The local-ingest limit for one catch-up round: `frames` stored into a fresh copy of `base`
/// at `reference` (removed afterwards). Each round measures it just before and just after its
/// sync and takes the mean, so the limit and the sync see the machine in the same state (its
/// speed drifts by a third within a minute).
fn ingest_into_copy(base: &Path, reference: &Path, frames: &[Vec<u8>]) -> Duration {
    let reference = copy_home(base, reference);
    let took = ingest_in_fresh_process(&reference, frames);
    std::fs::remove_dir_all(&reference).expect("remove the reference copy");
    took
}

/// The limit for catch-up time: the same entries ingested into a copy of the store by a
/// freshly started process, as the pulling node is, with the node's `MALLOC_ARENA_MAX`.
/// (Measured inside this process, whose heap is already large and faulted in from generating
/// the entries, the insert ran up to 1.5x faster than any new process could.)
fn ingest_in_fresh_process(home: &Path, frames: &[Vec<u8>]) -> Duration {
    let path = home.with_extension("frames");
    let mut bytes = Vec::new();
    for frame in frames {
        bytes.extend_from_slice(&u32::try_from(frame.len()).expect("small").to_be_bytes());
        bytes.extend_from_slice(frame);
    }
    std::fs::write(&path, bytes).expect("write frames");
    let output = Command::new(std::env::current_exe().expect("this benchmark"))
        .arg(LOCAL_INGEST)
        .arg(home)
        .arg(&path)
        .env("MALLOC_ARENA_MAX", "2")
        .output()
        .expect("local ingest runs");
    assert!(output.status.success(), "local ingest failed");
    let micros: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("microseconds");
    Duration::from_micros(micros)
}

fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("read frames");
    let mut frames = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    frames
}

/// Inserts frames into a home's store (no node running) and returns how long the inserts took.
fn ingest(home: &Path, frames: &[Vec<u8>]) -> Duration {
    let config = Config {
        budgets: cairn_store::Budgets::unlimited(),
        ..Config::default()
    };
    let store = Store::open(&home.join("store"), config).expect("store");
    // As warm as a running node's store (which reads these before going online).
    store.warm(&["commons".to_string()]).expect("warm");
    // As sync stores fetched entries: batches without a flush each, one flush at the end.
    let started = Instant::now();
    for chunk in frames.chunks(1_000) {
        let results = store
            .insert_batch_unflushed(chunk, Timestamp::now())
            .expect("insert");
        assert!(results.iter().all(Result::is_ok));
    }
    store.flush().expect("flush");
    started.elapsed()
}

fn copy_home(from: &Path, to: &Path) -> PathBuf {
    copy_dir(from, to);
    // A copy is a different organisation's node in all but its entries: give it its own keys.
    for file in ["keys/node.key", "node-state.json"] {
        let _ = std::fs::remove_file(to.join(file));
    }
    to.to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read dir") {
        let item = item.expect("entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy");
            // On disk before any node starts, so the kernel's writeback of these copies does
            // not land in a measurement.
            std::fs::File::open(&target)
                .and_then(|file| file.sync_all())
                .expect("sync");
        }
    }
}

struct Node {
    home: PathBuf,
    child: Child,
}

impl Node {
    fn start(home: &Path, extra: &[&str]) -> Self {
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
                "--sync-interval",
                "3600",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node");
        let node = Self {
            home: home.to_path_buf(),
            child,
        };
        node.wait(|status| {
            status["listen_addrs"]
                .as_array()
                .is_some_and(|addrs| !addrs.is_empty())
        });
        node
    }

    /// The node's status from its API, read directly: starting a `cairn status` process every
    /// poll would take CPU from the nodes being measured on these two cores.
    fn status(&self) -> Option<Value> {
        let address = std::fs::read_to_string(self.home.join("api.address")).ok()?;
        let token = std::fs::read_to_string(self.home.join("api.token")).ok()?;
        ureq::get(format!("http://{}/api/status", address.trim()))
            .header("Authorization", format!("Bearer {}", token.trim()))
            .call()
            .ok()?
            .body_mut()
            .read_json()
            .ok()
    }

    fn wait(&self, mut condition: impl FnMut(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(status) = self.status()
                && condition(&status)
            {
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "timed out");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn address(&self) -> String {
        let status = self.wait(|_| true);
        format!(
            "{}/p2p/{}",
            status["listen_addrs"][0].as_str().expect("address"),
            status["peer_id"].as_str().expect("peer")
        )
    }

    /// Waits until the node has finished its start-up work (its search index has caught up
    /// with its store), as a node that has been running a while would have.
    fn wait_until_settled(&self) {
        self.wait(|status| status["search_up_to_date"] == true);
    }

    /// Waits until the node holds `entries` and its sync has recorded; returns the record.
    fn wait_for_sync(&self, entries: usize) -> Value {
        let status = self.wait(|status| {
            status["entries"].as_u64() == Some(entries as u64)
                && status["connected_peers"][0]["last_sync"]["ok"] == true
        });
        status["connected_peers"][0]["last_sync"].clone()
    }

    fn sync_now(&self) -> Value {
        let text = cairn(&self.home, &["--json", "sync"]);
        let records: Value = serde_json::from_str(&text).expect("json");
        records[0].clone()
    }

    /// The process's peak, and what it holds now by kind (heap and other anonymous memory;
    /// mapped files such as the search index).
    fn memory_report(&self) -> String {
        self.proc_status()
            .lines()
            .filter(|line| {
                ["VmHWM", "RssAnon", "RssFile"]
                    .iter()
                    .any(|f| line.starts_with(f))
            })
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn peak_mb(&self) -> u64 {
        self.proc_status()
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    }

    /// CPU time the node's process has used so far, user and system, in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // The fields after the command name (which is in parentheses and may hold spaces);
        // utime and stime are the 14th and 15th fields, in clock ticks of 1/100 s.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ticks: u64 = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|field| field.parse::<u64>().ok())
            .sum();
        ticks as f64 / 100.0
    }

    /// The kernel's `/proc/PID/status` for the node's process (empty once it has gone).
    fn proc_status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
