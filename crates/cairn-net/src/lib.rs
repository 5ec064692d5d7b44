//! Cairn's peer-to-peer networking on libp2p: transports (TCP with noise and yamux, and QUIC),
//! identify, ping, Kademlia for peer routing, mDNS, gossipsub with one topic per space,
//! connection limits, strangers' connections read within a byte rate, blocking of misbehaving
//! peers, and redialling known peers with backoff.
//!
//! Shape (as in rust-libp2p's file-sharing example): [`new`] returns a [`Client`] (a cheap,
//! cloneable handle over a bounded command channel), a bounded receiver of [`Event`]s, and the
//! [`EventLoop`] that owns the swarm. The loop ends when every `Client` is dropped.
//!
//! This crate moves bytes. It never decides whether an entry is valid: every gossip message is
//! held unrelayed until the owner reports a [`Verdict`] for it.

mod bans;
mod behaviour;
mod codec;
mod connected;
mod event_loop;
mod gate;
mod known;
mod rate;
mod reach;
mod serving;
mod swarm;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use behaviour::{MAX_TRANSMIT_SIZE, space_of_topic, topic_for_space};
pub use event_loop::{EventLoop, peer_of};
pub use gate::GateLimits;
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId, multiaddr};
pub use reach::{RELAY_HOP_PROTOCOL, Reachability};
pub use throttle::ReadLimits;
use tokio::sync::{mpsc, oneshot};

/// Capacity of the command channel from clients to the event loop.
const COMMAND_QUEUE: usize = 256;
/// Capacity of the event channel from the event loop to the owner. Gossip messages beyond it
/// are ignored (not relayed) rather than queued without bound.
const EVENT_QUEUE: usize = 1_024;
/// Capacity of the strangers' lane: gossip messages from peers this node does not keep.
const STRANGER_QUEUE: usize = 256;

/// What can go wrong in the network layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not set up the {0} transport: {1}")]
    Transport(&'static str, String),

    #[error("could not listen on {address}: {reason}; check that the address is free and valid")]
    Listen { address: Multiaddr, reason: String },

    #[error("could not reach {address}: {reason}")]
    Dial { address: String, reason: String },

    #[error("could not publish to space {space}: {reason}")]
    Publish { space: String, reason: String },

    #[error("no peer in space {0} is connected yet; the entry will be sent when one is")]
    NoPeers(String),

    #[error("invalid network setting: {0}")]
    Config(String),

    #[error("the network task has stopped; restart the node")]
    Stopped,

    #[error("sync with {peer} failed: {reason}")]
    Sync { peer: PeerId, reason: String },
}

