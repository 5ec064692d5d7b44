//! The pulling side of a sync, one space with one peer: reconcile, then fetch; or stream.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use cairn_core::EntryId;
use std::sync::Arc;

use negentropy::{Bound, Id, Item, Negentropy, NegentropyStorageBase};

use crate::{
    Bytes, Error, FETCH_BATCH, FETCHES_IN_FLIGHT, FIRST_FETCH, RANGE_PAGE, RECONCILE_FRAME_LIMIT,
    Request, Response,
};

/// The most ids one session will queue for fetching; the rest wait for the next sync.
const MAX_QUEUED: usize = 500_000;

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these requests to the peer (one or more), after any already sent, and feed the
    /// answers to [`Session::on_response`] in the order the requests were sent.
    Send(Vec<Vec<u8>>),
    /// Nothing new to send: feed the answers to the requests still in flight.
    Wait,
    /// The space is in sync with the peer (as far as it would serve).
    Done,
}

/// Counters for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Request-response exchanges.
    pub round_trips: u32,
    /// Encoded bytes sent and received.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Reconciliation exchanges (a subset of `round_trips`).
    pub reconcile_round_trips: u32,
    /// Entries the peer sent.
    pub entries_received: u64,
    /// Entries known to be missing (from reconciliation) or offered (when streaming).
    pub expected: u64,
    /// Ids the peer named but then did not serve.
    pub unavailable: u64,
    /// Whether the space was streamed instead of reconciled.
    pub streamed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reconciling,
    Fetching,
    Ranging,
    Done,
}

/// One space being pulled from one peer.
pub struct Session {
    space: String,
    count: u64,
    negentropy: Negentropy<'static, Items>,
    /// Ids to fetch, and those asked for by each fetch in flight, oldest first.
    queued: VecDeque<EntryId>,
    in_flight: VecDeque<Vec<EntryId>>,
    /// Fetches sent so far: the first ones are small (see [`FIRST_FETCH`]).
    fetches_sent: u32,
    phase: Phase,
    stats: Stats,
    /// The last position a range page reached.
    range_position: Option<(u64, EntryId)>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("space", &self.space)
            .field("phase", &self.phase)
            .field("stats", &self.stats)
            .finish()
    }
}

/// A space's (created, id) items in negentropy's order (created, then id bytes), shared
/// rather than copied: the store's cached list serves every reconciliation round as it is,
/// with no storage to build per round.
#[derive(Debug, Clone)]
pub(crate) struct Items(Arc<Vec<(u64, EntryId)>>);

impl Items {
    /// Takes a list as it is if it is strictly increasing (as a store lists it), or else a
    /// sorted copy without repeats.
    pub(crate) fn new(items: Arc<Vec<(u64, EntryId)>>) -> Self {
        if items.windows(2).all(|pair| pair[0] < pair[1]) {
            return Self(items);
        }
        let mut sorted = Vec::clone(&items);
        sorted.sort_unstable();
        sorted.dedup();
        Self(Arc::new(sorted))
    }

    fn item(&(created, id): &(u64, EntryId)) -> Item {
        Item::with_timestamp_and_id(created, Id::from_byte_array(*id.as_bytes()))
    }
}

impl NegentropyStorageBase for Items {
    fn size(&self) -> Result<usize, negentropy::Error> {
        Ok(self.0.len())
    }

    fn get_item(&self, i: usize) -> Result<Option<Item>, negentropy::Error> {
        Ok(self.0.get(i).map(Self::item))
    }

    fn iterate(
        &self,
        begin: usize,
        end: usize,
        callback: &mut dyn FnMut(Item, usize) -> Result<bool, negentropy::Error>,
    ) -> Result<(), negentropy::Error> {
        let range = self.0.get(begin..end).ok_or(negentropy::Error::BadRange)?;
        for (offset, entry) in range.iter().enumerate() {
            if !callback(Self::item(entry), begin + offset)? {
                break;
            }
        }
        Ok(())
    }

    fn find_lower_bound(&self, first: usize, last: usize, bound: &Bound) -> usize {
        self.0.get(first..last).map_or(first, |range| {
            first + range.partition_point(|entry| Self::item(entry) < bound.item)
        })
    }
}

/// A negentropy instance over a space's items.
pub(crate) fn negentropy(
    items: Arc<Vec<(u64, EntryId)>>,
) -> Result<Negentropy<'static, Items>, Error> {
    Negentropy::owned(Items::new(items), RECONCILE_FRAME_LIMIT)
        .map_err(|err| Error::Negentropy(err.to_string()))
}

