//! Key layout of the one sled tree that holds entries' records and their indexes.
//!
//! Everything about an entry but its frame (which is in the frame log) lives in one tree
//! under one-byte prefixes. An entry is written as
//! its frame and index keys first and its record (`e id` → created, frame) last: the record is
//! what makes the entry exist. Each group of writes is announced first in the intent key, so index
//! keys left without a record by a crash are found and removed when the store is next opened
//! (and readers skip any they meet meanwhile). Single inserts are used instead of
//! `sled::Batch` because sled's batches cost about twice as much per key (measured:
//! see `docs/performance.md`). Integers are big-endian so keys sort in numeric order;
//! variable-length parts end with a 0 byte (space names and tags cannot contain one); an index
//! key ends with the entry id so a scan yields ids directly.

use cairn_core::{Entry, EntryId, Kind, MemberId, OrgId, Timestamp};

use crate::frames::Pointer;

/// `e id` → created (u64), where the frame is in the frame log (offset and length, 12 bytes,
/// see `frames.rs`), then kind (u16), org (32 bytes) and each tag followed by a 0 byte (see
/// [`record_value`]): the record whose presence means the entry is stored. One read by id finds
/// the frame; the rest lets filters on kind, organisation and tag, and the per-organisation
/// counts, skip entries without loading them. Formats 3 to 5 kept the frame's place under a key
/// of its own ([`FORMAT_5_FRAME`]), which cost one sled insert more per entry; formats 1 and 2
/// kept the frame itself here.
pub const RECORD: u8 = b'e';
/// Formats 3 to 5 kept `d created id` → the frame's place in the log (format 5) or the frame
/// itself (3 and 4). Opening such a store moves each pointer into its record and removes
/// these keys. All entries by time are now the space indexes, merged (every entry is in at
/// least one space): each index key costs a sled insert on every write, and writes are what
/// bound ingest.
pub const FORMAT_5_FRAME: u8 = b'd';
/// `a author seq` → entry id: each author's chain.
pub const CHAIN: u8 = b'a';
/// Formats 1 to 3 kept `t created id` → the kind, organisation and tags now at the end of each
/// record; opening such a store moves each value into its record and removes these keys. All
/// entries by time are the space indexes now, merged.
pub const FORMAT_3_TIME: u8 = b't';
/// `s space 0 created id` → (): each space's entries, which sync lists at every round.
pub const SPACE: u8 = b's';
/// Format 1 kept `g tag 0 created id` and `o org created id` indexes; opening such a store
/// moves their information into the time index's values and removes them.
pub const FORMAT_1_TAG: u8 = b'g';
pub const FORMAT_1_ORG: u8 = b'o';
/// `r target created id` → reference kind (u16) and entry kind (u16): the entries that
/// reference `target` (replies, responses, typed links). Written only for entries with
/// references, so plain stories pay nothing for it.
pub const REFERS: u8 = b'r';
/// `v org member` → last valid seq (u64): the organisation revoked the member, and their
/// entries after that seq are refused (and removed if held).
pub const REVOKED: u8 = b'v';
/// `q author` → id of the author's newest profile entry.
pub const PROFILE: u8 = b'q';
/// `p ...` → this node's policy on organisations (see `policy.rs`).
pub const POLICY: u8 = b'p';
/// `z space 0 created id` → org: an entry refused by policy, so sync does not fetch it again.
pub const TOMBSTONE: u8 = b'z';
/// `f id` → frame of a second valid entry at an author and seq already held: a fork proof.
pub const FORK: u8 = b'f';
/// `x` → the ids of the entries being written now (an intent record). Written before their
/// keys, so after a crash `Store::open` knows which entries may have index keys without a
/// record, and removes those keys.
pub const INTENT: u8 = b'x';
/// `u id` → (): entries written here that have not yet reached any peer (the outbox).
pub const OUTBOX: u8 = b'u';
/// `w id` → `author seq`: a previous entry that a stored entry names but this store lacks.
pub const WANTED: u8 = b'w';

/// `k org seq` → a key event that extended the organisation's key log (see `key_logs.rs`).
pub const KEY_EVENT: u8 = b'k';
/// `K org seq` → the first other key event seen at a position already held: evidence that the
/// organisation signed two histories.
pub const DUPLICITY: u8 = b'K';

