//! Two stores in memory, synced through the state machine alone: the bytes each side would
//! send are handed straight to the other.

use std::collections::BTreeMap;

use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{Entry, EntryId};
use cairn_sync::{Page, Position, Request, Response, Session, Source, Stats, Step, respond};

#[derive(Default, Clone)]
struct Memory {
    /// (created, id) → frame, for one space.
    entries: BTreeMap<(u64, EntryId), Vec<u8>>,
    /// The (created, id) of each entry added, in the order they came.
    arrived: Vec<(u64, EntryId)>,
}

impl Memory {
    fn add(&mut self, entry: &Entry) {
        let key = (entry.header().created.0, entry.id());
        self.arrived.push(key);
        self.entries.insert(key, entry.encode());
    }

    fn ids(&self) -> Vec<EntryId> {
        self.entries.keys().map(|(_, id)| *id).collect()
    }
}

impl Source for Memory {
    fn items(&self, _space: &str) -> Result<std::sync::Arc<Vec<(u64, EntryId)>>, String> {
        Ok(std::sync::Arc::new(self.entries.keys().copied().collect()))
    }

    fn frames(&self, ids: &[EntryId], max_bytes: usize) -> Result<(Vec<Vec<u8>>, bool), String> {
        let mut frames = Vec::new();
        let mut bytes = 0;
        for id in ids {
            if let Some(frame) = self
                .entries
                .iter()
                .find(|((_, held), _)| held == id)
                .map(|(_, frame)| frame)
            {
                if bytes + frame.len() > max_bytes {
                    return Ok((frames, true));
                }
                bytes += frame.len();
                frames.push(frame.clone());
            }
        }
        Ok((frames, false))
    }

