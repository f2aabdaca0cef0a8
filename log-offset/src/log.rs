//! [`OffsetLog`]: the handle, its shared state, and the [`Log`] implementation.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;

use bytes::Bytes;
use flume_core::{AppendError, Chunk, Log, LogError, ReadRange, Seq, SinceCell, async_trait};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::frame::SEG_HEADER;
use crate::options::Options;
use crate::recovery;
use crate::segment::{Ctx, Segment, retired_since_listed};
use crate::stats::WriteStats;
use crate::storage::{FsStorage, LockError, Storage};
use crate::writer::{Gather, Msg, Request, Writer};

/// A durable, segmented file log. See the [crate docs](crate).
pub struct OffsetLog {
    shared: Arc<Shared>,
    /// `None` for read-only logs.
    writer: Option<WriterHandle>,
}

struct WriterHandle {
    /// Taken by close: every append sent before it is processed before the close message.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    /// Bytes of queued appends: the bound that keeps memory flat under any append rate.
    queue: Arc<Semaphore>,
    /// Wakes the writer when the group it waits for is queued (`Sync` mode only).
    gather: Option<Arc<Gather>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Held through a retirement: one that fails puts the segments it did not delete back at
    /// the front, which another retirement running meanwhile would have cut.
    retiring: Mutex<()>,
}

/// What readers and the writer share.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) opts: Options,
    state: RwLock<State>,
    /// Closed when the writer has stopped, which ends live streams.
    since: SinceCell,
    closed: AtomicBool,
    /// How the close went, once it is over (the writer stopped, the lock released, `since`
    /// closed): every `close` call waits for it, and the writer's thread, not a caller's future,
    /// sets it, so a caller that stops waiting leaves the close to finish.
    finished: watch::Sender<Option<Result<(), String>>>,
    poisoned: Mutex<Option<String>>,
    /// Updated by the writer once per write and sync, before it acknowledges.
    pub(crate) stats: Mutex<WriteStats>,
    pub(crate) cache: Mutex<crate::reader::BoundaryCache>,
    corruption: Option<(std::path::PathBuf, u64, String)>,
}

/// The acknowledged log: segments and where the data ends.
pub(crate) struct State {
    pub(crate) segments: Vec<Arc<Segment>>,
    /// Logical end of acknowledged data.
    pub(crate) end: u64,
    /// The seq of the last acknowledged record.
    pub(crate) last: Option<u64>,
}

impl State {
    /// The logical offset of the first retained byte: the first segment's base (the end when
    /// every segment is gone).
    pub(crate) fn first(&self) -> u64 {
        self.segments.first().map_or(self.end, |s| s.base)
    }

    /// How many segments, from the oldest, hold only records below `seq`: those
    /// `retire_before(seq)` deletes. Never the one holding the last record.
    fn retirable(&self, seq: u64) -> usize {
        let Some(last) = self.last else {
            return 0;
        };
        let keep = self
            .segments
            .partition_point(|s| s.base <= last)
            .saturating_sub(1);
        let mut n = 0;
        while n < keep && self.segments[n + 1].base <= seq {
            n += 1;
        }
        n
    }

    /// What deleting the `n` oldest segments deletes, and the first seq it leaves.
    fn retirement(&self, n: usize) -> Retirement {
        if n == 0 {
            return Retirement {
                segments: 0,
                bytes: 0,
                from: None,
                first: self.last.map(|_| Seq(self.first())),
            };
        }
        let (from, to) = (self.segments[0].base, self.segments[n].base);
        Retirement {
            segments: n,
            // A sealed segment's file is its header and its frames, and the next segment
            // begins at the seq where those frames end.
            bytes: to - from + n as u64 * SEG_HEADER,
            from: Some(Seq(from)),
            first: Some(Seq(to)),
        }
    }
}

/// What [`OffsetLog::retire_before`] deleted, or would delete now ([`OffsetLog::retirement`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retirement {
    /// Segment files, the oldest ones.
    pub segments: usize,
    /// Their size on disk, headers included.
    pub bytes: u64,
    /// The seq of their first record (`None` when nothing would be deleted).
    pub from: Option<Seq>,
    /// The first seq retained after them: every record below it goes. `None` when the log is
    /// empty.
    pub first: Option<Seq>,
}

