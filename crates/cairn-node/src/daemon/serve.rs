//! Serves peers' sync requests from the store, each peer's one at a time in arrival order.

use std::sync::Arc;

use cairn_core::EntryId;
use cairn_net::PeerId;
use cairn_store::Store;
use cairn_sync::{Page, Position, Request, Response, Source, respond};

use super::shared::Shared;
use super::tasks::blocking;
use crate::Error;

/// Requests from one peer waiting for their turn: more than the network layer lets one peer
/// have waiting for an answer (8), so a queue never fills. Should one fill, the request is
/// served at once, out of turn, rather than dropped.
const SERVING_QUEUE: usize = 64;
/// How long a peer's serving task waits for another request before it ends.
const SERVING_IDLE: std::time::Duration = std::time::Duration::from_secs(5);
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
pub(crate) fn in_turn(shared: &Arc<Shared>, peer: PeerId, token: u64, request: Vec<u8>) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut queues = shared.syncs().serving();
    let request = match queues.get(&peer) {
        None => (token, request),
        Some(queue) => match queue.try_send((token, request)) {
            Ok(()) => return,
            Err(TrySendError::Full((token, request))) => {
                shared.tasks().spawn(serve(shared.clone(), token, request));
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
        shared.tasks().spawn(serve(shared.clone(), token, request));
        return;
    }
    queues.insert(peer, queue);
    let tasks = shared.tasks().clone();
    shared
        .tasks()
        .spawn(serve_queue(Arc::downgrade(shared), tasks, peer, requests));
}

/// Serves one peer's queued requests in order; ends once none has come for a while, or when
/// the node stops (it holds the node's state only while serving, so it never delays that).
async fn serve_queue(
    shared: std::sync::Weak<Shared>,
    tasks: Arc<super::tasks::Tasks>,
    peer: PeerId,
    mut requests: tokio::sync::mpsc::Receiver<(u64, Vec<u8>)>,
) {
    loop {
        let next = tokio::select! {
            biased;
            () = tasks.stopping() => return,
            next = tokio::time::timeout(SERVING_IDLE, requests.recv()) => next,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match next {
            Ok(Some((token, request))) => serve(shared, token, request).await,
            Ok(None) => return,
            Err(_) => {
                // Requests are queued only under this lock, so none can arrive for a queue
                // that is about to go.
                let mut queues = shared.syncs().serving();
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
    let store = shared.store().clone();
    let answer = blocking(move || answer_sync_request(&store, &request)).await;
    match answer {
        Ok(bytes) => {
            if let Err(err) = shared.client().sync_respond(token, bytes).await {
                tracing::debug!("could not answer a sync request: {err}");
            }
        }
        Err(err) => tracing::warn!("could not serve a sync request: {err}"),
    }
}

/// The encoded answer to one encoded sync request, served from `store`: a request that does
/// not decode is answered `Refused` with the reason.
pub fn answer_sync_request(store: &Store, request: &[u8]) -> Result<Vec<u8>, Error> {
    let response = match Request::decode(request) {
        Ok(request) => respond(&StoreSource(store), request),
        Err(err) => Response::Refused {
            reason: err.to_string(),
        },
    };
    response
        .encode()
        .map_err(|err| Error::Task(err.to_string()))
}
