//! What retractions, revocations and removals do to stored entries: bodies dropped, a revoked
//! member's later entries removed, entries and fork proofs removed with every index key; and
//! the retractions and revocations held in memory for the checks of new entries.

use std::collections::{HashMap, HashSet};

use cairn_core::{Entry, EntryId, Kind, MemberId, OrgId, RefKind};

use crate::read::id_from;
use crate::{Error, Store, layout, lock};

impl Store {
    /// Reads every held retraction into the in-memory map (one pass over the reference index).
    pub(crate) fn load_retractions(&self) -> Result<(), Error> {
        let mut found = HashSet::new();
        for item in self.entries.scan_prefix([layout::REFERS]) {
            let (key, value) = item?;
            let is_retraction = value.get(..2) == Some(&RefKind::RETRACTS.0.to_be_bytes()[..])
                && value.get(2..4) == Some(&Kind::RETRACT.0.to_be_bytes()[..]);
            if !is_retraction {
                continue;
            }
            let (Some(target), Some(id)) = (
                key.get(1..33).and_then(|bytes| id_from(bytes).ok()),
                layout::trailing_id(&key),
            ) else {
                return Err(Error::Corrupt("a reference key is too short".into()));
            };
            if let Some(retraction) = self.get(&id)? {
                found.insert((target, retraction.header().author));
            }
        }
        *lock(&self.retracted) = found;
        Ok(())
    }

    /// Whether `author` retracted their entry `id` (a retraction is held here).
    pub fn is_retracted(&self, id: &EntryId, author: &MemberId) -> bool {
        lock(&self.retracted).contains(&(*id, *author))
    }

    /// The last valid seq of `member` if `org` revoked them.
    pub fn revoked_after(&self, org: &OrgId, member: &MemberId) -> Result<Option<u64>, Error> {
        Ok(lock(&self.revocations).get(&(*org, *member)).copied())
    }

    /// Reads every revocation into memory (they are few), so writes check them without a read.
    pub(crate) fn load_revocations(&self) -> Result<(), Error> {
        let mut found = HashMap::new();
        for item in self.entries.scan_prefix([layout::REVOKED]) {
            let (key, value) = item?;
            let parse = || -> Option<((OrgId, MemberId), u64)> {
                let org: [u8; 32] = key.get(1..33)?.try_into().ok()?;
                let member: [u8; 32] = key.get(33..65)?.try_into().ok()?;
                let seq: [u8; 8] = value.as_ref().try_into().ok()?;
                Some(((OrgId(org), MemberId(member)), u64::from_be_bytes(seq)))
            };
            let (pair, seq) =
                parse().ok_or_else(|| Error::Corrupt("a revocation record is malformed".into()))?;
            found.insert(pair, seq);
        }
        *lock(&self.revocations) = found;
        Ok(())
    }

    /// Records a revocation (the earliest cut-off wins) and removes the member's entries held
    /// after it.
    pub(crate) fn apply_revocation(&self, revocation_entry: &Entry) -> Result<(), Error> {
        let Some(Ok(revocation)) = revocation_entry.body().map(cairn_core::Revocation::decode)
        else {
            return Ok(());
        };
        let org = revocation_entry.credential().claims().org;
        let member = revocation.member;
        let last_valid_seq = match self.revoked_after(&org, &member)? {
            Some(held) => held.min(revocation.last_valid_seq),
            None => revocation.last_valid_seq,
        };
        self.entries.insert(
            layout::revocation_key(&org, &member),
            &last_valid_seq.to_be_bytes()[..],
        )?;
        lock(&self.revocations).insert((org, member), last_valid_seq);
        let mut later = Vec::new();
        for item in self
            .entries
            .range(layout::chain_key(&member, last_valid_seq.saturating_add(1))..)
        {
            let (key, value) = item?;
            if !key.starts_with(&layout::chain_prefix(&member)) {
                break;
            }
            let id = id_from(&value)?;
            if let Some(entry) = self.get(&id)?
                && entry.credential().claims().org == org
            {
                later.push(entry);
            }
        }
        self.remove_forks(|other| {
            other.header().author == member
                && other.credential().claims().org == org
                && other.header().seq > last_valid_seq
        })?;
        self.remove_entries(&later)
    }

