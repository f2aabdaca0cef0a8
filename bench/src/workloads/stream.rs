use std::time::Instant;

use anyhow::ensure;
use flume_core::{Db, Postcard, StreamOpts};
use flume_log_memory::MemoryLog;
use futures::TryStreamExt;

use super::{BenchRecord, Ctx};
use crate::{Metric, Target};

/// Fill a log with typed records, then time one decoded full scan.
pub(crate) async fn scan(ctx: &Ctx, reverse: bool) -> anyhow::Result<Vec<Metric>> {
    let db: Db<BenchRecord> = Db::open(MemoryLog::new(), Postcard).await?;
    let mut id = 0;
    while id < ctx.records {
        let n = 10_000.min(ctx.records - id);
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
    let name = if reverse {
        "stream_rev_rec_s"
    } else {
        "stream_fwd_rec_s"
    };
    Ok(vec![
        Metric::new(name, count as f64 / secs, "rec/s").target(Target::AtLeast(5_000_000.0)),
    ])
}
