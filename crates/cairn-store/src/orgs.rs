//! What this node holds of each organisation: how many entries (for the quota), the newest
//! (for the directory), and the name that newest entry gives, indexed by how it looks
//! ([`name_key`]) so that names two organisations share, or that only look the same, are
//! found at once. Built by one scan of the records on first use, then kept up to date by
//! writes. A removal that takes an organisation's newest entry marks that organisation
//! stale, and the next reader looks up its newest entry again (that organisation's only).

use std::collections::{HashMap, HashSet};

use cairn_core::display::name_key;
use cairn_core::{Entry, EntryId, OrgId};

use crate::policy::PolicyState;
use crate::read::{Filter, read_record};
use crate::{Error, Store, layout, lock};

/// Every organisation with entries here, and their names by key.
#[derive(Debug, Default)]
pub(crate) struct OrgIndex {
    stats: HashMap<OrgId, OrgStats>,
    /// [`name_key`] of each organisation's current name → the organisations using it.
    by_name: HashMap<String, Vec<OrgId>>,
    /// Organisations whose newest entry was removed: their `newest` and name wait for the next
    /// reader to look them up again.
    stale: HashSet<OrgId>,
}

/// One organisation's entries held here.
#[derive(Debug, Clone)]
pub(crate) struct OrgStats {
    pub count: u64,
    /// The bytes of their frames as stored.
    pub bytes: u64,
    /// The newest entry by (created, id).
    pub newest: (u64, EntryId),
    /// The organisation name the newest entry gives, and its [`name_key`].
    name: String,
    name_key: String,
}

impl OrgStats {
    fn new(count: u64, newest: (u64, EntryId)) -> Self {
        Self {
            count,
            bytes: 0,
            newest,
            name: String::new(),
            name_key: String::new(),
        }
    }
}

impl OrgIndex {
    /// Counts one entry at `position`; `name` is the organisation name it gives, which
    /// becomes the organisation's current name if the entry is its newest.
    fn count(&mut self, org: OrgId, position: (u64, EntryId), name: &str, bytes: u64) {
        let renamed = match self.stats.get_mut(&org) {
            Some(stats) => {
                stats.count += 1;
                stats.bytes += bytes;
                let newer = position > stats.newest;
                stats.newest = stats.newest.max(position);
                // Most entries repeat their organisation's name: no key to work out.
                newer && stats.name != name
            }
            None => {
                let mut stats = OrgStats::new(1, position);
                stats.bytes = bytes;
                self.stats.insert(org, stats);
                true
            }
        };
        if renamed {
            self.rename(org, name);
        }
    }

    /// Makes `name` the organisation's current name. An empty name (not known) is not
    /// indexed: it looks like no other.
    fn rename(&mut self, org: OrgId, name: &str) {
        let Some(stats) = self.stats.get_mut(&org) else {
            return;
        };
        let key = name_key(name);
        stats.name = name.to_string();
        let old = std::mem::replace(&mut stats.name_key, key.clone());
        self.unname(org, &old);
        if !key.is_empty() {
            self.by_name.entry(key).or_default().push(org);
        }
    }

    /// Takes one entry off. If it was the organisation's newest, the organisation is stale
    /// until its newest entry is looked up again.
    fn uncount(&mut self, org: &OrgId, position: (u64, EntryId), bytes: u64) {
        let Some(stats) = self.stats.get_mut(org) else {
            return;
        };
        if stats.count <= 1 {
            self.remove(org);
            return;
        }
        stats.count -= 1;
        stats.bytes = stats.bytes.saturating_sub(bytes);
        if stats.newest == position {
            self.stale.insert(*org);
        }
    }

    /// Forgets an organisation (its entries were removed).
    pub(crate) fn remove(&mut self, org: &OrgId) {
        self.stale.remove(org);
        if let Some(stats) = self.stats.remove(org) {
            self.unname(*org, &stats.name_key);
        }
    }

    fn unname(&mut self, org: OrgId, key: &str) {
        if let Some(orgs) = self.by_name.get_mut(key) {
            orgs.retain(|named| *named != org);
            if orgs.is_empty() {
                self.by_name.remove(key);
            }
        }
    }

