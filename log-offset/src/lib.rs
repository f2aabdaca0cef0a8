//! Flume's durable file log: an append-only log in a directory of checksummed segment files that
//! survives process crashes and power loss, with group commit for concurrent appenders.
//!
//! - **Seqs are byte offsets** (u64) in the concatenation of all segments' frames; there is no
//!   size ceiling, and old segments can be retired ([`OffsetLog::retire_before`]).
//! - **Durability**: in [`Durability::Sync`] (the default) an append is acknowledged after
//!   `fdatasync`; appenders that arrive together share one. [`Durability::Buffered`] acknowledges
//!   after `write`. `since`, reads and streams only ever show acknowledged records.
//! - **Atomic batches**: after any crash a batch is present whole or not at all.
//! - **Recovery** validates only the tail, so reopening costs the same for any log size; a torn
//!   tail is cut, damage to synced data is [`LogError::Corrupt`](flume_core::LogError::Corrupt)
//!   naming the file and offset.
//! - **One writer**: the directory is locked; a second writer gets
//!   [`LogError::Locked`](flume_core::LogError::Locked) naming the holder's process. Read-only
//!   opens need no lock.
//! - **Poisoning**: a failed write or sync fails the batch in flight and every later append until
//!   the log is reopened; a failed fsync is never retried.
//!
//! It is not a database by itself: it stores opaque bytes. Views, codecs and the `Db` that ties
//! them together are in `flume-core`. It is not replicated either (see the JetStream log for that).
//! The on-disk format and the recovery algorithm are in `docs/design.md`.
//!
//! ```
//! use flume_core::{Bytes, Log, StreamOpts};
//! use flume_log_offset::{OffsetLog, Options};
//! use futures::TryStreamExt;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = OffsetLog::open(dir.path())?;
//! let a = log.append(Bytes::from("hello")).await?;
//! let seqs = log.append_batch(vec![Bytes::from("a"), Bytes::from("b")]).await?;
//! assert_eq!(log.get(a).await?, "hello");
//! assert_eq!(log.current_since(), Some(seqs[1]));
//! let newest_first: Vec<_> = log.stream(StreamOpts::new().reverse().values()).try_collect().await?;
//! assert_eq!(newest_first.len(), 3);
//! log.close().await?;
//!
//! // Reopen: everything acknowledged is there.
//! let log = OffsetLog::open_with(dir.path(), Options::new())?;
//! assert_eq!(log.get(seqs[0]).await?, "a");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod frame;
mod index;
mod log;
mod options;
mod reader;
mod recovery;
mod segment;
mod stats;
pub mod storage;
mod verify;
mod writer;

pub use log::{OffsetLog, Retirement};
pub use options::{Durability, Options};
pub use recovery::written_len;
pub use stats::WriteStats;
pub use storage::{FsStorage, SimStorage};
pub use verify::{
    Damage, Repair, RepairPlan, SegmentReport, VerifyReport, repair, verify, verify_storage,
    verify_with,
};
