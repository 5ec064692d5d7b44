//! What the fuzz targets in `fuzz/` found in this crate, each kept as a test.

use cairn_core::entry::MAX_SPACES;
use cairn_core::testkit::{Author, EPOCH, story};
use cairn_core::{Draft, Error, Kind, Space, Verifier};

/// `web_forms`: the compose page let a member name nine spaces; the entry was signed and then
/// refused by the node's own store, as every peer would refuse it. Now nothing is signed that
/// fails the header checks peers make, and the error says what to change.
#[test]
fn a_draft_that_peers_would_refuse_is_not_signed() {
    let author = Author::ana();
    let spaces = |count: usize| -> Vec<Space> {
        (0..count)
            .map(|n| Space::new(&format!("space-{n}")).expect("a space"))
            .collect()
    };
    let draft = Draft::story(
        Kind::LEARNING,
        &story(1, 300),
        spaces(MAX_SPACES + 1),
        EPOCH,
    )
    .expect("a draft");
    let err = author
        .sign(1, None, draft)
        .expect_err("nine spaces are refused");
    assert!(
        matches!(
            err,
            Error::BadField {
                field: "spaces",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1 to 8"), "{err}");

    // The most spaces, each named twice, is fine: spaces are sorted and made unique first.
    let mut twice = spaces(MAX_SPACES);
    twice.extend(spaces(MAX_SPACES));
    let draft = Draft::story(Kind::LEARNING, &story(1, 300), twice, EPOCH).expect("a draft");
    let entry = author.sign(1, None, draft).expect("signed");
    assert_eq!(entry.header().spaces.len(), MAX_SPACES);
    Verifier::new()
        .verify(&entry, EPOCH)
        .expect("peers accept it");
}
