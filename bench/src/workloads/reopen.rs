//! Reopen time of a 1 GiB log, and peak memory while appending 10M records (at the default
//! `--records`; both scale with it).

use std::time::Instant;

use anyhow::Context;
use flume_core::Log;
use flume_log_offset::{Durability, OffsetLog, Options};

use super::Ctx;
use super::append::{RECORD, fill};
use crate::{DEFAULT_RECORDS, Metric, Target};

/// Bytes a log-offset frame adds to its record (docs/design.md §5).
const FRAME: u64 = 20;

/// Open time of a log of 100-byte records whose frames fill 1 GiB and 4 MiB more at the default
/// `--records`: 16 full segments, and a last one longer than the 1 MiB that open verifies (a
/// shorter one would be read less). A smaller run writes a proportionally smaller log (so
/// the smoke test can run it), under the same metric name, as `rss` does.
pub(crate) async fn reopen(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("reopen");
    let size = (1u128 << 30) + (4 << 20);
    let bytes = size * u128::from(ctx.records) / u128::from(DEFAULT_RECORDS);
    let records = u64::try_from(bytes / u128::from(RECORD as u64 + FRAME))?.max(1);
    let log = OffsetLog::open_with(&dir, Options::new().durability(Durability::Buffered))?;
    fill(&log, records).await?;
    log.close().await?;
    drop(log);
    let start = Instant::now();
    let log = OffsetLog::open(&dir)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    log.close().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(vec![
        Metric::new("reopen_ms_1gb", ms, "ms").target(Target::AtMost(100.0)),
    ])
}

/// Peak memory (VmHWM) after appending ten times `--records` (10M at the default) durable
/// 100-byte records in batches. The workload runs in a process of its own, so the peak is its
/// alone.
pub(crate) async fn rss(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("rss");
    let log = OffsetLog::open(&dir)?;
    fill(&log, 10 * ctx.records).await?;
    log.close().await?;
    drop(log);
    std::fs::remove_dir_all(&dir)?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("VmHWM is not a number")?;
    Ok(vec![
        Metric::new("rss_mb_append_10m", kib / 1024.0, "MB").target(Target::AtMost(64.0)),
    ])
}
