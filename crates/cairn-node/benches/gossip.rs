//! Gossip latency and fan-out between real nodes on loopback (real libp2p TCP transports, real
//! sled stores), each figure beside a limit measured in the same run:
//!
//! 1. publish → stored at a second node, p50 and p99, beside the loopback TCP round trip;
//!    targets p50 <= 2 ms, p99 <= 10 ms;
//! 2. eight nodes in a mesh at 100 entries/s: delivery ratio (target 100%), p99 latency, and
//!    copies of each entry received per node (target <= 3).
//!
//! Run with `cargo bench -p cairn-node --bench gossip`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::testkit::{Author, story};
use cairn_core::{EntryId, Kind};
use cairn_net::{Keypair, Multiaddr};
use cairn_node::{Files, Running};
use cairn_store::Store;

const PAIR_ENTRIES: usize = 300;
const MESH_NODES: usize = 8;
const MESH_LINKS: usize = 3;
const MESH_RATE: u64 = 100;
const MESH_ENTRIES: usize = 1_000;
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let rtt = loopback_round_trip();
    println!("loopback TCP round trip: p50 {:.3} ms", ms(rtt));
    runtime.block_on(pair(dir.path(), rtt));
    runtime.block_on(mesh(dir.path()));
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Median of 2,000 one-byte round trips over a loopback TCP connection.
fn loopback_round_trip() -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).expect("nodelay");
        let mut byte = [0u8; 1];
        while stream.read_exact(&mut byte).is_ok() {
            if stream.write_all(&byte).is_err() {
                break;
            }
        }
    });
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut samples = Vec::with_capacity(2_000);
    let mut byte = [7u8; 1];
    for _ in 0..2_000 {
        let started = Instant::now();
        stream.write_all(&byte).expect("write");
        stream.read_exact(&mut byte).expect("read");
        samples.push(started.elapsed());
    }
    drop(stream);
    let _ = echo.join();
    samples.sort();
    percentile(&samples, 0.5)
}

async fn start_node(dir: &Path, index: usize, peers: Vec<Multiaddr>) -> Running {
    let seed = u8::try_from(index).expect("few nodes");
    let author = Author::from_seeds(
        100 + seed,
        200 - seed,
        &format!("Bench org {index}"),
        "Bench member",
    );
    let home = dir.join(format!("node-{index}"));
    std::fs::create_dir_all(&home).expect("home");
    let store = Arc::new(
        Store::create(
            &home.join("store"),
            cairn_store::Config {
                // Every bench node takes every other's entries, as followed ones would be.
                budgets: cairn_store::Budgets::unlimited(),
                ..cairn_store::Config::default()
            },
        )
        .expect("store"),
    );
    let mut net = cairn_net::Config::new(Keypair::generate_ed25519());
    net.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    net.known_peers = peers;
    let config = cairn_node::Config {
        store,
        member_key: author.key,
        credential: author.credential,
        net,
        api_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        allow_remote_api: false,
        web: None,
        default_spaces: vec!["commons".into()],
        sync_interval: Duration::from_secs(3_600),
        files: Files::in_home(&home),
    };
    cairn_node::start(config).await.expect("node starts")
}

