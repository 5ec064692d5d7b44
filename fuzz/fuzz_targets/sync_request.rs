//! A peer's sync request, served from a real store as the node serves it: decoding (with the
//! negentropy message a reconciliation round carries), the answer, and its size limit.
#![no_main]

use cairn_fuzz::store_with_entries;
use cairn_sync::{MAX_RESPONSE_LEN, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|request: &[u8]| {
    if let Ok(decoded) = Request::decode(request) {
        assert_eq!(
            decoded.encode().expect("a decoded request encodes"),
            request,
            "a request has one encoding"
        );
    }
    let (store, _) = store_with_entries();
    let answer = cairn_node::daemon::answer_sync_request(store, request)
        .expect("every request gets an answer, if only a refusal");
    assert!(
        answer.len() <= MAX_RESPONSE_LEN,
        "answers keep to the limit"
    );
    Response::<&[u8]>::decode(&answer).expect("the answer decodes at the peer");
});
