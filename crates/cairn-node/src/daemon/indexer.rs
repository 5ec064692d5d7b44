//! Keeps the search index in step with what the node stores: indexes entries as they are
//! stored, in batches with one commit each, and catches up after a restart, after a large
//! sync, or when the stored-entry feed ran ahead of it.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::EntryId;
use tokio::sync::broadcast::error::RecvError;

use super::shared::Shared;
use crate::service::search::{INDEX_BATCH, catch_up, index_entries};

/// How long the indexer waits for more ids before committing what it has...
const INDEX_LINGER: Duration = Duration::from_millis(100);
/// ...and at least how long after its last commit: a commit costs the same for one entry as
/// for hundreds (a new segment, files written and synced), so while entries keep coming (a
/// busy space, or strangers' floods) the index takes them in one commit a second.
const COMMIT_GAP: Duration = Duration::from_secs(1);
/// How often an index that fell behind checks whether it can catch up.
const BEHIND_RECHECK: Duration = Duration::from_secs(1);

/// Indexes entries as the node stores them, committing in batches, until the node stops.
///
/// While a large catch-up sync runs, ids are not indexed one batch at a time: indexing
/// would compete with verification for the cores. The index catches up in one pass when the
/// sync ends (and likewise if the stored-entry feed dropped ids because the indexer lagged).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stored = shared.watch_stored();
    // Compare with the store once the node has been up for a moment: the syncs with peers
    // that start as they connect go first.
    let mut behind = true;
    let mut last_commit = tokio::time::Instant::now();
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
        let deadline = (tokio::time::Instant::now() + INDEX_LINGER).max(last_commit + COMMIT_GAP);
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
            shared.set_search_up_to_date(false);
        }
        if wait {
            continue;
        }
        let catching_up = behind;
        last_commit = tokio::time::Instant::now();
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
                shared.set_search_up_to_date(true);
                if added > 0 {
                    tracing::info!(added, "search index caught up with the store");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("could not update the search index: {err}"),
        }
    }
}
