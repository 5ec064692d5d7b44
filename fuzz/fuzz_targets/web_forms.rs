//! The compose page's form, URL-encoded as a browser posts it: what the page accepts becomes
//! an entry every peer accepts, with the story the member wrote (tidied).
#![no_main]

use cairn_fuzz::publish_checked;
use cairn_node::ComposeForm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(new) = ComposeForm::parse(body).new_story() {
        publish_checked(&new);
    }
});
