//! [`WriteStats`]: what a log's writer has done since the log was opened, so a user (or the
//! benchmark) can see how many appenders each `fdatasync` served and what a sync costs.

use std::time::Duration;

/// Counts of a log's successful writes and syncs since it was opened: see
/// [`OffsetLog::write_stats`](crate::OffsetLog::write_stats).
///
/// Only work that succeeded is counted: a failed write or sync (which poisons the writer) adds
/// nothing. A batch is counted before it is acknowledged, so once an append returns, the stats
/// read afterwards include it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Batches acknowledged (an `append` is a batch of one record).
    pub batches: u64,
    /// Records acknowledged.
    pub records: u64,
    /// Bytes written as frames (each record's length plus the frame's 20 bytes).
    pub bytes: u64,
    /// `write` calls: one per group of batches, one more when a group runs into a new segment.
    pub writes: u64,
    /// `fdatasync` calls: one per group in [`Durability::Sync`](crate::Durability::Sync), and
    /// in both modes the syncs of a full segment, of [`OffsetLog::sync`](crate::OffsetLog::sync)
    /// and of the close (in `Buffered` mode, also one per 4 MiB written).
    pub syncs: u64,
    /// Time spent in those `fdatasync` calls.
    pub sync_time: Duration,
}

impl WriteStats {
    /// Batches acknowledged per sync: how many appenders each `fdatasync` served (group commit).
    /// `None` before the first sync.
    pub fn batches_per_sync(&self) -> Option<f64> {
        (self.syncs > 0).then(|| self.batches as f64 / self.syncs as f64)
    }

    /// The mean time of one `fdatasync`; `None` before the first.
    pub fn mean_sync(&self) -> Option<Duration> {
        let nanos = self
            .sync_time
            .as_nanos()
            .checked_div(u128::from(self.syncs))?;
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// Count one successful write of `bytes` carrying `batches` batches of `records` records,
    /// with the sync that followed it, if any.
    pub(crate) fn wrote(
        &mut self,
        batches: usize,
        records: usize,
        bytes: u64,
        synced: Option<Duration>,
    ) {
        self.batches += batches as u64;
        self.records += records as u64;
        self.bytes += bytes;
        self.writes += 1;
        if let Some(took) = synced {
            self.synced(took);
        }
    }

    /// Count one successful sync that took `took`.
    pub(crate) fn synced(&mut self, took: Duration) {
        self.syncs += 1;
        self.sync_time += took;
    }
}
