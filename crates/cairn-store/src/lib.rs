//! Cairn's entry store: a record of verified entries on sled, with indexes for reading them
//! back by time, author and sequence, space, kind, tag, organisation and reference.
//!
//! This is the only crate that names sled. It owns:
//! - [`Store`]: opening (never silently empty), validated insertion, reads and index scans,
//!   and the effects of retractions (bodies dropped) and revocations (later entries removed);
//!   defined here with [`Error`], [`Config`] and the small types its modules share, and its
//!   methods in the modules that own them:
//! - `open`: creating and opening a store, the format marker, migrations, repairs, closing;
//! - `write`: the write pipeline, from verification on verifier threads to the record;
//! - `effects`: what retractions, revocations and removals do to stored entries;
//! - `read`: reads by id, prefix, [`Filter`] and reference, chains and fork proofs;
//! - `sync_source`: what sync reads: a space's items (cached) and frames by range or by id;
//! - `outbox`: entries written on this node that have reached no peer yet;
//! - `turns`: the order across batches of writes ([`WriteLine`], [`WriteTurn`]);
//! - `layout`: the key layout of the single tree that holds everything but frames;
//! - `frames`: the frame log, the file that holds every stored entry's frame;
//! - `policy`: this node's own policy on organisations (block, follow, quota) and the
//!   tombstones refused entries leave;
//! - `budgets`: what strangers may fill the disk with, the disk ceiling, and the bound on
//!   the tombstones.
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

mod budgets;
mod effects;
mod frames;
mod key_logs;
mod layout;
mod open;
mod orgs;
mod outbox;
mod policy;
mod read;
mod sync_source;
mod turns;
mod write;

pub use budgets::Budgets;
pub use key_logs::KeyLogView;
pub use policy::{Blocked, Policy};
pub use read::{Cursor, Filter};
pub use turns::{WriteLine, WriteTurn};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::{Entry, EntryId, MemberId, OrgId, Verifier};

use write::Heads;

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
    /// Budgets for strangers, the disk ceiling and the record of refused entries.
    pub budgets: Budgets,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
            lock_wait: Duration::from_secs(5),
            max_entries_per_org: 1_000_000,
            budgets: Budgets::default(),
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

/// A space's entries as (created, id), in that order; shared, as sync reads it every round.
pub type SpaceItems = Arc<Vec<(u64, EntryId)>>;

/// The entry store. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    entries: sled::Tree,
    frames: frames::FrameLog,
    /// Set once the store is open and marked so (see [`open::OPEN_KEY`]).
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
    /// The disk as last looked at, for the ceiling.
    disk: Mutex<budgets::DiskState>,
    /// Refused entries in the record (tombstones), once counted.
    refused: std::sync::atomic::AtomicU64,
    /// (org, member) → last valid seq, for every revocation held. Loaded at open.
    revocations: Mutex<HashMap<(OrgId, MemberId), u64>>,
    /// Every organisation's key log held, replayed. Loaded at open.
    key_logs: Mutex<key_logs::KeyLogs>,
}

/// Locks a mutex; a poisoned one is still sound here (the data is a cache or a set of ids).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
