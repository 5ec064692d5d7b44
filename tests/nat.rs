//! Across routers, in network namespaces (needs root): a "public" network with a relay node,
//! and two home networks, each behind its own masquerading router that silently drops
//! unsolicited inbound packets (no RST, so TCP simultaneous open can work) and offers no UPnP.
//! The two home nodes meet through the relay (an invitation carries the relayed address), then
//! hole punch to a direct connection where the routers keep ports, and keep using the relay
//! where the routers pick random ports. Skipped with a message where namespaces cannot be
//! made, except under CI, where it must run.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::netns::{NsNode, ip, run, skip, try_add_namespace};

/// How long anything here may take: hole punching and a relayed catch-up on two busy cores.
const DEADLINE: Duration = Duration::from_secs(120);
const PUBLIC_NET: &str = "10.77";
const RELAY_IP: &str = "10.77.0.1";

/// The namespaces of one test: `pub` (the public network and the relay), and per home `rN`
/// (its router) and `hN` (the home node). Removed when dropped.
struct Routers {
    prefix: String,
}

impl Routers {
    /// Builds the networks; `random_ports` makes the routers map ports randomly (as
    /// symmetric NATs do), which defeats hole punching.
    fn new(tag: &str, random_ports: bool) -> Result<Self, String> {
        let prefix = format!("nat{tag}{}", std::process::id() % 10_000);
        try_add_namespace(&format!("{prefix}pub"))?;
        let net = Self { prefix };
        let public = net.ns("pub");
        ip(&["-n", &public, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &public, "link", "set", "br0", "up"]);
        ip(&["-n", &public, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &public,
            "addr",
            "add",
            &format!("{RELAY_IP}/24"),
            "dev",
            "br0",
        ]);
        for home in 1..=2 {
            net.add_home(home, random_ports);
        }
        Ok(net)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn add_home(&self, home: u8, random_ports: bool) {
        let (public, router, node) = (
            self.ns("pub"),
            self.ns(&format!("r{home}")),
            self.ns(&format!("h{home}")),
        );
        ip(&["netns", "add", &router]);
        ip(&["netns", "add", &node]);
        // Router to public network.
        let (wan, wan_peer) = (self.ns(&format!("w{home}")), self.ns(&format!("pw{home}")));
        ip(&[
            "link", "add", &wan, "type", "veth", "peer", "name", &wan_peer,
        ]);
        ip(&["link", "set", &wan, "netns", &router]);
        ip(&["link", "set", &wan_peer, "netns", &public]);
        ip(&["-n", &public, "link", "set", &wan_peer, "master", "br0"]);
        ip(&["-n", &public, "link", "set", &wan_peer, "up"]);
        ip(&["-n", &router, "link", "set", &wan, "name", "wan"]);
        let wan_ip = format!("{PUBLIC_NET}.0.{}/24", 10 + home);
        ip(&["-n", &router, "addr", "add", &wan_ip, "dev", "wan"]);
        ip(&["-n", &router, "link", "set", "wan", "up"]);
        ip(&["-n", &router, "link", "set", "lo", "up"]);
        // Home network behind it.
        let (lan, lan_peer) = (self.ns(&format!("l{home}")), self.ns(&format!("hl{home}")));
        ip(&[
            "link", "add", &lan, "type", "veth", "peer", "name", &lan_peer,
        ]);
        ip(&["link", "set", &lan, "netns", &router]);
        ip(&["link", "set", &lan_peer, "netns", &node]);
        ip(&["-n", &router, "link", "set", &lan, "name", "lan"]);
        let router_lan = format!("192.168.{home}.1");
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{router_lan}/24"),
            "dev",
            "lan",
        ]);
        ip(&["-n", &router, "link", "set", "lan", "up"]);
        ip(&["-n", &node, "link", "set", &lan_peer, "name", "eth0"]);
        let node_ip = format!("192.168.{home}.2/24");
        ip(&["-n", &node, "addr", "add", &node_ip, "dev", "eth0"]);
        ip(&["-n", &node, "link", "set", "eth0", "up"]);
        ip(&["-n", &node, "link", "set", "lo", "up"]);
        ip(&["-n", &node, "route", "add", "default", "via", &router_lan]);
        let forwarding = run(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        );
        assert!(forwarding.status.success(), "sysctl in {router}");
        // Masquerade out; in, only what answers something sent out; the router itself drops
        // what nobody asked for instead of answering with a reset.
        let masquerade = if random_ports {
            "masquerade random,fully-random"
        } else {
            "masquerade"
        };
        let rules = format!(
            "table ip nat {{\n  chain post {{ type nat hook postrouting priority 100; oifname \"wan\" {masquerade}; }}\n}}\n\
             table inet filter {{\n  chain input {{ type filter hook input priority 0; policy accept; iifname \"wan\" ct state established,related accept; iifname \"wan\" drop; }}\n  \
             chain forward {{ type filter hook forward priority 0; policy drop; ct state established,related accept; iifname \"lan\" accept; }}\n}}\n"
        );
        let rules_file = std::env::temp_dir().join(format!("{router}.nft"));
        std::fs::write(&rules_file, rules).expect("rules file");
        let loaded = run(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "nft",
                "-f",
                rules_file.to_str().expect("path"),
            ],
        );
        let _ = std::fs::remove_file(&rules_file);
        assert!(
            loaded.status.success(),
            "nft in {router}: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
    }
}

