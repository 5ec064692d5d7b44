//! Catch-up sync with peers: runs `cairn-sync` sessions over the network when a peer connects,
//! every sync interval and on request; serves peers' sync requests from the store; and keeps
//! a record of the last sync with each peer. A peer that serves invalid entries is blocked.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cairn_core::{EntryId, Timestamp};
use cairn_net::{PeerId, Verdict};
use cairn_store::Store;
use cairn_sync::{Page, Position, Request, Response, Session, Source, Step, respond};

use crate::Error;
use cairn_api::{Progress, SyncRecord};

use crate::node::{Shared, blocking, verdict_for};

/// Sync requests sent to one peer per second, once a burst is spent.
const REQUESTS_PER_SECOND: f64 = 40.0;
/// Requests that may go at once. In any one second a peer receives at most this plus
/// `REQUESTS_PER_SECOND`, which stays under the 50 it serves
/// (`cairn_net::Config::sync_requests_per_second`), so a short sync never waits.
const REQUEST_BURST: f64 = 10.0;
/// Peers whose request pacing is remembered between syncs.
const MAX_PACED_PEERS: usize = 1_024;
/// Requests from one peer waiting for their turn: more than the network layer lets one peer
/// have waiting for an answer (8), so a queue never fills. Should one fill, the request is
/// served at once, out of turn, rather than dropped.
const SERVING_QUEUE: usize = 64;
/// Pages of one sync being stored at once: one written while the next is checked. More would
/// only take cores from the writer, which is what bounds storing.
const PAGES_STORING: usize = 2;
/// How long the node that accepted a connection waits before its first sync with the peer
/// (see [`on_connect`]): long enough for the dialer's in-sync check or small catch-up to end.
const ACCEPTED_SYNC_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a peer's serving task waits for another request before it ends.
const SERVING_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

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
pub struct Syncs {
    /// Peers being synced with now, and their (fetched, expected) so far.
    running: std::sync::Mutex<HashMap<PeerId, (u64, u64)>>,
    /// The last sync with each peer.
    last: std::sync::Mutex<HashMap<PeerId, SyncRecord>>,
    /// Request pacing per peer, kept between syncs so back-to-back syncs share one budget.
    pacers: std::sync::Mutex<HashMap<PeerId, Pacer>>,
    /// The queue of each peer whose requests are being served (see [`serve_in_turn`]).
    serving: std::sync::Mutex<HashMap<PeerId, ServingQueue>>,
}

/// A peer's sync requests (token, bytes) waiting to be served.
type ServingQueue = tokio::sync::mpsc::Sender<(u64, Vec<u8>)>;

impl Syncs {
    pub fn progress(&self) -> Progress {
        let running = lock(&self.running);
        Progress {
            running: running.len(),
            fetched: running.values().map(|(fetched, _)| fetched).sum(),
            expected: running.values().map(|(_, expected)| expected).sum(),
        }
    }

    pub fn last(&self, peer: &PeerId) -> Option<SyncRecord> {
        lock(&self.last).get(peer).cloned()
    }

    /// How long to wait before the next sync request to `peer`.
    fn pace(&self, peer: PeerId) -> std::time::Duration {
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
}

/// Marks a peer as being synced with until dropped.
struct RunningMark<'a> {
    syncs: &'a Syncs,
    peer: PeerId,
}

impl Drop for RunningMark<'_> {
    fn drop(&mut self) {
        lock(&self.syncs.running).remove(&self.peer);
    }
}

/// Serves the store to syncing peers.
struct StoreSource<'a>(&'a Store);

