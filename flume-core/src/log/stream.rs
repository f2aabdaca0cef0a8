//! Streams over any [`Log`], built from `read` and the `since` channel.

use std::ops::{Bound, Deref};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::stream::{self, BoxStream, Stream, StreamExt};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Chunk, Item, Log, LogStream, Output, ReadRange, StreamOpts, ValueRef};
use crate::bounds::{is_empty_range, max_lower, min_upper};
use crate::lock::lock;
use crate::{LogError, Seq};

/// Records read per call to [`Log::read`] when the caller waits for the read: large enough to
/// amortise the call, small enough that the first records come soon and a stream holds little
/// memory.
const CHUNK: usize = 1024;
/// Records read per read-ahead. Each one wakes a thread of the blocking pool, and the caller too
/// when it gets there first: a thread wake-up costs some 10–20 µs of CPU on a VM, against ~120 µs
/// to read 1,024 small records, so read-aheads read more at once (docs/design.md, "Streams").
const AHEAD: usize = 4 * CHUNK;

/// Starts a read of the log on another thread (the read-ahead of streams that own their log),
/// which first frees a chunk the caller is done with.
type Spawn =
    Box<dyn Fn(ReadRange, Option<Chunk>) -> JoinHandle<Result<Chunk, LogError>> + Send + Sync>;

/// A chunk the caller has gone through, handed from [`Flat`] to the cursor's next read-ahead.
type Spent = Arc<Mutex<Option<Chunk>>>;

/// A stream that owns its log handle, so it can outlive the caller's borrow (servers, tasks).
///
/// On a multi-threaded tokio runtime it reads one chunk ahead on tokio's blocking pool while the
/// caller consumes the current one, so reading (I/O, checksums) overlaps with what the caller
/// does with the records (decoding them, say), also when the caller is itself a task.
pub fn stream_owned<L: Log + ?Sized>(log: Arc<L>, opts: StreamOpts) -> LogStream {
    let each = items(opts.output);
    stream_owned_with(log, opts, each)
}

/// Each record as an [`Item`] of the requested shape, its value a handle of its own.
fn items(output: Output) -> impl FnMut(Seq, ValueRef<'_>) -> Result<Item<Bytes>, LogError> + Unpin {
    move |seq, value| Ok(Item::shaped(output, seq, value.to_bytes()))
}

/// [`stream_owned`], applying `each` to every record as it is yielded (on the caller's task, in
/// log order) instead of wrapping a stream of items: `Db` decodes records this way. `each`
/// borrows the value (and may take a handle to it); the chunk is freed by the next read-ahead.
pub(crate) fn stream_owned_with<L, X, E, F>(
    log: Arc<L>,
    opts: StreamOpts,
    each: F,
) -> BoxStream<'static, Result<X, E>>
where
    L: Log + ?Sized,
    X: Send + 'static,
    E: From<LogError> + Send + 'static,
    F: FnMut(Seq, ValueRef<'_>) -> Result<X, E> + Send + Unpin + 'static,
{
    // A current-thread runtime reads nothing ahead: its user chose one thread, and there
    // `Handle::block_on` on another thread cannot drive the I/O or timers a log may need.
    let spawn = Handle::try_current()
        .ok()
        .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
        .map(|handle| {
            let log = Arc::clone(&log);
            Box::new(move |range: ReadRange, spent: Option<Chunk>| {
                let (log, runtime) = (Arc::clone(&log), handle.clone());
                // Not `spawn`: a task spawned from a worker goes to that worker's LIFO slot,
                // which other workers cannot steal, so a stream consumed in a task (a server's
                // handler, say) would run its read-ahead itself, when it waits for it: no
                // overlap. The blocking pool runs it on a thread of its own, off the workers
                // (a read from a cold disk blocks that thread, not the runtime).
                handle.spawn_blocking(move || {
                    drop(spent);
                    runtime.block_on(log.read_chunk(range))
                })
            }) as Spawn
        });
    build(log, opts, spawn, each)
}

pub(super) fn stream_ref<L: Log + ?Sized>(
    log: &L,
    opts: StreamOpts,
) -> BoxStream<'_, Result<Item<Bytes>, LogError>> {
    let each = items(opts.output);
    build(log, opts, None, each)
}

