//! Stores of every earlier format are migrated when opened, even after a migration was
//! interrupted, and read back whole afterwards.

mod common;

use cairn_core::testkit::{Author, EPOCH};
use cairn_store::{Config, Filter, Store};
use common::*;

#[test]
fn a_format_1_store_is_migrated_on_open_and_its_filters_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let (ben, entries) = ana_then_ben(6, 3);
    {
        let store = Store::create(&path, Config::default()).expect("create");
        store
            .insert_batch(&entries.iter().map(|e| e.encode()).collect::<Vec<_>>(), NOW)
            .expect("batch");
    }
    // Rewrite it as format 1 had it: frames in the records, time values hold only the kind,
    // and tags and organisations have index keys of their own (`g tag 0 created id`,
    // `o org created id`).
    rewrite_as_format_4(&path, &entries);
    rewrite_as_format_3(&path, &entries);
    rewrite_records_as_format_2(&path, &entries);
    {
        let db = open_raw(&path);
        let tree = db.open_tree("entries").expect("tree");
        for entry in &entries {
            let header = entry.header();
            let created = header.created.0.to_be_bytes();
            let id = entry.id();
            tree.insert(
                [&[b't'][..], &created, id.as_bytes()].concat(),
                &header.kind.0.to_be_bytes()[..],
            )
            .expect("time");
            let org = entry.credential().claims().org;
            tree.insert(
                [&[b'o'][..], org.as_bytes(), &created, id.as_bytes()].concat(),
                &[][..],
            )
            .expect("org");
            for tag in &entry.story().expect("story").expect("decodes").tags {
                tree.insert(
                    [&[b'g'][..], tag.as_bytes(), &[0], &created, id.as_bytes()].concat(),
                    &[][..],
                )
                .expect("tag");
            }
        }
        set_format(&db, b"cairn-store/1");
    }
    {
        let store = Store::open(&path, Config::default()).expect("migrates");
        let count = |filter: Filter| {
            store
                .newest(&filter)
                .collect::<Result<Vec<_>, _>>()
                .expect("every entry reads")
                .len()
        };
        assert_eq!(count(Filter::default()), 9);
        assert_eq!(
            count(Filter {
                org: Some(ben.org_key.org_id()),
                ..Filter::default()
            }),
            3
        );
        assert_eq!(
            count(Filter {
                tag: Some("batch-1".into()),
                ..Filter::default()
            }),
            2
        );
        let orgs = store.orgs(10).expect("orgs");
        assert_eq!(orgs.len(), 2);
        let ben_newest = &orgs
            .iter()
            .find(|(org, _)| *org == ben.org_key.org_id())
            .expect("ben's org")
            .1;
        assert_eq!(ben_newest.header().seq, 3);
    }
    let db = open_raw(&path);
    let tree = db.open_tree("entries").expect("tree");
    assert_eq!(tree.scan_prefix([b'g']).count(), 0, "tag index removed");
    assert_eq!(tree.scan_prefix([b'o']).count(), 0, "org index removed");
    assert_eq!(tree.scan_prefix([b't']).count(), 0, "time index removed");
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}

/// Puts each entry's frame back into its frame key (`d created id` → frame) and removes the
/// frame log, as format 4 stored them, and marks the store as format 4.
fn rewrite_as_format_4(path: &std::path::Path, entries: &[cairn_core::Entry]) {
    rewrite_as_format_5(path, entries);
    let db = open_raw(path);
    let tree = db.open_tree("entries").expect("tree");
    for entry in entries {
        let created = entry.header().created.0.to_be_bytes();
        tree.insert(
            [&[b'd'][..], &created, entry.id().as_bytes()].concat(),
            entry.encode(),
        )
        .expect("frame key");
    }
    std::fs::remove_file(path.join("frames")).expect("remove the frame log");
    set_format(&db, b"cairn-store/4");
}

