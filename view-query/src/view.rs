//! The query view: one LMDB table per declared index; each key is the values at the index's
//! paths, then the record's seq (so equal values keep one entry per record, in log order).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use flume_core::{Document, RecordReader, Seq, View, ViewError, ViewMeta, async_trait};
use flume_view_index::{Lmdb, Table, ViewTables, key};
use serde::Serialize;
use serde_json::Value;

use crate::error::QueryError;
use crate::plan::IndexSpec;

/// How a record is seen by queries: as a JSON value.
pub type ToJson<T> = dyn for<'a> Fn(&'a T) -> Cow<'a, Value> + Send + Sync;

/// Records that queries can read as JSON without converting them.
pub trait AsJson {
    /// The record as JSON.
    fn as_json(&self) -> Cow<'_, Value>;
}

impl AsJson for Document {
    fn as_json(&self) -> Cow<'_, Value> {
        Cow::Borrowed(&self.0)
    }
}

/// A record's serde shape as JSON (`null` for one serde_json cannot represent, such as a map
/// with non-string keys).
fn serde_json_of<T: Serialize>(record: &T) -> Cow<'_, Value> {
    Cow::Owned(serde_json::to_value(record).unwrap_or(Value::Null))
}

/// A view that answers map-filter-reduce queries over records of type `T`, using the indexes it
/// declares when they help.
pub struct QueryView<T> {
    /// One row table per index, named `query:<view>:<index>`.
    store: ViewTables,
    pub(crate) indexes: Vec<IndexSpec>,
    pub(crate) to_json: Arc<ToJson<T>>,
    records: OnceLock<RecordReader<T>>,
}

impl<T: AsJson + Send + Sync + 'static> QueryView<T> {
    /// A query view named `name` over records readable as JSON (documents).
    ///
    /// The stored version combines `version` with the index declarations, so changing either
    /// rebuilds the indexes.
    pub fn new(lmdb: &Lmdb, name: &str, version: u16, indexes: Vec<IndexSpec>) -> Self {
        Self::with(lmdb, name, version, indexes, Arc::new(|r: &T| r.as_json()))
    }
}

impl<T: Serialize + Send + Sync + 'static> QueryView<T> {
    /// A query view over typed records, queried through their serde shape (each record is
    /// converted to JSON when indexed or scanned).
    pub fn serde(lmdb: &Lmdb, name: &str, version: u16, indexes: Vec<IndexSpec>) -> Self {
        Self::with(lmdb, name, version, indexes, Arc::new(serde_json_of::<T>))
    }
}

impl<T: Send + Sync + 'static> QueryView<T> {
    /// A query view reading records as JSON with `to_json`.
    pub fn with(
        lmdb: &Lmdb,
        name: &str,
        version: u16,
        indexes: Vec<IndexSpec>,
        to_json: Arc<ToJson<T>>,
    ) -> Self {
        let declared: Vec<Value> = indexes
            .iter()
            .map(|i| {
                Value::from(vec![
                    Value::from(i.name.clone()),
                    i.paths.iter().map(|p| p.to_json()).collect(),
                ])
            })
            .collect();
        // FNV-1a of the declarations: a changed index list is a new version.
        let text = Value::Array(declared).to_string();
        let hash = text.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let version = (u32::from(version) << 16) | (hash & 0xFFFF);
        QueryView {
            store: ViewTables::new(lmdb, format!("query:{name}"), version),
            indexes,
            to_json,
            records: OnceLock::new(),
        }
    }

    /// The declared indexes.
    pub fn indexes(&self) -> &[IndexSpec] {
        &self.indexes
    }

    /// Every index entry as `(index name, key tuple ending with the record's seq)`, without
    /// waiting for the view to catch up (for tools and tests).
    ///
    /// # Errors
    /// LMDB errors, or a stored key that does not decode.
    pub fn entries(&self) -> Result<Vec<(String, Vec<Value>)>, QueryError> {
        let mut out = Vec::new();
        for (i, ix) in self.indexes.iter().enumerate() {
            for (k, _) in self.store.dump(i)? {
                let tuple = key::decode(&k).map_err(flume_view_index::ReadError::BadKey)?;
                out.push((ix.name.clone(), tuple));
            }
        }
        Ok(out)
    }

    pub(crate) fn lmdb(&self) -> &Lmdb {
        self.store.lmdb()
    }

    pub(crate) fn rows(&self, i: usize) -> Result<Table, ViewError> {
        self.store.rows(i)
    }

    pub(crate) fn records(&self) -> Option<&RecordReader<T>> {
        self.records.get()
    }
}

#[async_trait]
impl<T: Send + Sync + 'static> View<T> for QueryView<T> {
    fn version(&self) -> u32 {
        self.store.version()
    }

    fn attach(&self, records: RecordReader<T>) {
        let _ = self.records.set(records);
    }

    async fn open(&self) -> Result<ViewMeta, ViewError> {
        let names: Vec<String> = self.indexes.iter().map(|ix| ix.name.clone()).collect();
        self.store.open(&names).await
    }

    fn since(&self) -> Option<Seq> {
        self.store.since()
    }

    async fn apply(&self, batch: &[(Seq, &T)]) -> Result<(), ViewError> {
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let mut puts: Vec<(usize, Vec<u8>)> = Vec::new();
        for (seq, record) in batch {
            let json = (self.to_json)(record);
            for (i, ix) in self.indexes.iter().enumerate() {
                let values: Option<Vec<Value>> =
                    ix.paths.iter().map(|p| p.get(&json).cloned()).collect();
                if let Some(mut values) = values {
                    values.push(Value::from(seq.0));
                    puts.push((i, key::encode(&values)));
                }
            }
        }
        self.store
            .commit(Some(last), move |txn, rows| {
                puts.iter().try_for_each(|(i, k)| rows[*i].put(txn, k, &[]))
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
