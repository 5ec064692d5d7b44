//! An invite ticket pasted by a member (or offered by a stranger): checksum, base32, the
//! signed invitation inside. A ticket that decodes reads back the same after encoding.
#![no_main]

use cairn_fuzz::NOW;
use cairn_node::ticket::Ticket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(ticket) = Ticket::decode(text) {
        let again = Ticket::decode(&ticket.encode()).expect("an encoded ticket decodes");
        assert_eq!(again, ticket);
        let _ = ticket.check_current(NOW);
    }
});