fn build<'a, R, L, X, E, F>(
    log: R,
    opts: StreamOpts,
    spawn: Option<Spawn>,
    each: F,
) -> BoxStream<'a, Result<X, E>>
where
    R: Deref<Target = L> + Send + Sync + 'a,
    L: Log + ?Sized,
    X: Send + 'a,
    E: From<LogError> + Send + 'a,
    F: FnMut(Seq, ValueRef<'_>) -> Result<X, E> + Send + Unpin + 'a,
{
    if let Err(e) = opts.validate() {
        return Box::pin(stream::once(async move { Err(e.into()) }));
    }
    let since = log.since();
    let now = *since.borrow();
    let mut lower = opts.lower;
    if let (false, Some(now)) = (opts.old, now) {
        lower = max_lower(lower, Bound::Excluded(now));
    }
    let spent: Option<Spent> = spawn.as_ref().map(|_| Arc::default());
    let cursor = Cursor {
        log,
        since,
        lower,
        upper: opts.upper,
        remaining: opts.limit,
        done: false,
        pinned: (!opts.live).then_some(now),
        opts,
        spawn,
        ahead: None,
        spent: spent.clone(),
    };
    let chunks = stream::unfold(cursor, |mut c| async move {
        let chunk = c.next_chunk().await?;
        Some((chunk, c))
    });
    Box::pin(Flat {
        chunks: Box::pin(chunks),
        chunk: Chunk::new(),
        next: 0,
        spent,
        each,
    })
}

/// The cursor yields whole chunks; this yields their records one by one, so the per-record cost
/// is an index step and `each`, not a future or a nested stream per record.
///
/// A chunk the caller has gone through goes to the cursor's next read-ahead, which frees it on
/// its own thread: its buffers (or, from a log that reads records one by one, its records) cost
/// the caller nothing to drop.
struct Flat<'a, F> {
    chunks: BoxStream<'a, Result<Chunk, LogError>>,
    chunk: Chunk,
    /// The next record of `chunk` to yield.
    next: usize,
    spent: Option<Spent>,
    each: F,
}

impl<X, E, F> Stream for Flat<'_, F>
where
    E: From<LogError>,
    F: FnMut(Seq, ValueRef<'_>) -> Result<X, E> + Unpin,
{
    type Item = Result<X, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some((seq, value)) = this.chunk.get(this.next) {
                this.next += 1;
                return Poll::Ready(Some((this.each)(seq, value)));
            }
            if !this.chunk.is_empty() {
                let spent = std::mem::take(&mut this.chunk);
                this.next = 0;
                if let Some(slot) = &this.spent {
                    // Replaces (frees here) a chunk no read-ahead took: at most one waits.
                    *lock(slot) = Some(spent);
                }
            }
            match ready!(this.chunks.poll_next_unpin(cx)) {
                Some(Ok(records)) => this.chunk = records,
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => return Poll::Ready(None),
            }
        }
    }
}

/// The stream's position: the bounds of what is still to be yielded.
struct Cursor<R> {
    log: R,
    since: watch::Receiver<Option<Seq>>,
    /// Forward streams move `lower` up; reverse streams move `upper` down.
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    remaining: Option<usize>,
    done: bool,
    /// A stream that is not live yields the records acknowledged when it was created, no more.
    pinned: Option<Option<Seq>>,
    opts: StreamOpts,
    /// Read-ahead, when the stream owns its log and runs on a multi-threaded runtime.
    spawn: Option<Spawn>,
    /// The next chunk, being read while the caller consumes the current one: at most one, so a
    /// stream holds at most two chunks (and one being freed).
    ahead: Option<Ahead>,
    /// Where [`Flat`] leaves the chunk it went through, for the next read-ahead to free.
    spent: Option<Spent>,
}

/// A read started ahead of need, for the range `(cursor, since]` as they were when it started.
struct Ahead {
    task: JoinHandle<Result<Chunk, LogError>>,
    since: Seq,
}

