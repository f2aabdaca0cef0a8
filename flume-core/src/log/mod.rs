//! The [`Log`] trait: an append-only sequence of opaque records, and the streams built over it.

mod chunk;
mod opts;
mod since;
mod stream;

use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::sync::watch;

pub use chunk::{Chunk, ValueRef};
pub use opts::{Item, Output, READ_BYTES, ReadRange, StreamOpts};
pub use since::{SinceCell, SincePublisher};
pub use stream::stream_owned;
pub(crate) use stream::stream_owned_with;

/// A stream of a log's records that owns its log handle (see [`stream_owned`]).
pub type LogStream = BoxStream<'static, Result<Item<Bytes>, LogError>>;

use crate::{AppendError, LogError, Seq};

/// An append-only log of opaque records: the source of truth of a Flume database.
///
/// Implementations provide five methods; everything else (single appends, streams with every
/// option, the current `since`) is built on them here, so all logs behave alike.
///
/// Invariants every implementation keeps (checked by `flume-test-suite`'s `check_log`):
/// - seqs are strictly increasing in append order;
/// - a batch is atomic: after any failure or crash all of it or none of it is present, and
///   `since` moves once per batch, to the batch's last seq;
/// - `since` only ever names acknowledged records (durable under the log's durability mode), and
///   reads never return records past it;
/// - after [`close`](Log::close), every call fails with [`LogError::Closed`] and the `since`
///   channel is closed, which ends live streams.
#[async_trait::async_trait]
pub trait Log: Send + Sync + 'static {
    /// Append a batch atomically and return each record's seq, in order.
    ///
    /// An empty batch appends nothing and returns no seqs.
    ///
    /// # Errors
    /// Any [`LogError`]; the records are handed back and none of them is in the log.
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>>;

    /// The record that starts at `seq`.
    ///
    /// # Errors
    /// [`LogError::NotARecord`] when no acknowledged record starts there; [`LogError::Truncated`]
    /// below the retention point; [`LogError::Closed`] after close.
    async fn get(&self, seq: Seq) -> Result<Bytes, LogError>;

    /// Up to `range.max` acknowledged records within the range, in the range's direction.
    ///
    /// # Errors
    /// [`LogError::Closed`] after close; storage errors.
    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError>;

    /// [`read`](Log::read), as a [`Chunk`]: what streams call.
    ///
    /// Logs that read many records into one buffer override it to hand them out without a
    /// reference-counted handle each; the default wraps `read`'s records. Both must return the
    /// same records (`flume-test-suite`'s `check_log` compares them).
    ///
    /// # Errors
    /// As [`read`](Log::read).
    async fn read_chunk(&self, range: ReadRange) -> Result<Chunk, LogError> {
        Ok(Chunk::from(self.read(range).await?))
    }

    /// A receiver of the seq of the last acknowledged record (`None` while the log is empty).
    /// The channel closes when the log is closed.
    fn since(&self) -> watch::Receiver<Option<Seq>>;

    /// Close the log: pending appends finish, later calls fail, live streams end.
    ///
    /// # Errors
    /// Storage errors while flushing; the log is closed regardless.
    async fn close(&self) -> Result<(), LogError>;

    /// Append one record; a batch of one.
    ///
    /// # Errors
    /// As [`append_batch`](Log::append_batch); the record is handed back.
    async fn append(&self, record: Bytes) -> Result<Seq, AppendError<Bytes>> {
        match self.append_batch(vec![record]).await {
            Ok(seqs) => Ok(seqs[0]),
            Err(AppendError {
                error,
                mut rejected,
            }) => Err(AppendError {
                error,
                rejected: rejected.pop().unwrap_or_default(),
            }),
        }
    }

    /// The seq of the last acknowledged record now.
    ///
    /// Every gated view read calls it, so logs should override it with a lock-free read
    /// ([`SinceCell::load`](crate::SinceCell::load)). It must never lag an acknowledged append,
    /// and never show a record before it is acknowledged.
    fn current_since(&self) -> Option<Seq> {
        *self.since().borrow()
    }

    /// Stream records with flumedb's options (see [`StreamOpts`]).
    ///
    /// Live streams hold no buffer of new records: they read the range `(last, since]` from the
    /// log each time `since` moves. Dropping the stream stops it; nothing keeps running.
    ///
    /// Invalid options and read failures arrive as an `Err` item, after which the stream ends.
    fn stream(&self, opts: StreamOpts) -> BoxStream<'_, Result<Item<Bytes>, LogError>> {
        stream::stream_ref(self, opts)
    }
}
