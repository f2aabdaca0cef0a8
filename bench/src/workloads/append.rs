//! Append workloads: batches on each log beside the disk baseline, and awaited durable appends
//! from 1 and 64 writers (group commit).

use std::sync::Arc;
use std::time::Instant;

use flume_core::{Bytes, Log};
use flume_log_memory::MemoryLog;
use flume_log_offset::OffsetLog;

use super::Ctx;
use crate::{Metric, Target, baseline};

/// Bytes per record and records per batch of the append workloads (design.md §7).
pub(crate) const RECORD: usize = 100;
pub(crate) const BATCH: usize = 1000;

pub(crate) async fn disk(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let total = (ctx.records * RECORD as u64).max((RECORD * BATCH) as u64);
    let mb_s = baseline::disk_write_mb_s(&ctx.dir, total, RECORD * BATCH)?;
    Ok(vec![Metric::new("disk_write_mb_s", mb_s, "MB/s")])
}

/// The disk baseline from this run, measuring it first if no earlier workload did.
async fn disk_mb_s(ctx: &Ctx, seen: &[Metric], out: &mut Vec<Metric>) -> anyhow::Result<f64> {
    if let Some(m) = seen.iter().find(|m| m.name == "disk_write_mb_s") {
        return Ok(m.value);
    }
    let m = disk(ctx).await?;
    let v = m[0].value;
    out.extend(m);
    Ok(v)
}

/// Append `records` 100-byte records in batches of 1000; records per second.
pub(crate) async fn fill(log: &dyn Log, records: u64) -> anyhow::Result<f64> {
    let record = Bytes::from(vec![7u8; RECORD]);
    let batches = records.div_ceil(BATCH as u64);
    let start = Instant::now();
    for _ in 0..batches {
        log.append_batch(vec![record.clone(); BATCH]).await?;
    }
    Ok((batches * BATCH as u64) as f64 / start.elapsed().as_secs_f64())
}

pub(crate) async fn append_batch(ctx: &Ctx, seen: &[Metric]) -> anyhow::Result<Vec<Metric>> {
    let mut out = Vec::new();
    let disk = disk_mb_s(ctx, seen, &mut out).await?;
    let log = OffsetLog::open(ctx.dir.join("append_batch"))?;
    let rec_s = fill(&log, ctx.records).await?;
    log.close().await?;
    let mb_s = rec_s * RECORD as f64 / 1e6;
    out.push(Metric::new("append_batch_rec_s", rec_s, "rec/s"));
    out.push(Metric::new("append_batch_mb_s", mb_s, "MB/s").beside("disk_write_mb_s"));
    out.push(
        Metric::new("append_batch_disk_ratio", mb_s / disk, "x")
            .target(Target::AtLeast(0.7))
            .beside("disk_write_mb_s"),
    );
    Ok(out)
}

pub(crate) async fn mem_append_batch(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let log = MemoryLog::new();
    let rec_s = fill(&log, ctx.records).await?;
    log.close().await?;
    Ok(vec![Metric::new("mem_append_batch_rec_s", rec_s, "rec/s")])
}

/// Awaited single-record durable appends from 1 and from 64 concurrent writers.
pub(crate) async fn durable(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    // Each awaited append costs an fdatasync, so these counts keep the run short.
    let w1 = writers(ctx, "w1", 1, 2_000).await?;
    let w64 = writers(ctx, "w64", 64, 500).await?;
    Ok(vec![
        Metric::new("append_durable_w1_rec_s", w1, "rec/s"),
        Metric::new("append_durable_w64_rec_s", w64, "rec/s").beside("append_durable_w1_rec_s"),
        Metric::new("append_durable_w64_over_w1", w64 / w1, "x").target(Target::AtLeast(20.0)),
    ])
}

async fn writers(ctx: &Ctx, name: &str, writers: usize, each: usize) -> anyhow::Result<f64> {
    let log = Arc::new(OffsetLog::open(ctx.dir.join(format!("durable-{name}")))?);
    let record = Bytes::from(vec![7u8; RECORD]);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let log = Arc::clone(&log);
        let record = record.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..each {
                log.append(record.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = (writers * each) as f64 / start.elapsed().as_secs_f64();
    log.close().await?;
    Ok(rate)
}
