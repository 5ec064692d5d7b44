//! This node's own policy on organisations: which it blocks (their entries are removed and
//! never stored again), whether it accepts only organisations it follows, and how many
//! entries it keeps from any one organisation. Each node decides for itself; nothing here is
//! shared with peers.
//!
//! A refused entry leaves a *tombstone* (`z space 0 created id`), and catch-up sync counts
//! tombstones as held when this node asks a peer for what it lacks, so a peer that still holds
//! the refused entries is not asked for them again at every round.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cairn_core::display::name_key;
use cairn_core::{Entry, EntryId, OrgId};

use crate::budgets::{BudgetState, Budgets, stranger_refusal};
use crate::orgs::OrgIndex;
use crate::{Error, SpaceItems, Store, layout, lock};

/// The policy as set, for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Accept entries only from followed organisations.
    pub follow_only: bool,
    pub followed: BTreeSet<OrgId>,
    /// Names this node gave followed organisations, shown instead of their own.
    pub petnames: BTreeMap<OrgId, String>,
    /// Blocked organisations, with their name when blocked and the reason given.
    pub blocked: BTreeMap<OrgId, Blocked>,
    /// The most entries kept from one organisation.
    pub max_entries_per_org: u64,
}

/// A blocked organisation: its name as last seen (its entries are gone) and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blocked {
    pub name: String,
    pub reason: String,
}

/// The policy in memory (loaded at open), plus what is held of each organisation.
#[derive(Debug, Default)]
pub(crate) struct PolicyState {
    pub policy: Policy,
    /// What is held of each organisation; `None` until first used, and again after a
    /// removal took an organisation's newest entry.
    pub orgs: Option<OrgIndex>,
    /// `name_key` of each petname → the organisation it was given to.
    pub petname_keys: HashMap<String, OrgId>,
    /// The budgets for strangers and what they need beside the policy.
    pub budget: BudgetState,
}

impl PolicyState {
    /// Gives `org` a petname, or with an empty one removes its petname.
    fn set_petname(&mut self, org: OrgId, petname: String) {
        self.petname_keys.retain(|_, named| *named != org);
        if petname.is_empty() {
            self.policy.petnames.remove(&org);
        } else {
            self.petname_keys.insert(name_key(&petname), org);
            self.policy.petnames.insert(org, petname);
        }
    }
}

const MODE: &[u8] = b"pm";
const BLOCKED: u8 = b'b';
const FOLLOWED: u8 = b'f';

fn policy_key(kind: u8, org: &OrgId) -> Vec<u8> {
    let mut key = vec![layout::POLICY, kind];
    key.extend_from_slice(org.as_bytes());
    key
}

fn org_of(key: &[u8]) -> Option<OrgId> {
    let bytes: [u8; 32] = key.get(2..34)?.try_into().ok()?;
    Some(OrgId(bytes))
}

impl Store {
    pub(crate) fn load_policy(
        &self,
        max_entries_per_org: u64,
        budgets: Budgets,
    ) -> Result<(), Error> {
        let mut policy = Policy {
            follow_only: self.entries.get(MODE)?.is_some_and(|mode| *mode == [1]),
            max_entries_per_org,
            ..Policy::default()
        };
        for item in self.entries.scan_prefix([layout::POLICY, BLOCKED]) {
            let (key, value) = item?;
            let org = org_of(&key).ok_or_else(|| Error::Corrupt("a policy key is short".into()))?;
            let value = String::from_utf8_lossy(&value);
            let (name, reason) = value.split_once('\0').unwrap_or(("", &value));
            policy.blocked.insert(
                org,
                Blocked {
                    name: name.to_string(),
                    reason: reason.to_string(),
                },
            );
        }
        for item in self.entries.scan_prefix([layout::POLICY, FOLLOWED]) {
            let (key, petname) = item?;
            let org = org_of(&key).ok_or_else(|| Error::Corrupt("a policy key is short".into()))?;
            policy.followed.insert(org);
            if !petname.is_empty() {
                let petname = String::from_utf8_lossy(&petname).into_owned();
                policy.petnames.insert(org, petname);
            }
        }
        let mut state = lock(&self.policy);
        state.petname_keys = policy
            .petnames
            .iter()
            .map(|(org, petname)| (name_key(petname), *org))
            .collect();
        state.policy = policy;
        state.budget.budgets = budgets;
        state.budget.strangers_bytes = None;
        Ok(())
    }