async fn address_of(node: &Running) -> Multiaddr {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let status = node.shared.client().status().await.expect("status");
        if let Some(address) = status.listen_addrs.first() {
            return address
                .clone()
                .with(cairn_net::multiaddr::Protocol::P2p(status.peer_id));
        }
        assert!(Instant::now() < deadline, "node never listened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every node sees at least `peers` connected peers in the space.
async fn wait_for_mesh(nodes: &[Running], peers: usize) {
    let deadline = Instant::now() + DEADLINE;
    for node in nodes {
        loop {
            let status = node.shared.client().status().await.expect("status");
            let in_space = status
                .connected
                .iter()
                .filter(|peer| peer.spaces.iter().any(|s| s == "commons"))
                .count();
            if in_space >= peers {
                break;
            }
            assert!(Instant::now() < deadline, "the mesh did not form");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Let gossipsub graft its mesh on a couple of heartbeats.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
}

async fn publish(node: &Running, index: usize) -> EntryId {
    let new = cairn_node::service::NewStory {
        kind: Kind::LEARNING,
        story: story(index, 1_000),
        spaces: vec!["commons".into()],
        links: Vec::new(),
    };
    let (entry, _) = node
        .shared
        .write(move |service| service.publish(new, &cairn_node::PublishAs::Me))
        .await
        .expect("publish");
    entry.id()
}

async fn pair(dir: &Path, rtt: Duration) {
    let a = start_node(dir, 0, Vec::new()).await;
    let b = start_node(dir, 1, vec![address_of(&a).await]).await;
    let nodes = vec![a, b];
    wait_for_mesh(&nodes, 1).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut arrivals = b.shared.watch_stored();
    let mut samples = Vec::with_capacity(PAIR_ENTRIES);
    for index in 0..PAIR_ENTRIES {
        let started = Instant::now();
        let id = publish(a, index).await;
        loop {
            let arrived = tokio::time::timeout(DEADLINE, arrivals.recv())
                .await
                .expect("entry arrives")
                .expect("watch");
            if arrived == id {
                break;
            }
        }
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    println!("\npublish at A -> stored at B, {PAIR_ENTRIES} entries of ~1.3 KB, one at a time:");
    println!(
        "  p50 {:.3} ms ({:.1}x the loopback round trip; target <= 2 ms: {})",
        ms(p50),
        ms(p50) / ms(rtt),
        pass(ms(p50) <= 2.0)
    );
    println!(
        "  p99 {:.3} ms (target <= 10 ms: {})",
        ms(p99),
        pass(ms(p99) <= 10.0)
    );
    for node in nodes {
        node.stop().await.expect("stop");
    }
}

/// Messages received on the wire before duplicate filtering, from gossipsub's counters.
async fn received_unfiltered(node: &Running) -> u64 {
    let text = node.shared.client().metrics().await.expect("metrics");
    text.lines()
        .filter(|line| line.starts_with("gossipsub_topic_msg_recv_counts_unfiltered"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn mesh(dir: &Path) {
    let mut nodes = Vec::with_capacity(MESH_NODES);
    let mut addresses = Vec::with_capacity(MESH_NODES);
    for index in 0..MESH_NODES {
        // Each node dials the previous MESH_LINKS nodes: a ring with chords, about six
        // neighbours each once every node has started.
        let peers = addresses.iter().rev().take(MESH_LINKS).cloned().collect();
        let node = start_node(dir, 10 + index, peers).await;
        addresses.push(address_of(&node).await);
        nodes.push(node);
    }
    // Close the ring: the first nodes dial the last ones.
    for index in 0..MESH_LINKS.min(MESH_NODES) {
        let target = addresses[MESH_NODES - 1 - index].clone();
        nodes[index]
            .shared
            .client()
            .dial(target)
            .await
            .expect("dial");
    }
    wait_for_mesh(&nodes, MESH_LINKS).await;
    let before: Vec<u64> = futures_join(&nodes).await;

    let mut watchers: Vec<_> = nodes
        .iter()
        .map(|node| node.shared.watch_stored())
        .collect();
    let collectors: Vec<_> = watchers
        .drain(..)
        .map(|mut watch| {
            tokio::spawn(async move {
                let mut arrivals = HashMap::new();
                while let Ok(Ok(id)) =
                    tokio::time::timeout(Duration::from_secs(5), watch.recv()).await
                {
                    arrivals.entry(id).or_insert_with(Instant::now);
                }
                arrivals
            })
        })
        .collect();

    let interval = Duration::from_micros(1_000_000 / MESH_RATE);
    let mut published: Vec<(EntryId, usize, Instant)> = Vec::with_capacity(MESH_ENTRIES);
    let mut tick = tokio::time::interval(interval);
    let started = Instant::now();
    for index in 0..MESH_ENTRIES {
        tick.tick().await;
        let origin = index % MESH_NODES;
        let at = Instant::now();
        let id = publish(&nodes[origin], 10_000 + index).await;
        published.push((id, origin, at));
    }
    let rate = MESH_ENTRIES as f64 / started.elapsed().as_secs_f64();

    let mut arrivals = Vec::with_capacity(MESH_NODES);
    for collector in collectors {
        arrivals.push(collector.await.expect("collector"));
    }
    let after: Vec<u64> = futures_join(&nodes).await;

    let mut latencies = Vec::new();
    let mut delivered = 0usize;
    for (id, origin, at) in &published {
        for (node, seen) in arrivals.iter().enumerate() {
            if node == *origin {
                continue;
            }
            if let Some(arrived) = seen.get(id) {
                delivered += 1;
                latencies.push(arrived.saturating_duration_since(*at));
            }
        }
    }
    latencies.sort();
    let expected = MESH_ENTRIES * (MESH_NODES - 1);
    let ratio = delivered as f64 / expected as f64;
    let received: u64 = before.iter().zip(&after).map(|(b, a)| a - b).sum();
    // Each node receives every entry it did not publish itself.
    let copies = received as f64 / expected as f64;
    println!(
        "
{MESH_NODES} nodes, each linked to about {} others, {MESH_ENTRIES} entries at {rate:.0}/s:",
        MESH_LINKS * 2
    );
    println!(
        "  delivered {delivered} of {expected} ({:.2}%; target 100%: {})",
        ratio * 100.0,
        pass(delivered == expected)
    );
    if !latencies.is_empty() {
        println!(
            "  latency p50 {:.2} ms, p99 {:.2} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99))
        );
    }
    println!(
        "  copies received per node per entry: {copies:.2} (target <= 3: {})",
        pass(copies <= 3.0)
    );
    for node in nodes {
        node.stop().await.expect("stop");
    }
}

async fn futures_join(nodes: &[Running]) -> Vec<u64> {
    let mut counts = Vec::with_capacity(nodes.len());
    for node in nodes {
        counts.push(received_unfiltered(node).await);
    }
    counts
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
