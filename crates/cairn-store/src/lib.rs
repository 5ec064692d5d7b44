//! Cairn's entry store: a record of verified entries on sled, with indexes for reading them
//! back by time, author and sequence, space, kind, tag, organisation and reference.
//!
//! This is the only crate that names sled. It owns:
//! - [`Store`]: opening (never silently empty), validated insertion, reads and index scans,
//!   and the effects of retractions (bodies dropped) and revocations (later entries removed);
//! - `layout`: the key layout of the single tree that holds everything but frames;
//! - `frames`: the frame log, the file that holds every stored entry's frame;
//! - `policy`: this node's own policy on organisations (block, follow, quota) and the
//!   tombstones refused entries leave.
//!
//! Invariants:
//! - Every stored entry passed the full validation pipeline. Nothing is updated in place
//!   except a retracted entry's record, which is pointed at its frame without the body (its
//!   signed header stays).
//! - An entry's index keys are written before its record, under an intent key that `open`
//!   uses to repair an interrupted write; an insert is reported only after the flush.
//! - Each (author, seq) has at most one entry in the chain; a second valid entry there is kept
//!   aside as a fork proof and never replaces the first.
//! - Reads re-check each entry's id and body hash, so on-disk damage surfaces as
//!   [`Error::Corrupt`] instead of wrong data.

mod frames;
mod layout;
mod policy;
mod turns;

pub use policy::{Blocked, Policy};
pub use turns::{WriteLine, WriteTurn};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::{BodyHash, Entry, EntryId, Kind, MemberId, OrgId, RefKind, Timestamp, Verifier};

/// The format marker written at creation and checked at every open.
const FORMAT: &[u8] = b"cairn-store/6";
/// The fifth format, which kept where each frame is under a key of its own; opening one
/// migrates it.
const FORMAT_5: &[u8] = b"cairn-store/5";
/// The fourth format, which kept frames in the tree; opening one migrates it.
const FORMAT_4: &[u8] = b"cairn-store/4";
/// The third format, which had a time index of its own; opening one migrates it.
const FORMAT_3: &[u8] = b"cairn-store/3";
/// The first format, which had tag and organisation indexes; opening one migrates it.
const FORMAT_1: &[u8] = b"cairn-store/1";
/// The second, which kept each frame in its record; opening one migrates it.
const FORMAT_2: &[u8] = b"cairn-store/2";
const META_TREE: &str = "meta";
const ENTRIES_TREE: &str = "entries";
const FORMAT_KEY: &str = "format";
/// Meta key: the end of the frame log as last made durable (u64, big-endian).
const FRAMES_SYNCED_KEY: &str = "frames-synced";
/// Meta key present while a process has the store open: found at open, the last process did
/// not close it, so pointers past the synced end are checked.
const OPEN_KEY: &str = "open";
/// Batches smaller than this are verified on the calling thread.
const PARALLEL_THRESHOLD: usize = 32;
/// The most frames a verifier takes at once. Their signatures are checked in one batch, and
/// batches of this size cost about a third of checking each alone: `cargo bench -p cairn-core
/// --bench signatures`.
const VERIFY_CHUNK: usize = 256;
/// The most entries written under one intent record.
const WRITE_RUN: usize = 64;
/// Entries migrated at once: frames moved to the frame log between syncs (format 5), or
/// pointers moved into records in one atomic batch (format 6).
const MIGRATION_CHUNK: usize = 4_096;
/// Authors whose newest entry's key and credential [`Store::warm`] hands the verifier.
const WARM_AUTHORS: usize = 10_000;

/// What can go wrong in the store. Rejections of entries carry the core reason unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] cairn_core::Error),

    #[error("there is no Cairn store at {0}; run `cairn init` to create one")]
    Missing(PathBuf),

    #[error("{0} already exists; refusing to create a new store over it")]
    AlreadyExists(PathBuf),

    #[error(
        "{0} is not a Cairn store (its format marker is missing); it may be damaged or belong to something else: restore it from a backup"
    )]
    NotAStore(PathBuf),

    #[error(
        "the store at {path} has format {found:?}, which this build cannot read; upgrade Cairn"
    )]
    UnsupportedFormat { path: PathBuf, found: String },

    #[error(
        "the store at {0} is in use by another Cairn process; stop it (or use `cairn` through the running node) and try again"
    )]
    Locked(PathBuf),

    #[error(
        "could not open the store at {path}: {source}; if it is damaged, restore it from a backup"
    )]
    Open { path: PathBuf, source: sled::Error },

    #[error(
        "the store is damaged: {0}; restore it from a backup or fetch the entries again from a peer"
    )]
    Corrupt(String),

    #[error("store read or write failed: {0}; check free disk space and the store's permissions")]
    Storage(#[from] sled::Error),

    #[error(
        "could not read or write the frame log {path}: {source}; check free disk space and the store's permissions"
    )]
    FrameLog {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "the store's frame log {0} is missing, so its entries cannot be read; restore the whole store folder from a backup, or move the store folder aside and start afresh (`cairn init` in a new home), letting peers send the entries again"
    )]
    MissingFrameLog(PathBuf),

    #[error("no entry id starts with {0:?}; check the id with `cairn list`")]
    NotFound(String),

    #[error("{prefix:?} is the start of {count} entry ids; give more digits")]
    Ambiguous { prefix: String, count: usize },
}

/// Store settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Bytes of memory sled may use for its page cache (sled's own default is 1 GiB).
    pub cache_capacity: u64,
    /// How long to wait for another process to release the store before giving up.
    pub lock_wait: Duration,
    /// The most entries kept from any one organisation; more are refused.
    pub max_entries_per_org: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
            lock_wait: Duration::from_secs(5),
            max_entries_per_org: 1_000_000,
        }
    }
}

/// How an accepted entry was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Added to its author's chain and the indexes.
    Stored,
    /// Another entry already holds its author and seq: kept as a fork proof only.
    ForkProof,
    /// Stored without its body, because its author retracted it. Never relay it.
    Retracted,
}

/// A successful insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    pub id: EntryId,
    pub outcome: Outcome,
}

/// A fork proof: two valid entries by one author at one seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    pub author: MemberId,
    pub seq: u64,
    /// The entry in the chain.
    pub kept: EntryId,
    /// The conflicting entry, kept beside it.
    pub other: Entry,
}

/// A page of a space's entries in (created, id) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub frames: Vec<Vec<u8>>,
    /// Where to continue, if there is more.
    pub next: Option<(u64, EntryId)>,
}

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

