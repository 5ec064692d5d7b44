//! The frame log: every stored entry's frame, appended to one file beside sled's.
//!
//! sled rewrites a whole leaf page every few changes, so frames kept in its tree were written
//! to disk about seven times over (measured: 750 MB of writes for 110 MB of frames). Here a
//! frame is written once, and the tree holds only where it is, in the entry's record (see
//! `layout::RECORD`).
//!
//! Invariants:
//! - The log only grows. A frame is never changed in place; a retraction appends the
//!   header-only frame and the tree points at that instead. Frames of removed entries stay in
//!   the file, unreachable.
//! - A frame is in the file or in the log's pending buffer before any key points at it, and a
//!   reader looks in both, so a reader that finds a pointer finds the frame. Appends collect
//!   in the buffer and reach the file in one write when the store's writer finishes a run of
//!   entries ([`FrameLog::write_out`]), when the buffer holds [`PENDING_LIMIT`] bytes, or at a
//!   sync: one system call per run instead of one per frame (a tenth of the writer's time).
//!   In the file, the kernel's page cache holds a frame even before it reaches the disk.
//! - [`FrameLog::sync`] makes the file durable up to its current end before the store flushes
//!   sled. sled also writes on its own, and a write racing a flush can have its pointer
//!   flushed first, so after a power cut (or a kill, for frames still pending) some keys may
//!   point at frames that never reached the disk: `Store::open` reads back every frame past
//!   the last synced end when the store was not closed cleanly (see
//!   `Store::check_unsynced_frames`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::Error;

/// The frame log's file name inside the store folder.
pub(crate) const FILE_NAME: &str = "frames";

/// Where a frame is in the log: `offset` (u64) then `len` (u32), big-endian, 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub offset: u64,
    pub len: u32,
}

