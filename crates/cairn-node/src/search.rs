//! Keeps the full-text index in step with the store: opens it (rebuilding it when it cannot
//! be read, since it is only a cache of the store), indexes entries as they are stored, and
//! catches up after a restart or when the stored-entry feed ran ahead of it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_core::{EntryId, Kind, RefKind};
use cairn_search::SearchIndex;
use cairn_store::Store;
use tokio::sync::broadcast::error::RecvError;

use crate::Error;
use crate::node::Shared;

/// Ids indexed per commit at most; a commit makes them searchable.
const INDEX_BATCH: usize = 2_048;
/// How long the indexer waits for more ids before committing what it has.
const INDEX_LINGER: Duration = Duration::from_millis(100);
/// How often an index that fell behind checks whether it can catch up.
const BEHIND_RECHECK: Duration = Duration::from_secs(1);

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

/// Indexes entries as the node stores them, committing in batches, until the node stops.
///
/// While a large catch-up sync runs, ids are not indexed one batch at a time: indexing
/// would compete with verification for the cores. The index catches up in one pass when the
/// sync ends (and likewise if the stored-entry feed dropped ids because the indexer lagged).
pub(crate) async fn run_indexer(shared: Arc<Shared>) {
    let mut stored = shared.watch_stored();
    // Compare with the store once the node has been up for a moment: the syncs with peers
    // that start as they connect go first.
    let mut behind = true;
    loop {
        let mut ids: Vec<EntryId> = Vec::new();
        if behind {
            // Wake up now and then to catch up once the bulk sync is over.
            match tokio::time::timeout(BEHIND_RECHECK, stored.recv()).await {
                Ok(Ok(id)) => ids.push(id),
                Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
                Ok(Err(RecvError::Closed)) => return,
            }
        } else {
            match stored.recv().await {
                Ok(id) => ids.push(id),
                Err(RecvError::Lagged(_)) => behind = true,
                Err(RecvError::Closed) => return,
            }
        }
        let deadline = tokio::time::Instant::now() + INDEX_LINGER;
        while ids.len() < INDEX_BATCH {
            match tokio::time::timeout_at(deadline, stored.recv()).await {
                Ok(Ok(id)) => ids.push(id),
                Ok(Err(RecvError::Lagged(_))) => behind = true,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        // Indexing would compete with a sync for the cores: a catch-up pass waits for every
        // sync to end, and so does indexing while a large sync runs (the pass picks it up).
        let progress = shared.sync_progress();
        let wait = progress.running > 0 && (behind || progress.expected > INDEX_BATCH as u64);
        behind |= wait;
        if behind {
            shared.search_current.store(false, Ordering::Relaxed);
        }
        if wait {
            continue;
        }
        let catching_up = behind;
        let result = shared
            .read(move |service| {
                service.with_index(|store, index| {
                    if catching_up {
                        return catch_up(store, index);
                    }
                    let mut entries = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(entry) = store.get(&id)? {
                            entries.push(entry);
                        }
                    }
                    index_entries(store, index, &entries)?;
                    Ok(entries.len())
                })
            })
            .await;
        match result {
            Ok(added) if catching_up => {
                behind = false;
                shared.search_current.store(true, Ordering::Relaxed);
                if added > 0 {
                    tracing::info!(added, "search index caught up with the store");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("could not update the search index: {err}"),
        }
    }
}
