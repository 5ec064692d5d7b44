//! The store against real sled databases in temporary folders.

use cairn_core::testkit::{Author, EPOCH, story};
use cairn_core::{Kind, MemberId, Timestamp};
use cairn_store::{Config, Error, Filter, Outcome, Store};

mod common;

use common::*;

#[test]
fn entries_round_trip_through_store_and_list_with_every_filter() {
    let (_dir, store) = new_store();
    let ana = Author::ana();
    let ben = Author::from_seeds(3, 4, "Northside College", "Ben Okafor");
    let ana_chain = ana.chain(9, EPOCH, 800).expect("chain");
    let ben_chain = ben.chain(3, Timestamp(EPOCH.0 + 500), 300).expect("chain");
    for entry in ana_chain.iter().chain(&ben_chain) {
        let inserted = store.insert(&entry.encode(), NOW).expect("insert");
        assert_eq!(inserted.outcome, Outcome::Stored);
        assert_eq!(store.get(&entry.id()).expect("get").as_ref(), Some(entry));
    }
    assert_eq!(store.count().expect("count"), 12);

    let all: Vec<_> = store
        .newest(&Filter::default())
        .map(|e| e.expect("read"))
        .collect();
    assert_eq!(all.len(), 12);
    assert!(
        all.windows(2)
            .all(|pair| pair[0].header().created >= pair[1].header().created),
        "newest first"
    );

    let count = |filter: Filter| {
        store
            .newest(&filter)
            .collect::<Result<Vec<_>, _>>()
            .expect("read")
            .len()
    };
    assert_eq!(
        count(Filter {
            kind: Some(Kind::FAILURE),
            ..Filter::default()
        }),
        3 + 1
    );
    assert_eq!(
        count(Filter {
            space: Some("commons".into()),
            ..Filter::default()
        }),
        12
    );
    assert_eq!(
        count(Filter {
            space: Some("housing".into()),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(
        count(Filter {
            tag: Some("batch-1".into()),
            ..Filter::default()
        }),
        2
    );
    assert_eq!(
        count(Filter {
            org: Some(ben.org_key.org_id()),
            ..Filter::default()
        }),
        3
    );
    assert_eq!(
        count(Filter {
            author: Some(ana.key.member_id()),
            ..Filter::default()
        }),
        9
    );
    assert_eq!(
        count(Filter {
            author: Some(ana.key.member_id()),
            kind: Some(Kind::QUESTION),
            ..Filter::default()
        }),
        3
    );
    assert_eq!(
        store.chain_head(&ana.key.member_id()).expect("head"),
        Some((9, ana_chain[8].id()))
    );
    assert_eq!(store.chain_head(&MemberId([9; 32])).expect("head"), None);
}

#[test]
fn duplicates_are_refused_by_id() {
    let (_dir, store) = new_store();
    let entry = &Author::ana().chain(1, EPOCH, 200).expect("chain")[0];
    store.insert(&entry.encode(), NOW).expect("first");
    assert_eq!(code(store.insert(&entry.encode(), NOW)), "duplicate:id");
    let batch = store
        .insert_batch(&[entry.encode(), entry.encode()], NOW)
        .expect("batch");
    assert!(
        batch
            .into_iter()
            .all(|result| code(result) == "duplicate:id")
    );
}

#[test]
fn gaps_are_recorded_and_filled_out_of_order() {
    let (_dir, store) = new_store();
    let chain = Author::ana().chain(4, EPOCH, 200).expect("chain");
    for index in [3, 0, 2] {
        store.insert(&chain[index].encode(), NOW).expect("insert");
    }
    assert_eq!(store.wanted().expect("wanted"), vec![chain[1].id()]);
    store.insert(&chain[1].encode(), NOW).expect("fill the gap");
    assert!(store.wanted().expect("wanted").is_empty());
    assert_eq!(store.count().expect("count"), 4);
}

#[test]
fn a_second_entry_at_the_same_seq_is_kept_as_a_fork_proof() {
    let (_dir, store) = new_store();
    let ana = Author::ana();
    let first = ana
        .entry(1, None, Kind::LEARNING, &story(1, 100), EPOCH)
        .expect("first");
    let rival = ana
        .entry(1, None, Kind::FAILURE, &story(2, 100), EPOCH)
        .expect("rival");
    store.insert(&first.encode(), NOW).expect("first");
    let inserted = store.insert(&rival.encode(), NOW).expect("rival is valid");
    assert_eq!(inserted.outcome, Outcome::ForkProof);
    assert_eq!(
        store.chain_head(&ana.key.member_id()).expect("head"),
        Some((1, first.id()))
    );
    let forks = store.forks(Some(&ana.key.member_id())).expect("forks");
    assert_eq!(forks.len(), 1);
    assert_eq!(
        (forks[0].kept, forks[0].other.id()),
        (first.id(), rival.id())
    );
    assert_eq!(code(store.insert(&rival.encode(), NOW)), "duplicate:id");
    assert_eq!(store.count().expect("count"), 1);
    // The store knows it holds the proof, also once reopened.
    assert!(store.contains(&rival.id()).expect("reads"));
    let path = store.path().to_path_buf();
    drop(store);
    let store = Store::open(&path, Config::default()).expect("reopens");
    assert!(store.contains(&rival.id()).expect("reads"));
    assert_eq!(code(store.insert(&rival.encode(), NOW)), "duplicate:id");
}

#[test]
fn an_entry_that_contradicts_the_held_chain_is_refused() {
    let (_dir, store) = new_store();
    let ana = Author::ana();
    let chain = ana.chain(2, EPOCH, 100).expect("chain");
    let rival_first = ana
        .entry(1, None, Kind::QUESTION, &story(7, 100), EPOCH)
        .expect("rival");
    let rival_second = ana
        .entry(
            2,
            Some(rival_first.id()),
            Kind::QUESTION,
            &story(8, 100),
            EPOCH,
        )
        .expect("rival");
    store.insert(&chain[0].encode(), NOW).expect("seq 1");
    let third_on_rival = ana
        .entry(
            3,
            Some(rival_second.id()),
            Kind::LEARNING,
            &story(9, 100),
            EPOCH,
        )
        .expect("seq 3");
    store.insert(&chain[1].encode(), NOW).expect("seq 2");
    assert_eq!(
        code(store.insert(&third_on_rival.encode(), NOW)),
        "invalid:chain-conflict"
    );
    // A predecessor that the held successor does not name is refused too.
    let (_dir2, fresh) = new_store();
    fresh.insert(&chain[1].encode(), NOW).expect("seq 2 first");
    assert_eq!(
        code(fresh.insert(&rival_first.encode(), NOW)),
        "invalid:chain-conflict"
    );
    fresh
        .insert(&chain[0].encode(), NOW)
        .expect("the right seq 1");
}

#[test]
fn a_whole_chain_in_one_batch_is_checked_against_itself() {
    let (_dir, store) = unlimited_store();
    let chain = Author::ana().chain(300, EPOCH, 1_000).expect("chain");
    let frames: Vec<_> = chain.iter().rev().map(|entry| entry.encode()).collect();
    let results = store.insert_batch(&frames, NOW).expect("batch");
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(store.count().expect("count"), 300);
    assert!(store.wanted().expect("wanted").is_empty());
}

#[test]
fn forged_signatures_in_a_large_batch_are_found_and_only_they_are_refused() {
    let (_dir, store) = unlimited_store();
    // Several authors interleaved, as in a sync batch, so the signature batches mix keys.
    let chains: Vec<Vec<Vec<u8>>> = (0..4u8)
        .map(|i| {
            let author = Author::from_seeds(10 + i, 20 + i, "Batch org", "Batch member");
            let chain = author.chain(150, EPOCH, 300).expect("chain");
            chain.iter().map(|entry| entry.encode()).collect()
        })
        .collect();
    let mut frames: Vec<Vec<u8>> = (0..150)
        .flat_map(|seq| chains.iter().map(move |chain| chain[seq].clone()))
        .collect();
    let forged = [5, 300, 599];
    for &index in &forged {
        let entry = cairn_core::Entry::decode(&frames[index]).expect("decodes");
        // The signature is the last 64 bytes of the signed header, which starts at byte 4.
        let signature_at = 4 + entry.signed_header().len() - 64;
        frames[index][signature_at + 10] ^= 0x20;
    }
    let results = store.insert_batch(&frames, NOW).expect("batch");
    for (index, result) in results.into_iter().enumerate() {
        if forged.contains(&index) {
            assert_eq!(code(result), "invalid:signature", "frame {index}");
        } else {
            assert!(result.is_ok(), "frame {index}: {result:?}");
        }
    }
    assert_eq!(store.count().expect("count"), 600 - forged.len());
}

#[test]
fn ids_resolve_from_unique_prefixes() {
    let (_dir, store) = new_store();
    let chain = Author::ana().chain(40, EPOCH, 100).expect("chain");
    for entry in &chain {
        store.insert(&entry.encode(), NOW).expect("insert");
    }
    let id = chain[17].id().to_string();
    assert_eq!(store.resolve(&id).expect("full"), chain[17].id());
    assert_eq!(
        store.resolve(&id[..12].to_uppercase()).expect("prefix"),
        chain[17].id()
    );
    assert!(matches!(
        store.resolve(&id[..1]),
        Err(Error::Ambiguous { .. })
    ));
    assert!(matches!(store.resolve("zz"), Err(Error::Rejected(_))));
}

#[test]
fn entries_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let chain = Author::ana().chain(20, EPOCH, 500).expect("chain");
    let frames: Vec<Vec<u8>> = chain.iter().map(|e| e.encode()).collect();
    {
        let store = Store::create(&path, Config::default()).expect("create");
        store.insert_batch(&frames[..10], NOW).expect("batch");
        // Unflushed batches are readable at once and durable after the flush.
        let results = store
            .insert_batch_unflushed(&frames[10..], NOW)
            .expect("batch");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert!(store.contains(&chain[19].id()).expect("contains"));
        // Frames are kept byte for byte as they came.
        let ids: Vec<_> = chain.iter().map(|entry| entry.id()).collect();
        let (held, _) = store.frames(&ids, usize::MAX).expect("frames");
        assert_eq!(held, frames);
        store.flush().expect("flush");
    }
    let store = Store::open(&path, Config::default()).expect("reopen");
    assert_eq!(store.count().expect("count"), 20);
    assert!(matches!(
        Store::create(&path, Config::default()),
        Err(Error::AlreadyExists(_))
    ));
}

#[test]
fn a_missing_foreign_or_damaged_store_is_an_error_never_an_empty_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing-here");
    assert!(matches!(
        Store::open(&missing, Config::default()),
        Err(Error::Missing(_))
    ));
    assert!(!missing.exists(), "opening must not create a store");

    // A sled database that Cairn did not create.
    let foreign = dir.path().join("foreign");
    drop(sled::open(&foreign).expect("sled"));
    assert!(matches!(
        Store::open(&foreign, Config::default()),
        Err(Error::NotAStore(_))
    ));

    // A Cairn store whose data file was overwritten with garbage.
    let damaged = dir.path().join("damaged");
    {
        let store = Store::create(&damaged, Config::default()).expect("create");
        let chain = Author::ana().chain(50, EPOCH, 500).expect("chain");
        store
            .insert_batch(&chain.iter().map(|e| e.encode()).collect::<Vec<_>>(), NOW)
            .expect("batch");
    }
    let data = damaged.join("db");
    let len = std::fs::metadata(&data).expect("db file").len() as usize;
    std::fs::write(&data, vec![0xA5; len]).expect("overwrite");
    match Store::open(&damaged, Config::default()) {
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains("restore"),
                "the error says what to do: {message}"
            );
        }
        Ok(store) => panic!("a damaged store opened with {:?} entries", store.count()),
    }
}

