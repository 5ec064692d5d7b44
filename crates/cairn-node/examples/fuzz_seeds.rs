//! Writes the seed inputs of the fuzz targets in `fuzz/` (one folder per target under the
//! folder given, default `fuzz/seeds`): real frames, bodies, signed statements, tickets, API
//! bodies, compose forms, store records and whole sync exchanges, so each target starts from
//! inputs that pass its decoders and explores from there.
//!
//! Run: `cargo run --release -p cairn-node --example fuzz_seeds -- fuzz/seeds`

use std::path::{Path, PathBuf};

use cairn_core::binding::Binding;
use cairn_core::invitation::{Invitation, InvitationClaims};
use cairn_core::kel::{Cutoff, KeyEvent};
use cairn_core::testkit::{Author, EPOCH, fuzz_store_entries};
use cairn_core::{
    Draft, Entry, Kind, Profile, Reply, Response, ResponseType, Retraction, Revocation, SecretKey,
    Space, Story, Timestamp,
};
use cairn_store::{Budgets, Config, Store};
use cairn_sync::{Request, Session, Step};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    let ana = Author::ana();
    let space = || vec![Space::new(Space::DEFAULT).expect("the default space")];
    let at = Timestamp(EPOCH.0 + 1_000);
    let story = cairn_core::testkit::story(1, 600);
    let first = ana.entry(1, None, Kind::LEARNING, &story, at)?;
    let reply = Reply {
        text: "We saw the same in our drop-in sessions.".into(),
    };
    let response = Response {
        kind: ResponseType::from_name("me-too").expect("a response type"),
        note: "Same here".into(),
    };
    let retraction = Retraction {
        reason: "Posted twice".into(),
    };
    let profile = Profile::default();
    let revocation = Revocation {
        member: ana.key.member_id(),
        last_valid_seq: 3,
        reason: "Left the team".into(),
    };

    // Key events: an inception and a rotation, and an organisation of the key-log kind.
    let (k0, k1, k2) = (key(7), key(8), key(9));
    let inception = KeyEvent::incept(&k0, &k1.public(), EPOCH)?;
    let cutoffs = vec![Cutoff {
        author: ana.key.member_id(),
        last_valid_seq: 2,
    }];
    let rotation = KeyEvent::rotate(&inception, &k1, &k2.public(), cutoffs, at)?;
    let org = inception
        .founds()
        .expect("an inception founds an organisation");
    let member = Author::issued(org, k0.clone(), key(10), "Keyed org", "Keyed member", EPOCH);

    let second = ana.sign(
        2,
        Some(first.id()),
        Draft::reply(first.id(), &reply, space(), at)?,
    )?;
    let entries = [
        first.clone(),
        second.clone(),
        ana.sign(
            3,
            Some(second.id()),
            Draft::response(first.id(), &response, space(), at)?,
        )?,
        ana.sign(
            2,
            Some(first.id()),
            Draft::retraction(first.id(), &retraction, space(), at)?,
        )?,
        ana.sign(1, None, Draft::profile(&profile, space(), at)?)?,
        ana.sign(1, None, Draft::revocation(&revocation, space(), at)?)?,
        ana.sign(1, None, Draft::key_event(&inception, space(), at))?,
        member.entry(1, None, Kind::FAILURE, &story, at)?,
    ];
    write_all(&root, "entry_frame", entries.iter().map(Entry::encode))?;
    write_all(
        &root,
        "entry_bodies",
        [
            tagged(0, &story.encode()?),
            tagged(1, &reply.encode()?),
            tagged(2, &response.encode()?),
            tagged(3, &retraction.encode()?),
            tagged(4, &revocation.encode()?),
            tagged(5, &profile.encode()?),
        ],
    )?;

    let binding = Binding::issue(org, &k0, "Keyed org", b"a peer id", at)?;
    let invitation = Invitation::issue(
        &k0,
        InvitationClaims {
            org,
            org_key: k0.public(),
            org_name: "Keyed org".into(),
            peer_id: cairn_core::codec::Bytes(b"a peer id".to_vec()),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            spaces: vec![Space::DEFAULT.into()],
            issued: EPOCH,
            expires: Timestamp(EPOCH.0 + 7 * 24 * 3_600_000),
            single_use: true,
            nonce: [3; 16],
        },
    )?;
    write_all(
        &root,
        "signed_statements",
        [
            tagged(0, ana.credential.as_bytes()),
            tagged(1, member.credential.as_bytes()),
            tagged(2, binding.as_bytes()),
            tagged(3, invitation.as_bytes()),
            tagged(4, inception.as_bytes()),
            tagged(4, rotation.as_bytes()),
        ],
    )?;
    let ticket = cairn_node::ticket::Ticket { invitation };
    write_all(&root, "invite_ticket", [ticket.encode().into_bytes()])?;

    write_all(&root, "api_bodies", api_bodies(&story, &first)?)?;
    write_all(
        &root,
        "web_forms",
        [
            b"csrf=x&kind=learning&title=Peer+support+works&summary=Short&text=What+we+saw\
              &tags=peer+support%2C+housing&context=&tried=&happened=&learned=&next=\
              &space=commons"
                .to_vec(),
            b"kind=failure&title=%E2%80%AEReversed&text=a%0D%0Ab&tags=&space=commons&space=housing"
                .to_vec(),
        ],
    )?;

    // The sync targets read a store of the fixed entries; the seeds are real exchanges with
    // a peer that holds those and one author's more.
    let fixed = fuzz_store_entries(0)?;
    let more = fuzz_store_entries(1)?;
    let folder = tempfile::tempdir()?;
    let ours = store_of(&folder.path().join("ours"), &fixed)?;
    let theirs = store_of(&folder.path().join("theirs"), &more)?;
    let empty = store_of(&folder.path().join("empty"), &[])?;
    let (requests, answers) = exchange(&ours, &theirs)?;
    let (stream_requests, stream_answers) = exchange(&empty, &theirs)?;
    let fetch = Request::Fetch {
        ids: fixed.iter().take(5).map(Entry::id).collect(),
    }
    .encode()?;
    let range = Request::Range {
        space: Space::DEFAULT.into(),
        after: Some((fixed[3].header().created.0, fixed[3].id())),
        limit: 10,
    }
    .encode()?;
    let mut all_requests = requests;
    all_requests.extend(stream_requests);
    all_requests.extend([fetch, range]);
    write_all(&root, "sync_request", all_requests)?;
    write_all(&root, "sync_response", [answers, stream_answers])?;

    // A store record as the store writes it: created, the frame's place (offset, length),
    // kind, organisation, tags. The target damages the record of its eighth entry.
    let damaged = &fixed[7];
    let mut record = damaged.header().created.0.to_be_bytes().to_vec();
    record.extend_from_slice(&0u64.to_be_bytes());
    record.extend_from_slice(&(fixed[0].encode().len() as u32).to_be_bytes());
    record.extend_from_slice(&damaged.header().kind.0.to_be_bytes());
    record.extend_from_slice(&damaged.credential().claims().org.0);
    record.extend_from_slice(b"tag\0");
    write_all(&root, "store_records", [record])?;
    println!("seeds written under {}", root.display());
    Ok(())
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// A seed whose first byte picks what the rest is read as.
fn tagged(which: u8, bytes: &[u8]) -> Vec<u8> {
    let mut seed = vec![which];
    seed.extend_from_slice(bytes);
    seed
}

