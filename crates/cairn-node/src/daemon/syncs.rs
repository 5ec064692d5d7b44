//! Bookkeeping of catch-up syncs, shared by the daemon's tasks: which peers are being synced
//! with and how far each got, the record of the last sync with each peer, the pacing of the
//! requests sent to each, and the queues of peers whose requests are being served.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cairn_api::{Progress, SyncRecord};
use cairn_net::PeerId;
use tokio::sync::Notify;

/// Sync requests sent to one peer per second, once a burst is spent.
const REQUESTS_PER_SECOND: f64 = 40.0;
/// Requests that may go at once. In any one second a peer receives at most this plus
/// `REQUESTS_PER_SECOND`, which stays under the 50 it serves
/// (`cairn_net::Config::sync_requests_per_second`), so a short sync never waits.
const REQUEST_BURST: f64 = 10.0;
/// Peers whose request pacing is remembered between syncs.
const MAX_PACED_PEERS: usize = 1_024;
/// Peers whose last sync is remembered; the oldest records go first.
const MAX_RECORDS: usize = 1_024;

/// Paces the sync requests sent to one peer: a token bucket.
#[derive(Debug, Clone, Copy)]
struct Pacer {
    /// Requests that may go now; below zero, the debt to wait out.
    tokens: f64,
    updated: Instant,
}

impl Pacer {
    fn new(now: Instant) -> Self {
        Self {
            tokens: REQUEST_BURST,
            updated: now,
        }
    }

    /// The tokens at `now`, refilled since the last request and capped at a full burst.
    fn tokens_at(&self, now: Instant) -> f64 {
        let refill =
            now.saturating_duration_since(self.updated).as_secs_f64() * REQUESTS_PER_SECOND;
        (self.tokens + refill).min(REQUEST_BURST)
    }

    /// Takes one request's token; returns how long to wait before sending it.
    fn take(&mut self, now: Instant) -> std::time::Duration {
        self.tokens = self.tokens_at(now) - 1.0;
        self.updated = now;
        std::time::Duration::from_secs_f64((-self.tokens).max(0.0) / REQUESTS_PER_SECOND)
    }

    /// Whether the bucket is full again, so forgetting it changes nothing.
    fn is_full(&self, now: Instant) -> bool {
        self.tokens_at(now) >= REQUEST_BURST
    }
}

/// Sync state shared by the node's tasks.
#[derive(Debug, Default)]
pub(crate) struct Syncs {
    /// Peers being synced with now, and their (fetched, expected) so far.
    running: Mutex<HashMap<PeerId, (u64, u64)>>,
    /// Woken whenever a sync ends, for whoever waits to start one with the same peer.
    ended: Notify,
    /// The last sync with each peer.
    last: Mutex<HashMap<PeerId, SyncRecord>>,
    /// Request pacing per peer, kept between syncs so back-to-back syncs share one budget.
    pacers: Mutex<HashMap<PeerId, Pacer>>,
    /// The queue of each peer whose requests are being served (see `serve::in_turn`).
    serving: Mutex<HashMap<PeerId, ServingQueue>>,
}

/// A peer's sync requests (token, bytes) waiting to be served.
pub(crate) type ServingQueue = tokio::sync::mpsc::Sender<(u64, Vec<u8>)>;

impl Syncs {
    /// How far the running syncs have got.
    pub fn progress(&self) -> Progress {
        let running = lock(&self.running);
        Progress {
            running: running.len(),
            fetched: running.values().map(|(fetched, _)| fetched).sum(),
            expected: running.values().map(|(_, expected)| expected).sum(),
        }
    }

    /// The last sync with a peer.
    pub fn last(&self, peer: &PeerId) -> Option<SyncRecord> {
        lock(&self.last).get(peer).cloned()
    }

    /// Marks a sync with `peer` as running, unless one already is.
    pub fn begin(&self, peer: PeerId) -> Option<RunningMark<'_>> {
        let mut running = lock(&self.running);
        if running.contains_key(&peer) {
            return None;
        }
        running.insert(peer, (0, 0));
        Some(RunningMark { syncs: self, peer })
    }

    /// Completes when a running sync ends. Create it before checking whether one runs, so an
    /// end in between is not missed.
    pub fn ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.ended.notified()
    }

    /// The entries fetched and expected so far by the sync with `peer`.
    pub fn set_progress(&self, peer: &PeerId, fetched: u64, expected: u64) {
        if let Some(progress) = lock(&self.running).get_mut(peer) {
            *progress = (fetched, expected);
        }
    }

    /// Keeps the record of a sync that ended.
    pub fn record(&self, peer: PeerId, record: SyncRecord) {
        let mut last = lock(&self.last);
        if last.len() >= MAX_RECORDS && !last.contains_key(&peer) {
            let oldest = last
                .iter()
                .min_by(|a, b| a.1.finished.cmp(&b.1.finished))
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                last.remove(&oldest);
            }
        }
        last.insert(peer, record);
    }

    /// How long to wait before the next sync request to `peer`.
    pub fn pace(&self, peer: PeerId) -> std::time::Duration {
        let now = Instant::now();
        let mut pacers = lock(&self.pacers);
        if pacers.len() >= MAX_PACED_PEERS {
            pacers.retain(|_, pacer| !pacer.is_full(now));
        }
        pacers
            .entry(peer)
            .or_insert_with(|| Pacer::new(now))
            .take(now)
    }

    /// The serving queues, locked: a request is queued only under this lock.
    pub fn serving(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, ServingQueue>> {
        lock(&self.serving)
    }
}

/// Marks a peer as being synced with until dropped.
#[derive(Debug)]
pub(crate) struct RunningMark<'a> {
    syncs: &'a Syncs,
    peer: PeerId,
}

impl Drop for RunningMark<'_> {
    fn drop(&mut self) {
        lock(&self.syncs.running).remove(&self.peer);
        self.syncs.ended.notify_waiters();
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pacing_allows_a_burst_then_never_more_than_a_peer_serves_in_any_second() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // A short sync goes at once.
        for _ in 0..REQUEST_BURST as usize {
            assert_eq!(pacer.take(start), Duration::ZERO);
        }
        // Then each request waits its turn: send times follow the returned waits.
        let mut sent = vec![start; REQUEST_BURST as usize];
        let mut now = start;
        for _ in 0..200 {
            now += pacer.take(now);
            sent.push(now);
        }
        for (index, first) in sent.iter().enumerate() {
            let within_a_second = sent[index..]
                .iter()
                .take_while(|at| at.duration_since(*first) < Duration::from_secs(1))
                .count();
            assert!(
                within_a_second <= 50,
                "{within_a_second} requests within one second"
            );
        }
        // An idle peer's bucket fills again and can be forgotten.
        assert!(!pacer.is_full(now));
        assert!(pacer.is_full(now + Duration::from_secs(1)));
    }
}
