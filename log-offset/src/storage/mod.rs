//! The storage under the log: a flat directory of files with positional I/O.
//!
//! The log only needs a few operations, so they form a trait: [`FsStorage`] is the real
//! filesystem, and [`SimStorage`] keeps files in memory, injects I/O errors and produces the disk
//! image a power loss could leave (unsynced writes dropped or torn), so crash tests need no real
//! disk and no root.

mod fs;
#[cfg(test)]
pub(crate) mod mem;
mod sim;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use fs::{FsStorage, create_dir_synced};
pub use sim::{Fault, FaultOp, SimStorage};

/// A directory of files, as the log uses it.
///
/// Durability contract (that of POSIX filesystems): file data is durable after
/// [`StorageFile::sync_data`]; creating, renaming or removing a name is durable after
/// [`sync_dir`](Storage::sync_dir).
pub trait Storage: Send + Sync + 'static {
    /// The path of `name`, for error messages.
    fn path(&self, name: &str) -> PathBuf;
    /// The names of the files in the directory.
    ///
    /// # Errors
    /// I/O errors.
    fn list(&self) -> io::Result<Vec<String>>;
    /// The length of file `name`.
    ///
    /// # Errors
    /// I/O errors, `NotFound`.
    fn file_len(&self, name: &str) -> io::Result<u64>;
    /// Open an existing file, for reading, and for writing when `write`.
    ///
    /// # Errors
    /// I/O errors, `NotFound`.
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// Create a new, empty file for reading and writing; fails if it exists.
    ///
    /// # Errors
    /// I/O errors, `AlreadyExists`.
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>>;
    /// Rename `from` to `to`, replacing `to`.
    ///
    /// # Errors
    /// I/O errors.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Remove file `name`.
    ///
    /// # Errors
    /// I/O errors.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Make the directory's entries durable (fsync the directory).
    ///
    /// # Errors
    /// I/O errors.
    fn sync_dir(&self) -> io::Result<()>;
    /// Take the directory's exclusive writer lock; it is held until the guard is dropped.
    ///
    /// # Errors
    /// [`LockError::Held`] naming the holder when someone else holds it.
    fn lock(&self) -> Result<LockGuard, LockError>;
}

/// One open file with positional I/O (`pread`/`pwrite`), shareable between threads.
#[allow(clippy::len_without_is_empty)] // a file's length, not a collection's
pub trait StorageFile: Send + Sync {
    /// The current length.
    ///
    /// # Errors
    /// I/O errors.
    fn len(&self) -> io::Result<u64>;
    /// Fill `buf` from `offset`; `UnexpectedEof` if the file is shorter.
    ///
    /// # Errors
    /// I/O errors.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at `offset`.
    ///
    /// # Errors
    /// I/O errors (EIO, ENOSPC).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: make the written data (and the length) durable.
    ///
    /// # Errors
    /// I/O errors; after one, the log never trusts earlier writes to be durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncate or extend to `len`.
    ///
    /// # Errors
    /// I/O errors.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Holds a directory's writer lock until dropped.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LockGuard {
    /// Wrap whatever releases the lock when dropped.
    pub fn new(inner: impl Send + Sync + 'static) -> Self {
        LockGuard(Box::new(inner))
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// Why [`Storage::lock`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Someone else holds the lock.
    Held {
        /// Who: a process id, or another handle in this process.
        holder: String,
    },
    /// The lock file could not be used.
    Io(io::Error),
}