/// Moves each entry's kind, organisation and tags from its record to a time key
/// (`t created id`), leaving the record only its creation time, as format 3 stored them, and
/// marks the store as format 3.
fn rewrite_as_format_3(path: &std::path::Path, entries: &[cairn_core::Entry]) {
    let db = open_raw(path);
    let tree = db.open_tree("entries").expect("tree");
    for entry in entries {
        let id = entry.id();
        let created = entry.header().created.0.to_be_bytes();
        tree.insert(
            [&[b't'][..], &created, id.as_bytes()].concat(),
            format_3_time_value(entry),
        )
        .expect("time key");
        tree.insert([&[b'e'][..], id.as_bytes()].concat(), &created[..])
            .expect("record");
    }
    set_format(&db, b"cairn-store/3");
}

/// Puts each entry's frame back into its record (`e id` → frame) and removes the frame keys
/// (`d created id`), as formats 1 and 2 stored them, and marks the store as format 2.
fn rewrite_records_as_format_2(path: &std::path::Path, entries: &[cairn_core::Entry]) {
    let db = open_raw(path);
    let tree = db.open_tree("entries").expect("tree");
    for entry in entries {
        let id = entry.id();
        let created = entry.header().created.0.to_be_bytes();
        tree.insert([&[b'e'][..], id.as_bytes()].concat(), entry.encode())
            .expect("record");
        tree.remove([&[b'd'][..], &created, id.as_bytes()].concat())
            .expect("frame key");
    }
    set_format(&db, b"cairn-store/2");
}

#[test]
fn a_format_2_store_is_migrated_on_open_even_after_an_interrupted_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let entries = Author::ana().chain(40, EPOCH, 300).expect("chain");
    let frames: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect();
    Store::create(&path, Config::default())
        .expect("create")
        .insert_batch(&frames, NOW)
        .expect("batch");
    // Only the first half goes back to format 2: the rest is as an interrupted migration
    // left it (format 3).
    rewrite_as_format_4(&path, &entries);
    rewrite_as_format_3(&path, &entries);
    rewrite_records_as_format_2(&path, &entries[..20]);
    {
        let store = Store::open(&path, Config::default()).expect("migrates");
        for entry in &entries {
            let read = store.get(&entry.id()).expect("reads").expect("held");
            assert_eq!(read.encode(), entry.encode());
        }
        assert_eq!(store.count().expect("count"), 40);
        let page = store
            .space_range("commons", None, 100, 1 << 20)
            .expect("range");
        assert_eq!(page.frames, frames);
    }
    let db = open_raw(&path);
    let tree = db.open_tree("entries").expect("tree");
    assert_frames_are_in_the_log(&tree, &entries);
    assert_eq!(tree.scan_prefix([b't']).count(), 0, "time index removed");
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}

#[test]
fn a_format_3_store_is_migrated_on_open_even_after_an_interrupted_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let (ben, entries) = ana_then_ben(30, 12);
    Store::create(&path, Config::default())
        .expect("create")
        .insert_batch(&entries.iter().map(|e| e.encode()).collect::<Vec<_>>(), NOW)
        .expect("batch");
    // Entries 10 and on go back to format 3. Of those, 10 to 19 are as an interrupted
    // migration left them: the record already rebuilt, the time key not yet removed.
    rewrite_as_format_4(&path, &entries);
    rewrite_as_format_3(&path, &entries[10..]);
    {
        let db = open_raw(&path);
        let tree = db.open_tree("entries").expect("tree");
        for entry in &entries[10..20] {
            let record = [
                &entry.header().created.0.to_be_bytes()[..],
                &format_3_time_value(entry),
            ]
            .concat();
            tree.insert([&[b'e'][..], entry.id().as_bytes()].concat(), record)
                .expect("record");
        }
        db.flush().expect("flush");
    }
    {
        let store = Store::open(&path, Config::default()).expect("migrates");
        let count = |filter: Filter| {
            store
                .newest(&filter)
                .collect::<Result<Vec<_>, _>>()
                .expect("every entry reads")
                .len()
        };
        assert_eq!(count(Filter::default()), 42);
        assert_eq!(store.count().expect("count"), 42);
        assert_eq!(
            count(Filter {
                org: Some(ben.org_key.org_id()),
                ..Filter::default()
            }),
            12
        );
        assert_eq!(
            count(Filter {
                tag: Some("batch-1".into()),
                ..Filter::default()
            }),
            entries
                .iter()
                .filter(|e| format_3_time_value(e).ends_with(b"batch-1\0"))
                .count()
        );
        assert_eq!(
            store.orgs(10).expect("orgs").len(),
            2,
            "both organisations counted from the migrated records"
        );
    }
    let db = open_raw(&path);
    let tree = db.open_tree("entries").expect("tree");
    assert_eq!(tree.scan_prefix([b't']).count(), 0, "time index removed");
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}