impl Pointer {
    pub const LEN: usize = 12;

    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..8].copy_from_slice(&self.offset.to_be_bytes());
        bytes[8..].copy_from_slice(&self.len.to_be_bytes());
        bytes
    }

    /// `None` unless `bytes` is exactly a pointer.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(Self {
            offset: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            len: u32::from_be_bytes(bytes[8..].try_into().ok()?),
        })
    }

    /// Where the frame ends (saturating: a damaged pointer may claim any offset).
    pub fn end(self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

/// The most bytes [`FrameLog::read_many`] reads at once.
const READ_RUN_LIMIT: u64 = 1 << 20;

/// Bytes of appended frames held before they are written out even mid-run.
const PENDING_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct FrameLog {
    path: PathBuf,
    file: File,
    /// The end of the log and the frames not yet in the file; held while appending, so
    /// appends do not overlap.
    tail: Mutex<Tail>,
}

#[derive(Debug)]
struct Tail {
    /// Where the next frame goes.
    end: u64,
    /// Frames appended but not yet written: the log's bytes from `end - pending.len()` on.
    pending: Vec<u8>,
}

impl Tail {
    /// Where the pending bytes start in the log (everything before is in the file).
    fn written(&self) -> u64 {
        self.end - self.pending.len() as u64
    }
}

impl FrameLog {
    /// Opens the log in `folder`, creating an empty one if `create` is set.
    pub fn open(folder: &Path, create: bool) -> Result<Self, Error> {
        let path = folder.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(&path)
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => Error::MissingFrameLog(path.clone()),
                _ => Error::FrameLog {
                    path: path.clone(),
                    source: err,
                },
            })?;
        if create {
            // The file's name must survive a power cut too, before anything points into it.
            sync_folder(folder).map_err(|source| Error::FrameLog {
                path: path.clone(),
                source,
            })?;
        }
        let end = file
            .metadata()
            .map_err(|source| Error::FrameLog {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(Self {
            path,
            file,
            tail: Mutex::new(Tail {
                end,
                pending: Vec::new(),
            }),
        })
    }

    /// Appends a frame; returns where it is. It reaches the file at the next
    /// [`FrameLog::write_out`] or [`FrameLog::sync`] at the latest.
    pub fn append(&self, frame: &[u8]) -> Result<Pointer, Error> {
        let len = u32::try_from(frame.len())
            .map_err(|_| Error::Corrupt(format!("a frame of {} bytes is too long", frame.len())))?;
        let mut tail = crate::lock(&self.tail);
        let pointer = Pointer {
            offset: tail.end,
            len,
        };
        tail.pending.extend_from_slice(frame);
        tail.end = pointer.end();
        if tail.pending.len() >= PENDING_LIMIT {
            self.write_pending(&mut tail)?;
        }
        Ok(pointer)
    }

    /// The log's length in bytes, frames not yet written included.
    pub fn len(&self) -> u64 {
        crate::lock(&self.tail).end
    }

    /// Writes the frames appended so far to the file (not yet durably: see `sync`).
    pub fn write_out(&self) -> Result<(), Error> {
        self.write_pending(&mut crate::lock(&self.tail))
    }

    /// On failure the frames stay pending, to be written at the same place next time.
    fn write_pending(&self, tail: &mut Tail) -> Result<(), Error> {
        if tail.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&tail.pending, tail.written())
            .map_err(|source| self.failed(source))?;
        tail.pending.clear();
        Ok(())
    }

    /// Reads the frame at `pointer`. A pointer past the end of the log, or longer than any
    /// frame can be, is damage (and nothing is allocated for it).
    pub fn read(&self, pointer: Pointer) -> Result<Vec<u8>, Error> {
        self.check_length(pointer)?;
        self.read_span(pointer)
    }

    /// A pointer read from disk claims no more than an entry frame can hold.
    fn check_length(&self, pointer: Pointer) -> Result<(), Error> {
        if pointer.len as usize > cairn_core::entry::MAX_FRAME_LEN {
            return Err(Error::Corrupt(format!(
                "a frame at bytes {}..{} of the frame log {} would be {} bytes, more than any entry frame ({})",
                pointer.offset,
                pointer.end(),
                self.path.display(),
                pointer.len,
                cairn_core::entry::MAX_FRAME_LEN
            )));
        }
        Ok(())
    }

    /// Reads the bytes at `span`: one frame, or frames that lie end to end.
    fn read_span(&self, pointer: Pointer) -> Result<Vec<u8>, Error> {
        {
            let tail = crate::lock(&self.tail);
            let written = tail.written();
            if pointer.offset >= written {
                // Not in the file yet. Frames are written whole, so none straddles the two.
                let start = usize::try_from(pointer.offset - written).unwrap_or(usize::MAX);
                return match tail
                    .pending
                    .get(start..start.saturating_add(pointer.len as usize))
                {
                    Some(frame) => Ok(frame.to_vec()),
                    None => Err(self.past_the_end(pointer)),
                };
            }
        }
        let mut frame = vec![0u8; pointer.len as usize];
        match self.file.read_exact_at(&mut frame, pointer.offset) {
            Ok(()) => Ok(frame),
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.past_the_end(pointer))
            }
            Err(source) => Err(self.failed(source)),
        }
    }

    /// Reads the frames at `pointers`, in order, with one read for each run of frames that lie
    /// end to end (at most [`READ_RUN_LIMIT`] bytes, and never partly in the file and partly
    /// pending).
    pub fn read_many(&self, pointers: &[Pointer]) -> Result<Vec<Vec<u8>>, Error> {
        // Only grows, and only by writing out every pending frame, so a run wholly before it
        // stays in the file and one wholly after it is read whole from either place.
        let written = crate::lock(&self.tail).written();
        for pointer in pointers {
            self.check_length(*pointer)?;
        }
        let mut frames = Vec::with_capacity(pointers.len());
        let mut rest = pointers;
        while let Some(first) = rest.first() {
            let mut run = Pointer {
                offset: first.offset,
                len: first.len,
            };
            let mut count = 1;
            for next in &rest[1..] {
                let joins = next.offset == run.end()
                    && (run.end() != written)
                    && u64::from(run.len) + u64::from(next.len) <= READ_RUN_LIMIT;
                if !joins {
                    break;
                }
                run.len += next.len;
                count += 1;
            }
            if count == 1 {
                frames.push(self.read_span(run)?);
            } else {
                let bytes = self.read_span(run)?;
                let mut at = 0;
                for pointer in &rest[..count] {
                    let end = at + pointer.len as usize;
                    frames.push(bytes[at..end].to_vec());
                    at = end;
                }
            }
            rest = &rest[count..];
        }
        Ok(frames)
    }

    fn past_the_end(&self, pointer: Pointer) -> Error {
        Error::Corrupt(format!(
            "a frame at bytes {}..{} is past the end of the frame log {}",
            pointer.offset,
            pointer.end(),
            self.path.display()
        ))
    }

    /// Makes every frame appended so far durable; returns the end it reached.
    pub fn sync(&self) -> Result<u64, Error> {
        let end = {
            let mut tail = crate::lock(&self.tail);
            self.write_pending(&mut tail)?;
            tail.end
        };
        self.file
            .sync_data()
            .map_err(|source| self.failed(source))?;
        Ok(end)
    }

    fn failed(&self, source: std::io::Error) -> Error {
        Error::FrameLog {
            path: self.path.clone(),
            source,
        }
    }
}

