//! Fold a Flume log into one value (a count, a sum, a small map) that survives restarts.
//!
//! [`Reduce`] is a [`View`](flume_core::View): give it a version, an initial state, a reduce
//! function and optionally a map that picks and transforms the records it cares about. The
//! database feeds it every record in log order; reads through [`ReduceExt`] on its handle wait
//! until the state includes your own writes, and [`ReduceExt::stream`] follows the state live.
//!
//! With [`persist_in`](Reduce::persist_in) the state is checkpointed to a directory (see
//! [`Checkpoints`]), so reopening resumes from the last checkpoint, and a crash during a long
//! rebuild keeps the progress made so far. Without it the view lives in memory and is rebuilt on
//! every open.
//!
//! It is not an index: the whole state is held in memory and written whole at each checkpoint,
//! so it suits states of up to some megabytes. For large or keyed data use `flume-view-index`.
//!
//! ```
//! use flume_core::{Db, Postcard};
//! use flume_log_memory::MemoryLog;
//! use flume_view_reduce::{Reduce, ReduceExt};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
//! struct Stats { count: u64, total: u64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("stats");
//! let db: Db<u64> = Db::open(MemoryLog::new(), Postcard).await?;
//! // Fold the even records only; odd ones map to `None` and are skipped.
//! let stats = Reduce::with_map(
//!     1,
//!     Stats::default(),
//!     |n: &u64| n.is_multiple_of(2).then_some(*n),
//!     |s: &mut Stats, _seq, n| { s.count += 1; s.total += n; },
//! )
//! .persist_in(dir);
//! let stats = db.use_view("stats", stats).await?;
//!
//! db.append_batch(vec![1, 2, 3, 4]).await?;
//! // Waits until the view includes the batch just appended.
//! assert_eq!(stats.get().await?, Stats { count: 2, total: 6 });
//! db.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Persistence
//!
//! A persistent view owns its directory (a `LOCK` file keeps a second view out). The state,
//! the view's version and its `since` are stored together in one file, `state`: a fixed header
//! (magic `FLUMERED`, file format 1, version, `since`, state length), the state encoded with
//! postcard, and a CRC32C of all of it. A checkpoint writes `state.tmp`, fsyncs it, renames it
//! over `state` and fsyncs the directory, so after any crash `state` is one whole checkpoint,
//! old or new. A torn, corrupt or foreign file fails its checks at open and the database
//! rebuilds the view from the log; so does a file written by another version.
//!
//! Checkpoints are written in the background (see [`Checkpoints`]), not on every batch. The
//! state in memory may therefore be ahead of the one on disk; after a crash, open reports the
//! checkpoint's `since` and the database feeds the records after it again, so the state always
//! equals a fold of the log up to its `since`.
//!
//! The view needs a Tokio runtime with timers enabled (`#[tokio::main]` has them).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cell;
mod checkpoint;
mod handle;
mod reduce;
mod store;

pub use checkpoint::Checkpoints;
pub use handle::{ReduceExt, Reduced};
pub use reduce::Reduce;
