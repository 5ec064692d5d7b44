//! The protocol test vectors in `docs/protocol.md`: rebuilt here from fixed seed keys and
//! compared byte for byte, then decoded and verified. `CAIRN_PRINT_VECTORS=1` prints the block
//! to paste into the document after a deliberate format change.

use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{
    Credential, CredentialClaims, Draft, Entry, Kind, Ref, RefKind, Reply, Response, ResponseType,
    Retraction, SecretKey, Space, Story, Timestamp, Verifier,
};

fn vectors() -> Vec<(&'static str, Entry)> {
    let ana = Author::ana();
    let first = ana
        .entry(
            1,
            None,
            Kind::LEARNING,
            &Story {
                title: "Café sessions beat formal meetings".into(),
                summary: "People with lived experience came to informal sessions, not to meetings."
                    .into(),
                learned: "Meet where people already are.".into(),
                tags: vec!["co-production".into()],
                language: "en".into(),
                ..Story::default()
            },
            Timestamp(EPOCH.0 + 1_000),
        )
        .expect("vector 1");
    let second = Entry::sign(
        &ana.key,
        &ana.credential,
        2,
        Some(first.id()),
        Draft {
            kind: Kind::FAILURE,
            spaces: vec![
                Space::new("housing").expect("space"),
                Space::new("commons").expect("space"),
            ],
            refs: vec![Ref {
                kind: RefKind::BUILDS_ON,
                target: first.id(),
            }],
            body: Story {
                title: "Our volunteer rota collapsed".into(),
                summary: "Too few people covered too many shifts.".into(),
                tried: "A shared spreadsheet.".into(),
                happened: "Three people did everything, then left.".into(),
                next: "Cap shifts per person.".into(),
                tags: vec!["volunteers".into(), "rota".into()],
                ..Story::default()
            }
            .encode()
            .expect("story"),
            created: Timestamp(EPOCH.0 + 2_000),
        },
    )
    .expect("vector 2");
    // The org key authoring for itself, with a kind this build does not know and an opaque body.
    let org_key = SecretKey::from_seed([1; 32]);
    let org_credential = Credential::issue(
        &org_key,
        CredentialClaims {
            org: org_key.org_id(),
            org_name: "Riverside Trust".into(),
            member: org_key.member_id(),
            member_name: "Riverside Trust".into(),
            issued: EPOCH,
            expires: None,
        },
    )
    .expect("org credential");
    let unknown = Entry::sign(
        &org_key,
        &org_credential,
        1,
        None,
        Draft {
            kind: Kind(999),
            spaces: vec![Space::new("commons").expect("space")],
            refs: Vec::new(),
            body: b"opaque".to_vec(),
            created: Timestamp(EPOCH.0 + 3_000),
        },
    )
    .expect("vector 3");
    let reply = ana
        .sign(
            3,
            Some(second.id()),
            Draft::reply(
                second.id(),
                &Reply {
                    text: "We capped shifts at two a week; it held.".into(),
                },
                vec![Space::new("commons").expect("space")],
                Timestamp(EPOCH.0 + 4_000),
            )
            .expect("reply draft"),
        )
        .expect("vector 4");
    let response = ana
        .sign(
            4,
            Some(reply.id()),
            Draft::response(
                second.id(),
                &Response {
                    kind: ResponseType::ME_TOO,
                    note: "Same here.".into(),
                },
                vec![Space::new("commons").expect("space")],
                Timestamp(EPOCH.0 + 5_000),
            )
            .expect("response draft"),
        )
        .expect("vector 5");
    vec![
        ("learning-seq1", first),
        ("failure-seq2", second),
        ("unknown-kind-by-org", unknown),
        ("reply-seq3", reply),
        ("response-seq4", response),
    ]
}

fn render(vectors: &[(&str, Entry)]) -> String {
    let mut out = String::new();
    for (name, entry) in vectors {
        out.push_str(&format!("vector: {name}\n"));
        out.push_str(&format!(
            "signed-header: {}\n",
            hex::encode(entry.signed_header())
        ));
        out.push_str(&format!(
            "body: {}\n",
            hex::encode(entry.body().unwrap_or_default())
        ));
        out.push_str(&format!("frame: {}\n", hex::encode(entry.encode())));
        out.push_str(&format!("id: {}\n\n", entry.id()));
    }
    out
}

