//! The budget of frames each peer may gossip that this node cannot read (a header format
//! newer than it knows). Such frames are ignored without blame, since a newer honest peer
//! sends them; beyond the budget they count as junk and gossip penalises the sender, so an
//! unknown version cannot be used to send junk forever.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cairn_net::PeerId;

/// Frames a peer may send in a burst before the budget runs out.
const BURST: f64 = 600.0;
/// Frames per second the budget refills by: far above what a whole network of honest newer
/// nodes publishes.
const REFILL_PER_SECOND: f64 = 10.0;
/// Peers tracked at most; past it the oldest budgets start over.
const MAX_PEERS: usize = 4_096;

/// Per-peer token buckets of unreadable frames.
#[derive(Debug, Default)]
pub(crate) struct UnreadableBudget {
    peers: Mutex<HashMap<PeerId, (f64, Instant)>>,
}

impl UnreadableBudget {
    /// Takes one frame from `peer`'s budget; `false` once it is spent.
    pub(crate) fn take(&self, peer: PeerId) -> bool {
        let now = Instant::now();
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.len() >= MAX_PEERS && !peers.contains_key(&peer) {
            let oldest = peers
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                peers.remove(&oldest);
            }
        }
        let (tokens, seen) = peers.entry(peer).or_insert((BURST, now));
        *tokens =
            (*tokens + now.duration_since(*seen).as_secs_f64() * REFILL_PER_SECOND).min(BURST);
        *seen = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_burst_then_is_refused_and_others_are_not() {
        let budget = UnreadableBudget::default();
        let (noisy, quiet) = (PeerId::random(), PeerId::random());
        let allowed = (0..10_000).filter(|_| budget.take(noisy)).count();
        // The burst, plus what refilled while the loop ran.
        assert!((600..700).contains(&allowed), "{allowed}");
        assert!(budget.take(quiet));
    }
}
