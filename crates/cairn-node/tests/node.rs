//! In-process tests of the node crate on a real store: the service's publish rules and
//! listings, the gossip verdicts, and the API's authentication on a real started node.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_api::{ListQuery, PolicyChange};
use cairn_core::body::StoryEdit;
use cairn_core::testkit::{Author, story};
use cairn_core::{Draft, Kind, RefKind, Reply, Space, Timestamp};
use cairn_net::Verdict;
use cairn_node::service::{Config, NewStory};
use cairn_node::{Error, Files, PublishAs, Service};
use cairn_store::Store;

/// A home with a store and Ana's keys (the organisation's key in `keys/org.key`).
fn service(dir: &Path, index: Option<Arc<cairn_search::SearchIndex>>) -> Service {
    let author = Author::ana();
    let files = Files::in_home(dir);
    std::fs::create_dir_all(&files.keys).expect("keys dir");
    let org_key = files.keys.join("org.key");
    if !org_key.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&org_key)
            .and_then(|mut file| file.write_all(hex::encode(author.org_key.seed()).as_bytes()))
            .expect("org key");
    }
    let store = Arc::new(
        Store::open(&dir.join("store"), cairn_store::Config::default())
            .or_else(|_| Store::create(&dir.join("store"), cairn_store::Config::default()))
            .expect("store"),
    );
    Service::new(
        Config {
            store,
            member_key: author.key,
            credential: author.credential,
            files,
            default_spaces: vec!["commons".into()],
        },
        index,
    )
    .expect("service")
}

fn new_story(title: &str) -> NewStory {
    NewStory {
        kind: Kind::LEARNING,
        story: cairn_core::Story {
            title: title.into(),
            summary: "In plain words.".into(),
            ..Default::default()
        },
        spaces: Vec::new(),
        links: Vec::new(),
    }
}

#[test]
fn publish_rules_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let service = service(dir.path(), None);
    let me = PublishAs::Me;

    let mut reply_kind = new_story("not a story");
    reply_kind.kind = Kind::REPLY;
    assert!(matches!(
        service.publish(reply_kind, &me),
        Err(Error::BadRequest(_))
    ));

    let mut dangling = new_story("links to nothing");
    dangling.links = vec![(RefKind::BUILDS_ON, "ab".repeat(32))];
    let err = service
        .publish(dangling, &me)
        .expect_err("link target not held");
    assert!(err.to_string().contains("no entry id starts with"), "{err}");

    let original = service.publish(new_story("First"), &me).expect("publish");
    assert_eq!(original.header().seq, 1);
    let second = service.publish(new_story("Second"), &me).expect("publish");
    assert_eq!(second.header().seq, 2);
    assert_eq!(second.header().prev, Some(original.id()));

    // A revision of a revision names the original.
    let prefix = original.id().to_string()[..10].to_string();
    let edit = StoryEdit {
        title: Some("First, revised".into()),
        ..Default::default()
    };
    let revision = service.amend(&prefix, &edit, &me).expect("amend");
    assert_eq!(revision.original(), Some(original.id()));
    let again = service
        .amend(&revision.id().to_string(), &StoryEdit::default(), &me)
        .expect("amend the revision");
    assert_eq!(again.original(), Some(original.id()));
    let revised = again.story().expect("story").expect("decodes");
    assert_eq!(revised.title, "First, revised", "earlier edits are kept");

    // Only the author may amend or retract; the organisation's key is another signer.
    let err = service
        .amend(&prefix, &edit, &PublishAs::Organisation)
        .expect_err("not the author");
    assert!(matches!(err, Error::Forbidden(_)), "{err}");
    let retraction = service
        .retract(&second.id().to_string(), "wrong".into(), &me)
        .expect("retract");
    assert!(
        service
            .retract(&retraction.id().to_string(), "again".into(), &me)
            .is_err(),
        "a retraction cannot be retracted"
    );
    let err = service
        .amend(&second.id().to_string(), &edit, &me)
        .expect_err("retracted");
    assert!(err.to_string().contains("retracted"), "{err}");

    // Replies go to their target's spaces; profiles and revocations to the joined spaces.
    service.join_space("housing").expect("join");
    let reply = service
        .reply(
            &prefix,
            Reply {
                text: "Thanks".into(),
            },
            &me,
        )
        .expect("reply");
    assert_eq!(reply.header().spaces, original.header().spaces);
    let member = service.add_member("Bo Lind").expect("add member");
    let by_bo = service
        .publish(new_story("Bo's"), &PublishAs::Member("bo lind".into()))
        .expect("publish as Bo");
    assert_eq!(by_bo.header().author, member.member);
    let revocation = service.revoke("Bo Lind", "left".into()).expect("revoke");
    let spaces: Vec<&str> = revocation
        .header()
        .spaces
        .iter()
        .map(Space::as_str)
        .collect();
    assert_eq!(spaces, ["commons", "housing"]);
    assert!(revocation.on_behalf_of_org());
    let members = service.members().expect("members");
    assert_eq!(members[0].revoked_after, Some(1));

    // Everything written waits in the outbox until a daemon shares it.
    assert_eq!(
        service.store().outbox().expect("outbox").len(),
        8,
        "every entry written without a node waits to be shared"
    );
}