#[test]
fn protocol_document_vectors_match_this_build() {
    let vectors = vectors();
    let expected = render(&vectors);
    if std::env::var_os("CAIRN_PRINT_VECTORS").is_some() {
        println!("{expected}");
    }
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/protocol.md is readable");
    let block = doc
        .split("```vectors\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/protocol.md has a ```vectors block");
    let normalise = |text: &str| {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        normalise(block),
        normalise(&expected),
        "docs/protocol.md vectors differ from this build"
    );

    for (name, entry) in &vectors {
        let decoded = Entry::decode(&entry.encode()).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(&decoded, entry);
        Verifier::new()
            .verify(&decoded, Timestamp(EPOCH.0 + 10_000))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
    }
}

#[test]
fn every_kind_round_trips_through_encode_sign_verify_decode() {
    let ana = Author::ana();
    let verifier = Verifier::new();
    let mut prev = None;
    let kinds = (1..=10)
        .map(Kind)
        .chain([Kind(11), Kind(999), Kind(u16::MAX)]);
    for (index, kind) in kinds.enumerate() {
        let seq = index as u64 + 1;
        // Each known kind with the body and the reference its rules ask for; other kinds with
        // an opaque body and an arbitrary reference code.
        let (body, ref_kind) = match kind {
            Kind::LEARNING | Kind::FAILURE | Kind::QUESTION => (
                cairn_core::testkit::story(index, 500)
                    .encode()
                    .expect("story"),
                RefKind::BUILDS_ON,
            ),
            Kind::REPLY => (
                Reply {
                    text: "A reply.".into(),
                }
                .encode()
                .expect("reply"),
                RefKind::REPLY_TO,
            ),
            Kind::RESPONSE => (
                Response {
                    kind: ResponseType::THANK_YOU,
                    note: String::new(),
                }
                .encode()
                .expect("response"),
                RefKind::RESPONDS_TO,
            ),
            Kind::AMEND => (
                cairn_core::testkit::story(index, 500)
                    .encode()
                    .expect("story"),
                RefKind::AMENDS,
            ),
            Kind::RETRACT => (
                Retraction {
                    reason: "Withdrawn.".into(),
                }
                .encode()
                .expect("retraction"),
                RefKind::RETRACTS,
            ),
            Kind::PROFILE => (
                cairn_core::Profile {
                    about: "A member.".into(),
                    ..cairn_core::Profile::default()
                }
                .encode()
                .expect("profile"),
                RefKind(index as u16),
            ),
            // Only an organisation's own key signs revocations (tests/threads.rs covers them),
            // and only the key a key event names signs it (the key log vectors cover those).
            Kind::REVOKE | Kind::KEY_EVENT => continue,
            _ => (
                format!("body of a {kind} entry").into_bytes(),
                RefKind(index as u16),
            ),
        };
        let draft = Draft {
            kind,
            spaces: vec![Space::new("commons").expect("space")],
            refs: prev
                .map(|target| {
                    vec![Ref {
                        kind: ref_kind,
                        target,
                    }]
                })
                .unwrap_or_default(),
            body: body.clone(),
            created: Timestamp(EPOCH.0 + seq),
        };
        let entry = Entry::sign(&ana.key, &ana.credential, seq, prev, draft).expect("sign");
        let decoded = Entry::decode(&entry.encode()).expect("decode");
        verifier
            .verify(&decoded, Timestamp(EPOCH.0 + 60_000))
            .unwrap_or_else(|err| panic!("{kind}: {err}"));
        assert_eq!(decoded.header().kind, kind);
        assert_eq!(decoded.body(), Some(body.as_slice()));
        assert_eq!(decoded.id(), entry.id());
        if kind.has_story() {
            assert_eq!(
                decoded
                    .story()
                    .expect("story kind")
                    .expect("story decodes")
                    .title,
                format!("Entry number {index}")
            );
        }
        prev = Some(entry.id());
    }
}