/// The entry store. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    entries: sled::Tree,
    frames: frames::FrameLog,
    /// Set once the store is open and marked so (see [`OPEN_KEY`]).
    marked_open: std::sync::atomic::AtomicBool,
    /// Whether records say where their frames are (format 6). False only while an older store
    /// is opened and migrated, when the frame keys (`layout::FORMAT_5_FRAME`) say it.
    frames_in_records: std::sync::atomic::AtomicBool,
    /// Whether any fork proof may be held: set at open if one is, and before one is written.
    /// Until then the duplicate check of every new entry skips looking for one.
    may_hold_fork_proofs: std::sync::atomic::AtomicBool,
    verifier: Verifier,
    /// Serialises the chain checks and the writes, so two inserts for the same author and seq
    /// cannot both pass the fork check; holds each author's chain head as last written, so the
    /// common case (the next entry of a chain) needs no chain reads. Verification runs outside.
    write_lock: Mutex<Heads>,
    /// How many verifier threads a large batch gets.
    cores: usize,
    /// Each space's (created, id) items as last read, for sync's repeated reconciliation
    /// rounds; dropped whenever an entry of that space is written.
    space_items: Mutex<HashMap<String, SpaceItems>>,
    /// Held while a space's items are read from disk.
    listing: Mutex<()>,
    /// Counts entry writes, so a scan that raced a write is not cached.
    writes: std::sync::atomic::AtomicU64,
    /// (target, retraction's author) of every retraction held here. A retraction takes
    /// effect only on its author's own entry, so a stranger's cannot undo or fake one.
    /// Loaded at open; retractions are rare.
    retracted: Mutex<HashSet<(EntryId, MemberId)>>,
    /// This node's policy on organisations, and per-organisation counts for the quota.
    policy: Mutex<policy::PolicyState>,
    /// (org, member) → last valid seq, for every revocation held. Loaded at open.
    revocations: Mutex<HashMap<(OrgId, MemberId), u64>>,
}

impl Store {
    /// Creates a new, empty store at `path`, which must not exist yet (or be an empty folder).
    pub fn create(path: &Path, config: Config) -> Result<Self, Error> {
        let occupied =
            path.exists() && std::fs::read_dir(path).map_or(true, |mut dir| dir.next().is_some());
        if occupied {
            return Err(Error::AlreadyExists(path.to_path_buf()));
        }
        let db = open_db(path, config)?;
        let frames = frames::FrameLog::open(path, true)?;
        db.open_tree(META_TREE)?.insert(FORMAT_KEY, FORMAT)?;
        db.flush()?;
        let store = Self::from_db(path, db, frames, true)?;
        store.load(config.max_entries_per_org)?;
        store.mark_open()?;
        Ok(store)
    }

