//! Catch-up sync with peers: runs `cairn-sync` sessions over the network when a peer connects,
//! every sync interval and on request, storing what they fetch; a peer that serves invalid
//! entries is blocked. Every sync checks the node's stop signal between pages, so stopping
//! never waits for a long one.

use std::sync::Arc;
use std::time::Instant;

use cairn_api::SyncRecord;
use cairn_core::{Space, Timestamp};
use cairn_net::{PeerId, Verdict};
use cairn_sync::{Session, Step};

use super::gossip::verdict_for;
use super::shared::Shared;
use super::tasks::blocking;
use crate::Error;

/// Pages of one sync being stored at once: one written while the next is checked. More would
/// only take cores from the writer, which is what bounds storing.
const PAGES_STORING: usize = 2;
/// Entries one sync of a space passes on to the node's other peers by gossip, at most (the
/// first it stores: a reconciliation's first answer carries the newest). A large catch-up
/// reaches them by their own syncs instead.
const FORWARD_PER_SPACE: usize = 256;
/// How long the node that accepted a connection waits before its first sync with the peer
/// (see [`on_connect`]): long enough for the dialer's in-sync check or small catch-up to end.
const ACCEPTED_SYNC_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
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
        let spaces = shared.synced_spaces();
        with_peer(shared, peer, spaces).await;
    }
}

/// Syncs now with one connected peer (or all), for one space (or all joined), and waits for
/// the records. A sync already running with a peer is waited for, then run again, so the
/// answer covers everything the peer held when asked.
pub(crate) async fn now(
    shared: &Arc<Shared>,
    peer: Option<&str>,
    space: Option<&str>,
) -> Result<Vec<SyncRecord>, Error> {
    let spaces = match space {
        Some(name) => vec![Space::new(name)?.to_string()],
        None => shared.synced_spaces(),
    };
    let connected: Vec<PeerId> = shared
        .client()
        .status()
        .await?
        .connected
        .into_iter()
        .map(|peer| peer.peer_id)
        .collect();
    let peers = match peer {
        None => connected,
        Some(text) => {
            let wanted: PeerId = text
                .trim()
                .parse()
                .map_err(|_| Error::BadRequest(format!("{text:?} is not a peer id")))?;
            if !connected.contains(&wanted) {
                return Err(Error::BadRequest(format!(
                    "peer {wanted} is not connected; see `cairn peers`"
                )));
            }
            vec![wanted]
        }
    };
    if peers.is_empty() {
        return Err(Error::BadRequest(
            "no peer is connected, so there is nobody to sync with; see `cairn peers`".into(),
        ));
    }
    let mut records = Vec::new();
    for peer in peers {
        let record = loop {
            let ended = shared.syncs().ended();
            tokio::pin!(ended);
            // From here on, the end of a running sync wakes this one.
            ended.as_mut().enable();
            if let Some(record) = with_peer(shared.clone(), peer, spaces.clone()).await {
                break record;
            }
            tokio::select! {
                () = ended => {}
                () = shared.tasks().stopping() => return Err(Error::Stopping),
            }
        };
        records.push(record);
    }
    Ok(records)
}

