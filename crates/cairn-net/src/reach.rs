//! How other nodes can reach this one. Owns the relays this node keeps a reservation on
//! while nothing has confirmed that it is reachable directly (chosen among connected peers
//! that offer a relay), and the reachability that status reports, from what AutoNAT, UPnP and
//! the relays said. Hole punching (DCUtR) then upgrades relayed connections by itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, relay, upnp};

use crate::behaviour::Behaviour;
use crate::connected::ConnectedPeers;

/// The protocol by which a peer offers to relay (circuit relay v2).
pub const RELAY_HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// Relays a node that is not reachable directly keeps a reservation on.
const RELAYS_WANTED: usize = 2;
/// Connected peers offering a relay that are remembered as candidates, at most.
const MAX_CANDIDATES: usize = 16;
/// A relay that refused a reservation is asked again after this long, doubling each time.
const FIRST_RETRY: Duration = Duration::from_secs(10);
const MAX_RETRY: Duration = Duration::from_secs(600);
/// A peer that could not be hole punched is tried again after this long (a restarted peer's
/// old connection may still linger at the other end, or its port be held for a minute),
/// doubling up to half an hour: routers that always defeat it cost little.
const FIRST_PUNCH_RETRY: Duration = Duration::from_secs(30);
const MAX_PUNCH_RETRY: Duration = Duration::from_secs(1_800);
/// Peers whose hole punching waits are remembered, at most.
const MAX_PUNCHES: usize = 256;

/// How other nodes can reach this one, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Nothing has been confirmed or refuted yet (no peer has tested an address).
    Checking,
    /// Other nodes can connect to these addresses (confirmed by a peer dialling back, or
    /// mapped on the router by UPnP).
    Direct { addresses: Vec<Multiaddr> },
    /// Not reachable directly, but through these relays, at these addresses.
    Relayed {
        relays: Vec<PeerId>,
        addresses: Vec<Multiaddr>,
    },
    /// Peers tried to dial this node back and could not; no relay holds a place for it. It
    /// can still connect out.
    Unreachable,
}

/// A reservation asked for on a relay, or held.
#[derive(Debug)]
struct Reservation {
    listener: ListenerId,
    accepted: bool,
}

/// The relays in use and the evidence about reachability; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// Connected peers offering a relay, each with an address of it on the IP address its
    /// connection came from.
    candidates: HashMap<PeerId, Multiaddr>,
    reservations: HashMap<PeerId, Reservation>,
    /// Candidates that refused a reservation: when to ask again, and the wait after that.
    retry: HashMap<PeerId, (Instant, Duration)>,
    /// Peers hole punching failed with: when to try again, and the wait after that.
    punches: HashMap<PeerId, (Instant, Duration)>,
    /// The relayed addresses connected peers announce (a few each).
    relayed_addresses: HashMap<PeerId, Vec<Multiaddr>>,
    /// Whether a peer failed to dial this node back at an address it thought it had.
    refuted: bool,
}

impl Reach {
    /// Notes that a connected peer offers a relay at `address`.
    /// One candidate per IP address: identities are free, and many relays on one machine are
    /// one relay.
    pub fn offered(&mut self, relay: PeerId, address: Multiaddr) {
        let ip = crate::gate::address_of(&address);
        let same_machine = self.candidates.iter().any(|(other, known)| {
            *other != relay && ip.is_some() && crate::gate::address_of(known) == ip
        });
        if same_machine {
            return;
        }
        if self.candidates.len() < MAX_CANDIDATES || self.candidates.contains_key(&relay) {
            self.candidates.insert(relay, address);
        }
    }

    /// Notes the relayed addresses a connected peer announces, to reach it through its relay
    /// again for another hole punching attempt.
    pub fn announced(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        let relayed: Vec<Multiaddr> = addresses
            .into_iter()
            .filter(is_relayed)
            .take(RELAYS_WANTED * 2)
            .collect();
        if relayed.is_empty() {
            self.relayed_addresses.remove(&peer);
        } else {
            self.relayed_addresses.insert(peer, relayed);
        }
    }

