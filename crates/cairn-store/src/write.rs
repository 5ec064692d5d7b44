//! The write pipeline: frames inserted alone, in batches, in turns or as this node's own;
//! verification in chunks on verifier threads while this thread writes; the chain checks, the
//! intent key, and each entry's index keys before its record.

use std::collections::{HashMap, HashSet};

use cairn_core::{Entry, EntryId, Kind, MemberId, Timestamp};

use crate::read::id_from;
use crate::{Error, Inserted, Outcome, Store, WriteTurn, layout, lock, turns};

/// Batches smaller than this are verified on the calling thread.
const PARALLEL_THRESHOLD: usize = 32;
/// The most frames a verifier takes at once. Their signatures are checked in one batch, and
/// batches of this size cost about a third of checking each alone: `cargo bench -p cairn-core
/// --bench signatures`.
const VERIFY_CHUNK: usize = 256;
/// The most entries written under one intent record.
const WRITE_RUN: usize = 64;

impl Store {
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
    ///
    /// [`WriteLine`]: crate::WriteLine
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
        let mut refused = Vec::new();
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
            let result = self.write(&entry, frames[slot].as_ref(), &mut heads);
            if waits_for_key_log(&result) {
                batch.awaiting_key_log.push((slot, entry));
            } else if matches!(result, Err(Error::Rejected(_))) {
                // Refused before anything of it was written.
                refused.push(entry.id());
            }
            batch.results[slot] = Some(result);
        }
        // Otherwise the next start would take the refused (under a budget, many) for writes
        // a crash cut short, and scan the indexes for their keys.
        if !refused.is_empty() {
            self.drop_from_intent(&refused)?;
        }
        self.frames.write_out()
    }

    /// Takes ids out of those the intent key names.
    fn drop_from_intent(&self, ids: &[EntryId]) -> Result<(), Error> {
        let Some(intent) = self.entries.get([layout::INTENT])? else {
            return Ok(());
        };
        let dropped: HashSet<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
        let kept: Vec<u8> = intent
            .chunks_exact(32)
            .filter(|id| !dropped.contains(id))
            .flatten()
            .copied()
            .collect();
        self.entries.insert([layout::INTENT], kept)?;
        Ok(())
    }

    /// Adds ids to those the intent key already names.
    pub(crate) fn extend_intent(&self, ids: impl Iterator<Item = EntryId>) -> Result<(), Error> {
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

    /// The body-less entries of a batch, once every retraction in it is stored; then the
    /// entries that waited for a key log, once every key event in it is (a batch need not put
    /// an organisation's key events first).
    fn write_deferred<F: AsRef<[u8]>>(
        &self,
        frames: &[F],
        batch: &mut BatchWrite,
    ) -> Result<(), Error> {
        while !batch.awaiting_key_log.is_empty() {
            let waiting = std::mem::take(&mut batch.awaiting_key_log);
            let before = waiting.len();
            batch.turn.wait();
            let mut heads = lock(&self.write_lock);
            self.announce(waiting.iter().map(|(_, entry)| entry))?;
            for (slot, entry) in waiting {
                let result = self.write(&entry, frames[slot].as_ref(), &mut heads);
                if waits_for_key_log(&result) {
                    batch.awaiting_key_log.push((slot, entry));
                }
                batch.results[slot] = Some(result);
            }
            self.frames.write_out()?;
            // Nothing more stored this round: the rest waits for a later batch.
            if batch.awaiting_key_log.len() == before {
                batch.awaiting_key_log.clear();
            }
        }
        if batch.deferred.is_empty() {
            return Ok(());
        }
        batch.turn.wait();
        let mut heads = lock(&self.write_lock);
        let mut refused = Vec::new();
        self.announce(batch.deferred.iter().map(|(_, entry)| entry))?;
        for (slot, entry) in std::mem::take(&mut batch.deferred) {
            let result = self.write(&entry, frames[slot].as_ref(), &mut heads);
            if waits_for_key_log(&result) {
                batch.awaiting_key_log.push((slot, entry));
            } else if matches!(result, Err(Error::Rejected(_))) {
                // Refused before anything of it was written.
                refused.push(entry.id());
            }
            batch.results[slot] = Some(result);
        }
        // Otherwise the next start would take the refused (under a budget, many) for writes
        // a crash cut short, and scan the indexes for their keys.
        if !refused.is_empty() {
            self.drop_from_intent(&refused)?;
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
        if let Some((refusal, remember)) = self.refusal(&org, frame.len() as u64)? {
            if remember {
                self.tombstone(entry)?;
            }
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
        let key_log_change = match self.key_log_check(entry) {
            Err(refusal @ Error::Rejected(cairn_core::Error::KeyRetired { .. })) => {
                // Invalid for good under the log held: sync need not fetch it again.
                self.tombstone(entry)?;
                return Err(refusal);
            }
            checked => checked?,
        };
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
        // A second history comes as a fork of the key's chain when both rotated to the same
        // key: kept as evidence either way.
        if let Some(change) = key_log_change
            && (inserted.outcome == Outcome::Stored || change.is_duplicity())
        {
            self.commit_key_log(change)?;
            // A rotation may have removed entries: read chain heads afresh.
            heads.clear();
        }
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
        self.count_org_entry(entry, frame.len() as u64);
        Ok(Inserted {
            id,
            outcome: if retracted {
                Outcome::Retracted
            } else {
                Outcome::Stored
            },
        })
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

/// Whether a write was refused only because a key log (or its next event) is not held yet.
fn waits_for_key_log(result: &Result<Inserted, Error>) -> bool {
    matches!(
        result,
        Err(Error::Rejected(
            cairn_core::Error::KeyLogUnknown(_)
                | cairn_core::Error::KeyLogGap { .. }
                | cairn_core::Error::KeyNotInLog { .. }
        ))
    )
}

/// Each author's chain head as last written: `None` for an author with no entries yet.
#[derive(Debug, Default)]
pub(crate) struct Heads {
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

    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Forgets an author's head, so it is read from the chain again.
    fn forget(&mut self, author: &MemberId) {
        self.map.remove(author);
    }
}

/// A frame after decoding, the duplicate check and verification: the entry, or why it was
/// refused.
type Prepared = Result<Entry, Error>;

/// The state of one [`Store::insert_batch`] as its frames are written.
struct BatchWrite {
    /// Each frame's outcome, by its slot in the batch.
    results: Vec<Option<Result<Inserted, Error>>>,
    /// Ids written by this batch, so a frame repeated within it is a duplicate.
    written: HashSet<EntryId>,
    /// Body-less entries, written last (see [`Store::write_run`]).
    deferred: Vec<(usize, Entry)>,
    /// Entries refused because their organisation's key log (or its next event) was not held,
    /// tried again once the rest of the batch is written.
    awaiting_key_log: Vec<(usize, Entry)>,
    /// Waited for before the first write.
    turn: WriteTurn,
}

impl BatchWrite {
    fn new(len: usize, turn: WriteTurn) -> Self {
        Self {
            results: (0..len).map(|_| None).collect(),
            written: HashSet::with_capacity(len),
            deferred: Vec::new(),
            awaiting_key_log: Vec::new(),
            turn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
