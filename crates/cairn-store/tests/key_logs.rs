//! Key event logs in the store: entries of an organisation with a log are held only under the
//! keys the log allows, a rotation removes what a retired key wrote past its cut-offs, a second
//! history is kept as evidence, and all of it survives reopening.

mod common;

use cairn_core::kel::{Cutoff, KeyEvent};
use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{Draft, Entry, EntryId, Kind, SecretKey, Space, Timestamp};
use cairn_store::{Config, Store};
use common::{NOW, code, new_store};

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn at(ms: u64) -> Timestamp {
    Timestamp(EPOCH.0 + ms)
}

/// The entry that carries `event`, by `author` (whose key the event names).
fn event_entry(author: &Author, seq: u64, prev: Option<EntryId>, event: &KeyEvent) -> Entry {
    let spaces = vec![Space::new("commons").expect("space")];
    author
        .sign(
            seq,
            prev,
            Draft::key_event(event, spaces, event.claims().created),
        )
        .expect("signs")
}

fn story(author: &Author, seq: u64, prev: Option<EntryId>, created: Timestamp) -> Entry {
    author
        .entry(
            seq,
            prev,
            Kind::LEARNING,
            &cairn_core::testkit::story(seq as usize, 200),
            created,
        )
        .expect("signs")
}

#[test]
fn a_new_organisations_entries_wait_for_its_inception_even_within_one_batch() {
    let (_dir, store) = new_store();
    let (k0, k1) = (key(1), key(2));
    let inception = KeyEvent::incept(&k0, &k1.public(), at(0)).expect("incepts");
    let org = inception.founds().expect("an id");
    let own = Author::issued(org, k0.clone(), k0.clone(), "Riverside", "Riverside", at(0));
    let ana = Author::issued(org, k0.clone(), key(9), "Riverside", "Ana", at(0));
    let founding = event_entry(&own, 1, None, &inception);
    let first = story(&ana, 1, None, at(1_000));
    assert_eq!(first.header().version, 2, "a hashed id needs format 2");

    assert_eq!(
        code(store.insert(&first.encode(), NOW)),
        "pending:key-log",
        "no log held yet"
    );
    // The same entry before its inception in one batch: both are stored.
    let results = store
        .insert_batch(&[first.encode(), founding.encode()], NOW)
        .expect("batch");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let log = store.key_log(&org).expect("a log is held");
    assert_eq!(
        (log.seq, log.current, log.adopted),
        (0, k0.member_id(), false)
    );
}

