//! Forged and malformed entries: at least 1,000 across categories, none accepted, each refused
//! with the reason its category predicts.

use cairn_core::codec::{self, Bytes};
use cairn_core::entry::{self, MAX_BODY_LEN, MAX_FRAME_LEN, sign_header};
use cairn_core::testkit::{Author, EPOCH, story};
use cairn_core::{
    BodyHash, Credential, CredentialClaims, Entry, Header, Kind, Ref, RefKind, SecretKey, Space,
    Timestamp, Verifier,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: Timestamp = Timestamp(EPOCH.0 + 86_400_000);

/// Decodes and verifies a frame as a store would (minus the duplicate and chain checks).
fn check(frame: &[u8]) -> Result<(), cairn_core::Error> {
    let entry = Entry::decode(frame)?;
    Verifier::new().verify(&entry, NOW)
}

struct Tally {
    total: usize,
    failures: Vec<String>,
}

impl Tally {
    fn expect(&mut self, category: &str, frame: &[u8], allowed: &[&str]) {
        self.total += 1;
        match check(frame) {
            Ok(()) => self.failures.push(format!("{category}: ACCEPTED")),
            Err(err) if allowed.contains(&err.code()) => {}
            Err(err) => self.failures.push(format!(
                "{category}: {} ({err}), expected one of {allowed:?}",
                err.code()
            )),
        }
    }
}

/// A valid entry at seq 2 with a reference, so every header field is present.
fn base(author: &Author) -> Entry {
    let first = author
        .entry(1, None, Kind::LEARNING, &story(0, 600), EPOCH)
        .expect("seq 1");
    let draft = cairn_core::Draft {
        kind: Kind::FAILURE,
        spaces: vec![
            Space::new("commons").expect("space"),
            Space::new("housing").expect("space"),
        ],
        refs: vec![Ref {
            kind: RefKind::BUILDS_ON,
            target: first.id(),
        }],
        body: story(1, 1_000).encode().expect("story"),
        created: Timestamp(EPOCH.0 + 1_000),
    };
    Entry::sign(&author.key, &author.credential, 2, Some(first.id()), draft).expect("seq 2")
}

/// The offset of `needle`'s first occurrence in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("field present")
}

/// Frame offset where the signed header starts.
const HEADER_AT: usize = 4;

fn flip(frame: &[u8], byte: usize, bit: u8) -> Vec<u8> {
    let mut forged = frame.to_vec();
    forged[byte] ^= 1 << bit;
    forged
}

/// `author`'s credential, claiming their real org but signed by another key (from `seed`).
fn impostor_credential(author: &Author, seed: u8) -> Bytes {
    let impostor = SecretKey::from_seed([seed; 32]);
    let mut claims = author.credential.claims().clone();
    claims.org = impostor.org_id();
    let mut bytes = Credential::issue(&impostor, claims)
        .expect("issue")
        .as_bytes()
        .to_vec();
    // Claim the real org but keep the impostor's signature.
    let org_at = find(&bytes, impostor.org_id().as_bytes());
    bytes[org_at..org_at + 32].copy_from_slice(author.credential.claims().org.as_bytes());
    Bytes(bytes)
}

/// Signs a header as given (possibly nonsensical) with a body.
fn signed(key: &SecretKey, header: &Header, body: Vec<u8>) -> Vec<u8> {
    entry::frame(&sign_header(key, header).expect("sign"), Some(&body))
}

