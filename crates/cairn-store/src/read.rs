//! Reads: entries by id or id prefix, listings newest first by [`Filter`] from a [`Cursor`]
//! (the space indexes merged for all entries), references, organisations, profiles,
//! revisions, chains, fork proofs and counts; and where each stored frame is.

use std::collections::HashSet;

use cairn_core::{BodyHash, Entry, EntryId, Kind, MemberId, OrgId, RefKind, Timestamp};

use crate::{Error, Fork, Store, frames, layout};

/// Which entries to list. Unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub space: Option<String>,
    pub tag: Option<String>,
    pub org: Option<OrgId>,
    pub author: Option<MemberId>,
    /// An organisation's name as in its credentials, compared without regard to case.
    pub org_name: Option<String>,
    /// A member's name as in their credential, compared without regard to case.
    pub author_name: Option<String>,
    /// Only learning, failure and question entries: what a timeline shows (replies and
    /// responses appear under their entry instead).
    pub stories_only: bool,
    /// Only entries after this position in the listing's order (from [`Filter::cursor_of`] of
    /// the last entry of the previous page). A cursor of the other kind than the listing reads
    /// (a seq for a listing without an author, or a time for one with) matches nothing.
    pub after: Option<Cursor>,
}

/// A position in a newest-first listing, exclusive: the next page starts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// In a listing by space or of everything: (created, id).
    Time(u64, EntryId),
    /// In a listing of one author's chain: their seq.
    Seq(u64),
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cursor::Time(created, id) => write!(f, "t{created}.{id}"),
            Cursor::Seq(seq) => write!(f, "s{seq}"),
        }
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    /// The text [`Cursor`]'s `Display` writes.
    fn from_str(text: &str) -> Result<Self, ()> {
        if let Some(seq) = text.strip_prefix('s') {
            return seq.parse().map(Cursor::Seq).map_err(|_| ());
        }
        let (created, id) = text
            .strip_prefix('t')
            .ok_or(())?
            .split_once('.')
            .ok_or(())?;
        Ok(Cursor::Time(
            created.parse().map_err(|_| ())?,
            id.parse().map_err(|_| ())?,
        ))
    }
}

impl Filter {
    /// The cursor that continues this listing after `entry`.
    pub fn cursor_of(&self, entry: &Entry) -> Cursor {
        match self.author {
            Some(_) => Cursor::Seq(entry.header().seq),
            None => Cursor::Time(entry.header().created.0, entry.id()),
        }
    }

    fn matches(&self, entry: &Entry) -> bool {
        let header = entry.header();
        self.kind.is_none_or(|kind| header.kind == kind)
            && (!self.stories_only || header.kind.has_story())
            && self.author.is_none_or(|author| header.author == author)
            && self
                .org
                .is_none_or(|org| entry.credential().claims().org == org)
            && self
                .space
                .as_ref()
                .is_none_or(|space| header.spaces.iter().any(|s| s.as_str() == space))
            && self.org_name.as_ref().is_none_or(|name| {
                entry.credential().claims().org_name.to_lowercase() == name.to_lowercase()
            })
            && self.author_name.as_ref().is_none_or(|name| {
                entry.credential().claims().member_name.to_lowercase() == name.to_lowercase()
            })
            && self.tag.as_ref().is_none_or(|tag| {
                entry
                    .story()
                    .and_then(Result::ok)
                    .is_some_and(|story| story.tags.contains(tag))
            })
    }
}

impl Store {
    /// The newest profile an author (an organisation's own key, or a member) published.
    pub fn profile_of(
        &self,
        author: &MemberId,
    ) -> Result<Option<(Entry, cairn_core::Profile)>, Error> {
        let key = layout::profile_key(author);
        let Some(id) = self.entries.get(key)? else {
            return Ok(None);
        };
        let Some(entry) = self.get(&id_from(&id)?)? else {
            return Ok(None);
        };
        let profile = entry.body().map(cairn_core::Profile::decode).transpose();
        Ok(profile
            .map_err(|err| Error::Corrupt(format!("a stored profile does not decode: {err}")))?
            .map(|profile| (entry, profile)))
    }

