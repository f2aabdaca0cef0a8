//! A read-only file in memory for unit tests of the readers: it counts the bytes read from it
//! and can fail reads with EIO from an offset on, which [`SimStorage`](super::SimStorage)'s
//! faults (on mutating operations) do not.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StorageFile;

pub(crate) struct MemFile {
    data: Vec<u8>,
    /// Reads that reach past this offset fail with EIO.
    fail_from: u64,
    read: AtomicU64,
}

impl MemFile {
    pub(crate) fn new(data: Vec<u8>) -> Self {
        MemFile {
            data,
            fail_from: u64::MAX,
            read: AtomicU64::new(0),
        }
    }

    pub(crate) fn failing_from(mut self, offset: u64) -> Self {
        self.fail_from = offset;
        self
    }

    /// The bytes read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

impl StorageFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        if end > self.fail_from {
            return Err(io::Error::from_raw_os_error(5));
        }
        let src = self.data.get(offset as usize..end as usize);
        buf.copy_from_slice(src.ok_or(io::ErrorKind::UnexpectedEof)?);
        self.read.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        unreachable!("a MemFile is only read")
    }
    fn sync_data(&self) -> io::Result<()> {
        unreachable!("a MemFile is only read")
    }
    fn set_len(&self, _: u64) -> io::Result<()> {
        unreachable!("a MemFile is only read")
    }
}
