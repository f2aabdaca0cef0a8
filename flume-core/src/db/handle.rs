//! Typed handles on views, with reads gated on the view catching up with the log.

use std::sync::Arc;

use tokio::sync::watch;

use super::Closed;
use super::status::{Progress, Readable, ViewState, ViewStatus};
use crate::seq::reached;
use crate::{DbError, Log, Seq};

/// A handle on a view in use by a [`Db`](crate::Db), returned by [`Db::use_view`](crate::Db::use_view).
///
/// Reads go through [`ready`](ViewHandle::ready), which waits until the view includes every record
/// acknowledged when it was called, so a caller always reads its own writes. View crates add their
/// read methods on top of it.
pub struct ViewHandle<V> {
    view: Arc<V>,
    gate: Gate,
}

impl<V> Clone for ViewHandle<V> {
    fn clone(&self) -> Self {
        ViewHandle {
            view: Arc::clone(&self.view),
            gate: self.gate.clone(),
        }
    }
}

/// What a gated read checks. The fast path (a caught-up view) reads only atomics: the log's
/// `current_since`, the view's [`Readable`] and the closed flag; the watches are for waiting.
#[derive(Clone)]
pub(crate) struct Gate {
    /// The view's name, for errors and status.
    pub(crate) name: Arc<str>,
    /// The view's version, for status.
    pub(crate) version: u32,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) readable: Arc<Readable>,
    pub(crate) log: Arc<dyn Log>,
    pub(crate) closed: Arc<Closed>,
}

impl<V> ViewHandle<V> {
    pub(crate) fn new(view: Arc<V>, gate: Gate) -> Self {
        ViewHandle { view, gate }
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.gate.name
    }

    /// Wait until the view includes every record acknowledged now, then give access to it.
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] if the view fails while (or before) waiting;
    /// [`DbError::Closed`] if the database is or becomes closed.
    pub fn ready(&self) -> impl Future<Output = Result<&V, DbError>> + '_ {
        // Read at the call, not at the first poll.
        let target = self.gate.log.current_since();
        self.wait(target, Need::Reached)
    }

    /// Wait until the view includes every record acknowledged now and is fed by the shared feed
    /// ([`ViewState::Live`]): the wait [`Db::rebuild`](crate::Db::rebuild) ends with.
    ///
    /// Reads need only [`ready`](ViewHandle::ready). This is for reports of a view's
    /// [`status`](ViewHandle::status): a view that has caught up on its own (after an open or a
    /// rebuild) is readable at once, but says `Building` until the feed has taken it, which the
    /// feed does between deliveries (so a feed held up by a slow live view keeps it waiting).
    ///
    /// # Errors
    /// As [`ready`](ViewHandle::ready).
    pub fn live(&self) -> impl Future<Output = Result<(), DbError>> + '_ {
        let target = self.gate.log.current_since();
        self.gate.wait(target, Need::Live)
    }

    /// Wait until the view includes the record at `seq` (which may not be appended yet).
    ///
    /// # Errors
    /// As [`ready`](ViewHandle::ready).
    pub async fn ready_at(&self, seq: Seq) -> Result<&V, DbError> {
        self.wait(Some(seq), Need::Reached).await
    }

    /// Access the view without waiting: it may not include the latest records.
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] or [`DbError::Closed`].
    pub fn stale(&self) -> Result<&V, DbError> {
        self.gate.check(&self.gate.progress.borrow())?;
        Ok(&self.view)
    }

    /// The view's status now.
    pub fn status(&self) -> ViewStatus {
        self.gate.status(self.gate.log.current_since())
    }

    async fn wait(&self, target: Option<Seq>, need: Need) -> Result<&V, DbError> {
        self.gate.wait(target, need).await?;
        Ok(&self.view)
    }
}

impl Gate {
    /// The view's status, beside the log's `since`.
    pub(crate) fn status(&self, log_since: Option<Seq>) -> ViewStatus {
        ViewStatus::new(&self.name, self.version, &self.progress.borrow(), log_since)
    }

    /// Wait until the view includes `target`, and is live if `need` says so.
    pub(crate) async fn wait(&self, target: Option<Seq>, need: Need) -> Result<(), DbError> {
        // The view's worker stores `readable` after the view applied its records (release), so
        // seeing the target there (acquire) means the view's writes are visible here. It holds
        // no state beyond usable: waiting for `Live` takes the watch.
        if need == Need::Reached && !self.closed.is_closed() && self.readable.reached(target) {
            return Ok(());
        }
        let mut progress = self.progress.clone();
        let mut closed = self.closed.subscribe();
        loop {
            {
                let p = progress.borrow_and_update();
                self.check(&p)?;
                if reached(p.since, target) && (need == Need::Reached || p.state == ViewState::Live)
                {
                    return Ok(());
                }
            }
            tokio::select! {
                changed = progress.changed() => changed.map_err(|_| DbError::Closed)?,
                _ = closed.wait_for(|c| *c) => return Err(DbError::Closed),
            }
        }
    }

    /// A failed view or a closed database is an error.
    fn check(&self, p: &Progress) -> Result<(), DbError> {
        if self.closed.is_closed() {
            return Err(DbError::Closed);
        }
        match &p.state {
            ViewState::Failed(reason) => Err(DbError::ViewFailed {
                view: self.name.to_string(),
                reason: reason.clone(),
            }),
            ViewState::Closed => Err(DbError::Closed),
            _ => Ok(()),
        }
    }
}

/// What a wait on a view waits for, besides not failed and not closed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// The view includes the target.
    Reached,
    /// And is fed by the shared feed.
    Live,
}
