//! JSON bodies a local client sends the node's API. Each request type reads and writes back
//! the same; a publish request the node accepts becomes an entry every peer accepts.
#![no_main]

use cairn_api::{
    AddressRequest, AmendRequest, MemberRequest, PolicyChange, ProfileRequest, PublishRequest,
    ReplyRequest, RespondRequest, RetractRequest, RevokeRequest, SyncRequest, TicketText,
};
use cairn_fuzz::publish_checked;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads `body` as `T`; if it reads, writing it and reading that again gives the same JSON.
fn round_trip<T: Serialize + DeserializeOwned>(body: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(body).ok()?;
    let written = serde_json::to_vec(&value).expect("a request writes as JSON");
    let again: T = serde_json::from_slice(&written).expect("written JSON reads back");
    assert_eq!(serde_json::to_vec(&again).expect("writes"), written);
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            if let Some(request) = round_trip::<PublishRequest>(body)
                && let Ok(new) = cairn_node::wire::new_story(request)
            {
                publish_checked(&new);
            }
        }
        1 => drop(round_trip::<ReplyRequest>(body)),
        2 => drop(round_trip::<RespondRequest>(body)),
        3 => drop(round_trip::<RetractRequest>(body)),
        4 => drop(round_trip::<AmendRequest>(body)),
        5 => drop(round_trip::<ProfileRequest>(body)),
        6 => drop(round_trip::<MemberRequest>(body)),
        7 => drop(round_trip::<RevokeRequest>(body)),
        8 => drop(round_trip::<PolicyChange>(body)),
        9 => drop(round_trip::<AddressRequest>(body)),
        10 => drop(round_trip::<TicketText>(body)),
        _ => drop(round_trip::<SyncRequest>(body)),
    }
});
