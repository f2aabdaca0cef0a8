//! Indexes: a user function maps each record to index operations (put a key, delete a key), and
//! reads look records up by key or range in key order.

mod read;

use std::sync::{Arc, OnceLock};

use flume_core::{RecordReader, Seq, View, ViewError, ViewMeta, async_trait};
use serde_json::Value;

pub use read::{IndexItem, IndexOpts, IndexReads};

use crate::env::{Lmdb, Table};
use crate::key;
use crate::tables::ViewTables;

/// The index operations a record maps to.
#[derive(Debug, Default)]
pub struct IndexOps {
    ops: Vec<(Vec<u8>, Op)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Put,
    /// Put with the record's seq appended to the key.
    PutUnique,
    Delete,
}

impl IndexOps {
    /// Point `key` (a tuple of document values) at the record being indexed. A later put of the
    /// same key points it at the later record.
    pub fn put<K: AsRef<[Value]>>(&mut self, key: K) {
        self.ops.push((key::encode(key.as_ref()), Op::Put));
    }

    /// Put `key` followed by the record's seq (as a number), so every record keeps its own
    /// entry even when the values are equal; read them all with a prefix of `key`.
    pub fn put_unique<K: AsRef<[Value]>>(&mut self, key: K) {
        self.ops.push((key::encode(key.as_ref()), Op::PutUnique));
    }

    /// Remove `key` from the index.
    pub fn delete<K: AsRef<[Value]>>(&mut self, key: K) {
        self.ops.push((key::encode(key.as_ref()), Op::Delete));
    }

    /// The rows to write for the record at `seq`: `(encoded key, is a put)`.
    pub(crate) fn rows(self, seq: Seq) -> impl Iterator<Item = (Vec<u8>, bool)> {
        self.ops.into_iter().map(move |(mut k, op)| {
            if op == Op::PutUnique {
                key::encode_value(&Value::from(seq.0), &mut k);
            }
            (k, op != Op::Delete)
        })
    }
}

type MapFn<T> = dyn Fn(&T, &mut IndexOps) + Send + Sync;

/// An index over records of type `T`, stored in a named table of an [`Lmdb`] environment.
///
/// Each entry maps a key tuple to the seq of the record that put it. Rows and the view's `since`
/// are written in one write transaction per batch.
pub struct Index<T> {
    store: ViewTables,
    map: Arc<MapFn<T>>,
    records: OnceLock<RecordReader<T>>,
}

impl<T: Send + Sync + 'static> Index<T> {
    /// An index named `name` (its table in the environment; give each view its own) whose code
    /// has version `version`, mapping records with `map`.
    ///
    /// Change `version` whenever `map` changes: the index is then rebuilt from the log.
    pub fn new(
        lmdb: &Lmdb,
        name: &str,
        version: u32,
        map: impl Fn(&T, &mut IndexOps) + Send + Sync + 'static,
    ) -> Self {
        Index {
            store: ViewTables::new(lmdb, format!("index:{name}"), version),
            map: Arc::new(map),
            records: OnceLock::new(),
        }
    }

    /// Every entry as `(key, seq)`, in key order, without waiting for the view to catch up
    /// (for tools and tests; reads go through [`IndexReads`]).
    ///
    /// # Errors
    /// LMDB errors, or a stored key that does not decode.
    pub fn entries(&self) -> Result<Vec<(Vec<Value>, Seq)>, crate::ReadError> {
        self.store
            .dump(0)?
            .into_iter()
            .map(|(k, v)| {
                let key = key::decode(&k).map_err(crate::ReadError::BadKey)?;
                let seq = v
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| crate::ReadError::BadKey("bad seq".into()))?;
                Ok((key, Seq(seq)))
            })
            .collect()
    }

    pub(crate) fn lmdb(&self) -> &Lmdb {
        self.store.lmdb()
    }

    /// The index's one row table.
    pub(crate) fn rows(&self) -> Result<Table, ViewError> {
        self.store.rows(0)
    }

    pub(crate) fn records(&self) -> Option<&RecordReader<T>> {
        self.records.get()
    }

    pub(crate) fn map_record(&self, record: &T) -> IndexOps {
        let mut ops = IndexOps::default();
        (self.map)(record, &mut ops);
        ops
    }
}

#[async_trait]
impl<T: Send + Sync + 'static> View<T> for Index<T> {
    fn version(&self) -> u32 {
        self.store.version()
    }

    fn attach(&self, records: RecordReader<T>) {
        let _ = self.records.set(records);
    }

    async fn open(&self) -> Result<ViewMeta, ViewError> {
        self.store.open(&[String::new()]).await
    }

    fn since(&self) -> Option<Seq> {
        self.store.since()
    }

    async fn apply(&self, batch: &[(Seq, &T)]) -> Result<(), ViewError> {
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        // The user's function runs here, on the caller's task; the writer thread only writes.
        let mut rows: Vec<(Vec<u8>, Option<[u8; 8]>)> = Vec::with_capacity(batch.len());
        for (seq, record) in batch {
            for (key, put) in self.map_record(record).rows(*seq) {
                rows.push((key, put.then(|| seq.0.to_be_bytes())));
            }
        }
        // Writing in key order makes each put find its B-tree pages already in cache, and the
        // sort runs here, in parallel with other views, not on the shared writer thread. The
        // sort is stable, so operations on one key keep their log order (and only that order
        // matters to the result).
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        self.store
            .commit(Some(last), move |txn, tables| {
                for (key, seq) in &rows {
                    match seq {
                        Some(seq) => tables[0].put(txn, key, seq)?,
                        None => {
                            tables[0].delete(txn, key)?;
                        }
                    }
                }
                Ok(())
            })
            .await
    }

    async fn destroy(&self) -> Result<(), ViewError> {
        self.store.destroy().await
    }

    async fn close(&self) -> Result<(), ViewError> {
        Ok(())
    }
}
