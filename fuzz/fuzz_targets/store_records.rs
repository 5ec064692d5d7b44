//! Records read back from disk, damaged as a failing disk or an edited file would leave them:
//! the record that says where an entry's frame lies in the frame log. Reading by id and
//! reading frames for a peer either give the right entry or report damage; a damaged
//! record never makes the store allocate what no frame could need, nor return another entry.
#![no_main]

use cairn_fuzz::store_with_entries;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|record: &[u8]| {
    let (store, entries) = store_with_entries();
    let damaged = entries[7].id();
    store
        .damage_record(&damaged, record)
        .expect("the record is written");
    match store.get(&damaged) {
        Ok(Some(entry)) => assert_eq!(entry.id(), damaged, "reads never return another entry"),
        Ok(None) => {}
        Err(cairn_store::Error::Corrupt(_)) => {}
        Err(other) => panic!("damage read back as something else: {other}"),
    }
    let ids = [entries[6].id(), damaged, entries[8].id()];
    let _ = store.frames(&ids, 1 << 20);
    let _ = store.contains(&damaged);
});