    pub fn policy(&self) -> Policy {
        lock(&self.policy).policy.clone()
    }

    /// Why an entry of `frame_len` bytes from `org` is refused by this node's policy or
    /// budgets, if it is, and whether to remember the refusal (a tombstone, so sync does not
    /// fetch the entry again): not while the disk is full, which passes.
    pub(crate) fn refusal(
        &self,
        org: &OrgId,
        frame_len: u64,
    ) -> Result<Option<(cairn_core::Error, bool)>, Error> {
        let own = lock(&self.policy).budget.own == Some(*org);
        if !own && let Err(reason) = self.disk_refusal() {
            return Ok(Some((cairn_core::Error::NoRoom(reason), false)));
        }
        let mut guard = lock(&self.policy);
        let state = &mut *guard;
        if let Some(blocked) = state.policy.blocked.get(org) {
            let refusal = cairn_core::Error::Blocked {
                org: *org,
                reason: blocked.reason.clone(),
            };
            return Ok(Some((refusal, true)));
        }
        if state.policy.follow_only && !state.policy.followed.contains(org) {
            return Ok(Some((cairn_core::Error::NotFollowed(*org), true)));
        }
        let max = state.policy.max_entries_per_org;
        let index = self.org_index(&mut state.orgs)?;
        let count = index.get(org).map_or(0, |stats| stats.count);
        let refusal = if count >= max {
            Some(cairn_core::Error::OverQuota { org: *org, max })
        } else {
            stranger_refusal(&mut state.budget, &state.policy, index, org, frame_len)
        };
        Ok(refusal.map(|refusal| (refusal, true)))
    }

    /// Notes that an entry was refused, so sync does not fetch it again.
    pub(crate) fn tombstone(&self, entry: &Entry) -> Result<(), Error> {
        let header = entry.header();
        let org = entry.credential().claims().org;
        let mut added = 0;
        for space in &header.spaces {
            let previous = self.entries.insert(
                layout::index_key(
                    layout::TOMBSTONE,
                    space.as_str().as_bytes(),
                    true,
                    header.created,
                    &entry.id(),
                ),
                org.as_bytes().as_slice(),
            )?;
            added += u64::from(previous.is_none());
        }
        self.count_refused(added)
    }

    /// Blocks an organisation: removes every entry of theirs held here and refuses their
    /// entries from now on. Returns how many entries were removed.
    pub fn block_org(&self, org: &OrgId, name: &str, reason: &str) -> Result<usize, Error> {
        let mut heads = lock(&self.write_lock);
        // Names and reasons cannot hold a 0 byte from here on, so it separates them.
        let (name, reason) = (name.replace('\0', ""), reason.replace('\0', ""));
        self.entries.insert(
            policy_key(BLOCKED, org),
            format!("{name}\0{reason}").as_bytes(),
        )?;
        lock(&self.policy)
            .policy
            .blocked
            .insert(*org, Blocked { name, reason });
        let mut ids: Vec<EntryId> = Vec::new();
        for item in self.entries.scan_prefix([layout::RECORD]) {
            let (key, record) = item?;
            if layout::Record::parse(&record).is_some_and(|record| record.value.org == *org)
                && let Some(id) = layout::trailing_id(&key)
            {
                ids.push(id);
            }
        }
        let mut removed = 0;
        for chunk in ids.chunks(512) {
            let mut entries = Vec::with_capacity(chunk.len());
            for id in chunk {
                if let Some(entry) = self.get(id)? {
                    self.tombstone(&entry)?;
                    entries.push(entry);
                }
            }
            removed += entries.len();
            self.remove_entries(&entries)?;
        }
        self.remove_forks(|other| other.credential().claims().org == *org)?;
        let mut state = lock(&self.policy);
        if let Some(orgs) = &mut state.orgs {
            orgs.remove(org);
        }
        state.budget.strangers_bytes = None;
        drop(state);
        heads.clear();
        drop(heads);
        self.flush()?;
        Ok(removed)
    }