/// `prefix org seq`: where a key event of `org` is kept.
pub fn key_event_key(prefix: u8, org: &OrgId, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(41);
    key.push(prefix);
    key.extend_from_slice(org.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub fn entry_key(prefix: u8, id: &EntryId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

pub fn chain_prefix(author: &MemberId) -> Vec<u8> {
    let mut key = Vec::with_capacity(41);
    key.push(CHAIN);
    key.extend_from_slice(author.as_bytes());
    key
}

/// The author a chain key belongs to.
pub fn chain_author(key: &[u8]) -> Option<MemberId> {
    let author = key.strip_prefix(&[CHAIN])?.get(..32)?;
    Some(MemberId(author.try_into().ok()?))
}

pub fn chain_key(author: &MemberId, seq: u64) -> Vec<u8> {
    let mut key = chain_prefix(author);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of a time-ordered index: `prefix`, then the index value.
pub fn index_prefix(prefix: u8, value: &[u8], terminated: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + value.len() + 1 + 8 + 32);
    key.push(prefix);
    key.extend_from_slice(value);
    if terminated {
        key.push(0);
    }
    key
}

/// A full time-ordered index key.
pub fn index_key(
    prefix: u8,
    value: &[u8],
    terminated: bool,
    created: Timestamp,
    id: &EntryId,
) -> Vec<u8> {
    let mut key = index_prefix(prefix, value, terminated);
    key.extend_from_slice(&created.0.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// `d created id`: where formats 3 to 5 kept the entry's frame.
pub fn format_5_frame_key(created: Timestamp, id: &EntryId) -> Vec<u8> {
    index_key(FORMAT_5_FRAME, &[], false, created, id)
}

/// `s space 0 created id`: the entry's key in a space's index.
pub fn space_key(space: &str, created: Timestamp, id: &EntryId) -> Vec<u8> {
    index_key(SPACE, space.as_bytes(), true, created, id)
}

pub fn space_prefix(space: &str) -> Vec<u8> {
    index_prefix(SPACE, space.as_bytes(), true)
}

/// An entry's record: its creation time, where its frame is, then [`time_value`].
pub fn record_value(entry: &Entry, frame: Pointer) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + Pointer::LEN + 2 + 32 + 24);
    value.extend_from_slice(&entry.header().created.0.to_be_bytes());
    value.extend_from_slice(&frame.to_bytes());
    push_time_value(entry, &mut value);
    value
}

/// A record of format 5 (creation time, then the [`time_value`]) with the frame's place
/// inserted after the creation time, as format 6 has it.
pub fn format_5_record_with_frame(record: &[u8], frame: Pointer) -> Option<Vec<u8>> {
    let (created, value) = record.split_at_checked(8)?;
    Some([created, &frame.to_bytes()[..], value].concat())
}

/// The kind, organisation and tags of an entry (format 3 kept them under its time key).
pub fn time_value(entry: &Entry) -> Vec<u8> {
    let mut value = Vec::with_capacity(2 + 32 + 24);
    push_time_value(entry, &mut value);
    value
}

fn push_time_value(entry: &Entry, value: &mut Vec<u8>) {
    value.extend_from_slice(&entry.header().kind.0.to_be_bytes());
    value.extend_from_slice(entry.credential().claims().org.as_bytes());
    let body = entry.body().filter(|_| entry.header().kind.carries_story());
    if let Some(Ok(tags)) = body.map(cairn_core::Story::tags_of) {
        for tag in tags {
            value.extend_from_slice(tag.as_bytes());
            value.push(0);
        }
    }
}

/// The creation time at the start of a record (of format 3 or later).
pub fn record_created(record: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(record.get(..8)?.try_into().ok()?))
}

/// A record of format 6, read back.
pub struct Record<'a> {
    pub created: u64,
    pub frame: Pointer,
    pub value: TimeValue<'a>,
}

impl<'a> Record<'a> {
    /// `None` for a record too short to hold a creation time, a frame's place, a kind and an
    /// organisation.
    pub fn parse(record: &'a [u8]) -> Option<Self> {
        let value_start = 8 + Pointer::LEN;
        Some(Self {
            created: record_created(record)?,
            frame: Pointer::parse(record.get(8..value_start)?)?,
            value: TimeValue::parse(record.get(value_start..)?)?,
        })
    }
}

/// An entry's kind, organisation and tags, read back.
pub struct TimeValue<'a> {
    pub kind: Kind,
    pub org: OrgId,
    tags: &'a [u8],
}

impl<'a> TimeValue<'a> {
    /// `None` for a value too short to hold a kind and an organisation.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let kind = Kind(u16::from_be_bytes(value.get(..2)?.try_into().ok()?));
        let org = OrgId(value.get(2..34)?.try_into().ok()?);
        Some(Self {
            kind,
            org,
            tags: &value[34..],
        })
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags
            .split(|byte| *byte == 0)
            .any(|held| held == tag.as_bytes())
    }
}

/// `F author seq` → id of the one fork proof kept for that (author, seq).
pub const FORK_MARKER: u8 = b'F';

pub fn fork_marker_key(author: &MemberId, seq: u64) -> Vec<u8> {
    let mut key = chain_key(author, seq);
    key[0] = FORK_MARKER;
    key
}

pub fn profile_key(author: &MemberId) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(PROFILE);
    key.extend_from_slice(author.as_bytes());
    key
}

pub fn revocation_key(org: &OrgId, member: &MemberId) -> Vec<u8> {
    let mut key = Vec::with_capacity(65);
    key.push(REVOKED);
    key.extend_from_slice(org.as_bytes());
    key.extend_from_slice(member.as_bytes());
    key
}

pub fn refers_prefix(target: &EntryId) -> Vec<u8> {
    index_prefix(REFERS, target.as_bytes(), false)
}

/// The (created, id) after an index prefix.
pub fn created_and_id(rest: &[u8]) -> Option<(u64, EntryId)> {
    if rest.len() != 40 {
        return None;
    }
    let created = u64::from_be_bytes(rest[..8].try_into().ok()?);
    Some((created, trailing_id(rest)?))
}

/// The entry id at the end of any index key, or `None` if the key is too short.
pub fn trailing_id(key: &[u8]) -> Option<EntryId> {
    let start = key.len().checked_sub(32)?;
    let mut id = [0u8; 32];
    id.copy_from_slice(&key[start..]);
    Some(EntryId(id))
}
