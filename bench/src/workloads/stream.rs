//! Decoded full scans, forward and reverse, on each log.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use flume_core::{Bytes, Codec, Db, DbOptions, Log, Postcard, StreamOpts};
use flume_log_memory::MemoryLog;
use flume_log_offset::{Durability, OffsetLog, Options};
use futures::TryStreamExt;

use super::{BenchRecord, Ctx};
use crate::{Metric, Target};

/// The metrics of one scan: the scan, its decoding baseline, and their ratio.
struct Names {
    scan: &'static str,
    decode: &'static str,
    ratio: &'static str,
}

/// Builds the [`Names`] of a scan from its prefix.
macro_rules! names {
    ($prefix:literal) => {
        Names {
            scan: concat!($prefix, "_rec_s"),
            decode: concat!($prefix, "_decode_rec_s"),
            ratio: concat!($prefix, "_over_decode"),
        }
    };
}

/// Scan a log-offset log (from the page cache, as just written).
pub(crate) async fn offset(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx
        .dir
        .join(if reverse { "stream_rev" } else { "stream_fwd" });
    let opts = Options::new().durability(Durability::Buffered);
    let log = Arc::new(OffsetLog::open_with(dir, opts)?);
    let names = if reverse {
        names!("stream_rev")
    } else {
        names!("stream_fwd")
    };
    scan(ctx, log, reverse, names).await
}

pub(crate) async fn memory(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let names = if reverse {
        names!("mem_stream_rev")
    } else {
        names!("mem_stream_fwd")
    };
    scan(ctx, Arc::new(MemoryLog::new()), reverse, names).await
}

/// A scan's baseline: the same records, encoded the same way, decoded from memory with no log.
///
/// A decoded scan cannot be faster than decoding alone, and on a shared VM that cost moves with
/// the host's load from one second to the next; so it is timed just before and just after the
/// scan, and the scan is read beside the mean.
struct Decoding {
    encoded: Vec<Bytes>,
    sum: u64,
}

impl Decoding {
    fn new(records: u64) -> anyhow::Result<Self> {
        let codec = Postcard;
        let encoded = (0..records)
            .map(|id| Codec::<BenchRecord>::encode(&codec, &BenchRecord::new(id)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Decoding {
            encoded,
            sum: (0..records).sum(),
        })
    }

    /// One timed pass, in records per second.
    fn rate(&self) -> anyhow::Result<f64> {
        let codec = Postcard;
        let start = Instant::now();
        let mut checksum = 0u64;
        for bytes in &self.encoded {
            let record: BenchRecord = codec.decode(bytes)?;
            checksum = checksum.wrapping_add(record.id);
        }
        let secs = start.elapsed().as_secs_f64();
        ensure!(checksum == self.sum, "decoding returned wrong records");
        Ok(self.encoded.len() as f64 / secs)
    }
}

/// Fill the log with typed records of about 100 bytes, then time one decoded full scan between
/// two passes of its baseline.
async fn scan(
    ctx: &Ctx,
    log: Arc<dyn Log>,
    reverse: bool,
    names: Names,
) -> anyhow::Result<Vec<Metric>> {
    let db: Db<BenchRecord> = Db::open_with(log, Arc::new(Postcard), DbOptions::default()).await?;
    let mut id = 0;
    while id < ctx.records {
        let n = 1_000.min(ctx.records - id);
        db.append_batch((id..id + n).map(BenchRecord::new).collect())
            .await?;
        id += n;
    }
    let decoding = Decoding::new(ctx.records)?;
    let before = decoding.rate()?;
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
    let decode = (before + decoding.rate()?) / 2.0;
    ensure!(
        count == ctx.records,
        "scanned {count} of {} records",
        ctx.records
    );
    ensure!(checksum == decoding.sum, "the scan returned wrong records");
    db.close().await?;
    let rate = count as f64 / secs;
    Ok(vec![
        Metric::new(names.decode, decode, "rec/s"),
        Metric::new(names.scan, rate, "rec/s")
            .target(Target::AtLeast(5_000_000.0))
            .beside(names.decode),
        Metric::new(names.ratio, rate / decode, "x").beside(names.decode),
    ])
}
