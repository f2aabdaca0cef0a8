//! The [`View`] trait: state derived from the log, rebuilt from it at will.

use crate::{RecordReader, Seq, ViewError};

/// What a view has stored: the code version that wrote it and the last record it includes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewMeta {
    /// The version that wrote the stored state; `None` when nothing is stored yet.
    pub version: Option<u32>,
    /// The seq of the last record folded into the stored state; `None` when it has seen nothing.
    pub since: Option<Seq>,
}

/// A view materialized from the log by a [`Db`](crate::Db).
///
/// The database drives every view the same way: it calls [`open`](View::open) once, destroys and
/// rebuilds the view when the stored version differs from [`version`](View::version), when the
/// state is unreadable, or when `since` is ahead of the log; then it feeds batches of records in
/// log order through [`apply`](View::apply), from the view's `since` on.
///
/// Implementations keep one promise: `apply` commits the batch's effect and the new `since` (the
/// batch's last seq) together, atomically, so after any crash the stored state and `since` agree.
/// Reads of the view's state go through a [`ViewHandle`](crate::ViewHandle), which waits until
/// the view has caught up with the log.
#[async_trait::async_trait]
pub trait View<T: Send + Sync + 'static>: Send + Sync + 'static {
    /// The version of this view's code. Change it whenever the stored state would differ for the
    /// same records (a new reduce function, a new index key); the view is then rebuilt.
    fn version(&self) -> u32;

    /// Receive read access to the database's log and codec, once, before [`open`](View::open).
    /// Views whose reads return whole records (indexes, queries) keep it; others ignore it.
    fn attach(&self, _records: RecordReader<T>) {}

    /// Load the stored state and report its version and `since`.
    ///
    /// # Errors
    /// [`ViewError::Unreadable`] (or any error) makes the database destroy and rebuild the view.
    async fn open(&self) -> Result<ViewMeta, ViewError>;

    /// The seq of the last record applied (as stored by the last `apply`, or by `open`).
    fn since(&self) -> Option<Seq>;

    /// Fold a batch of records, in log order, into the state and store it with `since` = the
    /// last seq of the batch, in one atomic commit.
    ///
    /// # Errors
    /// Any error marks the view failed; it is destroyed and rebuilt with backoff.
    async fn apply(&self, batch: &[(Seq, &T)]) -> Result<(), ViewError>;

    /// Drop all state: afterwards the view is empty, `since` is `None`, and the stored version is
    /// this code's version.
    ///
    /// # Errors
    /// Storage errors; the database retries with backoff.
    async fn destroy(&self) -> Result<(), ViewError>;

    /// Make the state durable up to at least the `since` reported when the call begins: after
    /// it returns, a crash leaves a stored `since` no lower. Called before records the view has
    /// applied are deleted from the log (retention), so that it never needs them again.
    ///
    /// The default does nothing, which is right for a view whose `apply` is durable when it
    /// returns, and for a view that stores nothing (it is rebuilt at every open). A view that
    /// defers durability (checkpoints, commits without a sync) overrides it.
    ///
    /// # Errors
    /// Storage errors; the caller then deletes nothing the view applied.
    async fn sync(&self) -> Result<(), ViewError> {
        Ok(())
    }

    /// Release resources. The database calls it once, when it closes.
    ///
    /// # Errors
    /// Storage errors while flushing.
    async fn close(&self) -> Result<(), ViewError>;
}
