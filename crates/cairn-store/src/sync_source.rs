//! What sync reads: each space's (created, id) items, cached until the space gains an entry,
//! a space's frames in that order, frames by id, and warming before the node goes online.

use std::sync::Arc;

use cairn_core::{EntryId, Timestamp};

use crate::{Error, Page, SpaceItems, Store, layout, lock};

/// Authors whose newest entry's key and credential [`Store::warm`] hands the verifier.
const WARM_AUTHORS: usize = 10_000;
/// Spaces whose item lists are kept in memory at once (a node joins a handful).
const MAX_CACHED_SPACES: usize = 64;

impl Store {
    /// Drops every cached item list.
    pub(crate) fn forget_all_space_items(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        lock(&self.space_items).clear();
    }

    /// Drops the cached item lists of spaces that just gained an entry.
    pub(crate) fn forget_space_items(&self, spaces: &[cairn_core::Space]) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut cache = lock(&self.space_items);
        for space in spaces {
            cache.remove(space.as_str());
        }
    }

    /// Every stored entry of a space as (created, id), in that order: what catch-up sync
    /// reconciles. Reads index keys only (fast); `open` has removed any a crash left without a
    /// record, so none hides an entry that a peer could send again.
    pub fn space_items(&self, space: &str) -> Result<SpaceItems, Error> {
        if let Some(items) = lock(&self.space_items).get(space) {
            return Ok(items.clone());
        }
        // One listing at a time: a second caller waits and then finds the first one's result.
        let _listing = lock(&self.listing);
        if let Some(items) = lock(&self.space_items).get(space) {
            return Ok(items.clone());
        }
        let writes_before = self.writes.load(std::sync::atomic::Ordering::SeqCst);
        let prefix = layout::space_prefix(space);
        let mut items = Vec::new();
        for key in self.entries.scan_prefix(&prefix).keys() {
            let key = key?;
            let (created, id) = layout::created_and_id(&key[prefix.len()..])
                .ok_or_else(|| Error::Corrupt("a space index key is malformed".into()))?;
            items.push((created, id));
        }
        let items = Arc::new(items);
        let mut cache = lock(&self.space_items);
        // An empty listing is cheap to make again, and is what a peer asking for made-up
        // space names gets: not cached, so such asking cannot push real spaces out.
        if !items.is_empty()
            && self.writes.load(std::sync::atomic::Ordering::SeqCst) == writes_before
        {
            // Bounded: one space makes room for another, not the whole cache.
            if cache.len() >= MAX_CACHED_SPACES
                && let Some(evicted) = cache.keys().next().cloned()
            {
                cache.remove(&evicted);
            }
            cache.insert(space.to_string(), items.clone());
        }
        Ok(items)
    }

    /// Frames of a space in (created, id) order after `after`: at most `limit` of them, and
    /// stopping before `max_bytes`. Also returns where to continue, if there is more.
    pub fn space_range(
        &self,
        space: &str,
        after: Option<(u64, EntryId)>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Page, Error> {
        let prefix = layout::space_prefix(space);
        let start = match after {
            Some((created, id)) => {
                let mut key = layout::index_key(
                    layout::SPACE,
                    space.as_bytes(),
                    true,
                    Timestamp(created),
                    &id,
                );
                key.push(0); // just past `after`
                key
            }
            None => prefix.clone(),
        };
        // Where each frame is first, then the frames: those written together are read at once.
        let mut located = Vec::new();
        let mut bytes = 0;
        let mut last = None;
        let mut next = None;
        for key in self.entries.range(start..).keys() {
            let key = key?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (created, id) = layout::created_and_id(&key[prefix.len()..])
                .ok_or_else(|| Error::Corrupt("a space index key is malformed".into()))?;
            // A key without a record or a fork proof is an entry still being written, or one
            // a crash interrupted: it is not served.
            let Some(at) = self.frame_at(&id)? else {
                continue;
            };
            if located.len() == limit || bytes + at.len() > max_bytes {
                next = last;
                break;
            }
            bytes += at.len();
            located.push(at);
            last = Some((created, id));
        }
        Ok(Page {
            frames: self.read_frames_at(located)?,
            next,
        })
    }

    /// Frames of the entries held among `ids`, in that order, stopping before `max_bytes`;
    /// the flag says whether it stopped early.
    pub fn frames(&self, ids: &[EntryId], max_bytes: usize) -> Result<(Vec<Vec<u8>>, bool), Error> {
        let mut located = Vec::new();
        let mut bytes = 0;
        let mut stopped_early = false;
        for id in ids {
            if let Some(at) = self.frame_at(id)? {
                if bytes + at.len() > max_bytes {
                    stopped_early = true;
                    break;
                }
                bytes += at.len();
                located.push(at);
            }
        }
        Ok((self.read_frames_at(located)?, stopped_early))
    }

    /// Reads what the first sync and the first write would otherwise read on the spot: each
    /// of `spaces`' items, and every organisation's stats, which are built by one pass over
    /// the records (about 100 bytes an entry), the keys every duplicate check and every fetch
    /// by id look up at random; and each author's key and credential, which the checks of
    /// the first entries a sync brings would otherwise verify. A node calls it before it goes
    /// online.
    pub fn warm(&self, spaces: &[String]) -> Result<(), Error> {
        for space in spaces {
            self.space_items(space)?;
        }
        self.read_org_index(|_, _| ())?;
        self.remember_authors()
    }

    /// Gives the verifier, for each author with a chain here (at most [`WARM_AUTHORS`]), the
    /// key and credential of their newest stored entry, which were checked when it was
    /// stored. The first entries a sync brings from known authors then skip a credential
    /// check each, which otherwise falls on the first page, while the writer waits for it.
    fn remember_authors(&self) -> Result<(), Error> {
        let mut next = self.entries.range(vec![layout::CHAIN]..);
        for _ in 0..WARM_AUTHORS {
            let Some(item) = next.next() else {
                break;
            };
            let (key, _) = item?;
            let Some(author) = layout::chain_author(&key) else {
                break;
            };
            if let Some((_, id)) = self.chain_head(&author)?
                && let Some(entry) = self.get(&id)?
            {
                // A stored entry that no longer passes (a key this build refuses) is simply
                // not remembered: the next one from its author is checked in full.
                let _ = self.verifier.remember_checked(&entry);
            }
            // On to the first chain key after every seq of this author.
            next = self.entries.range(layout::chain_key(&author, u64::MAX)..);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cairn_core::Entry;
    use cairn_core::testkit::{Author, EPOCH};

    use super::*;
    use crate::Config;

    #[test]
    fn warming_hands_the_verifier_each_authors_newest_credential() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store");
        let authors: Vec<Author> = (0..5u8)
            .map(|seed| Author::from_seeds(seed + 1, seed + 40, "Org", "Member"))
            .collect();
        let newest: Vec<Entry> = {
            let store = Store::create(&path, Config::default()).expect("create");
            authors
                .iter()
                .map(|author| {
                    let chain = author.chain(3, EPOCH, 100).expect("chain");
                    for entry in &chain {
                        store
                            .insert(&entry.encode(), Timestamp(EPOCH.0 + 86_400_000))
                            .expect("insert");
                    }
                    chain.last().expect("entries").clone()
                })
                .collect()
        };
        let store = Store::open(&path, Config::default()).expect("open");
        assert!(
            newest
                .iter()
                .all(|entry| !store.verifier.remembers_credential(entry))
        );
        store.warm(&[]).expect("warm");
        for entry in &newest {
            assert!(store.verifier.remembers_credential(entry));
        }
    }
}