/// The identity vectors: Riverside Trust's key (seed `0x01`) binding the peer id `00 24 08 01
/// 12 20` followed by 32 bytes of `0x03`, issued at the fixtures' time, and inviting to that
/// node for seven days, once.
fn binding_vector() -> String {
    use cairn_core::binding::Binding;
    let org = cairn_core::SecretKey::from_seed([1; 32]);
    let mut peer_id = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    peer_id.extend_from_slice(&[3; 32]);
    let binding =
        Binding::issue(org.org_id(), &org, "Riverside Trust", &peer_id, EPOCH).expect("binding");
    assert_eq!(
        binding.verify(&peer_id).expect("the vector checks").org,
        org.org_id()
    );
    let invitation = cairn_core::invitation::Invitation::issue(
        &org,
        cairn_core::invitation::InvitationClaims {
            org: org.org_id(),
            org_key: org.public(),
            org_name: "Riverside Trust".into(),
            peer_id: cairn_core::codec::Bytes(peer_id.clone()),
            addresses: vec!["/ip4/192.0.2.7/tcp/7411".into()],
            spaces: vec!["commons".into()],
            issued: EPOCH,
            expires: Timestamp(EPOCH.0 + 7 * 86_400_000),
            single_use: true,
            nonce: [0x11; 16],
        },
    )
    .expect("invitation");
    assert_eq!(
        cairn_core::invitation::Invitation::from_bytes(invitation.as_bytes()).expect("checks"),
        invitation
    );
    format!(
        "vector: binding\npeer-id: {}\nbinding: {}\n\nvector: invitation\ninvitation: {}\n\n{}",
        hex::encode(&peer_id),
        hex::encode(binding.as_bytes()),
        hex::encode(invitation.as_bytes()),
        key_log_vectors()
    )
}

/// The key log vectors: an inception by the key from seed `0x01` committing to the key from
/// seed `0x02`, at the fixtures' time; the rotation to that key one second later, committing
/// to the key from seed `0x03` and keeping the first three entries of the member whose key is
/// from seed `0x04`; and that member's format 2 credential under the new key.
fn key_log_vectors() -> String {
    use cairn_core::kel::{Cutoff, KeyEvent, KeyState};
    let key = |seed: u8| cairn_core::SecretKey::from_seed([seed; 32]);
    let (first, second, third, member) = (key(1), key(2), key(3), key(4));
    let inception = KeyEvent::incept(&first, &second.public(), EPOCH).expect("inception");
    let org = inception.founds().expect("an id");
    let rotation = KeyEvent::rotate(
        &inception,
        &second,
        &third.public(),
        vec![Cutoff {
            author: member.member_id(),
            last_valid_seq: 3,
        }],
        Timestamp(EPOCH.0 + 1_000),
    )
    .expect("rotation");
    let mut state = KeyState::incept(org, &inception).expect("the inception founds it");
    state.apply(&rotation).expect("the rotation follows");
    let credential = cairn_core::Credential::issue(
        &second,
        cairn_core::CredentialClaims {
            org,
            org_name: "Riverside Trust".into(),
            member: member.member_id(),
            member_name: "Ana Silva".into(),
            issued: EPOCH,
            expires: None,
        },
    )
    .expect("credential");
    assert_eq!(
        cairn_core::Credential::decode(2, credential.as_bytes()).expect("decodes"),
        credential
    );
    format!(
        "vector: inception\nevent: {}\norg-id: {org}\n\nvector: rotation\nevent: {}\n\nvector: credential-format-2\ncredential: {}\n",
        hex::encode(inception.as_bytes()),
        hex::encode(rotation.as_bytes()),
        hex::encode(credential.as_bytes())
    )
}

#[test]
fn protocol_document_identity_vectors_match_this_build() {
    let expected = binding_vector();
    if std::env::var_os("CAIRN_PRINT_VECTORS").is_some() {
        println!("{expected}");
    }
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/protocol.md is readable");
    let block = doc
        .split("```identity-vectors\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/protocol.md has a ```identity-vectors block");
    assert_eq!(
        block.trim(),
        expected.trim(),
        "docs/protocol.md's identity vectors differ from this build"
    );
}
