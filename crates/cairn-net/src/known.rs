//! The peers this node keeps connected to: each known address with its backoff and whether
//! its last attempt failed. A known peer reached at an address not yet known has it added (so
//! a peer that moved is redialled where it is now), and its addresses that failed are dropped.
//! A known peer that cannot be reached is looked up through other peers (Kademlia).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, kad};

use crate::behaviour::Behaviour;
use crate::event_loop::peer_of;
use crate::reach::is_relayed;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Addresses kept per known peer at most, as the node's address book keeps.
const MAX_ADDRESSES_PER_PEER: usize = 8;
/// Redials under way at most (more known addresses than this wait for a later tick).
const MAX_DIALLING: usize = 256;
/// Known peers looked up through other peers at once, at most.
const MAX_LOOKUPS: usize = 16;

/// A known address and when to try it next.
#[derive(Debug)]
struct Redial {
    /// The peer at the address, once known (from the address or from reaching it).
    peer: Option<PeerId>,
    next_attempt: Instant,
    backoff: Duration,
    /// Whether the last attempt at this address failed.
    failed: bool,
    /// Whether this node reached the peer at this address since it started.
    worked: bool,
}

impl Redial {
    fn new(peer: Option<PeerId>, now: Instant) -> Self {
        Self {
            peer,
            next_attempt: now,
            backoff: FIRST_BACKOFF,
            failed: false,
            worked: false,
        }
    }
}

/// The redial set; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct KnownPeers {
    addresses: HashMap<Multiaddr, Redial>,
    /// Redials under way, to tell which address a failed dial was for.
    dialling: HashMap<ConnectionId, Multiaddr>,
    /// Known peers that could not be reached at their addresses, being looked up, by query.
    lookups: HashMap<kad::QueryId, PeerId>,
}

impl KnownPeers {
    pub fn new(addresses: &[Multiaddr], now: Instant) -> Self {
        let mut known = Self::default();
        for address in addresses {
            known.remember(address.clone(), now);
        }
        known
    }

    /// Keeps an address in the set: dialled whenever its peer is not connected.
    pub fn remember(&mut self, address: Multiaddr, now: Instant) {
        let peer = peer_of(&address);
        self.addresses
            .entry(address)
            .or_insert_with(|| Redial::new(peer, now));
    }

    /// Stops redialling a peer at any of its addresses.
    pub fn forget(&mut self, peer: PeerId) {
        self.addresses.retain(|_, redial| redial.peer != Some(peer));
    }

    /// Whether this node keeps dialling `peer`.
    pub fn contains_peer(&self, peer: PeerId) -> bool {
        self.addresses
            .values()
            .any(|redial| redial.peer == Some(peer))
    }

