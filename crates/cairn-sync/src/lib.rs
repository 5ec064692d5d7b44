//! Catch-up sync, as a pure state machine with no sockets and no clock: gossip only reaches
//! nodes that are online, so after downtime a node pulls what it missed from each peer, one
//! space at a time.
//!
//! - [`Request`] and [`Response`]: the messages of the `/cairn/sync/1` request-response
//!   protocol, and their bounded encoding.
//! - [`Session`]: the side that pulls. It reconciles its (created, id) set for a space with the
//!   peer's using negentropy (range-based set reconciliation, as in Nostr NIP-77), and fetches
//!   the ids each round names in bounded batches, several in flight at once, while the next
//!   rounds go on; the first answer also carries the first entries newer than any held here.
//!   If it holds far fewer entries than the peer (an empty or new node), the peer declines to
//!   reconcile and the session streams the space in pages instead, which costs less than
//!   reconciling a large difference.
//! - [`respond`]: the side that serves, given a [`Source`] of items and frames.
//!
//! The caller moves the bytes and stores what arrives (the store validates every entry), so
//! this crate never touches the network, the disk or the time.

mod messages;
mod session;

pub use messages::{Bytes, Request, Response};
pub use session::{Session, Stats, Step};

use cairn_core::EntryId;

/// The protocol name on the wire.
pub const PROTOCOL: &str = "/cairn/sync/1";
/// The largest request (negentropy messages are capped well below it).
pub const MAX_REQUEST_LEN: usize = 1 << 20;
/// The largest response: batches of entries stop before reaching it.
pub const MAX_RESPONSE_LEN: usize = 8 << 20;
/// Negentropy's frame limit: large enough that a reconciliation takes a few round trips.
pub const RECONCILE_FRAME_LIMIT: u64 = 512 * 1024;
/// Ids asked for in one fetch.
pub const FETCH_BATCH: usize = 1_024;
/// The most entries a first reconciliation answer carries, when the request asks for those
/// newer than the initiator's newest: the first fetch's size.
pub const NEWER_PAGE: usize = FIRST_FETCH;
/// The most frame bytes a first reconciliation answer carries.
pub const NEWER_PAGE_BYTES: usize = 1 << 20;
/// Ids asked for in a session's first fetch; each next fetch asks for twice as many, up to
/// [`FETCH_BATCH`].
pub const FIRST_FETCH: usize = 128;
/// Fetches one session keeps in flight at once: a caller holds at most this many answers on
/// their way (and one reconciliation round's), plus the one it is reading and the one it is
/// storing.
pub const FETCHES_IN_FLIGHT: usize = 4;
/// Entries asked for in one page of a streamed space.
pub const RANGE_PAGE: u32 = 2_048;
/// Bytes of frames a response carries at most (leaves room for the envelope).
pub const RESPONSE_FRAME_BYTES: usize = MAX_RESPONSE_LEN - 64 * 1024;
/// The responder streams instead of reconciling when it holds more than this many times the
/// initiator's entries (plus a small allowance so two nearly empty nodes still reconcile).
pub const STREAM_RATIO: u64 = 4;
const STREAM_ALLOWANCE: u64 = 64;

/// Why a sync exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sync message could not be read: {0}")]
    Message(#[from] cairn_core::Error),

    #[error("reconciliation failed: {0}")]
    Negentropy(String),

    #[error("the peer refused to sync: {0}")]
    Refused(String),

    #[error("the peer answered {got} to a {asked} request")]
    Unexpected {
        asked: &'static str,
        got: &'static str,
    },

    #[error("the local store could not answer: {0}")]
    Source(String),
}

/// A place in a space's (created, id) order.
pub type Position = (u64, EntryId);

/// One page of a streamed space: frames, and where to continue if there is more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub frames: Vec<Vec<u8>>,
    pub next: Option<Position>,
}

/// What the serving side needs from its store.
pub trait Source {
    /// Every entry of the space as (created, id), best already sorted by (created, id)
    /// without repeats (then each round uses it as it is; otherwise it sorts a copy).
    fn items(&self, space: &str) -> Result<std::sync::Arc<Vec<(u64, EntryId)>>, String>;
    /// Frames of the entries it holds among `ids`, in that order, stopping before `max_bytes`.
    /// Returns the frames and whether it stopped early.
    fn frames(&self, ids: &[EntryId], max_bytes: usize) -> Result<(Vec<Vec<u8>>, bool), String>;
    /// Frames of the space in (created, id) order after `after`, at most `limit` of them and
    /// fewer than `max_bytes`, with the position to continue from if there are more.
    fn range(
        &self,
        space: &str,
        after: Option<Position>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Page, String>;
}

/// Serves one request.
pub fn respond(source: &impl Source, request: Request) -> Response {
    match serve(source, request) {
        Ok(response) => response,
        Err(err) => Response::Refused {
            reason: err.to_string(),
        },
    }
}

fn serve(source: &impl Source, request: Request) -> Result<Response, Error> {
    if let Request::Reconcile { space, .. } | Request::Range { space, .. } = &request {
        cairn_core::Space::new(space)?;
    }
    match request {
        Request::Reconcile {
            space,
            count,
            message,
            newer_than,
        } => {
            let items = source.items(&space).map_err(Error::Source)?;
            let held = items.len() as u64;
            if held
                > count
                    .saturating_mul(STREAM_RATIO)
                    .saturating_add(STREAM_ALLOWANCE)
            {
                return Ok(Response::UseRange { count: held });
            }
            let mut negentropy = session::negentropy(session::Items::new(items))?;
            let reply = negentropy
                .reconcile(&message.0)
                .map_err(|err| Error::Negentropy(err.to_string()))?;
            // Strictly after the newest `created` the initiator holds, whatever the id.
            let newer = match newer_than {
                Some(created) => {
                    source
                        .range(
                            &space,
                            Some((created, EntryId([u8::MAX; 32]))),
                            NEWER_PAGE,
                            NEWER_PAGE_BYTES,
                        )
                        .map_err(Error::Source)?
                        .frames
                }
                None => Vec::new(),
            };
            Ok(Response::Reconcile {
                message: Bytes(reply),
                newer: newer.into_iter().map(Bytes).collect(),
            })
        }
        Request::Fetch { ids } => {
            let ids = &ids[..ids.len().min(FETCH_BATCH)];
            let (frames, truncated) = source
                .frames(ids, RESPONSE_FRAME_BYTES)
                .map_err(Error::Source)?;
            Ok(Response::Entries {
                frames: frames.into_iter().map(Bytes).collect(),
                next: None,
                truncated,
            })
        }
        Request::Range {
            space,
            after,
            limit,
        } => {
            let limit = limit.min(RANGE_PAGE) as usize;
            let page = source
                .range(&space, after, limit, RESPONSE_FRAME_BYTES)
                .map_err(Error::Source)?;
            Ok(Response::Entries {
                frames: page.frames.into_iter().map(Bytes).collect(),
                next: page.next,
                truncated: false,
            })
        }
    }
}