    /// The revisions of a story by its own author (amendments), oldest first.
    pub fn revisions(&self, entry: &Entry) -> Result<Vec<Entry>, Error> {
        let author = entry.header().author;
        Ok(self
            .referring_as(&entry.id(), RefKind::AMENDS, Kind::AMEND, MAX_REVISIONS)?
            .into_iter()
            .filter(|by| by.header().author == author)
            .collect())
    }

    /// The retraction that withdrew `id`, if one by the entry's author is held.
    pub fn retraction_of(&self, entry: &Entry) -> Result<Option<Entry>, Error> {
        if !self.is_retracted(&entry.id(), &entry.header().author) {
            return Ok(None);
        }
        Ok(self
            .referring_as(&entry.id(), RefKind::RETRACTS, Kind::RETRACT, MAX_REVISIONS)?
            .into_iter()
            .find(|by| by.header().author == entry.header().author))
    }

    /// Where the frame stored under an id is: the entry's record, or else a fork proof.
    pub(crate) fn frame_at(&self, id: &EntryId) -> Result<Option<FrameAt>, Error> {
        match self.record_frame_at(id)? {
            Some(at) => Ok(Some(at)),
            None => Ok(self
                .entries
                .get(layout::entry_key(layout::FORK, id))?
                .map(|frame| FrameAt::Read(frame.to_vec()))),
        }
    }

    /// The frame of a stored entry (not a fork proof).
    fn record_frame(&self, id: &EntryId) -> Result<Option<Vec<u8>>, Error> {
        self.record_frame_at(id)?
            .map(|at| self.read_frame_at(at))
            .transpose()
    }

    /// Where the frame of a stored entry (not a fork proof) is: its record says.
    fn record_frame_at(&self, id: &EntryId) -> Result<Option<FrameAt>, Error> {
        let record_key = layout::entry_key(layout::RECORD, id);
        let Some(record) = self.entries.get(&record_key)? else {
            return Ok(None);
        };
        if self.frames_in_records() {
            let record = layout::Record::parse(&record)
                .ok_or_else(|| Error::Corrupt(format!("the record of {id} is malformed")))?;
            return Ok(Some(FrameAt::Log(record.frame)));
        }
        // A store of format 5 or earlier, being migrated: the frame key says where, or holds
        // the frame itself while a store of format 3 or 4 is migrated (no frame is as short
        // as a pointer).
        let created = layout::record_created(&record)
            .ok_or_else(|| Error::Corrupt(format!("the record of {id} is malformed")))?;
        match self
            .entries
            .get(layout::format_5_frame_key(Timestamp(created), id))?
        {
            Some(value) => Ok(Some(match frames::Pointer::parse(&value) {
                Some(pointer) => FrameAt::Log(pointer),
                None => FrameAt::Read(value.to_vec()),
            })),
            None => Err(Error::Corrupt(format!("the frame of {id} is missing"))),
        }
    }

    fn read_frame_at(&self, at: FrameAt) -> Result<Vec<u8>, Error> {
        match at {
            FrameAt::Log(pointer) => self.frames.read(pointer),
            FrameAt::Read(frame) => Ok(frame),
        }
    }

    /// The frames at `located`, in order; frames that lie end to end in the log (as frames
    /// written together do) are read with one system call.
    pub(crate) fn read_frames_at(&self, located: Vec<FrameAt>) -> Result<Vec<Vec<u8>>, Error> {
        let pointers: Vec<frames::Pointer> = located
            .iter()
            .filter_map(|at| match at {
                FrameAt::Log(pointer) => Some(*pointer),
                FrameAt::Read(_) => None,
            })
            .collect();
        let mut from_log = self.frames.read_many(&pointers)?.into_iter();
        located
            .into_iter()
            .map(|at| match at {
                FrameAt::Log(_) => from_log
                    .next()
                    .ok_or_else(|| Error::Corrupt("a frame read from the log is missing".into())),
                FrameAt::Read(frame) => Ok(frame),
            })
            .collect()
    }