#[test]
fn index_keys_left_by_an_interrupted_write_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let chain = Author::ana().chain(3, EPOCH, 200).expect("chain");
    {
        let store = Store::create(&path, Config::default()).expect("create");
        store.insert(&chain[0].encode(), NOW).expect("insert");
    }
    // What a crash between an entry's index keys and its record leaves behind (the layout's
    // prefixes: `x` intent, `s` space, `a` chain), and its frame appended to the log.
    {
        let db = open_raw(&path);
        let tree = db.open_tree("entries").expect("tree");
        let lost = &chain[1];
        let created = lost.header().created.0.to_be_bytes();
        let id = lost.id();
        tree.insert([b'x'], &id.as_bytes()[..]).expect("intent");
        tree.insert(
            [&b"scommons\0"[..], &created, id.as_bytes()].concat(),
            &[][..],
        )
        .expect("space");
        let mut chain_key = vec![b'a'];
        chain_key.extend_from_slice(lost.header().author.as_bytes());
        chain_key.extend_from_slice(&2u64.to_be_bytes());
        tree.insert(chain_key, &id.as_bytes()[..]).expect("chain");
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(path.join("frames"))
            .expect("frame log");
        std::io::Write::write_all(&mut log, &lost.encode()).expect("frame");
        db.flush().expect("flush");
    }
    let store = Store::open(&path, Config::default()).expect("reopen");
    let page = store
        .space_range("commons", None, 10, 1 << 20)
        .expect("range");
    assert_eq!(
        page.frames,
        [chain[0].encode()],
        "the lost entry is not served"
    );
    assert_eq!(
        *store.space_items("commons").expect("items"),
        vec![(chain[0].header().created.0, chain[0].id())]
    );
    assert_eq!(
        store.chain_head(&chain[0].header().author).expect("head"),
        Some((1, chain[0].id()))
    );
    // The interrupted entry can be stored again, whole.
    store.insert(&chain[1].encode(), NOW).expect("insert again");
    assert_eq!(store.space_items("commons").expect("items").len(), 2);
}

