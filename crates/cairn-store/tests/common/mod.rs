//! Helpers the store's tests share: temporary stores, the raw sled database under a store,
//! the older formats' layouts that migrations start from, and checks of what reads back.

#![allow(dead_code)] // Each test file uses a different part.

use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{EntryId, Timestamp};
use cairn_store::{Config, Error, Filter, Store};

pub const NOW: Timestamp = Timestamp(EPOCH.0 + 86_400_000);

pub fn new_store() -> (tempfile::TempDir, Store) {
    new_store_with(Config::default())
}

pub fn new_store_with(config: Config) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::create(&dir.path().join("store"), config).expect("create");
    (dir, store)
}

/// A store with no budget for strangers, for tests of what one organisation's many entries
/// do (the budgets have their own tests).
pub fn unlimited_store() -> (tempfile::TempDir, Store) {
    new_store_with(Config {
        budgets: cairn_store::Budgets::unlimited(),
        ..Config::default()
    })
}

/// The store's sled database itself, for tests that write what only a crash or an older
/// version would leave. sled releases its file lock a moment after the store is dropped.
pub fn open_raw(path: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(err) if started.elapsed() < std::time::Duration::from_secs(30) => {
                assert!(err.to_string().contains("lock"), "{err}");
                std::thread::yield_now();
            }
            Err(err) => panic!("sled did not release the store: {err}"),
        }
    }
}

pub fn code(result: Result<cairn_store::Inserted, Error>) -> String {
    match result {
        Err(Error::Rejected(reason)) => reason.code().to_string(),
        other => format!("{other:?}"),
    }
}

/// Ben's organisation, and `ana_count` entries of Ana's chain followed by `ben_count` of Ben's
/// (his start half a second after hers), each with a body of about 300 bytes.
pub fn ana_then_ben(ana_count: usize, ben_count: usize) -> (Author, Vec<cairn_core::Entry>) {
    let ben = Author::from_seeds(3, 4, "Northside College", "Ben Okafor");
    let entries = Author::ana()
        .chain(ana_count, EPOCH, 300)
        .expect("chain")
        .into_iter()
        .chain(
            ben.chain(ben_count, Timestamp(EPOCH.0 + 500), 300)
                .expect("chain"),
        )
        .collect();
    (ben, entries)
}

/// Writes a store's format marker, and flushes.
pub fn set_format(db: &sled::Db, format: &[u8]) {
    db.open_tree("meta")
        .expect("meta")
        .insert("format", format)
        .expect("format");
    db.flush().expect("flush");
}

/// A store's format marker.
pub fn format_of(db: &sled::Db) -> Option<sled::IVec> {
    db.open_tree("meta")
        .expect("meta")
        .get("format")
        .expect("read")
}

/// Moves where each entry's frame is from its record to a frame key (`d created id` →
/// pointer), as format 5 stored them, and marks the store as format 5.
pub fn rewrite_as_format_5(path: &std::path::Path, entries: &[cairn_core::Entry]) {
    let db = open_raw(path);
    let tree = db.open_tree("entries").expect("tree");
    for entry in entries {
        let record_key = [&[b'e'][..], entry.id().as_bytes()].concat();
        let record = tree.get(&record_key).expect("read").expect("record");
        let (created, rest) = record.split_at(8);
        let (pointer, value) = rest.split_at(12);
        tree.insert(
            [&[b'd'][..], created, entry.id().as_bytes()].concat(),
            pointer,
        )
        .expect("frame key");
        tree.insert(record_key, [created, value].concat())
            .expect("record");
    }
    set_format(&db, b"cairn-store/5");
}

/// What a process that did not close the store leaves in its meta tree: the open mark, and
/// the frame log's end as last synced.
pub fn mark_as_not_closed(db: &sled::Db, synced: u64) {
    let meta = db.open_tree("meta").expect("meta");
    meta.insert("frames-synced", &synced.to_be_bytes()[..])
        .expect("synced");
    meta.insert("open", &[][..]).expect("open mark");
}

/// The store counts `count` entries, and each of them reads back, listed newest first and
/// in the `commons` space's items.
pub fn assert_every_entry_reads(store: &Store, count: usize) {
    assert_eq!(store.count().expect("count"), count);
    let listed = store
        .newest(&Filter::default())
        .collect::<Result<Vec<_>, _>>()
        .expect("every remaining entry reads");
    assert_eq!(listed.len(), count);
    assert_eq!(store.space_items("commons").expect("items").len(), count);
}

/// `author`'s retraction of `target`, created `after_ms` past the epoch.
pub fn sign_retraction(
    author: &Author,
    seq: u64,
    prev: Option<EntryId>,
    target: EntryId,
    reason: &str,
    after_ms: u64,
) -> cairn_core::Entry {
    let draft = cairn_core::Draft::retraction(
        target,
        &cairn_core::Retraction {
            reason: reason.into(),
        },
        vec![cairn_core::Space::new("commons").expect("space")],
        Timestamp(EPOCH.0 + after_ms),
    )
    .expect("draft");
    author.sign(seq, prev, draft).expect("signs")
}

/// Each entry's record holds its creation time, where its frame is in the frame log, and its
/// kind, organisation and tags; and no frame key is left.
pub fn assert_frames_are_in_the_log(tree: &sled::Tree, entries: &[cairn_core::Entry]) {
    assert_eq!(tree.scan_prefix([b'd']).count(), 0, "frame keys removed");
    for entry in entries {
        let record = tree
            .get([&[b'e'][..], entry.id().as_bytes()].concat())
            .expect("read")
            .expect("record");
        assert_eq!(record[..8], entry.header().created.0.to_be_bytes());
        let frame_len = u32::from_be_bytes(record[16..20].try_into().expect("4 bytes"));
        assert_eq!(
            frame_len as usize,
            entry.encode().len(),
            "points at the frame"
        );
        assert_eq!(record[20..], format_3_time_value(entry));
    }
}

/// The kind, organisation and tags of an entry, as format 3 kept them under its time key.
pub fn format_3_time_value(entry: &cairn_core::Entry) -> Vec<u8> {
    let mut value = entry.header().kind.0.to_be_bytes().to_vec();
    value.extend_from_slice(entry.credential().claims().org.as_bytes());
    if let Some(Ok(story)) = entry.story() {
        for tag in &story.tags {
            value.extend_from_slice(tag.as_bytes());
            value.push(0);
        }
    }
    value
}