    pub(crate) fn frames_in_records(&self) -> bool {
        self.frames_in_records
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The id in the author's chain at `seq`, if that entry's record exists. A chain key whose
    /// record is missing was left by a crash mid-write and does not count.
    pub(crate) fn chain_lookup(
        &self,
        author: &MemberId,
        seq: u64,
    ) -> Result<Option<EntryId>, Error> {
        let Some(bytes) = self.entries.get(layout::chain_key(author, seq))? else {
            return Ok(None);
        };
        let id = id_from(&bytes)?;
        Ok(self
            .entries
            .contains_key(layout::entry_key(layout::RECORD, &id))?
            .then_some(id))
    }

    /// Whether the store holds this id, in a chain or as a fork proof.
    pub fn contains(&self, id: &EntryId) -> Result<bool, Error> {
        Ok(self
            .entries
            .contains_key(layout::entry_key(layout::RECORD, id))?
            || (self
                .may_hold_fork_proofs
                .load(std::sync::atomic::Ordering::SeqCst)
                && self
                    .entries
                    .contains_key(layout::entry_key(layout::FORK, id))?))
    }

    /// Reads an entry back, checking that it is the one asked for and undamaged.
    pub fn get(&self, id: &EntryId) -> Result<Option<Entry>, Error> {
        match self.record_frame(id)? {
            Some(frame) => decode_checked(id, &frame).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries that reference `target` (replies, responses, typed links), oldest
    /// first, with how each refers to it.
    pub fn referring(
        &self,
        target: &EntryId,
        limit: usize,
    ) -> Result<Vec<(RefKind, Entry)>, Error> {
        let mut found = Vec::new();
        for item in self.entries.scan_prefix(layout::refers_prefix(target)) {
            if found.len() >= limit {
                break;
            }
            let (key, value) = item?;
            let (Some(id), Some(kind)) = (layout::trailing_id(&key), value.get(..2)) else {
                return Err(Error::Corrupt(format!(
                    "a reference key to {target} is {} bytes with a {}-byte value",
                    key.len(),
                    value.len()
                )));
            };
            // A key without its record was left by an interrupted write: skip it.
            if let Some(entry) = self.get(&id)? {
                found.push((RefKind(u16::from_be_bytes([kind[0], kind[1]])), entry));
            }
        }
        Ok(found)
    }

    /// Up to `limit` entries of `kind` that reference `target` with `how`, oldest first. Reads
    /// only the matching entries (the reference index carries both kinds).
    pub fn referring_as(
        &self,
        target: &EntryId,
        how: RefKind,
        kind: Kind,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        let mut wanted = [0u8; 4];
        wanted[..2].copy_from_slice(&how.0.to_be_bytes());
        wanted[2..].copy_from_slice(&kind.0.to_be_bytes());
        let mut found = Vec::new();
        for item in self.entries.scan_prefix(layout::refers_prefix(target)) {
            if found.len() >= limit {
                break;
            }
            let (key, value) = item?;
            if value.get(..4) != Some(&wanted[..]) {
                continue;
            }
            let id = layout::trailing_id(&key)
                .ok_or_else(|| Error::Corrupt("a reference key is too short".into()))?;
            if let Some(entry) = self.get(&id)? {
                found.push(entry);
            }
        }
        Ok(found)
    }

    /// The one id that starts with `prefix` (hex, any case), as in git.
    pub fn resolve(&self, prefix: &str) -> Result<EntryId, Error> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(cairn_core::Error::BadField {
                field: "entry id",
                reason: format!("{prefix:?} is not a hex id or the start of one"),
            }
            .into());
        }
        let whole_bytes = hex::decode(&prefix[..prefix.len() / 2 * 2]).unwrap_or_default();
        let mut scan_prefix = vec![layout::RECORD];
        scan_prefix.extend_from_slice(&whole_bytes);
        let mut found = Vec::new();
        for key in self.entries.scan_prefix(scan_prefix).keys() {
            let key = key?;
            let Some(id) = layout::trailing_id(&key) else {
                continue;
            };
            if id.to_string().starts_with(&prefix) {
                found.push(id);
                if found.len() > 1 {
                    break;
                }
            }
        }
        match found.as_slice() {
            [] => Err(Error::NotFound(prefix)),
            [id] => Ok(*id),
            _ => Err(Error::Ambiguous {
                count: self.count_prefix(&prefix)?,
                prefix,
            }),
        }
    }

    fn count_prefix(&self, prefix: &str) -> Result<usize, Error> {
        let mut count = 0;
        for key in self.entries.scan_prefix([layout::RECORD]).keys() {
            if layout::trailing_id(&key?).is_some_and(|id| id.to_string().starts_with(prefix)) {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Entries matching `filter`, newest first, read lazily from the most selective index.
    pub fn newest<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> Box<dyn Iterator<Item = Result<Entry, Error>> + 'a> {
        // Kind, organisation and tag are in the records, so filtering on them loads only
        // matching entries. An author has their chain, a space alone its index, and all
        // entries are the space indexes merged.
        let before = match filter.after {
            None => None,
            Some(Cursor::Time(created, id)) if filter.author.is_none() => Some((created, id)),
            Some(Cursor::Seq(_)) if filter.author.is_some() => None,
            Some(_) => return Box::new(std::iter::empty()) as Box<dyn Iterator<Item = _>>,
        };
        let ids: Box<dyn Iterator<Item = Result<EntryId, Error>> + 'a> =
            if let Some(author) = &filter.author {
                let chain = match filter.after {
                    Some(Cursor::Seq(seq)) => self
                        .entries
                        .range(layout::chain_prefix(author)..layout::chain_key(author, seq)),
                    _ => self.entries.scan_prefix(layout::chain_prefix(author)),
                };
                Box::new(chain.values().rev().map(|value| id_from(&value?)))
            } else if let Some(space) = filter.space.as_ref() {
                Box::new(
                    self.space_keys_newest_first(space, before)
                        .map(|item| item.map(|(_, id)| id)),
                )
            } else {
                Box::new(self.all_newest_first(before))
            };
        Box::new(ids.filter_map(move |id| {
            let result = (|| {
                let id = id?;
                // An index key without its record (a fork proof, or a key left by a crash
                // mid-write) is skipped.
                let Some(record) = self.entries.get(layout::entry_key(layout::RECORD, &id))? else {
                    return Ok(None);
                };
                let record = layout::Record::parse(&record)
                    .ok_or_else(|| Error::Corrupt(format!("the record of {id} is malformed")))?;
                let value_of = record.value;
                let wanted = filter.kind.is_none_or(|kind| kind == value_of.kind)
                    && (!filter.stories_only || value_of.kind.has_story())
                    && filter.org.is_none_or(|org| org == value_of.org)
                    && filter.tag.as_ref().is_none_or(|tag| value_of.has_tag(tag));
                if !wanted {
                    return Ok(None);
                }
                decode_checked(&id, &self.frames.read(record.frame)?).map(Some)
            })();
            match result {
                Ok(Some(entry)) if filter.matches(&entry) => Some(Ok(entry)),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            }
        }))
    }

    /// A space's index keys as (created, id), newest first, from just before `before` if
    /// given.
    fn space_keys_newest_first(
        &self,
        space: &str,
        before: Option<(u64, EntryId)>,
    ) -> impl Iterator<Item = Result<(u64, EntryId), Error>> + '_ {
        let prefix = layout::space_prefix(space);
        let start = prefix.len();
        let end = match before {
            Some((created, id)) => layout::space_key(space, Timestamp(created), &id),
            // Past every key of the space: its name, then a byte above the 0 that ends it.
            None => [&prefix[..prefix.len() - 1], &[1]].concat(),
        };
        self.entries
            .range(prefix..end)
            .keys()
            .rev()
            .map(move |key| {
                layout::created_and_id(&key?[start..])
                    .ok_or_else(|| Error::Corrupt("a space index key is malformed".into()))
            })
    }

    /// Every space that has an entry, in name order: one seek per space, however many
    /// entries each holds.
    fn spaces(&self) -> Result<Vec<String>, Error> {
        let mut spaces = Vec::new();
        let mut from = vec![layout::SPACE];
        while let Some((key, _)) = self.entries.range(from..).next().transpose()? {
            if key.first() != Some(&layout::SPACE) {
                break;
            }
            let name_end = key
                .iter()
                .position(|&byte| byte == 0)
                .ok_or_else(|| Error::Corrupt("a space index key is malformed".into()))?;
            let name = std::str::from_utf8(&key[1..name_end])
                .map_err(|_| Error::Corrupt("a space name is not UTF-8".into()))?;
            spaces.push(name.to_string());
            // Past every key of this space: its name, then a byte above the 0 that ends it.
            from = [&key[..name_end], &[1]].concat();
        }
        Ok(spaces)
    }

    /// The ids of every entry and fork proof, newest first, each once: the space indexes
    /// merged (an entry is in one to eight spaces, so the same key can come from several).
    fn all_newest_first(
        &self,
        before: Option<(u64, EntryId)>,
    ) -> Box<dyn Iterator<Item = Result<EntryId, Error>> + '_> {
        match self.spaces() {
            Ok(spaces) => Box::new(NewestFirst {
                sources: spaces
                    .iter()
                    .map(|space| (self.space_keys_newest_first(space, before), None))
                    .collect(),
            }),
            Err(err) => Box::new(std::iter::once(Err(err))),
        }
    }

    /// The highest seq reachable from seq 1 without a gap: the end of the chain as far as it
    /// can be checked (entries after a gap may be anyone's claims).
    pub fn contiguous_head(&self, author: &MemberId) -> Result<u64, Error> {
        let mut expected = 1u64;
        for key in self
            .entries
            .scan_prefix(layout::chain_prefix(author))
            .keys()
        {
            let key = key?;
            let seq_bytes: [u8; 8] = key
                .get(33..41)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| Error::Corrupt("a chain key is malformed".into()))?;
            if u64::from_be_bytes(seq_bytes) != expected {
                break;
            }
            expected += 1;
        }
        Ok(expected - 1)
    }