#[test]
fn a_half_written_snapshot_left_by_a_kill_does_not_stop_the_store_opening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let entry = &Author::ana().chain(1, EPOCH, 200).expect("chain")[0];
    {
        let store = Store::create(&path, Config::default()).expect("create");
        store.insert(&entry.encode(), NOW).expect("insert");
    }
    // What sled leaves when killed while writing a snapshot: a newer, partial `.generating` file.
    std::fs::write(path.join("snap.FFFFFFFFFFFFFFFF.generating"), [0x5a; 100]).expect("write");
    let store = Store::open(&path, Config::default()).expect("opens despite the partial snapshot");
    assert!(store.get(&entry.id()).expect("get").is_some());
}

#[test]
fn a_retraction_drops_the_body_only_for_its_own_author_and_survives_reopening() {
    let (dir, store) = new_store();
    let ana = Author::ana();
    let ben = Author::from_seeds(3, 4, "Northside College", "Ben Okafor");
    let chain = ana.chain(1, EPOCH, 600).expect("chain");
    let target = &chain[0];
    let retraction = |author: &Author, seq, prev| {
        sign_retraction(author, seq, prev, target.id(), "Named someone.", 5_000)
    };
    let header_only = cairn_core::entry::frame(target.signed_header(), None);

    // Without a retraction, a body-less frame is refused.
    assert_eq!(
        code(store.insert(&header_only, NOW)),
        "invalid:body-missing"
    );

    // A stranger's retraction is stored but changes nothing.
    store
        .insert(&retraction(&ben, 1, None).encode(), NOW)
        .expect("a stranger's retraction is a valid entry");
    store.insert(&target.encode(), NOW).expect("target stored");
    assert!(
        store
            .get(&target.id())
            .expect("get")
            .expect("held")
            .body()
            .is_some()
    );

    // The author's retraction drops the held body.
    let own = retraction(&ana, 2, Some(target.id()));
    store.insert(&own.encode(), NOW).expect("retraction stored");
    let held = store.get(&target.id()).expect("get").expect("held");
    assert!(held.body().is_none(), "the body is gone");
    assert_eq!(
        store.retraction_of(&held).expect("lookup").map(|r| r.id()),
        Some(own.id())
    );
    let (served, _) = store.frames(&[target.id()], usize::MAX).expect("frames");
    assert_eq!(
        served,
        vec![header_only.clone()],
        "only the header is ever served"
    );
    drop(store);

    // Another store receives the header before the retraction, in one batch: accepted.
    let other = Store::create(&dir.path().join("other"), Config::default()).expect("create");
    let results = other
        .insert_batch(&[header_only.clone(), own.encode()], NOW)
        .expect("batch");
    assert_eq!(
        results[0].as_ref().map(|inserted| inserted.outcome).ok(),
        Some(Outcome::Retracted)
    );
    // The full entry arriving later is a duplicate; the body never comes back.
    assert_eq!(code(other.insert(&target.encode(), NOW)), "duplicate:id");
    drop(other);

    let reopened = Store::open(&dir.path().join("store"), Config::default()).expect("reopen");
    assert!(reopened.is_retracted(&target.id(), &target.header().author));
    let held = reopened.get(&target.id()).expect("get").expect("held");
    assert_eq!(
        reopened
            .retraction_of(&held)
            .expect("lookup")
            .map(|r| r.id()),
        Some(own.id()),
        "the author's retraction counts, not the stranger's"
    );
}