#[test]
fn forged_and_malformed_entries_are_all_rejected_for_the_expected_reason() {
    let author = Author::ana();
    let base_entry = base(&author);
    let entry = &base_entry;
    check(&entry.encode()).expect("the base entry is valid");
    let valid = base_entry.encode();
    let frame = valid.clone();
    let header = entry.header().clone();
    let body = entry.body().expect("body").to_vec();
    let signed_len = entry.signed_header().len();
    let header_len = signed_len - 64;
    let signature_at = HEADER_AT + header_len;
    let body_at = HEADER_AT + signed_len + 1 + 4;
    let mut rng = StdRng::seed_from_u64(0xCA1A);
    let mut tally = Tally {
        total: 0,
        failures: Vec::new(),
    };

    // Where the header's fixed fields sit (checked against the documented layout below).
    let hdr = &frame[HEADER_AT..signature_at];
    let author_at = HEADER_AT + find(hdr, header.author.as_bytes());
    let prev_at = HEADER_AT + find(hdr, header.prev.expect("prev").as_bytes());
    let created_at = prev_at + 32;
    let hash_at = HEADER_AT + find(hdr, &header.body_hash.0);
    let ref_target_at = HEADER_AT + header_len - (header.credential.0.len() + 8 + 32 + 4) - 32;
    assert_eq!(author_at, HEADER_AT + 3, "author follows version and kind");
    assert_eq!(
        prev_at,
        HEADER_AT + 44,
        "prev follows seq and the option tag"
    );
    assert_eq!(
        &frame[ref_target_at..ref_target_at + 32],
        header.refs[0].target.as_bytes()
    );

    // 1. Bit flips in the signature.
    for _ in 0..120 {
        let forged = flip(
            &frame,
            signature_at + rng.random_range(0..64),
            rng.random_range(0..8),
        );
        tally.expect("signature bit flip", &forged, &["invalid:signature"]);
    }
    // 2. Bit flips in signed header fields that no earlier check looks at.
    for _ in 0..200 {
        let (name, at, len) = match rng.random_range(0..4) {
            0 => ("kind", HEADER_AT + 1, 2),
            1 => ("prev", prev_at, 32),
            2 => ("body hash", hash_at, 32),
            _ => ("ref target", ref_target_at, 32),
        };
        let forged = flip(
            &frame,
            at + rng.random_range(0..len),
            rng.random_range(0..8),
        );
        tally.expect(
            &format!("header flip in {name}"),
            &forged,
            &["invalid:signature"],
        );
    }
    // The creation time is checked against the clock and the credential before the signature.
    for _ in 0..100 {
        let forged = flip(
            &frame,
            created_at + rng.random_range(0..8),
            rng.random_range(0..8),
        );
        let created = u64::from_le_bytes(
            forged[created_at..created_at + 8]
                .try_into()
                .expect("8 bytes"),
        );
        let expected = if created > NOW.0 + 600_000 {
            "invalid:clock-skew"
        } else if created + 600_000 < EPOCH.0 {
            "invalid:credential-time"
        } else {
            "invalid:signature"
        };
        tally.expect("header flip in created", &forged, &[expected]);
    }
    // 3. Bit flips in the author: the credential no longer matches.
    for _ in 0..60 {
        let forged = flip(
            &frame,
            author_at + rng.random_range(0..32),
            rng.random_range(0..8),
        );
        tally.expect("author bit flip", &forged, &["invalid:credential-mismatch"]);
    }
    // 4. Bit flips anywhere in the header bytes: refused for some header reason, never accepted
    //    and never blamed on the body.
    let header_reasons = [
        "invalid:signature",
        "invalid:truncated",
        "invalid:trailing-bytes",
        "invalid:malformed",
        "invalid:too-large",
        "invalid:version",
        "invalid:chain",
        "invalid:clock-skew",
        "invalid:field",
        "invalid:credential-mismatch",
        "invalid:credential-time",
        "invalid:credential-signature",
        "invalid:key",
    ];
    for _ in 0..200 {
        let forged = flip(
            &frame,
            HEADER_AT + rng.random_range(0..header_len),
            rng.random_range(0..8),
        );
        tally.expect("header bit flip anywhere", &forged, &header_reasons);
    }
    // 5. Bit flips in the body.
    for _ in 0..120 {
        let forged = flip(
            &frame,
            body_at + rng.random_range(0..body.len()),
            rng.random_range(0..8),
        );
        tally.expect("body bit flip", &forged, &["invalid:body-hash"]);
    }
    // 6. Signed with the wrong key; a credential signed by a key other than its org's.
    for index in 0..60u8 {
        let stranger = SecretKey::from_seed([100 + index; 32]);
        tally.expect(
            "wrong key",
            &signed(&stranger, &header, body.clone()),
            &["invalid:signature"],
        );
    }
    for index in 0..40u8 {
        let mut forged = header.clone();
        forged.credential = impostor_credential(&author, 200 - index);
        tally.expect(
            "credential signed by another key",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:credential-signature"],
        );
    }
    // 7. Truncated anywhere.
    for _ in 0..120 {
        let cut = rng.random_range(0..frame.len());
        tally.expect("truncated", &frame[..cut], &["invalid:truncated"]);
    }
    // 8. Trailing bytes.
    for _ in 0..60 {
        let mut forged = frame.clone();
        let extra: Vec<u8> = (0..rng.random_range(1..100))
            .map(|_| rng.random())
            .collect();
        forged.extend_from_slice(&extra);
        tally.expect("trailing bytes", &forged, &["invalid:trailing-bytes"]);
    }
    // 9. Oversized: a whole frame over the limit, and a body over its limit.
    for _ in 0..30 {
        let mut forged = frame.clone();
        forged.resize(MAX_FRAME_LEN + rng.random_range(1..10_000), 0);
        tally.expect("oversized frame", &forged, &["invalid:too-large"]);
    }
    for _ in 0..30 {
        let big = vec![b'x'; MAX_BODY_LEN + rng.random_range(1..1_000)];
        let mut forged = header.clone();
        forged.body_len = big.len() as u32;
        forged.body_hash = BodyHash::of(&big);
        // Built by hand: the library refuses to build a frame this large.
        let forged_frame = entry::frame(
            &sign_header(&author.key, &forged).expect("sign"),
            Some(&big),
        );
        tally.expect("oversized body", &forged_frame, &["invalid:too-large"]);
    }
    // 10. Huge length prefixes: frame lengths, and a collection length inside the header.
    for _ in 0..30 {
        let mut forged = frame.clone();
        forged[..4].copy_from_slice(
            &rng.random_range(MAX_FRAME_LEN as u32..=u32::MAX)
                .to_le_bytes(),
        );
        tally.expect("huge header length", &forged, &["invalid:too-large"]);
        let mut forged = frame.clone();
        let at = HEADER_AT + signed_len + 1;
        forged[at..at + 4].copy_from_slice(
            &rng.random_range(MAX_BODY_LEN as u32 + 1..=u32::MAX)
                .to_le_bytes(),
        );
        tally.expect("huge body length", &forged, &["invalid:too-large"]);
    }
    let spaces_at = created_at + 8;
    for _ in 0..40 {
        let mut forged = frame.clone();
        forged[spaces_at..spaces_at + 8]
            .copy_from_slice(&rng.random_range(1u64 << 20..=u64::MAX).to_le_bytes());
        tally.expect(
            "huge collection length",
            &forged,
            &["invalid:too-large", "invalid:truncated"],
        );
    }
    // 11. seq and prev that contradict each other (properly signed).
    for index in 0..60u64 {
        let mut forged = header.clone();
        match index % 3 {
            0 => forged.seq = 0,
            1 => forged.seq = 1,
            _ => {
                forged.seq = 2 + index;
                forged.prev = None;
            }
        }
        tally.expect(
            "seq/prev inconsistency",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:chain"],
        );
    }
    // 12. Clock skew: created more than ten minutes ahead of now.
    for _ in 0..60 {
        let mut forged = header.clone();
        forged.created = Timestamp(NOW.0 + 600_001 + rng.random_range(0..10 * 86_400_000));
        tally.expect(
            "clock skew",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:clock-skew"],
        );
    }
    // 13. A format 1 credential in a format 2 header (which expects the key first), and
    // unknown format versions, properly signed.
    let mut forged = header.clone();
    forged.version = 2;
    tally.expect(
        "format 1 credential in a format 2 header",
        &signed(&author.key, &forged, body.clone()),
        &[
            "invalid:too-large",
            "invalid:malformed",
            "invalid:truncated",
            "invalid:trailing-bytes",
            "invalid:field",
        ],
    );
    for version in 3..=61u8 {
        let mut forged = header.clone();
        forged.version = if version == 61 { 0 } else { version };
        tally.expect(
            "unknown version",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:version"],
        );
    }
    // 14. Body length in the header disagrees with the body.
    for _ in 0..40 {
        let mut forged = header.clone();
        forged.body_len = rng.random_range(0..MAX_BODY_LEN as u32);
        if forged.body_len as usize == body.len() {
            forged.body_len += 1;
        }
        tally.expect(
            "body length mismatch",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:body-length"],
        );
    }
    // 15. Credentials used outside their validity.
    for index in 0..30u64 {
        let mut claims = author.credential.claims().clone();
        claims.expires = Some(Timestamp(EPOCH.0 + 1 + index));
        let credential = Credential::issue(&author.org_key, claims).expect("issue");
        let mut forged = header.clone();
        forged.credential = Bytes(credential.as_bytes().to_vec());
        tally.expect(
            "expired credential",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:credential-time"],
        );
    }
    // 16. Spaces that break the rules (none, unsorted, badly named, too many).
    for index in 0..40usize {
        let mut forged = header.clone();
        forged.spaces = match index % 4 {
            0 => Vec::new(),
            1 => vec![
                Space::new("zeta").expect("space"),
                Space::new("alpha").expect("space"),
            ],
            2 => codec::decode::<Vec<Space>>(
                "spaces",
                &codec::encode("spaces", &vec!["Bad Name".to_string()]).expect("encode"),
            )
            .expect("decode"),
            _ => (0..9)
                .map(|n| Space::new(&format!("s{n}")).expect("space"))
                .collect(),
        };
        tally.expect(
            "bad spaces",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:field"],
        );
    }
    // 17. No body.
    for _ in 0..20 {
        let forged = entry::frame(&sign_header(&author.key, &header).expect("sign"), None);
        tally.expect("body missing", &forged, &["invalid:body-missing"]);
    }
    // 18. A story kind whose body is not a valid story (hash and length match).
    for index in 0..40usize {
        let bad_body = if index % 2 == 0 {
            (0..rng.random_range(1..300))
                .map(|_| rng.random())
                .collect()
        } else {
            cairn_core::Story {
                title: String::new(),
                ..story(index, 100)
            }
            .clone()
            .pipe_encode()
        };
        let mut forged = header.clone();
        forged.body_len = bad_body.len() as u32;
        forged.body_hash = BodyHash::of(&bad_body);
        tally.expect(
            "malformed story body",
            &signed(&author.key, &forged, bad_body),
            &[
                "invalid:malformed",
                "invalid:truncated",
                "invalid:trailing-bytes",
                "invalid:field",
                "invalid:too-large",
            ],
        );
    }
    // 19. Keys that are not usable points, or weak (small order).
    for index in 0..20u8 {
        let mut forged = header.clone();
        let mut claims = author.credential.claims().clone();
        // The identity point (small order) and an encoding that is not on the curve.
        let key = if index % 2 == 0 {
            {
                let mut k = [0u8; 32];
                k[0] = 1;
                k
            }
        } else {
            [0xff; 32]
        };
        claims.member = cairn_core::MemberId(key);
        forged.author = claims.member;
        forged.credential = Bytes(
            Credential::issue(&author.org_key, claims)
                .expect("issue")
                .as_bytes()
                .to_vec(),
        );
        tally.expect(
            "weak or invalid key",
            &signed(&author.key, &forged, body.clone()),
            &["invalid:key"],
        );
    }

    assert!(
        tally.total >= 1_000,
        "only {} forgeries were tried",
        tally.total
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {} forgeries were mishandled:\n{}",
        tally.failures.len(),
        tally.total,
        tally.failures.join("\n")
    );
    println!(
        "{} forged or malformed entries, all rejected with the expected reason",
        tally.total
    );
}

