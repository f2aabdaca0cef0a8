//! [`Db`]: one log, a codec, and the views materialized from it.

mod backoff;
mod feed;
mod handle;
mod status;
mod worker;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use feed::FEED_QUEUE;
pub use handle::ViewHandle;
pub use status::{QueueStats, ViewState, ViewStatus};

use self::feed::{Feed, Join};
use self::handle::{Gate, Need};
use self::status::{Progress, Readable};
use self::worker::{Command, Worker};
use crate::lock::lock;
use crate::log::stream_owned_with;
use crate::{
    AppendError, Codec, DbError, Item, Log, LogError, ReadRange, RecordReader, Seq, StreamOpts,
    View, ViewError,
};

/// Records read per chunk by the feed and by views catching up (a read also stops at
/// [`READ_BYTES`](crate::READ_BYTES)); a view catching up applies each chunk at once. Large, because
/// a view's store may pay per `apply` rather than per record: an LMDB transaction rewrites every
/// B-tree page it touches, and scattered index keys touch about as many pages for 1,024 records as
/// for 8,192 (docs/design.md §1 has the figure).
pub const VIEW_CHUNK: usize = 8 * 1024;

/// Default bound on bytes handed to the log and not yet acknowledged.
pub const DEFAULT_APPEND_QUEUE_BYTES: u64 = 64 << 20;

/// A database: one append-only log of typed records and any number of views derived from it.
///
/// `Db` is a cheap handle (`Clone` shares it). Records are encoded once on append and decoded once
/// per record for all live views. Reads on a view wait until the view has caught up with the log,
/// so a caller reads its own writes.
///
/// ```
/// # use flume_core::{Db, Postcard, StreamOpts};
/// # use flume_log_memory::MemoryLog;
/// # use futures::TryStreamExt;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db: Db<String> = Db::open(MemoryLog::new(), Postcard).await?;
/// let seq = db.append("hello".to_string()).await?;
/// assert_eq!(db.get(seq).await?, "hello");
/// let all: Vec<_> = db.stream(StreamOpts::new().values()).try_collect().await?;
/// assert_eq!(all.len(), 1);
/// db.close().await?;
/// # Ok(()) }
/// ```
pub struct Db<T: Send + Sync + 'static> {
    shared: Arc<Shared<T>>,
    /// Held only by `Db` handles (not by the database's own tasks): when the last one is dropped
    /// without `close`, the tasks are told to stop instead of running forever.
    _guard: Arc<StopOnDrop>,
}

impl<T: Send + Sync + 'static> Clone for Db<T> {
    fn clone(&self) -> Self {
        Db {
            shared: Arc::clone(&self.shared),
            _guard: Arc::clone(&self._guard),
        }
    }
}

struct StopOnDrop(Arc<Closed>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Whether the database is closed: a flag that gated reads check without a lock, and a watch
/// that wakes the tasks waiting on it.
pub(crate) struct Closed {
    flag: AtomicBool,
    tx: watch::Sender<bool>,
}

impl Closed {
    fn new() -> Self {
        Closed {
            flag: AtomicBool::new(false),
            tx: watch::Sender::new(false),
        }
    }

    /// Mark the database closed; true if it already was.
    fn close(&self) -> bool {
        self.flag.store(true, Ordering::Release);
        self.tx.send_replace(true)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

pub(crate) struct Shared<T> {
    pub(crate) log: Arc<dyn Log>,
    pub(crate) codec: Arc<dyn Codec<T>>,
    pub(crate) closed: Arc<Closed>,
    joins: mpsc::Sender<Join<T>>,
    views: Mutex<BTreeMap<Arc<str>, Entry>>,
    tasks: Mutex<Vec<(Arc<str>, WorkerTask)>>,
    feed: Mutex<Option<JoinHandle<()>>>,
    queue: AppendQueue,
}

/// A view's worker task; it returns the view's close result.
type WorkerTask = JoinHandle<Result<(), ViewError>>;

struct Entry {
    /// What the view's handles wait on; `rebuild` waits on it too.
    gate: Gate,
    commands: mpsc::Sender<Command>,
}

/// The bound on appends in flight: a byte budget that appenders wait on (backpressure).
struct AppendQueue {
    permits: Semaphore,
    capacity: u64,
    in_flight: AtomicU64,
    high_water: AtomicU64,
}

/// Options for [`Db::open_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DbOptions {
    /// Bytes of encoded records that may be in flight to the log; appends wait beyond it.
    pub append_queue_bytes: u64,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            append_queue_bytes: DEFAULT_APPEND_QUEUE_BYTES,
        }
    }
}