impl Shared {
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            storage: &*self.storage,
        }
    }

    pub(crate) fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Under a read-only log, `seg`'s file was not found: if every older segment's file is gone
    /// too, the writer's process retired them (it deletes the oldest first), and they are
    /// forgotten, as a reopen would. True then. A file missing after one that is still there is
    /// a hole, not a retirement: it stays an I/O error.
    pub(crate) fn forget_retired(&self, seg: &Segment) -> bool {
        if !self.opts.read_only {
            return false;
        }
        let Ok(Some(lowest)) = retired_since_listed(&*self.storage, seg.base) else {
            return false;
        };
        let mut st = self.state_mut();
        let gone = st.segments.iter().take_while(|s| s.base < lowest).count();
        st.segments.drain(..gone);
        true
    }

    pub(crate) fn check_open(&self) -> Result<(), LogError> {
        if self.closed.load(Ordering::Acquire) {
            Err(LogError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn poison(&self, reason: String) {
        lock(&self.poisoned).get_or_insert(reason);
    }

    /// End the close: `since` closes, which ends live streams, and every `close` call returns.
    fn finish(&self, outcome: Result<(), String>) {
        self.since.close();
        self.finished.send_if_modified(|f| {
            let first = f.is_none();
            if first {
                *f = Some(outcome);
            }
            first
        });
    }

    pub(crate) fn poison_reason(&self) -> Option<String> {
        lock(&self.poisoned).clone()
    }

    pub(crate) fn add_segment(&self, seg: Arc<Segment>) {
        self.state_mut().segments.push(seg);
    }

    /// Make records up to logical `end` visible, the last one being `[last, last_end)`.
    pub(crate) fn publish(&self, end: u64, last: u64, last_end: u64) {
        {
            let mut st = self.state_mut();
            st.end = end;
            st.last = Some(last);
        }
        lock(&self.cache).insert(last, last_end);
        self.since.publish(Seq(last));
    }
}

impl OffsetLog {
    /// Open (or create) the log in directory `dir` with default [`Options`].
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, LogError> {
        Self::open_with(dir, Options::default())
    }

    /// Open (or create) the log in directory `dir`.
    ///
    /// Recovery validates the tail only, so opening takes the same time for any log size: a torn
    /// tail (the remains of a crash: a partial frame, an incomplete batch, garbage) is cut and
    /// synced.
    ///
    /// # Errors
    /// [`LogError::Locked`] when another writer (this process or another) has it open;
    /// [`LogError::Corrupt`] naming the file and offset when synced data fails its checks (open
    /// it with [`Options::read_only`] to read what precedes the damage); [`LogError::Io`].
    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<Self, LogError> {
        let dir = dir.as_ref();
        let storage = if opts.read_only {
            FsStorage::existing(dir)
        } else {
            FsStorage::new(dir).map_err(|source| LogError::Io {
                path: dir.to_path_buf(),
                source,
            })?
        };
        Self::open_storage(Arc::new(storage), opts)
    }

    /// Open the log over any [`Storage`] (tests use [`SimStorage`](crate::SimStorage)).
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub fn open_storage(storage: Arc<dyn Storage>, opts: Options) -> Result<Self, LogError> {
        if opts.segment_size < 4096
            || opts.max_record_size == 0
            || opts.queue_bytes == 0
            || opts.queue_bytes > Semaphore::MAX_PERMITS
        {
            return Err(LogError::Other(
                format!(
                    "invalid options: segment_size must be at least 4096 bytes, max_record_size above zero, queue_bytes from 1 to {}",
                    Semaphore::MAX_PERMITS
                )
                .into(),
            ));
        }
        let lock = if opts.read_only {
            None
        } else {
            Some(storage.lock().map_err(|e| match e {
                LockError::Held { holder } => LogError::Locked { holder },
                LockError::Io(source) => LogError::Io {
                    path: storage.path("LOCK"),
                    source,
                },
            })?)
        };
        let rec = match recovery::recover(&*storage, &opts) {
            // A read-only open lists the files, then reads them: the writer's process may retire
            // (delete) some of those listed in between. Listed again, they are gone.
            Err(LogError::Io { source, .. })
                if opts.read_only && source.kind() == std::io::ErrorKind::NotFound =>
            {
                recovery::recover(&*storage, &opts)
            }
            rec => rec,
        }?;
        let corruption = rec.corruption.map(|e| match e {
            LogError::Corrupt {
                file,
                offset,
                reason,
            } => (file, offset, reason),
            other => (std::path::PathBuf::new(), 0, other.to_string()),
        });
        let mut cache = crate::reader::BoundaryCache::default();
        if let Some((s, e)) = rec.last {
            cache.insert(s, e);
        }
        let active = rec.segments.last().cloned();
        let shared = Arc::new(Shared {
            storage,
            state: RwLock::new(State {
                segments: rec.segments,
                end: rec.end,
                last: rec.last.map(|(s, _)| s),
            }),
            since: SinceCell::new(rec.last.map(|(s, _)| Seq(s))),
            closed: AtomicBool::new(false),
            finished: watch::Sender::new(None),
            poisoned: Mutex::new(None),
            stats: Mutex::default(),
            cache: Mutex::new(cache),
            corruption,
            opts,
        });
        let writer = match (lock, rec.tail, active) {
            (Some(lock), Some((file, pos)), Some(seg)) => {
                let (tx, rx) = mpsc::channel();
                let w = Writer::new(shared.clone(), seg, file, pos, lock, rx);
                let gather = w.gather();
                let finisher = Finisher(shared.clone());
                let thread = std::thread::Builder::new()
                    .name("flume-log-writer".into())
                    // The writer (and the lock it holds) is gone by the time the finisher runs.
                    .spawn(move || finisher.finish(w.run()))
                    .map_err(|e| LogError::Io {
                        path: shared.storage.path(""),
                        source: e,
                    })?;
                Some(WriterHandle {
                    tx: Mutex::new(Some(tx)),
                    queue: Arc::new(Semaphore::new(shared.opts.queue_bytes)),
                    gather,
                    thread: Mutex::new(Some(thread)),
                    retiring: Mutex::new(()),
                })
            }
            _ => None,
        };
        Ok(OffsetLog { shared, writer })
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    /// What the writer has done since this log was opened: batches, records, writes, syncs and
    /// the time the syncs took (all zero on a read-only log). For example, batches per sync
    /// shows how many concurrent appenders each `fdatasync` served.
    pub fn write_stats(&self) -> WriteStats {
        *lock(&self.shared.stats)
    }

    /// For logs opened read-only: the corruption that ends the readable data early, if any.
    /// (A writable open refuses such a log with the same error.)
    pub fn corruption(&self) -> Option<LogError> {
        self.shared
            .corruption
            .as_ref()
            .map(|(file, offset, reason)| LogError::Corrupt {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            })
    }

    /// The first seq still in the log (records below it were retired), or `None` when empty.
    pub fn first(&self) -> Option<Seq> {
        let st = self.shared.state();
        st.last.map(|_| Seq(st.first()))
    }

    /// Make every acknowledged record durable now (useful in [`Durability::Buffered`]
    /// mode; in `Sync` mode they already are).
    ///
    /// [`Durability::Buffered`]: crate::Durability::Buffered
    ///
    /// # Errors
    /// [`LogError::Poisoned`] or [`LogError::Io`] when the sync fails (the writer is then
    /// poisoned); [`LogError::Closed`]; [`LogError::ReadOnly`].
    pub async fn sync(&self) -> Result<(), LogError> {
        self.shared.check_open()?;
        let w = self.writer.as_ref().ok_or(LogError::ReadOnly)?;
        let (tx, rx) = oneshot::channel();
        {
            let sender = lock(&w.tx);
            let sender = sender.as_ref().ok_or(LogError::Closed)?;
            sender.send(Msg::Sync(tx)).map_err(|_| LogError::Closed)?;
        }
        rx.await.unwrap_or(Err(LogError::Closed))
    }

    /// What [`retire_before(seq)`](Self::retire_before) would delete now, deleting nothing: to
    /// show it, or ask, first. The answer holds until the log grows into a new segment. Works
    /// on a read-only log too.
    pub fn retirement(&self, seq: Seq) -> Retirement {
        let st = self.shared.state();
        st.retirement(st.retirable(seq.0))
    }

    /// Retire (delete) the whole segments that hold only records below `seq`; returns what it
    /// deleted and the new first seq. The segment holding the last record is always kept. Reads
    /// and `get` below the new first seq fail with [`LogError::Truncated`]; a read after the
    /// last retired record (a stream or view resuming where it stopped) missed nothing and goes
    /// on.
    ///
    /// # Errors
    /// [`LogError::ReadOnly`], [`LogError::Closed`], [`LogError::Io`] deleting files: the
    /// segments not deleted stay readable, and a retry deletes them.
    pub fn retire_before(&self, seq: Seq) -> Result<Retirement, LogError> {
        self.shared.check_open()?;
        let w = self.writer.as_ref().ok_or(LogError::ReadOnly)?;
        let _one = lock(&w.retiring);
        let (retirement, retired): (Retirement, Vec<Arc<Segment>>) = {
            let mut st = self.shared.state_mut();
            let n = st.retirable(seq.0);
            (st.retirement(n), st.segments.drain(..n).collect())
        };
        // Oldest first: a crash midway leaves a contiguous suffix.
        for (i, seg) in retired.iter().enumerate() {
            if let Err(e) = self.shared.storage.remove(&seg.name) {
                // The segments still on disk stay readable, as they would be after a reopen,
                // and a later retirement deletes them.
                let mut st = self.shared.state_mut();
                st.segments.splice(0..0, retired[i..].iter().cloned());
                return Err(self.shared.ctx().io(&seg.name, e));
            }
        }
        if !retired.is_empty() {
            self.shared
                .storage
                .sync_dir()
                .map_err(|e| self.shared.ctx().io("", e))?;
        }
        Ok(retirement)
    }

    /// Ask the writer to stop after it has processed everything queued; the receiver gets the
    /// result of its final sync.
    fn shutdown(&self) -> Option<oneshot::Receiver<Result<(), LogError>>> {
        let w = self.writer.as_ref()?;
        w.queue.close();
        let tx = lock(&w.tx).take()?;
        let (done_tx, done_rx) = oneshot::channel();
        let _ = tx.send(Msg::Close(done_tx));
        Some(done_rx)
    }

    fn join(&self) {
        if let Some(w) = &self.writer
            && let Some(t) = lock(&w.thread).take()
        {
            let _ = t.join();
        }
    }
}

impl Drop for OffsetLog {
    fn drop(&mut self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            self.shutdown();
            // The lock is released when the writer stops: a reopen right after drop must work.
            self.join();
            // A read-only log has no writer to finish its close.
            self.shared.finish(Ok(()));
        }
    }
}

/// Finishes the close on the writer's thread once the writer (and its lock) is gone; if the
/// writer panicked, with an error, so that `close` calls still return.
struct Finisher(Arc<Shared>);

impl Finisher {
    fn finish(self, outcome: Result<(), String>) {
        self.0.finish(outcome);
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        // After `finish`, a no-op.
        self.0
            .finish(Err("the log's writer stopped unexpectedly".into()));
    }
}

#[async_trait]
impl Log for OffsetLog {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        let fail = |error, rejected| Err(AppendError { error, rejected });
        if let Err(e) = self.shared.check_open() {
            return fail(e, records);
        }
        let Some(w) = &self.writer else {
            return fail(LogError::ReadOnly, records);
        };
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(reason) = self.shared.poison_reason() {
            return fail(LogError::Poisoned { reason }, records);
        }
        let max = self.shared.opts.max_record_size;
        if let Some(r) = records.iter().find(|r| r.len() as u64 > u64::from(max)) {
            let size = r.len() as u64;
            return fail(
                LogError::TooLarge {
                    size,
                    max: u64::from(max),
                },
                records,
            );
        }
        let bytes: u64 = records
            .iter()
            .map(|r| r.len() as u64 + crate::frame::OVERHEAD)
            .sum();
        // A batch larger than the whole queue still goes, alone.
        let permits = bytes
            .min(self.shared.opts.queue_bytes as u64)
            .min(u64::from(u32::MAX));
        let Ok(permit) = w.queue.clone().acquire_many_owned(permits as u32).await else {
            return fail(LogError::Closed, records);
        };
        let (reply, rx) = oneshot::channel();
        let request = Request {
            records,
            bytes,
            reply,
            _permit: permit,
        };
        {
            let tx = lock(&w.tx);
            let Some(tx) = tx.as_ref() else {
                return fail(LogError::Closed, request.records);
            };
            if let Err(mpsc::SendError(msg)) = tx.send(Msg::Append(request)) {
                let records = match msg {
                    Msg::Append(r) => r.records,
                    _ => Vec::new(),
                };
                return fail(LogError::Closed, records);
            }
        }
        if let Some(gather) = &w.gather {
            gather.queued_one();
        }
        match rx.await {
            Ok(Ok(seqs)) => Ok(seqs),
            Ok(Err((error, rejected))) => Err(AppendError { error, rejected }),
            Err(_) => fail(
                LogError::Poisoned {
                    reason: "the writer thread stopped unexpectedly".into(),
                },
                Vec::new(),
            ),
        }
    }

    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        self.shared.check_open()?;
        self.shared.get(seq)
    }

    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        self.read_chunk(range).await.map(Chunk::into_records)
    }

    /// Records whose values are ranges of the read buffers: a chunk of small records holds a
    /// reference count per buffer of 256 KiB, not one per record.
    async fn read_chunk(&self, range: ReadRange) -> Result<Chunk, LogError> {
        self.shared.check_open()?;
        self.shared.read(&range)
    }

    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.shared.since.subscribe()
    }

    fn current_since(&self) -> Option<Seq> {
        self.shared.since.load()
    }

    async fn close(&self) -> Result<(), LogError> {
        let mut finished = self.shared.finished.subscribe();
        let reply = if self.shared.closed.swap(true, Ordering::AcqRel) {
            None
        } else if self.writer.is_some() {
            self.shutdown()
        } else {
            // Read-only: no writer to stop.
            self.shared.finish(Ok(()));
            None
        };
        // The first call gets the writer's own error; every call waits until the close is over.
        let own = match reply {
            Some(done) => done.await.ok(),
            None => None,
        };
        let outcome = finished
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or(Ok(()));
        self.join();
        own.unwrap_or_else(|| {
            outcome.map_err(|reason| {
                LogError::Other(format!("closing the log failed: {reason}").into())
            })
        })
    }
}

