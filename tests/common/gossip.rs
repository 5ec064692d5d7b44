//! Bare libp2p clients for the tests and benchmarks that play a hostile or careless peer:
//! a gossipsub client with a fresh identity, dialling from a chosen loopback address.

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};

/// The `index`th loopback address, 127.0.0.`index` (all of 127.0.0.0/8 is loopback on Linux,
/// so clients bound to different ones come from distinct addresses).
pub fn loopback(index: u8) -> std::net::IpAddr {
    std::net::Ipv4Addr::new(127, 0, 0, index).into()
}

/// The commons' gossip topic.
pub fn commons() -> IdentTopic {
    IdentTopic::new("cairn/space/commons/1")
}

/// A dial-only TCP transport whose connections leave from a chosen loopback address
/// (libp2p's own TCP transport leaves the source address to the system).
struct FromAddress(std::net::IpAddr);

impl libp2p::core::Transport for FromAddress {
    type Output = libp2p::tcp::tokio::TcpStream;
    type Error = std::io::Error;
    type ListenerUpgrade = std::future::Pending<Result<Self::Output, Self::Error>>;
    type Dial = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Output, Self::Error>> + Send>,
    >;

    fn listen_on(
        &mut self,
        _: libp2p::core::transport::ListenerId,
        address: Multiaddr,
    ) -> Result<(), libp2p::TransportError<Self::Error>> {
        Err(libp2p::TransportError::MultiaddrNotSupported(address))
    }

    fn remove_listener(&mut self, _: libp2p::core::transport::ListenerId) -> bool {
        false
    }

    fn dial(
        &mut self,
        address: Multiaddr,
        _: libp2p::core::transport::DialOpts,
    ) -> Result<Self::Dial, libp2p::TransportError<Self::Error>> {
        let Some(target) = socket_of(&address) else {
            return Err(libp2p::TransportError::MultiaddrNotSupported(address));
        };
        let from = self.0;
        Ok(Box::pin(async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((from, 0).into())?;
            Ok(libp2p::tcp::tokio::TcpStream(socket.connect(target).await?))
        }))
    }

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<libp2p::core::transport::TransportEvent<Self::ListenerUpgrade, Self::Error>>
    {
        std::task::Poll::Pending
    }
}

/// The IPv4 socket address at the start of a multiaddr.
pub fn socket_of(address: &Multiaddr) -> Option<std::net::SocketAddr> {
    use libp2p::multiaddr::Protocol;
    let mut parts = address.iter();
    match (parts.next(), parts.next()) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => Some((ip, port).into()),
        _ => None,
    }
}

/// A bare gossipsub client with a fresh identity, subscribed to the commons, dialling from
/// `from` (an address on loopback).
pub fn gossip_client(from: std::net::IpAddr) -> Swarm<gossipsub::Behaviour> {
    gossip_client_sending_up_to(from, 65_536)
}

/// [`gossip_client`] that sends messages of up to `max_message` bytes, more than a node takes.
pub fn gossip_client_sending_up_to(
    from: std::net::IpAddr,
    max_message: usize,
) -> Swarm<gossipsub::Behaviour> {
    use libp2p::core::Transport;
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .max_transmit_size(max_message)
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
        .with_other_transport(|key| {
            let noise = libp2p::noise::Config::new(key)
                .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(FromAddress(from)
                .upgrade(libp2p::core::upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(libp2p::yamux::Config::default()))
        })
        .expect("transport")
        .with_behaviour(|_| {
            gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config).expect("gossipsub")
        })
        .expect("behaviour")
        .with_swarm_config(|config| config.with_idle_connection_timeout(super::DEADLINE))
        .build();
    swarm
        .behaviour_mut()
        .subscribe(&commons())
        .expect("subscribe");
    swarm
}

/// Runs `swarm` until `done` says so, or panics after the deadline.
pub async fn drive(
    swarm: &mut Swarm<gossipsub::Behaviour>,
    what: &str,
    mut done: impl FnMut(&SwarmEvent<gossipsub::Event>) -> bool,
) {
    let waited = tokio::time::timeout(super::DEADLINE, async {
        loop {
            if done(&swarm.select_next_some().await) {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}