    /// The author's highest seq held and its id: where their next entry goes.
    pub fn chain_head(&self, author: &MemberId) -> Result<Option<(u64, EntryId)>, Error> {
        // Newest first, skipping chain keys whose record a crash kept from being written.
        for item in self.entries.scan_prefix(layout::chain_prefix(author)).rev() {
            let (key, value) = item?;
            let seq_bytes: [u8; 8] = key[key.len().saturating_sub(8)..]
                .try_into()
                .map_err(|_| Error::Corrupt("a chain key is too short".into()))?;
            let id = id_from(&value)?;
            if self
                .entries
                .contains_key(layout::entry_key(layout::RECORD, &id))?
            {
                return Ok(Some((u64::from_be_bytes(seq_bytes), id)));
            }
        }
        Ok(None)
    }

    /// Previous entries that stored entries name but this store does not hold yet.
    pub fn wanted(&self) -> Result<Vec<EntryId>, Error> {
        self.ids_under(layout::WANTED, "a wanted key is too short")
            .collect()
    }

    /// Every fork proof held, optionally only one author's.
    pub fn forks(&self, author: Option<&MemberId>) -> Result<Vec<Fork>, Error> {
        let mut forks = Vec::new();
        for item in self.entries.scan_prefix([layout::FORK]) {
            let (_, frame) = item?;
            let other = Entry::decode(&frame)
                .map_err(|err| Error::Corrupt(format!("a fork proof does not decode: {err}")))?;
            let header = other.header();
            if author.is_some_and(|author| *author != header.author) {
                continue;
            }
            // The chain entry may have been removed (a block or a revocation); then the proof
            // has nothing left to stand beside.
            let Some(kept) = self.chain_lookup(&header.author, header.seq)? else {
                continue;
            };
            forks.push(Fork {
                author: header.author,
                seq: header.seq,
                kept,
                other,
            });
        }
        Ok(forks)
    }

