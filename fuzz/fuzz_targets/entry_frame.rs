//! An entry frame from a peer (gossip or sync) or from disk: decoding, the cheap readers the
//! network layer uses before it, and full verification. What is accepted has exactly one
//! encoding, so no two byte strings carry the same entry.
#![no_main]

use cairn_core::entry::{frame_header, frame_id};
use cairn_core::{Entry, Verifier, codec};
use cairn_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let id = frame_id(frame);
    let header = frame_header(frame);
    let Ok(entry) = Entry::decode(frame) else {
        return;
    };
    assert_eq!(entry.encode(), frame, "a frame decodes to itself");
    assert_eq!(
        id,
        Some(entry.id()),
        "the gossip message id is the entry id"
    );
    assert_eq!(header.ok().as_ref(), Some(entry.header()));
    let signed = entry.signed_header();
    let header_bytes = codec::encode("header", entry.header()).expect("a header encodes");
    assert_eq!(
        header_bytes,
        signed[..signed.len() - 64],
        "the signed header is the header's one encoding"
    );
    let verified = Verifier::new().verify(&entry, NOW);
    if verified.is_ok()
        && let Some(story) = entry.story()
    {
        let story = story.expect("a verified entry's story decodes");
        let body = story.encode().expect("a decoded story encodes");
        assert_eq!(Some(body.as_slice()), entry.body());
    }
});
