//! The writer thread: one thread owns the active segment, takes every queued batch at once,
//! writes them with one `write` and one `fdatasync` (group commit), then acknowledges them. In
//! `Sync` mode it may first wait a moment for the appenders it just acknowledged (see
//! [`gather`]).
//!
//! Invariants:
//! - a batch never spans segments, so a torn batch is always in the last segment;
//! - a segment is synced before its successor is created, so only the last one can be torn;
//! - `since` moves only after the write (and, in `Sync` mode, the sync) succeeded, so readers
//!   never see an unacknowledged record;
//! - after any failed write or sync the writer is poisoned: it never retries (a failed fsync
//!   may have dropped dirty pages, ATC'20) and refuses every later batch until reopened;
//! - the active segment runs on with zeros past its frames ([`PREFILL`]) and is cut back to its
//!   last frame when sealed or closed, so sealed segments still tile by their lengths.
//!
//! Measured and not done: framing half of a large group on a helper thread while the writer
//! frames and writes the other half made batches slower (waking the helper takes about 20 µs
//! on a VM, and it competes with the appenders for the cores); preallocating segments with
//! `fallocate` did not make a batch's `write` and `fdatasync` cheaper than on a growing file
//! (ext4; writing zeros did, see [`PREFILL`]); `O_DIRECT` writes made them cheaper but every read
//! right after them slower (views read each record as soon as it is written; see
//! docs/design.md §5).

mod gather;
mod reclaim;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvError, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flume_core::{LogError, Seq};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

pub(crate) use self::gather::Gather;
use self::gather::Policy;
use self::reclaim::Reclaimer;
use crate::frame::{self, BATCH_END, FrameBuf, SEG_HEADER};
use crate::log::{Shared, lock};
use crate::options::Durability;
use crate::recovery::create_segment;
use crate::segment::Segment;
use crate::storage::{LockGuard, StorageFile};

/// Stop gathering a group at this many bytes, so one write stays a reasonable size.
const GROUP_BYTES: u64 = 8 << 20;
/// In `Buffered` mode, sync after this many unsynced bytes: it bounds what a power loss can take
/// and how far back recovery must walk, at the cost of one sync per few MiB.
const BUFFERED_SYNC_BYTES: u64 = 4 << 20;
/// One huge batch must not pin its buffer for the life of the log.
const KEEP_BUF: usize = 2 * GROUP_BYTES as usize;
/// When the last groups each held one batch, poll the queue this long before sleeping on it: a
/// lone appender that awaits each batch sends the next one within microseconds of its
/// acknowledgement, and waking a sleeping writer would add a thread wake-up to every batch.
/// With several appenders the writer sleeps at once: on a small machine a polling writer takes
/// the CPU the appenders need, and the time it takes to wake lets the next group gather.
const SPIN: Duration = Duration::from_micros(50);
/// Groups of one batch in a row that make the writer poll.
const LONE: u32 = 4;
/// An idle writer frees the records it retired after this long.
const IDLE: Duration = Duration::from_millis(1);
/// Fewer retired records than this are freed by the writer: cheaper than waking the reclaimer.
const RECLAIM_MIN: usize = 256;
/// The active segment's file is kept zero-filled past its frames up to the next multiple of
/// this many bytes: a group then overwrites blocks that are already allocated, written and
/// synced, so its `fdatasync` flushes only data. On a growing file every `fdatasync` also
/// commits the file system's journal (the new size, new blocks), which on the 2-core VM made it
/// 2 to 6 times slower for 5 KB groups and up to 3 times for 120 KB ones (design.md §5). The
/// zeros cost one more write per MiB, synced with the group that needed them; a sealed or closed
/// segment is cut back to its frames.
const PREFILL: u64 = 1 << 20;
/// What [`PREFILL`] writes: untouched zero pages, never resident until read.
static ZEROS: [u8; PREFILL as usize] = [0; PREFILL as usize];

pub(crate) type Reply = Result<Vec<Seq>, (LogError, Vec<Bytes>)>;

pub(crate) enum Msg {
    Append(Request),
    /// Sync whatever was written (Buffered mode) and report.
    Sync(oneshot::Sender<Result<(), LogError>>),
    /// Finish the queue, sync, release the lock and stop.
    Close(oneshot::Sender<Result<(), LogError>>),
}

pub(crate) struct Request {
    pub(crate) records: Vec<Bytes>,
    /// Bytes the records take as frames.
    pub(crate) bytes: u64,
    pub(crate) reply: oneshot::Sender<Reply>,
    /// Queue space, released when the writer is done with the batch.
    pub(crate) _permit: OwnedSemaphorePermit,
}