    /// The id of every stored entry, in id order (fork proofs are not included). Reads the
    /// records, which are small, and no frames.
    pub fn ids(&self) -> impl Iterator<Item = Result<EntryId, Error>> + '_ {
        self.ids_under(layout::RECORD, "a record key is too short")
    }

    /// The ids that end the keys under a one-byte prefix, in key order.
    fn ids_under(
        &self,
        prefix: u8,
        too_short: &'static str,
    ) -> impl Iterator<Item = Result<EntryId, Error>> + '_ {
        self.entries.scan_prefix([prefix]).keys().map(move |key| {
            layout::trailing_id(&key?).ok_or_else(|| Error::Corrupt(too_short.into()))
        })
    }

    /// Authors with at least one fork proof against them: they signed two different entries
    /// with the same seq.
    pub fn forked_authors(&self) -> Result<HashSet<MemberId>, Error> {
        Ok(self
            .forks(None)?
            .into_iter()
            .map(|fork| fork.author)
            .collect())
    }
}

/// Where a frame is: in the frame log, or already read (a fork proof, which the tree holds).
pub(crate) enum FrameAt {
    Log(frames::Pointer),
    Read(Vec<u8>),
}

impl FrameAt {
    pub(crate) fn len(&self) -> usize {
        match self {
            FrameAt::Log(pointer) => pointer.len as usize,
            FrameAt::Read(frame) => frame.len(),
        }
    }
}

