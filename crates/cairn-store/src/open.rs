//! Creating, opening and closing a store: the format marker, the migrations from older
//! formats, the repairs at open (interrupted writes, frames a power cut lost), the open mark,
//! the flush, and sled's own opening (with its unfinished snapshots cleared).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_core::{Entry, EntryId, Verifier};

use crate::read::{decode_checked, id_from, read_record};
use crate::write::Heads;
use crate::{Config, Error, Store, frames, layout, policy};

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

/// Entries migrated at once: frames moved to the frame log between syncs (format 5), or
/// pointers moved into records in one atomic batch (format 6).
const MIGRATION_CHUNK: usize = 4_096;

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
        store.load(&config)?;
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
                store.load(&config)?;
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
            disk: Mutex::new(crate::budgets::DiskState::default()),
            refused: crate::budgets::refused_counter(),
            revocations: Mutex::new(HashMap::new()),
            key_logs: Mutex::new(crate::key_logs::KeyLogs::default()),
        };
        Ok(store)
    }

    /// Reads what the store keeps in memory: retractions, revocations and the policy. After
    /// any repair and migration, as it reads entries.
    fn load(&self, config: &Config) -> Result<(), Error> {
        let holds_fork_proofs = self.entries.scan_prefix([layout::FORK]).next().is_some();
        self.may_hold_fork_proofs
            .store(holds_fork_proofs, std::sync::atomic::Ordering::SeqCst);
        self.load_retractions()?;
        self.load_revocations()?;
        self.load_key_logs()?;
        self.load_policy(config.max_entries_per_org, config.budgets)
    }

    pub fn path(&self) -> &Path {
        &self.path
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