#[test]
fn policy_refuses_by_quota_and_follow_only_and_remembers_what_it_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config {
        max_entries_per_org: 3,
        ..Config::default()
    };
    let store = Store::create(&dir.path().join("store"), config).expect("create");
    let ana = Author::ana();
    let ben = Author::from_seeds(3, 4, "Northside College", "Ben Okafor");
    let chain = ana.chain(5, EPOCH, 300).expect("chain");
    let codes: Vec<String> = chain
        .iter()
        .map(|entry| code(store.insert(&entry.encode(), NOW)))
        .collect();
    assert!(
        codes[..3].iter().all(|code| code.contains("Stored")),
        "{codes:?}"
    );
    assert_eq!(codes[3..], ["blocked:quota", "blocked:quota"]);
    // Refused entries count as known to sync, so they are not fetched again.
    let known = store.space_items_known("commons").expect("items");
    assert_eq!(known.len(), 5);
    assert_eq!(store.space_items("commons").expect("items").len(), 3);

    let ben_first = ben.chain(1, EPOCH, 300).expect("chain");
    store.set_follow_only(true).expect("policy");
    assert_eq!(
        code(store.insert(&ben_first[0].encode(), NOW)),
        "blocked:not-followed"
    );
    store
        .follow_org(&ben.org_key.org_id(), None)
        .expect("follow");
    store
        .insert(&ben_first[0].encode(), NOW)
        .expect("a followed organisation is accepted");
    drop(store);

    let reopened = Store::open(&dir.path().join("store"), config).expect("reopen");
    let policy = reopened.policy();
    assert!(policy.follow_only);
    assert!(policy.followed.contains(&ben.org_key.org_id()));
    assert_eq!(policy.max_entries_per_org, 3);
}

