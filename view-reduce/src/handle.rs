//! Gated reads on a [`ViewHandle`] of a [`Reduce`]: the state, its seq, and a live stream of it.

use std::future::Future;

use flume_core::{DbError, Seq, ViewHandle};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::Reduce;

/// A state with the seq of the last record it includes and the version of the view that built
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reduced<S> {
    /// The last record folded in; `None` while the view has seen no record.
    pub seq: Option<Seq>,
    /// The view's version.
    pub version: u32,
    /// The state.
    pub value: S,
}

mod sealed {
    pub trait Sealed {}
}

/// Gated reads on a handle of a [`Reduce`] view: each waits until the view includes every record
/// acknowledged when it was called, so a caller reads its own writes.
///
/// ```
/// # use flume_core::{Db, Postcard, Seq};
/// # use flume_log_memory::MemoryLog;
/// use flume_view_reduce::{Reduce, ReduceExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let db: Db<u64> = Db::open(MemoryLog::new(), Postcard).await?;
/// let max = db
///     .use_view("max", Reduce::new(1, 0u64, |max, _, n: &u64| *max = (*max).max(*n)))
///     .await?;
/// let seq = db.append(7).await?;
/// let got = max.get_meta().await?;
/// assert_eq!((got.seq, got.value), (Some(seq), 7));
/// assert!(max.read(|m| *m > 5).await?);
/// # db.close().await?;
/// # Ok(()) }
/// ```
pub trait ReduceExt<S>: sealed::Sealed {
    /// A copy of the state, once the view has caught up.
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] when the view failed; [`DbError::Closed`] after close.
    fn get(&self) -> impl Future<Output = Result<S, DbError>> + Send;

    /// A copy of the state with its seq and version, once the view has caught up.
    ///
    /// # Errors
    /// As [`get`](ReduceExt::get).
    fn get_meta(&self) -> impl Future<Output = Result<Reduced<S>, DbError>> + Send;

    /// A copy of the state with its seq and version, once the view includes the record at
    /// `seq` (which may not be appended yet).
    ///
    /// # Errors
    /// As [`get`](ReduceExt::get).
    fn get_at(&self, seq: Seq) -> impl Future<Output = Result<Reduced<S>, DbError>> + Send;

    /// Run `f` on the state without copying it, once the view has caught up. `f` holds off the
    /// next batch while it runs: keep it short.
    ///
    /// # Errors
    /// As [`get`](ReduceExt::get).
    fn read<R, F>(&self, f: F) -> impl Future<Output = Result<R, DbError>> + Send
    where
        F: FnOnce(&S) -> R + Send;

    /// The state now (once caught up), then again after each change, live.
    ///
    /// Nothing is queued: a slow reader skips intermediate states and gets the latest one, so
    /// the seqs it sees strictly increase but may jump. The stream yields
    /// [`DbError::Closed`] when the database closes, or [`DbError::ViewFailed`] when the view
    /// fails, and then ends.
    fn stream(&self) -> BoxStream<'static, Result<Reduced<S>, DbError>>;
}

impl<T, S> sealed::Sealed for ViewHandle<Reduce<T, S>> {}

impl<T, S> ReduceExt<S> for ViewHandle<Reduce<T, S>>
where
    T: Send + Sync + 'static,
    S: Clone + Send + Sync + 'static,
{
    async fn get(&self) -> Result<S, DbError> {
        Ok(self.ready().await?.get())
    }

    async fn get_meta(&self) -> Result<Reduced<S>, DbError> {
        Ok(self.ready().await?.get_meta())
    }

    async fn get_at(&self, seq: Seq) -> Result<Reduced<S>, DbError> {
        Ok(self.ready_at(seq).await?.get_meta())
    }

    async fn read<R, F>(&self, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&S) -> R + Send,
    {
        Ok(self.ready().await?.read(f))
    }

    fn stream(&self) -> BoxStream<'static, Result<Reduced<S>, DbError>> {
        // `None` once the stream has ended; otherwise the handle and the last seq yielded
        // (`None` before the first item).
        let start = Some((self.clone(), None::<Option<Seq>>));
        futures::stream::unfold(start, |state| async move {
            let (handle, last) = state?;
            loop {
                let view = match last {
                    None => handle.ready().await,
                    // Wait for any record after the last one yielded. `seq + 1` is a bound, not
                    // a record's seq: it means "anything after `seq`".
                    Some(prev) => handle.ready_at(Seq::after(prev)).await,
                };
                let got = match view {
                    Ok(view) => view.get_meta(),
                    Err(e) => return Some((Err(e), None)),
                };
                if let Some(prev) = last
                    && got.seq <= prev
                {
                    // The view was reset (a rebuild) between the wake-up and the read: wait for
                    // it to pass the last state yielded, so seqs never go backwards.
                    tokio::task::yield_now().await;
                    continue;
                }
                let seq = got.seq;
                return Some((Ok(got), Some((handle, Some(seq)))));
            }
        })
        .boxed()
    }
}