/// Encodes a story without the validity check `Story::encode` applies.
trait PipeEncode {
    fn pipe_encode(self) -> Vec<u8>;
}

impl PipeEncode for cairn_core::Story {
    fn pipe_encode(self) -> Vec<u8> {
        codec::encode("story", &self).expect("encode")
    }
}

#[test]
fn the_credential_claims_are_what_the_org_signed() {
    let author = Author::ana();
    let claims: &CredentialClaims = author.credential.claims();
    assert_eq!(claims.org, author.org_key.org_id());
    assert_eq!(claims.member, author.key.member_id());
}

#[test]
fn the_header_alone_is_read_as_a_full_decode_reads_it_and_refused_when_it_is_cut_short() {
    let author = Author::ana();
    let frame = base(&author).encode();
    let header = entry::frame_header(&frame).expect("the header of a valid frame");
    assert_eq!(&header, Entry::decode(&frame).expect("valid").header());

    // Cut anywhere before the signed header's end: no header.
    let signed_header_end =
        4 + u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    for len in 0..signed_header_end {
        let err = entry::frame_header(&frame[..len]).expect_err("a cut header");
        assert_eq!(err.code(), "invalid:truncated", "cut at {len}: {err}");
    }

    // Only the header is read: a broken body is the full decode's to refuse (the store's).
    let mut broken_body = frame.clone();
    broken_body[signed_header_end] = 7;
    assert_eq!(entry::frame_header(&broken_body).expect("header"), header);
    assert!(Entry::decode(&broken_body).is_err());
}