#[test]
fn a_format_4_store_moves_its_frames_to_the_log_even_after_an_interrupted_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let entries = Author::ana().chain(40, EPOCH, 300).expect("chain");
    let frames: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect();
    Store::create(&path, Config::default())
        .expect("create")
        .insert_batch(&frames, NOW)
        .expect("batch");
    // As an interrupted migration leaves it: the first 15 frames already moved to the log,
    // the rest still in the tree.
    rewrite_as_format_5(&path, &entries);
    {
        let db = open_raw(&path);
        let tree = db.open_tree("entries").expect("tree");
        for entry in &entries[15..] {
            let created = entry.header().created.0.to_be_bytes();
            tree.insert(
                [&[b'd'][..], &created, entry.id().as_bytes()].concat(),
                entry.encode(),
            )
            .expect("frame key");
        }
        set_format(&db, b"cairn-store/4");
    }
    {
        let store = Store::open(&path, Config::default()).expect("migrates");
        for entry in &entries {
            let read = store.get(&entry.id()).expect("reads").expect("held");
            assert_eq!(read.encode(), entry.encode());
        }
        let page = store
            .space_range("commons", None, 100, 1 << 20)
            .expect("range");
        assert_eq!(page.frames, frames);
    }
    let db = open_raw(&path);
    let tree = db.open_tree("entries").expect("tree");
    assert_frames_are_in_the_log(&tree, &entries);
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}

#[test]
fn a_format_5_store_moves_its_frame_pointers_into_records_even_after_an_interrupted_migration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let (ben, entries) = ana_then_ben(30, 12);
    let frames: Vec<Vec<u8>> = entries.iter().map(|e| e.encode()).collect();
    Store::create(&path, Config::default())
        .expect("create")
        .insert_batch(&frames, NOW)
        .expect("batch");
    // Entries 10 and on go back to format 5; the first 10 are as an interrupted migration
    // left them. A frame key whose record a crash kept from being written is there too.
    rewrite_as_format_5(&path, &entries[10..]);
    {
        let db = open_raw(&path);
        let tree = db.open_tree("entries").expect("tree");
        let stray = [&[b'd'][..], &[0u8; 8], &[7u8; 32]].concat();
        tree.insert(stray, &[0u8; 12][..]).expect("stray frame key");
        db.flush().expect("flush");
    }
    {
        let store = Store::open(&path, Config::default()).expect("migrates");
        for entry in &entries {
            let read = store.get(&entry.id()).expect("reads").expect("held");
            assert_eq!(read.encode(), entry.encode());
        }
        let newest: Vec<_> = store
            .newest(&Filter::default())
            .map(|entry| entry.expect("reads").id())
            .collect();
        let mut expected: Vec<_> = entries.iter().collect();
        expected.sort_by_key(|entry| std::cmp::Reverse((entry.header().created, entry.id())));
        assert_eq!(
            newest,
            expected.iter().map(|entry| entry.id()).collect::<Vec<_>>()
        );
        assert_eq!(
            store
                .newest(&Filter {
                    org: Some(ben.org_key.org_id()),
                    ..Filter::default()
                })
                .count(),
            12
        );
        let page = store
            .space_range("commons", None, 100, 1 << 20)
            .expect("range");
        assert_eq!(page.frames.len(), 42);
    }
    let db = open_raw(&path);
    let tree = db.open_tree("entries").expect("tree");
    assert_frames_are_in_the_log(&tree, &entries);
    assert_eq!(format_of(&db).as_deref(), Some(&b"cairn-store/6"[..]));
}
