//! The state file: its format, and how it is replaced atomically.
//!
//! A persistent view owns one directory holding `state` (the last checkpoint), `LOCK` (held while
//! the view is open) and, briefly, `state.tmp` (a checkpoint being written). `state` is:
//!
//! | offset | size | field                                               |
//! |--------|------|-----------------------------------------------------|
//! | 0      | 8    | magic `FLUMERED`                                    |
//! | 8      | 4    | file format, u32 LE (1)                             |
//! | 12     | 4    | the view's code version, u32 LE                     |
//! | 16     | 4    | flags, u32 LE: bit 0 set when `since` is present    |
//! | 20     | 8    | `since`, u64 LE (0 when absent)                     |
//! | 28     | 8    | length `n` of the state, u64 LE                     |
//! | 36     | n    | the state, postcard                                 |
//! | 36 + n | 4    | CRC32C of bytes `0 .. 36 + n`, u32 LE               |
//!
//! State and `since` are in one file, so they can only be replaced together: whatever a crash
//! leaves, the file on disk (old or new, never a mix) has a state that includes exactly the
//! records up to its `since`. A torn or damaged file fails its length or CRC check at open.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use flume_core::{Seq, ViewError};
use serde::Serialize;

const MAGIC: &[u8; 8] = b"FLUMERED";
const FORMAT: u32 = 1;
const HEADER: usize = 36;
const TRAILER: usize = 4;
const HAS_SINCE: u32 = 1;

const STATE: &str = "state";
const TEMP: &str = "state.tmp";
const LOCK: &str = "LOCK";
/// How long `open` waits for a directory held by a view that is shutting down.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// What a state file says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) since: Option<Seq>,
}

/// Encode a whole state file.
///
/// # Errors
/// postcard's error when the state cannot be serialized.
pub(crate) fn encode<S: Serialize>(header: Header, state: &S) -> Result<Vec<u8>, ViewError> {
    let mut buf = Vec::with_capacity(HEADER + 256);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&FORMAT.to_le_bytes());
    buf.extend_from_slice(&header.version.to_le_bytes());
    let (flags, since) = header.since.map_or((0, 0), |s| (HAS_SINCE, s.get()));
    buf.extend_from_slice(&flags.to_le_bytes());
    buf.extend_from_slice(&since.to_le_bytes());
    buf.extend_from_slice(&0u64.to_le_bytes()); // the length, patched below
    let mut buf = postcard::to_extend(state, buf).map_err(|e| {
        ViewError::Other(format!("could not encode the reduce state with postcard: {e}").into())
    })?;
    let len = (buf.len() - HEADER) as u64;
    buf[28..HEADER].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