    /// Every known address, sorted.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        let mut addresses: Vec<Multiaddr> = self.addresses.keys().cloned().collect();
        addresses.sort();
        addresses
    }

    /// The addresses due for a redial at `now` whose peer `wanted` says to dial (not connected,
    /// not banned); each one's next attempt is pushed back by its backoff, which doubles.
    pub fn due(&mut self, now: Instant, wanted: impl Fn(PeerId) -> bool) -> Vec<Multiaddr> {
        let room = MAX_DIALLING.saturating_sub(self.dialling.len());
        let mut due = Vec::new();
        for (address, redial) in &mut self.addresses {
            if due.len() >= room || redial.next_attempt > now || !redial.peer.is_none_or(&wanted) {
                continue;
            }
            redial.next_attempt = now + redial.backoff;
            redial.backoff = (redial.backoff * 2).min(MAX_BACKOFF);
            due.push(address.clone());
        }
        due
    }

    /// Notes that the redial of `address` is connection `connection`.
    pub fn dialling(&mut self, connection: ConnectionId, address: Multiaddr) {
        self.dialling.insert(connection, address);
    }

    /// Notes that connection `connection` failed. Returns the known peer whose redial it was,
    /// and the address if it is dropped: a direct address that fails while the peer is
    /// connected right now (`connected_directly`) through another address this node knows to
    /// work. A relayed address is never dropped for a direct one: it is the way back in after
    /// the peer's router forgets it.
    pub fn dial_failed(
        &mut self,
        connection: ConnectionId,
        connected_directly: impl Fn(PeerId) -> bool,
    ) -> Option<(PeerId, Option<Multiaddr>)> {
        let address = self.dialling.remove(&connection)?;
        let redial = self.addresses.get_mut(&address)?;
        redial.failed = true;
        let peer = redial.peer?;
        let works_elsewhere = connected_directly(peer)
            && !is_relayed(&address)
            && self.addresses.iter().any(|(known, redial)| {
                *known != address && redial.peer == Some(peer) && redial.worked && !redial.failed
            });
        if !works_elsewhere {
            return Some((peer, None));
        }
        self.addresses.remove(&address);
        Some((peer, Some(address)))
    }

    /// Of the addresses a connected `peer` announces for itself, the ones worth dialling to
    /// confirm: those not known yet, when the peer is known but none of its addresses worked
    /// since this node started (it has moved, and reached this node first).
    pub fn worth_confirming(&self, peer: PeerId, announced: &[Multiaddr]) -> Vec<Multiaddr> {
        let mut known_worked = false;
        let mut is_known = false;
        for redial in self.addresses.values().filter(|r| r.peer == Some(peer)) {
            is_known = true;
            known_worked |= redial.worked;
        }
        if !is_known || known_worked {
            return Vec::new();
        }
        announced
            .iter()
            .filter(|address| {
                let base = without_peer(address);
                !self
                    .addresses
                    .keys()
                    .any(|known| without_peer(known) == base)
            })
            .cloned()
            .collect()
    }

    /// Notes that this node dialled and reached `peer` at `address` over `connection`. A known
    /// peer (or one at a known address) has its backoff reset; an address of it not yet known
    /// is added, and its other addresses whose last attempt failed are dropped and returned.
    /// Returns `None` when the peer is not one this node keeps dialling.
    pub fn reached(
        &mut self,
        peer: PeerId,
        address: &Multiaddr,
        connection: ConnectionId,
        now: Instant,
    ) -> Option<Vec<Multiaddr>> {
        self.dialling.remove(&connection);
        let base = without_peer(address);
        let mut at_known_address = false;
        for (known, redial) in &mut self.addresses {
            // Addresses through one relay share everything before the peer id: one known for
            // another peer is not this peer's.
            let same_address =
                without_peer(known) == base && redial.peer.is_none_or(|known| known == peer);
            if same_address || redial.peer == Some(peer) {
                redial.peer = Some(peer);
                redial.backoff = FIRST_BACKOFF;
            }
            if same_address {
                redial.failed = false;
                redial.worked = true;
                at_known_address = true;
            }
        }
        if !self.contains_peer(peer) {
            return None;
        }
        let dropped: Vec<Multiaddr> = self
            .addresses
            .iter()
            .filter(|(known, redial)| {
                redial.peer == Some(peer)
                    && redial.failed
                    && without_peer(known) != base
                    && !is_relayed(known)
            })
            .map(|(known, _)| known.clone())
            .collect();
        for address in &dropped {
            self.addresses.remove(address);
        }
        let count = self
            .addresses
            .values()
            .filter(|redial| redial.peer == Some(peer))
            .count();
        if !at_known_address && count < MAX_ADDRESSES_PER_PEER {
            let mut address = base;
            address.push(Protocol::P2p(peer));
            let mut redial = Redial::new(Some(peer), now);
            redial.next_attempt = now + FIRST_BACKOFF;
            redial.worked = true;
            self.addresses.insert(address, redial);
        }
        Some(dropped)
    }
}

impl KnownPeers {
    /// Asks other peers (Kademlia) where a known peer that could not be reached is now.
    pub fn look_up(&mut self, peer: PeerId, swarm: &mut Swarm<Behaviour>) {
        if self.lookups.len() >= MAX_LOOKUPS || self.lookups.values().any(|p| *p == peer) {
            return;
        }
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            let query = kad.get_closest_peers(peer);
            self.lookups.insert(query, peer);
        }
    }

    /// Dials a looked-up peer at the addresses other peers gave for it. They are only tried:
    /// one is kept (here and in the node's address book) once it worked.
    pub fn on_lookup(
        &mut self,
        query: kad::QueryId,
        result: Result<kad::GetClosestPeersOk, kad::GetClosestPeersError>,
        last: bool,
        swarm: &mut Swarm<Behaviour>,
    ) {
        let Some(&wanted) = self.lookups.get(&query) else {
            return;
        };
        if last {
            self.lookups.remove(&query);
        }
        let peers = match result {
            Ok(kad::GetClosestPeersOk { peers, .. })
            | Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
        };
        let Some(found) = peers.into_iter().find(|info| info.peer_id == wanted) else {
            return;
        };
        if found.addrs.is_empty() || swarm.is_connected(&wanted) {
            return;
        }
        tracing::info!(peer = %wanted, addresses = ?found.addrs.iter().take(MAX_ADDRESSES_PER_PEER).collect::<Vec<_>>(), "other peers know where a known peer is now; dialling it there");
        let addresses: Vec<Multiaddr> = found
            .addrs
            .into_iter()
            .take(MAX_ADDRESSES_PER_PEER)
            .collect();
        let opts = DialOpts::peer_id(wanted)
            .addresses(addresses)
            .allocate_new_port()
            .build();
        if let Err(err) = swarm.dial(opts) {
            tracing::debug!(peer = %wanted, "dial failed: {err}");
        }
    }
}