impl Drop for Routers {
    fn drop(&mut self) {
        for name in ["h1", "h2", "r1", "r2", "pub"] {
            let _ = run("ip", &["netns", "del", &self.ns(name)]);
        }
    }
}

/// Whether `nft` is installed (`.ci/run` installs it).
fn nft_missing() -> Option<String> {
    match std::process::Command::new("nft").arg("--version").output() {
        Ok(output) if output.status.success() => None,
        _ => Some("nft (nftables) is not installed".into()),
    }
}

/// The networks for `test`, or `None` (said as skipped) where they cannot be built here.
fn routers(test: &str, tag: &str, random_ports: bool) -> Option<Routers> {
    match nft_missing().map_or_else(|| Routers::new(tag, random_ports), Err) {
        Ok(net) => Some(net),
        Err(reason) => {
            skip(test, &reason);
            None
        }
    }
}

fn init(dir: &Path, name: &str) -> std::path::PathBuf {
    let home = dir.join(name);
    common::ok(&home, &["init", "--org", name]);
    home
}

/// Listening on TCP and QUIC, on the ports every node here uses.
const LISTEN: [&str; 4] = [
    "--listen",
    "/ip4/0.0.0.0/tcp/7411",
    "--listen",
    "/ip4/0.0.0.0/udp/7411/quic-v1",
];

fn start(ns: &str, home: &Path, extra: &[&str]) -> NsNode {
    start_listening(ns, home, &LISTEN, extra)
}

fn start_listening(ns: &str, home: &Path, listen: &[&str], extra: &[&str]) -> NsNode {
    let mut args: Vec<&str> = listen.to_vec();
    args.extend(["--api", "127.0.0.1:0", "--no-mdns", "--sync-interval", "5"]);
    args.extend_from_slice(extra);
    let node = NsNode::spawn(ns, home, &args);
    common::wait_until("the node to start", DEADLINE, || node.status().is_some());
    node
}

fn wait(what: &str, condition: impl FnMut() -> bool) {
    common::wait_until(what, DEADLINE, condition);
}

/// `node`'s connection to `peer`: its address, if connected.
fn connection(node: &NsNode, peer: &str) -> Option<String> {
    let status = node.status()?;
    status["connected_peers"]
        .as_array()?
        .iter()
        .find(|connected| connected["peer_id"] == peer)
        .and_then(|connected| connected["address"].as_str().map(str::to_string))
}

/// Whether `node` has a direct (not relayed) connection to `peer`.
fn connected_directly(node: &NsNode, peer: &str) -> bool {
    connection(node, peer).is_some_and(|address| !address.contains("p2p-circuit"))
}

fn reachability(node: &NsNode) -> Value {
    node.status()
        .map(|status| status["reachability"].clone())
        .unwrap_or(Value::Null)
}

fn peer_id(node: &NsNode) -> String {
    node.status().expect("status")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string()
}

/// The relay, and two home nodes that met through it by an invitation.
struct Meeting {
    relay: NsNode,
    homes: [NsNode; 2],
    ids: [String; 2],
    /// When home two started to join home one (its first contact, through the relay).
    first_contact: Instant,
}

fn meet(net: &Routers, dir: &Path, one_home: &Path, two_home: &Path) -> Meeting {
    let relay_home = init(dir, "relay");
    let relay = start(
        &net.ns("pub"),
        &relay_home,
        &[
            "--relay",
            "--external",
            &format!("/ip4/{RELAY_IP}/tcp/7411"),
            "--external",
            &format!("/ip4/{RELAY_IP}/udp/7411/quic-v1"),
        ],
    );
    let relay_id = peer_id(&relay);
    let relay_address = format!("/ip4/{RELAY_IP}/udp/7411/quic-v1/p2p/{relay_id}");
    let one = start(&net.ns("h1"), one_home, &["--peer", &relay_address]);
    let two = start(&net.ns("h2"), two_home, &["--peer", &relay_address]);
    wait("home one reachable through the relay", || {
        reachability(&one)["state"] == "relayed"
    });
    let reach = reachability(&one);
    assert!(
        reach["summary"]
            .as_str()
            .is_some_and(|summary| summary.contains("reachable through the relay of relay")),
        "{reach}"
    );
    assert_eq!(reachability(&relay)["relay_offered"], true);

    // The invitation carries the relayed address; home two joins through it.
    let ticket = one.ok(&["invite"]);
    let ticket = ticket.trim();
    let first_contact = Instant::now();
    two.ok(&["join", ticket]);
    let ids = [peer_id(&one), peer_id(&two)];
    wait("the homes connected", || {
        connection(&two, &ids[0]).is_some()
    });
    Meeting {
        relay,
        homes: [one, two],
        ids,
        first_contact,
    }
}