/// Check a whole state file and split it into its header and the encoded state.
///
/// # Errors
/// Why the bytes are not a complete, intact state file.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8]), String> {
    if bytes.len() < HEADER + TRAILER {
        return Err(format!(
            "{} bytes is shorter than any state file (torn write?)",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a flume reduce state file (bad magic)".into());
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let u64_at = |at: usize| (u64::from(u32_at(at + 4)) << 32) | u64::from(u32_at(at));
    let format = u32_at(8);
    if format != FORMAT {
        return Err(format!(
            "unknown file format {format} (this code reads format {FORMAT})"
        ));
    }
    // The length is checked against the bytes actually present before it is used.
    let len = u64_at(28);
    let body = (bytes.len() - HEADER - TRAILER) as u64;
    if len != body {
        return Err(format!(
            "the state should be {len} bytes but {body} are present (torn write?)"
        ));
    }
    let end = bytes.len() - TRAILER;
    let stored = u32_at(end);
    let actual = crc32c::crc32c(&bytes[..end]);
    if stored != actual {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    let since = (u32_at(16) & HAS_SINCE != 0).then(|| Seq(u64_at(20)));
    let header = Header {
        version: u32_at(12),
        since,
    };
    Ok((header, &bytes[HEADER..end]))
}

/// A view's directory.
pub(crate) struct Store {
    dir: PathBuf,
    /// The open `LOCK` file while the view is open: one view per directory.
    lock: Mutex<Option<File>>,
    /// Held from taking a snapshot of the state to recording it as saved, and by `destroy`, so
    /// two writers never interleave (a destroyed state is never overwritten by an older one).
    io: Mutex<()>,
    /// Set when the view is dropped without `close`.
    retired: AtomicBool,
}

impl Store {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Store {
            dir,
            lock: Mutex::new(None),
            io: Mutex::new(()),
            retired: AtomicBool::new(false),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.dir.join(STATE)
    }

    /// Run `f` (a snapshot and write, or a destroy) as the only writer of the directory.
    ///
    /// If the view was dropped meanwhile (see [`retire`](Store::retire)), release the directory
    /// afterwards: `retire` could not, as this write held it.
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let result = {
            let _io = self.io.lock().unwrap_or_else(PoisonError::into_inner);
            f()
        };
        if self.retired.load(Ordering::SeqCst) {
            self.unlock_if_idle();
        }
        result
    }

    /// Create the directory if needed, lock it, clear a leftover temp file, and read `state`
    /// (`None` when there is none yet). Blocking.
    ///
    /// # Errors
    /// [`ViewError::Other`] when another view holds the directory; [`ViewError::Io`].
    pub(crate) fn open(&self) -> Result<Option<Vec<u8>>, ViewError> {
        if !self.dir.is_dir() {
            fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, "create", e))?;
            // Make the new directory's own entry durable.
            if let Some(parent) = self.dir.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                sync_dir(parent)?;
            }
        }
        self.take_lock()?;
        let temp = self.dir.join(TEMP);
        match fs::remove_file(&temp) {
            // A crash mid-checkpoint; `state` is still the previous checkpoint.
            Ok(()) => sync_dir(&self.dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&temp, "remove", e)),
        }
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, "read", e)),
        }
    }

    fn take_lock(&self) -> Result<(), ViewError> {
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let path = self.dir.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, "open", e))?;
        // flock(2)-style: held per open file, so a second view in this process conflicts too.
        // A view dropped without `close` may still be finishing a checkpoint (it releases the
        // lock when that ends), so wait a little before calling the directory taken.
        let give_up = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(lock_error(&self.dir, &path, e)),
            }
        }
        *held = Some(file);
        Ok(())
    }

    /// Release the directory for another view.
    pub(crate) fn unlock(&self) {
        self.lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// The view was dropped without `close`: release the directory now, or, when a write is in
    /// progress, as soon as it ends ([`exclusive`](Store::exclusive) checks the flag after
    /// releasing the I/O lock, so one of the two always sees the other).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.unlock_if_idle();
    }

    fn unlock_if_idle(&self) {
        if let Ok(_io) = self.io.try_lock() {
            self.unlock();
        }
    }

    /// Replace `state` with `bytes` atomically and durably (write a temp file, fsync it, rename
    /// it over `state`, fsync the directory). Blocking; called inside
    /// [`exclusive`](Store::exclusive).
    ///
    /// # Errors
    /// [`ViewError::Io`] naming the file; `state` is then still the previous checkpoint.
    pub(crate) fn replace(&self, bytes: &[u8]) -> Result<(), ViewError> {
        if self.retired.load(Ordering::SeqCst) {
            // Dropped without `close`: its unsaved changes are lost, as in a crash, and the
            // directory may already belong to a new view.
            return Err(ViewError::Other("the view was dropped".into()));
        }
        // Never write a directory another view holds (an `open` that failed on the lock is
        // followed by a `destroy`).
        self.take_lock()?;
        let temp = self.dir.join(TEMP);
        let mut file = File::create(&temp).map_err(|e| io_error(&temp, "create", e))?;
        file.write_all(bytes)
            .map_err(|e| io_error(&temp, "write", e))?;
        file.sync_all().map_err(|e| io_error(&temp, "fsync", e))?;
        drop(file);
        let path = self.state_path();
        fs::rename(&temp, &path).map_err(|e| io_error(&path, "rename onto", e))?;
        sync_dir(&self.dir)
    }
}

fn lock_error(dir: &Path, lock: &Path, e: TryLockError) -> ViewError {
    match e {
        TryLockError::WouldBlock => ViewError::Other(
            format!(
                "the reduce view directory {} is in use by another open view: give each view its \
                 own directory, or close the other one first",
                dir.display()
            )
            .into(),
        ),
        TryLockError::Error(e) => io_error(lock, "lock", e),
    }
}

fn sync_dir(dir: &Path) -> Result<(), ViewError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "fsync directory", e))
}

fn io_error(path: &Path, op: &str, e: io::Error) -> ViewError {
    ViewError::Io(io::Error::new(
        e.kind(),
        format!("could not {op} {}: {e}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            version: 7,
            since: Some(Seq(1234)),
        };
        encode(header, &vec![String::from("a"), String::from("bc")]).unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let (header, state) = decode(&bytes).unwrap();
        assert_eq!(header.version, 7);
        assert_eq!(header.since, Some(Seq(1234)));
        let state: Vec<String> = postcard::from_bytes(state).unwrap();
        assert_eq!(state, ["a", "bc"]);
        let empty = encode(
            Header {
                version: 1,
                since: None,
            },
            &0u8,
        )
        .unwrap();
        assert_eq!(decode(&empty).map(|(h, _)| h.since), Ok(None));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flipped a bit of byte {i}");
        }
    }
}
