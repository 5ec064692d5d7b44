//! Keeps the full-text index in step with the store: opens it (rebuilding it when it cannot
//! be read, since it is only a cache of the store), indexes entries as they are stored, and
//! catches up after a restart or when the stored-entry feed ran ahead of it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::EntryId;
use cairn_search::SearchIndex;
use cairn_store::{Filter, Store};
use tokio::sync::broadcast::error::RecvError;

use crate::Error;
use crate::node::{Shared, blocking};

/// Ids indexed per commit at most; a commit makes them searchable.
const INDEX_BATCH: usize = 2_048;
/// How long the indexer waits for more ids before committing what it has.
const INDEX_LINGER: Duration = Duration::from_millis(100);

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

/// Indexes every stored entry the index lacks; returns how many it added. Cheap when the
/// index is current: it compares counts first.
pub fn catch_up(store: &Store, index: &SearchIndex) -> Result<usize, Error> {
    if index.len() == store.count()? as u64 {
        return Ok(0);
    }
    let mut added = 0;
    let mut batch = Vec::with_capacity(INDEX_BATCH);
    for entry in store.newest(&Filter::default()) {
        let entry = entry?;
        if !index.contains(&entry.id())? {
            batch.push(entry);
        }
        if batch.len() == INDEX_BATCH {
            added += batch.len();
            index.add(&batch)?;
            batch.clear();
        }
    }
    added += batch.len();
    index.add(&batch)?;
    index.commit()?;
    Ok(added)
}

/// The stored entries that best match `query`, best first. Hits whose entry is no longer
/// held are left out.
pub(crate) async fn find(
    shared: &Shared,
    query: String,
    limit: usize,
) -> Result<Vec<cairn_core::Entry>, Error> {
    let (store, index) = (shared.store.clone(), shared.search.clone());
    blocking(move || {
        let mut entries = Vec::new();
        for hit in index.search(&query, limit)? {
            if let Some(entry) = store.get(&hit.id)? {
                entries.push(entry);
            }
        }
        Ok(entries)
    })
    .await
}

/// Rebuilds the index in `dir` from the store, from nothing. Returns the number of entries.
pub fn reindex(store: &Store, dir: &Path) -> Result<u64, Error> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|source| Error::File {
            action: "remove the old search index",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let index = SearchIndex::open(dir)?;
    catch_up(store, &index)?;
    Ok(index.len())
}

/// Indexes entries as the node stores them, committing in batches, until the node stops.
pub(crate) async fn run_indexer(shared: Arc<Shared>) {
    let mut stored = shared.watch_stored();
    let first = {
        let (store, index) = (shared.store.clone(), shared.search.clone());
        blocking(move || catch_up(&store, &index)).await
    };
    match first {
        Ok(0) => {}
        Ok(added) => tracing::info!(added, "search index caught up with the store"),
        Err(err) => tracing::warn!("could not catch the search index up: {err}"),
    }
    loop {
        let mut ids: Vec<EntryId> = Vec::new();
        let mut lagged = false;
        match stored.recv().await {
            Ok(id) => ids.push(id),
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return,
        }
        let deadline = tokio::time::Instant::now() + INDEX_LINGER;
        while ids.len() < INDEX_BATCH && !lagged {
            match tokio::time::timeout_at(deadline, stored.recv()).await {
                Ok(Ok(id)) => ids.push(id),
                Ok(Err(RecvError::Lagged(_))) => lagged = true,
                Ok(Err(RecvError::Closed)) | Err(_) => break,
            }
        }
        let (store, index) = (shared.store.clone(), shared.search.clone());
        let result = blocking(move || -> Result<(), Error> {
            if lagged {
                // Ids were dropped while the indexer was busy: compare with the store.
                catch_up(&store, &index)?;
                return Ok(());
            }
            let mut entries = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(entry) = store.get(&id)? {
                    entries.push(entry);
                }
            }
            index.add(&entries)?;
            index.commit()?;
            Ok(())
        })
        .await;
        if let Err(err) = result {
            tracing::warn!("could not update the search index: {err}");
        }
    }
}