/// Syncs the given spaces from one peer, unless a sync with it is already running. Returns
/// the record of this sync, or `None` if one was already running.
pub(crate) async fn with_peer(
    shared: Arc<Shared>,
    peer: PeerId,
    spaces: Vec<String>,
) -> Option<SyncRecord> {
    // Cleared however this ends, including when the task is aborted.
    let _running = shared.syncs().begin(peer)?;
    let started = Instant::now();
    let mut totals = cairn_sync::Stats::default();
    let mut failure = None;
    let synced_spaces = spaces.len();
    for space in spaces {
        if shared.tasks().is_stopping() {
            failure = Some(Error::Stopping.to_string());
            break;
        }
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
    } else if shared.hello_of(&peer).is_none() {
        // A peer that never said hello may not be a Cairn node at all (anyone can connect):
        // not worth a line each at the normal level. `cairn status` still shows the record.
        tracing::debug!(%peer, "sync failed with a peer that has not said hello: {}", record.message);
    } else {
        tracing::info!(%peer, "sync failed: {}", record.message);
    }
    shared.syncs().record(peer, record.clone());
    // After a restore: a complete catch-up with a node bound to an organisation brought back
    // what it held of this organisation's entries.
    let peer_bound = shared
        .hello_of(&peer)
        .is_some_and(|hello| hello.org.is_some());
    if record.ok
        && let Err(err) = shared
            .read(move |service| service.release_publishing(synced_spaces, peer_bound))
            .await
    {
        tracing::warn!("could not record that publishing may go ahead: {err}");
    }
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
    let store = shared.store().clone();
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
    let forwarding = Arc::new(std::sync::atomic::AtomicUsize::new(FORWARD_PER_SPACE));
    let result = async {
        asking.push_back(ask(shared, peer, request).await?);
        while let Some(answer) = asking.pop_front() {
            // Stopping ends the sync between pages; what is stored so far stays, and the next
            // sync reconciles from there.
            let response = tokio::select! {
                biased;
                () = shared.tasks().stopping() => return Err(Error::Stopping),
                answer = answer => Arc::new(answer?),
            };
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
                storing.push_back(store_frames(
                    shared,
                    peer,
                    frames,
                    write_line.next_turn(),
                    forwarding.clone(),
                ));
            }
            let stats = session.stats();
            shared.syncs().set_progress(
                &peer,
                totals.entries_received + stats.entries_received,
                totals.expected + stats.expected,
            );
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
    let store = shared.store().clone();
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
    let wait = shared.syncs().pace(peer);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    Ok(shared.client().queue_sync_request(peer, request).await?)
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

/// Stores frames a peer served. Any invalid one blocks the peer and ends the sync. Entries
/// stored new are passed on to other peers while `forwarding` (shared by the sync's pages)
/// lasts.
///
/// The insert starts on a blocking thread at once: spawned from an async task, it would wait
/// until this runtime thread next yields, which is after it has read the next answer (a few
/// milliseconds for a full page).
fn store_frames(
    shared: &Arc<Shared>,
    peer: PeerId,
    frames: Vec<ReceivedFrame>,
    turn: cairn_store::WriteTurn,
    forwarding: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    // Nobody waits on a fetched entry, so batches are not flushed one by one (a flush would
    // stall the writer on the disk): the sync flushes once when it ends, and sled flushes
    // on its own meanwhile. A crash before then only means fetching them again.
    let store = shared.store().clone();
    let inserting = tokio::task::spawn_blocking(move || {
        let results = store.insert_batch_in_turn(&frames, Timestamp::now(), turn)?;
        Ok::<_, cairn_store::Error>((frames, results))
    });
    let shared = shared.clone();
    tokio::spawn(async move {
        let (frames, results) = inserting
            .await
            .map_err(|err| Error::Task(err.to_string()))??;
        let mut invalid = 0;
        let mut forward = Vec::new();
        for (frame, result) in frames.iter().zip(&results) {
            match result {
                Ok(inserted) => {
                    let _ = shared.stored_sender().send(inserted.id);
                    if inserted.outcome == cairn_store::Outcome::Stored && take_one(&forwarding) {
                        forward.push(frame.as_ref().to_vec());
                    }
                }
                Err(cairn_store::Error::Rejected(err)) if verdict_for(err) == Verdict::Reject => {
                    invalid += 1
                }
                Err(cairn_store::Error::Rejected(_)) => {}
                Err(err) => return Err(Error::Task(format!("the store failed: {err}"))),
            }
        }
        if invalid > 0 {
            shared.client().block(peer).await?;
            return Err(Error::BadRequest(format!(
                "the peer served {invalid} invalid entries and is blocked"
            )));
        }
        super::gossip::forward(shared.client(), forward).await;
        Ok(())
    })
}

/// Takes one from a shared allowance; `false` once it is spent.
fn take_one(allowance: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering;
    allowance
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            left.checked_sub(1)
        })
        .is_ok()
}

fn sync_error(err: cairn_sync::Error) -> Error {
    Error::Task(err.to_string())
}