#[test]
fn retraction_reaches_revisions_forks_stay_bounded_and_blocks_leave_no_orphans() {
    use cairn_core::{Draft, Space, Story};
    let (_dir, store) = new_store();
    let ana = Author::ana();
    let commons = || vec![Space::new("commons").expect("space")];
    let chain = ana.chain(1, EPOCH, 400).expect("chain");
    let original = &chain[0];
    let revision = ana
        .sign(
            2,
            Some(original.id()),
            Draft::amendment(
                original.id(),
                &Story {
                    title: "Revised".into(),
                    text: "Still secret.".into(),
                    ..Story::default()
                },
                commons(),
                Timestamp(EPOCH.0 + 1_000),
            )
            .expect("draft"),
        )
        .expect("signs");
    let retraction = sign_retraction(
        &ana,
        3,
        Some(revision.id()),
        original.id(),
        "Withdrawn.",
        2_000,
    );
    for entry in [original, &revision, &retraction] {
        store.insert(&entry.encode(), NOW).expect("stored");
    }
    for id in [original.id(), revision.id()] {
        let held = store.get(&id).expect("get").expect("held");
        assert!(
            held.body().is_none(),
            "the retraction took the revision's text too"
        );
    }
    assert_eq!(
        store.contiguous_head(&ana.key.member_id()).expect("head"),
        3
    );

    // Forks: one proof per (author, seq); more are duplicates.
    let twin_a = ana
        .entry(1, None, Kind::LEARNING, &story(7, 200), EPOCH)
        .expect("signs");
    let twin_b = ana
        .entry(1, None, Kind::LEARNING, &story(8, 200), EPOCH)
        .expect("signs");
    assert_eq!(
        store.insert(&twin_a.encode(), NOW).expect("proof").outcome,
        Outcome::ForkProof
    );
    assert_eq!(code(store.insert(&twin_b.encode(), NOW)), "duplicate:id");

    // Blocking the organisation removes entries and proofs; nothing dangles.
    store
        .block_org(&ana.org_key.org_id(), "Riverside Trust", "test")
        .expect("block");
    assert!(store.forks(None).expect("forks").is_empty());
    assert!(store.space_items("commons").expect("items").is_empty());
    assert!(store.forked_authors().expect("forked").is_empty());
}

