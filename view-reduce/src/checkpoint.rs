//! When and how a persistent view writes its state: the policy, and the background writer.
//!
//! `apply` never touches the disk: it folds the batch in memory and, when that makes a
//! checkpoint due sooner, wakes a background task. The task waits for the deadline, snapshots
//! `{state, since}` under the read lock, and replaces the state file on a blocking thread. So a
//! long rebuild costs one write per `records` records (or per `interval`), not one per batch, and
//! a live view never waits on fsync.

use std::future;
use std::sync::Arc;
use std::time::Duration;

use flume_core::ViewError;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cell::{Cell, Shared};
use crate::store::{self, Header, Store};

/// Batches shorter than this mean the view has reached the log's tail: the database reads (and
/// feeds) records in chunks of up to 1024, so only the last chunk of a catch-up, or a live batch,
/// is shorter.
pub(crate) const TAIL_BATCH: usize = 1024;

/// When a persistent [`Reduce`](crate::Reduce) writes its state to disk.
///
/// Unsaved changes are written, in the background, as soon as one of these holds:
/// - [`records`](Checkpoints::records) records were folded since the last checkpoint;
/// - the oldest unsaved change is [`interval`](Checkpoints::interval) old;
/// - the view reached the log's tail (a batch shorter than a read chunk, which is how the last
///   chunk of a catch-up and live batches look) and the oldest unsaved change is
///   [`tail_delay`](Checkpoints::tail_delay) old; the delay merges bursts of small appends;
///
/// and always on close. Between checkpoints the state is only in memory: a crash loses it, and
/// the next open reports the older checkpoint's `since`, so the database feeds those records
/// again. Each checkpoint serializes the whole state, so bigger values of these settings trade
/// re-reading after a crash for less writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoints {
    /// Write after this many records (default 10,000).
    pub records: u64,
    /// Write when a change is this old (default 1 s).
    pub interval: Duration,
    /// At the log's tail, write when a change is this old (default 100 ms).
    pub tail_delay: Duration,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            records: 10_000,
            interval: Duration::from_secs(1),
            tail_delay: Duration::from_millis(100),
        }
    }
}

impl Checkpoints {
    /// The defaults: every 10,000 records or 1 s, and 100 ms after reaching the tail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write after `n` records (at least 1).
    pub fn records(mut self, n: u64) -> Self {
        self.records = n.max(1);
        self
    }

    /// Write when the oldest unsaved change is `d` old.
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }

    /// At the log's tail, write when the oldest unsaved change is `d` old.
    pub fn tail_delay(mut self, d: Duration) -> Self {
        self.tail_delay = d;
        self
    }

    /// When the next checkpoint is due; `None` when there is nothing (or nothing allowed) to
    /// write.
    pub(crate) fn deadline<S>(&self, cell: &Cell<S>) -> Option<Instant> {
        if !cell.dirty() || cell.broken.is_some() || cell.save_error.is_some() {
            // A failed write is not retried here: `apply` reports it and the database rebuilds
            // the view with backoff (no tight retry loop on a failing disk).
            return None;
        }
        let since = cell.dirty_since?;
        if cell.folded - cell.saved >= self.records {
            return Some(since);
        }
        let wait = if cell.at_tail {
            self.tail_delay
        } else {
            self.interval
        };
        // An overflow (`Duration::MAX`) means "never on this rule".
        since.checked_add(wait)
    }
}

/// True when `after` is sooner than `before` (`None` is never).
pub(crate) fn sooner(after: Option<Instant>, before: Option<Instant>) -> bool {
    match (after, before) {
        (Some(a), Some(b)) => a < b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Write the state if it has unsaved records.
///
/// The snapshot, the write and the bookkeeping run on one blocking thread, exclusively, so they complete together even if the caller stops waiting, and never interleave with
/// `destroy`.
///
/// # Errors
/// Encoding or I/O errors; the previous checkpoint is then still on disk.
pub(crate) async fn save<S>(shared: &Arc<Shared<S>>, store: &Arc<Store>) -> Result<(), ViewError>
where
    S: Serialize + Send + Sync + 'static,
{
    let (shared, store) = (Arc::clone(shared), Arc::clone(store));
    blocking(move || {
        store.exclusive(|| {
            let taken = Instant::now();
            let (bytes, folded) = {
                let cell = shared.read();
                if !cell.dirty() || cell.broken.is_some() {
                    return Ok(());
                }
                let header = Header {
                    version: shared.version,
                    since: cell.since,
                };
                (store::encode(header, &cell.value)?, cell.folded)
            };
            store.replace(&bytes)?;
            shared.write().mark_saved(folded, taken);
            Ok(())
        })
    })
    .await
}

/// Run blocking storage work off the async threads.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ViewError> + Send + 'static,
) -> Result<R, ViewError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ViewError::Other(format!("the reduce view's storage task failed: {e}").into())
    })?
}

/// The background checkpoint writer of one open view. Dropping it stops the task.
pub(crate) struct Writer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Writer {
    /// Start writing checkpoints of `shared` to `store` by `policy`. Needs a Tokio runtime with
    /// timers enabled.
    pub(crate) fn spawn<S>(shared: Arc<Shared<S>>, store: Arc<Store>, policy: Checkpoints) -> Self
    where
        S: Serialize + Send + Sync + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(shared, store, policy, stopped));
        Writer { stop, task }
    }

    /// Stop the task, letting a checkpoint in progress finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run<S>(
    shared: Arc<Shared<S>>,
    store: Arc<Store>,
    policy: Checkpoints,
    mut stop: oneshot::Receiver<()>,
) where
    S: Serialize + Send + Sync + 'static,
{
    loop {
        let deadline = policy.deadline(&shared.read());
        let due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => future::pending().await,
            }
        };
        tokio::select! {
            biased;
            // Sent by `stop`, or the view was dropped.
            _ = &mut stop => return,
            () = shared.wake.notified() => {}
            () = due => {
                if let Err(e) = save(&shared, &store).await {
                    shared.write().save_error = Some(e);
                }
            }
        }
    }
}
