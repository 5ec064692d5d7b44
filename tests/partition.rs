//! A real network partition: five `cairn node` processes, each in its own network namespace,
//! joined through bridges in a sixth "switch" namespace (the host's own network is never
//! touched). The switch splits them 2 | 3, each side publishes, the split heals, and all five
//! must converge with nothing missing. Needs root (for `ip netns`); elsewhere it says it was
//! skipped, except under CI, where it must run.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::netns::{NsNode, cairn, ip, run, skip, try_add_namespace};

const NODES: usize = 5;
const DEADLINE: Duration = Duration::from_secs(180);

/// The namespaces and links of one test run, removed when dropped.
struct TestNet {
    prefix: String,
}

impl TestNet {
    /// Builds the network, or explains why it cannot be built here.
    fn new() -> Result<Self, String> {
        let prefix = format!("cn{}", std::process::id() % 100_000);
        try_add_namespace(&format!("{prefix}sw"))?;
        let net = Self { prefix };
        let sw = net.switch();
        for bridge in ["br0", "br1"] {
            ip(&["-n", &sw, "link", "add", bridge, "type", "bridge"]);
            ip(&["-n", &sw, "link", "set", bridge, "up"]);
        }
        for index in 0..NODES {
            let ns = net.namespace(index);
            ip(&["netns", "add", &ns]);
            let (inside, outside) = (
                format!("{}a{index}", net.prefix),
                format!("{}b{index}", net.prefix),
            );
            ip(&[
                "link", "add", &inside, "type", "veth", "peer", "name", &outside,
            ]);
            ip(&["link", "set", &inside, "netns", &ns]);
            ip(&["link", "set", &outside, "netns", &sw]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.address(index)),
                "dev",
                &inside,
            ]);
            ip(&["-n", &ns, "link", "set", &inside, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &sw, "link", "set", &outside, "master", "br0"]);
            ip(&["-n", &sw, "link", "set", &outside, "up"]);
        }
        Ok(net)
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    fn namespace(&self, index: usize) -> String {
        format!("{}n{index}", self.prefix)
    }

    fn address(&self, index: usize) -> String {
        format!("10.231.7.{}", index + 1)
    }

    /// Puts node `index` on bridge `bridge`: nodes on different bridges cannot reach each other.
    fn attach(&self, index: usize, bridge: &str) {
        ip(&[
            "-n",
            &self.switch(),
            "link",
            "set",
            &format!("{}b{index}", self.prefix),
            "master",
            bridge,
        ]);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for index in 0..NODES {
            let _ = run("ip", &["netns", "del", &self.namespace(index)]);
        }
        let _ = run("ip", &["netns", "del", &self.switch()]);
    }
}

/// The entries `node` holds besides key events (every node collects each organisation's).
fn entries(node: &NsNode) -> u64 {
    let held = node
        .status()
        .and_then(|status| status["entries"].as_u64())
        .unwrap_or(0);
    let output = cairn(
        &node.ns,
        &node.home,
        &["--json", "list", "--kind", "key-event", "--limit", "100000"],
    );
    let key_events = serde_json::from_slice::<Value>(&output.stdout)
        .ok()
        .and_then(|listed| listed.as_array().map(Vec::len))
        .unwrap_or(0) as u64;
    held.saturating_sub(key_events)
}

#[test]
fn five_nodes_split_two_three_converge_when_the_split_heals() {
    let net = match TestNet::new() {
        Ok(net) => net,
        Err(reason) => {
            skip(
                "five_nodes_split_two_three_converge_when_the_split_heals",
                &reason,
            );
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Node keys are made on first start; make homes first so every address is known up front.
    let homes: Vec<PathBuf> = (0..NODES)
        .map(|index| dir.path().join(format!("org{index}")))
        .collect();
    for (index, home) in homes.iter().enumerate() {
        let output = cairn(
            &net.namespace(index),
            home,
            &["init", "--org", &format!("Org {index}")],
        );
        assert!(
            output.status.success(),
            "init: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut nodes = Vec::new();
    for (index, home) in homes.iter().enumerate() {
        let mut args = vec![
            "--listen".to_string(),
            format!("/ip4/{}/tcp/7411", net.address(index)),
            "--api".into(),
            "127.0.0.1:0".into(),
            "--no-mdns".into(),
            "--no-upnp".into(),
            "--sync-interval".into(),
            "1".into(),
        ];
        for other in 0..NODES {
            if other != index {
                args.extend([
                    "--peer".into(),
                    format!("/ip4/{}/tcp/7411", net.address(other)),
                ]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(NsNode::spawn(&net.namespace(index), home, &args));
    }
    common::wait_until("every node connected to every other", DEADLINE, || {
        nodes.iter().all(|node| {
            node.status()
                .and_then(|status| status["connected_peers"].as_array().map(Vec::len))
                == Some(NODES - 1)
        })
    });
    nodes[0].publish("Before the split");
    common::wait_until("the first entry everywhere", DEADLINE, || {
        nodes.iter().all(|node| entries(node) == 1)
    });

    // Split: nodes 0 and 1 on one bridge, 2, 3 and 4 on the other.
    net.attach(0, "br1");
    net.attach(1, "br1");
    for (index, node) in nodes.iter().enumerate() {
        for entry in 0..4 {
            node.publish(&format!("Node {index}, during the split, entry {entry}"));
        }
    }
    let total = 1 + 4 * NODES as u64;
    // Each side converges on its own entries and lacks the other side's.
    common::wait_until("each side to hold its own entries", DEADLINE, || {
        nodes[..2].iter().all(|node| entries(node) == 1 + 8)
            && nodes[2..].iter().all(|node| entries(node) == 1 + 12)
    });
    assert!(
        nodes.iter().all(|node| entries(node) < total),
        "the split really separated them"
    );

    // Heal.
    net.attach(0, "br0");
    net.attach(1, "br0");
    common::wait_until("all five nodes to converge", DEADLINE, || {
        nodes.iter().all(|node| entries(node) == total)
    });
    let lists: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            let output = cairn(&node.ns, &node.home, &["--json", "list", "--limit", "1000"]);
            let list: Value = serde_json::from_slice(&output.stdout).expect("list");
            let mut ids: Vec<String> = list
                .as_array()
                .expect("array")
                .iter()
                .map(|entry| entry["id"].as_str().expect("id").to_string())
                .collect();
            ids.sort();
            ids
        })
        .collect();
    assert!(
        lists.windows(2).all(|pair| pair[0] == pair[1]),
        "every node holds the same entries"
    );
    println!("5 nodes split 2 | 3 converged on {total} entries, 0 missing");
}
