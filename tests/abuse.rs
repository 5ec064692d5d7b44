//! A node under abuse from strangers, with real node processes and real libp2p clients on
//! loopback: a flood of valid entries from fresh identities is held to the budgets while a
//! followed organisation's entry still arrives; a tampered copy sent first does not shadow
//! the real entry; idle sockets and throwaway identities from one address or from ten do not
//! keep an honest newcomer or a known peer out.
//!
//! Loopback is all of 127.0.0.0/8 on Linux, so clients bound to 127.0.0.2 … 127.0.0.12 come
//! from distinct addresses without network namespaces or root.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use cairn_core::Timestamp;
use cairn_core::testkit::Author;
use cairn_store::{Budgets, Config, Store};
use common::{DEADLINE, Node, json, ok, set_config, wait_for};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};

const FLOOD_ORGS: usize = 100;
const FLOOD_PER_ORG: usize = 100;
/// The honest node's budgets in the flood test, small enough that each one binds: about 30
/// entries of 1.3 kB fit in 40 kB (fewer than 50), and 100 strangers of 40 kB would need
/// 4 MB (more than 2).
const STRANGER_ENTRIES: u64 = 50;
const STRANGER_KB: u64 = 40;
const STRANGERS_MB: u64 = 2;
const MAX_DISK_MB: u64 = 256;

/// The flood: `FLOOD_PER_ORG` valid entries from each of `FLOOD_ORGS` fresh organisations,
/// written straight into the flooder's store.
fn fill_with_flood(home: &Path) -> usize {
    let start = Timestamp(Timestamp::now().0 - 24 * 3_600_000);
    let frames: Vec<Vec<u8>> = (0..FLOOD_ORGS)
        .flat_map(|index| {
            let seed = u8::try_from(index).expect("few organisations");
            Author::from_seeds(seed + 1, seed + 101, &format!("Flood {index}"), "Flooder")
                .chain(FLOOD_PER_ORG, start, 1_000)
                .expect("chain")
        })
        .map(|entry| entry.encode())
        .collect();
    let config = Config {
        budgets: Budgets::unlimited(),
        ..Config::default()
    };
    let store = Store::open(&home.join("store"), config).expect("store");
    for chunk in frames.chunks(1_000) {
        for result in store
            .insert_batch_unflushed(chunk, Timestamp::now())
            .expect("insert")
        {
            result.expect("valid entry");
        }
    }
    store.flush().expect("flush");
    frames.len()
}

fn org_of(home: &Path) -> String {
    json(home, &["whoami"])["org"]
        .as_str()
        .expect("org id")
        .to_string()
}

/// Peak resident memory of a process, in MiB.
fn peak_memory_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM in kB");
    kib / 1024
}