#[test]
fn listings_page_without_repeating_or_losing_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let service = service(dir.path(), None);
    let author = Author::from_seeds(9, 10, "Other org", "Cy");
    let chain = author
        .chain(2_345, Timestamp(Timestamp::now().0 - 10_000_000), 200)
        .expect("chain");
    let frames: Vec<Vec<u8>> = chain.iter().map(cairn_core::Entry::encode).collect();
    // Followed, so its entries are not held to a stranger's budget.
    service
        .store()
        .follow_org(&author.credential.claims().org, None)
        .expect("follow");
    for result in service
        .store()
        .insert_batch(&frames, Timestamp::now())
        .expect("insert")
    {
        result.expect("stored");
    }
    for query in [
        ListQuery::default(),
        ListQuery {
            author: Some(author.key.member_id().to_string()),
            ..ListQuery::default()
        },
        ListQuery {
            space: Some("commons".into()),
            ..ListQuery::default()
        },
    ] {
        let mut query = ListQuery {
            limit: Some(100_000),
            ..query
        };
        let mut seen = Vec::new();
        loop {
            let page = service.list(&query).expect("list");
            assert!(page.entries.len() <= cairn_api::MAX_PAGE);
            seen.extend(page.entries.iter().map(cairn_core::Entry::id));
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "a page repeated an entry");
        assert_eq!(seen.len(), chain.len(), "{query:?}");
        assert_eq!(
            seen.first(),
            chain.last().map(cairn_core::Entry::id).as_ref()
        );
    }
    let bad = ListQuery {
        cursor: Some("s12".into()),
        ..ListQuery::default()
    };
    let err = service.list(&bad).expect_err("a cursor of another listing");
    assert!(matches!(err, Error::BadRequest(_)), "{err}");
}

#[test]
fn search_finds_what_was_just_published_while_an_indexer_owns_the_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index =
        Arc::new(cairn_search::SearchIndex::open(&dir.path().join("search")).expect("index"));
    // `Some(index)`: as in the daemon, whose indexer commits in batches later.
    let service = service(dir.path(), Some(index));
    let entry = service
        .publish(
            new_story("Kettle bells at the community lunch"),
            &PublishAs::Me,
        )
        .expect("publish");
    let found = service.search("kettle", 10).expect("search");
    assert_eq!(
        found
            .entries
            .iter()
            .map(cairn_core::Entry::id)
            .collect::<Vec<_>>(),
        [entry.id()]
    );
    let retraction = service
        .retract(&entry.id().to_string(), "duplicate".into(), &PublishAs::Me)
        .expect("retract");
    assert!(retraction.target(RefKind::RETRACTS) == Some(entry.id()));
    assert!(
        service
            .search("kettle", 10)
            .expect("search")
            .entries
            .is_empty(),
        "a retracted entry's text is gone from search at once"
    );
}