impl Source for StoreSource<'_> {
    fn items(&self, space: &str) -> Result<cairn_store::SpaceItems, String> {
        self.0.space_items(space).map_err(|err| err.to_string())
    }

    fn frames(&self, ids: &[EntryId], max_bytes: usize) -> Result<(Vec<Vec<u8>>, bool), String> {
        self.0.frames(ids, max_bytes).map_err(|err| err.to_string())
    }

    fn range(
        &self,
        space: &str,
        after: Option<Position>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Page, String> {
        let page = self
            .0
            .space_range(space, after, limit, max_bytes)
            .map_err(|err| err.to_string())?;
        Ok(Page {
            frames: page.frames,
            next: page.next,
        })
    }
}

/// Answers a peer's sync request once the requests it sent before are answered.
///
/// Each peer's requests are served one at a time, in the order they arrived: one peer keeps at
/// most one blocking thread reading for it, and a peer that keeps several fetches in flight
/// gets its small first answer first instead of all of them late and together.
pub(crate) fn serve_in_turn(shared: &Arc<Shared>, peer: PeerId, token: u64, request: Vec<u8>) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut queues = lock(&shared.syncs.serving);
    let request = match queues.get(&peer) {
        None => (token, request),
        Some(queue) => match queue.try_send((token, request)) {
            Ok(()) => return,
            Err(TrySendError::Full((token, request))) => {
                tokio::spawn(serve(shared.clone(), token, request));
                return;
            }
            // The peer's serving task has ended: start another.
            Err(TrySendError::Closed(request)) => request,
        },
    };
    let (queue, requests) = tokio::sync::mpsc::channel(SERVING_QUEUE);
    if let Err(TrySendError::Full((token, request)) | TrySendError::Closed((token, request))) =
        queue.try_send(request)
    {
        tokio::spawn(serve(shared.clone(), token, request));
        return;
    }
    queues.insert(peer, queue);
    tokio::spawn(serve_queue(Arc::downgrade(shared), peer, requests));
}

/// Serves one peer's queued requests in order; ends once none has come for a while, or when
/// the node stops (it holds the node's state only while serving, so it never delays that).
async fn serve_queue(
    shared: std::sync::Weak<Shared>,
    peer: PeerId,
    mut requests: tokio::sync::mpsc::Receiver<(u64, Vec<u8>)>,
) {
    loop {
        let next = tokio::time::timeout(SERVING_IDLE, requests.recv()).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match next {
            Ok(Some((token, request))) => serve(shared, token, request).await,
            Ok(None) => return,
            Err(_) => {
                // Requests are queued only under this lock, so none can arrive for a queue
                // that is about to go.
                let mut queues = lock(&shared.syncs.serving);
                if requests.is_empty() {
                    queues.remove(&peer);
                    return;
                }
            }
        }
    }
}

/// Answers one sync request from a peer.
async fn serve(shared: Arc<Shared>, token: u64, request: Vec<u8>) {
    let store = shared.store.clone();
    let answer = blocking(move || {
        let response = match Request::decode(&request) {
            Ok(request) => respond(&StoreSource(&store), request),
            Err(err) => Response::Refused {
                reason: err.to_string(),
            },
        };
        response
            .encode()
            .map_err(|err| Error::Task(err.to_string()))
    })
    .await;
    match answer {
        Ok(bytes) => {
            if let Err(err) = shared.client.sync_respond(token, bytes).await {
                tracing::debug!("could not answer a sync request: {err}");
            }
        }
        Err(err) => tracing::warn!("could not serve a sync request: {err}"),
    }
}

/// The first sync with a newly connected peer. The node that dialed syncs at once; the node
/// that accepted the connection waits [`ACCEPTED_SYNC_DELAY`] first, so the two do not
/// reconcile the same sets against each other at the same moment: the dialer is usually the
/// node coming back from downtime, and its catch-up gets the cores.
pub(crate) async fn on_connect(shared: std::sync::Weak<Shared>, peer: PeerId, dialed: bool) {
    if !dialed {
        tokio::time::sleep(ACCEPTED_SYNC_DELAY).await;
    }
    // Held only from here, so a waiting sync never delays the node's shutdown.
    if let Some(shared) = shared.upgrade() {
        let spaces = shared.spaces();
        with_peer(shared, peer, spaces).await;
    }
}

