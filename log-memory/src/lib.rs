//! An in-memory [`Log`]: fast, bounded only by memory, gone when the last handle to its
//! [`MemoryStore`] is dropped.
//!
//! It is not durable: use `flume-log-offset` for data that must survive a restart. Its seqs are
//! byte offsets, as if each record were framed with an 8-byte header, so they are *not* dense, like
//! the file log's: code that wrongly assumes `seq + 1` fails here first.
//!
//! A log can be closed and opened again over the same [`MemoryStore`], which is how the
//! conformance suite tests reopening.
//!
//! ```
//! use flume_core::{Bytes, Log, Seq};
//! use flume_log_memory::MemoryLog;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let log = MemoryLog::new();
//! let seqs = log.append_batch(vec![Bytes::from("a"), Bytes::from("bc")]).await?;
//! assert_eq!(seqs, [Seq(0), Seq(9)]);
//! assert_eq!(log.get(Seq(9)).await?, "bc");
//! assert_eq!(log.current_since(), Some(Seq(9)));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use flume_core::{AppendError, Bytes, Log, LogError, ReadRange, Seq, SinceCell, async_trait};
use tokio::sync::watch;

/// The simulated frame header added to each record's length to compute the next seq.
const HEADER: u64 = 8;

/// The records of an in-memory log. Cloning shares them; a log opened over a store sees what
/// earlier logs over it appended.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    records: RwLock<Vec<(Seq, Bytes)>>,
    /// Whether a log is open over the store: one writer at a time, as with files.
    open: Mutex<bool>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        read(&self.inner.records).len()
    }

    /// True when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An in-memory log over a [`MemoryStore`].
pub struct MemoryLog {
    store: MemoryStore,
    /// Closed on close, which ends live streams.
    since: SinceCell,
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLog {
    /// A new, empty log.
    pub fn new() -> Self {
        match Self::open(MemoryStore::new()) {
            Ok(log) => log,
            Err(_) => unreachable!("a new store has no log open"),
        }
    }

    /// Open a log over `store`, continuing after its last record.
    ///
    /// # Errors
    /// [`LogError::Locked`] while another log over the same store is open.
    pub fn open(store: MemoryStore) -> Result<Self, LogError> {
        {
            let mut open = lock(&store.inner.open);
            if *open {
                return Err(LogError::Locked {
                    holder: "another MemoryLog over this store".into(),
                });
            }
            *open = true;
        }
        let since = read(&store.inner.records).last().map(|(s, _)| *s);
        Ok(MemoryLog {
            store,
            since: SinceCell::new(since),
        })
    }

    /// The store, to open the log again after closing it.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn check_open(&self) -> Result<(), LogError> {
        if self.since.is_open() {
            Ok(())
        } else {
            Err(LogError::Closed)
        }
    }
}

impl Drop for MemoryLog {
    fn drop(&mut self) {
        if self.since.close() {
            *lock(&self.store.inner.open) = false;
        }
    }
}

#[async_trait]
impl Log for MemoryLog {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        // Holding the `since` cell for the whole append orders appends and `since` updates, and
        // excludes a concurrent close.
        let Some(since) = self.since.hold() else {
            return Err(AppendError {
                error: LogError::Closed,
                rejected: records,
            });
        };
        if records.is_empty() {
            return Ok(Vec::new());
        }
        // One buffer per batch, records as slices of it: reads then share it by reference
        // count instead of allocating on the first clone of each record.
        let total = records.iter().map(Bytes::len).sum();
        let mut buf = Vec::with_capacity(total);
        for r in &records {
            buf.extend_from_slice(r);
        }
        let buf = Bytes::from(buf);
        let mut all = write(&self.store.inner.records);
        let mut next = all.last().map_or(0, |(s, b)| s.0 + b.len() as u64 + HEADER);
        let mut seqs = Vec::with_capacity(records.len());
        let mut at = 0;
        for record in &records {
            seqs.push(Seq(next));
            all.push((Seq(next), buf.slice(at..at + record.len())));
            next += record.len() as u64 + HEADER;
            at += record.len();
        }
        drop(all);
        // One update per batch, to its last seq.
        since.publish(*seqs.last().expect("the empty batch returned above"));
        Ok(seqs)
    }

    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        self.check_open()?;
        let all = read(&self.store.inner.records);
        match all.binary_search_by_key(&seq, |(s, _)| *s) {
            Ok(i) => Ok(all[i].1.clone()),
            Err(_) => Err(LogError::NotARecord { seq }),
        }
    }

    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        self.check_open()?;
        let all = read(&self.store.inner.records);
        let start = match range.lower {
            Bound::Unbounded => 0,
            Bound::Included(s) => all.partition_point(|(x, _)| *x < s),
            Bound::Excluded(s) => all.partition_point(|(x, _)| *x <= s),
        };
        let end = match range.upper {
            Bound::Unbounded => all.len(),
            Bound::Included(s) => all.partition_point(|(x, _)| *x <= s),
            Bound::Excluded(s) => all.partition_point(|(x, _)| *x < s),
        };
        let slice = all.get(start..end.max(start)).unwrap_or_default();
        let take = |(s, b): &(Seq, Bytes)| {
            (
                *s,
                if range.values {
                    b.clone()
                } else {
                    Bytes::new()
                },
            )
        };
        let mut bytes = 0;
        let mut within = |(_, b): &&(Seq, Bytes)| {
            // Stop after the record that reaches the byte budget (always at least one).
            let fits = bytes < range.max_bytes;
            bytes += b.len();
            fits
        };
        Ok(if range.reverse {
            slice
                .iter()
                .rev()
                .take(range.max)
                .take_while(&mut within)
                .map(take)
                .collect()
        } else {
            slice
                .iter()
                .take(range.max)
                .take_while(&mut within)
                .map(take)
                .collect()
        })
    }

    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.since.subscribe()
    }

    fn current_since(&self) -> Option<Seq> {
        self.since.load()
    }

    async fn close(&self) -> Result<(), LogError> {
        if self.since.close() {
            *lock(&self.store.inner.open) = false;
        }
        Ok(())
    }
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<X>(m: &RwLock<X>) -> RwLockReadGuard<'_, X> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<X>(m: &RwLock<X>) -> RwLockWriteGuard<'_, X> {
    m.write().unwrap_or_else(|p| p.into_inner())
}