impl Drop for Ahead {
    /// A dropped stream stops its read-ahead (a read already running finishes its one chunk).
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<R, L> Cursor<R>
where
    R: Deref<Target = L> + Send + Sync,
    L: Log + ?Sized,
{
    /// The next non-empty chunk of records, an error (after which the stream ends), or the end.
    async fn next_chunk(&mut self) -> Option<Result<Chunk, LogError>> {
        loop {
            if self.done || self.remaining == Some(0) {
                return None;
            }
            if self.since.has_changed().is_err() {
                return self.fail(LogError::Closed);
            }
            let since = match self.pinned {
                Some(pinned) => pinned,
                None => *self.since.borrow_and_update(),
            };
            match self.fill(since).await {
                Err(e) => return self.fail(e),
                Ok(Some(records)) => return Some(Ok(records)),
                Ok(None) => {}
            }
            if !self.opts.live || is_empty_range(self.lower, self.upper) {
                return None;
            }
            // A live stream waiting at the tail holds no chunk.
            if let Some(slot) = &self.spent {
                lock(slot).take();
            }
            if self.since.changed().await.is_err() {
                return self.fail(LogError::Closed);
            }
        }
    }

    fn fail(&mut self, e: LogError) -> Option<Result<Chunk, LogError>> {
        self.done = true;
        Some(Err(e))
    }

    /// The read of the next chunk of `(cursor, since]`, at most `max` records, or `None` when
    /// that range is empty.
    fn range(&self, since: Seq, max: usize) -> Option<ReadRange> {
        let upper = min_upper(self.upper, Bound::Included(since));
        if is_empty_range(self.lower, upper) || self.remaining == Some(0) {
            return None;
        }
        Some(ReadRange {
            lower: self.lower,
            upper,
            reverse: self.opts.reverse,
            max: self.remaining.map_or(max, |n| n.min(max)),
            max_bytes: super::READ_BYTES,
            values: self.opts.output != Output::Seqs,
        })
    }

    /// Read the next chunk of `(cursor, since]`; `None` when there is nothing more to read now.
    async fn fill(&mut self, since: Option<Seq>) -> Result<Option<Chunk>, LogError> {
        let Some(since) = since else { return Ok(None) };
        let ahead = self.ahead.take();
        // A read-ahead read this same range (the cursor has not moved since), up to `AHEAD`.
        let Some(range) = self.range(since, if ahead.is_some() { AHEAD } else { CHUNK }) else {
            return Ok(None);
        };
        let max = range.max;
        let mut records = match ahead {
            Some(ahead) => self.take_ahead(ahead, since, range).await?,
            None => self.log.read_chunk(range).await?,
        };
        // A log may return fewer than `max`, never more.
        records.truncate(max);
        let Some(last) = records.last_seq() else {
            return Ok(None);
        };
        if self.opts.reverse {
            self.upper = Bound::Excluded(last);
        } else {
            self.lower = Bound::Excluded(last);
        }
        if let Some(n) = &mut self.remaining {
            *n -= records.len();
        }
        self.read_ahead();
        Ok(Some(records))
    }

    /// Start reading the next chunk, if there is one now, while the caller consumes this one.
    fn read_ahead(&mut self) {
        let Some(spawn) = &self.spawn else { return };
        let since = match self.pinned {
            Some(pinned) => pinned,
            // Not marked as seen: `next_chunk` still notices the change.
            None => *self.since.borrow(),
        };
        if let Some(since) = since
            && let Some(range) = self.range(since, AHEAD)
        {
            let spent = self.spent.as_ref().and_then(|s| lock(s).take());
            self.ahead = Some(Ahead {
                task: spawn(range, spent),
                since,
            });
        }
    }

    /// The result of the read-ahead, which read `(cursor, ahead.since]` (the cursor has not
    /// moved since it started).
    async fn take_ahead(
        &self,
        mut ahead: Ahead,
        since: Seq,
        range: ReadRange,
    ) -> Result<Chunk, LogError> {
        match (&mut ahead.task).await {
            // `since` moved on (live streams) after the read-ahead found nothing: read again, or
            // the records in between would wait for the next change.
            Ok(Ok(records)) if records.is_empty() && ahead.since != since => {
                self.log.read_chunk(range).await
            }
            Ok(result) => result,
            // The task panicked or the runtime is shutting down: read here instead.
            Err(_) => self.log.read_chunk(range).await,
        }
    }
}
