//! Same-run baselines: what the hardware does with no Flume code in the way.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sequential write + fdatasync bandwidth in MB/s, writing `total` bytes in `chunk`-byte writes
/// with an fdatasync after each: the I/O pattern of a durable log appending `chunk`-byte batches.
pub(crate) fn disk_write_mb_s(dir: &Path, total: u64, chunk: usize) -> std::io::Result<f64> {
    let mut disk = DiskWrites::create(dir, chunk)?;
    let (bytes, took) = disk.write(total)?;
    Ok(bytes as f64 / 1e6 / took.as_secs_f64())
}

/// A growing file written in `chunk`-byte writes, each followed by an fdatasync; removed on drop.
///
/// Workloads that compare themselves with the disk alternate rounds of their own with rounds of
/// this, so that both see the disk at the same moments: a shared VM disk drifts by ±10% within a
/// minute, more than the margins being measured.
pub(crate) struct DiskWrites {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl DiskWrites {
    pub(crate) fn create(dir: &Path, chunk: usize) -> std::io::Result<Self> {
        let path = dir.join("disk-baseline.tmp");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let buf = (0..chunk).map(|i| (i % 251) as u8).collect();
        Ok(DiskWrites { path, file, buf })
    }

    /// Write at least `bytes` in whole chunks (at least one); the bytes written and the time.
    pub(crate) fn write(&mut self, bytes: u64) -> std::io::Result<(u64, Duration)> {
        let start = Instant::now();
        let mut written = 0u64;
        while written < bytes.max(1) {
            self.file.write_all(&self.buf)?;
            self.file.sync_data()?;
            written += self.buf.len() as u64;
        }
        Ok((written, start.elapsed()))
    }
}

impl Drop for DiskWrites {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
