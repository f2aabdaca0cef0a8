//! Flume's core: an append-only [`Log`] is the truth, and [`View`]s are streamed from it.
//!
//! This crate defines the traits every log and view implements, the stream options they share,
//! the codecs that turn typed records into bytes, the schemaless [`Document`], and [`Db`], which
//! ties one log to many views: it encodes each record once on append, decodes it once for all
//! live views, and gates reads on a view until it has caught up, so callers read their own writes.
//!
//! It is not a storage engine: logs (`flume-log-memory`, `flume-log-offset`) and views
//! (`flume-view-reduce`, `flume-view-index`, ...) live in their own crates.
//!
//! ```
//! use flume_core::{Db, Postcard, Seq, View, ViewError, ViewMeta};
//! use flume_log_memory::MemoryLog;
//! use std::sync::Mutex;
//!
//! /// A view that sums the records (in memory, so it rebuilds on every open).
//! #[derive(Default)]
//! struct Sum { total: Mutex<(u64, Option<Seq>)> }
//!
//! #[async_trait::async_trait]
//! impl View<u64> for Sum {
//!     fn version(&self) -> u32 { 1 }
//!     async fn open(&self) -> Result<ViewMeta, ViewError> { Ok(ViewMeta::default()) }
//!     fn since(&self) -> Option<Seq> { self.total.lock().unwrap().1 }
//!     async fn apply(&self, batch: &[(Seq, &u64)]) -> Result<(), ViewError> {
//!         let mut t = self.total.lock().unwrap();
//!         for (seq, n) in batch { t.0 += **n; t.1 = Some(*seq); }
//!         Ok(())
//!     }
//!     async fn destroy(&self) -> Result<(), ViewError> { *self.total.lock().unwrap() = (0, None); Ok(()) }
//!     async fn close(&self) -> Result<(), ViewError> { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db: Db<u64> = Db::open(MemoryLog::new(), Postcard).await?;
//! let sum = db.use_view("sum", Sum::default()).await?;
//! db.append_batch(vec![1, 2, 3]).await?;
//! // Waits until the view includes the batch just appended.
//! assert_eq!(sum.ready().await?.total.lock().unwrap().0, 6);
//! db.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bounds;
mod codec;
mod db;
mod error;
mod lock;
mod log;
mod reader;
mod seq;
mod view;

pub use codec::{Codec, Document, Json, Postcard};
pub use db::{
    DEFAULT_APPEND_QUEUE_BYTES, Db, DbOptions, FEED_QUEUE, QueueStats, VIEW_CHUNK, ViewHandle,
    ViewState, ViewStatus,
};
pub use error::{AppendError, BoxError, CodecError, DbError, LogError, ViewError};
pub use log::{
    Chunk, Item, Log, LogStream, Output, READ_BYTES, ReadRange, SinceCell, SincePublisher,
    StreamOpts, ValueRef, stream_owned,
};
pub use reader::RecordReader;
pub use seq::Seq;
pub use view::{View, ViewMeta};

/// Re-exported so implementations name the same `async_trait` and `bytes` versions.
pub use async_trait::async_trait;
pub use bytes::Bytes;