    pub(crate) fn get(&self, org: &OrgId) -> Option<&OrgStats> {
        self.stats.get(org)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&OrgId, &OrgStats)> {
        self.stats.iter()
    }

    /// Organisations whose current name has this key.
    fn named(&self, key: &str) -> &[OrgId] {
        self.by_name.get(key).map_or(&[], Vec::as_slice)
    }
}

impl Store {
    /// The index, scanning the records if it is not built yet. The caller holds the write
    /// lock (writes call it from within).
    pub(crate) fn org_index<'a>(
        &self,
        orgs: &'a mut Option<OrgIndex>,
    ) -> Result<&'a mut OrgIndex, Error> {
        if orgs.is_none() {
            let mut held: HashMap<OrgId, OrgStats> = HashMap::new();
            for item in self.entries.scan_prefix([layout::RECORD]) {
                let (key, record) = item?;
                let (id, record) = read_record(&key, &record)?;
                let position = (record.created, id);
                let stats = held
                    .entry(record.value.org)
                    .or_insert_with(|| OrgStats::new(0, position));
                stats.count += 1;
                stats.bytes += u64::from(record.frame.len);
                stats.newest = stats.newest.max(position);
            }
            let mut index = OrgIndex::default();
            for (org, stats) in held {
                // A record without its entry is left by an interrupted write; the name then
                // stays unknown until the organisation's next entry.
                let name = self
                    .get(&stats.newest.1)?
                    .map(|entry| entry.credential().claims().org_name.clone())
                    .unwrap_or_default();
                index.stats.insert(org, stats);
                index.rename(org, &name);
            }
            *orgs = Some(index);
        }
        Ok(orgs.get_or_insert_default())
    }

    /// Reads the index with the policy state, for readers. When the index must be built, writes
    /// wait, so the scan and the writes' own counting cannot both count an entry.
    pub(crate) fn read_org_index<T>(
        &self,
        read: impl FnOnce(&OrgIndex, &PolicyState) -> T,
    ) -> Result<T, Error> {
        {
            let state = lock(&self.policy);
            if let Some(orgs) = &state.orgs
                && orgs.stale.is_empty()
            {
                return Ok(read(orgs, &state));
            }
        }
        let _writes = lock(&self.write_lock);
        self.refresh_stale_orgs()?;
        let mut state = lock(&self.policy);
        let orgs = self.org_index(&mut state.orgs)?;
        // Built: taken out and put back, so the reader can see the whole state beside it.
        let orgs = std::mem::take(orgs);
        let answer = read(&orgs, &state);
        state.orgs = Some(orgs);
        Ok(answer)
    }

    /// Looks up again the newest entry of each stale organisation. The caller holds the write
    /// lock, so no write counts an entry meanwhile.
    fn refresh_stale_orgs(&self) -> Result<(), Error> {
        let stale: Vec<OrgId> = match &mut lock(&self.policy).orgs {
            Some(orgs) => orgs.stale.drain().collect(),
            None => return Ok(()),
        };
        for org in stale {
            let newest = self
                .newest(&Filter {
                    org: Some(org),
                    ..Filter::default()
                })
                .next()
                .transpose()?;
            let mut state = lock(&self.policy);
            let Some(orgs) = &mut state.orgs else {
                return Ok(());
            };
            match newest {
                Some(entry) => {
                    if let Some(stats) = orgs.stats.get_mut(&org) {
                        stats.newest = (entry.header().created.0, entry.id());
                    }
                    orgs.rename(org, &entry.credential().claims().org_name);
                }
                None => orgs.remove(&org),
            }
        }
        Ok(())
    }

    /// Counts a stored entry of `bytes` in its organisation's stats.
    pub(crate) fn count_org_entry(&self, entry: &Entry, bytes: u64) {
        let mut state = lock(&self.policy);
        let state = &mut *state;
        let Some(orgs) = &mut state.orgs else {
            return;
        };
        let claims = entry.credential().claims();
        orgs.count(
            claims.org,
            (entry.header().created.0, entry.id()),
            &claims.org_name,
            bytes,
        );
        if state.budget.is_stranger(&state.policy, &claims.org)
            && let Some(all) = &mut state.budget.strangers_bytes
        {
            *all += bytes;
        }
    }

    /// Takes a removed entry off its organisation's stats.
    pub(crate) fn uncount_org_entry(&self, entry: &Entry) {
        let mut state = lock(&self.policy);
        let org = entry.credential().claims().org;
        let position = (entry.header().created.0, entry.id());
        let bytes = entry.encode().len() as u64;
        if let Some(orgs) = &mut state.orgs {
            orgs.uncount(&org, position, bytes);
        }
        // Worked out again from the index when next needed (removals are rare).
        state.budget.strangers_bytes = None;
    }

    /// Up to `limit` organisations with entries here, each with its newest entry: the ones
    /// this node follows first, then the others by their newest entry, most recent first. Ids
    /// cost nothing to choose, so ranking by them would let cheap vanity keys push the
    /// organisations that matter out of a bounded directory.
    pub fn orgs(&self, limit: usize) -> Result<Vec<(OrgId, Entry)>, Error> {
        let mut newest: Vec<(bool, u64, OrgId, EntryId)> = self.read_org_index(|orgs, state| {
            let followed = &state.policy.followed;
            orgs.stats
                .iter()
                .map(|(org, stats)| (followed.contains(org), stats.newest.0, *org, stats.newest.1))
                .collect()
        })?;
        newest.sort_unstable_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        let mut found = Vec::with_capacity(newest.len().min(limit));
        for (_, _, org, id) in newest.into_iter().take(limit) {
            let entry = match self.get(&id)? {
                Some(entry) => Some(entry),
                // A key left by an interrupted write: the newest entry that is held.
                None => self
                    .newest(&Filter {
                        org: Some(org),
                        ..Filter::default()
                    })
                    .next()
                    .transpose()?,
            };
            if let Some(entry) = entry {
                found.push((org, entry));
            }
        }
        Ok(found)
    }

    /// The organisations whose current name (the one their newest entry here gives) looks
    /// like `name`, in the sense of [`name_key`].
    pub fn orgs_named(&self, name: &str) -> Result<Vec<OrgId>, Error> {
        let key = name_key(name);
        self.read_org_index(|orgs, _| orgs.named(&key).to_vec())
    }

    /// The organisations held here whose id, in hex, starts with `prefix`.
    pub fn orgs_starting(&self, prefix: &str) -> Result<Vec<OrgId>, Error> {
        self.read_org_index(|orgs, _| {
            orgs.stats
                .keys()
                .filter(|org| org.to_string().starts_with(prefix))
                .copied()
                .collect()
        })
    }

    /// `org`'s current name here (the one its newest entry gives), if it has entries, and
    /// whether that name looks like another organisation's current name or like a petname
    /// this node gave another organisation: readers must then be told which is which.
    pub fn org_name(&self, org: &OrgId) -> Result<Option<(String, bool)>, Error> {
        self.read_org_index(|orgs, state| {
            let stats = orgs.get(org)?;
            Some((
                stats.name.clone(),
                shared(orgs, state, org, &stats.name_key),
            ))
        })
    }

    /// Whether `name`, claimed by `org` (in a binding, say), looks like another
    /// organisation's current name or a petname given to another.
    pub fn name_shared(&self, org: &OrgId, name: &str) -> Result<bool, Error> {
        let key = name_key(name);
        self.read_org_index(|orgs, state| shared(orgs, state, org, &key))
    }

    /// The number of entries in chains (fork proofs not counted).
    pub fn count(&self) -> Result<usize, Error> {
        let count: u64 =
            self.read_org_index(|orgs, _| orgs.stats.values().map(|stats| stats.count).sum())?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }
}

/// Whether a name with `key`, used by `org`, looks like another organisation's.
fn shared(orgs: &OrgIndex, state: &PolicyState, org: &OrgId, key: &str) -> bool {
    !key.is_empty()
        && (orgs.named(key).iter().any(|other| other != org)
            || state
                .petname_keys
                .get(key)
                .is_some_and(|other| other != org))
}