#[test]
fn a_credential_remembered_as_checked_is_not_checked_again_and_only_that_one() {
    let author = Author::ana();
    let entry = base(&author);
    let header = entry.header().clone();
    let body = entry.body().expect("body").to_vec();
    let mut forged = header.clone();
    forged.credential = impostor_credential(&author, 250);
    let forged = Entry::decode(&signed(&author.key, &forged, body)).expect("decodes");

    let verifier = Verifier::new();
    assert_eq!(
        verifier.verify(&forged, NOW).map_err(|err| err.code()),
        Err("invalid:credential-signature")
    );
    assert!(!verifier.remembers_credential(&forged));
    // Told that an entry with this credential was checked (as a store is, of what it holds),
    // the verifier trusts the credential and checks the rest.
    verifier.remember_checked(&forged).expect("a valid key");
    assert!(verifier.remembers_credential(&forged));
    assert_eq!(verifier.verify(&forged, NOW), Ok(()));
    // The entry's own signature is still checked.
    let signature_end = HEADER_AT + forged.signed_header().len();
    let tampered = flip(&forged.encode(), signature_end - 1, 0);
    let tampered = Entry::decode(&tampered).expect("decodes");
    assert_eq!(
        verifier.verify(&tampered, NOW).map_err(|err| err.code()),
        Err("invalid:signature")
    );
}