/// Syncs the given spaces from one peer, unless a sync with it is already running. Returns
/// the record of this sync, or `None` if one was already running.
pub(crate) async fn with_peer(
    shared: Arc<Shared>,
    peer: PeerId,
    spaces: Vec<String>,
) -> Option<SyncRecord> {
    {
        let mut running = lock(&shared.syncs.running);
        if running.contains_key(&peer) {
            return None;
        }
        running.insert(peer, (0, 0));
    }
    // Clears the running mark however this ends, including when the task is cancelled.
    let _running = RunningMark {
        syncs: &shared.syncs,
        peer,
    };
    let started = Instant::now();
    let mut totals = cairn_sync::Stats::default();
    let mut failure = None;
    for space in spaces {
        match space_from(&shared, peer, &space, &mut totals).await {
            Ok(()) => {}
            Err(err) => {
                failure = Some(format!("{space}: {err}"));
                break;
            }
        }
    }
    let record = SyncRecord {
        peer_id: peer.to_string(),
        finished: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ok: failure.is_none(),
        message: failure.unwrap_or_else(|| "up to date".into()),
        fetched: totals.entries_received,
        expected: totals.expected,
        bytes: totals.bytes_sent + totals.bytes_received,
        round_trips: totals.round_trips,
        reconcile_round_trips: totals.reconcile_round_trips,
        streamed: totals.streamed,
        millis: started.elapsed().as_millis() as u64,
    };
    if record.ok {
        tracing::debug!(%peer, fetched = record.fetched, "sync finished");
    } else {
        tracing::info!(%peer, "sync failed: {}", record.message);
    }
    lock(&shared.syncs.last).insert(peer, record.clone());
    Some(record)
}

/// Pulls one space from one peer until it is in sync.
///
/// Entries flow through stages at once: one page is written while the next is checked, the
/// next answers arrive and further requests travel. New requests go out as soon as an answer
/// is read, without waiting for the store; the session keeps at most
/// `cairn_sync::FETCHES_IN_FLIGHT` fetches in flight beside at most one reconciliation round
/// (one request when streaming), so at most that many answers, the one being read and
/// [`PAGES_STORING`] being stored are held at a time.
async fn space_from(
    shared: &Arc<Shared>,
    peer: PeerId,
    space: &str,
    totals: &mut cairn_sync::Stats,
) -> Result<(), Error> {
    let store = shared.store.clone();
    let name = space.to_string();
    // Entries refused by this node's policy count as held, so they are not fetched again.
    let local = blocking(move || Ok(store.space_items_known(&name)?)).await?;
    let (mut session, request) = Session::start(space.to_string(), local).map_err(sync_error)?;
    // Answers to the requests in flight, awaited in the order the requests were sent (and
    // abandoned if this sync is dropped).
    let mut asking = std::collections::VecDeque::new();
    // Pages being stored, oldest first: each is checked as soon as it arrives and written
    // after the one before it.
    let mut storing = std::collections::VecDeque::new();
    let mut write_line = cairn_store::WriteLine::new();
    let result = async {
        asking.push_back(ask(shared, peer, request).await?);
        while let Some(answer) = asking.pop_front() {
            let response = Arc::new(answer.await?);
            let (frames, step) = session.on_response(&response).map_err(sync_error)?;
            // The frames stay in the answer, which is kept until they are stored.
            let frames: Vec<ReceivedFrame> = frames
                .into_iter()
                .map(|range| ReceivedFrame {
                    answer: response.clone(),
                    range,
                })
                .collect();
            drop(response);
            if let Step::Send(requests) = step {
                for request in requests {
                    asking.push_back(ask(shared, peer, request).await?);
                }
            }
            if !frames.is_empty() {
                if storing.len() == PAGES_STORING
                    && let Some(task) = storing.pop_front()
                {
                    finished(task).await?;
                }
                storing.push_back(store_frames(shared, peer, frames, write_line.next_turn()));
            }
            let stats = session.stats();
            if let Some(progress) = lock(&shared.syncs.running).get_mut(&peer) {
                *progress = (
                    totals.entries_received + stats.entries_received,
                    totals.expected + stats.expected,
                );
            }
        }
        while let Some(task) = storing.pop_front() {
            finished(task).await?;
        }
        Ok(())
    }
    .await;
    // On failure, nothing more is asked for, and the stores still running finish first.
    drop(asking);
    for task in storing {
        let _ = task.await;
    }
    // What was stored is on disk before the sync counts as finished.
    let store = shared.store.clone();
    let flushed = blocking(move || Ok(store.flush()?)).await;
    let stats = session.stats();
    totals.round_trips += stats.round_trips;
    totals.reconcile_round_trips += stats.reconcile_round_trips;
    totals.streamed |= stats.streamed;
    totals.bytes_sent += stats.bytes_sent;
    totals.bytes_received += stats.bytes_received;
    totals.entries_received += stats.entries_received;
    totals.expected += stats.expected;
    result.and(flushed)
}

