//! The pulling side of a sync, one space with one peer: reconcile, then fetch; or stream.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;

use cairn_core::EntryId;
use std::sync::Arc;

use negentropy::{Bound, FINGERPRINT_SIZE, ID_SIZE, Id, Item, Negentropy, NegentropyStorageBase};

use crate::{
    Bytes, Error, FETCH_BATCH, FETCHES_IN_FLIGHT, FIRST_FETCH, NEWER_PAGE, RANGE_PAGE,
    RECONCILE_FRAME_LIMIT, Request, Response,
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

/// What a request in flight asked for, in the order the requests were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaited {
    Reconcile,
    /// The ids the fetch asked for.
    Fetch(Vec<EntryId>),
    Range,
}

impl Awaited {
    fn name(&self) -> &'static str {
        match self {
            Self::Reconcile => "reconcile",
            Self::Fetch(_) => "fetch",
            Self::Range => "range",
        }
    }
}

/// One space being pulled from one peer.
///
/// Reconciliation, fetches and range pages share one line of requests: the ids a
/// reconciliation round names are fetched at once, beside the next round, rather than after
/// the last one.
pub struct Session {
    space: String,
    count: u64,
    negentropy: Negentropy<'static, Items>,
    /// Ids to fetch, oldest first.
    queued: VecDeque<EntryId>,
    /// The requests in flight, oldest first; the peer answers them in that order.
    awaiting: VecDeque<Awaited>,
    /// Fetches sent so far: the first ones are small (see [`FIRST_FETCH`]).
    fetches_sent: u32,
    stats: Stats,
    /// The last position a range page reached.
    range_position: Option<(u64, EntryId)>,
    /// The `newer_than` of the first request: the newest `created` held here when the session
    /// started, or 0 if nothing was. The first answer carries entries newer than it.
    newer_than: u64,
    /// Entries the first answer carried, not to be fetched again (at most [`NEWER_PAGE`]).
    received_newer: HashSet<EntryId>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("space", &self.space)
            .field("awaiting", &self.awaiting.len())
            .field("queued", &self.queued.len())
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
pub(crate) fn negentropy(items: Items) -> Result<Negentropy<'static, Items>, Error> {
    Negentropy::owned(items, RECONCILE_FRAME_LIMIT)
        .map_err(|err| Error::Negentropy(err.to_string()))
}