impl Session {
    /// Starts pulling `space`, given what this side holds of it as (created, id). Returns the
    /// session and the first request to send.
    pub fn start(space: String, local: Arc<Vec<(u64, EntryId)>>) -> Result<(Self, Vec<u8>), Error> {
        let count = local.len() as u64;
        let mut negentropy = negentropy(local)?;
        let message = negentropy
            .initiate()
            .map_err(|err| Error::Negentropy(err.to_string()))?;
        let mut session = Self {
            space: space.clone(),
            count,
            negentropy,
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            fetches_sent: 0,
            phase: Phase::Reconciling,
            stats: Stats::default(),
            range_position: None,
        };
        let request = session.encode(&Request::Reconcile {
            space,
            count,
            message: Bytes(message),
        })?;
        Ok((session, request))
    }

    pub fn space(&self) -> &str {
        &self.space
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Feeds the peer's answer. Returns where in `bytes` the entry frames it carried are (for
    /// the caller to store without copying them: the store validates each one) and the next
    /// step.
    pub fn on_response(&mut self, bytes: &[u8]) -> Result<(Vec<Range<usize>>, Step), Error> {
        self.stats.round_trips += 1;
        self.stats.bytes_received += bytes.len() as u64;
        let response = Response::<&[u8]>::decode(bytes)?;
        let asked = match self.phase {
            Phase::Reconciling => "reconcile",
            Phase::Fetching => "fetch",
            Phase::Ranging => "range",
            Phase::Done => "finished",
        };
        match (self.phase, response) {
            (_, Response::Refused { reason }) => {
                self.phase = Phase::Done;
                Err(Error::Refused(reason))
            }
            (Phase::Reconciling, Response::Reconcile { message }) => {
                self.stats.reconcile_round_trips += 1;
                let mut have = Vec::new();
                let mut need = Vec::new();
                let next = self
                    .negentropy
                    .reconcile_with_ids(&message.0, &mut have, &mut need)
                    .map_err(|err| Error::Negentropy(err.to_string()))?;
                let room = MAX_QUEUED.saturating_sub(self.queued.len());
                self.stats.expected += need.len().min(room) as u64;
                self.queued
                    .extend(need.into_iter().take(room).map(|id| EntryId(*id)));
                match next {
                    Some(message) if self.queued.len() < MAX_QUEUED => {
                        let request = Request::Reconcile {
                            space: self.space.clone(),
                            count: self.count,
                            message: Bytes(message),
                        };
                        Ok((Vec::new(), Step::Send(vec![self.encode(&request)?])))
                    }
                    _ => {
                        self.phase = Phase::Fetching;
                        Ok((Vec::new(), self.next_fetch()?))
                    }
                }
            }
            (Phase::Reconciling, Response::UseRange { count }) => {
                self.phase = Phase::Ranging;
                self.stats.streamed = true;
                self.stats.expected = count;
                let request = Request::Range {
                    space: self.space.clone(),
                    after: None,
                    limit: RANGE_PAGE,
                };
                Ok((Vec::new(), Step::Send(vec![self.encode(&request)?])))
            }
            (
                Phase::Fetching,
                Response::Entries {
                    frames, truncated, ..
                },
            ) => {
                self.stats.entries_received += frames.len() as u64;
                let in_flight = self.in_flight.pop_front().unwrap_or_default();
                let asked: HashSet<EntryId> = in_flight.iter().copied().collect();
                let served: HashSet<EntryId> = frames
                    .iter()
                    .filter_map(|frame| cairn_core::entry::frame_id(frame))
                    .collect();
                if served.len() != frames.len() || !served.is_subset(&asked) {
                    self.phase = Phase::Done;
                    return Err(Error::Unexpected {
                        asked: "fetch",
                        got: "entries that were not asked for",
                    });
                }
                let unserved: Vec<EntryId> = in_flight
                    .into_iter()
                    .filter(|id| !served.contains(id))
                    .collect();
                // A cut-short answer must make progress, or a peer could keep us asking forever.
                if truncated && !frames.is_empty() {
                    for id in unserved.into_iter().rev() {
                        self.queued.push_front(id);
                    }
                } else {
                    self.stats.unavailable += unserved.len() as u64;
                }
                Ok((ranges_in(bytes, &frames), self.next_fetch()?))
            }
            (Phase::Ranging, Response::Entries { frames, next, .. }) => {
                self.stats.entries_received += frames.len() as u64;
                // Every entry must be in this space, and the pages must move forward.
                for frame in &frames {
                    // The header alone: the store decodes and checks the whole entry next.
                    let in_space = cairn_core::entry::frame_header(frame).is_ok_and(|header| {
                        header
                            .spaces
                            .iter()
                            .any(|space| space.as_str() == self.space)
                    });
                    if !in_space {
                        self.phase = Phase::Done;
                        return Err(Error::Unexpected {
                            asked: "range",
                            got: "an entry outside the space",
                        });
                    }
                }
                if let Some(next) = next
                    && self.range_position.is_some_and(|previous| next <= previous)
                {
                    self.phase = Phase::Done;
                    return Err(Error::Unexpected {
                        asked: "range",
                        got: "a page that does not move forward",
                    });
                }
                self.range_position = next.or(self.range_position);
                let step = match next {
                    Some(after) if !frames.is_empty() => {
                        let request = Request::Range {
                            space: self.space.clone(),
                            after: Some(after),
                            limit: RANGE_PAGE,
                        };
                        Step::Send(vec![self.encode(&request)?])
                    }
                    _ => {
                        self.phase = Phase::Done;
                        Step::Done
                    }
                };
                Ok((ranges_in(bytes, &frames), step))
            }
            (_, other) => {
                self.phase = Phase::Done;
                Err(Error::Unexpected {
                    asked,
                    got: other.name(),
                })
            }
        }
    }

    /// Fills the fetch pipeline: as many new fetches as fit beside those in flight. The first
    /// ones are small, so the caller starts storing entries after a short first answer while
    /// the larger ones are read and sent; later ones ask for [`FETCH_BATCH`] ids.
    fn next_fetch(&mut self) -> Result<Step, Error> {
        let mut requests = Vec::new();
        while self.in_flight.len() < FETCHES_IN_FLIGHT && !self.queued.is_empty() {
            let take = self.queued.len().min(fetch_size(self.fetches_sent));
            let ids: Vec<EntryId> = self.queued.drain(..take).collect();
            let request = Request::Fetch { ids: ids.clone() };
            requests.push(self.encode(&request)?);
            self.in_flight.push_back(ids);
            self.fetches_sent += 1;
        }
        Ok(if !requests.is_empty() {
            Step::Send(requests)
        } else if self.in_flight.is_empty() {
            self.phase = Phase::Done;
            Step::Done
        } else {
            Step::Wait
        })
    }

    fn encode(&mut self, request: &Request) -> Result<Vec<u8>, Error> {
        let bytes = request.encode()?;
        self.stats.bytes_sent += bytes.len() as u64;
        Ok(bytes)
    }
}

/// Ids asked for by a session's fetch after `sent` earlier ones: [`FIRST_FETCH`], doubling
/// up to [`FETCH_BATCH`].
/// Where each of `parts`, slices of `message`, is in it.
fn ranges_in(message: &[u8], parts: &[&[u8]]) -> Vec<Range<usize>> {
    let base = message.as_ptr() as usize;
    parts
        .iter()
        .map(|part| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        })
        .collect()
}

