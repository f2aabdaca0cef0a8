//! Same-run baselines: what the hardware does with no Flume code in the way.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Sequential write + fdatasync bandwidth in MB/s, writing `total` bytes in `chunk`-byte writes
/// with an fdatasync after each: the I/O pattern of a durable log appending `chunk`-byte batches.
pub(crate) fn disk_write_mb_s(dir: &Path, total: u64, chunk: usize) -> std::io::Result<f64> {
    let path = dir.join("disk-baseline.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let buf: Vec<u8> = (0..chunk).map(|i| (i % 251) as u8).collect();
    let start = Instant::now();
    let mut written = 0u64;
    while written < total {
        file.write_all(&buf)?;
        file.sync_data()?;
        written += chunk as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(written as f64 / 1e6 / secs)
}
