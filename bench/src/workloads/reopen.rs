//! Reopen time of a 1 GiB log, and peak memory while appending 10M records.

use std::time::Instant;

use anyhow::Context;
use flume_core::Log;
use flume_log_offset::{Durability, OffsetLog, Options};

use super::Ctx;
use super::append::{RECORD, fill};
use crate::{Metric, Target};

pub(crate) async fn reopen(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("reopen");
    let gib = 1u64 << 30;
    let records = gib / (RECORD as u64 + 16);
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
