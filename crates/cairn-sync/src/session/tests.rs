//! Tests of the pulling side's internals: fetch sizes, the first message, the ids a message
//! lists, and the sorted items.

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

/// Items with runs of equal timestamps, so bucket bounds need id prefixes too.
fn items_with_ties(len: usize) -> Items {
    let items = (0..len)
        .map(|index| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(
                &(index as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .to_be_bytes(),
            );
            bytes[8] = index as u8;
            (1_700_000_000_000 + (index / 3) as u64, EntryId(bytes))
        })
        .collect();
    Items::new(Arc::new(items))
}

#[test]
fn the_first_message_ends_its_buckets_like_negentropys_own_and_then_opens_the_new_end() {
    for len in [32, 33, 47, 100, 1_000, 4_099] {
        let items = items_with_ties(len);
        let mut reference = negentropy(items.clone()).expect("negentropy");
        let theirs = reference.initiate().expect("initiate");
        let ours = first_message(&items, OpenEnd::Infinity)
            .expect("encode")
            .expect("a message");
        assert_eq!(
            ours, theirs,
            "{len} items: the same message as negentropy's"
        );

        // The open-ended variant differs only from the last bucket's bound on.
        let open = first_message(&items, OpenEnd::AfterNewest)
            .expect("encode")
            .expect("a message");
        let last_range = 2 + 1 + 16; // infinity bound, mode, fingerprint
        let shared = theirs.len() - last_range;
        assert_eq!(open[..shared], theirs[..shared]);
        let fingerprint = &theirs[theirs.len() - 16..];
        let newest = items.0.last().expect("items").0;
        // The last bound is written as a difference from the one before it, which is
        // the timestamp of the first item of the last bucket.
        let (per, extra) = (len / BUCKETS, len % BUCKETS);
        let last_bucket_start = (BUCKETS - 1) * per + extra.min(BUCKETS - 1);
        let before_last = items.0[last_bucket_start].0;
        let mut tail = BoundWriter {
            message: Vec::new(),
            last_timestamp: before_last,
        };
        tail.varint(newest + 1 - before_last + 1);
        tail.varint(0);
        tail.message.push(MODE_FINGERPRINT);
        tail.message.extend_from_slice(fingerprint);
        tail.message.extend([0, 0, MODE_ID_LIST, 0]);
        assert_eq!(open[shared..], tail.message[..], "{len} items");
    }
    // Too few items to split: negentropy's own message lists them all.
    assert_eq!(
        first_message(&items_with_ties(31), OpenEnd::AfterNewest).expect("encode"),
        None
    );
    assert_eq!(
        first_message(&items_with_ties(0), OpenEnd::AfterNewest).expect("encode"),
        None
    );
}

/// The items of the `sync-first-message` vector in `docs/protocol.md`.
fn vector_items() -> Items {
    let items = (0..40u8)
        .map(|index| {
            (
                1_700_000_000_000 + u64::from(index / 2),
                EntryId([index; 32]),
            )
        })
        .collect();
    Items::new(Arc::new(items))
}

#[test]
fn the_protocol_document_shows_this_builds_first_message() {
    let message = first_message(&vector_items(), OpenEnd::AfterNewest)
        .expect("encode")
        .expect("a message");
    let hex: String = message.iter().map(|byte| format!("{byte:02x}")).collect();
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/protocol.md is readable");
    let written = doc
        .lines()
        .find_map(|line| line.strip_prefix("first-message: "))
        .expect("docs/protocol.md has the sync-first-message vector");
    assert_eq!(
        written, hex,
        "docs/protocol.md's first message differs from this build's"
    );
}

#[test]
fn listed_ids_come_in_message_order_and_a_cut_message_gives_those_read_whole() {
    let mut out = BoundWriter {
        message: vec![PROTOCOL_VERSION],
        last_timestamp: 0,
    };
    out.bound(5, &[]);
    out.message.push(MODE_FINGERPRINT);
    out.message.extend([0u8; FINGERPRINT_SIZE]);
    out.bound(9, &[1]);
    out.message.push(MODE_ID_LIST);
    out.varint(2);
    out.message.extend([3u8; 32].iter().chain(&[2u8; 32]));
    out.bound(INFINITY, &[]);
    out.message.push(MODE_ID_LIST);
    out.varint(1);
    out.message.extend([1u8; 32]);
    let message = out.message;
    assert_eq!(listed_ids(&message), [&[3u8; 32], &[2u8; 32], &[1u8; 32]]);
    assert_eq!(
        listed_ids(&message[..message.len() - 1]),
        [&[3u8; 32], &[2u8; 32]]
    );
    assert!(listed_ids(&[0x60, 1, 0, 2, 1]).is_empty());
    for cut in 0..message.len() {
        assert!(listed_ids(&message[..cut]).len() <= 3);
    }
    // Ids needed but not listed keep their place after the listed ones.
    let need = [[1u8; 32], [7u8; 32], [3u8; 32]]
        .map(Id::from_byte_array)
        .to_vec();
    let ordered: Vec<[u8; 32]> = in_listed_order(&message, need)
        .into_iter()
        .map(|id| *id.as_bytes())
        .collect();
    assert_eq!(ordered, [[3u8; 32], [1u8; 32], [7u8; 32]]);
}

#[test]
fn varints_are_big_endian_base_128() {
    let mut writer = BoundWriter {
        message: Vec::new(),
        last_timestamp: 0,
    };
    for value in [0, 1, 127, 128, 300, u64::MAX] {
        writer.varint(value);
    }
    assert_eq!(
        writer.message,
        [
            vec![0x00, 0x01, 0x7f, 0x81, 0x00, 0x82, 0x2c],
            vec![0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ]
        .concat()
    );
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
