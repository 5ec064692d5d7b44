//! Every refusal reason has a decision on who is to blame, and the decisions that keep honest
//! peers (older or newer versions, other clocks, other policies) from being penalised hold.

use cairn_core::{Blame, EntryId, Error, MemberId, OrgId, SecretKey};

/// One error of every variant, with the blame it must carry. Adding a variant to
/// `cairn_core::Error` breaks the build in `Error::blame` until it is decided there; this list
/// then needs the new variant too, or `every_code_is_listed` fails.
fn every_reason() -> Vec<(Error, Blame)> {
    let id = EntryId([7; 32]);
    let member: MemberId = SecretKey::from_seed([1; 32]).member_id();
    let org: OrgId = SecretKey::from_seed([2; 32]).org_id();
    vec![
        (Error::Duplicate(id), Blame::Nobody),
        (Error::UnsupportedVersion(3), Blame::Nobody),
        (
            Error::ClockSkew {
                ahead_ms: 1,
                max_ms: 0,
            },
            Blame::Nobody,
        ),
        (
            Error::ChainConflict {
                seq: 2,
                claimed: id,
                held: id,
                held_seq: 1,
            },
            Blame::Nobody,
        ),
        (Error::BodyMissing, Blame::Nobody),
        (
            Error::Revoked {
                member,
                last_valid_seq: 1,
            },
            Blame::Nobody,
        ),
        (
            Error::Blocked {
                org,
                reason: String::new(),
            },
            Blame::Nobody,
        ),
        (Error::NotFollowed(org), Blame::Nobody),
        (Error::OverQuota { org, max: 1 }, Blame::Nobody),
        (
            Error::KeyRetired {
                org,
                key: MemberId([3; 32]),
                last_valid_seq: 1,
            },
            Blame::Nobody,
        ),
        (
            Error::KeyNotInLog {
                org,
                key: MemberId([3; 32]),
            },
            Blame::Nobody,
        ),
        (Error::KeyLogUnknown(org), Blame::Nobody),
        (
            Error::KeyLogGap {
                org,
                held: 0,
                offered: 2,
            },
            Blame::Nobody,
        ),
        (
            Error::KeyEventRefused {
                org,
                reason: String::new(),
            },
            Blame::Nobody,
        ),
        (
            Error::TooLarge {
                what: "x",
                len: 2,
                max: 1,
            },
            Blame::Sender,
        ),
        (
            Error::Truncated {
                what: "x",
                detail: String::new(),
            },
            Blame::Sender,
        ),
        (
            Error::TrailingBytes {
                what: "x",
                extra: 1,
            },
            Blame::Sender,
        ),
        (
            Error::Malformed {
                what: "x",
                detail: String::new(),
            },
            Blame::Sender,
        ),
        (Error::BadChain("x"), Blame::Sender),
        (
            Error::BadField {
                field: "x",
                reason: String::new(),
            },
            Blame::Sender,
        ),
        (
            Error::CredentialMismatch {
                credential_member: String::new(),
                author: String::new(),
            },
            Blame::Sender,
        ),
        (Error::CredentialNotValid("x"), Blame::Sender),
        (Error::BadCredentialSignature, Blame::Sender),
        (Error::BadKey(String::new()), Blame::Sender),
        (Error::BadSignature, Blame::Sender),
        (
            Error::BodyLengthMismatch {
                expected: 1,
                actual: 2,
            },
            Blame::Sender,
        ),
        (Error::BodyHashMismatch, Blame::Sender),
    ]
}

#[test]
fn each_reason_blames_as_decided() {
    for (error, expected) in every_reason() {
        assert_eq!(error.blame(), expected, "{} ({error})", error.code());
    }
}

#[test]
fn every_code_is_listed() {
    let mut codes: Vec<&str> = every_reason()
        .iter()
        .map(|(error, _)| error.code())
        .collect();
    let listed = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), listed, "two listed reasons share a code");
    // The codes documented in docs/protocol.md: one per variant.
    let protocol = include_str!("../../../docs/protocol.md");
    for code in &codes {
        assert!(protocol.contains(code), "{code} is not in docs/protocol.md");
    }
}

#[test]
fn only_forgeries_and_damage_blame_the_sender() {
    for (error, blame) in every_reason() {
        let class = error.code().split(':').next().unwrap_or_default();
        if blame == Blame::Sender {
            assert_eq!(class, "invalid", "{} blames the sender", error.code());
        }
        if matches!(class, "duplicate" | "blocked" | "revoked") {
            assert_eq!(blame, Blame::Nobody, "{}", error.code());
        }
    }
}