impl Session {
    /// Starts pulling `space`, given what this side holds of it as (created, id). Returns the
    /// session and the first request to send.
    pub fn start(space: String, local: Arc<Vec<(u64, EntryId)>>) -> Result<(Self, Vec<u8>), Error> {
        let count = local.len() as u64;
        let items = Items::new(local);
        // An empty side asks for everything after time 0: a small space then comes whole.
        let newer_than = items.0.last().map_or(0, |&(created, _)| created);
        let open_end = first_message(&items, OpenEnd::AfterNewest)?;
        let mut negentropy = negentropy(items)?;
        let message = match open_end {
            Some(message) => {
                negentropy.set_initiator();
                message
            }
            None => negentropy
                .initiate()
                .map_err(|err| Error::Negentropy(err.to_string()))?,
        };
        let mut session = Self {
            space: space.clone(),
            count,
            negentropy,
            queued: VecDeque::new(),
            awaiting: VecDeque::from([Awaited::Reconcile]),
            fetches_sent: 0,
            stats: Stats::default(),
            range_position: None,
            newer_than,
            received_newer: HashSet::new(),
        };
        let request = session.encode(&Request::Reconcile {
            space,
            count,
            message: Bytes(message),
            newer_than: Some(newer_than),
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
        let answered = self.answer(bytes);
        if answered.is_err() {
            // The session is over: any later answer is one nothing waits for.
            self.awaiting.clear();
            self.queued.clear();
        }
        answered
    }

    /// [`Session::on_response`] but for the bookkeeping.
    fn answer(&mut self, bytes: &[u8]) -> Result<(Vec<Range<usize>>, Step), Error> {
        let response = Response::<&[u8]>::decode(bytes)?;
        let Some(awaited) = self.awaiting.pop_front() else {
            return Err(Error::Unexpected {
                asked: "nothing",
                got: response.name(),
            });
        };
        let mut requests = Vec::new();
        let mut frames = Vec::new();
        match (awaited, response) {
            (_, Response::Refused { reason }) => return Err(Error::Refused(reason)),
            (Awaited::Reconcile, Response::Reconcile { message, newer }) => {
                self.stats.reconcile_round_trips += 1;
                self.take_newer(&newer)?;
                let mut have = Vec::new();
                let mut need = Vec::new();
                let next = self
                    .negentropy
                    .reconcile_with_ids(&message.0, &mut have, &mut need)
                    .map_err(|err| Error::Negentropy(err.to_string()))?;
                let room = MAX_QUEUED.saturating_sub(self.queued.len());
                let missing: Vec<EntryId> = in_listed_order(&message.0, need)
                    .into_iter()
                    .filter(|id| !self.received_newer.contains(id))
                    .take(room)
                    .collect();
                self.stats.expected += missing.len() as u64;
                self.queued.extend(missing);
                if let Some(message) = next
                    && self.queued.len() < MAX_QUEUED
                {
                    let request = Request::Reconcile {
                        space: self.space.clone(),
                        count: self.count,
                        message: Bytes(message),
                        newer_than: None,
                    };
                    requests.push(self.encode(&request)?);
                    self.awaiting.push_back(Awaited::Reconcile);
                }
                frames = ranges_in(bytes, &newer);
            }
            (Awaited::Reconcile, Response::UseRange { count }) => {
                self.stats.streamed = true;
                self.stats.expected += count;
                let request = Request::Range {
                    space: self.space.clone(),
                    after: None,
                    limit: RANGE_PAGE,
                };
                requests.push(self.encode(&request)?);
                self.awaiting.push_back(Awaited::Range);
            }
            (
                Awaited::Fetch(asked_ids),
                Response::Entries {
                    frames: served,
                    truncated,
                    ..
                },
            ) => {
                self.stats.entries_received += served.len() as u64;
                let asked: HashSet<EntryId> = asked_ids.iter().copied().collect();
                let served_ids: HashSet<EntryId> = served
                    .iter()
                    .filter_map(|frame| cairn_core::entry::frame_id(frame))
                    .collect();
                if served_ids.len() != served.len() || !served_ids.is_subset(&asked) {
                    return Err(Error::Unexpected {
                        asked: "fetch",
                        got: "entries that were not asked for",
                    });
                }
                let unserved: Vec<EntryId> = asked_ids
                    .into_iter()
                    .filter(|id| !served_ids.contains(id))
                    .collect();
                // A cut-short answer must make progress, or a peer could keep us asking forever.
                if truncated && !served.is_empty() {
                    for id in unserved.into_iter().rev() {
                        self.queued.push_front(id);
                    }
                } else {
                    self.stats.unavailable += unserved.len() as u64;
                }
                frames = ranges_in(bytes, &served);
            }
            (
                Awaited::Range,
                Response::Entries {
                    frames: page, next, ..
                },
            ) => {
                self.stats.entries_received += page.len() as u64;
                // Every entry must be in this space, and the pages must move forward.
                for frame in &page {
                    if self.placed(frame) == Placed::Outside {
                        return Err(Error::Unexpected {
                            asked: "range",
                            got: "an entry outside the space",
                        });
                    }
                }
                if let Some(next) = next
                    && self.range_position.is_some_and(|previous| next <= previous)
                {
                    return Err(Error::Unexpected {
                        asked: "range",
                        got: "a page that does not move forward",
                    });
                }
                self.range_position = next.or(self.range_position);
                if let Some(after) = next
                    && !page.is_empty()
                {
                    let request = Request::Range {
                        space: self.space.clone(),
                        after: Some(after),
                        limit: RANGE_PAGE,
                    };
                    requests.push(self.encode(&request)?);
                    self.awaiting.push_back(Awaited::Range);
                }
                frames = ranges_in(bytes, &page);
            }
            (awaited, other) => {
                return Err(Error::Unexpected {
                    asked: awaited.name(),
                    got: other.name(),
                });
            }
        }
        self.fill_fetches(&mut requests)?;
        let step = if !requests.is_empty() {
            Step::Send(requests)
        } else if self.awaiting.is_empty() {
            Step::Done
        } else {
            Step::Wait
        };
        Ok((frames, step))
    }

    /// Checks the entries a reconciliation answer carried: only the first answer may carry
    /// any, each must be in the space and newer than anything held here, and none twice. They
    /// count as the first fetch, so the next fetch is the second one's size.
    fn take_newer(&mut self, newer: &[&[u8]]) -> Result<(), Error> {
        if newer.is_empty() {
            return Ok(());
        }
        let unasked = || Error::Unexpected {
            asked: "reconcile",
            got: "entries that were not asked for",
        };
        if self.stats.reconcile_round_trips > 1 || newer.len() > NEWER_PAGE {
            return Err(unasked());
        }
        for frame in newer {
            let id = cairn_core::entry::frame_id(frame).ok_or_else(unasked)?;
            match self.placed(frame) {
                Placed::NewerFormat => {}
                Placed::InSpace(created) if created > self.newer_than => {}
                Placed::InSpace(_) | Placed::Outside => return Err(unasked()),
            }
            if !self.received_newer.insert(id) {
                return Err(unasked());
            }
        }
        self.stats.entries_received += newer.len() as u64;
        self.stats.expected += newer.len() as u64;
        self.fetches_sent = self.fetches_sent.max(1);
        Ok(())
    }

    /// Where a frame the peer sent stands, read from its header alone (the store decodes and
    /// checks the whole entry next).
    fn placed(&self, frame: &[u8]) -> Placed {
        match cairn_core::entry::frame_header(frame) {
            // The store ignores it without blame (see the versioning policy), so it ends
            // nothing here either.
            Err(cairn_core::Error::UnsupportedVersion(_)) => Placed::NewerFormat,
            Ok(header)
                if header
                    .spaces
                    .iter()
                    .any(|space| space.as_str() == self.space) =>
            {
                Placed::InSpace(header.created.0)
            }
            _ => Placed::Outside,
        }
    }

    /// Fills the fetch pipeline: as many new fetches as fit beside those in flight. The first
    /// ones are small, so the caller starts storing entries after a short first answer while
    /// the larger ones are read and sent; later ones ask for [`FETCH_BATCH`] ids.
    fn fill_fetches(&mut self, requests: &mut Vec<Vec<u8>>) -> Result<(), Error> {
        let mut in_flight = self
            .awaiting
            .iter()
            .filter(|awaited| matches!(awaited, Awaited::Fetch(_)))
            .count();
        while in_flight < FETCHES_IN_FLIGHT && !self.queued.is_empty() {
            let take = self.queued.len().min(fetch_size(self.fetches_sent));
            let ids: Vec<EntryId> = self.queued.drain(..take).collect();
            let request = Request::Fetch { ids: ids.clone() };
            requests.push(self.encode(&request)?);
            self.awaiting.push_back(Awaited::Fetch(ids));
            in_flight += 1;
            self.fetches_sent += 1;
        }
        Ok(())
    }

    fn encode(&mut self, request: &Request) -> Result<Vec<u8>, Error> {
        let bytes = request.encode()?;
        self.stats.bytes_sent += bytes.len() as u64;
        Ok(bytes)
    }
}

/// Negentropy's own constants, which it does not export: a range is split into this many
/// buckets, and one with fewer than twice as many items is sent as a list of ids instead.
const BUCKETS: usize = 16;
const DOUBLE_BUCKETS: usize = 2 * BUCKETS;
/// Negentropy's protocol version byte, its message modes and its "no upper limit" timestamp.
const PROTOCOL_VERSION: u8 = 0x61;
const MODE_SKIP: u8 = 0;
const MODE_FINGERPRINT: u8 = 1;
const MODE_ID_LIST: u8 = 2;
const INFINITY: u64 = u64::MAX;

/// Where the first message's last bucket ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenEnd {
    /// At infinity, as negentropy's own first message does (for comparing with it).
    #[cfg(test)]
    Infinity,
    /// Just after the newest item held, with an empty id list for everything after it.
    AfterNewest,
}

/// The initiator's first message: negentropy's own (the fingerprints of sixteen buckets that
/// split the held items evenly) with, for [`OpenEnd::AfterNewest`], one change: the last bucket
/// ends just after the newest held timestamp, and one more range, from there to infinity, is
/// sent as an empty list of ids. The peer answers a list with the ids it holds in that range,
/// so when what is missing here is only what is newer than anything held (a node back from
/// downtime), the first answer names all of it: one reconciliation round trip instead of the
/// three or more that splitting the last bucket takes. Differences elsewhere are reconciled
/// as usual, in the same number of rounds as before.
///
/// `None` when negentropy's own message is as good: fewer than [`DOUBLE_BUCKETS`] items (it
/// lists them all), or a newest timestamp that leaves no room before infinity.
fn first_message(items: &Items, end: OpenEnd) -> Result<Option<Vec<u8>>, Error> {
    let len = items.0.len();
    let Some(&(newest, _)) = items.0.last() else {
        return Ok(None);
    };
    if len < DOUBLE_BUCKETS || newest >= INFINITY - 1 {
        return Ok(None);
    }
    let mut out = BoundWriter {
        message: vec![PROTOCOL_VERSION],
        last_timestamp: 0,
    };
    let (per_bucket, with_extra) = (len / BUCKETS, len % BUCKETS);
    let mut start = 0;
    for bucket in 0..BUCKETS {
        let end_index = start + per_bucket + usize::from(bucket < with_extra);
        let fingerprint = items
            .fingerprint(start, end_index)
            .map_err(|err| Error::Negentropy(err.to_string()))?;
        if end_index < len {
            let (before, after) = (&items.0[end_index - 1], &items.0[end_index]);
            out.minimal_bound(before, after);
        } else if end == OpenEnd::AfterNewest {
            out.bound(newest + 1, &[]);
        } else {
            out.bound(INFINITY, &[]);
        }
        out.message.push(MODE_FINGERPRINT);
        out.message.extend_from_slice(&fingerprint.to_bytes());
        start = end_index;
    }
    if end == OpenEnd::AfterNewest {
        out.bound(INFINITY, &[]);
        out.message.extend([MODE_ID_LIST, 0]);
    }
    Ok(Some(out.message))
}

/// Writes negentropy range bounds: timestamps as the difference from the previous bound's
/// plus one (0 for infinity), then an id prefix with its length.
struct BoundWriter {
    message: Vec<u8>,
    last_timestamp: u64,
}

impl BoundWriter {
    fn bound(&mut self, timestamp: u64, id_prefix: &[u8]) {
        if timestamp == INFINITY {
            self.last_timestamp = INFINITY;
            self.varint(0);
        } else {
            let delta = timestamp.saturating_sub(self.last_timestamp);
            self.last_timestamp = timestamp;
            self.varint(delta.saturating_add(1));
        }
        self.varint(id_prefix.len() as u64);
        self.message.extend_from_slice(id_prefix);
    }

