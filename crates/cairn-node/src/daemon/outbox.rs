//! Shares entries that were written while no peer could take them. The store's outbox marks
//! them; when a peer joins one of their spaces, this task gossips them, a page at a time, on
//! its own, so the gossip event handler never waits for it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use cairn_core::{Entry, EntryId};
use cairn_net::Client;
use cairn_store::Store;
use tokio::sync::Notify;

use super::gossip;
use super::tasks::Tasks;
use super::tasks::blocking;
use crate::Error;

/// Outbox entries read and gossiped at a time.
const PAGE: usize = 64;
/// Spaces waiting for the outbox task at most; a joined space is named once however often
/// peers join it, and a node joins few spaces.
const MAX_WAITING_SPACES: usize = 64;

/// The spaces in which a peer has appeared since the outbox task last looked.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    waiting: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Outbox {
    /// Asks the task to share what waits for `space`.
    pub fn wake(&self, space: &str) {
        {
            let mut waiting = lock(&self.waiting);
            if waiting.len() >= MAX_WAITING_SPACES && !waiting.contains(space) {
                return;
            }
            waiting.insert(space.to_string());
        }
        // Kept as a permit if the task is busy, so no wake is lost.
        self.wake.notify_one();
    }
}

/// Runs until the node stops: shares waiting entries whenever a space is woken.
pub(crate) async fn run(store: Arc<Store>, client: Client, outbox: Arc<Outbox>, tasks: Arc<Tasks>) {
    loop {
        tokio::select! {
            biased;
            () = tasks.stopping() => return,
            () = outbox.wake.notified() => {}
        }
        let spaces = std::mem::take(&mut *lock(&outbox.waiting));
        for space in spaces {
            if let Err(err) = share(&store, &client, &tasks, &space).await {
                tracing::warn!(%space, "could not share waiting entries: {err}");
            }
        }
    }
}

/// Gossips the outbox's entries in `space`, a page at a time, and unmarks those a peer took.
async fn share(
    store: &Arc<Store>,
    client: &Client,
    tasks: &Tasks,
    space: &str,
) -> Result<(), Error> {
    let reading = store.clone();
    let waiting = blocking(move || Ok(reading.outbox()?)).await?;
    tracing::debug!(space, waiting = waiting.len(), "entries in the outbox");
    for page in waiting.chunks(PAGE) {
        if tasks.is_stopping() {
            return Ok(());
        }
        let (reading, ids) = (store.clone(), page.to_vec());
        let entries: Vec<Entry> = blocking(move || {
            let mut entries = Vec::with_capacity(ids.len());
            for id in ids {
                match reading.get(&id)? {
                    Some(entry) => entries.push(entry),
                    // Removed since (a block, a revocation): nothing is left to share.
                    None => reading.outbox_remove(&id)?,
                }
            }
            Ok(entries)
        })
        .await?;
        let mut shared: Vec<EntryId> = Vec::new();
        for entry in entries
            .iter()
            .filter(|entry| entry.header().spaces.iter().any(|s| s.as_str() == space))
        {
            if gossip::publish(client, entry).await {
                tracing::info!(id = %entry.id(), "shared an entry written while no peer was connected");
                shared.push(entry.id());
            }
        }
        let writing = store.clone();
        blocking(move || {
            for id in &shared {
                writing.outbox_remove(id)?;
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