pub(crate) fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Durability, SimStorage};

    /// A read that found a sealed segment before `retire_before` removed it, and opens it after,
    /// gets `Truncated`, as a read that started after the retirement does (not `Io` NotFound).
    #[tokio::test]
    async fn a_segment_retired_between_finding_and_opening_it_reads_as_truncated() {
        let storage = Arc::new(SimStorage::new());
        let opts = Options::new().segment_size(4096);
        let log = OffsetLog::open_storage(storage.clone(), opts.clone()).unwrap();
        let mut seqs = Vec::new();
        for i in 0..300 {
            seqs.push(
                log.append(Bytes::from(format!("record {i}")))
                    .await
                    .unwrap(),
            );
        }
        log.close().await.unwrap();
        drop(log);
        // Reopened: its sealed segments are opened on first use.
        let log = OffsetLog::open_storage(storage, opts).unwrap();
        let found = log.shared.state().segments[0].clone();
        let first = log.retire_before(seqs[299]).unwrap().first.unwrap();
        match log.shared.file(&found, found.base) {
            Err(LogError::Truncated { seq, first: f }) => {
                assert_eq!((seq, f), (Seq(found.base), first));
            }
            Err(e) => panic!("not truncated: {e}"),
            Ok(_) => panic!("a retired segment opened"),
        }
    }

    async fn append_from_tasks(log: &Arc<OffsetLog>, tasks: usize, each: usize) {
        let mut handles = Vec::new();
        for t in 0..tasks {
            let log = Arc::clone(log);
            handles.push(tokio::spawn(async move {
                for i in 0..each {
                    log.append(Bytes::from(format!("{t}-{i}"))).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    }

    /// The gather count sits beside the queue, not in it: every batch an appender counts must be
    /// counted again when the writer takes it, or the writer's waits drift.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_batch_counted_as_queued_is_counted_as_taken() {
        let storage = Arc::new(SimStorage::new());
        let log = Arc::new(OffsetLog::open_storage(storage, Options::new()).unwrap());
        append_from_tasks(&log, 16, 50).await;
        let writer = log.writer.as_ref().unwrap();
        assert_eq!(writer.gather.as_ref().unwrap().net(), 0);
        log.close().await.unwrap();
    }

    /// `Buffered` appenders are never waited for, so they pay no count.
    #[tokio::test]
    async fn only_sync_mode_counts_batches() {
        for (durability, counts) in [(Durability::Sync, true), (Durability::Buffered, false)] {
            let opts = Options::new().durability(durability);
            let log = OffsetLog::open_storage(Arc::new(SimStorage::new()), opts).unwrap();
            let gather = &log.writer.as_ref().unwrap().gather;
            assert_eq!(gather.is_some(), counts, "{durability:?}");
            log.close().await.unwrap();
        }
    }
}