impl DbOptions {
    /// Set the append queue's byte bound (at least 1, at most 4 GiB - 1).
    pub fn append_queue_bytes(mut self, bytes: u64) -> Self {
        self.append_queue_bytes = bytes.clamp(1, u64::from(u32::MAX));
        self
    }
}

pub(crate) fn chunk_range(lower: Bound<Seq>, target: Option<Seq>) -> Option<ReadRange> {
    let target = target?;
    let upper = Bound::Included(target);
    if crate::bounds::is_empty_range(lower, upper) {
        return None;
    }
    Some(ReadRange {
        lower,
        upper,
        reverse: false,
        max: VIEW_CHUNK,
        max_bytes: crate::READ_BYTES,
        values: true,
    })
}

impl<T: Send + Sync + 'static> Db<T> {
    /// Open a database over `log`, encoding records with `codec`.
    ///
    /// # Errors
    /// None today; the signature leaves room for logs that check their codec.
    pub async fn open(log: impl Log, codec: impl Codec<T>) -> Result<Self, DbError> {
        Self::open_with(Arc::new(log), Arc::new(codec), DbOptions::default()).await
    }

    /// Open with shared log and codec handles and explicit options.
    ///
    /// # Errors
    /// [`DbError::Closed`] when the log is already closed.
    pub async fn open_with(
        log: Arc<dyn Log>,
        codec: Arc<dyn Codec<T>>,
        options: DbOptions,
    ) -> Result<Self, DbError> {
        if log.since().has_changed().is_err() {
            return Err(DbError::Closed);
        }
        let capacity = options.append_queue_bytes.clamp(1, u64::from(u32::MAX));
        let (joins, join_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            log,
            codec,
            closed: Arc::new(Closed::new()),
            joins,
            views: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            feed: Mutex::new(None),
            queue: AppendQueue {
                permits: Semaphore::new(capacity as usize),
                capacity,
                in_flight: AtomicU64::new(0),
                high_water: AtomicU64::new(0),
            },
        });
        let feed = Feed::new(Arc::clone(&shared), join_rx);
        *lock(&shared.feed) = Some(tokio::spawn(feed.run()));
        let guard = Arc::new(StopOnDrop(Arc::clone(&shared.closed)));
        Ok(Db {
            shared,
            _guard: guard,
        })
    }

    /// The log under this database.
    pub fn log(&self) -> &Arc<dyn Log> {
        &self.shared.log
    }

    /// The seq of the last acknowledged record.
    pub fn since(&self) -> Option<Seq> {
        self.shared.log.current_since()
    }

    /// Start maintaining `view` under `name` and return a typed handle on it.
    ///
    /// The view is opened (and destroyed first if its stored version differs, its state is
    /// unreadable or it is ahead of the log) before this returns; catching up with the log goes on
    /// in the background, and reads through the handle wait for it.
    ///
    /// # Errors
    /// [`DbError::DuplicateView`] if the name is taken; [`DbError::Closed`] after close.
    pub async fn use_view<V: View<T>>(
        &self,
        name: &str,
        view: V,
    ) -> Result<ViewHandle<V>, DbError> {
        self.check_open()?;
        let view = Arc::new(view);
        view.attach(RecordReader::new(
            Arc::clone(&self.shared.log),
            Arc::clone(&self.shared.codec),
        ));
        let name: Arc<str> = Arc::from(name);
        let (progress_tx, progress) = watch::channel(Progress {
            since: None,
            state: ViewState::Opening,
        });
        let (commands_tx, commands) = mpsc::channel(8);
        let readable = Arc::new(Readable::default());
        let gate = Gate {
            name: Arc::clone(&name),
            version: view.version(),
            progress,
            readable: Arc::clone(&readable),
            log: Arc::clone(&self.shared.log),
            closed: Arc::clone(&self.shared.closed),
        };
        {
            let mut views = lock(&self.shared.views);
            if views.contains_key(&name) {
                return Err(DbError::DuplicateView(name.to_string()));
            }
            let entry = Entry {
                gate: gate.clone(),
                commands: commands_tx,
            };
            views.insert(Arc::clone(&name), entry);
        }
        let (started_tx, started) = oneshot::channel();
        let worker = Worker {
            shared: Arc::clone(&self.shared),
            view: Arc::clone(&view) as Arc<dyn View<T>>,
            progress: progress_tx,
            readable,
            commands,
            joins: self.shared.joins.clone(),
            shutdown: self.shared.closed.subscribe(),
            started: Some(started_tx),
            since: None,
        };
        lock(&self.shared.tasks).push((Arc::clone(&name), tokio::spawn(worker.run())));
        let _ = started.await;
        Ok(ViewHandle::new(view, gate))
    }

    /// Append one record and return its seq once it is acknowledged by the log.
    ///
    /// Waits while the append queue is full (backpressure).
    ///
    /// # Errors
    /// The record is handed back with [`DbError::Closed`], a codec error or the log's error.
    pub async fn append(&self, value: T) -> Result<Seq, AppendError<T, DbError>> {
        match self.append_batch(vec![value]).await {
            Ok(seqs) => Ok(seqs[0]),
            Err(AppendError {
                error,
                mut rejected,
            }) => match rejected.pop() {
                Some(value) => Err(AppendError {
                    error,
                    rejected: value,
                }),
                None => unreachable!("a batch of one hands back one record"),
            },
        }
    }

    /// Append records atomically (all or none) and return their seqs.
    ///
    /// # Errors
    /// As [`append`](Db::append); every record is handed back and none was appended.
    pub async fn append_batch(
        &self,
        values: Vec<T>,
    ) -> Result<Vec<Seq>, AppendError<Vec<T>, DbError>> {
        let reject = |error, rejected| Err(AppendError { error, rejected });
        if let Err(error) = self.check_open() {
            return reject(error, values);
        }
        let mut encoded = Vec::with_capacity(values.len());
        for v in &values {
            match self.shared.codec.encode(v) {
                Ok(b) => encoded.push(b),
                Err(source) => return reject(DbError::Codec { seq: None, source }, values),
            }
        }
        match self.shared.queue.submit(&*self.shared.log, encoded).await {
            Ok(seqs) => Ok(seqs),
            Err(error) => reject(error, values),
        }
    }

    /// The record at `seq`.
    ///
    /// # Errors
    /// [`DbError::Closed`]; the log's error (no record there, truncated); a decode error.
    pub async fn get(&self, seq: Seq) -> Result<T, DbError> {
        self.check_open()?;
        let bytes = self.shared.log.get(seq).await?;
        self.shared
            .codec
            .decode(&bytes)
            .map_err(|source| DbError::Codec {
                seq: Some(seq),
                source,
            })
    }

    /// Stream decoded records with the log's options. The stream owns its handles.
    ///
    /// Errors (closed database, bad options, decode failures) arrive as `Err` items.
    pub fn stream(
        &self,
        opts: StreamOpts,
    ) -> impl Stream<Item = Result<Item<T>, DbError>> + Send + 'static {
        if self.check_open().is_err() {
            return futures::stream::once(async { Err(DbError::from(LogError::Closed)) }).boxed();
        }
        let codec = Arc::clone(&self.shared.codec);
        let output = opts.output;
        // Decoded as the caller takes each record, straight from the log's chunks (which are
        // freed by the read-ahead). Not on the read-ahead's thread: the caller would then
        // free values allocated on another thread, which costs more (docs/design.md §1).
        stream_owned_with(Arc::clone(&self.shared.log), opts, move |seq, value| {
            let item = Item::shaped(output, seq, &*value);
            let seq = item.seq();
            item.try_map(|bytes: &[u8]| codec.decode(bytes))
                .map_err(|source| DbError::Codec { seq, source })
        })
    }

    /// Destroy and rebuild one view (by name) or all of them, and wait until the rebuilt views
    /// have caught up with the log as it is now.
    ///
    /// # Errors
    /// [`DbError::UnknownView`]; [`DbError::ViewFailed`] if a destroy or the rebuild fails;
    /// [`DbError::Closed`].
    pub async fn rebuild(&self, name: Option<&str>) -> Result<(), DbError> {
        self.check_open()?;
        let targets: Vec<(Gate, mpsc::Sender<Command>)> = {
            let views = lock(&self.shared.views);
            let pick = |e: &Entry| (e.gate.clone(), e.commands.clone());
            match name {
                Some(n) => vec![pick(
                    views.get(n).ok_or_else(|| DbError::UnknownView(n.into()))?,
                )],
                None => views.values().map(pick).collect(),
            }
        };
        let target = self.since();
        for (gate, commands) in targets {
            let (reply, done) = oneshot::channel();
            commands
                .send(Command::Rebuild(reply))
                .await
                .map_err(|_| DbError::Closed)?;
            let destroyed = done.await.map_err(|_| DbError::Closed)?;
            destroyed.map_err(|reason| DbError::ViewFailed {
                view: gate.name.to_string(),
                reason,
            })?;
            // Caught up and back on the shared feed.
            gate.wait(target, Need::Live).await?;
        }
        Ok(())
    }

    /// The status of every view, by name.
    pub fn status(&self) -> Vec<ViewStatus> {
        let log_since = self.since();
        lock(&self.shared.views)
            .values()
            .map(|e| e.gate.status(log_since))
            .collect()
    }

    /// The append queue's occupancy.
    pub fn queue_stats(&self) -> QueueStats {
        let q = &self.shared.queue;
        QueueStats {
            in_flight_bytes: q.in_flight.load(Ordering::Relaxed),
            high_water_bytes: q.high_water.load(Ordering::Relaxed),
            capacity_bytes: q.capacity,
        }
    }

    /// True once [`close`](Db::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_closed()
    }

    /// Close the database: refuse new appends and reads, wait for appends in flight, stop and
    /// close every view, then close the log. Calling it again does nothing.
    ///
    /// # Errors
    /// The first error from closing a view or the log; everything is closed regardless.
    pub async fn close(&self) -> Result<(), DbError> {
        if self.shared.closed.close() {
            return Ok(());
        }
        // Every append in flight holds permits: taking them all waits for those appends.
        let all = self.shared.queue.capacity as u32;
        if let Ok(permits) = self.shared.queue.permits.acquire_many(all).await {
            permits.forget();
        }
        self.shared.queue.permits.close();
        let feed = lock(&self.shared.feed).take();
        if let Some(feed) = feed {
            let _ = feed.await;
        }
        let mut first_error = None;
        let tasks: Vec<_> = lock(&self.shared.tasks).drain(..).collect();
        for (view, task) in tasks {
            if let Ok(Err(source)) = task.await {
                first_error.get_or_insert(DbError::View {
                    view: view.to_string(),
                    source,
                });
            }
        }
        if let Err(e) = self.shared.log.close().await {
            first_error.get_or_insert(DbError::Log(e));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn check_open(&self) -> Result<(), DbError> {
        if self.is_closed() {
            Err(DbError::Closed)
        } else {
            Ok(())
        }
    }
}

impl AppendQueue {
    /// Hand a batch to the log once its bytes fit in the budget.
    async fn submit(&self, log: &dyn Log, records: Vec<Bytes>) -> Result<Vec<Seq>, DbError> {
        let bytes: u64 = records.iter().map(|r| r.len() as u64).sum::<u64>().max(1);
        // A batch larger than the whole budget waits for the queue to drain, then goes alone.
        let want = bytes.min(self.capacity) as u32;
        let permits = self
            .permits
            .acquire_many(want)
            .await
            .map_err(|_| DbError::Closed)?;
        let now = self.in_flight.fetch_add(u64::from(want), Ordering::Relaxed) + u64::from(want);
        self.high_water.fetch_max(now, Ordering::Relaxed);
        let result = log.append_batch(records).await;
        self.in_flight.fetch_sub(u64::from(want), Ordering::Relaxed);
        drop(permits);
        result.map_err(|e| DbError::from(e.error))
    }
}