#[test]
fn home_nodes_meet_through_a_relay_then_hole_punch_and_keep_going_without_it() {
    let test = "home_nodes_meet_through_a_relay_then_hole_punch_and_keep_going_without_it";
    let Some(net) = routers(test, "p", false) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (one_home, two_home) = (init(dir.path(), "one"), init(dir.path(), "two"));
    let Meeting {
        mut relay,
        homes: [one, mut two],
        ids,
        first_contact,
    } = meet(&net, dir.path(), &one_home, &two_home);
    wait("a direct connection between the homes", || {
        connected_directly(&two, &ids[0])
    });
    println!(
        "a direct connection {:?} after home two first contacted home one (by joining it through the relay)",
        first_contact.elapsed()
    );
    let through_relay = one.publish("Written while the relay was up");
    wait("the entry at home two", || two.has(&through_relay));

    // Home two restarts: it finds the relay and home one again, and punches through again.
    two.kill();
    let two = start(&net.ns("h2"), &two.home, &[]);
    wait("home two back with a direct connection", || {
        connected_directly(&two, &ids[0])
    });

    // Without the relay, the direct connection carries entries both ways.
    relay.kill();
    let from_one = one.publish("Written after the relay stopped");
    let from_two = two.publish("Answered after the relay stopped");
    wait("entries both ways without the relay", || {
        two.has(&from_one) && one.has(&from_two)
    });
}

#[test]
fn routers_that_pick_random_ports_keep_the_homes_on_the_relay_for_a_full_catch_up() {
    let test = "routers_that_pick_random_ports_keep_the_homes_on_the_relay_for_a_full_catch_up";
    let Some(net) = routers(test, "r", true) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Home one holds 10,000 entries home two lacks, in the default space both take part in.
    let one_home = init(dir.path(), "one");
    let frames: Vec<Vec<u8>> = common::stranger_chains(10, 1_000)
        .into_iter()
        .flatten()
        .collect();
    common::store_frames(&one_home, &frames);
    let two_home = init(dir.path(), "two");
    common::lift_stranger_budgets(&two_home);
    let last = cairn_core::Entry::decode(frames.last().expect("frames"))
        .expect("an entry")
        .id()
        .to_string();
    let Meeting {
        relay,
        homes: [one, two],
        ids,
        ..
    } = meet(&net, dir.path(), &one_home, &two_home);
    let before = relay.usage();
    let started = Instant::now();
    wait("home two caught up through the relay", || {
        two.status()
            .and_then(|status| status["entries"].as_u64())
            .is_some_and(|entries| entries >= 10_000)
            && two.has(&last)
    });
    let took = started.elapsed();
    let after = relay.usage();
    // What the relay spent on one circuit carrying the catch-up (a figure for
    // docs/performance.md; nothing to compare it with in the same run).
    println!(
        "caught up on 10,000 entries through the relay in {took:?}; the relay used {} ms of CPU and sent {} kB for it; its peak memory is {} MiB",
        after.cpu_ms - before.cpu_ms,
        (after.written_bytes - before.written_bytes) / 1_000,
        common::peak_memory_mib(relay.pid()),
    );
    let address = connection(&two, &ids[0]).expect("still connected");
    assert!(
        address.contains("p2p-circuit"),
        "hole punching cannot work through routers that pick random ports, so the homes stay on the relay: {address}"
    );
    let live = one.publish("Live, through the relay");
    wait("a live entry through the relay", || two.has(&live));
}

#[test]
fn home_nodes_that_speak_only_tcp_hole_punch_by_simultaneous_open() {
    let test = "home_nodes_that_speak_only_tcp_hole_punch_by_simultaneous_open";
    let Some(net) = routers(test, "t", false) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let tcp = ["--listen", "/ip4/0.0.0.0/tcp/7411"];
    let relay_home = init(dir.path(), "relay");
    let external = format!("/ip4/{RELAY_IP}/tcp/7411");
    let relay = start_listening(
        &net.ns("pub"),
        &relay_home,
        &tcp,
        &["--relay", "--external", &external],
    );
    let relay_address = format!("{external}/p2p/{}", peer_id(&relay));
    let (one_home, two_home) = (init(dir.path(), "one"), init(dir.path(), "two"));
    let one = start_listening(&net.ns("h1"), &one_home, &tcp, &["--peer", &relay_address]);
    let two = start_listening(&net.ns("h2"), &two_home, &tcp, &["--peer", &relay_address]);
    wait("home one reachable through the relay", || {
        reachability(&one)["state"] == "relayed"
    });
    let ticket = one.ok(&["invite"]);
    two.ok(&["join", ticket.trim()]);
    let one_id = peer_id(&one);
    wait("a direct TCP connection between the homes", || {
        connection(&two, &one_id)
            .is_some_and(|address| !address.contains("p2p-circuit") && address.contains("/tcp/"))
    });
    let entry = two.publish("Over the punched TCP connection");
    wait("the entry at home one", || one.has(&entry));
}