/// Makes a new file's name in `folder` durable.
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_where_they_were_appended_and_past_the_end_is_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FrameLog::open(dir.path(), true).expect("create");
        let file_len = || {
            std::fs::metadata(dir.path().join(FILE_NAME))
                .expect("log")
                .len()
        };
        let first = log.append(b"first frame").expect("append");
        let second = log.append(b"second").expect("append");
        assert_eq!(first, Pointer { offset: 0, len: 11 });
        assert_eq!(second.offset, 11);
        assert_eq!(Pointer::parse(&second.to_bytes()), Some(second));
        // Pending frames read back before they reach the file, and all reach it in one write.
        assert_eq!(file_len(), 0);
        assert_eq!(log.read(second).expect("read pending"), b"second");
        assert!(matches!(
            log.read(Pointer { offset: 15, len: 4 }),
            Err(Error::Corrupt(_))
        ));
        log.write_out().expect("write out");
        assert_eq!(file_len(), 17);
        let third = log.append(b"third").expect("append");
        assert_eq!(log.read(first).expect("read written"), b"first frame");
        assert_eq!(log.read(third).expect("read pending"), b"third");
        assert_eq!(log.sync().expect("sync"), 22);
        assert_eq!(file_len(), 22);
        // A full buffer is written out without waiting for the end of the run.
        let large = vec![7u8; cairn_core::entry::MAX_FRAME_LEN];
        let mut pointer = log.append(&large).expect("append");
        for _ in 0..PENDING_LIMIT / large.len() {
            pointer = log.append(&large).expect("append");
        }
        assert_eq!(file_len(), pointer.end());
        drop(log);
        let log = FrameLog::open(dir.path(), false).expect("reopen");
        assert_eq!(log.read(second).expect("read"), b"second");
        assert_eq!(log.read(first).expect("read"), b"first frame");
        assert_eq!(log.read(pointer).expect("read"), large);
        let beyond = Pointer {
            offset: pointer.end() - 2,
            len: 4,
        };
        assert!(matches!(log.read(beyond), Err(Error::Corrupt(_))));
        // A damaged pointer allocates nothing it could not hold, wherever it points.
        for damaged in [
            Pointer {
                offset: 0,
                len: u32::MAX,
            },
            Pointer {
                offset: u64::MAX,
                len: u32::MAX,
            },
            Pointer {
                offset: u64::MAX - 1,
                len: 4,
            },
        ] {
            assert!(matches!(log.read(damaged), Err(Error::Corrupt(_))));
            assert!(matches!(
                log.read_many(&[first, damaged]),
                Err(Error::Corrupt(_))
            ));
        }
        assert!(matches!(
            FrameLog::open(&dir.path().join("elsewhere"), false),
            Err(Error::MissingFrameLog(_))
        ));
    }

    #[test]
    fn many_frames_read_back_in_the_order_asked_whether_in_the_file_or_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = FrameLog::open(dir.path(), true).expect("create");
        let frames: Vec<Vec<u8>> = (0..6u8).map(|n| vec![n; 10 + usize::from(n)]).collect();
        let mut pointers: Vec<Pointer> = frames[..4]
            .iter()
            .map(|frame| log.append(frame).expect("append"))
            .collect();
        log.write_out().expect("write out");
        // The last two stay pending, end to end with the ones in the file.
        pointers.extend(frames[4..].iter().map(|f| log.append(f).expect("append")));
        let all = log.read_many(&pointers).expect("read");
        assert_eq!(all, frames);
        // Out of order, repeated, and not end to end.
        let order = [5, 0, 1, 3, 2, 2, 4];
        let asked: Vec<Pointer> = order.iter().map(|&i| pointers[i]).collect();
        let read = log.read_many(&asked).expect("read");
        let expected: Vec<Vec<u8>> = order.iter().map(|&i| frames[i].clone()).collect();
        assert_eq!(read, expected);
        // A run that reaches past the end is damage, as a single read is.
        let mut past = pointers.clone();
        past.push(Pointer {
            offset: pointers[5].end(),
            len: 4,
        });
        assert!(matches!(log.read_many(&past), Err(Error::Corrupt(_))));
    }
}
