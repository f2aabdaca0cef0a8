//! Reopen time of a 1 GiB log, and peak memory while appending 10M records (in a child process,
//! so the figure is this workload's alone).

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use flume_core::Log;
use flume_log_offset::{Durability, OffsetLog, Options};

use super::Ctx;
use super::append::{BATCH, RECORD, fill};
use crate::{Metric, Target};

/// The argument that makes the bench binary run the RSS child instead of the harness.
pub(crate) const RSS_CHILD: &str = "--internal-rss-child";

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

pub(crate) async fn rss(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("rss");
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg(RSS_CHILD)
        .arg(&dir)
        .arg("10000000")
        .output()?;
    if !out.status.success() {
        bail!(
            "the RSS child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("RSS child printed {text:?}"))?;
    std::fs::remove_dir_all(&dir)?;
    Ok(vec![
        Metric::new("rss_mb_append_10m", kib / 1024.0, "MB").target(Target::AtMost(64.0)),
    ])
}

/// In the child: append `records` durable 100-byte records in batches, then print the peak RSS
/// (VmHWM) in KiB.
pub(crate) fn rss_child(dir: &str, records: &str) -> anyhow::Result<()> {
    let records: u64 = records.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let log = OffsetLog::open(dir)?;
        fill(&log, records.div_ceil(BATCH as u64) * BATCH as u64).await?;
        log.close().await?;
        anyhow::Ok(())
    })?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    println!("{}", hwm.trim().trim_end_matches("kB").trim());
    Ok(())
}
