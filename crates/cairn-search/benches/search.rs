//! Search latency over 100,000 entries, beside a limit measured in the same run: a linear scan
//! of the same texts in memory for the same queries (what search would cost without an
//! index). Also prints the indexing rate.
//!
//! Entries are stories of about 1 KB whose words are drawn from a vocabulary of 20,000 words
//! with a skewed (Zipf-like) frequency, as in natural text; queries are one to three words
//! drawn the same way, so some are common and some rare.
//!
//! Run with `cargo bench -p cairn-search --bench search`.

use std::time::{Duration, Instant};

use cairn_core::testkit::{Author, EPOCH};
use cairn_core::{Entry, Kind, Story, Timestamp};
use cairn_search::SearchIndex;

const ENTRIES: usize = 100_000;
const AUTHORS: usize = 20;
const VOCABULARY: usize = 20_000;
const QUERIES: usize = 2_000;
/// Queries checked against the linear scan (it is slow).
const SCAN_QUERIES: usize = 50;

/// A small deterministic generator (xorshift), so every run indexes the same text.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A word index, skewed towards small indexes (common words).
    fn word(&mut self) -> String {
        let uniform = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        let index = (VOCABULARY as f64 * uniform.powi(3)) as usize;
        word(index)
    }

    fn sentence(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| self.word())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Pronounceable made-up words, distinct per index and not changed by English stemming.
fn word(index: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ru", "te", "na", "po", "si", "du", "fe", "go", "hi", "ju", "ba", "ze",
        "vo", "wi", "xo", "yu", "qa",
    ];
    let mut rest = index;
    let mut text = String::new();
    loop {
        text.push_str(SYLLABLES[rest % 20]);
        rest /= 20;
        if rest == 0 {
            break;
        }
    }
    text.push('k');
    text
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn main() {
    let started = Instant::now();
    let mut words = Words(0x9e37_79b9_7f4a_7c15);
    let authors: Vec<Author> = (0..AUTHORS)
        .map(|index| {
            Author::from_seeds(
                50 + index as u8,
                150 + index as u8,
                "Bench Org",
                &format!("Member {index}"),
            )
        })
        .collect();
    let mut heads: Vec<Option<Entry>> = vec![None; AUTHORS];
    let mut entries = Vec::with_capacity(ENTRIES);
    let mut texts = Vec::with_capacity(ENTRIES);
    for index in 0..ENTRIES {
        let slot = index % AUTHORS;
        let story = Story {
            title: words.sentence(6),
            summary: words.sentence(25),
            text: words.sentence(100),
            learned: words.sentence(20),
            tags: vec![words.word()],
            ..Story::default()
        };
        texts.push(
            format!(
                "{} {} {} {} {}",
                story.title, story.summary, story.text, story.learned, story.tags[0]
            )
            .to_lowercase(),
        );
        let prev = heads[slot].as_ref().map(Entry::id);
        let seq = (index / AUTHORS) as u64 + 1;
        let entry = authors[slot]
            .entry(
                seq,
                prev,
                Kind::LEARNING,
                &story,
                Timestamp(EPOCH.0 + index as u64),
            )
            .expect("fixture entry signs");
        heads[slot] = Some(entry.clone());
        entries.push(entry);
    }
    let mean_body = entries
        .iter()
        .map(|e| e.body().map_or(0, <[u8]>::len))
        .sum::<usize>()
        / ENTRIES;
    println!(
        "prepared {ENTRIES} entries (mean body {mean_body} bytes) in {:.1?}",
        started.elapsed()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::open(dir.path()).expect("index opens");
    let indexing = Instant::now();
    for chunk in entries.chunks(10_000) {
        index.add(chunk).expect("adds");
    }
    index.commit().expect("commits");
    let indexing = indexing.elapsed();
    println!(
        "indexed {} entries in {:.1?}: {:.0} entries/s",
        index.len(),
        indexing,
        ENTRIES as f64 / indexing.as_secs_f64()
    );

    let queries: Vec<String> = (0..QUERIES)
        .map(|index| words.sentence(1 + index % 3))
        .collect();
    // Warm up: first queries load the index files.
    for query in queries.iter().take(100) {
        index.search(query, 20).expect("search runs");
    }
    let mut latencies = Vec::with_capacity(QUERIES);
    let mut hits = 0usize;
    for query in &queries {
        let start = Instant::now();
        hits += index.search(query, 20).expect("search runs").len();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));

    // The limit: the same queries as a linear scan of every text, in memory.
    let mut scan = Vec::with_capacity(SCAN_QUERIES);
    for query in queries.iter().take(SCAN_QUERIES) {
        let terms: Vec<&str> = query.split(' ').collect();
        let start = Instant::now();
        let matched = texts
            .iter()
            .filter(|text| terms.iter().all(|term| text.contains(term)))
            .take(ENTRIES)
            .count();
        std::hint::black_box(matched);
        scan.push(start.elapsed());
    }
    scan.sort();
    let scan_p50 = percentile(&scan, 0.50);

    println!(
        "search over {ENTRIES} entries, {QUERIES} queries of 1-3 words, top 20 ({:.1} hits per query):",
        hits as f64 / QUERIES as f64
    );
    println!(
        "  p50 {p50:.2?}   p99 {p99:.2?}   max {:.2?}",
        latencies[latencies.len() - 1]
    );
    println!(
        "  linear scan of the same texts: p50 {scan_p50:.2?}; the index is {:.0}x faster at p50",
        scan_p50.as_secs_f64() / p50.as_secs_f64()
    );
}