fn fetch_size(sent: u32) -> usize {
    let mut size = FIRST_FETCH;
    for _ in 0..sent {
        if size >= FETCH_BATCH {
            break;
        }
        size *= 2;
    }
    size.min(FETCH_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_start_small_and_double_to_the_batch_size_however_many_are_sent() {
        let sizes: Vec<usize> = (0..5).map(fetch_size).collect();
        assert_eq!(sizes, vec![128, 256, 512, 1_024, 1_024]);
        // However long a session runs (a shift would wrap to 0 past 57 fetches).
        for sent in [57, 63, 64, 1_000, u32::MAX] {
            assert_eq!(fetch_size(sent), FETCH_BATCH);
        }
    }

    fn id(byte: u8) -> EntryId {
        EntryId([byte; 32])
    }

    #[test]
    fn items_are_sorted_once_and_searched_like_negentropys_own_storage() {
        let unsorted = vec![(7, id(2)), (3, id(1)), (7, id(1)), (3, id(1)), (1, id(9))];
        let items = Items::new(Arc::new(unsorted));
        assert_eq!(
            *items.0,
            vec![(1, id(9)), (3, id(1)), (7, id(1)), (7, id(2))]
        );
        let shared = Arc::clone(&items.0);
        assert!(
            Arc::ptr_eq(&Items::new(Arc::clone(&shared)).0, &shared),
            "a sorted list is used as it is"
        );

        let mut reference = negentropy::NegentropyStorageVector::new();
        for (created, held) in items.0.iter() {
            reference
                .insert(*created, Id::from_byte_array(*held.as_bytes()))
                .expect("insert");
        }
        reference.seal().expect("seal");
        for created in 0..9 {
            for byte in [0, 1, 2, 9, 255] {
                let bound = Bound::from_item(&Item::with_timestamp_and_id(
                    created,
                    Id::from_byte_array([byte; 32]),
                ));
                for (first, last) in [(0, 4), (1, 3), (2, 2), (0, 0)] {
                    assert_eq!(
                        items.find_lower_bound(first, last, &bound),
                        reference.find_lower_bound(first, last, &bound)
                    );
                }
            }
        }
        assert_eq!(
            items.fingerprint(0, 4).expect("fingerprint").to_bytes(),
            reference.fingerprint(0, 4).expect("fingerprint").to_bytes()
        );
        assert!(items.iterate(3, 5, &mut |_, _| Ok(true)).is_err());
    }
}