/// Index keys from several sources, each newest first, merged into one stream of ids newest
/// first, each key once.
struct NewestFirst<I> {
    /// Each source with the item it yielded last and that is not passed on yet.
    sources: Vec<(I, Option<(u64, EntryId)>)>,
}

impl<I: Iterator<Item = Result<(u64, EntryId), Error>>> Iterator for NewestFirst<I> {
    type Item = Result<EntryId, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut index = 0;
        while let Some((source, head)) = self.sources.get_mut(index) {
            if head.is_none() {
                match source.next() {
                    Some(Ok(item)) => *head = Some(item),
                    Some(Err(err)) => return Some(Err(err)),
                    None => {
                        self.sources.swap_remove(index);
                        continue;
                    }
                }
            }
            index += 1;
        }
        // Every source is in order, so a key in several of them is at each one's head now.
        let newest = self.sources.iter().filter_map(|(_, head)| *head).max()?;
        for (_, head) in &mut self.sources {
            if *head == Some(newest) {
                *head = None;
            }
        }
        Some(Ok(newest.1))
    }
}

/// Revisions, retractions and the like read under one entry at most.
const MAX_REVISIONS: usize = 1_000;

/// Decodes a stored frame, checking that it is the entry stored under `id` and undamaged.
pub(crate) fn decode_checked(id: &EntryId, frame: &[u8]) -> Result<Entry, Error> {
    let entry = Entry::decode(frame)
        .map_err(|err| Error::Corrupt(format!("entry {id} does not decode: {err}")))?;
    if entry.id() != *id {
        return Err(Error::Corrupt(format!(
            "the header stored under {id} hashes to {}",
            entry.id()
        )));
    }
    if let Some(body) = entry.body()
        && BodyHash::of(body) != entry.header().body_hash
    {
        return Err(Error::Corrupt(format!(
            "the body of entry {id} does not match its hash"
        )));
    }
    Ok(entry)
}

pub(crate) fn id_from(bytes: &[u8]) -> Result<EntryId, Error> {
    let id: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a stored id is not 32 bytes".into()))?;
    Ok(EntryId(id))
}

/// A record key and its value, read back.
pub(crate) fn read_record<'a>(
    key: &[u8],
    record: &'a [u8],
) -> Result<(EntryId, layout::Record<'a>), Error> {
    match (layout::trailing_id(key), layout::Record::parse(record)) {
        (Some(id), Some(record)) => Ok((id, record)),
        _ => Err(Error::Corrupt("a record is malformed".into())),
    }
}

#[cfg(feature = "fuzzing")]
impl Store {
    /// Replaces the record of `id` with `record`, as damage on disk would: the fuzz target for
    /// records read back from disk writes what it likes here and then reads.
    pub fn damage_record(&self, id: &EntryId, record: &[u8]) -> Result<(), Error> {
        self.entries
            .insert(layout::entry_key(layout::RECORD, id), record)?;
        Ok(())
    }
}