    /// Forgets a peer that disconnected as a relay candidate (its reservation's listener
    /// closes by itself and is reported to [`Reach::listener_closed`]).
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.candidates.remove(peer);
        self.retry.remove(peer);
        self.relayed_addresses.remove(peer);
        // Hole punching's wait is kept: trying again means reconnecting.
    }

    /// Notes that hole punching with a connected peer failed; it is tried again later.
    fn punch_failed(&mut self, peer: PeerId) -> Duration {
        let wait = self
            .punches
            .get(&peer)
            .map_or(FIRST_PUNCH_RETRY, |(_, wait)| {
                (*wait * 2).min(MAX_PUNCH_RETRY)
            });
        if self.punches.len() >= MAX_PUNCHES && !self.punches.contains_key(&peer) {
            let soonest = self
                .punches
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(peer, _)| *peer);
            if let Some(soonest) = soonest {
                self.punches.remove(&soonest);
            }
        }
        self.punches.insert(peer, (Instant::now() + wait, wait));
        wait
    }

    /// Notes a direct connection to a peer: nothing to retry.
    pub fn punched(&mut self, peer: &PeerId) {
        self.punches.remove(peer);
    }

    /// The peers due for another hole punching attempt (each is then waited for again: an
    /// attempt that fails reports it, one that works clears it).
    fn due_punches(&mut self, now: Instant) -> Vec<PeerId> {
        let due: Vec<PeerId> = self
            .punches
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &due {
            if let Some((at, wait)) = self.punches.get_mut(peer) {
                *at = now + *wait;
            }
        }
        due
    }

    /// Notes a listener that closed; if it was a reservation's (the relay went away or
    /// refused), the relay is asked again later, waiting longer each time it refuses.
    pub fn listener_closed(&mut self, listener: ListenerId, reason: Result<(), String>) {
        let Some(relay) = self
            .reservations
            .iter()
            .find(|(_, reservation)| reservation.listener == listener)
            .map(|(relay, _)| *relay)
        else {
            return;
        };
        self.reservations.remove(&relay);
        if !self.candidates.contains_key(&relay) {
            // Gone (disconnected): nothing to ask again.
            tracing::info!(%relay, "the relay no longer holds a place for this node");
            return;
        }
        let wait = self
            .retry
            .get(&relay)
            .map_or(FIRST_RETRY, |(_, wait)| (*wait * 2).min(MAX_RETRY));
        self.retry.insert(relay, (Instant::now() + wait, wait));
        match reason {
            Ok(()) => tracing::info!(%relay, "the relay no longer holds a place for this node"),
            Err(err) => {
                tracing::info!(%relay, "the relay holds no place for this node (asking again in {wait:?}): {err}");
            }
        }
    }

    /// Notes that a relay accepted (or renewed) this node's reservation.
    pub fn on_relay_client(&mut self, event: relay::client::Event) {
        let relay::client::Event::ReservationReqAccepted { relay_peer_id, .. } = event else {
            return;
        };
        if let Some(reservation) = self.reservations.get_mut(&relay_peer_id)
            && !reservation.accepted
        {
            reservation.accepted = true;
            self.retry.remove(&relay_peer_id);
            tracing::info!(relay = %relay_peer_id, "reachable through a relay: it holds a place for this node");
        }
    }

    /// Notes how hole punching with a peer went; one that failed is tried again later.
    pub fn on_hole_punch(&mut self, event: dcutr::Event, connected: &ConnectedPeers) {
        let peer = event.remote_peer_id;
        match event.result {
            Ok(_) => {
                tracing::info!(%peer, "hole punched: a direct connection replaces the relayed one")
            }
            Err(err) => {
                if connected.only_relayed(&peer).is_empty() {
                    return;
                }
                let wait = self.punch_failed(peer);
                tracing::info!(%peer, "hole punching failed; the connection stays relayed (trying again in {wait:?}): {err}");
            }
        }
    }

    /// Notes the outcome of a peer testing whether it can dial this node back (AutoNAT).
    pub fn on_dial_back(&mut self, event: autonat::v2::client::Event) {
        let autonat::v2::client::Event {
            tested_addr,
            server,
            result,
            ..
        } = event;
        // A relayed address says nothing about this node's own reachability.
        if is_relayed(&tested_addr) {
            return;
        }
        self.refuted = result.is_err();
        match result {
            Ok(()) => tracing::debug!(%tested_addr, %server, "a peer dialled this node back"),
            Err(err) => {
                tracing::info!(%tested_addr, %server, "a peer could not dial this node back at this address: {err}");
            }
        }
    }

    /// Hole punching starts on a new relayed connection: for each peer due for another try,
    /// closing its relayed connections makes the node that keeps dialling the other open a
    /// new one through the relay.
    pub fn retry_hole_punching(
        &mut self,
        now: Instant,
        connected: &ConnectedPeers,
        redials: impl Fn(PeerId) -> bool,
        swarm: &mut Swarm<Behaviour>,
    ) {
        for peer in self.due_punches(now) {
            let relayed = connected.only_relayed(&peer);
            if relayed.is_empty() {
                continue;
            }
            tracing::info!(%peer, "trying again to connect directly to a peer reached through a relay");
            if redials(peer) {
                // This node dials the peer again through the relay once it is gone.
                for connection in relayed {
                    swarm.close_connection(connection);
                }
            } else if let Some(addresses) = self.relayed_addresses.get(&peer) {
                // A second relayed connection, beside the first, starts it all the same.
                let opts = DialOpts::peer_id(peer)
                    .addresses(addresses.clone())
                    .condition(PeerCondition::Always)
                    .build();
                if let Err(err) = swarm.dial(opts) {
                    tracing::debug!(%peer, "dial failed: {err}");
                }
            }
        }
    }

    /// Keeps reservations on up to two relays while no address of this node is confirmed,
    /// and gives them up once one is.
    pub fn update(&mut self, swarm: &mut Swarm<Behaviour>) {
        if swarm
            .external_addresses()
            .any(|address| !is_relayed(address))
        {
            for (relay, reservation) in self.reservations.drain() {
                tracing::info!(%relay, "reachable directly: giving up the reservation on a relay");
                swarm.remove_listener(reservation.listener);
            }
            return;
        }
        let now = Instant::now();
        while self.reservations.len() < RELAYS_WANTED {
            // Peers this node keeps (it dialled them, or their organisation is followed)
            // first: a stranger's relay could drop what it carries.
            let gate = &swarm.behaviour().gate;
            let Some((relay, address)) = self
                .candidates
                .iter()
                .filter(|(relay, _)| {
                    !self.reservations.contains_key(relay)
                        && self.retry.get(relay).is_none_or(|(at, _)| *at <= now)
                })
                .max_by_key(|(relay, _)| gate.is_kept(relay))
                .map(|(relay, address)| (*relay, address.clone()))
            else {
                return;
            };
            let circuit = address
                .with(Protocol::P2p(relay))
                .with(Protocol::P2pCircuit);
            match swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    tracing::info!(%relay, %circuit, "not reachable directly (yet): asking a peer's relay to hold a place for this node");
                    self.reservations.insert(
                        relay,
                        Reservation {
                            listener,
                            accepted: false,
                        },
                    );
                }
                Err(err) => {
                    tracing::info!(%relay, "could not ask the peer's relay for a place: {err}");
                    self.candidates.remove(&relay);
                }
            }
        }
    }

    /// How other nodes can reach this one now.
    pub fn reachability(&self, swarm: &Swarm<Behaviour>) -> Reachability {
        let (relayed, direct): (Vec<Multiaddr>, Vec<Multiaddr>) =
            swarm.external_addresses().cloned().partition(is_relayed);
        if !direct.is_empty() {
            return Reachability::Direct { addresses: direct };
        }
        let mut relays: Vec<PeerId> = self
            .reservations
            .iter()
            .filter(|(_, reservation)| reservation.accepted)
            .map(|(relay, _)| *relay)
            .collect();
        if !relays.is_empty() {
            relays.sort();
            return Reachability::Relayed {
                relays,
                addresses: relayed,
            };
        }
        if self.refuted {
            Reachability::Unreachable
        } else {
            Reachability::Checking
        }
    }
}

/// Whether an address goes through a relay.
pub(crate) fn is_relayed(address: &Multiaddr) -> bool {
    address
        .iter()
        .any(|protocol| matches!(protocol, Protocol::P2pCircuit))
}

/// Logs an address of this node that a peer confirmed (relayed ones are logged as the relay
/// accepts them).
pub(crate) fn log_confirmed(address: &Multiaddr) {
    if !is_relayed(address) {
        tracing::info!(%address, "reachable directly: a peer confirmed this address");
    }
}

/// Logs what the router said about port forwarding (UPnP).
pub(crate) fn log_upnp(event: upnp::Event) {
    match event {
        upnp::Event::NewExternalAddr { external_addr, .. } => {
            tracing::info!(%external_addr, "the router forwards a port to this node (UPnP)");
        }
        upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
            tracing::info!(%external_addr, "the router stopped forwarding a port to this node (UPnP)");
        }
        upnp::Event::GatewayNotFound => tracing::debug!("no router offers port forwarding (UPnP)"),
        upnp::Event::NonRoutableGateway => tracing::info!(
            "the router offers port forwarding (UPnP) but is itself behind another router; not used"
        ),
    }
}