#[test]
fn a_rotation_refuses_the_old_keys_new_and_backdated_entries_and_removes_held_ones() {
    let (dir, store) = new_store();
    let (k0, k1, k2) = (key(1), key(2), key(3));
    let adoption = KeyEvent::adopt(&k0, &k1.public(), at(0)).expect("adopts");
    let org = k0.org_id();
    // Before the log, the organisation's id is its key: format 1 entries.
    let own = Author::issued(org, k0.clone(), k0.clone(), "Riverside", "Riverside", at(0));
    let ana = Author::issued(org, k0.clone(), key(9), "Riverside", "Ana", at(0));
    let adopting = event_entry(&own, 1, None, &adoption);
    assert_eq!(
        adopting.header().version,
        1,
        "adoption stays readable by older nodes"
    );
    let ana_1 = story(&ana, 1, None, at(1_000));
    let ana_2 = story(&ana, 2, Some(ana_1.id()), at(2_000));
    for entry in [&adopting, &ana_1, &ana_2] {
        store.insert(&entry.encode(), NOW).expect("stored");
    }
    assert!(store.key_log(&org).expect("adopted").adopted);

    // A thief of k0 writes Ana's third entry and a new member's before this store hears of
    // the rotation; both are held for now.
    let ana_3_thief = story(&ana, 3, Some(ana_2.id()), at(3_000));
    let mallory = Author::issued(org, k0.clone(), key(10), "Riverside", "Mallory", at(0));
    let mallory_1 = story(&mallory, 1, None, at(3_500));
    for entry in [&ana_3_thief, &mallory_1] {
        store
            .insert(&entry.encode(), NOW)
            .expect("held before the rotation");
    }

    // The organisation rotates to k1, keeping Ana's first two and its own first entry.
    let cutoffs = vec![
        Cutoff {
            author: ana.key.member_id(),
            last_valid_seq: 2,
        },
        Cutoff {
            author: k0.member_id(),
            last_valid_seq: 1,
        },
    ];
    let rotation =
        KeyEvent::rotate(&adoption, &k1, &k2.public(), cutoffs, at(3_200)).expect("rotates");
    let own_1 = Author::issued(
        org,
        k1.clone(),
        k1.clone(),
        "Riverside",
        "Riverside",
        at(4_000),
    );
    let rotating = event_entry(&own_1, 1, None, &rotation);
    assert_eq!(rotating.header().version, 2);
    // The organisations' index is built before the rotation, so the removal updates it.
    assert_eq!(
        store.orgs(10).expect("orgs")[0].1.id(),
        mallory_1.id(),
        "the newest before the rotation"
    );
    store
        .insert(&rotating.encode(), NOW)
        .expect("rotation stored");
    let newest_held = [&ana_1, &ana_2, &adopting, &rotating]
        .into_iter()
        .max_by_key(|entry| (entry.header().created, entry.id()))
        .expect("entries");
    assert_eq!(
        store.orgs(10).expect("orgs")[0].1.id(),
        newest_held.id(),
        "the newest after the removal is looked up again"
    );

    assert!(store.get(&ana_1.id()).expect("read").is_some());
    assert!(store.get(&ana_2.id()).expect("read").is_some());
    assert!(store.get(&adopting.id()).expect("read").is_some());
    assert!(
        store.get(&ana_3_thief.id()).expect("read").is_none(),
        "removed"
    );
    assert!(
        store.get(&mallory_1.id()).expect("read").is_none(),
        "removed"
    );

    // After it: the old key's new and backdated entries are refused.
    let backdated = story(&mallory, 2, Some(mallory_1.id()), at(100));
    let own_2 = Entry::sign(
        &k0,
        &own.credential,
        2,
        Some(adopting.id()),
        Draft::story(
            Kind::LEARNING,
            &cairn_core::testkit::story(1, 100),
            vec![Space::new("commons").expect("space")],
            at(200),
        )
        .expect("draft"),
    )
    .expect("signs");
    for entry in [&backdated, &own_2, &ana_3_thief] {
        assert_eq!(code(store.insert(&entry.encode(), NOW)), "revoked:key");
    }
    // Ana, credentialed again under k1, goes on with her chain.
    let ana_new = Author::issued(
        org,
        k1.clone(),
        ana.key.clone(),
        "Riverside",
        "Ana",
        at(4_000),
    );
    let ana_3 = story(&ana_new, 3, Some(ana_2.id()), at(5_000));
    store.insert(&ana_3.encode(), NOW).expect("re-credentialed");

    // A second history at position 1 (a thief of the next key) is kept as evidence only.
    let other = KeyEvent::rotate(&adoption, &k1, &key(4).public(), vec![], at(6_000))
        .expect("another rotation");
    let other_entry = event_entry(&own_1, 2, Some(rotating.id()), &other);
    store
        .insert(&other_entry.encode(), NOW)
        .expect("kept as evidence");
    let log = store.key_log(&org).expect("log");
    assert!(log.duplicity);
    assert_eq!(log.current, k1.member_id(), "the first history seen stays");

    drop(store);
    let store = reopen(dir.path());
    let log = store.key_log(&org).expect("log after reopening");
    assert_eq!(
        (log.seq, log.current, log.duplicity),
        (1, k1.member_id(), true)
    );
    assert_eq!(store.key_events(&org).expect("events").len(), 2);
    assert_eq!(code(store.insert(&backdated.encode(), NOW)), "revoked:key");
}

fn reopen(dir: &std::path::Path) -> Store {
    let started = std::time::Instant::now();
    loop {
        match Store::open(&dir.join("store"), Config::default()) {
            Ok(store) => return store,
            Err(err) if started.elapsed() < std::time::Duration::from_secs(30) => {
                assert!(err.to_string().contains("lock"), "{err}");
                std::thread::yield_now();
            }
            Err(err) => panic!("reopen: {err}"),
        }
    }
}
