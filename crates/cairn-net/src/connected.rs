//! The connected peers and the remote address of each of their connections (a peer may have
//! a relayed connection and a direct one while hole punching replaces the first). Status and
//! the limits keyed on addresses use a peer's direct connection where it has one.

use std::collections::HashMap;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use crate::reach::is_relayed;

#[derive(Debug, Default)]
pub(crate) struct ConnectedPeers(HashMap<PeerId, Vec<(ConnectionId, Multiaddr)>>);

impl ConnectedPeers {
    /// Notes a new connection. Returns whether it is the peer's first direct connection after
    /// relayed ones (a hole punched, or a direct dial that worked).
    pub fn add(&mut self, peer: PeerId, connection: ConnectionId, address: Multiaddr) -> bool {
        let connections = self.0.entry(peer).or_default();
        let upgraded = !is_relayed(&address)
            && !connections.is_empty()
            && connections.iter().all(|(_, known)| is_relayed(known));
        connections.push((connection, address));
        upgraded
    }

    /// Notes a closed connection.
    pub fn remove(&mut self, peer: &PeerId, connection: ConnectionId) {
        if let Some(connections) = self.0.get_mut(peer) {
            connections.retain(|(id, _)| *id != connection);
            if connections.is_empty() {
                self.0.remove(peer);
            }
        }
    }

    /// Where `peer` is connected from: its direct connection if it has one.
    pub fn address(&self, peer: &PeerId) -> Option<&Multiaddr> {
        let connections = self.0.get(peer)?;
        connections
            .iter()
            .find(|(_, address)| !is_relayed(address))
            .or(connections.first())
            .map(|(_, address)| address)
    }

    /// The relayed connections to `peer`, if it has no direct one.
    pub fn only_relayed(&self, peer: &PeerId) -> Vec<ConnectionId> {
        let Some(connections) = self.0.get(peer) else {
            return Vec::new();
        };
        if connections.iter().any(|(_, address)| !is_relayed(address)) {
            return Vec::new();
        }
        connections.iter().map(|(id, _)| *id).collect()
    }

    /// Every connected peer with the address [`ConnectedPeers::address`] gives.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Multiaddr)> {
        self.0
            .keys()
            .filter_map(|peer| Some((peer, self.address(peer)?)))
    }
}
