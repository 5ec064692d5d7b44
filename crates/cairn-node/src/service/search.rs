//! The full-text index beside the store: opening it (rebuilding it when it cannot be read,
//! since it is only a cache of the store), catching it up with the store, indexing entries,
//! and reading matches back as entries.

use std::path::Path;

use cairn_core::{Kind, RefKind};
use cairn_search::SearchIndex;
use cairn_store::Store;

use crate::Error;

/// Ids indexed per commit at most; a commit makes them searchable.
pub(crate) const INDEX_BATCH: usize = 2_048;

/// Opens the index in `dir`; an unreadable index is deleted and recreated empty (the caller
/// then catches it up from the store).
pub(crate) fn open(dir: &Path) -> Result<SearchIndex, Error> {
    match SearchIndex::open(dir) {
        Ok(index) => Ok(index),
        Err(err @ cairn_search::Error::Open { .. }) => {
            tracing::warn!("{err}; rebuilding it from the store");
            std::fs::remove_dir_all(dir).map_err(|source| Error::File {
                action: "remove the unreadable search index",
                path: dir.to_path_buf(),
                source,
            })?;
            Ok(SearchIndex::open(dir)?)
        }
        Err(err) => Err(err.into()),
    }
}

/// Brings the index in line with the store: indexes every stored entry it lacks (with the
/// targets of retractions among them, whose text must go) and drops documents of entries the
/// store no longer holds. Returns how many entries it indexed. Compares id sets, so it loads
/// only what differs.
pub fn catch_up(store: &Store, index: &SearchIndex) -> Result<usize, Error> {
    let mut indexed = index.ids()?;
    let mut added = 0;
    let mut batch = Vec::with_capacity(INDEX_BATCH);
    for id in store.ids() {
        let id = id?;
        if indexed.remove(&id) {
            continue;
        }
        if let Some(entry) = store.get(&id)? {
            batch.push(entry);
        }
        if batch.len() >= INDEX_BATCH {
            added += add_unindexed(store, index, &batch)?;
            batch.clear();
        }
    }
    added += add_unindexed(store, index, &batch)?;
    // What is left was indexed once but is no longer held (blocked, revoked).
    for gone in &indexed {
        index.remove(gone)?;
    }
    // A commit with nothing in it would still start segment merges.
    if added > 0 || !indexed.is_empty() {
        index.commit()?;
    }
    Ok(added)
}

/// Indexes entries that have no document yet, and indexes again, without their text, the
/// entries that retractions among them withdrew. Returns how many it added.
fn add_unindexed(
    store: &Store,
    index: &SearchIndex,
    entries: &[cairn_core::Entry],
) -> Result<usize, Error> {
    index.add_new(entries)?;
    index.add(&retracted_targets(store, entries)?)?;
    Ok(entries.len())
}

/// The entries that retractions among `entries` withdrew: indexed again, without their text.
fn retracted_targets(
    store: &Store,
    entries: &[cairn_core::Entry],
) -> Result<Vec<cairn_core::Entry>, Error> {
    let mut targets = Vec::new();
    for entry in entries {
        if entry.header().kind != Kind::RETRACT {
            continue;
        }
        if let Some(target) = entry.target(RefKind::RETRACTS)
            && let Some(target) = store.get(&target)?
        {
            targets.push(target);
        }
    }
    Ok(targets)
}

/// The stored entries that best match `query`, best first. Hits whose entry is no longer
/// held are left out; a hit in a story's revision stands for the story.
pub fn matching(
    store: &Store,
    index: &SearchIndex,
    query: &str,
    limit: usize,
) -> Result<Vec<cairn_core::Entry>, Error> {
    let mut entries: Vec<cairn_core::Entry> = Vec::new();
    for hit in index.search(query, limit)? {
        let Some(mut entry) = store.get(&hit.id)? else {
            continue;
        };
        if let Some(original) = entry.original()
            && let Some(original) = store.get(&original)?
        {
            entry = original;
        }
        if !entries.iter().any(|held| held.id() == entry.id()) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// Indexes `entries` (replacing documents they may have) with the targets of retractions
/// among them, indexed again without their text, and commits.
pub(crate) fn index_entries(
    store: &Store,
    index: &SearchIndex,
    entries: &[cairn_core::Entry],
) -> Result<(), Error> {
    let targets = retracted_targets(store, entries)?;
    index.add(entries.iter().chain(&targets))?;
    index.commit()?;
    Ok(())
}