fn api_bodies(story: &Story, first: &Entry) -> Result<Vec<Vec<u8>>> {
    let publish = serde_json::json!({
        "kind": Kind::LEARNING.0,
        "story": story,
        "spaces": [Space::DEFAULT],
        "links": [{"kind": "builds-on", "target": first.id().to_string()}],
    });
    let bodies = [
        (0, publish),
        (1, serde_json::json!({"text": "A reply"})),
        (2, serde_json::json!({"kind": "me-too", "note": "Same"})),
        (3, serde_json::json!({"reason": "Posted twice"})),
        (4, serde_json::json!({"edit": {"title": "New title"}})),
        (
            5,
            serde_json::json!({"profile": {"about": "We run drop-ins"}}),
        ),
        (6, serde_json::json!({"name": "Sam"})),
        (
            7,
            serde_json::json!({"member": first.header().author.to_string(), "reason": "Left"}),
        ),
        (
            8,
            serde_json::json!({"follow": {"org": first.credential().claims().org.to_string()}}),
        ),
        (9, serde_json::json!({"address": "/ip4/127.0.0.1/tcp/4001"})),
        (10, serde_json::json!({"ticket": "cairn-invite2-aaaa"})),
        (11, serde_json::json!({"space": "commons"})),
    ];
    bodies
        .into_iter()
        .map(|(which, body)| Ok(tagged(which, &serde_json::to_vec(&body)?)))
        .collect()
}

fn store_of(path: &Path, entries: &[Entry]) -> Result<Store> {
    let config = Config {
        budgets: Budgets::unlimited(),
        ..Config::default()
    };
    let store = Store::create(path, config)?;
    let frames: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    for result in store.insert_batch_unflushed(&frames, Timestamp::now())? {
        result?;
    }
    store.flush()?;
    Ok(store)
}

/// A whole sync of the default space from `theirs` into what `ours` holds: the requests
/// sent, and the answers in turn, each after its length (u32, little-endian).
fn exchange(ours: &Store, theirs: &Store) -> Result<(Vec<Vec<u8>>, Vec<u8>)> {
    let local = ours.space_items_known(Space::DEFAULT)?;
    let (mut session, first) = Session::start(Space::DEFAULT.into(), local)?;
    let mut waiting = std::collections::VecDeque::from([first]);
    let (mut requests, mut answers) = (Vec::new(), Vec::new());
    while let Some(request) = waiting.pop_front() {
        let answer = cairn_node::daemon::answer_sync_request(theirs, &request)?;
        answers.extend_from_slice(&(answer.len() as u32).to_le_bytes());
        answers.extend_from_slice(&answer);
        requests.push(request);
        match session.on_response(&answer)?.1 {
            Step::Send(more) => waiting.extend(more),
            Step::Wait => {}
            Step::Done => break,
        }
    }
    Ok((requests, answers))
}

/// Writes each seed as `seed-N` in `root/target`.
fn write_all(root: &Path, target: &str, seeds: impl IntoIterator<Item = Vec<u8>>) -> Result<()> {
    let folder = root.join(target);
    std::fs::create_dir_all(&folder)?;
    for (index, seed) in seeds.into_iter().enumerate() {
        std::fs::write(folder.join(format!("seed-{index}")), seed)?;
    }
    Ok(())
}