    /// Lifts a block: the organisation's entries are accepted again, and sync fetches them
    /// again from peers (their tombstones are removed).
    pub fn unblock_org(&self, org: &OrgId) -> Result<(), Error> {
        self.entries.remove(policy_key(BLOCKED, org))?;
        lock(&self.policy).policy.blocked.remove(org);
        self.clear_tombstones(org)?;
        self.flush()?;
        Ok(())
    }

    /// Follows `org`: its entries are accepted when following only followed organisations,
    /// and it ranks first in the directory. `petname`: a name of this node's own for it, shown
    /// instead of its self-chosen one; `None` keeps the one it has, `Some("")` removes it.
    pub fn follow_org(&self, org: &OrgId, petname: Option<&str>) -> Result<(), Error> {
        let mut state = lock(&self.policy);
        let petname = match petname {
            Some(petname) => petname.to_string(),
            None => state.policy.petnames.get(org).cloned().unwrap_or_default(),
        };
        self.entries
            .insert(policy_key(FOLLOWED, org), petname.as_bytes())?;
        state.policy.followed.insert(*org);
        state.budget.strangers_bytes = None;
        state.set_petname(*org, petname);
        drop(state);
        self.clear_tombstones(org)?;
        self.flush()?;
        Ok(())
    }

    /// Stops following `org`; the petname given with it goes too.
    pub fn unfollow_org(&self, org: &OrgId) -> Result<(), Error> {
        self.entries.remove(policy_key(FOLLOWED, org))?;
        let mut state = lock(&self.policy);
        state.policy.followed.remove(org);
        state.budget.strangers_bytes = None;
        state.set_petname(*org, String::new());
        drop(state);
        self.flush()?;
        Ok(())
    }

    /// `true`: accept only followed organisations (and those already held stay); `false`:
    /// accept every organisation that is not blocked.
    pub fn set_follow_only(&self, follow_only: bool) -> Result<(), Error> {
        self.entries.insert(MODE, &[u8::from(follow_only)][..])?;
        lock(&self.policy).policy.follow_only = follow_only;
        if !follow_only {
            // Everything refused for not being followed may be fetched again.
            let blocked: HashSet<OrgId> =
                lock(&self.policy).policy.blocked.keys().copied().collect();
            let mut kept = 0;
            for item in self.entries.scan_prefix([layout::TOMBSTONE]) {
                let (key, org) = item?;
                let blocked_org = org
                    .as_ref()
                    .try_into()
                    .is_ok_and(|bytes: [u8; 32]| blocked.contains(&OrgId(bytes)));
                if blocked_org {
                    kept += 1;
                } else {
                    self.entries.remove(key)?;
                }
            }
            self.refused
                .store(kept, std::sync::atomic::Ordering::Relaxed);
            self.forget_all_space_items();
        }
        self.flush()?;
        Ok(())
    }

    fn clear_tombstones(&self, org: &OrgId) -> Result<(), Error> {
        let mut kept = 0;
        for item in self.entries.scan_prefix([layout::TOMBSTONE]) {
            let (key, value) = item?;
            if *value == org.as_bytes()[..] {
                self.entries.remove(key)?;
            } else {
                kept += 1;
            }
        }
        self.refused
            .store(kept, std::sync::atomic::Ordering::Relaxed);
        self.forget_all_space_items();
        Ok(())
    }

    /// What this node has in a space *as far as fetching goes*: its stored entries plus the
    /// entries it refused. Sync uses it when asking peers, so refused entries are not fetched
    /// again; when serving, it uses [`Store::space_items`], so it never offers what it lacks.
    pub fn space_items_known(&self, space: &str) -> Result<SpaceItems, Error> {
        let items = self.space_items(space)?;
        let prefix = layout::index_prefix(layout::TOMBSTONE, space.as_bytes(), true);
        let mut tombstones = Vec::new();
        for key in self.entries.scan_prefix(&prefix).keys() {
            let key = key?;
            if let Some(item) = layout::created_and_id(&key[prefix.len()..]) {
                tombstones.push(item);
            }
        }
        if tombstones.is_empty() {
            return Ok(items);
        }
        let mut known = Vec::with_capacity(items.len() + tombstones.len());
        known.extend_from_slice(&items);
        known.extend(tombstones);
        known.sort_unstable();
        known.dedup();
        Ok(std::sync::Arc::new(known))
    }
}