impl Request {
    fn fail(self, error: LogError) {
        let _ = self.reply.send(Err((error, self.records)));
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    seg: Arc<Segment>,
    file: Arc<dyn StorageFile>,
    /// File position where the next frame goes.
    pos: u64,
    /// File position below which the segment is synced: every frame records it.
    synced: u64,
    /// The file's length: zeros from [`Writer::end`] to here (see [`PREFILL`]).
    prefilled: u64,
    buf: FrameBuf,
    /// The records of the groups acknowledged since the last write, freed by the reclaimer
    /// while the next group is synced (by the writer when they are few, when the reclaimer is
    /// busy, or before it sleeps): with the reclaimer's, at most two groups' worth beyond the
    /// queue bound.
    retired: Vec<Vec<Bytes>>,
    reclaimer: Option<Reclaimer>,
    rx: mpsc::Receiver<Msg>,
    /// In `Sync` mode only: `Buffered` appenders are never waited for, so nothing counts them.
    gather: Option<Arc<Gather>>,
    policy: Policy,
    /// Groups of one batch in a row (see [`SPIN`]).
    lone: u32,
    _lock: LockGuard,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        seg: Arc<Segment>,
        file: Arc<dyn StorageFile>,
        pos: u64,
        lock: LockGuard,
        rx: mpsc::Receiver<Msg>,
    ) -> Self {
        let gather = (shared.opts.durability == Durability::Sync).then(|| Arc::new(Gather::new()));
        Writer {
            shared,
            seg,
            file,
            pos,
            // Recovery synced the tail and cut the file to it.
            synced: pos,
            prefilled: pos,
            buf: FrameBuf::new(),
            retired: Vec::new(),
            reclaimer: Reclaimer::start(),
            rx,
            gather,
            policy: Policy::new(),
            lone: 0,
            _lock: lock,
        }
    }

    /// The count appenders raise as they queue (`Sync` mode only), for the log's handle.
    pub(crate) fn gather(&self) -> Option<Arc<Gather>> {
        self.gather.clone()
    }

    /// Process appends until closed; the result of the final sync, which ends the close.
    pub(crate) fn run(mut self) -> Result<(), String> {
        if let Some(gather) = &self.gather {
            gather.register_writer();
        }
        while let Ok(first) = self.next() {
            let mut g = Gathered::default();
            g.add(first);
            // Everything already queued joins this group: one write and one sync for all.
            self.take_queued(&mut g);
            // And, for a moment, the appenders of the last group (see `gather`).
            if let Some(gather) = &self.gather
                && g.open()
                && let Some((more, timeout)) = self.policy.wait_for(g.group.len())
            {
                let (had, started) = (g.group.len(), Instant::now());
                gather.wait(more, timeout);
                self.take_queued(&mut g);
                self.policy
                    .waited(had, g.group.len() - had, started.elapsed());
            }
            let Gathered { group, control, .. } = g;
            self.lone = if group.len() == 1 {
                self.lone.saturating_add(1)
            } else {
                0
            };
            if !group.is_empty() {
                self.commit(group);
            }
            match control {
                Some(Msg::Sync(reply)) => {
                    let _ = reply.send(self.sync());
                }
                Some(Msg::Close(reply)) => {
                    let synced = self.seal();
                    let outcome = synced.as_ref().map_err(ToString::to_string).copied();
                    let _ = reply.send(synced);
                    return outcome;
                }
                _ => {}
            }
        }
        // Every handle is gone without a close: still leave the data synced.
        self.seal().map_err(|e| e.to_string())
    }

    /// Add the queued messages to `g` until it is full or meets a control message, then count
    /// the group's appends not yet counted as taken (before any wait or `queued` read).
    fn take_queued(&self, g: &mut Gathered) {
        while g.open() {
            match self.try_next() {
                Some(msg) => g.add(msg),
                None => break,
            }
        }
        if let Some(gather) = &self.gather {
            gather.taken(g.group.len() - g.counted);
            g.counted = g.group.len();
        }
    }

