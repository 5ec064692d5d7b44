//! The hello on real libp2p connections over loopback: a node learns the organisation behind
//! a peer from the binding it presents, and a peer presenting another node's binding (or a
//! forged one) stays anonymous.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::binding::Binding;
use cairn_core::testkit::Author;
use cairn_core::{SecretKey, Timestamp};
use cairn_net::{HelloSource, Keypair, Multiaddr, PeerId};
use cairn_node::Files;
use cairn_node::hello::{Hello, PeerHello};
use cairn_store::Store;

/// A bare network node that says `hello` when it connects, and keeps its event stream
/// drained.
async fn peer(keypair: Keypair, hello: Vec<u8>) -> cairn_net::Client {
    let mut config = cairn_net::Config::new(keypair);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    config.kademlia = false;
    config.hello = HelloSource::new(move || hello.clone());
    let (client, events, event_loop) = cairn_net::new(config).expect("network");
    let mut events = events.main;
    tokio::spawn(event_loop.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    client
}

async fn heard(running: &cairn_node::Running, peer: &PeerId) -> PeerHello {
    let started = Instant::now();
    loop {
        if let Some(hello) = running.shared.hello_of(peer) {
            return hello;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no hello from {peer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_peer_is_named_only_by_a_binding_to_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let author = Author::ana();
    let store = Arc::new(
        Store::create(&dir.path().join("store"), cairn_store::Config::default()).expect("store"),
    );
    let mut net = cairn_net::Config::new(Keypair::generate_ed25519());
    net.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    net.kademlia = false;
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
        files: Files::in_home(dir.path()),
    };
    runtime.block_on(async {
        let running = cairn_node::start(config).await.expect("node starts");
        let address: Multiaddr = loop {
            let status = running.shared.client().status().await.expect("status");
            if let Some(address) = status.listen_addrs.first() {
                break address.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };

        let org = SecretKey::from_seed([9; 32]);
        let honest_key = Keypair::generate_ed25519();
        let honest_id = honest_key.public().to_peer_id();
        let binding = Binding::issue(
            org.org_id(),
            &org,
            "Harbour Collective",
            &honest_id.to_bytes(),
            Timestamp::now(),
        )
        .expect("binding");
        let hello = Hello::new(Some(&binding)).encode().expect("hello");
        let honest = peer(honest_key, hello.clone()).await;
        // Another node replays the honest node's hello, binding and all.
        let liar_key = Keypair::generate_ed25519();
        let liar_id = liar_key.public().to_peer_id();
        let liar = peer(liar_key, hello).await;
        // A forged binding: signed by a key that is not the organisation's.
        let forger_key = Keypair::generate_ed25519();
        let forger_id = forger_key.public().to_peer_id();
        let mut forged = Binding::issue(
            org.org_id(),
            &org,
            "Harbour Collective",
            &forger_id.to_bytes(),
            Timestamp::now(),
        )
        .expect("binding")
        .as_bytes()
        .to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let forged_hello = Hello {
            binding: cairn_core::codec::Bytes(forged),
            ..Hello::new(None)
        }
        .encode()
        .expect("hello");
        let forger = peer(forger_key, forged_hello).await;

        for client in [&honest, &liar, &forger] {
            client.dial(address.clone()).await.expect("dial");
        }
        let named = heard(&running, &honest_id).await;
        assert_eq!(named.org, Some((org.org_id(), "Harbour Collective".into())));
        assert!(named.clock_skew_ms.unsigned_abs() < 60_000, "{named:?}");
        assert!(named.software.starts_with("cairn "), "{named:?}");
        for (id, what) in [
            (liar_id, "another node's binding"),
            (forger_id, "a forged binding"),
        ] {
            let anonymous = heard(&running, &id).await;
            assert_eq!(anonymous.org, None, "{what} named an organisation");
            assert!(anonymous.anonymous_because.is_some(), "{what}");
        }
        // The node answered each hello with its own.
        running.stop().await.expect("node stops");
    });
}
