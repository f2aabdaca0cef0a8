//! How a log is opened.

/// When an append is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Acknowledge after `fdatasync`: acknowledged records survive a process crash and a power
    /// loss. Concurrent appenders share one `fdatasync` (group commit).
    #[default]
    Sync,
    /// Acknowledge after `write`: acknowledged records survive a crash of the process, but a
    /// power loss or kernel crash may lose the records written since the last sync (after a
    /// group once 4 MiB are unsynced, so up to about 12 MiB; a segment switch;
    /// [`close`](flume_core::Log::close); [`OffsetLog::sync`](crate::OffsetLog::sync)). What
    /// survives is still a prefix of whole batches.
    Buffered,
}

/// Options of [`OffsetLog::open_with`](crate::OffsetLog::open_with).
///
/// ```
/// use flume_log_offset::{Durability, Options};
/// let opts = Options::new().durability(Durability::Buffered).segment_size(8 << 20);
/// assert_eq!(opts.durability, Durability::Buffered);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// When appends are acknowledged. Default [`Durability::Sync`].
    pub durability: Durability,
    /// A segment file is closed and a new one started once it would grow past this many bytes
    /// (a batch is never split, so one larger batch makes one larger segment). Default 64 MiB.
    pub segment_size: u64,
    /// The largest record an append accepts, in bytes; checked before anything is written.
    /// Default 16 MiB. Reads do not apply it: records written under a larger limit stay
    /// readable (and recovery keeps them) after a reopen with a smaller one, and a frame's
    /// length is checked against the data around it before anything is allocated for it.
    pub max_record_size: u32,
    /// Bytes of appends that may wait for the writer; further appends wait (backpressure).
    /// Default 32 MiB.
    pub queue_bytes: usize,
    /// Open without the writer lock: appends fail with `ReadOnly`, a torn tail is ignored rather
    /// than cut, and a corrupt tail is reported by
    /// [`OffsetLog::corruption`](crate::OffsetLog::corruption) while what precedes it stays
    /// readable. Beside a live writer it sees the files as they are, which may include the
    /// group the writer is syncing, before it is acknowledged. Default false.
    pub read_only: bool,
    /// How many bytes before the end of the log open verifies (checksums) besides the torn-tail
    /// window, so recent corruption is found at open rather than on read. Open time grows with
    /// this, never with the log's size. Default 1 MiB.
    pub verify_tail_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            segment_size: 64 << 20,
            max_record_size: 16 << 20,
            queue_bytes: 32 << 20,
            read_only: false,
            verify_tail_bytes: 1 << 20,
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set [`durability`](Self::durability).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
    /// Set [`segment_size`](Self::segment_size).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }
    /// Set [`max_record_size`](Self::max_record_size).
    pub fn max_record_size(mut self, bytes: u32) -> Self {
        self.max_record_size = bytes;
        self
    }
    /// Set [`queue_bytes`](Self::queue_bytes).
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }
    /// Set [`read_only`](Self::read_only).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// Set [`verify_tail_bytes`](Self::verify_tail_bytes).
    pub fn verify_tail_bytes(mut self, bytes: u64) -> Self {
        self.verify_tail_bytes = bytes;
        self
    }
}
