//! What a store lets other organisations fill it with: the budgets for strangers (per
//! organisation and all together), the disk ceiling, and the bound on the record of refused
//! entries.

mod common;

use cairn_core::testkit::{Author, EPOCH};
use cairn_store::{Budgets, Config, Store};
use common::*;

fn budgets(stranger_entries: u64, stranger_bytes: u64, strangers_bytes: u64) -> Budgets {
    Budgets {
        stranger_entries,
        stranger_bytes,
        strangers_bytes,
        ..Budgets::unlimited()
    }
}

fn store_with(budgets: Budgets) -> (tempfile::TempDir, Store) {
    new_store_with(Config {
        budgets,
        ..Config::default()
    })
}

fn author(index: u8) -> Author {
    Author::from_seeds(40 + index, 140 + index, "Flood org", "Flooder")
}

fn frames(author: &Author, count: usize, body_len: usize) -> Vec<Vec<u8>> {
    author
        .chain(count, EPOCH, body_len)
        .expect("chain")
        .iter()
        .map(cairn_core::Entry::encode)
        .collect()
}

/// Refused entries the store remembers in the commons (what sync will not fetch again).
fn refused(store: &Store) -> usize {
    store.space_items_known("commons").expect("known").len()
        - store.space_items("commons").expect("items").len()
}

/// Inserts one by one, as gossip does, and returns the codes of the refusals.
fn insert_each(store: &Store, frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|frame| match store.insert(frame, NOW) {
            Ok(_) => None,
            Err(cairn_store::Error::Rejected(reason)) => Some(reason.code().to_string()),
            Err(err) => panic!("{err}"),
        })
        .collect()
}

#[test]
fn a_stranger_is_held_to_its_entries_and_bytes_and_a_followed_one_is_not() {
    let (_dir, store) = store_with(budgets(10, 1_000_000, u64::MAX));
    let stranger = author(1);
    let chain = frames(&stranger, 15, 300);
    let refusals = insert_each(&store, &chain);
    assert_eq!(refusals, vec!["blocked:stranger-budget"; 5]);
    assert_eq!(store.count().expect("count"), 10);
    assert_eq!(refused(&store), 5, "the refused are remembered");

    // In one batch, as sync stores: counted as the batch goes.
    let other = author(2);
    let results = store
        .insert_batch(&frames(&other, 15, 300), NOW)
        .expect("batch");
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 10);
    assert_eq!(store.count().expect("count"), 20);

    // Following lifts the budget and forgets the refusals, so sync fetches them again.
    store
        .follow_org(&stranger.credential.claims().org, None)
        .expect("follow");
    assert_eq!(
        refused(&store),
        5,
        "only the followed one's refusals are forgotten"
    );
    assert!(insert_each(&store, &chain[10..]).is_empty());
    assert_eq!(store.count().expect("count"), 25);

    // Bytes: entries of about 3 kB each against a budget of 10 kB.
    let (_dir, store) = store_with(budgets(1_000, 10_000, u64::MAX));
    let big = frames(&author(3), 6, 3_000);
    let kept: usize = big[..3].iter().map(Vec::len).sum();
    assert!(kept <= 10_000 && kept + big[3].len() > 10_000, "{kept}");
    assert_eq!(
        insert_each(&store, &big),
        vec!["blocked:stranger-budget"; 3]
    );
    assert_eq!(store.count().expect("count"), 3);
}

#[test]
fn strangers_together_are_held_to_one_budget_and_the_own_organisation_to_none() {
    // 20 strangers of 10 entries of about 1 kB each, against 50 kB for all of them.
    let (_dir, store) = store_with(budgets(100, 1_000_000, 50_000));
    let mut codes = Vec::new();
    let (mut shortest, mut longest) = (usize::MAX, 0);
    for index in 0..20 {
        let chain = frames(&author(index), 10, 1_000);
        for frame in &chain {
            shortest = shortest.min(frame.len());
            longest = longest.max(frame.len());
        }
        codes.extend(insert_each(&store, &chain));
    }
    let held = store.count().expect("count");
    assert!(
        (50_000 / longest..=50_000 / shortest).contains(&held),
        "{held} entries of {shortest} to {longest} bytes held"
    );
    assert!(codes.iter().all(|code| code == "blocked:strangers-budget"));
    assert_eq!(codes.len(), 200 - held);

    // The node's own organisation and a followed one still go in.
    let own = author(100);
    store.set_own_org(own.credential.claims().org);
    assert!(insert_each(&store, &frames(&own, 30, 1_000)).is_empty());
    let followed = author(101);
    store
        .follow_org(&followed.credential.claims().org, None)
        .expect("follow");
    assert!(insert_each(&store, &frames(&followed, 30, 1_000)).is_empty());

    // Reopened, the counts are worked out again from what is stored.
    let path = store.path().to_path_buf();
    drop(store);
    let store = Store::open(
        &path,
        Config {
            budgets: budgets(100, 1_000_000, 50_000),
            ..Config::default()
        },
    )
    .expect("reopen");
    assert_eq!(
        insert_each(&store, &frames(&author(30), 1, 1_000)),
        vec!["blocked:strangers-budget"]
    );
}

#[test]
fn the_record_of_refused_entries_is_bounded() {
    let (_dir, store) = store_with(Budgets {
        stranger_entries: 1,
        max_refused: 50,
        ..Budgets::unlimited()
    });
    for index in 0..10 {
        insert_each(&store, &frames(&author(index), 30, 100));
    }
    assert_eq!(store.count().expect("count"), 10);
    assert_eq!(refused(&store), 50, "290 refused, the newest 50 remembered");
}

#[test]
fn the_disk_ceiling_stops_intake_without_losing_anything_and_the_own_organisation_goes_on() {
    let (dir, store) = unlimited_store();
    let stranger = author(1);
    let chain = frames(&stranger, 20, 2_000);
    assert!(insert_each(&store, &chain[..10]).is_empty());
    let path = store.path().to_path_buf();
    drop(store);

    // A ceiling below what the store already takes.
    let ceiling = Config {
        budgets: Budgets {
            max_disk_bytes: 1_000,
            ..Budgets::unlimited()
        },
        ..Config::default()
    };
    let store = Store::open(&path, ceiling).expect("reopen");
    let stopped = store.intake_stopped().expect("intake is stopped");
    assert!(stopped.contains("max_disk_mb"), "{stopped}");
    assert_eq!(insert_each(&store, &chain[10..]), vec!["blocked:disk"; 10]);
    assert_eq!(
        refused(&store),
        0,
        "not remembered as refused: fetched again later"
    );
    assert_eq!(store.count().expect("count"), 10, "nothing stored is lost");
    let own = author(2);
    store.set_own_org(own.credential.claims().org);
    assert!(insert_each(&store, &frames(&own, 3, 100)).is_empty());
    drop(store);

    // With room again, the rest comes in.
    let store = Store::open(&path, Config::default()).expect("reopen");
    assert!(store.intake_stopped().is_none());
    store
        .follow_org(&stranger.credential.claims().org, None)
        .expect("follow");
    assert!(insert_each(&store, &chain[10..]).is_empty());
    assert_eq!(store.count().expect("count"), 23);
    drop(dir);
}
