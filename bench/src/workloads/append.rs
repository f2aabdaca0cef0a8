//! Append workloads: batches on each log beside the disk baseline, and awaited durable appends
//! from 1 and 64 writers (group commit).

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Rounds of the batch workload, each followed by a round of the disk baseline.
const ROUNDS: u64 = 5;

/// Append `records` (rounded up to whole batches) 100-byte records in batches of 1000 from one
/// appender that awaits each batch before sending the next; the records appended and the time.
///
/// Like a producer that reads its next batch while the last one is made durable, each batch is
/// built while the previous append is in flight: the figure is the log's, not the cost of making
/// records (the disk baseline, too, writes a buffer made before its clock starts). A batch's
/// records are slices of one buffer, as when a server splits a request body.
pub(crate) async fn fill(log: &dyn Log, records: u64) -> anyhow::Result<(u64, Duration)> {
    let batches = records.div_ceil(BATCH as u64);
    let mut next = batch();
    let start = Instant::now();
    for i in 1..=batches {
        let this = std::mem::take(&mut next);
        // `join!` polls the append first, so the batch is queued before the next one is built.
        let (appended, made) = tokio::join!(log.append_batch(this), async {
            if i < batches { batch() } else { Vec::new() }
        });
        appended?;
        next = made;
    }
    Ok((batches * BATCH as u64, start.elapsed()))
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// One batch of `BATCH` records of `RECORD` bytes.
fn batch() -> Vec<Bytes> {
    let mut body = Bytes::from(vec![7u8; RECORD * BATCH]);
    (0..BATCH).map(|_| body.split_to(RECORD)).collect()
}

/// Batches on log-offset (`Sync`) beside the disk baseline, alternating in rounds so that both
/// see the disk at the same moments (see [`baseline::DiskWrites`]).
pub(crate) async fn append_batch(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let per_round = ctx.records.div_ceil(ROUNDS);
    let log = OffsetLog::open(ctx.dir.join("append_batch"))?;
    let mut disk = baseline::DiskWrites::create(&ctx.dir, RECORD * BATCH)?;
    let (mut appended, mut log_time) = (0, Duration::ZERO);
    let (mut written, mut disk_time) = (0, Duration::ZERO);
    for _ in 0..ROUNDS {
        let (n, took) = fill(&log, per_round).await?;
        (appended, log_time) = (appended + n, log_time + took);
        let (n, took) = disk.write(per_round * RECORD as u64)?;
        (written, disk_time) = (written + n, disk_time + took);
    }
    log.close().await?;
    let rec_s = rate(appended, log_time);
    let mb_s = rec_s * RECORD as f64 / 1e6;
    let disk_mb_s = rate(written, disk_time) / 1e6;
    Ok(vec![
        Metric::new("append_batch_disk_mb_s", disk_mb_s, "MB/s"),
        Metric::new("append_batch_rec_s", rec_s, "rec/s"),
        Metric::new("append_batch_mb_s", mb_s, "MB/s").beside("append_batch_disk_mb_s"),
        Metric::new("append_batch_disk_ratio", mb_s / disk_mb_s, "x")
            .target(Target::AtLeast(0.7))
            .beside("append_batch_disk_mb_s"),
    ])
}

pub(crate) async fn mem_append_batch(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let log = MemoryLog::new();
    let (n, took) = fill(&log, ctx.records).await?;
    log.close().await?;
    Ok(vec![Metric::new(
        "mem_append_batch_rec_s",
        rate(n, took),
        "rec/s",
    )])
}

/// Rounds of the durable workload: the two writer counts take turns, so that both rates (and
/// their ratio) come from the same stretch of time on a host whose disk and CPUs drift.
const DURABLE_ROUNDS: u32 = 4;

/// Awaited single-record durable appends from 1 and from 64 concurrent writers, each on its own
/// log, with what each log's writer reports: the mean `fdatasync` and, for 64 writers, how many
/// appends each sync served (group commit).
pub(crate) async fn durable(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let one = OffsetLog::open(ctx.dir.join("durable-w1"))?;
    let many = Arc::new(OffsetLog::open(ctx.dir.join("durable-w64"))?);
    // Each awaited append costs an fdatasync, so these counts keep the run short: 2,000 awaited
    // appends from one writer, 32,000 from 64.
    let (mut w1, mut w64) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..DURABLE_ROUNDS {
        w1 += single(&one, 500).await?;
        w64 += concurrent(&many, 64, 125).await?;
    }
    let (s1, s64) = (one.write_stats(), many.write_stats());
    one.close().await?;
    many.close().await?;
    let w1 = s1.records as f64 / w1.as_secs_f64();
    let w64 = s64.records as f64 / w64.as_secs_f64();
    let sync_us =
        |s: flume_log_offset::WriteStats| s.mean_sync().map_or(0.0, |d| d.as_secs_f64() * 1e6);
    Ok(vec![
        Metric::new("append_durable_w1_rec_s", w1, "rec/s"),
        Metric::new("append_durable_w64_rec_s", w64, "rec/s").beside("append_durable_w1_rec_s"),
        Metric::new("append_durable_w64_over_w1", w64 / w1, "x").target(Target::AtLeast(20.0)),
        Metric::new("append_durable_w1_sync_us", sync_us(s1), "µs"),
        Metric::new("append_durable_w64_sync_us", sync_us(s64), "µs")
            .beside("append_durable_w1_sync_us"),
        Metric::new(
            "append_durable_w64_per_sync",
            s64.batches_per_sync().unwrap_or(0.0),
            "rec",
        ),
    ])
}

/// `each` awaited appends from one writer; the time they took.
async fn single(log: &OffsetLog, each: usize) -> anyhow::Result<Duration> {
    let record = Bytes::from(vec![7u8; RECORD]);
    let start = Instant::now();
    for _ in 0..each {
        log.append(record.clone()).await?;
    }
    Ok(start.elapsed())
}

/// `each` awaited appends from each of `writers` tasks; the time they all took.
async fn concurrent(log: &Arc<OffsetLog>, writers: usize, each: usize) -> anyhow::Result<Duration> {
    let record = Bytes::from(vec![7u8; RECORD]);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let log = Arc::clone(log);
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
    Ok(start.elapsed())
}
