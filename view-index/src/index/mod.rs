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
///
/// The keys of a whole batch are encoded end to end into one buffer: a batch costs a few
/// allocations, not one per key, and sorting it compares keys that sit together in memory.
#[derive(Debug)]
pub struct IndexOps {
    keys: Vec<u8>,
    rows: Vec<Row>,
    /// The record being mapped.
    seq: Seq,
}

impl Default for IndexOps {
    fn default() -> Self {
        IndexOps {
            keys: Vec::new(),
            rows: Vec::new(),
            // Set by `Index::map_record` before the map function runs.
            seq: Seq(0),
        }
    }
}

/// What [`IndexOps::push`] records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Put,
    /// Put with the record's seq appended to the key.
    PutUnique,
    Delete,
}

/// One operation: its key is `keys[start..end]`.
#[derive(Clone, Copy, Debug)]
struct Row {
    start: usize,
    end: usize,
    seq: Seq,
    put: bool,
}

impl IndexOps {
    /// Point `key` (a tuple of document values) at the record being indexed. A later put of the
    /// same key points it at the later record.
    pub fn put<K: AsRef<[Value]>>(&mut self, key: K) {
        self.push(key.as_ref(), Op::Put);
    }

    /// Put `key` followed by the record's seq (as a number), so every record keeps its own
    /// entry even when the values are equal; read them all with a prefix of `key`.
    pub fn put_unique<K: AsRef<[Value]>>(&mut self, key: K) {
        self.push(key.as_ref(), Op::PutUnique);
    }

    /// Remove `key` from the index.
    pub fn delete<K: AsRef<[Value]>>(&mut self, key: K) {
        self.push(key.as_ref(), Op::Delete);
    }

    fn push(&mut self, tuple: &[Value], op: Op) {
        let start = self.keys.len();
        key::encode_into(tuple, &mut self.keys);
        if op == Op::PutUnique {
            key::encode_value(&Value::from(self.seq.0), &mut self.keys);
        }
        let (end, seq) = (self.keys.len(), self.seq);
        self.rows.push(Row {
            start,
            end,
            seq,
            put: op != Op::Delete,
        });
    }

    /// The operations so far as `(encoded key, seq of the record, is a put)`.
    pub(crate) fn rows(&self) -> impl Iterator<Item = (&[u8], Seq, bool)> {
        self.rows
            .iter()
            .map(|r| (&self.keys[r.start..r.end], r.seq, r.put))
    }

    /// Order the operations by key. The sort is stable, so operations on one key keep their
    /// log order (and only that order matters to the result).
    fn sort(&mut self) {
        let keys = &self.keys;
        self.rows
            .sort_by(|a, b| keys[a.start..a.end].cmp(&keys[b.start..b.end]));
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

    /// Map the record at `seq`, adding its operations to `ops`.
    pub(crate) fn map_record(&self, seq: Seq, record: &T, ops: &mut IndexOps) {
        ops.seq = seq;
        (self.map)(record, ops);
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
        let mut ops = IndexOps::default();
        for &(seq, record) in batch {
            self.map_record(seq, record, &mut ops);
        }
        // Writing in key order makes each put find its B-tree pages already in cache, and the
        // sort runs here, in parallel with other views, not on the shared writer thread.
        ops.sort();
        self.store
            .commit(Some(last), move |txn, tables| {
                for (key, seq, put) in ops.rows() {
                    if put {
                        tables[0].put(txn, key, &seq.0.to_be_bytes())?;
                    } else {
                        tables[0].delete(txn, key)?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn destroy(&self) -> Result<(), ViewError> {
        self.store.destroy().await
    }

    async fn sync(&self) -> Result<(), ViewError> {
        self.store.sync().await
    }

    async fn close(&self) -> Result<(), ViewError> {
        self.store.sync().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(ops: &IndexOps) -> Vec<(Vec<Value>, u64, bool)> {
        ops.rows()
            .map(|(k, seq, put)| (key::decode(k).unwrap(), seq.0, put))
            .collect()
    }

    #[test]
    fn sorting_keeps_the_log_order_of_operations_on_one_key() {
        let mut ops = IndexOps::default();
        for (seq, name) in [(10, "b"), (20, "a"), (30, "b")] {
            ops.seq = Seq(seq);
            if seq == 30 {
                ops.delete([Value::from(name)]);
            } else {
                ops.put([Value::from(name)]);
                ops.put_unique([Value::from("u")]);
            }
        }
        ops.sort();
        let (a, b, u) = (Value::from("a"), Value::from("b"), Value::from("u"));
        assert_eq!(
            rows(&ops),
            [
                (vec![a], 20, true),
                // b: put by 10, then deleted by 30, in that order.
                (vec![b.clone()], 10, true),
                (vec![b], 30, false),
                // put_unique keys end with their record's seq, so both stay.
                (vec![u.clone(), Value::from(10)], 10, true),
                (vec![u, Value::from(20)], 20, true),
            ]
        );
    }
}