    /// The next message (polled for when a lone appender awaits each batch). A writer that found
    /// nothing frees the retired records and sleeps.
    fn next(&mut self) -> Result<Msg, RecvError> {
        let msg = if self.lone >= LONE {
            poll(&self.rx, SPIN)
        } else {
            match self.rx.recv_timeout(IDLE) {
                Ok(msg) => Some(Ok(msg)),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Err(RecvError)),
            }
        };
        msg.unwrap_or_else(|| {
            self.retired.clear();
            self.rx.recv()
        })
    }

    /// The next message if one is queued.
    fn try_next(&self) -> Option<Msg> {
        self.rx.try_recv().ok()
    }

    /// File position where the next frame goes.
    fn end(&self) -> u64 {
        self.pos + self.buf.len()
    }

    fn commit(&mut self, group: Vec<Request>) {
        if self.shared.poison_reason().is_some() {
            return self.refuse(None, group);
        }
        let sync = self.syncs();
        let mut pending: Vec<(Request, Vec<Seq>)> = Vec::with_capacity(group.len());
        let mut rest = group.into_iter();
        while let Some(req) = rest.next() {
            let at = self.end();
            if at > SEG_HEADER && at + req.bytes > self.shared.opts.segment_size {
                // A failed flush failed its own batches, the first with the I/O error; a failed
                // roll fails this batch with its error.
                if !self.flush(&mut pending, sync) {
                    return self.refuse(None, std::iter::once(req).chain(rest));
                }
                if let Err(e) = self.roll() {
                    return self.refuse(Some(e), std::iter::once(req).chain(rest));
                }
            }
            let n = req.records.len();
            let mut seqs = Vec::with_capacity(n);
            self.buf.reserve(req.bytes);
            let mut seq = self.seg.seq(self.end());
            for (i, record) in req.records.iter().enumerate() {
                let flags = if i + 1 == n { BATCH_END } else { 0 };
                self.buf.push(seq, record, self.synced, flags);
                seqs.push(Seq(seq));
                seq += record.len() as u64 + frame::OVERHEAD;
            }
            pending.push((req, seqs));
        }
        if self.flush(&mut pending, sync) && self.pos - self.synced >= BUFFERED_SYNC_BYTES {
            let _ = self.sync();
        }
    }

    /// Write the frames (and sync them when `sync`), then acknowledge `pending`.
    /// False when the writer is poisoned.
    fn flush(&mut self, pending: &mut Vec<(Request, Vec<Seq>)>, sync: bool) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let retired: usize = self.retired.iter().map(Vec::len).sum();
        match &self.reclaimer {
            // Freed while this group is written and synced, when the appenders are waiting.
            Some(reclaimer) if retired >= RECLAIM_MIN => {
                reclaimer.free(std::mem::take(&mut self.retired));
            }
            _ => self.retired.clear(),
        }
        let mut result = self.file.write_all_at(self.buf.frames(), self.pos);
        if result.is_ok() {
            result = self.prefill();
        }
        let mut took = Duration::ZERO;
        if result.is_ok() && sync {
            let started = Instant::now();
            result = self.file.sync_data();
            took = started.elapsed();
        }
        if let Err(e) = result {
            let path = self.shared.storage.path(&self.seg.name);
            let reason = format!("writing or syncing {} failed: {e}", path.display());
            self.shared.poison(reason);
            // Hide the failed frames from this process's view of the file. Their fate on the
            // disk is unknown; recovery keeps them only as whole batches.
            let _ = self.file.set_len(self.pos);
            let error = LogError::Io { path, source: e };
            self.refuse(Some(error), pending.drain(..).map(|(req, _)| req));
            self.buf.clear(KEEP_BUF);
            return false;
        }
        let records: usize = pending.iter().map(|(req, _)| req.records.len()).sum();
        let synced = sync.then_some(took);
        lock(&self.shared.stats).wrote(pending.len(), records, self.buf.len(), synced);
        self.pos += self.buf.len();
        if sync {
            self.synced = self.pos;
        }
        self.buf.clear(KEEP_BUF);
        if let Some(&last) = pending.last().and_then(|(_, seqs)| seqs.last()) {
            let end = self.seg.seq(self.pos);
            self.shared.publish(end, last.0, end);
        }
        // Counted before the replies: an appender acknowledged below may queue its next batch at
        // once, and it is already one of `batches`.
        let (batches, queued) = (pending.len(), self.gather.as_ref().map(|g| g.queued()));
        for (req, seqs) in pending.drain(..) {
            let Request { records, reply, .. } = req;
            let _ = reply.send(Ok(seqs));
            // The queue space (the permit) is released now; the records are freed later, off
            // the path from this acknowledgement to the next group.
            self.retired.push(records);
        }
        // Those just acknowledged come back; those queued meanwhile are waiting (see `gather`).
        if let Some(queued) = queued {
            self.policy.synced(batches, queued, took);
        }
        true
    }

    /// Fail `requests` on a poisoned writer: the first with `first` when given (the failure
    /// that poisoned it), the others as poisoned.
    fn refuse(&self, mut first: Option<LogError>, requests: impl IntoIterator<Item = Request>) {
        let reason = self.shared.poison_reason().unwrap_or_default();
        for r in requests {
            r.fail(first.take().unwrap_or_else(|| LogError::Poisoned {
                reason: reason.clone(),
            }));
        }
    }

    /// Keep the file zero-filled past the frames just written (not yet synced): the next
    /// [`PREFILL`] boundary, but not past the segment size unless a batch is larger.
    fn prefill(&mut self) -> std::io::Result<()> {
        let end = self.end();
        if end <= self.prefilled {
            return Ok(());
        }
        let to = end
            .next_multiple_of(PREFILL)
            .min(self.shared.opts.segment_size)
            .max(end);
        self.file.write_all_at(&ZEROS[..(to - end) as usize], end)?;
        self.prefilled = to;
        Ok(())
    }

    /// Cut the active segment's zeros and sync it: recovery finds a sealed segment's end from
    /// its length, and a closed log's files end at their last frame. One `fdatasync` makes both
    /// the frames and the new length durable. On failure the writer is poisoned.
    fn seal(&mut self) -> Result<(), LogError> {
        if let Some(reason) = self.shared.poison_reason() {
            return Err(LogError::Poisoned { reason });
        }
        let cut = self.prefilled > self.pos;
        if cut {
            if let Err(e) = self.file.set_len(self.pos) {
                let path = self.shared.storage.path(&self.seg.name);
                self.shared.poison(format!(
                    "cutting {} to its frames failed: {e}",
                    path.display()
                ));
                return Err(LogError::Io { path, source: e });
            }
            self.prefilled = self.pos;
        }
        self.sync_if(cut || self.synced < self.pos)
    }

    /// Seal the active segment and start the next one; on failure the writer is poisoned.
    fn roll(&mut self) -> Result<(), LogError> {
        self.seal()?;
        let base = self.seg.seq(self.pos);
        // A segment is rolled only once it holds a frame, so the last record ends at `base`.
        let before = self
            .shared
            .state()
            .last
            .and_then(|last| base.checked_sub(last));
        let file = create_segment(self.shared.ctx(), base, before).inspect_err(|e| {
            self.shared
                .poison(format!("creating the next segment failed: {e}"));
        })?;
        let seg = Arc::new(Segment::new(base, Some(file.clone())));
        self.shared.add_segment(seg.clone());
        self.seg = seg;
        self.file = file;
        self.pos = SEG_HEADER;
        self.synced = SEG_HEADER;
        self.prefilled = SEG_HEADER;
        Ok(())
    }

    /// Whether every group is synced before it is acknowledged (`Sync` mode).
    fn syncs(&self) -> bool {
        self.shared.opts.durability == Durability::Sync
    }

    /// Sync what was written since the last sync; never after a failure (no fsync retries).
    fn sync(&mut self) -> Result<(), LogError> {
        self.sync_if(self.synced < self.pos)
    }

    /// Sync the active segment if `needed`; never after a failure (no fsync retries).
    fn sync_if(&mut self, needed: bool) -> Result<(), LogError> {
        if let Some(reason) = self.shared.poison_reason() {
            return Err(LogError::Poisoned { reason });
        }
        if needed {
            let started = Instant::now();
            if let Err(e) = self.file.sync_data() {
                let path = self.shared.storage.path(&self.seg.name);
                self.shared
                    .poison(format!("syncing {} failed: {e}", path.display()));
                return Err(LogError::Io { path, source: e });
            }
            lock(&self.shared.stats).synced(started.elapsed());
            self.synced = self.pos;
        }
        Ok(())
    }
}

/// A group being gathered.
#[derive(Default)]
struct Gathered {
    group: Vec<Request>,
    /// Appends of `group` already counted as taken by the [`Gather`].
    counted: usize,
    bytes: u64,
    /// A control message, handled after the group.
    control: Option<Msg>,
}

impl Gathered {
    fn add(&mut self, msg: Msg) {
        match msg {
            Msg::Append(r) => {
                self.bytes += r.bytes;
                self.group.push(r);
            }
            other => self.control = Some(other),
        }
    }

    /// Whether more appends may join: a control message ends the group, and one write stays a
    /// reasonable size.
    fn open(&self) -> bool {
        self.control.is_none() && self.bytes < GROUP_BYTES
    }
}

/// Poll `rx` for at most `spin`; `None` if nothing came.
fn poll<T>(rx: &mpsc::Receiver<T>, spin: Duration) -> Option<Result<T, RecvError>> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(msg) => return Some(Ok(msg)),
            Err(TryRecvError::Disconnected) => return Some(Err(RecvError)),
            Err(TryRecvError::Empty) if start.elapsed() >= spin => return None,
            Err(TryRecvError::Empty) => {
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            }
        }
    }
}