#[test]
fn gossip_verdicts_penalise_only_forgeries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::create(&dir.path().join("store"), cairn_store::Config::default()).expect("store");
    let author = Author::ana();
    let now = Timestamp::now();
    let first = author
        .entry(1, None, Kind::LEARNING, &story(1, 300), now)
        .expect("entry");
    let second = author
        .entry(2, Some(first.id()), Kind::LEARNING, &story(2, 300), now)
        .expect("entry");
    let future = author
        .sign(
            3,
            Some(second.id()),
            Draft::story(
                Kind::LEARNING,
                &story(3, 300),
                vec![Space::new("commons").expect("space")],
                Timestamp(now.0 + 3_600_000),
            )
            .expect("draft"),
        )
        .expect("entry");
    let mut forged = second.encode();
    // Flip a bit in the signature (the last 64 bytes of the signed header).
    let header_len = u32::from_le_bytes(forged[..4].try_into().expect("length")) as usize;
    forged[4 + header_len - 1] ^= 1;
    let frames = vec![
        first.encode(),
        first.encode(),
        forged,
        future.encode(),
        second.encode(),
    ];
    let spaces = vec!["commons".to_string(); frames.len()];
    let verdicts = cairn_node::validate_and_store(&store, &frames, &spaces);
    assert_eq!(
        verdicts,
        [
            Verdict::Accept, // new and valid
            Verdict::Accept, // the same bytes again, from another space's gossip
            Verdict::Reject, // a forged signature
            Verdict::Ignore, // a clock far ahead: honest peers disagree on time
            Verdict::Accept,
        ]
    );
    // Gossiped in a space the entry does not name: only a broken peer does that.
    let other = author
        .entry(3, Some(second.id()), Kind::LEARNING, &story(4, 300), now)
        .expect("entry");
    let verdicts =
        cairn_node::validate_and_store(&store, &[other.encode()], &["housing".to_string()]);
    assert_eq!(verdicts, [Verdict::Reject]);
}

/// One HTTP/1.1 request for `/api/status` on a fresh connection; returns the status code.
fn status_of(address: SocketAddr, host: &str, token: Option<&str>) -> u16 {
    status_of_path(address, host, token, "/api/status")
}

/// One HTTP/1.1 GET of `path` on a fresh connection; returns the status code.
fn status_of_path(address: SocketAddr, host: &str, token: Option<&str>, path: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

#[test]
fn the_api_wants_its_token_and_its_own_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let author = Author::ana();
    let store = Arc::new(
        Store::create(&dir.path().join("store"), cairn_store::Config::default()).expect("store"),
    );
    let mut net = cairn_net::Config::new(cairn_net::Keypair::generate_ed25519());
    net.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    net.mdns = false;
    let config = cairn_node::Config {
        store,
        member_key: author.key,
        credential: author.credential,
        net,
        api_address: SocketAddr::from(([127, 0, 0, 1], 0)),
        allow_remote_api: false,
        web: None,
        default_spaces: vec!["commons".into()],
        sync_interval: Duration::from_secs(3_600),
        files: Files::in_home(dir.path()),
    };
    let running = runtime
        .block_on(cairn_node::start(config))
        .expect("node starts");
    let address = running.api_address;
    let token = std::fs::read_to_string(dir.path().join("api.token")).expect("token");
    let token = token.trim();
    let own = address.to_string();
    let token = token.to_string();
    // Blocking requests, off the runtime's threads.
    let (missing, wrong, rebound, good, long_search) = std::thread::spawn(move || {
        (
            status_of(address, &own, None),
            status_of(address, &own, Some(&"0".repeat(64))),
            status_of(address, "attacker.example", Some(&token)),
            status_of(address, &own, Some(&token)),
            status_of_path(
                address,
                &own,
                Some(&token),
                &format!("/api/search?q={}", "a".repeat(1_001)),
            ),
        )
    })
    .join()
    .expect("requests");
    assert_eq!(missing, 401);
    assert_eq!(wrong, 401);
    assert_eq!(
        rebound, 403,
        "a page on another host name must not reach the API"
    );
    assert_eq!(good, 200);
    assert_eq!(
        long_search, 400,
        "an over-long search is the asker's mistake"
    );
    runtime.block_on(running.stop()).expect("node stops");
    assert!(
        !dir.path().join("api.token").exists(),
        "the token is removed at stop"
    );
}

