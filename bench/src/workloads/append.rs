use std::time::Instant;

use flume_core::{Bytes, Log};
use flume_log_memory::MemoryLog;

use super::Ctx;
use crate::{Metric, Target, baseline};

/// Bytes per record and records per batch of the append workloads (design.md §7).
const RECORD: usize = 100;
const BATCH: usize = 1000;

pub(crate) async fn disk(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let total = (ctx.records * RECORD as u64).max((RECORD * BATCH) as u64);
    let mb_s = baseline::disk_write_mb_s(&ctx.dir, total, RECORD * BATCH)?;
    Ok(vec![Metric::new("disk_write_mb_s", mb_s, "MB/s")])
}

pub(crate) async fn append_batch(ctx: &Ctx, seen: &[Metric]) -> anyhow::Result<Vec<Metric>> {
    let mut out = Vec::new();
    let disk_mb_s = match seen.iter().find(|m| m.name == "disk_write_mb_s") {
        Some(m) => m.value,
        None => {
            let m = disk(ctx).await?;
            let v = m[0].value;
            out.extend(m);
            v
        }
    };
    let log = MemoryLog::new();
    let record = Bytes::from(vec![7u8; RECORD]);
    let batches = ctx.records.div_ceil(BATCH as u64);
    let start = Instant::now();
    for _ in 0..batches {
        log.append_batch(vec![record.clone(); BATCH]).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    let records = (batches * BATCH as u64) as f64;
    let mb_s = records * RECORD as f64 / 1e6 / secs;
    out.push(Metric::new("append_batch_rec_s", records / secs, "rec/s"));
    out.push(Metric::new("append_batch_mb_s", mb_s, "MB/s").beside("disk_write_mb_s"));
    out.push(
        Metric::new("append_batch_disk_ratio", mb_s / disk_mb_s, "x")
            .target(Target::AtLeast(0.7))
            .beside("disk_write_mb_s"),
    );
    log.close().await?;
    Ok(out)
}
