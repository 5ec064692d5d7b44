//! The body of an entry, by kind: what a peer's entry carries once its header checked. Each
//! body has exactly one encoding: what decodes encodes back to the same bytes.
#![no_main]

use cairn_core::{Profile, Reply, Response, Retraction, Revocation, Story};
use libfuzzer_sys::fuzz_target;

/// Decodes `bytes` as one body type and, if that works, checks it encodes back to them.
macro_rules! round_trip {
    ($kind:ty, $bytes:expr) => {
        if let Ok(body) = <$kind>::decode($bytes) {
            let encoded = body.encode().expect("a decoded body encodes");
            assert_eq!(encoded, $bytes, "{} has one encoding", stringify!($kind));
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            round_trip!(Story, bytes);
            if let Ok(tags) = Story::tags_of(bytes) {
                let story = Story::decode(bytes);
                if let Ok(story) = story {
                    assert_eq!(tags, story.tags, "tags read in place match the story's");
                }
            }
        }
        1 => round_trip!(Reply, bytes),
        2 => round_trip!(Response, bytes),
        3 => round_trip!(Retraction, bytes),
        4 => round_trip!(Revocation, bytes),
        _ => round_trip!(Profile, bytes),
    }
});