    /// Removes entries and every index key of theirs. The record goes first, so a crash
    /// midway leaves index keys without a record, which the intent key makes `open` remove.
    pub(crate) fn remove_entries(&self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        // Added to the intent of the writes in progress, which may still name entries of
        // this batch that are not written yet.
        self.extend_intent(entries.iter().map(Entry::id))?;
        for entry in entries {
            let header = entry.header();
            let id = entry.id();
            self.uncount_org_entry(entry);
            self.entries
                .remove(layout::entry_key(layout::RECORD, &id))?;
            for space in &header.spaces {
                self.entries
                    .remove(layout::space_key(space.as_str(), header.created, &id))?;
            }
            for reference in &header.refs {
                self.entries.remove(layout::index_key(
                    layout::REFERS,
                    reference.target.as_bytes(),
                    false,
                    header.created,
                    &id,
                ))?;
            }
            let chain_key = layout::chain_key(&header.author, header.seq);
            if self
                .entries
                .get(&chain_key)?
                .is_some_and(|held| held == id.as_bytes())
            {
                self.entries.remove(chain_key)?;
            }
            self.entries
                .remove(layout::entry_key(layout::OUTBOX, &id))?;
            self.forget_space_items(&header.spaces);
        }
        Ok(())
    }

    /// Records a retraction and drops the body of its target, and of the author's revisions of
    /// it, if held (same author only). Retractions and revocations cannot be retracted: their
    /// bodies are what other nodes act on.
    pub(crate) fn apply_retraction(&self, retraction: &Entry) -> Result<(), Error> {
        let author = retraction.header().author;
        let Some(target) = retraction
            .header()
            .refs
            .iter()
            .find(|r| r.kind == RefKind::RETRACTS)
            .map(|r| r.target)
        else {
            return Ok(());
        };
        if let Some(held) = self.get(&target)? {
            if held.header().author != author || !retractable(held.header().kind) {
                return Ok(());
            }
            let revisions = self.revisions(&held)?;
            for entry in std::iter::once(&held).chain(&revisions) {
                if entry.body().is_some() {
                    let header_only = cairn_core::entry::frame(entry.signed_header(), None);
                    let pointer = self.frames.append(&header_only)?;
                    self.entries.insert(
                        layout::entry_key(layout::RECORD, &entry.id()),
                        layout::record_value(entry, pointer),
                    )?;
                }
                lock(&self.retracted).insert((entry.id(), author));
            }
        }
        lock(&self.retracted).insert((target, author));
        Ok(())
    }

    /// Whether this entry must be kept without its body: its author retracted it, or it is the
    /// author's revision of a story they retracted.
    pub(crate) fn withdrawn(&self, entry: &Entry) -> bool {
        let header = entry.header();
        if self.is_retracted(&entry.id(), &header.author) {
            return true;
        }
        header.kind == Kind::AMEND
            && header
                .refs
                .iter()
                .any(|r| r.kind == RefKind::AMENDS && self.is_retracted(&r.target, &header.author))
    }

    /// Removes the fork proofs that `matches` selects, with their space index keys.
    pub(crate) fn remove_forks(&self, matches: impl Fn(&Entry) -> bool) -> Result<(), Error> {
        let mut doomed = Vec::new();
        for item in self.entries.scan_prefix([layout::FORK]) {
            let (_, frame) = item?;
            if let Ok(other) = Entry::decode(&frame)
                && matches(&other)
            {
                doomed.push(other);
            }
        }
        for other in doomed {
            let header = other.header();
            self.entries
                .remove(layout::entry_key(layout::FORK, &other.id()))?;
            self.entries
                .remove(layout::fork_marker_key(&header.author, header.seq))?;
            for space in &header.spaces {
                self.entries.remove(layout::space_key(
                    space.as_str(),
                    header.created,
                    &other.id(),
                ))?;
            }
            self.forget_space_items(&header.spaces);
        }
        Ok(())
    }
}

/// Whether an entry of this kind can be retracted. Retractions and revocations cannot: other
/// nodes act on their bodies.
fn retractable(kind: Kind) -> bool {
    kind != Kind::RETRACT && kind != Kind::REVOKE
}
