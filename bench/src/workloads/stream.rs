//! Decoded full scans, forward and reverse, on each log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use flume_core::{Codec, Db, DbOptions, Log, Postcard, StreamOpts, stream_owned};
use flume_log_memory::MemoryLog;
use flume_log_offset::{Durability, OffsetLog, Options};
use futures::TryStreamExt;

use super::{BenchRecord, Ctx, append_records};
use crate::{Metric, Target};

/// Scan a log-offset log (from the page cache, as just written).
pub(crate) async fn offset(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let name = if reverse { "stream_rev" } else { "stream_fwd" };
    let opts = Options::new().durability(Durability::Buffered);
    let log = Arc::new(OffsetLog::open_with(ctx.dir.join(name), opts)?);
    let db = filled(ctx, Arc::clone(&log) as Arc<dyn Log>).await?;
    // On disk before the clock starts, still in the page cache: scans beside the kernel's
    // writeback of the 100 MB just written would be measuring the writeback too.
    log.sync().await?;
    scan(ctx, db, log, reverse, name).await
}

pub(crate) async fn memory(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let name = if reverse {
        "mem_stream_rev"
    } else {
        "mem_stream_fwd"
    };
    let log: Arc<dyn Log> = Arc::new(MemoryLog::new());
    let db = filled(ctx, Arc::clone(&log)).await?;
    scan(ctx, db, log, reverse, name).await
}

/// A database on `log` holding `ctx.records` typed 100-byte records.
async fn filled(ctx: &Ctx, log: Arc<dyn Log>) -> anyhow::Result<Db<BenchRecord>> {
    let db = Db::open_with(log, Arc::new(Postcard), DbOptions::default()).await?;
    append_records(&db, ctx.records, BenchRecord::new).await?;
    Ok(db)
}

/// A scan's baseline: the same records, encoded the same way, decoded from memory with no log.
///
/// A decoded scan cannot be faster than decoding alone, and on a shared VM that cost moves with
/// the host's load from one second to the next; so it is timed just before and just after the
/// scan, and the scan is read beside both passes together. The records lie in one buffer, as the
/// scan's lie in the log's read chunks, not in a million allocations kept alive through the scan.
struct Decoding {
    buf: Vec<u8>,
    /// Where each record ends in `buf`.
    ends: Vec<usize>,
    sum: u64,
}

impl Decoding {
    fn new(records: u64) -> anyhow::Result<Self> {
        let codec = Postcard;
        let (mut buf, mut ends) = (Vec::new(), Vec::with_capacity(records as usize));
        for id in 0..records {
            buf.extend_from_slice(&Codec::<BenchRecord>::encode(
                &codec,
                &BenchRecord::new(id),
            )?);
            ends.push(buf.len());
        }
        Ok(Decoding {
            buf,
            ends,
            sum: (0..records).sum(),
        })
    }

    /// The time of one pass over every record.
    fn pass(&self) -> anyhow::Result<Duration> {
        let codec = Postcard;
        let start = Instant::now();
        let (mut checksum, mut at) = (0u64, 0);
        for &end in &self.ends {
            let record: BenchRecord = codec.decode(&self.buf[at..end])?;
            checksum = checksum.wrapping_add(record.id);
            at = end;
        }
        let took = start.elapsed();
        ensure!(checksum == self.sum, "decoding returned wrong records");
        Ok(took)
    }
}

/// Scans timed per workload. A scan of 1M records takes a fifth of a second, and on this VM
/// consecutive scans of the same log ranged from 4.3M to 6.7M records/s: the figures are
/// medians, not one draw.
const SCANS: usize = 5;

/// Time [`SCANS`] decoded full scans of `db`'s records, each between two passes of its baseline,
/// and as many undecoded ones of its `log`; report the medians.
async fn scan(
    ctx: &Ctx,
    db: Db<BenchRecord>,
    log: Arc<dyn Log>,
    reverse: bool,
    name: &str,
) -> anyhow::Result<Vec<Metric>> {
    let decoding = Decoding::new(ctx.records)?;
    let mut opts = StreamOpts::new().values();
    opts.reverse = reverse;
    let (mut rates, mut decodes, mut ratios, mut bytes) = (vec![], vec![], vec![], vec![]);
    for _ in 0..SCANS {
        let (rate, decode) = decoded_scan(&db, &opts, &decoding).await?;
        rates.push(rate);
        decodes.push(decode);
        ratios.push(rate / decode);
    }
    for _ in 0..SCANS {
        let len = decoding.buf.len();
        bytes.push(bytes_scan(Arc::clone(&log), opts.clone(), ctx.records, len).await?);
    }
    db.close().await?;
    let baseline = format!("{name}_decode_rec_s");
    Ok(vec![
        Metric::new(baseline.clone(), median(decodes), "rec/s"),
        Metric::new(format!("{name}_rec_s"), median(rates), "rec/s")
            .target(Target::AtLeast(5_000_000.0))
            .beside(baseline.clone()),
        Metric::new(format!("{name}_over_decode"), median(ratios), "x").beside(baseline),
        Metric::new(format!("{name}_bytes_rec_s"), median(bytes), "rec/s"),
    ])
}

/// One decoded full scan, in records per second, and its baseline: decoding alone, one pass
/// just before and one just after, both passes' records over both passes' time (a mean of the
/// two rates would lean to the faster one).
async fn decoded_scan(
    db: &Db<BenchRecord>,
    opts: &StreamOpts,
    decoding: &Decoding,
) -> anyhow::Result<(f64, f64)> {
    let records = decoding.ends.len() as u64;
    let before = decoding.pass()?;
    let start = Instant::now();
    let (count, checksum) = db
        .stream(opts.clone())
        .try_fold((0u64, 0u64), |(n, sum), item| async move {
            let id = item.into_value().map_or(0, |r| r.id);
            Ok((n + 1, sum.wrapping_add(id)))
        })
        .await?;
    let secs = start.elapsed().as_secs_f64();
    let decode = 2.0 * records as f64 / (before + decoding.pass()?).as_secs_f64();
    ensure!(count == records, "scanned {count} of {records} records");
    ensure!(checksum == decoding.sum, "the scan returned wrong records");
    Ok((count as f64 / secs, decode))
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

/// The same scan without decoding, in records per second: each record's bytes as the log
/// returns them, moved into an item the caller drops (one reference count more per record than
/// a decoded scan, which only borrows them).
async fn bytes_scan(
    log: Arc<dyn Log>,
    opts: StreamOpts,
    records: u64,
    bytes: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let (count, len) = stream_owned(log, opts)
        .try_fold((0u64, 0usize), |(n, len), item| async move {
            Ok((n + 1, len + item.value().map_or(0, |v| v.len())))
        })
        .await?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(count == records, "scanned {count} of {records} records");
    ensure!(len == bytes, "scanned {len} bytes of {bytes}");
    Ok(count as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_is_the_middle_value() {
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
