//! A peer's answers to a pulling session: decoding, the negentropy messages of each
//! reconciliation round, entries and ranges. The session either goes on or ends with an
//! error; it never panics, and what it asks next keeps to the request limit. The input is the
//! answers in turn, each after its length (see `fuzz_seeds`, which writes real exchanges).
#![no_main]

use cairn_core::Space;
use cairn_fuzz::store_with_entries;
use cairn_sync::{MAX_REQUEST_LEN, Session, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (store, _) = store_with_entries();
    let local = store
        .space_items_known(Space::DEFAULT)
        .expect("the store lists its space");
    let (mut session, first) =
        Session::start(Space::DEFAULT.to_string(), local).expect("a session starts");
    assert!(first.len() <= MAX_REQUEST_LEN);
    // Several answers in a row, each a whole message after its length (u32, little-endian).
    for answer in answers(data).take(16) {
        match session.on_response(answer) {
            Ok((frames, step)) => {
                for range in frames {
                    assert!(range.end <= answer.len(), "frames lie within the answer");
                }
                match step {
                    Step::Send(requests) => {
                        assert!(requests.iter().all(|r| r.len() <= MAX_REQUEST_LEN));
                    }
                    Step::Wait => {}
                    Step::Done => return,
                }
            }
            Err(_) => return,
        }
    }
});

/// The answers in `data`: each after its length as a little-endian u32; the last takes what
/// is left when its length says more.
fn answers(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (length, rest) = data.split_first_chunk::<4>()?;
        let length = (u32::from_le_bytes(*length) as usize).min(rest.len());
        let (answer, rest) = rest.split_at(length);
        data = rest;
        Some(answer)
    })
}