#[test]
fn listing_all_entries_merges_the_spaces_newest_first_and_lists_each_entry_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::create(&dir.path().join("store"), Config::default()).expect("create");
    let ana = Author::ana();
    let space = |name: &str| cairn_core::Space::new(name).expect("space");
    // Ten entries, each in one, two or three of three spaces, created out of name order.
    let mut prev = None;
    let mut entries = Vec::new();
    for seq in 1..=10u64 {
        let spaces = match seq % 3 {
            0 => vec![space("alpha")],
            1 => vec![space("alpha"), space("beta")],
            _ => vec![space("alpha"), space("beta"), space("gamma")],
        };
        let draft = cairn_core::Draft::story(
            cairn_core::Kind::LEARNING,
            &cairn_core::testkit::story(seq as usize, 300),
            spaces,
            Timestamp(EPOCH.0 + seq * 1_000),
        )
        .expect("draft");
        let entry = ana.sign(seq, prev, draft).expect("signs");
        prev = Some(entry.id());
        store.insert(&entry.encode(), NOW).expect("insert");
        entries.push(entry);
    }
    let listed: Vec<_> = store
        .newest(&Filter::default())
        .map(|entry| entry.expect("reads").id())
        .collect();
    let expected: Vec<_> = entries.iter().rev().map(|entry| entry.id()).collect();
    assert_eq!(listed, expected);
    let in_gamma = store
        .newest(&Filter {
            space: Some("gamma".into()),
            ..Filter::default()
        })
        .count();
    assert_eq!(in_gamma, 3);
}

#[test]
fn frames_lost_in_a_power_cut_remove_their_entries_which_can_then_be_fetched_again() {
    frames_lost_in_a_power_cut(false);
}