    fn range(
        &self,
        _space: &str,
        after: Option<Position>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Page, String> {
        let mut frames = Vec::new();
        let mut bytes = 0;
        let mut last = None;
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut iter = self
            .entries
            .range((start, std::ops::Bound::Unbounded))
            .peekable();
        while let Some((key, frame)) = iter.next() {
            if frames.len() == limit || bytes + frame.len() > max_bytes {
                return Ok(Page { frames, next: last });
            }
            bytes += frame.len();
            frames.push(frame.clone());
            last = Some(*key);
            if iter.peek().is_none() {
                return Ok(Page { frames, next: None });
            }
        }
        Ok(Page { frames, next: None })
    }
}

/// `puller` pulls from `server` until done; returns the session's counters.
fn pull(puller: &mut Memory, server: &Memory) -> Stats {
    pull_watching(puller, server).0
}

/// [`pull`], also returning whether a fetch was ever in flight beside a reconciliation round.
fn pull_watching(puller: &mut Memory, server: &Memory) -> (Stats, bool) {
    let (mut session, request) =
        Session::start("commons".into(), puller.items("commons").expect("items")).expect("start");
    // Requests in flight, answered in order, as the node does.
    let mut in_flight = std::collections::VecDeque::from([request]);
    let mut fetched_while_reconciling = false;
    while let Some(request) = in_flight.pop_front() {
        let request = Request::decode(&request).expect("request decodes");
        if let Request::Fetch { ids } = &request {
            assert!(
                (1..=cairn_sync::FETCH_BATCH).contains(&ids.len()),
                "{} ids",
                ids.len()
            );
        }
        let response = respond(server, request);
        let bytes = response.encode().expect("encode");
        let (frames, step) = session.on_response(&bytes).expect("response");
        for frame in frames {
            puller.add(&Entry::decode(&bytes[frame]).expect("frame"));
        }
        match step {
            Step::Send(next) => in_flight.extend(next),
            Step::Wait => assert!(!in_flight.is_empty(), "waiting on nothing"),
            Step::Done => {
                assert!(in_flight.is_empty(), "done with requests in flight");
                return (session.stats().clone(), fetched_while_reconciling);
            }
        }
        let kinds: Vec<Request> = in_flight
            .iter()
            .map(|request| Request::decode(request).expect("request decodes"))
            .collect();
        let fetches = kinds
            .iter()
            .filter(|request| matches!(request, Request::Fetch { .. }))
            .count();
        let rounds = kinds
            .iter()
            .filter(|request| matches!(request, Request::Reconcile { .. }))
            .count();
        assert!(
            fetches <= cairn_sync::FETCHES_IN_FLIGHT,
            "{fetches} fetches in flight"
        );
        assert!(rounds <= 1, "{rounds} reconciliation rounds in flight");
        fetched_while_reconciling |= fetches > 0 && rounds > 0;
    }
    panic!("the session stopped without finishing")
}

/// A store holding `entries`.
fn holding<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Memory {
    let mut memory = Memory::default();
    entries.into_iter().for_each(|entry| memory.add(entry));
    memory
}

fn entries(count: usize) -> Vec<Entry> {
    let mut all = Vec::new();
    for author in 0..4u8 {
        let member = Author::from_seeds(30 + author, 60 + author, "Org", "Member");
        all.extend(
            member
                .chain(
                    count / 4,
                    cairn_core::Timestamp(EPOCH.0 + u64::from(author)),
                    200,
                )
                .expect("chain"),
        );
    }
    all
}

/// A puller holding each author's first `kept` of 1,000 entries pulls the rest from a server
/// holding them all; returns the session's counters once the two hold the same.
fn pull_missing_newest(kept: u64) -> Stats {
    let all = entries(4_000);
    let server = holding(&all);
    let mut puller = holding(all.iter().filter(|entry| entry.header().seq <= kept));
    let stats = pull(&mut puller, &server);
    assert_eq!(puller.ids(), server.ids());
    stats
}

#[test]
fn missing_newest_entries_arrive_in_few_round_trips() {
    // The puller lacks the newest 200 of each author.
    let stats = pull_missing_newest(800);
    assert_eq!(stats.entries_received, 800);
    assert!(!stats.streamed);
    // The first answer names every id newer than the puller's newest, and carries the first
    // 128 of those entries.
    assert_eq!(stats.reconcile_round_trips, 1, "{stats:?}");
    assert_eq!(stats.expected, 800);
    // The rest are fetched in 256, then the remaining 416 ids, both sent at once.
    assert_eq!(stats.round_trips - stats.reconcile_round_trips, 2);
}

#[test]
fn fetched_entries_arrive_in_the_order_the_peer_holds_them() {
    // Negentropy names the needed ids of a range in hash order; fetched so, most entries would
    // reach the store before the entry they follow in their author's chain.
    let all = entries(4_000);
    let server = holding(&all);
    let mut puller = holding(all.iter().filter(|entry| entry.header().seq <= 700));
    puller.arrived.clear();
    let stats = pull(&mut puller, &server);
    assert_eq!(puller.ids(), server.ids());
    assert!(stats.round_trips > 2, "{stats:?}");
    assert_eq!(puller.arrived.len(), 1_200);
    assert!(
        puller.arrived.is_sorted(),
        "entries arrived out of (created, id) order"
    );
}

#[test]
fn a_few_missing_newest_entries_come_with_the_first_answer() {
    // The puller lacks the newest 20 of each author: 80, fewer than the first answer carries.
    let stats = pull_missing_newest(980);
    assert_eq!(
        (stats.round_trips, stats.entries_received, stats.expected),
        (1, 80, 80)
    );
    // A small space reaches an empty node whole in one round trip too.
    let server = holding(&entries(200)[..50]);
    let mut puller = Memory::default();
    let stats = pull(&mut puller, &server);
    assert!(!stats.streamed);
    assert_eq!(puller.ids(), server.ids());
    assert_eq!((stats.round_trips, stats.entries_received), (1, 50));
}

#[test]
fn a_first_answer_carrying_entries_not_newer_than_those_held_or_twice_is_refused() {
    let all = entries(400);
    // Each author's first 80 of 100; all[79] is the first author's 80th, all[80] their 81st.
    let puller = holding(all.iter().filter(|entry| entry.header().seq <= 80));
    let answer_carrying = |newer: &[&Entry]| {
        let (mut session, _) =
            Session::start("commons".into(), puller.items("commons").expect("items"))
                .expect("start");
        let answer = Response::Reconcile {
            message: cairn_sync::Bytes(vec![0x61]),
            newer: newer
                .iter()
                .map(|entry| cairn_sync::Bytes(entry.encode()))
                .collect(),
        };
        session.on_response(&answer.encode().expect("encode"))
    };
    let (frames, _) = answer_carrying(&[&all[80]]).expect("a newer entry");
    assert_eq!(frames.len(), 1);
    for newer in [&[&all[79]][..], &[&all[80], &all[80]][..]] {
        let err = answer_carrying(newer).expect_err("not newer, or twice");
        assert!(err.to_string().contains("not asked for"), "{err}");
    }
}

#[test]
fn both_sides_converge_after_each_pulls_from_the_other() {
    let all = entries(2_000);
    let (mut left, mut right) = (Memory::default(), Memory::default());
    for (index, entry) in all.iter().enumerate() {
        match index % 3 {
            0 => left.add(entry),
            1 => right.add(entry),
            _ => {
                left.add(entry);
                right.add(entry);
            }
        }
    }
    let before_right = right.clone();
    pull(&mut left, &before_right);
    pull(&mut right, &left);
    assert_eq!(left.ids(), right.ids());
    assert_eq!(left.ids().len(), 2_000);
}

#[test]
fn gaps_among_older_entries_are_sought_while_the_newest_are_fetched_and_a_newer_puller_converges() {
    let all = entries(4_000);
    let server = holding(&all);
    // The puller lacks scattered older entries as well as the newest 100 of each author.
    let mut puller = holding(all.iter().filter(|entry| {
        let seq = entry.header().seq;
        seq <= 900 && seq % 97 != 0
    }));
    let (stats, fetched_while_reconciling) = pull_watching(&mut puller, &server);
    assert_eq!(puller.ids(), server.ids());
    assert_eq!(stats.entries_received, 4 * (100 + 9));
    assert!(stats.reconcile_round_trips >= 2, "{stats:?}");
    // The newest, named in the first answer, were fetched while the gaps were still sought.
    assert!(fetched_while_reconciling);

    // A puller holding entries newer than all of the server's: the server's part of the open
    // end is empty, and the puller's extra entries are only in its last bucket.
    let server = holding(all.iter().filter(|entry| entry.header().seq <= 900));
    let mut puller = holding(all.iter().filter(|entry| {
        let seq = entry.header().seq;
        seq > 900 || seq % 50 != 0
    }));
    let stats = pull(&mut puller, &server);
    assert_eq!(stats.entries_received, 4 * 18);
    assert_eq!(puller.ids().len(), 4_000);
}

#[test]
fn an_empty_node_streams_instead_of_reconciling() {
    let all = entries(3_000);
    let server = holding(&all);
    let mut puller = Memory::default();
    let stats = pull(&mut puller, &server);
    assert!(stats.streamed);
    assert_eq!(puller.ids(), server.ids());
    assert_eq!(
        stats.round_trips as usize,
        1 + 3_000usize.div_ceil(cairn_sync::RANGE_PAGE as usize)
    );
}

#[test]
fn in_sync_is_one_small_round_trip() {
    let all = entries(4_000);
    let server = holding(&all);
    let mut puller = server.clone();
    let stats = pull(&mut puller, &server);
    assert_eq!(stats.round_trips, 1);
    assert!(stats.bytes_sent + stats.bytes_received < 1_024, "{stats:?}");
}

#[test]
fn refusals_and_garbage_are_errors_not_panics() {
    let (mut session, _) = Session::start("commons".into(), Default::default()).expect("start");
    let refused = Response::<cairn_sync::Bytes>::Refused {
        reason: "busy".into(),
    }
    .encode()
    .expect("encode");
    assert!(session.on_response(&refused).is_err());
    let (mut session, _) = Session::start("commons".into(), Default::default()).expect("start");
    assert!(session.on_response(&[0xff; 40]).is_err());
    assert!(Request::decode(&[1, 2, 3]).is_err());
}

#[test]
fn a_peer_that_sends_what_was_not_asked_for_or_pages_backwards_is_refused() {
    let all = entries(400);
    let server = holding(&all);
    // Fetch phase: answer with an entry that was not asked for.
    let mut puller = Memory::default();
    all[..300].iter().for_each(|entry| puller.add(entry));
    let (mut session, request) =
        Session::start("commons".into(), puller.items("commons").expect("items")).expect("start");
    let mut request = request;
    loop {
        let response = respond(&server, Request::decode(&request).expect("request"));
        if let Response::Entries { .. } = response {
            let stranger = Response::Entries {
                frames: vec![cairn_core::codec::Bytes(all[0].encode())],
                next: None,
                truncated: false,
            };
            assert!(
                session
                    .on_response(&stranger.encode().expect("encode"))
                    .is_err()
            );
            break;
        }
        match session
            .on_response(&response.encode().expect("encode"))
            .expect("step")
            .1
        {
            Step::Send(next) => request = next[0].clone(),
            Step::Wait | Step::Done => panic!("expected a fetch"),
        }
    }
    // Range phase: a page whose position goes backwards.
    let (mut session, _) = Session::start("commons".into(), Default::default()).expect("start");
    let use_range = Response::<cairn_sync::Bytes>::UseRange { count: 400 }
        .encode()
        .expect("encode");
    session.on_response(&use_range).expect("range");
    let forward = Response::Entries {
        frames: vec![cairn_core::codec::Bytes(all[5].encode())],
        next: Some((10, all[5].id())),
        truncated: false,
    };
    session
        .on_response(&forward.encode().expect("encode"))
        .expect("first page");
    let backward = Response::Entries {
        frames: vec![cairn_core::codec::Bytes(all[6].encode())],
        next: Some((9, all[6].id())),
        truncated: false,
    };
    assert!(
        session
            .on_response(&backward.encode().expect("encode"))
            .is_err()
    );
}

#[test]
fn a_streamed_page_with_an_entry_from_another_space_or_an_unreadable_header_is_refused() {
    let all = entries(8);
    let page = |frame: Vec<u8>| {
        Response::Entries {
            frames: vec![cairn_core::codec::Bytes(frame)],
            next: Some((1, all[0].id())),
            truncated: false,
        }
        .encode()
        .expect("encode")
    };
    let use_range = Response::<cairn_sync::Bytes>::UseRange { count: 8 }
        .encode()
        .expect("encode");
    let streaming = |space: &str| {
        let (mut session, _) = Session::start(space.into(), Default::default()).expect("start");
        session.on_response(&use_range).expect("range");
        session
    };
    // The entries are in "commons": accepted there, refused when "housing" was asked for.
    let (frames, _) = streaming("commons")
        .on_response(&page(all[0].encode()))
        .expect("an entry of the space");
    assert_eq!(frames.len(), 1);
    let err = streaming("housing")
        .on_response(&page(all[0].encode()))
        .expect_err("an entry of another space");
    assert!(err.to_string().contains("outside the space"), "{err}");
    // A frame whose header cannot be read is refused the same way.
    let mut unreadable = all[0].encode();
    unreadable.truncate(20);
    let err = streaming("commons")
        .on_response(&page(unreadable))
        .expect_err("an unreadable header");
    assert!(err.to_string().contains("outside the space"), "{err}");
}