/// What a spawned step of a sync returned, once it has finished.
async fn finished<T>(task: tokio::task::JoinHandle<Result<T, Error>>) -> Result<T, Error> {
    task.await.map_err(|err| Error::Task(err.to_string()))?
}

/// Sends one sync request to `peer` once pacing allows; returns its answer to come.
/// Requests sent one after another reach the peer in that order.
async fn ask(
    shared: &Arc<Shared>,
    peer: PeerId,
    request: Vec<u8>,
) -> Result<cairn_net::SyncAnswer, Error> {
    // Stay under the rate the peer serves.
    let wait = shared.syncs.pace(peer);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok(shared.client.queue_sync_request(peer, request).await?)
}

/// A frame as it arrived: a part of the peer's answer, shared by the answer's frames.
struct ReceivedFrame {
    answer: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
}

impl AsRef<[u8]> for ReceivedFrame {
    fn as_ref(&self) -> &[u8] {
        &self.answer[self.range.clone()]
    }
}

/// Stores frames a peer served. Any invalid one blocks the peer and ends the sync.
///
/// The insert starts on a blocking thread at once: spawned from an async task, it would wait
/// until this runtime thread next yields, which is after it has read the next answer (a few
/// milliseconds for a full page).
fn store_frames(
    shared: &Arc<Shared>,
    peer: PeerId,
    frames: Vec<ReceivedFrame>,
    turn: cairn_store::WriteTurn,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    // Nobody waits on a fetched entry, so batches are not flushed one by one (a flush would
    // stall the writer on the disk): the sync flushes once when it ends, and sled flushes
    // on its own meanwhile. A crash before then only means fetching them again.
    let store = shared.store.clone();
    let inserting = tokio::task::spawn_blocking(move || {
        store.insert_batch_in_turn(&frames, Timestamp::now(), turn)
    });
    let shared = shared.clone();
    tokio::spawn(async move {
        let results = inserting
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        let mut invalid = 0;
        for result in &results {
            match result {
                Ok(inserted) => {
                    let _ = shared.stored_sender().send(inserted.id);
                }
                Err(cairn_store::Error::Rejected(err)) if verdict_for(err) == Verdict::Reject => {
                    invalid += 1
                }
                Err(cairn_store::Error::Rejected(_)) => {}
                Err(err) => return Err(Error::Task(format!("the store failed: {err}"))),
            }
        }
        if invalid > 0 {
            shared.client.block(peer).await?;
            return Err(Error::BadRequest(format!(
                "the peer served {invalid} invalid entries and is blocked"
            )));
        }
        Ok(())
    })
}

fn sync_error(err: cairn_sync::Error) -> Error {
    Error::Task(err.to_string())
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