#[test]
fn frames_lost_in_a_power_cut_are_found_in_a_format_5_store_before_it_is_migrated() {
    frames_lost_in_a_power_cut(true);
}

/// Frames appended after the frame log's last sync are lost, in a store of the current format
/// or (`as_format_5`) of format 5, where the frame keys say where frames are.
fn frames_lost_in_a_power_cut(as_format_5: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let entries = Author::ana().chain(30, EPOCH, 300).expect("chain");
    let frames: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect();
    {
        let store = Store::create(&path, Config::default()).expect("create");
        store.insert_batch(&frames[..20], NOW).expect("batch");
        store.insert_batch(&frames[20..], NOW).expect("batch");
    }
    if as_format_5 {
        rewrite_as_format_5(&path, &entries);
    }
    // What a power cut can leave: sled kept the last 10 entries, but their frames, appended
    // after the last sync of the frame log, never reached the disk; and the store was not
    // closed.
    let synced: u64 = frames[..20].iter().map(|frame| frame.len() as u64).sum();
    {
        let db = open_raw(&path);
        mark_as_not_closed(&db, synced);
        db.flush().expect("flush");
    }
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("frames"))
        .expect("frame log");
    // Part of the 21st frame survives, the rest is gone.
    log.set_len(synced + 100).expect("truncate");
    drop(log);

    let store = Store::open(&path, Config::default()).expect("opens, removing what was lost");
    for entry in &entries[..20] {
        assert!(store.get(&entry.id()).expect("reads").is_some());
    }
    for entry in &entries[20..] {
        assert!(!store.contains(&entry.id()).expect("reads"), "removed");
    }
    assert_every_entry_reads(&store, 20);
    // Fetched again, they are stored whole and extend the chain as before.
    let results = store.insert_batch(&frames[20..], NOW).expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.count().expect("count"), 30);
    assert_eq!(
        store
            .contiguous_head(&entries[0].header().author)
            .expect("head"),
        30
    );
    drop(store);
    let db = open_raw(&path);
    assert_frames_are_in_the_log(&db.open_tree("entries").expect("tree"), &entries);
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}

#[test]
fn a_power_cut_that_tore_a_frame_and_lost_a_retraction_still_opens_losing_only_those() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let ana = Author::ana();
    let chain = ana.chain(20, EPOCH, 600).expect("chain");
    let retraction = sign_retraction(
        &ana,
        21,
        Some(chain[19].id()),
        chain[3].id(),
        "Named someone.",
        60_000,
    );
    let frames: Vec<Vec<u8>> = chain.iter().map(|e| e.encode()).collect();
    let synced = {
        let store = Store::create(&path, Config::default()).expect("create");
        store.insert_batch(&frames[..15], NOW).expect("batch");
        let synced = std::fs::metadata(path.join("frames")).expect("log").len();
        store.insert_batch(&frames[15..], NOW).expect("batch");
        // Appends entry 3's header-only frame, then the retraction's own.
        store.insert(&retraction.encode(), NOW).expect("retraction");
        synced
    };
    // What a power cut can leave of the writes after the last sync: entry 16's frame torn
    // (its header intact, the end of its body zeros), the retraction's frame cut short; sled
    // kept every key; the store was not closed; and an unrelated write was interrupted, so
    // opening has index keys to repair too.
    {
        let db = open_raw(&path);
        mark_as_not_closed(&db, synced);
        let tree = db.open_tree("entries").expect("tree");
        let unfinished = &Author::from_seeds(3, 4, "Northside College", "Ben Okafor")
            .chain(1, EPOCH, 300)
            .expect("chain")[0];
        let created = unfinished.header().created.0.to_be_bytes();
        tree.insert([b'x'], &unfinished.id().as_bytes()[..])
            .expect("intent");
        tree.insert(
            [&b"scommons\0"[..], &created, unfinished.id().as_bytes()].concat(),
            &[][..],
        )
        .expect("space key");
        db.flush().expect("flush");
    }
    let torn_end: u64 = frames[..17].iter().map(|frame| frame.len() as u64).sum();
    let log = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("frames"))
        .expect("frame log");
    std::os::unix::fs::FileExt::write_all_at(&log, &[0u8; 100], torn_end - 100)
        .expect("tear entry 16");
    let log_len = log.metadata().expect("length").len();
    log.set_len(log_len - 50).expect("cut the retraction short");
    drop(log);

    let store = Store::open(&path, Config::default()).expect("opens, removing what was lost");
    assert!(!store.contains(&chain[16].id()).expect("reads"), "torn");
    assert!(
        !store.contains(&retraction.id()).expect("reads"),
        "cut short"
    );
    assert_every_entry_reads(&store, 19);
    // Fetched again, both are stored whole.
    store.insert(&frames[16], NOW).expect("entry 16 again");
    store
        .insert(&retraction.encode(), NOW)
        .expect("the retraction again");
    assert_eq!(store.count().expect("count"), 21);
    let retracted = store.get(&chain[3].id()).expect("reads").expect("held");
    assert!(retracted.body().is_none(), "still without its body");
}

