//! Retention while the database is open: deleting the log's oldest segments, never a record a
//! view may need again, by hand ([`Store::retire_before`], or [`Store::plan_retirement`] to see
//! what goes first) or as `[log] retain` says, in the background.
//!
//! A view whose stored `since` fell below the log's first seq would be rebuilt, after a crash,
//! from what remains, and silently lose what it had derived from the deleted records. So every
//! view is first made durable at the `since` it has reached ([`View::sync`]: a reduce view
//! writes a checkpoint, an LMDB view forces the sync its commits skip), and nothing from the
//! lowest of those on is deleted.
//!
//! [`Store::retire_before`]: crate::Store::retire_before
//! [`Store::plan_retirement`]: crate::Store::plan_retirement
//! [`View::sync`]: flume_core::View::sync

use std::sync::Arc;
use std::time::Duration;

use flume_core::{Log, Seq};
use flume_log_offset::{OffsetLog, Retirement};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};
use tokio::task::JoinHandle;

use crate::StoreError;
use crate::views::StoreView;

/// What a retirement deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retired {
    /// The seq it retired below: the one asked for, lowered to just after the `since` of the
    /// view that had applied the least, and never past the last record + 1.
    pub before: Seq,
    /// Segment files deleted (0 when no whole segment lay below `before`).
    pub segments: usize,
    /// Their size on disk.
    pub bytes: u64,
    /// The log's first seq now (`None` when it is empty).
    pub first: Option<Seq>,
}

/// A retirement planned with every view synced, holding the store's one-at-a-time lock until
/// it is carried out ([`Planned::retire`]) or dropped (nothing is deleted then), so that what
/// it shows is what goes.
#[must_use = "a planned retirement deletes nothing until `retire` is called"]
pub struct Planned {
    _one: OwnedMutexGuard<()>,
    log: Arc<OffsetLog>,
    before: Seq,
    plan: Retirement,
}

impl Planned {
    /// The seq it retires below, lowered as [`Retired::before`] says.
    pub fn before(&self) -> Seq {
        self.before
    }

    /// What goes (no segment when no whole one lies below [`before`](Self::before)).
    pub fn plan(&self) -> &Retirement {
        &self.plan
    }

    /// Delete the planned segments.
    ///
    /// # Errors
    /// The log's I/O errors deleting files (a retry finishes the work).
    pub async fn retire(self) -> Result<Retired, StoreError> {
        let (before, plan) = (self.before, &self.plan);
        // Below the first seq the plan keeps: exactly the planned segments, whatever the log
        // appended since (`before` is capped at the last record + 1, so it could not reach
        // the segment that held it either; this does not depend on that).
        let (segments, bytes) = if plan.segments > 0
            && let Some(first) = plan.first
        {
            let log = Arc::clone(&self.log);
            let gone = tokio::task::spawn_blocking(move || log.retire_before(first))
                .await
                .map_err(|e| StoreError::Io {
                    path: std::path::PathBuf::from("log"),
                    source: std::io::Error::other(format!(
                        "the task deleting segment files stopped ({e}); run the retirement again"
                    )),
                })??;
            (gone.segments, gone.bytes)
        } else {
            (0, 0)
        };
        Ok(Retired {
            before,
            segments,
            bytes,
            first: self.log.first(),
        })
    }
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("before", &self.before)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// The log and the views, shared by the store and its background retention.
pub(crate) struct Retainer {
    log: Arc<OffsetLog>,
    views: Vec<(String, StoreView)>,
    /// One retirement at a time, from its plan to its deletion.
    one: Arc<Mutex<()>>,
}

impl Retainer {
    pub(crate) fn new(log: Arc<OffsetLog>, views: Vec<(String, StoreView)>) -> Self {
        Retainer {
            log,
            views,
            one: Arc::default(),
        }
    }

    /// Sync every view (reading its `since` first), lower `before` to just after the lowest of
    /// those (and of the last record), and plan the retirement below it. Waits for a plan
    /// already held to be carried out or dropped.
    pub(crate) async fn plan(&self, before: Seq) -> Result<Planned, StoreError> {
        let one = Arc::clone(&self.one).lock_owned().await;
        self.plan_holding(one, before).await
    }

    async fn plan_holding(
        &self,
        one: OwnedMutexGuard<()>,
        before: Seq,
    ) -> Result<Planned, StoreError> {
        let mut before = before.min(Seq::after(self.log.current_since()));
        for (name, view) in &self.views {
            let since = view.sync().await.map_err(|source| StoreError::ViewSync {
                name: name.clone(),
                source,
            })?;
            before = before.min(Seq::after(since));
        }
        Ok(Planned {
            _one: one,
            log: Arc::clone(&self.log),
            before,
            plan: self.log.retirement(before),
        })
    }

    pub(crate) async fn retire_before(&self, before: Seq) -> Result<Retired, StoreError> {
        self.plan(before).await?.retire().await
    }

    /// The seq below which records lie more than `keep` bytes before the last one: retiring
    /// below it keeps at least `keep` bytes of the newest records. `None` when the log is empty.
    pub(crate) fn keeping(&self, keep: u64) -> Option<Seq> {
        let last = self.log.current_since()?;
        Some(Seq(last.0.saturating_sub(keep)))
    }

    /// One background check: retire what lies more than `keep` bytes before the last record.
    async fn check(&self, keep: u64) {
        let Some(before) = self.keeping(keep) else {
            return;
        };
        // Cheap, and most checks end here: the views are synced only when there is work.
        if self.log.retirement(before).segments == 0 {
            return;
        }
        // A plan held by hand (`Store::plan_retirement`) makes this check skip, not wait: its
        // holder may be closing the store, which waits for this check.
        let Ok(one) = Arc::clone(&self.one).try_lock_owned() else {
            return;
        };
        let retired = async { self.plan_holding(one, before).await?.retire().await };
        match retired.await {
            Ok(r) if r.segments > 0 => tracing::info!(
                segments = r.segments,
                bytes = r.bytes,
                first = r.first.map(|s| s.0),
                "retention: retired the log's oldest segments"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("retention: {e}"),
        }
    }
}

/// The background task applying `[log] retain`; stopped by [`Background::stop`].
pub(crate) struct Background {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Background {
    pub(crate) fn start(retainer: Arc<Retainer>, keep: u64, every: Duration) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(every) => retainer.check(keep).await,
                }
            }
        });
        Background { stop, task }
    }

    /// Stop after the check under way, if any, has finished.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
