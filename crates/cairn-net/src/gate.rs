//! The connection gate: limits on inbound connections per remote IP address, which
//! libp2p's own limits (total and per peer id) do not have. Peer ids cost nothing, so a
//! stranger could otherwise take every slot from one machine. It owns:
//! - connections still in their handshake, per address;
//! - established connections of strangers, per address and in total, below the node's whole
//!   limit so that slots stay free for *kept* peers (ones this node dialled or its owner
//!   vouched for), which pass the gate whatever strangers do. When the strangers' slots are
//!   full, a stranger from an address with fewer strangers takes the place of the oldest one
//!   from the most crowded address: many identities from a few machines cannot keep
//!   newcomers out;
//! - bans of addresses that keep sending peers that get banned.
//!
//! A peer that arrives through a relay has the relay's address: it is limited by its peer id
//! alone (by libp2p's per-peer limit) and its misdeeds never ban the relay's address. When
//! the strangers' places are full, though, all the clients of one relay count together, so
//! the oldest of a relay crowded with strangers makes room as an address's would.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use crate::bans::BanList;
use crate::throttle::KeptPeers;

/// Addresses whose strikes are counted at once; past it, new addresses' strikes wait for
/// old ones to lapse.
const MAX_STRUCK_ADDRESSES: usize = 4_096;
/// Banned addresses at once.
const MAX_BANNED_ADDRESSES: usize = 4_096;
/// Kept peers remembered; the oldest is forgotten first.
const MAX_KEPT: usize = 1_024;

/// The gate's limits (see [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct GateLimits {
    /// Connections from one address still in their handshake.
    pub pending_per_address: u32,
    /// Established connections of strangers from one address.
    pub strangers_per_address: u32,
    /// Established connections of strangers in all.
    pub strangers: u32,
    /// Peers banned from one address within `strike_window` before the address is banned.
    pub strikes_per_address: u32,
    pub strike_window: Duration,
    /// While the process's resident memory is above this, no new stranger gets in (kept
    /// peers still do). Read from `/proc/self/status`; elsewhere there is no ceiling.
    pub max_memory_bytes: u64,
}

/// Why the gate turned a connection away.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the address {0} is banned for sending misbehaving peers")]
    Banned(IpAddr),
    #[error("the address {0} has {1} connections in their handshake already")]
    PendingPerAddress(IpAddr, u32),
    #[error("the address {0} has {1} connections of strangers already")]
    StrangersPerAddress(IpAddr, u32),
    #[error("{0} connections of strangers are open already")]
    Strangers(u32),
    #[error("the node uses {0} MiB of memory, over its ceiling for taking in strangers")]
    Memory(u64),
}

/// How often the process's memory is looked at; connections in between go by the last look.
const MEMORY_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The process's resident memory in bytes, where the system says (Linux).
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Where an inbound connection comes from: an address, or a relay (limited by peer id). An
/// IPv6 address counts by its /64 prefix, which one home or server is commonly given whole:
/// its 2^64 addresses are one sender.
pub(crate) fn address_of(remote: &Multiaddr) -> Option<IpAddr> {
    if remote
        .iter()
        .any(|part| matches!(part, Protocol::P2pCircuit))
    {
        return None;
    }
    remote.iter().find_map(|part| match part {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(std::net::Ipv6Addr::from_bits(
            ip.to_bits() & !u128::from(u64::MAX),
        ))),
        _ => None,
    })
}

/// Where a stranger's connection comes from, for sharing out the strangers' places: its
/// address, or the relay it came through (every client of one relay counts together, so a
/// relay full of throwaway identities is as crowded as an address full of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Source {
    Address(IpAddr),
    Relay(PeerId),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(address) => write!(f, "address {address}"),
            Self::Relay(relay) => write!(f, "relay {relay}"),
        }
    }
}

/// The source of an inbound connection that arrived on `local` from `remote`. Through a
/// relay, libp2p gives the relayed listening address (`…/p2p/RELAY/p2p-circuit`) as `local`
/// and only `/p2p/PEER` as `remote`.
fn source_of(local: &Multiaddr, remote: &Multiaddr) -> Option<Source> {
    relay_of(local)
        .or_else(|| relay_of(remote))
        .map(Source::Relay)
        .or_else(|| address_of(remote).map(Source::Address))
}

