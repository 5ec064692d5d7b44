//! The index finds entries by their words, stems, tags and replies; it survives reopening,
//! forgets removed entries, and refuses oversized queries.

use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{Draft, Entry, Kind, Reply, Space, Story, Timestamp};
use cairn_search::{Error, SearchIndex};

fn story(title: &str, summary: &str, tags: &[&str]) -> Story {
    Story {
        title: title.into(),
        summary: summary.into(),
        learned: "Talk to the people affected before deciding.".into(),
        tags: tags.iter().map(|tag| (*tag).to_string()).collect(),
        ..Story::default()
    }
}

fn entries() -> Vec<Entry> {
    let ana = Author::ana();
    let stories = [
        story(
            "Volunteer rota collapsed in winter",
            "Our befriending volunteers dropped out when the evenings got dark.",
            &["volunteers", "peer-support"],
        ),
        story(
            "Co-designing a survey with patients",
            "Patients rewrote our questions and the response rate doubled.",
            &["co-production"],
        ),
        story(
            "Grant reporting took over the project",
            "We spent more time reporting than doing.",
            &["funding"],
        ),
    ];
    let mut out: Vec<Entry> = Vec::new();
    for (index, story) in stories.iter().enumerate() {
        let prev = out.last().map(Entry::id);
        let created = Timestamp(EPOCH.0 + index as u64);
        out.push(
            ana.entry(index as u64 + 1, prev, Kind::FAILURE, story, created)
                .expect("fixture signs"),
        );
    }
    let reply = Draft::reply(
        out[0].id(),
        &Reply {
            text: "We solved this with a buddy system for dark evenings.".into(),
        },
        vec![Space::new(Space::DEFAULT).expect("valid space")],
        EPOCH,
    )
    .expect("reply draft");
    let prev = out.last().map(Entry::id);
    out.push(ana.sign(4, prev, reply).expect("reply signs"));
    out
}

#[test]
fn finds_by_words_stems_tags_and_replies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::open(dir.path()).expect("index opens");
    let entries = entries();
    index.add(&entries).expect("adds");
    index.commit().expect("commits");
    assert_eq!(index.len(), 4);

    let ids = |query: &str| -> Vec<_> {
        index
            .search(query, 10)
            .expect("search runs")
            .into_iter()
            .map(|hit| hit.id)
            .collect()
    };
    // Stemming: "volunteering" finds "volunteers".
    assert_eq!(ids("volunteering rota"), vec![entries[0].id()]);
    // Tags as words.
    assert_eq!(ids("peer support"), vec![entries[0].id()]);
    // Every word must match.
    assert!(ids("patients funding").is_empty());
    assert_eq!(ids("patients OR funding").len(), 2);
    // Reply text.
    assert_eq!(ids("buddy"), vec![entries[3].id()]);
    // Title matches outrank body matches.
    assert_eq!(ids("evenings").first(), Some(&entries[0].id()));
    // Odd syntax is read leniently, not refused.
    assert!(index.search("title:(unclosed \"quote", 10).is_ok());
    assert!(ids("   ").is_empty());
}

#[test]
fn reopens_replaces_and_removes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entries = entries();
    {
        let index = SearchIndex::open(dir.path()).expect("index opens");
        index.add(&entries).expect("adds");
        // Adding again replaces rather than duplicates.
        index.add(&entries[..2]).expect("adds again");
        index.commit().expect("commits");
        assert_eq!(index.len(), 4);
    }
    let index = SearchIndex::open(dir.path()).expect("index reopens");
    assert_eq!(index.len(), 4);
    let reader = SearchIndex::open_read_only(dir.path()).expect("a reader opens beside it");
    index.remove(&entries[1].id()).expect("removes");
    index.commit().expect("commits");
    assert!(index.search("survey", 10).expect("runs").is_empty());
    reader.refresh().expect("reader refreshes");
    assert_eq!(reader.len(), 3);
    assert!(matches!(reader.add(&entries), Err(Error::ReadOnly)));
    index.clear().expect("clears");
    index.commit().expect("commits");
    assert!(index.is_empty());
}

#[test]
fn refuses_oversized_queries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::open(dir.path()).expect("index opens");
    let long = "word ".repeat(300);
    assert!(matches!(
        index.search(&long, 10),
        Err(Error::QueryTooLong(1500))
    ));
}
