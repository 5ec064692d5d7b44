//! Replies, responses and typed links: how they are built, and the rules a verifier applies
//! to their references and bodies.

use cairn_core::testkit::{Author, EPOCH, story};
use cairn_core::{
    Draft, Entry, Error, Header, Kind, Ref, RefKind, Reply, Response, ResponseType, Space,
    Timestamp, Verifier,
};

fn commons() -> Vec<Space> {
    vec![Space::new(Space::DEFAULT).expect("commons is a valid space")]
}

fn now() -> Timestamp {
    Timestamp(EPOCH.0 + 60_000)
}

fn first_story(author: &Author) -> Entry {
    author
        .entry(1, None, Kind::FAILURE, &story(0, 500), EPOCH)
        .expect("fixture story signs")
}

/// Re-signs `entry`'s header with changed refs, keeping its body.
fn with_refs(author: &Author, entry: &Entry, refs: Vec<Ref>) -> Entry {
    let header = Header {
        refs,
        ..entry.header().clone()
    };
    Entry::sign_header(&author.key, &header, entry.body().map(<[u8]>::to_vec))
        .expect("fixture header signs")
}

#[test]
fn replies_and_responses_verify_and_decode() {
    let ana = Author::ana();
    let target = first_story(&ana);
    let reply = ana
        .sign(
            2,
            Some(target.id()),
            Draft::reply(
                target.id(),
                &Reply {
                    text: "We saw the same with *volunteers*.".into(),
                },
                commons(),
                EPOCH,
            )
            .expect("reply draft"),
        )
        .expect("reply signs");
    let response = ana
        .sign(
            3,
            Some(reply.id()),
            Draft::response(
                target.id(),
                &Response {
                    kind: ResponseType::THIS_HELPED_US,
                    note: "We changed our induction.".into(),
                },
                commons(),
                EPOCH,
            )
            .expect("response draft"),
        )
        .expect("response signs");
    let verifier = Verifier::new();
    for entry in [&target, &reply, &response] {
        verifier.verify(entry, now()).expect("valid entry verifies");
    }
    let decoded = Response::decode(response.body().expect("body held")).expect("decodes");
    assert_eq!(decoded.kind, ResponseType::THIS_HELPED_US);
    assert_eq!(response.header().refs[0].target, target.id());
}

#[test]
fn reply_without_exactly_one_reply_to_is_refused() {
    let ana = Author::ana();
    let target = first_story(&ana);
    let reply = ana
        .sign(
            2,
            Some(target.id()),
            Draft::reply(
                target.id(),
                &Reply {
                    text: "Yes.".into(),
                },
                commons(),
                EPOCH,
            )
            .expect("reply draft"),
        )
        .expect("reply signs");
    let cases = [
        Vec::new(),
        vec![
            Ref {
                kind: RefKind::REPLY_TO,
                target: target.id(),
            };
            2
        ],
        vec![Ref {
            kind: RefKind::RESPONDS_TO,
            target: target.id(),
        }],
    ];
    let verifier = Verifier::new();
    for refs in cases {
        let bad = with_refs(&ana, &reply, refs.clone());
        match verifier.verify(&bad, now()) {
            Err(Error::BadField { field: "refs", .. }) => {}
            other => panic!("reply with refs {refs:?} gave {other:?}"),
        }
    }
}

#[test]
fn stories_may_only_carry_typed_links() {
    let ana = Author::ana();
    let target = first_story(&ana);
    let second = ana
        .entry(2, Some(target.id()), Kind::LEARNING, &story(1, 300), EPOCH)
        .expect("story signs");
    let verifier = Verifier::new();
    for kind in [RefKind::BUILDS_ON, RefKind::CONTRADICTS, RefKind::TRIED_TOO] {
        let linked = with_refs(
            &ana,
            &second,
            vec![Ref {
                kind,
                target: target.id(),
            }],
        );
        verifier
            .verify(&linked, now())
            .expect("typed link is allowed");
    }
    let bad = with_refs(
        &ana,
        &second,
        vec![Ref {
            kind: RefKind::REPLY_TO,
            target: target.id(),
        }],
    );
    assert!(matches!(
        verifier.verify(&bad, now()),
        Err(Error::BadField { field: "refs", .. })
    ));
}

#[test]
fn empty_reply_and_long_note_are_refused_when_drafting() {
    let target = first_story(&Author::ana()).id();
    assert!(Draft::reply(target, &Reply { text: "  ".into() }, commons(), EPOCH).is_err());
    let long_note = Response {
        kind: ResponseType::ME_TOO,
        note: "x".repeat(cairn_core::body::MAX_NOTE_LEN + 1),
    };
    assert!(Draft::response(target, &long_note, commons(), EPOCH).is_err());
}

#[test]
fn response_types_have_names_and_unknown_codes_survive() {
    for (kind, name, label) in ResponseType::ALL {
        assert_eq!(ResponseType::from_name(name), Some(kind));
        assert!(!label.is_empty());
    }
    let unknown = Response {
        kind: ResponseType(200),
        note: String::new(),
    };
    let bytes = unknown.encode().expect("unknown types encode");
    assert_eq!(Response::decode(&bytes).expect("and decode"), unknown);
    assert_eq!(ResponseType(200).to_string(), "response-200");
}

#[test]
fn only_the_organisations_own_key_signs_a_revocation() {
    use cairn_core::{Credential, CredentialClaims, Revocation};
    let ana = Author::ana();
    let revocation = Revocation {
        member: ana.key.member_id(),
        last_valid_seq: 3,
        reason: "Left the charity.".into(),
    };
    let draft = || Draft::revocation(&revocation, commons(), EPOCH).expect("draft");
    let org_credential = Credential::issue(
        &ana.org_key,
        CredentialClaims {
            org: ana.org_key.org_id(),
            org_name: "Riverside Trust".into(),
            member: ana.org_key.member_id(),
            member_name: "Riverside Trust".into(),
            issued: EPOCH,
            expires: None,
        },
    )
    .expect("org credential");
    let by_org = Entry::sign(&ana.org_key, &org_credential, 1, None, draft()).expect("org signs");
    let verifier = Verifier::new();
    verifier
        .verify(&by_org, now())
        .expect("the org's revocation is valid");
    assert_eq!(
        Revocation::decode(by_org.body().expect("body")).expect("decodes"),
        revocation
    );

    let by_member = ana.sign(1, None, draft()).expect("member signs");
    assert!(matches!(
        verifier.verify(&by_member, now()),
        Err(Error::BadField {
            field: "author",
            ..
        })
    ));
}