    /// Opens an existing store. A missing, foreign or damaged store is an error, never a fresh
    /// empty one.
    pub fn open(path: &Path, config: Config) -> Result<Self, Error> {
        if !path.join("db").exists() && !path.join("conf").exists() {
            return Err(Error::Missing(path.to_path_buf()));
        }
        let db = open_db(path, config)?;
        let meta = db.open_tree(META_TREE)?;
        let format = meta.get(FORMAT_KEY)?;
        match format.as_deref() {
            None => Err(Error::NotAStore(path.to_path_buf())),
            Some(found)
                if [FORMAT, FORMAT_5, FORMAT_4, FORMAT_3, FORMAT_2, FORMAT_1].contains(&found) =>
            {
                // Formats before 5 get their frame log as they are migrated.
                let has_frame_log = found == FORMAT || found == FORMAT_5;
                let frames = frames::FrameLog::open(path, !has_frame_log)?;
                // Read before anything here flushes, which would record a new synced end.
                let closed_cleanly = meta.get(OPEN_KEY)?.is_none();
                let synced = frames_synced(&meta)?;
                let store = Self::from_db(path, db, frames, found == FORMAT)?;
                // Before anything reads frames (the in-memory loads do): a frame lost in a
                // power cut must not stop the store opening.
                if has_frame_log && !closed_cleanly {
                    store.check_unsynced_frames(synced)?;
                }
                store.repair()?;
                // Each step marks the format it reached, so an interrupted migration resumes
                // at the step it was in.
                if found == FORMAT_1 || found == FORMAT_2 {
                    store.move_frames_out_of_records()?;
                    if found == FORMAT_1 {
                        store.migrate_from_format_1()?;
                    }
                    meta.insert(FORMAT_KEY, FORMAT_3)?;
                    store.flush()?;
                }
                if found != FORMAT && found != FORMAT_4 {
                    store.move_time_values_into_records()?;
                    meta.insert(FORMAT_KEY, FORMAT_4)?;
                    store.flush()?;
                }
                if !has_frame_log {
                    store.move_frames_into_log()?;
                    meta.insert(FORMAT_KEY, FORMAT_5)?;
                    store.flush()?;
                }
                if found != FORMAT {
                    store.move_frame_pointers_into_records()?;
                    meta.insert(FORMAT_KEY, FORMAT)?;
                    store.flush()?;
                }
                store.load(config.max_entries_per_org)?;
                store.mark_open()?;
                Ok(store)
            }
            Some(found) => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                found: String::from_utf8_lossy(found).into_owned(),
            }),
        }
    }

    /// Formats 1 and 2 → 3: each record's frame moves to its own key by time, and the record
    /// keeps the creation time that finds it. Safe to run again if interrupted: records already
    /// moved hold 8 bytes (no frame is that short), and the format marker changes only at the
    /// end.
    fn move_frames_out_of_records(&self) -> Result<(), Error> {
        note_repair("moving the store's entries to format 3 (once)");
        for item in self.entries.scan_prefix([layout::RECORD]) {
            let (key, frame) = item?;
            if frame.len() == 8 {
                continue;
            }
            let entry = Entry::decode(&frame)
                .map_err(|err| Error::Corrupt(format!("a stored entry does not decode: {err}")))?;
            let created = entry.header().created;
            self.entries
                .insert(layout::format_5_frame_key(created, &entry.id()), frame)?;
            self.entries.insert(key, &created.0.to_be_bytes()[..])?;
        }
        Ok(())
    }

    /// Format 4 → 5: each frame moves from the tree to the frame log, and its key keeps where
    /// it is. Safe to run again if interrupted: a value that is a pointer has moved (no frame
    /// is as short as a pointer), and pointers are written only once their frames are durable.
    fn move_frames_into_log(&self) -> Result<(), Error> {
        note_repair("moving the store's frames into the frame log, format 5 (once)");
        let mut moved = Vec::with_capacity(MIGRATION_CHUNK);
        for item in self.entries.scan_prefix([layout::FORMAT_5_FRAME]) {
            let (key, value) = item?;
            if frames::Pointer::parse(&value).is_some() {
                continue;
            }
            moved.push((key, self.frames.append(&value)?));
            if moved.len() == MIGRATION_CHUNK {
                self.point_at_moved_frames(&mut moved)?;
            }
        }
        self.point_at_moved_frames(&mut moved)
    }

    /// Format 5 → 6: each frame key's pointer moves into the entry's record, and the key goes,
    /// both in one atomic sled batch (of up to [`MIGRATION_CHUNK`] entries), so a record holds
    /// a pointer exactly when its frame key is gone. Safe to run again if interrupted: the
    /// frame keys left are the records left.
    fn move_frame_pointers_into_records(&self) -> Result<(), Error> {
        note_repair("moving where each frame is into its record, format 6 (once)");
        // Every frame durable and recorded as such first: then a power cut during the move
        // leaves no pointer past the synced end, and the next open's check, which in a store
        // still marked format 5 reads only the frame keys, misses nothing.
        self.flush()?;
        let mut batch = sled::Batch::default();
        let mut batched = 0;
        for item in self.entries.scan_prefix([layout::FORMAT_5_FRAME]) {
            let (key, value) = item?;
            let (id, pointer) = read_frame_key(&key, &value)?;
            let record_key = layout::entry_key(layout::RECORD, &id);
            // A frame key without a record was left by an interrupted write: it just goes.
            if let Some(record) = self.entries.get(&record_key)? {
                let record = layout::format_5_record_with_frame(&record, pointer)
                    .ok_or_else(|| Error::Corrupt(format!("the record of {id} is malformed")))?;
                batch.insert(record_key, record);
            }
            batch.remove(key);
            batched += 1;
            if batched == MIGRATION_CHUNK {
                self.entries.apply_batch(std::mem::take(&mut batch))?;
                batched = 0;
            }
        }
        self.entries.apply_batch(batch)?;
        self.frames_in_records
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn point_at_moved_frames(
        &self,
        moved: &mut Vec<(sled::IVec, frames::Pointer)>,
    ) -> Result<(), Error> {
        self.frames.sync()?;
        for (key, pointer) in moved.drain(..) {
            self.entries.insert(key, &pointer.to_bytes()[..])?;
        }
        Ok(())
    }

    /// After the last process to open the store did not close it: frames appended after the
    /// last sync may not have reached the disk (a power cut), while sled may have kept keys
    /// that point at them. Each pointer past the synced end is read back, and an entry whose
    /// frame is missing or wrong is removed, to be fetched again from a peer.
    ///
    /// Runs before `repair`, and leaves the removed entries named in the intent key, so that
    /// `repair` finishes the removal (and a crash during it is repaired at the next open).
    fn check_unsynced_frames(&self, synced: u64) -> Result<(), Error> {
        let mut damaged = HashSet::new();
        let mut check = |id: EntryId, pointer: frames::Pointer| -> Result<(), Error> {
            if pointer.end() <= synced {
                return Ok(());
            }
            // The whole frame is checked: header (its id) and body (its hash).
            let intact = match self.frames.read(pointer) {
                Ok(frame) => decode_checked(&id, &frame).is_ok(),
                Err(Error::Corrupt(_)) => false,
                Err(err) => return Err(err),
            };
            if !intact {
                damaged.insert(id);
            }
            Ok(())
        };
        if self.frames_in_records() {
            for item in self.entries.scan_prefix([layout::RECORD]) {
                let (key, record) = item?;
                let (id, record) = read_record(&key, &record)?;
                check(id, record.frame)?;
            }
        } else {
            for item in self.entries.scan_prefix([layout::FORMAT_5_FRAME]) {
                let (key, value) = item?;
                let (id, pointer) = read_frame_key(&key, &value)?;
                check(id, pointer)?;
            }
        }
        if !damaged.is_empty() {
            note_repair(&format!(
                "removing {} entries whose frames were lost when the store was last shut down uncleanly; they will be fetched again from peers",
                damaged.len()
            ));
            // Their records go, and `repair` then removes the rest of their keys.
            self.extend_intent(damaged.iter().copied())?;
            for id in &damaged {
                self.entries.remove(layout::entry_key(layout::RECORD, id))?;
            }
        }
        Ok(())
    }

    /// Notes that a process has the store open (see [`OPEN_KEY`]). Only a store that got this
    /// far clears the mark when dropped.
    fn mark_open(&self) -> Result<(), Error> {
        self.meta.insert(OPEN_KEY, &[][..])?;
        self.db.flush()?;
        self.marked_open
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Format 3 → 4: each time key's value (kind, organisation and tags) moves to the end of
    /// the entry's record, and the time key goes. Safe to run again if interrupted: a record
    /// is rebuilt from its time key each time, and the key is removed only after.
    fn move_time_values_into_records(&self) -> Result<(), Error> {
        note_repair("moving the store's time index into its records, format 4 (once)");
        for item in self.entries.scan_prefix([layout::FORMAT_3_TIME]) {
            let (key, value) = item?;
            let (created, id) = layout::created_and_id(&key[1..])
                .ok_or_else(|| Error::Corrupt("a time index key is malformed".into()))?;
            let record_key = layout::entry_key(layout::RECORD, &id);
            // A time key without a record was left by an interrupted write: it just goes.
            if self.entries.contains_key(&record_key)? {
                let mut record = created.to_be_bytes().to_vec();
                record.extend_from_slice(&value);
                self.entries.insert(record_key, record)?;
            }
            self.entries.remove(key)?;
        }
        Ok(())
    }

    /// Format 1 → 2: each time key's value gains the entry's organisation and tags, and the
    /// separate tag and organisation indexes go. Safe to run again if interrupted: values
    /// already rewritten are left alone, and the format marker changes only at the end.
    fn migrate_from_format_1(&self) -> Result<(), Error> {
        note_repair("upgrading the store's indexes to format 2 (once)");
        for item in self.entries.scan_prefix([layout::FORMAT_3_TIME]) {
            let (key, value) = item?;
            if layout::TimeValue::parse(&value).is_some() {
                continue;
            }
            let id = layout::trailing_id(&key)
                .ok_or_else(|| Error::Corrupt("a time index key is too short".into()))?;
            match self.get(&id)? {
                Some(entry) => {
                    self.entries.insert(key, layout::time_value(&entry))?;
                }
                None => {
                    self.entries.remove(key)?;
                }
            }
        }
        for prefix in [layout::FORMAT_1_TAG, layout::FORMAT_1_ORG] {
            for key in self.entries.scan_prefix([prefix]).keys() {
                self.entries.remove(key?)?;
            }
        }
        Ok(())
    }

    /// Removes index keys of entries whose writing a crash interrupted (named in the intent
    /// key but without a record). Scans the indexes only when there is something to repair.
    fn repair(&self) -> Result<(), Error> {
        let Some(intent) = self.entries.get([layout::INTENT])? else {
            return Ok(());
        };
        let mut unfinished = HashSet::new();
        for chunk in intent.chunks_exact(32) {
            let id = id_from(chunk)?;
            // A finished write left a record, or a fork proof (which has index keys too).
            if !self.contains(&id)? {
                unfinished.insert(id);
            }
        }
        // The common case: the last writes all finished. Opening then writes nothing.
        if unfinished.is_empty() {
            return Ok(());
        }
        note_repair(&format!(
            "repairing the index keys of {} entries whose writing was interrupted",
            unfinished.len()
        ));
        // Time keys only in a store of format 3 or earlier, and frame keys only in one of
        // format 5 or earlier, which is repaired before it is migrated.
        let prefixes = [
            layout::FORMAT_3_TIME,
            layout::SPACE,
            layout::REFERS,
            layout::FORMAT_5_FRAME,
        ];
        for prefix in prefixes {
            for key in self.entries.scan_prefix([prefix]).keys() {
                let key = key?;
                if layout::trailing_id(&key).is_some_and(|id| unfinished.contains(&id)) {
                    self.entries.remove(key)?;
                }
            }
        }
        for item in self.entries.scan_prefix([layout::CHAIN]) {
            let (key, value) = item?;
            if id_from(&value).is_ok_and(|id| unfinished.contains(&id)) {
                self.entries.remove(key)?;
            }
        }
        self.entries.remove([layout::INTENT])?;
        self.flush()
    }

    /// `frames_in_records` is false for a store of format 5 or earlier until it is migrated.
    fn from_db(
        path: &Path,
        db: sled::Db,
        frames: frames::FrameLog,
        frames_in_records: bool,
    ) -> Result<Self, Error> {
        let entries = db.open_tree(ENTRIES_TREE)?;
        let meta = db.open_tree(META_TREE)?;
        let store = Self {
            path: path.to_path_buf(),
            db,
            meta,
            entries,
            frames,
            marked_open: std::sync::atomic::AtomicBool::new(false),
            frames_in_records: std::sync::atomic::AtomicBool::new(frames_in_records),
            may_hold_fork_proofs: std::sync::atomic::AtomicBool::new(true),
            verifier: Verifier::new(),
            write_lock: Mutex::new(Heads::default()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            space_items: Mutex::new(HashMap::new()),
            listing: Mutex::new(()),
            writes: std::sync::atomic::AtomicU64::new(0),
            retracted: Mutex::new(HashSet::new()),
            policy: Mutex::new(policy::PolicyState::default()),
            revocations: Mutex::new(HashMap::new()),
        };
        Ok(store)
    }

    /// Reads what the store keeps in memory: retractions, revocations and the policy. After
    /// any repair and migration, as it reads entries.
    fn load(&self, max_entries_per_org: u64) -> Result<(), Error> {
        let holds_fork_proofs = self.entries.scan_prefix([layout::FORK]).next().is_some();
        self.may_hold_fork_proofs
            .store(holds_fork_proofs, std::sync::atomic::Ordering::SeqCst);
        self.load_retractions()?;
        self.load_revocations()?;
        self.load_policy(max_entries_per_org)
    }

    /// Reads every held retraction into the in-memory map (one pass over the reference index).
    fn load_retractions(&self) -> Result<(), Error> {
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Validates and stores one entry frame; returns once it is on disk.
    pub fn insert(&self, frame: &[u8], now: Timestamp) -> Result<Inserted, Error> {
        let mut results = self.insert_batch(&[frame], now)?;
        results
            .pop()
            .unwrap_or_else(|| Err(Error::Corrupt("insert produced no result".into())))
    }

    /// Validates and stores a batch of frames with one flush. The outer error is a storage
    /// failure (nothing in the batch is acknowledged); each inner result says what happened to
    /// that frame, in order.
    ///
    /// In a large batch, verifier threads (one per core) take chunks of frames and decode,
    /// check and verify them, the signatures of a chunk in one batch, while this thread
    /// writes the verified ones in batch order as soon as they are ready: the cores verify
    /// while sled writes.
    pub fn insert_batch<F: AsRef<[u8]> + Sync>(
        &self,
        frames: &[F],
        now: Timestamp,
    ) -> Result<Vec<Result<Inserted, Error>>, Error> {
        let results = self.insert_batch_unflushed(frames, now)?;
        self.flush()?;
        Ok(results)
    }

    /// [`Store::insert_batch`] without the flush, for entries nobody is waiting on (a sync's
    /// fetched batches): they reach the disk with sled's own periodic flush or the next
    /// [`Store::flush`]. A crash before then loses only them, and they are fetched again.
    pub fn insert_batch_unflushed<F: AsRef<[u8]> + Sync>(
        &self,
        frames: &[F],
        now: Timestamp,
    ) -> Result<Vec<Result<Inserted, Error>>, Error> {
        self.insert_batch_in_turn(frames, now, WriteTurn::alone())
    }

    /// [`Store::insert_batch_unflushed`] for one of a line of batches (see [`WriteLine`]): the
    /// frames are checked once the batch with the turn before has been checked, and written
    /// once every batch with an earlier turn has finished. A sync stores its pages so, each
    /// checked while the one before is written.
    pub fn insert_batch_in_turn<F: AsRef<[u8]> + Sync>(
        &self,
        frames: &[F],
        now: Timestamp,
        turn: WriteTurn,
    ) -> Result<Vec<Result<Inserted, Error>>, Error> {
        let mut batch = BatchWrite::new(frames.len(), turn);
        let checking = batch.turn.start_checking();
        if frames.len() < PARALLEL_THRESHOLD || self.cores < 2 {
            let _checking = checking;
            for (index, chunk) in frames.chunks(VERIFY_CHUNK).enumerate() {
                let mut prepared = (index * VERIFY_CHUNK..)
                    .zip(self.prepare(chunk, now)?)
                    .peekable();
                while prepared.peek().is_some() {
                    let run = prepared.by_ref().take(WRITE_RUN).collect();
                    self.write_run(frames, run, &mut batch)?;
                }
            }
        } else {
            self.verify_while_writing(frames, now, &mut batch, checking)?;
        }
        self.write_deferred(frames, &mut batch)?;
        // Even a batch that wrote nothing ends its turn after the turns before it.
        batch.turn.wait();
        Ok(batch
            .results
            .into_iter()
            .map(|result| {
                result
                    .unwrap_or_else(|| Err(Error::Corrupt("an insert slot was left empty".into())))
            })
            .collect())
    }

    /// Everything before the write that needs no lock, cheapest first: size and decoding, the
    /// duplicate check by id, then the checks and signatures (in one batch). The outer error
    /// is a storage failure.
    fn prepare<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        now: Timestamp,
    ) -> Result<Vec<Prepared>, Error> {
        let mut prepared = Vec::with_capacity(frames.len());
        for frame in frames {
            prepared.push(match Entry::decode(frame.as_ref()) {
                Ok(entry) if self.contains(&entry.id())? => {
                    Err(cairn_core::Error::Duplicate(entry.id()).into())
                }
                Ok(entry) => Ok(entry),
                Err(err) => Err(err.into()),
            });
        }
        let decoded: Vec<&Entry> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let verdicts = self.verifier.verify_many(&decoded, now);
        for (entry, verdict) in prepared.iter_mut().filter(|p| p.is_ok()).zip(verdicts) {
            match verdict {
                // The body check runs last, so everything else about this entry is valid;
                // whether it may lack its body (a retraction) is decided when writing.
                Ok(()) | Err(cairn_core::Error::BodyMissing) => {}
                Err(err) => *entry = Err(err.into()),
            }
        }
        Ok(prepared)
    }

    /// The parallel path of [`Store::insert_batch`]: verifier threads feed this thread, which
    /// writes each run of consecutive ready frames under one intent record.
    fn verify_while_writing<F: AsRef<[u8]> + Sync>(
        &self,
        frames: &[F],
        now: Timestamp,
        batch: &mut BatchWrite,
        checking: turns::Checking,
    ) -> Result<(), Error> {
        let chunks = verify_chunks(frames.len(), self.cores);
        let next_chunk = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            // Sized for the whole batch, so a verifier never blocks on a slow writer. Created
            // in here so that an early return drops the receiver and the verifiers stop.
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(frames.len());
            for _ in 0..self.cores {
                let (ready_tx, next_chunk, chunks) = (ready_tx.clone(), &next_chunk, &chunks);
                let checking = checking.clone();
                scope.spawn(move || {
                    let _checking = checking;
                    loop {
                        let index = next_chunk.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(range) = chunks.get(index) else {
                            break;
                        };
                        let (first, chunk) = (range.start, &frames[range.clone()]);
                        let sent = match self.prepare(chunk, now) {
                            Ok(prepared) => (first..)
                                .zip(prepared)
                                .all(|ready| ready_tx.send((ready.0, Ok(ready.1))).is_ok()),
                            Err(err) => ready_tx.send((first, Err(err))).is_ok(),
                        };
                        // The writer stopped on a storage error: nothing more to do.
                        if !sent {
                            break;
                        }
                    }
                });
            }
            drop((ready_tx, checking));
            let mut pending: Vec<Option<Prepared>> = (0..frames.len()).map(|_| None).collect();
            let mut next_slot = 0;
            while next_slot < frames.len() {
                // Wait for the next frame in order, then take whatever else is ready.
                while pending[next_slot].is_none() {
                    // Every verifier sends a result for each frame it takes, unless it panicked
                    // (which the scope then surfaces).
                    let Ok((slot, prepared)) = ready_rx.recv() else {
                        return Err(Error::Corrupt("a verifier thread stopped early".into()));
                    };
                    pending[slot] = Some(prepared?);
                }
                while let Ok((slot, prepared)) = ready_rx.try_recv() {
                    pending[slot] = Some(prepared?);
                }
                let mut run = Vec::with_capacity(WRITE_RUN);
                while run.len() < WRITE_RUN
                    && let Some(prepared) = pending.get_mut(next_slot).and_then(Option::take)
                {
                    run.push((next_slot, prepared));
                    next_slot += 1;
                }
                self.write_run(frames, run, batch)?;
            }
            Ok(())
        })
    }

    /// Writes a run of prepared frames in order under one intent record, then their frames to
    /// the frame log's file in one write. Body-less entries wait for the end of the batch: a
    /// retraction later in it may allow them.
    fn write_run<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        run: Vec<(usize, Prepared)>,
        batch: &mut BatchWrite,
    ) -> Result<(), Error> {
        batch.turn.wait();
        let mut heads = lock(&self.write_lock);
        self.announce(
            run.iter()
                .filter_map(|(_, prepared)| prepared.as_ref().ok()),
        )?;
        for (slot, prepared) in run {
            let entry = match prepared {
                Ok(entry) => entry,
                Err(err) => {
                    batch.results[slot] = Some(Err(err));
                    continue;
                }
            };
            if !batch.written.insert(entry.id()) {
                batch.results[slot] = Some(Err(cairn_core::Error::Duplicate(entry.id()).into()));
                continue;
            }
            if entry.body().is_none() && !self.withdrawn(&entry) {
                batch.deferred.push((slot, entry));
                continue;
            }
            batch.results[slot] = Some(self.write(&entry, frames[slot].as_ref(), &mut heads));
        }
        self.frames.write_out()
    }

    /// Adds ids to those the intent key already names.
    fn extend_intent(&self, ids: impl Iterator<Item = EntryId>) -> Result<(), Error> {
        let mut intent = self
            .entries
            .get([layout::INTENT])?
            .map(|held| held.to_vec())
            .unwrap_or_default();
        intent.extend(ids.flat_map(|id| *id.as_bytes()));
        self.entries.insert([layout::INTENT], intent)?;
        Ok(())
    }

    /// Names the entries about to be written in the intent key (see `layout::INTENT`).
    fn announce<'a>(&self, entries: impl Iterator<Item = &'a Entry>) -> Result<(), Error> {
        let intent: Vec<u8> = entries.flat_map(|entry| *entry.id().as_bytes()).collect();
        if !intent.is_empty() {
            self.entries.insert([layout::INTENT], intent)?;
        }
        Ok(())
    }

    /// The body-less entries of a batch, once every retraction in it is stored.
    fn write_deferred<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        batch: &mut BatchWrite,
    ) -> Result<(), Error> {
        if batch.deferred.is_empty() {
            return Ok(());
        }
        batch.turn.wait();
        let mut heads = lock(&self.write_lock);
        self.announce(batch.deferred.iter().map(|(_, entry)| entry))?;
        for (slot, entry) in std::mem::take(&mut batch.deferred) {
            batch.results[slot] = Some(self.write(&entry, frames[slot].as_ref(), &mut heads));
        }
        self.frames.write_out()
    }

    /// Chain checks for a verified entry, then its index keys, then its record. `frame` is the
    /// frame it was decoded from (decoding accepts only the one encoding of an entry, so it is
    /// stored as it came rather than encoded again). The caller flushes.
    fn write(&self, entry: &Entry, frame: &[u8], heads: &mut Heads) -> Result<Inserted, Error> {
        let header = entry.header();
        let (author, seq, id) = (header.author, header.seq, entry.id());
        // Only a retracted entry may come without its body.
        if entry.body().is_none() && !self.withdrawn(entry) {
            return Err(cairn_core::Error::BodyMissing.into());
        }
        let org = entry.credential().claims().org;
        if let Some(refusal) = self.refusal(&org)? {
            self.tombstone(entry)?;
            return Err(refusal.into());
        }
        if let Some(last_valid_seq) = self.revoked_after(&org, &author)?
            && seq > last_valid_seq
        {
            return Err(cairn_core::Error::Revoked {
                member: author,
                last_valid_seq,
            }
            .into());
        }
        let head = match heads.get(&author) {
            Some(head) => head,
            None => self.chain_head(&author)?,
        };
        let extends_head = match head {
            None => seq == 1,
            Some((head_seq, head_id)) => seq == head_seq + 1 && header.prev == Some(head_id),
        };
        let inserted = if extends_head {
            // Nothing is held at or after seq, and prev is the head: no chain reads needed.
            self.write_indexes_and_record(entry, frame, None)?
        } else {
            self.write_out_of_order(entry, frame)?
        };
        let new_head = match head {
            Some((head_seq, _)) if inserted.outcome == Outcome::ForkProof || seq <= head_seq => {
                head
            }
            _ => Some((seq, id)),
        };
        heads.insert(author, new_head);
        if header.kind == Kind::REVOKE
            && let Some(Ok(revocation)) = entry.body().map(cairn_core::Revocation::decode)
        {
            // Its later entries may have been removed: read that chain's head afresh.
            heads.forget(&revocation.member);
        }
        Ok(inserted)
    }

    /// Chain checks against the store for an entry that does not simply extend its chain.
    fn write_out_of_order(&self, entry: &Entry, frame: &[u8]) -> Result<Inserted, Error> {
        let header = entry.header();
        let (author, seq, id) = (header.author, header.seq, entry.id());
        if let Some(held) = self.chain_lookup(&author, seq)? {
            if held == id {
                // Stored by a concurrent batch since this one checked for duplicates.
                return Err(cairn_core::Error::Duplicate(id).into());
            }
            // One proof per (author, seq) is enough; more would only fill the disk.
            let marker = layout::fork_marker_key(&author, seq);
            if self.entries.contains_key(&marker)? {
                return Err(cairn_core::Error::Duplicate(id).into());
            }
            self.may_hold_fork_proofs
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.entries.insert(marker, &id.as_bytes()[..])?;
            // The proof goes in its spaces' indexes too, so catch-up sync passes it on.
            for space in &header.spaces {
                self.entries.insert(
                    layout::space_key(space.as_str(), header.created, &id),
                    &[][..],
                )?;
            }
            let frame = if self.withdrawn(entry) {
                cairn_core::entry::frame(entry.signed_header(), None)
            } else {
                frame.to_vec()
            };
            self.entries
                .insert(layout::entry_key(layout::FORK, &id), frame)?;
            self.forget_space_items(&header.spaces);
            return Ok(Inserted {
                id,
                outcome: Outcome::ForkProof,
            });
        }
        let mut wanted_prev = None;
        if let Some(prev) = header.prev {
            match self.chain_lookup(&author, seq - 1)? {
                Some(held) if held != prev => {
                    return Err(cairn_core::Error::ChainConflict {
                        seq,
                        claimed: prev,
                        held,
                        held_seq: seq - 1,
                    }
                    .into());
                }
                Some(_) => {}
                None => wanted_prev = Some(prev),
            }
        }
        if let Some(next) = self.chain_lookup(&author, seq + 1)? {
            let next_prev = self.get(&next)?.and_then(|next| next.header().prev);
            if next_prev != Some(id) {
                return Err(cairn_core::Error::ChainConflict {
                    seq: seq + 1,
                    claimed: next_prev.unwrap_or(id),
                    held: id,
                    held_seq: seq,
                }
                .into());
            }
        }

        let inserted = self.write_indexes_and_record(entry, frame, wanted_prev)?;
        // Someone may have named this entry as their missing predecessor.
        let wanted_key = layout::entry_key(layout::WANTED, &id);
        if self.entries.contains_key(&wanted_key)? {
            self.entries.remove(wanted_key)?;
        }
        Ok(inserted)
    }

    /// Writes the index keys, then the record that makes the entry exist.
    fn write_indexes_and_record(
        &self,
        entry: &Entry,
        frame: &[u8],
        wanted_prev: Option<EntryId>,
    ) -> Result<Inserted, Error> {
        let header = entry.header();
        let (author, seq, id) = (header.author, header.seq, entry.id());
        let created = header.created;
        let org = entry.credential().claims().org;
        for space in &header.spaces {
            self.entries
                .insert(layout::space_key(space.as_str(), created, &id), &[][..])?;
        }
        for reference in &header.refs {
            let mut value = [0u8; 4];
            value[..2].copy_from_slice(&reference.kind.0.to_be_bytes());
            value[2..].copy_from_slice(&header.kind.0.to_be_bytes());
            self.entries.insert(
                layout::index_key(
                    layout::REFERS,
                    reference.target.as_bytes(),
                    false,
                    created,
                    &id,
                ),
                &value[..],
            )?;
        }
        self.entries
            .insert(layout::chain_key(&author, seq), &id.as_bytes()[..])?;
        if let Some(prev) = wanted_prev {
            self.entries.insert(
                layout::entry_key(layout::WANTED, &prev),
                layout::chain_key(&author, seq),
            )?;
        }
        if header.kind == Kind::RETRACT {
            self.apply_retraction(entry)?;
        }
        if header.kind == Kind::REVOKE {
            self.apply_revocation(entry)?;
        }
        if header.kind == Kind::PROFILE {
            let key = layout::profile_key(&author);
            let newer = match self.entries.get(&key)? {
                Some(held) => self
                    .get(&id_from(&held)?)?
                    .is_none_or(|held| held.header().created <= created),
                None => true,
            };
            if newer {
                self.entries.insert(key, &id.as_bytes()[..])?;
            }
        }
        // Last: the record that makes the entry exist. A retracted entry keeps only its
        // signed header.
        let retracted = self.withdrawn(entry);
        if retracted {
            lock(&self.retracted).insert((id, author));
        }
        let header_only;
        let frame = if retracted {
            header_only = cairn_core::entry::frame(entry.signed_header(), None);
            &header_only[..]
        } else {
            frame
        };
        let pointer = self.frames.append(frame)?;
        self.entries.insert(
            layout::entry_key(layout::RECORD, &id),
            layout::record_value(entry, pointer),
        )?;
        self.forget_space_items(&header.spaces);
        self.count_org_entry(&org, created.0, id);
        Ok(Inserted {
            id,
            outcome: if retracted {
                Outcome::Retracted
            } else {
                Outcome::Stored
            },
        })
    }

    /// The last valid seq of `member` if `org` revoked them.
    pub fn revoked_after(&self, org: &OrgId, member: &MemberId) -> Result<Option<u64>, Error> {
        Ok(lock(&self.revocations).get(&(*org, *member)).copied())
    }

    /// Reads every revocation into memory (they are few), so writes check them without a read.
    fn load_revocations(&self) -> Result<(), Error> {
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
    fn apply_revocation(&self, revocation_entry: &Entry) -> Result<(), Error> {
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
    fn remove_entries(&self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        // Added to the intent of the writes in progress, which may still name entries of
        // this batch that are not written yet.
        self.extend_intent(entries.iter().map(Entry::id))?;
        for entry in entries {
            let header = entry.header();
            let id = entry.id();
            self.uncount_org_entry(&entry.credential().claims().org, header.created.0, id);
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
    fn apply_retraction(&self, retraction: &Entry) -> Result<(), Error> {
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
    fn withdrawn(&self, entry: &Entry) -> bool {
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

    /// Drops every cached item list.
    fn forget_all_space_items(&self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        lock(&self.space_items).clear();
    }

    /// Drops the cached item lists of spaces that just gained an entry.
    fn forget_space_items(&self, spaces: &[cairn_core::Space]) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut cache = lock(&self.space_items);
        for space in spaces {
            cache.remove(space.as_str());
        }
    }

    /// Where the frame stored under an id is: the entry's record, or else a fork proof.
    fn frame_at(&self, id: &EntryId) -> Result<Option<FrameAt>, Error> {
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
    fn read_frames_at(&self, located: Vec<FrameAt>) -> Result<Vec<Vec<u8>>, Error> {
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

    fn frames_in_records(&self) -> bool {
        self.frames_in_records
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The id in the author's chain at `seq`, if that entry's record exists. A chain key whose
    /// record is missing was left by a crash mid-write and does not count.
    fn chain_lookup(&self, author: &MemberId, seq: u64) -> Result<Option<EntryId>, Error> {
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

    /// Up to `limit` organisations with entries here, by id, each with its newest entry.
    pub fn orgs(&self, limit: usize) -> Result<Vec<(OrgId, Entry)>, Error> {
        let mut newest: Vec<(OrgId, EntryId)> = self.read_org_stats(|orgs| {
            orgs.iter()
                .map(|(org, stats)| (*org, stats.newest.1))
                .collect()
        })?;
        newest.sort_unstable();
        let mut found = Vec::with_capacity(newest.len().min(limit));
        for (org, id) in newest.into_iter().take(limit) {
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

    /// Removes the fork proofs that `matches` selects, with their space index keys.
    fn remove_forks(&self, matches: impl Fn(&Entry) -> bool) -> Result<(), Error> {
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
        if self.writes.load(std::sync::atomic::Ordering::SeqCst) == writes_before {
            // Bounded: a node joins a handful of spaces; start over if that ever changes.
            if cache.len() >= 64 {
                cache.clear();
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

    /// Stores an entry written on this node and marks it as not yet shared, with one flush
    /// for both. A crash before the flush loses both or, at worst, the mark alone: the entry
    /// then reaches peers by their next sync instead of by gossip.
    pub fn insert_own(&self, frame: &[u8], now: Timestamp) -> Result<Inserted, Error> {
        let inserted = self
            .insert_batch_unflushed(&[frame], now)?
            .pop()
            .unwrap_or_else(|| Err(Error::Corrupt("insert produced no result".into())))?;
        self.entries
            .insert(layout::entry_key(layout::OUTBOX, &inserted.id), &[][..])?;
        self.flush()?;
        Ok(inserted)
    }

    /// Marks entries as not yet shared with any peer.
    pub fn outbox_add(&self, id: &EntryId) -> Result<(), Error> {
        self.entries
            .insert(layout::entry_key(layout::OUTBOX, id), &[][..])?;
        self.flush()
    }

    /// Entries not yet shared with any peer, oldest insert first by id order.
    pub fn outbox(&self) -> Result<Vec<EntryId>, Error> {
        self.entries
            .scan_prefix([layout::OUTBOX])
            .keys()
            .map(|key| {
                layout::trailing_id(&key?)
                    .ok_or_else(|| Error::Corrupt("an outbox key is too short".into()))
            })
            .collect()
    }

    /// Notes that an entry has reached a peer.
    pub fn outbox_remove(&self, id: &EntryId) -> Result<(), Error> {
        self.entries.remove(layout::entry_key(layout::OUTBOX, id))?;
        Ok(())
    }

    /// The number of entries in chains (fork proofs not counted), from the per-organisation
    /// stats.
    pub fn count(&self) -> Result<usize, Error> {
        let count: u64 =
            self.read_org_stats(|orgs| orgs.values().map(|stats| stats.count).sum())?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
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
        self.read_org_stats(|_| ())?;
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

    /// Writes everything buffered to disk: the frame log first, then its synced end, then
    /// sled.
    pub fn flush(&self) -> Result<(), Error> {
        let synced = self.frames.sync()?;
        self.meta
            .insert(FRAMES_SYNCED_KEY, &synced.to_be_bytes()[..])?;
        self.db.flush()?;
        Ok(())
    }
}

impl Drop for Store {
    /// Closes the store cleanly: everything on disk, then the open mark removed, so the next
    /// open need not check the frame log. If this fails the next open checks it.
    fn drop(&mut self) {
        // A store whose opening failed leaves the mark (and the synced end) as they were, so
        // the next open checks again.
        if !*self.marked_open.get_mut() {
            return;
        }
        if self.flush().is_ok() && self.meta.remove(OPEN_KEY).is_ok() {
            let _ = self.db.flush();
        }
    }
}

/// Where a frame is: in the frame log, or already read (a fork proof, which the tree holds).
enum FrameAt {
    Log(frames::Pointer),
    Read(Vec<u8>),
}

impl FrameAt {
    fn len(&self) -> usize {
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

/// The chunks verifier threads take from a batch of `len` frames, in order. The first are
/// small, so the writer can start within a millisecond instead of waiting for a full chunk;
/// they double up to a share per core, at most [`VERIFY_CHUNK`], the size at which batch
/// checks are cheapest.
fn verify_chunks(len: usize, cores: usize) -> Vec<std::ops::Range<usize>> {
    let largest = len.div_ceil(cores).clamp(PARALLEL_THRESHOLD, VERIFY_CHUNK);
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, PARALLEL_THRESHOLD.min(largest));
    while start < len {
        let end = (start + size).min(len);
        chunks.push(start..end);
        start = end;
        size = (size * 2).min(largest);
    }
    chunks
}

/// Each author's chain head as last written: `None` for an author with no entries yet.
#[derive(Debug, Default)]
struct Heads {
    map: HashMap<MemberId, Option<(u64, EntryId)>>,
}

impl Heads {
    /// Authors remembered before the map starts over (it is only a shortcut).
    const LIMIT: usize = 65_536;

    fn get(&self, author: &MemberId) -> Option<Option<(u64, EntryId)>> {
        self.map.get(author).copied()
    }

    fn insert(&mut self, author: MemberId, head: Option<(u64, EntryId)>) {
        if self.map.len() >= Self::LIMIT {
            self.map.clear();
        }
        self.map.insert(author, head);
    }

    fn clear(&mut self) {
        self.map.clear();
    }

    /// Forgets an author's head, so it is read from the chain again.
    fn forget(&mut self, author: &MemberId) {
        self.map.remove(author);
    }
}

/// Revisions, retractions and the like read under one entry at most.
const MAX_REVISIONS: usize = 1_000;

/// Whether an entry of this kind can be retracted. Retractions and revocations cannot: other
/// nodes act on their bodies.
fn retractable(kind: Kind) -> bool {
    kind != Kind::RETRACT && kind != Kind::REVOKE
}

/// A frame after decoding, the duplicate check and verification: the entry, or why it was
/// refused.
type Prepared = Result<Entry, Error>;

/// A space's entries as (created, id), in that order; shared, as sync reads it every round.
pub type SpaceItems = Arc<Vec<(u64, EntryId)>>;

/// The state of one [`Store::insert_batch`] as its frames are written.
struct BatchWrite {
    /// Each frame's outcome, by its slot in the batch.
    results: Vec<Option<Result<Inserted, Error>>>,
    /// Ids written by this batch, so a frame repeated within it is a duplicate.
    written: HashSet<EntryId>,
    /// Body-less entries, written last (see [`Store::write_run`]).
    deferred: Vec<(usize, Entry)>,
    /// Waited for before the first write.
    turn: WriteTurn,
}

impl BatchWrite {
    fn new(len: usize, turn: WriteTurn) -> Self {
        Self {
            results: (0..len).map(|_| None).collect(),
            written: HashSet::with_capacity(len),
            deferred: Vec::new(),
            turn,
        }
    }
}

/// Locks a mutex; a poisoned one is still sound here (the data is a cache or a set of ids).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Decodes a stored frame, checking that it is the entry stored under `id` and undamaged.
fn decode_checked(id: &EntryId, frame: &[u8]) -> Result<Entry, Error> {
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

fn id_from(bytes: &[u8]) -> Result<EntryId, Error> {
    let id: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Error::Corrupt("a stored id is not 32 bytes".into()))?;
    Ok(EntryId(id))
}

/// A record key and its value, read back.
fn read_record<'a>(key: &[u8], record: &'a [u8]) -> Result<(EntryId, layout::Record<'a>), Error> {
    match (layout::trailing_id(key), layout::Record::parse(record)) {
        (Some(id), Some(record)) => Ok((id, record)),
        _ => Err(Error::Corrupt("a record is malformed".into())),
    }
}

/// A format 5 frame key and the pointer it holds, read back.
fn read_frame_key(key: &[u8], value: &[u8]) -> Result<(EntryId, frames::Pointer), Error> {
    match (layout::trailing_id(key), frames::Pointer::parse(value)) {
        (Some(id), Some(pointer)) => Ok((id, pointer)),
        _ => Err(Error::Corrupt("a frame key is malformed".into())),
    }
}

/// The end of the frame log as last made durable (0 if never recorded).
fn frames_synced(meta: &sled::Tree) -> Result<u64, Error> {
    match meta.get(FRAMES_SYNCED_KEY)? {
        Some(bytes) => Ok(u64::from_be_bytes(bytes.as_ref().try_into().map_err(
            |_| Error::Corrupt("the frame log's synced length is malformed".into()),
        )?)),
        None => Ok(0),
    }
}

/// Removes snapshot files that sled was still writing when its process died.
///
/// sled 0.34 writes a snapshot to `snap.<lsn>.generating`, syncs it, then renames it; but when
/// it opens, it considers every `snap.*` file and reads the newest name, which can be a
/// half-written `.generating` one left by a kill at the wrong moment, and then refuses to open
/// ("Read corrupted data"). Such a file is never the snapshot of record (that one was renamed),
/// so it is safe to delete. Found by the SIGKILL test in `tests/crash.rs`.
fn remove_unfinished_snapshots(path: &Path) -> Result<(), Error> {
    let Ok(dir) = std::fs::read_dir(path) else {
        return Ok(());
    };
    for item in dir.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(item.path()).map_err(|err| Error::Open {
                path: path.to_path_buf(),
                source: sled::Error::Io(err),
            })?;
        }
    }
    Ok(())
}

fn open_db(path: &Path, config: Config) -> Result<sled::Db, Error> {
    remove_unfinished_snapshots(path)?;
    let deadline = Instant::now() + config.lock_wait;
    loop {
        let opened = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(err)) if err.to_string().contains("could not acquire lock") => {
                if Instant::now() >= deadline {
                    return Err(Error::Locked(path.to_path_buf()));
                }
                // Another process holds the store (usually a publish that is about to finish).
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(source) => {
                return Err(Error::Open {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
}

/// The store has no logging dependency; repairs are rare enough to note on stderr.
fn note_repair(message: &str) {
    eprintln!("cairn-store: {message}");
}

#[cfg(test)]
mod tests {
    use cairn_core::testkit::{Author, EPOCH};

    use super::*;

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

    #[test]
    fn verify_chunks_cover_a_batch_in_order_starting_small() {
        for (len, cores) in [
            (32, 2),
            (33, 2),
            (100, 2),
            (1_000, 2),
            (2_048, 2),
            (5_000, 8),
        ] {
            let chunks = verify_chunks(len, cores);
            assert_eq!(chunks.first().map(|c| c.start), Some(0));
            assert_eq!(chunks.last().map(|c| c.end), Some(len));
            assert!(chunks.windows(2).all(|pair| pair[0].end == pair[1].start));
            assert!(
                chunks
                    .iter()
                    .all(|c| !c.is_empty() && c.len() <= VERIFY_CHUNK)
            );
            assert!(chunks[0].len() <= PARALLEL_THRESHOLD);
        }
        // A large batch reaches full-size chunks after a few doublings.
        let sizes: Vec<usize> = verify_chunks(2_048, 2).iter().map(|c| c.len()).collect();
        assert_eq!(&sizes[..5], &[32, 64, 128, 256, 256]);
    }
}
