//! Decoded full scans, forward and reverse, on each log.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use flume_core::{Codec, Db, DbOptions, Log, Postcard, StreamOpts};
use flume_log_memory::MemoryLog;
use flume_log_offset::{Durability, OffsetLog, Options};
use futures::TryStreamExt;

use super::{BenchRecord, Ctx};
use crate::{Metric, Target};

/// Scan a log-offset log (from the page cache, as just written).
pub(crate) async fn offset(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx
        .dir
        .join(if reverse { "stream_rev" } else { "stream_fwd" });
    let opts = Options::new().durability(Durability::Buffered);
    let log = Arc::new(OffsetLog::open_with(dir, opts)?);
    let name = if reverse {
        "stream_rev_rec_s"
    } else {
        "stream_fwd_rec_s"
    };
    scan(ctx, log, reverse, name).await
}

pub(crate) async fn memory(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let name = if reverse {
        "mem_stream_rev_rec_s"
    } else {
        "mem_stream_fwd_rec_s"
    };
    scan(ctx, Arc::new(MemoryLog::new()), reverse, name).await
}

/// The scans' baseline: one pass decoding the same records, encoded the same way, from memory.
///
/// A decoded scan cannot be faster than decoding alone, and on a shared VM that cost moves with
/// the host's load; read beside it, a scan's figure says what the log and the stream add.
pub(crate) async fn decode(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let codec = Postcard;
    let encoded = (0..ctx.records)
        .map(|id| Codec::<BenchRecord>::encode(&codec, &BenchRecord::new(id)))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut checksum = 0u64;
    for bytes in &encoded {
        let record: BenchRecord = codec.decode(bytes)?;
        checksum = checksum.wrapping_add(record.id);
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        checksum == (0..ctx.records).sum::<u64>(),
        "decoding returned wrong records"
    );
    Ok(vec![Metric::new(
        "decode_rec_s",
        ctx.records as f64 / secs,
        "rec/s",
    )])
}

/// Fill the log with typed records of about 100 bytes, then time one decoded full scan.
async fn scan(
    ctx: &Ctx,
    log: Arc<dyn Log>,
    reverse: bool,
    name: &'static str,
) -> anyhow::Result<Vec<Metric>> {
    let db: Db<BenchRecord> = Db::open_with(log, Arc::new(Postcard), DbOptions::default()).await?;
    let mut id = 0;
    while id < ctx.records {
        let n = 1_000.min(ctx.records - id);
        db.append_batch((id..id + n).map(BenchRecord::new).collect())
            .await?;
        id += n;
    }
    let mut opts = StreamOpts::new().values();
    opts.reverse = reverse;
    let start = Instant::now();
    let (count, checksum) = db
        .stream(opts)
        .try_fold((0u64, 0u64), |(n, sum), item| async move {
            let id = item.into_value().map_or(0, |r| r.id);
            Ok((n + 1, sum.wrapping_add(id)))
        })
        .await?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(
        count == ctx.records,
        "scanned {count} of {} records",
        ctx.records
    );
    ensure!(
        checksum == (0..ctx.records).sum::<u64>(),
        "the scan returned wrong records"
    );
    db.close().await?;
    Ok(vec![
        Metric::new(name, count as f64 / secs, "rec/s")
            .target(Target::AtLeast(5_000_000.0))
            .beside("decode_rec_s"),
    ])
}