/// The relay in a relayed address: the peer just before `/p2p-circuit`.
fn relay_of(address: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for part in address.iter() {
        match part {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
struct Stranger {
    peer: PeerId,
    source: Option<Source>,
    arrival: u64,
}

#[derive(Debug)]
pub(crate) struct Gate {
    limits: GateLimits,
    pending: HashMap<ConnectionId, IpAddr>,
    pending_per_address: HashMap<IpAddr, u32>,
    /// Inbound connections of strangers: the peer, where it came from and the order it came
    /// in.
    strangers: HashMap<ConnectionId, Stranger>,
    strangers_per_source: HashMap<Source, u32>,
    arrivals: u64,
    /// Strangers' connections to close, to make room for a newcomer; and the task to wake.
    evicting: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
    kept: KeptPeers,
    kept_order: VecDeque<PeerId>,
    /// The process's resident memory as last looked at, and when.
    memory: Option<(Instant, u64)>,
    /// Peers banned per address in the current window, and when the window ends.
    strikes: HashMap<IpAddr, (u32, Instant)>,
    banned: BanList<IpAddr>,
    /// Refusals since the last [`Gate::take_refusals`], for a rate-limited log line.
    refusals: u64,
    last_refusal: Option<String>,
}

impl Gate {
    pub fn new(limits: GateLimits, kept: KeptPeers) -> Self {
        Self {
            limits,
            pending: HashMap::new(),
            pending_per_address: HashMap::new(),
            strangers: HashMap::new(),
            strangers_per_source: HashMap::new(),
            arrivals: 0,
            evicting: VecDeque::new(),
            waker: None,
            kept,
            kept_order: VecDeque::new(),
            memory: None,
            strikes: HashMap::new(),
            banned: BanList::new(MAX_BANNED_ADDRESSES),
            refusals: 0,
            last_refusal: None,
        }
    }

    /// Lets `peer` past the stranger limits from now on. Returns the peer forgotten to make
    /// room, if the list was full.
    pub fn keep(&mut self, peer: PeerId) -> Option<PeerId> {
        if !self.kept.insert(peer) {
            return None;
        }
        // Its connections that came in as a stranger's no longer take strangers' places (nor
        // can they be closed to make room).
        let counted: Vec<ConnectionId> = self
            .strangers
            .iter()
            .filter(|(_, stranger)| stranger.peer == peer)
            .map(|(connection, _)| *connection)
            .collect();
        for connection in counted {
            self.forget_stranger(&connection);
        }
        self.kept_order.push_back(peer);
        if self.kept_order.len() <= MAX_KEPT {
            return None;
        }
        let oldest = self.kept_order.pop_front()?;
        self.kept.remove(&oldest);
        Some(oldest)
    }

    pub fn is_kept(&self, peer: &PeerId) -> bool {
        self.kept.contains(peer)
    }

    /// Counts a ban of a peer that came from `remote`, as `strikes` strikes. Returns the
    /// address if this bans it (until `now + ban`). Peers through a relay never strike the
    /// relay's address, and kept peers are banned by peer id only.
    pub fn strike(
        &mut self,
        peer: &PeerId,
        remote: &Multiaddr,
        strikes: u32,
        now: Instant,
        ban: Duration,
    ) -> Option<IpAddr> {
        let address = address_of(remote)?;
        if self.is_kept(peer) {
            return None;
        }
        if !self.strikes.contains_key(&address) && self.strikes.len() >= MAX_STRUCK_ADDRESSES {
            self.strikes.retain(|_, (_, ends)| *ends > now);
            if self.strikes.len() >= MAX_STRUCK_ADDRESSES {
                return None;
            }
        }
        let window = self.limits.strike_window;
        let (count, ends) = self.strikes.entry(address).or_insert((0, now + window));
        if *ends <= now {
            *count = 0;
            *ends = now + window;
        }
        *count = count.saturating_add(strikes);
        if *count < self.limits.strikes_per_address {
            return None;
        }
        self.strikes.remove(&address);
        self.banned.insert(address, now + ban);
        Some(address)
    }

    /// Lifts address bans that have ended and forgets lapsed strikes.
    pub fn expire(&mut self, now: Instant) {
        for address in self.banned.expire(now) {
            tracing::info!(%address, "address ban lifted");
        }
        self.strikes.retain(|_, (_, ends)| *ends > now);
    }

    pub fn banned_addresses(&self) -> usize {
        self.banned.len()
    }

    /// Connections turned away since the last call, and the last reason.
    pub fn take_refusals(&mut self) -> (u64, Option<String>) {
        (std::mem::take(&mut self.refusals), self.last_refusal.take())
    }

    /// The resident memory in bytes if it is over the ceiling (looked at again if the last
    /// look is old).
    fn over_memory(&mut self, now: Instant) -> Option<u64> {
        let stale = self
            .memory
            .is_none_or(|(looked, _)| now.duration_since(looked) >= MEMORY_CHECK_INTERVAL);
        if stale {
            self.memory = resident_memory().map(|bytes| (now, bytes));
        }
        let (_, bytes) = self.memory?;
        (bytes > self.limits.max_memory_bytes).then_some(bytes)
    }

    fn refuse(&mut self, refusal: Refusal) -> ConnectionDenied {
        self.refusals += 1;
        self.last_refusal = Some(refusal.to_string());
        ConnectionDenied::new(refusal)
    }

    /// The most crowded source (address or relay), if it holds more strangers than `source`
    /// would with one more: a newcomer from `source` may then take the place of one of them.
    fn crowded_over(&self, source: Option<Source>) -> Option<Source> {
        let newcomer = source
            .and_then(|source| self.strangers_per_source.get(&source).copied())
            .unwrap_or(0);
        let (&crowded, &count) = self
            .strangers_per_source
            .iter()
            .max_by_key(|(source, count)| (**count, **source))?;
        (count > newcomer + 1).then_some(crowded)
    }

    /// With the strangers' places full, closes the oldest stranger of the most crowded
    /// source (it stops counting now) for a newcomer from `source`.
    fn make_room_for(&mut self, source: Option<Source>) {
        let Some(crowded) = self.crowded_over(source) else {
            return;
        };
        let oldest = self
            .strangers
            .iter()
            .filter(|(_, stranger)| stranger.source == Some(crowded))
            .min_by_key(|(_, stranger)| stranger.arrival)
            .map(|(connection, stranger)| (*connection, stranger.peer));
        let Some((connection, peer)) = oldest else {
            return;
        };
        self.forget_stranger(&connection);
        tracing::info!(%peer, from = %crowded, "the strangers' connections are full: closing the oldest from the most crowded address or relay to let in a stranger from another");
        self.evicting.push_back((peer, connection));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Stops counting a stranger's connection.
    fn forget_stranger(&mut self, connection: &ConnectionId) {
        if let Some(Stranger {
            source: Some(source),
            ..
        }) = self.strangers.remove(connection)
        {
            decrement(&mut self.strangers_per_source, &source);
        }
    }

    fn end_pending(&mut self, connection: &ConnectionId) {
        if let Some(address) = self.pending.remove(connection) {
            decrement(&mut self.pending_per_address, &address);
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, address: &K) {
    if let Some(count) = counts.get_mut(address) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(address);
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(address) = address_of(remote) else {
            return Ok(());
        };
        if self.banned.contains(&address) {
            return Err(self.refuse(Refusal::Banned(address)));
        }
        let pending = self.pending_per_address.get(&address).copied().unwrap_or(0);
        if pending >= self.limits.pending_per_address {
            return Err(self.refuse(Refusal::PendingPerAddress(address, pending)));
        }
        self.pending.insert(connection, address);
        *self.pending_per_address.entry(address).or_default() += 1;
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.end_pending(&connection);
        if self.is_kept(&peer) {
            return Ok(dummy::ConnectionHandler);
        }
        let source = source_of(local, remote);
        // A relay's clients are limited by peer id, not together: an honest relay may carry
        // many homes. They count together only when making room.
        if let Some(Source::Address(address)) = source {
            let from_address = self
                .strangers_per_source
                .get(&Source::Address(address))
                .copied()
                .unwrap_or(0);
            if from_address >= self.limits.strangers_per_address {
                return Err(self.refuse(Refusal::StrangersPerAddress(address, from_address)));
            }
        }
        if let Some(bytes) = self.over_memory(Instant::now()) {
            return Err(self.refuse(Refusal::Memory(bytes >> 20)));
        }
        let strangers = u32::try_from(self.strangers.len()).unwrap_or(u32::MAX);
        if strangers >= self.limits.strangers && self.crowded_over(source).is_none() {
            return Err(self.refuse(Refusal::Strangers(strangers)));
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection: ConnectionId,
        _peer: PeerId,
        _address: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // This node chose to dial: never limited here.
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) if endpoint.is_listener() && !self.is_kept(&peer_id) => {
                let source = match endpoint {
                    libp2p::core::ConnectedPoint::Listener {
                        local_addr,
                        send_back_addr,
                    } => source_of(local_addr, send_back_addr),
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => {
                        address_of(address).map(Source::Address)
                    }
                };
                // Past the strangers' places (every other behaviour let it in): the oldest
                // stranger of the most crowded address or relay makes room.
                let full = u32::try_from(self.strangers.len()).unwrap_or(u32::MAX)
                    >= self.limits.strangers;
                if full {
                    self.make_room_for(source);
                }
                if let Some(source) = source {
                    *self.strangers_per_source.entry(source).or_default() += 1;
                }
                self.arrivals += 1;
                self.strangers.insert(
                    connection_id,
                    Stranger {
                        peer: peer_id,
                        source,
                        arrival: self.arrivals,
                    },
                );
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.forget_stranger(&connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.end_pending(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection)) = self.evicting.pop_front() {
            return Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(connection),
            });
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GateLimits {
        GateLimits {
            pending_per_address: 2,
            strangers_per_address: 2,
            strangers: 3,
            strikes_per_address: 3,
            strike_window: Duration::from_secs(60),
            max_memory_bytes: u64::MAX,
        }
    }

    /// An inbound connection through the gate as the swarm would make it: its handshake,
    /// its admission, then its being established.
    fn connect(
        gate: &mut Gate,
        number: usize,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let connection = ConnectionId::new_unchecked(number);
        gate.handle_pending_inbound_connection(connection, local, remote)?;
        gate.handle_established_inbound_connection(connection, peer, local, remote)?;
        let endpoint = libp2p::core::ConnectedPoint::Listener {
            local_addr: local.clone(),
            send_back_addr: remote.clone(),
        };
        gate.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id: peer,
            connection_id: connection,
            endpoint: &endpoint,
            failed_addresses: &[],
            other_established: 0,
        }));
        Ok(())
    }

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4001").parse().expect("address")
    }

    #[test]
    fn over_the_memory_ceiling_strangers_wait_and_kept_peers_pass() {
        if resident_memory().is_none() {
            return; // No ceiling where the system does not say.
        }
        let mut gate = Gate::new(
            GateLimits {
                max_memory_bytes: 1,
                ..limits()
            },
            KeptPeers::default(),
        );
        let (local, remote) = (from("10.0.0.1"), from("10.0.0.9"));
        let stranger = ConnectionId::new_unchecked(1);
        gate.handle_pending_inbound_connection(stranger, &local, &remote)
            .expect("a handshake may start");
        assert!(
            gate.handle_established_inbound_connection(stranger, PeerId::random(), &local, &remote)
                .is_err()
        );
        let friend = PeerId::random();
        gate.keep(friend);
        let kept = ConnectionId::new_unchecked(2);
        gate.handle_pending_inbound_connection(kept, &local, &remote)
            .expect("a handshake may start");
        gate.handle_established_inbound_connection(kept, friend, &local, &remote)
            .expect("a kept peer passes");
    }

    #[test]
    fn an_ipv6_sender_counts_by_its_64_prefix_and_a_relayed_one_not_at_all() {
        let one: Multiaddr = "/ip6/2001:db8:1:2:aaaa::1/tcp/4001"
            .parse()
            .expect("address");
        let same: Multiaddr = "/ip6/2001:db8:1:2:bbbb::9/tcp/4001"
            .parse()
            .expect("address");
        let other: Multiaddr = "/ip6/2001:db8:1:3::1/tcp/4001".parse().expect("address");
        assert_eq!(address_of(&one), address_of(&same));
        assert_ne!(address_of(&one), address_of(&other));
        let relayed: Multiaddr = "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
            .parse()
            .expect("address");
        assert_eq!(address_of(&relayed), None);
    }

    #[test]
    fn handshakes_are_limited_per_address() {
        let local = from("10.0.0.1");
        let (a, b) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        let mut gate = Gate::new(limits(), KeptPeers::default());
        gate.handle_pending_inbound_connection(a, &local, &from("10.0.0.9"))
            .expect("first");
        gate.handle_pending_inbound_connection(b, &local, &from("10.0.0.9"))
            .expect("second");
        assert!(
            gate.handle_pending_inbound_connection(
                ConnectionId::new_unchecked(3),
                &local,
                &from("10.0.0.9")
            )
            .is_err(),
            "a third handshake from one address waits"
        );
        gate.handle_pending_inbound_connection(
            ConnectionId::new_unchecked(4),
            &local,
            &from("10.0.0.8"),
        )
        .expect("another address is not held up");
        gate.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &local,
            send_back_addr: &from("10.0.0.9"),
            error: &libp2p::swarm::ListenError::Aborted,
            connection_id: a,
            peer_id: None,
        }));
        gate.handle_pending_inbound_connection(
            ConnectionId::new_unchecked(5),
            &local,
            &from("10.0.0.9"),
        )
        .expect("a failed handshake frees its slot");
    }

    #[test]
    fn strangers_are_limited_per_address_and_in_all_but_kept_peers_pass() {
        let mut gate = Gate::new(limits(), KeptPeers::default());
        let local = from("10.0.0.1");
        let mut next = 0;
        let mut admit = |gate: &mut Gate, ip: &str, peer: PeerId| {
            next += 1;
            connect(gate, next, peer, &local, &from(ip))
        };
        admit(&mut gate, "10.0.0.9", PeerId::random()).expect("first stranger");
        admit(&mut gate, "10.0.0.9", PeerId::random()).expect("second stranger");
        assert!(admit(&mut gate, "10.0.0.9", PeerId::random()).is_err());
        admit(&mut gate, "10.0.0.8", PeerId::random()).expect("another address");
        // Full: a stranger from a new address takes the place of the oldest from the most
        // crowded one...
        admit(&mut gate, "10.0.0.7", PeerId::random()).expect("room made");
        assert_eq!(gate.evicting.len(), 1);
        assert_eq!(
            gate.strangers_per_source
                .get(&Source::Address("10.0.0.9".parse().expect("ip"))),
            Some(&1)
        );
        // ...but once every address holds its fair share, the next one waits.
        assert!(
            admit(&mut gate, "10.0.0.6", PeerId::random()).is_err(),
            "the strangers' slots are full"
        );
        let friend = PeerId::random();
        gate.keep(friend);
        admit(&mut gate, "10.0.0.9", friend).expect("a kept peer passes");
        assert_eq!(gate.take_refusals().0, 2);
    }

    #[test]
    fn strangers_through_one_relay_count_together_when_room_is_made() {
        let mut gate = Gate::new(limits(), KeptPeers::default());
        let local = from("10.0.0.1");
        let relay = PeerId::random();
        let through_relay: Multiaddr = format!("/ip4/10.0.0.5/tcp/4001/p2p/{relay}/p2p-circuit")
            .parse()
            .expect("address");
        let mut next = 0;
        // As libp2p gives them: through a relay, the relayed listening address as the local
        // one and only the peer as the remote one.
        let mut admit = |gate: &mut Gate, relayed: bool| {
            next += 1;
            let peer = PeerId::random();
            let (local, remote) = if relayed {
                (
                    through_relay.clone(),
                    Multiaddr::empty().with(Protocol::P2p(peer)),
                )
            } else {
                (local.clone(), from("10.0.0.8"))
            };
            connect(gate, next, peer, &local, &remote)?;
            Ok::<_, ConnectionDenied>(peer)
        };
        // Throwaway identities through one relay fill every place (no per-address cap: an
        // honest relay may carry many homes)...
        let first = admit(&mut gate, true).expect("relayed");
        for _ in 1..limits().strangers {
            admit(&mut gate, true).expect("relayed");
        }
        // ...and a stranger from an address of its own still gets in, in the place of the
        // relay's oldest client.
        admit(&mut gate, false).expect("room made");
        assert_eq!(
            gate.evicting.front().map(|(peer, _)| *peer),
            Some(first),
            "the relay's oldest client makes room"
        );
        assert_eq!(
            source_of(&through_relay, &from("10.0.0.5")),
            Some(Source::Relay(relay)),
            "the relay, not its address"
        );
    }

    #[test]
    fn an_address_that_keeps_sending_banned_peers_is_banned_but_never_a_relay() {
        let mut gate = Gate::new(limits(), KeptPeers::default());
        let now = Instant::now();
        let ban = Duration::from_secs(600);
        let remote = from("10.0.0.9");
        assert_eq!(gate.strike(&PeerId::random(), &remote, 1, now, ban), None);
        assert_eq!(gate.strike(&PeerId::random(), &remote, 1, now, ban), None);
        assert_eq!(
            gate.strike(&PeerId::random(), &remote, 1, now, ban),
            Some("10.0.0.9".parse().expect("ip"))
        );
        let local = from("10.0.0.1");
        assert!(
            gate.handle_pending_inbound_connection(ConnectionId::new_unchecked(1), &local, &remote)
                .is_err()
        );
        let relayed: Multiaddr = format!(
            "/ip4/10.0.0.5/tcp/4001/p2p/{}/p2p-circuit",
            PeerId::random()
        )
        .parse()
        .expect("address");
        for _ in 0..10 {
            assert_eq!(gate.strike(&PeerId::random(), &relayed, 1, now, ban), None);
        }
        gate.expire(now + ban);
        assert_eq!(gate.banned_addresses(), 0);
        gate.handle_pending_inbound_connection(ConnectionId::new_unchecked(2), &local, &remote)
            .expect("the ban ended");
    }
}