    /// The shortest bound above `before` and at or below `after` (they are in order).
    fn minimal_bound(&mut self, before: &(u64, EntryId), after: &(u64, EntryId)) {
        if before.0 != after.0 {
            self.bound(after.0, &[]);
        } else {
            let shared = before
                .1
                .as_bytes()
                .iter()
                .zip(after.1.as_bytes())
                .take_while(|(a, b)| a == b)
                .count();
            self.bound(after.0, &after.1.as_bytes()[..shared + 1]);
        }
    }

    /// Big-endian base 128, the high bit set on every byte but the last.
    fn varint(&mut self, value: u64) {
        let mut groups = [0u8; 10];
        let mut count = 0;
        let mut rest = value;
        loop {
            groups[count] = (rest & 0x7f) as u8;
            count += 1;
            rest >>= 7;
            if rest == 0 {
                break;
            }
        }
        for index in (0..count).rev() {
            let more = if index > 0 { 0x80 } else { 0 };
            self.message.push(groups[index] | more);
        }
    }
}

/// The ids a peer listed that this side needs, in the order the peer listed them.
///
/// Negentropy reports the needed ids of each listed range in hash-set order. The peer lists
/// its ids in (created, id) order, and stored in that order each author's chain grows entry by
/// entry; stored in hash order most entries of a catch-up would arrive before the one they
/// follow and take the store's slower path for entries whose predecessor is missing (about
/// 1.5 times the writer's CPU an entry in the benchmark). So the order is read back from the
/// message, which negentropy has already accepted; ids it does not list (there are none) keep
/// negentropy's order at the end.
fn in_listed_order(message: &[u8], need: Vec<Id>) -> Vec<EntryId> {
    let mut needed: HashSet<[u8; 32]> = need.iter().map(|id| **id).collect();
    let mut ordered = Vec::with_capacity(need.len());
    for listed in listed_ids(message) {
        if needed.remove(listed) {
            ordered.push(EntryId(*listed));
        }
    }
    ordered.extend(
        need.into_iter()
            .map(|id| *id)
            .filter(|id| needed.contains(id))
            .map(EntryId),
    );
    ordered
}

/// Every id in the id lists of a negentropy message, in message order. Stops at the first
/// thing it cannot read (the message has passed negentropy's own parsing by then).
fn listed_ids(message: &[u8]) -> Vec<&[u8; ID_SIZE]> {
    let mut ids = Vec::new();
    let Some((&PROTOCOL_VERSION, mut rest)) = message.split_first() else {
        return ids;
    };
    while !rest.is_empty() {
        // The range's upper bound: a timestamp, then an id prefix with its length.
        let Some(_timestamp) = read_varint(&mut rest) else {
            break;
        };
        let Some(prefix) = read_varint(&mut rest).and_then(|len| usize::try_from(len).ok()) else {
            break;
        };
        let Some(tail) = rest.get(prefix..) else {
            break;
        };
        rest = tail;
        match read_varint(&mut rest) {
            Some(mode) if mode == u64::from(MODE_SKIP) => {}
            Some(mode) if mode == u64::from(MODE_FINGERPRINT) => {
                let Some(tail) = rest.get(FINGERPRINT_SIZE..) else {
                    break;
                };
                rest = tail;
            }
            Some(mode) if mode == u64::from(MODE_ID_LIST) => {
                let Some(count) = read_varint(&mut rest).and_then(|n| usize::try_from(n).ok())
                else {
                    break;
                };
                let Some((list, tail)) = count
                    .checked_mul(ID_SIZE)
                    .and_then(|len| rest.split_at_checked(len))
                else {
                    break;
                };
                ids.extend(
                    list.chunks_exact(ID_SIZE)
                        .filter_map(|id| <&[u8; ID_SIZE]>::try_from(id).ok()),
                );
                rest = tail;
            }
            _ => break,
        }
    }
    ids
}

/// Reads a negentropy varint (see [`BoundWriter::varint`]) off the front of `rest`.
fn read_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for _ in 0..10 {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

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

/// Ids asked for by a session's fetch after `sent` earlier ones: [`FIRST_FETCH`], doubling
/// up to [`FETCH_BATCH`].
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
mod tests;

/// Where a frame a peer sent stands against the session's space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    /// In the space, created at this time (ms).
    InSpace(u64),
    /// In a header format newer than this build reads: its spaces are unknown.
    NewerFormat,
    /// Not in the space, or not an entry.
    Outside,
}