/// Twenty thousand organisations with lower ids than a followed one, and than the one that
/// wrote last, push neither out of a bounded directory: followed first, then by activity.
#[test]
fn a_crowd_of_low_ids_never_pushes_out_the_organisations_that_matter() {
    use cairn_core::{Credential, CredentialClaims, Draft, Entry, SecretKey, Space};
    const CROWD: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::create(&dir.path().join("store"), Config::default()).expect("store");
    let sign = |index: usize, created: Timestamp| {
        let mut seed = [7u8; 32];
        seed[..8].copy_from_slice(&(index as u64).to_le_bytes());
        let key = SecretKey::from_seed(seed);
        let credential = Credential::issue(
            &key,
            CredentialClaims {
                org: key.org_id(),
                org_name: format!("Org {index}"),
                member: key.member_id(),
                member_name: format!("Org {index}"),
                issued: EPOCH,
                expires: None,
            },
        )
        .expect("credential");
        let draft = Draft::story(
            Kind::LEARNING,
            &story(index, 100),
            vec![Space::new("commons").expect("space")],
            created,
        )
        .expect("draft");
        Entry::sign(&key, &credential, 1, None, draft).expect("entry")
    };
    let entries: Vec<Entry> = (0..=CROWD)
        .map(|index| sign(index, Timestamp(EPOCH.0 + 60_000 + index as u64)))
        .collect();
    // The followed organisation has the highest id of all; the most active one the second
    // highest (its entry is the newest).
    let mut by_id: Vec<&Entry> = entries.iter().collect();
    by_id.sort_by_key(|entry| entry.credential().claims().org);
    let followed = by_id[CROWD].credential().claims().org;
    let active_index = entries
        .iter()
        .position(|entry| entry.id() == by_id[CROWD - 1].id())
        .expect("held");
    let mut frames: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    frames[active_index] = sign(active_index, Timestamp(EPOCH.0 + 3_600_000)).encode();
    let active = by_id[CROWD - 1].credential().claims().org;
    for chunk in frames.chunks(1_000) {
        for result in store.insert_batch(chunk, Timestamp::now()).expect("insert") {
            result.expect("stored");
        }
    }
    store.follow_org(&followed, None).expect("follow");
    let directory = store.orgs(500).expect("orgs");
    assert_eq!(directory.len(), 500);
    assert_eq!(
        directory[0].0, followed,
        "followed organisations come first"
    );
    assert_eq!(directory[1].0, active, "then the most recently active");
    let created: Vec<u64> = directory[1..]
        .iter()
        .map(|(_, entry)| entry.header().created.0)
        .collect();
    assert!(
        created.windows(2).all(|pair| pair[0] >= pair[1]),
        "the rest by their newest entry"
    );
}
