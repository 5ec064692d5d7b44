//! Organisation names as the store indexes them: by how they look, kept current as newer
//! entries rename an organisation, rebuilt the same on reopening, with petnames kept by the
//! policy.

use cairn_core::testkit::{Author, EPOCH, story};
use cairn_core::{Kind, OrgId, Timestamp};
use cairn_store::{Config, Store};

const NOW: Timestamp = Timestamp(EPOCH.0 + 86_400_000);

/// Stores the first entry of `author`'s chain, created `created` ms after the epoch.
fn publish(store: &Store, author: &Author, created: u64) {
    let entry = author
        .entry(
            1,
            None,
            Kind::LEARNING,
            &story(1, 100),
            Timestamp(EPOCH.0 + created),
        )
        .expect("entry");
    store.insert(&entry.encode(), NOW).expect("stored");
}

fn org(author: &Author) -> OrgId {
    author.org_key.org_id()
}

/// Whether the organisation's current name is flagged as shared.
fn shared(store: &Store, author: &Author) -> bool {
    store
        .org_name(&org(author))
        .expect("name")
        .is_some_and(|(_, shared)| shared)
}

#[test]
fn names_that_look_alike_are_found_and_flagged_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let real = Author::from_seeds(1, 2, "Alpha Org", "Alice");
    // A Cyrillic "А" and a zero-width space: a different name that looks the same.
    let lookalike = Author::from_seeds(3, 4, "\u{410}lpha\u{200B} Org", "Alice");
    let beta = Author::from_seeds(5, 6, "Beta Group", "Bo");
    let store = Store::create(&path, Config::default()).expect("create");
    publish(&store, &real, 1_000);
    publish(&store, &lookalike, 2_000);
    publish(&store, &beta, 3_000);

    let mut named = store.orgs_named("alpha org").expect("named");
    named.sort();
    let mut both = vec![org(&real), org(&lookalike)];
    both.sort();
    assert_eq!(named, both);
    assert!(shared(&store, &real));
    assert!(shared(&store, &lookalike));
    assert!(!shared(&store, &beta));

    // A newer entry under a new credential renames Beta; an older one would not.
    let renamed = Author::from_seeds(5, 7, "Gamma Group", "Gil");
    publish(&store, &renamed, 4_000);
    let older = Author::from_seeds(5, 8, "Old Beta", "Ola");
    publish(&store, &older, 500);
    assert!(store.orgs_named("Beta Group").expect("named").is_empty());
    assert!(store.orgs_named("Old Beta").expect("named").is_empty());
    assert_eq!(
        store.orgs_named("gamma group").expect("named"),
        vec![org(&beta)]
    );
    assert_eq!(
        store.org_name(&org(&beta)).expect("name"),
        Some(("Gamma Group".to_string(), false)),
        "the current name is the newest entry's"
    );
    // A name claimed elsewhere (in a binding, say) is checked the same way.
    assert!(store.name_shared(&org(&beta), "ALPHA ORG").expect("shared"));
    assert!(
        !store
            .name_shared(&org(&beta), "Somewhere Else")
            .expect("shared")
    );

    // A petname is a name readers see, so a stranger using it is flagged too.
    store
        .follow_org(&org(&beta), Some("Delta"))
        .expect("follow");
    let delta = Author::from_seeds(9, 10, "Delta", "Dee");
    publish(&store, &delta, 5_000);
    assert!(shared(&store, &delta));
    assert!(!shared(&store, &beta));
    // Following again without a petname keeps it; an empty one removes it.
    store.follow_org(&org(&beta), None).expect("follow");
    assert_eq!(
        store.policy().petnames.get(&org(&beta)).map(String::as_str),
        Some("Delta")
    );
    drop(store);

    let store = Store::open(&path, Config::default()).expect("open");
    assert_eq!(
        store.policy().petnames.get(&org(&beta)).map(String::as_str),
        Some("Delta"),
        "petnames are kept"
    );
    let mut named = store.orgs_named("ALPHA ORG").expect("named");
    named.sort();
    assert_eq!(
        named, both,
        "the index is rebuilt the same from the records"
    );
    assert_eq!(
        store.orgs_named("Gamma Group").expect("named"),
        vec![org(&beta)]
    );
    assert!(shared(&store, &delta));

    // Blocking the lookalike removes its entries, and the name is no longer shared.
    store
        .block_org(&org(&lookalike), "Alpha Org", "impersonation")
        .expect("block");
    assert!(!shared(&store, &real));
    assert_eq!(
        store.orgs_named("alpha org").expect("named"),
        vec![org(&real)]
    );
    store.follow_org(&org(&beta), Some("")).expect("follow");
    assert!(store.policy().petnames.is_empty());
    assert!(!shared(&store, &delta));
}