#[test]
fn an_organisation_name_two_organisations_use_is_refused_with_both_ids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let service = service(dir.path(), None);
    let own = service
        .publish(new_story("From the real one"), &PublishAs::Me)
        .expect("publish");
    // A stranger calls itself by a name that looks the same (with a Cyrillic "Т").
    let impostor = Author::from_seeds(40, 41, "Riverside \u{422}rust", "Ana Silva");
    let partner = Author::from_seeds(42, 43, "Harbour Collective", "Hana");
    let insert = |author: &Author| {
        let entry = author
            .entry(1, None, Kind::LEARNING, &story(1, 200), Timestamp::now())
            .expect("entry");
        service
            .store()
            .insert(&entry.encode(), Timestamp::now())
            .expect("stored");
        entry
    };
    let entry = insert(&impostor);
    let partner_entry = insert(&partner);
    let query = ListQuery {
        org: Some("riverside trust".into()),
        ..ListQuery::default()
    };
    let err = service.list(&query).expect_err("two organisations match");
    let message = err.to_string();
    assert!(matches!(err, Error::BadRequest(_)), "{message}");
    for (org, how) in [
        (Author::ana().org_key.org_id(), "your organisation"),
        (impostor.org_key.org_id(), "stranger"),
    ] {
        assert!(message.contains(&org.short(12)), "{message}");
        assert!(message.contains(how), "{message}");
    }

    // Listed together, each says how this node knows it, and both are flagged.
    let listing = service.list(&ListQuery::default()).expect("list");
    let byline = |entry: &cairn_core::Entry| listing.notes.byline(entry);
    assert_eq!(
        byline(&own),
        format!(
            "Ana Silva of Riverside Trust (your organisation {}, name shared)",
            own.credential().claims().org.short(12)
        )
    );
    assert_eq!(
        byline(&entry),
        format!(
            "Ana Silva of Riverside \u{422}rust (stranger {}, name shared)",
            impostor.org_key.org_id().short(12)
        )
    );
    assert_eq!(
        byline(&partner_entry),
        format!(
            "Hana of Harbour Collective (stranger {})",
            partner.org_key.org_id().short(12)
        )
    );

    // By id, or its first 12 digits, each is listed alone.
    for given in [
        impostor.org_key.org_id().to_string(),
        impostor.org_key.org_id().short(12),
    ] {
        let query = ListQuery {
            org: Some(given),
            ..ListQuery::default()
        };
        let listed: Vec<_> = service
            .list(&query)
            .expect("list")
            .entries
            .iter()
            .map(cairn_core::Entry::id)
            .collect();
        assert_eq!(listed, [entry.id()]);
    }

    // A petname is shown instead of the organisation's own name, and names it.
    service
        .change_policy(&PolicyChange::Follow {
            org: partner.org_key.org_id().short(12),
            petname: Some("  Our  partners ".into()),
        })
        .expect("follow with a petname");
    let query = ListQuery {
        org: Some("our partners".into()),
        ..ListQuery::default()
    };
    let listing = service.list(&query).expect("list by petname");
    assert_eq!(listing.entries.len(), 1);
    assert_eq!(
        listing.notes.byline(&listing.entries[0]),
        "Hana of Our partners (your name, followed)"
    );
    let directory = service.directory(10).expect("directory");
    assert_eq!(
        directory[0].org(),
        partner.org_key.org_id(),
        "followed first"
    );
    assert_eq!(directory[0].name(), "Our partners");
    // No two petnames look alike.
    let refused = service
        .change_policy(&PolicyChange::Follow {
            org: impostor.org_key.org_id().to_string(),
            petname: Some("OUR PARTNERS".into()),
        })
        .expect_err("a second petname like the first");
    assert!(
        refused.to_string().contains("already has a petname"),
        "{refused}"
    );
}