/// Settings for the network.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's libp2p identity (separate from the organisation's key).
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/0` and `/ip4/0.0.0.0/udp/0/quic-v1`.
    pub listen: Vec<Multiaddr>,
    /// Addresses other nodes reach this one at, as its admin says (a public address or a
    /// forwarded port): taken as confirmed. Others are found by peers dialling back.
    pub external: Vec<Multiaddr>,
    /// Peers to dial at start and redial with backoff whenever disconnected.
    pub known_peers: Vec<Multiaddr>,
    /// Find peers on the local network with mDNS (best effort).
    pub mdns: bool,
    /// Run Kademlia, which learns peers of peers and connects to them.
    pub kademlia: bool,
    /// The most established connections in total.
    pub max_connections: u32,
    /// Limits per remote address, and the share of `max_connections` strangers may take
    /// (the rest stays free for peers this node dialled or was told to keep).
    pub gate: GateLimits,
    /// How long a connection may take to finish its handshake (TCP with noise and yamux, or
    /// QUIC) before it is dropped.
    pub handshake_timeout: Duration,
    /// How long a peer that sent an invalid entry stays blocked.
    pub ban_duration: Duration,
    /// The most peers (and, apart, addresses) blocked at once; when full, the ban that would
    /// end soonest is lifted to make room.
    pub max_bans: usize,
    /// Gossipsub mesh degree (target peers per space mesh).
    pub mesh_degree: usize,
    /// The request-response protocol for catch-up sync, and its message limits.
    pub sync_protocol: &'static str,
    pub sync_request_limit: usize,
    pub sync_response_limit: usize,
    /// Sync requests served per peer per second; more are refused.
    pub sync_requests_per_second: u32,
    /// Sync requests served per remote address per second, and bytes of answers sent to one
    /// address per second (counted when sent), so that many peer ids from one machine share
    /// one budget. Requests past it wait for the next second (a few per address; more are
    /// refused). Peers through a relay count by peer id alone.
    pub sync_requests_per_address: u32,
    pub sync_bytes_per_address: u64,
    /// Gossip messages from strangers (peers this node does not keep) taken in per second,
    /// all of them together; more are ignored (not relayed), and catch-up sync, under its own
    /// limits, brings what was missed. Bounds the work strangers can make this node do: each
    /// message taken in is verified, stored or refused, indexed and relayed. Organisations
    /// publish a few entries a day, so even many strangers stay far below it.
    pub stranger_messages_per_second: u32,
    /// Bytes per second read from strangers' inbound connections, each and all together
    /// (see [`ReadLimits`]).
    pub strangers_read: ReadLimits,
    /// The request-response protocol in which a node presents an invitation to the node that
    /// issued it.
    pub invite_protocol: &'static str,
    /// The request-response protocol in which two nodes introduce themselves on connecting.
    pub hello_protocol: &'static str,
    /// What this node says of itself (see [`HelloSource`]).
    pub hello: HelloSource,
    /// Offer a circuit relay to other nodes, within these limits (off when `None`).
    pub relay: Option<RelayLimits>,
    /// Ask the router to forward the listening ports to this node (UPnP), where it offers to.
    pub upnp: bool,
}

/// What a relay this node offers carries at most. A reservation holds a place for a node
/// that is not reachable directly; a circuit is one relayed connection to such a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLimits {
    pub max_reservations: usize,
    pub reservation_duration: Duration,
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    /// A circuit is closed after this long or this many bytes (each way counted together);
    /// the nodes then open a new one if they still need it.
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
}

impl Default for RelayLimits {
    /// Sized so that a catch-up of 100,000 entries (about 80 MB) fits in one circuit, while
    /// hole punching normally replaces the circuit within seconds.
    fn default() -> Self {
        Self {
            max_reservations: 128,
            reservation_duration: Duration::from_secs(3_600),
            max_circuits: 32,
            max_circuits_per_peer: 4,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 256 << 20,
        }
    }
}

/// The bytes of this node's hello, made afresh for each peer (they carry the clock). The
/// dialling side sends its hello on a new connection and the other answers with its own;
/// each side reports the peer's as [`Event::Hello`]. What the bytes mean is the owner's
/// business.
#[derive(Clone)]
pub struct HelloSource(Arc<dyn Fn() -> Vec<u8> + Send + Sync>);

impl HelloSource {
    pub fn new(make: impl Fn() -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self(Arc::new(make))
    }

    pub(crate) fn make(&self) -> Vec<u8> {
        (self.0)()
    }
}

impl std::fmt::Debug for HelloSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HelloSource")
    }
}

/// The largest hello either side sends or reads.
pub const MAX_HELLO_LEN: usize = 4 * 1024;
/// The largest invitation request or answer.
pub const MAX_INVITE_LEN: usize = 8 * 1024;

impl Config {
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            external: Vec::new(),
            known_peers: Vec::new(),
            mdns: false,
            kademlia: true,
            max_connections: 128,
            gate: GateLimits {
                pending_per_address: 8,
                strangers_per_address: 8,
                strangers: 96,
                strikes_per_address: 8,
                strike_window: Duration::from_secs(600),
                max_memory_bytes: 768 << 20,
            },
            handshake_timeout: Duration::from_secs(5),
            ban_duration: Duration::from_secs(600),
            max_bans: 4_096,
            mesh_degree: 4,
            sync_protocol: "/cairn/sync/1",
            sync_request_limit: 1 << 20,
            sync_response_limit: 8 << 20,
            sync_requests_per_second: 50,
            sync_requests_per_address: 100,
            sync_bytes_per_address: 32 << 20,
            stranger_messages_per_second: 100,
            strangers_read: ReadLimits {
                per_connection: 128_000,
                strangers: 256_000,
            },
            invite_protocol: "/cairn/invite/1",
            hello_protocol: "/cairn/hello/1",
            hello: HelloSource::new(Vec::new),
            relay: None,
            upnp: false,
        }
    }
}

/// The owner's judgement of a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and stored: relay it.
    Accept,
    /// Not relayed and not held against the sender (a duplicate, or something an honest peer
    /// could relay, such as an entry from a newer format version).
    Ignore,
    /// Invalid: not relayed, and the sender is penalised and blocked for a while.
    Reject,
}

/// Something the owner should act on.
#[derive(Debug)]
pub enum Event {
    /// A gossip message, held unrelayed until [`Client::report`] gives its verdict.
    Message {
        source: PeerId,
        message_id: Vec<u8>,
        space: String,
        data: Vec<u8>,
    },
    /// A connected peer subscribed to a space (a chance to send it what it lacks).
    PeerJoinedSpace { peer: PeerId, space: String },
    /// A connection to a peer was established; `dialed` if this node dialed it.
    Connected {
        peer: PeerId,
        address: Multiaddr,
        dialed: bool,
    },
    /// This node dialled a peer and reached it at `address` (on any of its connections with
    /// the peer, not only the first): an address that works, for the address book.
    Reached { peer: PeerId, address: Multiaddr },
    /// The last connection to a peer closed.
    Disconnected { peer: PeerId },
    /// A known peer was reached at a new address, and these addresses of it, which failed
    /// at their last attempt, are no longer dialled.
    AddressesDropped {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    },
    /// The node listens on a new address.
    Listening { address: Multiaddr },
    /// A connected peer introduced itself (see [`HelloSource`]): once for each connection it
    /// dialled and each it answered on, at most two a second.
    Hello { peer: PeerId, hello: Vec<u8> },
    /// A peer presents an invitation; answer with [`Client::invite_respond`] and the same
    /// token.
    InviteRequest {
        peer: PeerId,
        token: u64,
        request: Vec<u8>,
    },
    /// A peer asks for sync data; answer with [`Client::sync_respond`] and the same token.
    SyncRequest {
        peer: PeerId,
        token: u64,
        request: Vec<u8>,
    },
}

/// A snapshot of the network, for status pages.
#[derive(Debug, Clone)]
pub struct Status {
    pub peer_id: PeerId,
    pub listen_addrs: Vec<Multiaddr>,
    pub connected: Vec<PeerStatus>,
    pub blocked: Vec<PeerId>,
    /// Addresses banned for sending peer after banned peer.
    pub blocked_addresses: usize,
    /// Inbound connections the limits turned away since the node started.
    pub refused_connections: u64,
    pub known: Vec<Multiaddr>,
    /// How other nodes can reach this one.
    pub reachability: Reachability,
    /// Whether this node offers a relay.
    pub relay_offered: bool,
}

/// One connected peer.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub peer_id: PeerId,
    pub address: Multiaddr,
    pub spaces: Vec<String>,
}

#[derive(Debug)]
enum Command {
    Dial {
        address: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, Error>>,
    },
    Remember {
        address: Multiaddr,
    },
    /// Stop redialling this peer.
    Forget {
        peer: PeerId,
    },
    Publish {
        space: String,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Report {
        message_id: Vec<u8>,
        source: PeerId,
        verdict: Verdict,
    },
    Subscribe {
        space: String,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    Unsubscribe {
        space: String,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    Metrics {
        reply: oneshot::Sender<String>,
    },
    SyncRequest {
        peer: PeerId,
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, Error>>,
    },
    SyncRespond {
        token: u64,
        response: Vec<u8>,
    },
    Invite {
        peer: PeerId,
        request: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, Error>>,
    },
    InviteRespond {
        token: u64,
        response: Vec<u8>,
    },
    Block {
        peer: PeerId,
    },
    Keep {
        peer: PeerId,
    },
}

/// The answer to a queued sync request (see [`Client::queue_sync_request`]): the peer's
/// response, or why there is none. Dropping it abandons the request.
#[derive(Debug)]
pub struct SyncAnswer(oneshot::Receiver<Result<Vec<u8>, Error>>);

impl std::future::Future for SyncAnswer {
    type Output = Result<Vec<u8>, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.map_err(|_| Error::Stopped)?)
    }
}

/// A handle to the event loop. Cloning is cheap; the loop stops when all clones are dropped.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
}

impl Client {
    /// Dials an address and waits until the connection is up or has failed.
    pub async fn dial(&self, address: Multiaddr) -> Result<PeerId, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Dial { address, reply }).await?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Keeps an address in the redial set: dialled whenever not connected, with backoff.
    pub async fn remember(&self, address: Multiaddr) -> Result<(), Error> {
        self.send(Command::Remember { address }).await
    }

    /// Stops redialling a peer, at any of its addresses.
    pub async fn forget(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Forget { peer }).await
    }

    /// Gossips a frame to a space.
    pub async fn publish(&self, space: String, data: Vec<u8>) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Publish { space, data, reply }).await?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Gives the verdict on a gossip message: relay it, drop it, or drop it and penalise.
    pub async fn report(
        &self,
        message_id: Vec<u8>,
        source: PeerId,
        verdict: Verdict,
    ) -> Result<(), Error> {
        self.send(Command::Report {
            message_id,
            source,
            verdict,
        })
        .await
    }

    pub async fn subscribe(&self, space: String) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Subscribe { space, reply }).await?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    pub async fn unsubscribe(&self, space: String) -> Result<(), Error> {
        self.send(Command::Unsubscribe { space }).await
    }

    pub async fn status(&self) -> Result<Status, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    /// Queues a sync request to a connected peer and returns its answer to come. Requests
    /// queued one after another go to the peer in that order.
    pub async fn queue_sync_request(
        &self,
        peer: PeerId,
        request: Vec<u8>,
    ) -> Result<SyncAnswer, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::SyncRequest {
            peer,
            request,
            reply,
        })
        .await?;
        Ok(SyncAnswer(answer))
    }

    /// Answers a peer's sync request.
    pub async fn sync_respond(&self, token: u64, response: Vec<u8>) -> Result<(), Error> {
        self.send(Command::SyncRespond { token, response }).await
    }

    /// Presents an invitation to a connected peer and waits for its answer.
    pub async fn present_invitation(
        &self,
        peer: PeerId,
        request: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Invite {
            peer,
            request,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Error::Stopped)?
    }

    /// Answers a peer's invitation.
    pub async fn invite_respond(&self, token: u64, response: Vec<u8>) -> Result<(), Error> {
        self.send(Command::InviteRespond { token, response }).await
    }

    /// Blocks a peer that misbehaved (for the configured ban duration) and disconnects it.
    pub async fn block(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Block { peer }).await
    }

    /// Lets a peer past the limits on strangers' connections from now on (a peer of an
    /// organisation this node follows, say), so it gets in at once even when strangers have
    /// taken their share.
    pub async fn keep(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Keep { peer }).await
    }

    /// The network's counters in the OpenMetrics text format.
    pub async fn metrics(&self) -> Result<String, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Metrics { reply }).await?;
        answer.await.map_err(|_| Error::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.commands
            .send(command)
            .await
            .map_err(|_| Error::Stopped)
    }
}

/// What the network tells its owner, on two lanes: gossip messages from strangers (peers
/// this node does not keep) come on their own, so that a flood of them neither delays nor
/// crowds out the messages of kept peers and the other events.
#[derive(Debug)]
pub struct Events {
    /// Every event, including kept peers' gossip messages.
    pub main: mpsc::Receiver<Event>,
    /// Strangers' gossip messages ([`Event::Message`] only).
    pub strangers: mpsc::Receiver<Event>,
}

/// Builds the swarm and starts listening. Run the returned [`EventLoop`] on a task.
pub fn new(config: Config) -> Result<(Client, Events, EventLoop), Error> {
    let (command_sender, command_receiver) = mpsc::channel(COMMAND_QUEUE);
    let (event_sender, event_receiver) = mpsc::channel(EVENT_QUEUE);
    let (stranger_sender, stranger_receiver) = mpsc::channel(STRANGER_QUEUE);
    let event_loop = EventLoop::new(config, command_receiver, event_sender, stranger_sender)?;
    Ok((
        Client {
            commands: command_sender,
        },
        Events {
            main: event_receiver,
            strangers: stranger_receiver,
        },
        event_loop,
    ))
}
