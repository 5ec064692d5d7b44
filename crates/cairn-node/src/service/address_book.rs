//! The address book: the peers this node dialled and reached, each with the addresses that
//! worked, when one last worked, and the organisation its binding named. Kept in the state
//! file, bounded, and read at start so a restarted node redials its peers without `--peer`.
//! Addresses a peer only announced are never written here: only what this node reached.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use cairn_core::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Service, read};
use crate::Error;

/// Peers remembered at most; the one that worked longest ago makes room.
pub const MAX_PEERS: usize = 256;
/// Addresses remembered per peer at most; past it, the first in sorted order makes room
/// (a peer rarely has more than a few addresses that work).
pub const MAX_ADDRESSES_PER_PEER: usize = 8;
/// A peer none of whose addresses worked for this long is forgotten when the node starts.
pub const FORGET_AFTER: Duration = Duration::from_secs(30 * 24 * 3_600);
/// A connection refreshes a known address's time at most this often, so reconnecting peers
/// do not rewrite the state file each time.
const REFRESH_AFTER: Duration = Duration::from_secs(600);

/// One remembered peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookEntry {
    /// Addresses this node reached the peer at, each ending in `/p2p/<peer id>`.
    pub addresses: BTreeSet<String>,
    /// When a connection to it last worked (ms since the epoch).
    pub last_connected: u64,
    /// The organisation its binding named (hex id), once it said hello.
    #[serde(default)]
    pub org: Option<String>,
}

impl Service {
    /// Notes that this node reached `peer` at `address` (which ends in its peer id) at `now`,
    /// with the organisation `org` says its binding names (asked while the state is locked,
    /// so a hello noted meanwhile by [`Service::record_peer_org`] is never lost).
    pub fn record_connection(
        &self,
        peer: &str,
        address: String,
        now: Timestamp,
        org: impl FnOnce() -> Option<String>,
    ) -> Result<(), Error> {
        let fresh = read(&self.state)
            .address_book
            .get(peer)
            .is_some_and(|entry| {
                entry.addresses.contains(&address)
                    && now.0.saturating_sub(entry.last_connected) < REFRESH_AFTER.as_millis() as u64
            });
        if fresh {
            return Ok(());
        }
        self.update_state(|state| {
            let book = &mut state.address_book;
            if !book.contains_key(peer) && book.len() >= MAX_PEERS {
                let oldest = book
                    .iter()
                    .min_by_key(|(_, entry)| entry.last_connected)
                    .map(|(peer, _)| peer.clone());
                if let Some(oldest) = oldest {
                    book.remove(&oldest);
                }
            }
            let entry = book.entry(peer.to_string()).or_default();
            entry.last_connected = now.0;
            if let Some(org) = org() {
                entry.org = Some(org);
            }
            if !entry.addresses.contains(&address)
                && entry.addresses.len() >= MAX_ADDRESSES_PER_PEER
            {
                let first = entry.addresses.iter().next().cloned();
                if let Some(first) = first {
                    entry.addresses.remove(&first);
                }
            }
            entry.addresses.insert(address);
        })
    }

    /// Notes the organisation a remembered peer's binding names.
    pub fn record_peer_org(&self, peer: &str, org: String) -> Result<(), Error> {
        // Most hellos come from peers that dialled this node and are not in the book: those
        // take no write lock. A peer being added meanwhile reads its organisation itself.
        if !read(&self.state).address_book.contains_key(peer) {
            return Ok(());
        }
        self.update_state_if(|state| match state.address_book.get_mut(peer) {
            Some(entry) if entry.org.as_deref() != Some(org.as_str()) => {
                entry.org = Some(org);
                true
            }
            _ => false,
        })
    }

    /// Forgets a peer, named by its peer id or by an address: its addresses are no longer
    /// redialled. Returns the peer ids and addresses forgotten.
    pub fn forget_peer(&self, target: &str) -> Result<Vec<String>, Error> {
        let target = target.trim();
        // The peer id an address ends in (a relayed address names its relay's before it).
        let peer_of = |address: &str| address.rsplit("/p2p/").next().map(str::to_string);
        let mut forgotten = Vec::new();
        self.update_state(|state| {
            let peers: Vec<String> = state
                .address_book
                .iter()
                .filter(|(peer, entry)| *peer == target || entry.addresses.contains(target))
                .map(|(peer, _)| peer.clone())
                .collect();
            for peer in peers {
                if let Some(entry) = state.address_book.remove(&peer) {
                    forgotten.extend(entry.addresses);
                }
                forgotten.push(peer);
            }
            let addresses: Vec<String> = state
                .peers
                .iter()
                .filter(|address| *address == target || peer_of(address).as_deref() == Some(target))
                .cloned()
                .collect();
            for address in addresses {
                state.peers.remove(&address);
                forgotten.push(address);
            }
        })?;
        if forgotten.is_empty() {
            return Err(Error::BadRequest(format!(
                "no remembered peer is {target:?}; `cairn peers` lists the known ones"
            )));
        }
        forgotten.sort();
        forgotten.dedup();
        Ok(forgotten)
    }

    /// Drops addresses of `peer` that stopped working once it was reached at another one,
    /// from its book entry and from the peers added by hand.
    pub fn drop_addresses(&self, peer: &str, addresses: &[String]) -> Result<(), Error> {
        self.update_state_if(|state| {
            let mut changed = false;
            if let Some(entry) = state.address_book.get_mut(peer) {
                for address in addresses {
                    changed |= entry.addresses.remove(address);
                }
            }
            for address in addresses {
                changed |= state.peers.remove(address);
            }
            changed
        })
    }

    /// Forgets the peers that have not worked for [`FORGET_AFTER`], except the `connected`
    /// ones (peer ids); returns the peer ids forgotten.
    pub fn prune_address_book(
        &self,
        now: Timestamp,
        connected: &HashSet<String>,
    ) -> Result<Vec<String>, Error> {
        let cutoff = now.0.saturating_sub(FORGET_AFTER.as_millis() as u64);
        let stale = |peer: &String, entry: &BookEntry| {
            entry.last_connected < cutoff && !connected.contains(peer)
        };
        let pruned: Vec<String> = read(&self.state)
            .address_book
            .iter()
            .filter(|(peer, entry)| stale(peer, entry))
            .map(|(peer, _)| peer.clone())
            .collect();
        if pruned.is_empty() {
            return Ok(pruned);
        }
        self.update_state(|state| {
            state.address_book.retain(|peer, entry| !stale(peer, entry));
        })?;
        Ok(pruned)
    }
}