fn directory_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .expect("read dir")
        .map(|item| {
            let item = item.expect("dir entry");
            let meta = item.metadata().expect("metadata");
            if meta.is_dir() {
                directory_bytes(&item.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn a_flood_from_fresh_identities_is_held_to_the_budgets_and_a_followed_entry_still_arrives() {
    let root = tempfile::tempdir().expect("temp dir");
    let flooder_home = Node::init(root.path(), "Flooder");
    let flood = fill_with_flood(&flooder_home);
    let friend_home = Node::init(root.path(), "Friend");
    let honest_home = Node::init(root.path(), "Honest");
    for (key, value) in [
        ("stranger_entries", STRANGER_ENTRIES),
        ("stranger_kb", STRANGER_KB),
        ("strangers_mb", STRANGERS_MB),
        ("max_disk_mb", MAX_DISK_MB),
    ] {
        set_config(&honest_home, key, &value.to_string());
    }
    ok(&honest_home, &["follow", &org_of(&friend_home)]);

    let flooder = Node::start(&flooder_home, &[]);
    let friend = Node::start(&friend_home, &[]);
    let honest = Node::start(
        &honest_home,
        &["--peer", &flooder.address(), "--peer", &friend.address()],
    );
    let flooder_peer = flooder.peer_id();
    wait_for("the flood to be under way", || {
        honest.status()["entries"].as_u64().unwrap_or(0) > 100
    });
    let sent = Instant::now();
    let followed = friend.publish("Published by a followed organisation during the flood");
    wait_for("the followed entry at the honest node", || {
        honest.has(&followed)
    });
    let latency = sent.elapsed();
    wait_for("the catch-up from the flooder to end", || {
        honest.status()["connected_peers"]
            .as_array()
            .expect("peers")
            .iter()
            .any(|peer| peer["peer_id"] == flooder_peer && !peer["last_sync"].is_null())
    });
    let record = honest.status()["connected_peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|peer| peer["peer_id"] == flooder_peer)
        .expect("the flooder")["last_sync"]
        .clone();
    let pid = honest.child.as_ref().expect("running").id();
    let peak = peak_memory_mib(pid);
    let status = honest.status();
    assert!(status["intake_stopped"].is_null(), "{status}");

    // What the honest node kept, organisation by organisation.
    let mut honest = honest;
    assert!(honest.stop().success());
    let store = Store::open(&honest_home.join("store"), Config::default()).expect("store");
    let mut held: HashMap<cairn_core::OrgId, (u64, u64)> = HashMap::new();
    for id in store.ids() {
        let entry = store.get(&id.expect("id")).expect("get").expect("entry");
        let claims = entry.credential().claims();
        if claims.org_name.starts_with("Flood ") {
            let kept = held.entry(claims.org).or_default();
            kept.0 += 1;
            kept.1 += entry.encode().len() as u64;
        }
    }
    assert!(store.resolve(&followed).is_ok(), "the followed entry is kept");
    let (entries, bytes) = held
        .values()
        .fold((0, 0), |(entries, bytes), kept| (entries + kept.0, bytes + kept.1));
    for (org, (entries, bytes)) in &held {
        assert!(
            *entries <= STRANGER_ENTRIES && *bytes <= STRANGER_KB * 1_000,
            "{org}: {entries} entries, {bytes} bytes"
        );
    }
    assert!(
        bytes <= STRANGERS_MB * 1_000_000,
        "{bytes} bytes kept from strangers"
    );
    assert!(
        bytes > STRANGERS_MB * 1_000_000 * 9 / 10,
        "the budget for all strangers was not used up ({bytes} bytes): the test proves nothing"
    );
    let on_disk = directory_bytes(&honest_home.join("store"));
    assert!(on_disk < MAX_DISK_MB * 1_000_000, "{on_disk} bytes on disk");
    println!(
        "flood of {flood} entries from {FLOOD_ORGS} organisations: kept {entries} ({} kB) from {} of them; \
         store {} MB on disk; peak memory {peak} MiB; the followed entry arrived in {latency:?}; \
         the catch-up: {record}",
        bytes / 1_000,
        held.len(),
        on_disk / 1_000_000,
    );
    assert!(peak < 400, "peak memory {peak} MiB");
}

/// A bare gossipsub client with a fresh identity, subscribed to the commons, dialling from
/// `from` (an address on loopback).
fn gossip_client(from: &str) -> Swarm<gossipsub::Behaviour> {
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            message.data.hash(&mut hasher);
            MessageId::from(hasher.finish().to_be_bytes().to_vec())
        })
        .build()
        .expect("gossipsub config");
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| {
            gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config).expect("gossipsub")
        })
        .expect("behaviour")
        .with_swarm_config(|config| config.with_idle_connection_timeout(DEADLINE))
        .build();
    swarm
        .behaviour_mut()
        .subscribe(&IdentTopic::new("cairn/space/commons/1"))
        .expect("subscribe");
    // Dials leave from the listening address (the port is reused), so from `from`.
    swarm
        .listen_on(format!("/ip4/{from}/tcp/0").parse().expect("address"))
        .expect("listen");
    swarm
}

/// Runs `swarm` until `done` says so, or panics after the deadline.
async fn drive(
    swarm: &mut Swarm<gossipsub::Behaviour>,
    what: &str,
    mut done: impl FnMut(&SwarmEvent<gossipsub::Event>) -> bool,
) {
    let waited = tokio::time::timeout(DEADLINE, async {
        loop {
            if done(&swarm.select_next_some().await) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// Sends `frame` from a fresh client once `node` has said it is in the commons, then keeps
/// the client running (so the message leaves) until the task is dropped.
async fn send_from_fresh_client(node: Multiaddr, node_peer: PeerId, frame: Vec<u8>) {
    let mut swarm = gossip_client("127.0.0.1");
    swarm.dial(node).expect("dial");
    drive(&mut swarm, "the node's subscription", |event| {
        matches!(event, SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, .. }) if *peer_id == node_peer)
    })
    .await;
    swarm
        .behaviour_mut()
        .publish(IdentTopic::new("cairn/space/commons/1"), frame)
        .expect("publish");
    loop {
        swarm.select_next_some().await;
    }
}

#[test]
fn a_tampered_copy_sent_first_does_not_shadow_the_real_entry() {
    let root = tempfile::tempdir().expect("temp dir");
    let node = Node::start(&Node::init(root.path(), "Honest"), &[]);
    let address: Multiaddr = node.address().parse().expect("address");
    let node_peer: PeerId = node.peer_id().parse().expect("peer id");

    let entry = Author::from_seeds(7, 8, "Real org", "Real member")
        .chain(1, Timestamp(Timestamp::now().0 - 60_000), 300)
        .expect("entry")
        .remove(0);
    let real = entry.encode();
    let id = entry.id().to_string();
    // The same signed header (so the same entry id) with one byte of the body changed.
    let mut tampered = real.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tamperer = runtime.spawn(send_from_fresh_client(address.clone(), node_peer, tampered));
    // The node refuses the tampered copy and blocks its sender.
    wait_for("the node to block the sender of the tampered copy", || {
        !node.status()["blocked_peers"]
            .as_array()
            .expect("blocked")
            .is_empty()
    });
    tamperer.abort();
    assert!(!node.has(&id), "the tampered copy was stored");
    let _sender = runtime.spawn(send_from_fresh_client(address, node_peer, real));
    wait_for("the real entry, sent after the tampered copy", || {
        node.has(&id)
    });
}