/// `address` without the `/p2p/<peer id>` it ends in (a relayed address keeps the relay's).
pub(crate) fn without_peer(address: &Multiaddr) -> Multiaddr {
    let mut address = address.clone();
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    fn at(port: u16, peer: PeerId) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}")
            .parse()
            .expect("an address")
    }

    #[test]
    fn a_peer_reached_at_a_new_address_keeps_it_and_drops_the_one_that_failed() {
        let now = Instant::now();
        let (moved, other) = (peer(), peer());
        let mut known = KnownPeers::new(&[at(1, moved), at(2, other)], now);
        let due = known.due(now, |_| true);
        assert_eq!(due.len(), 2);
        let first = ConnectionId::new_unchecked(1);
        known.dialling(first, at(1, moved));
        assert_eq!(known.dial_failed(first, |_| false), Some((moved, None)));

        // Found elsewhere (through another peer): the new address replaces the dead one.
        let dropped = known.reached(moved, &at(3, moved), ConnectionId::new_unchecked(2), now);
        assert_eq!(dropped, Some(vec![at(1, moved)]));
        assert_eq!(known.addresses(), vec![at(2, other), at(3, moved)]);

        // An address that did not fail stays beside a new one.
        let dropped = known.reached(other, &at(4, other), ConnectionId::new_unchecked(3), now);
        assert_eq!(dropped, Some(vec![]));
        assert_eq!(known.addresses().len(), 3);

        // An old address that fails after the peer was reached at a new one is dropped too.
        let late = ConnectionId::new_unchecked(5);
        known.dialling(late, at(2, other));
        assert_eq!(
            known.dial_failed(late, |_| true),
            Some((other, Some(at(2, other))))
        );
        assert_eq!(known.addresses(), vec![at(3, moved), at(4, other)]);

        // A known peer that reached this node first, from where it moved, is worth a dial at
        // the addresses it announces, unless one of its known addresses already worked.
        let (lost, gone) = (peer(), at(6, peer()));
        known.remember(at(7, lost), now);
        let announced = [at(8, lost), at(7, lost)];
        assert_eq!(known.worth_confirming(lost, &announced), vec![at(8, lost)]);
        assert_eq!(known.worth_confirming(moved, &[at(9, moved)]), vec![]);
        assert_eq!(known.worth_confirming(peer(), &[gone]), vec![]);
        known.forget(lost);

        // A peer nobody asked to keep is not added.
        let stranger = peer();
        assert_eq!(
            known.reached(
                stranger,
                &at(5, stranger),
                ConnectionId::new_unchecked(4),
                now
            ),
            None
        );
        assert_eq!(known.addresses().len(), 2);
    }

    #[test]
    fn redials_back_off_and_skip_peers_not_wanted() {
        let now = Instant::now();
        let (wanted, connected) = (peer(), peer());
        let mut known = KnownPeers::new(&[at(1, wanted), at(2, connected)], now);
        assert_eq!(
            known.due(now, |peer| peer != connected),
            vec![at(1, wanted)]
        );
        assert!(known.due(now, |_| true).contains(&at(2, connected)));
        assert!(
            known
                .due(now + FIRST_BACKOFF, |_| true)
                .contains(&at(1, wanted))
        );
        // Its backoff doubled: not due again a second later.
        let later = now + FIRST_BACKOFF * 2;
        assert!(!known.due(later, |_| true).contains(&at(1, wanted)));
        assert!(
            known
                .due(now + FIRST_BACKOFF * 3, |_| true)
                .contains(&at(1, wanted))
        );
    }
}
