//! The key-value view: `collection/member` keys whose every write is a log record, so it is
//! durable, ordered and seen by every subscriber of the log.

mod entry;
mod reads;
mod record;

use std::marker::PhantomData;
use std::ops::Bound;

use flume_core::{DbError, Seq, View, ViewError, ViewMeta, async_trait};

pub use entry::KvEntry;
pub use reads::{KvDb, KvReads};
pub use record::{AsKvRecord, KvRecord, KvValue, MAX_KEY_LEN, check_collection, split_key};

use crate::env::{Lmdb, Table};
use crate::range::KeyRange;
use crate::tables::ViewTables;

/// Errors of the key-value helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The key or collection is not acceptable; nothing was appended.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key, escaped and shortened for display.
        key: String,
        /// Why.
        reason: String,
    },
    /// The append failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The key-value view over records of type `T` (a [`KvRecord`], or a [`flume_core::Document`]
/// in the `$kv` form; other records are ignored).
pub struct KeyValue<T> {
    store: ViewTables,
    _records: PhantomData<fn(&T)>,
}

/// The version of the key-value view's row format; the user's version is added below it.
const FORMAT: u32 = 1;

impl<T> KeyValue<T> {
    /// The key-value view stored as `name` in `lmdb`.
    pub fn new(lmdb: &Lmdb, name: &str) -> Self {
        KeyValue {
            store: ViewTables::new(lmdb, format!("kv:{name}"), FORMAT << 16),
            _records: PhantomData,
        }
    }

    /// Set the version of the record mapping (for a custom [`AsKvRecord`] that changed): a new
    /// version rebuilds the view from the log.
    pub fn with_version(self, version: u16) -> Self {
        KeyValue {
            store: self.store.with_version((FORMAT << 16) | u32::from(version)),
            _records: PhantomData,
        }
    }

    /// Every row as `(key, entry)` in key order, expired ones included, without waiting for the
    /// view to catch up (for tools and tests; reads go through [`KvReads`]).
    ///
    /// # Errors
    /// LMDB errors, or a malformed row.
    pub fn entries(&self) -> Result<Vec<(String, KvEntry)>, crate::ReadError> {
        self.store
            .dump(0)?
            .into_iter()
            .map(|(k, v)| {
                let key = String::from_utf8_lossy(&k).into_owned();
                let entry = KvEntry::decode(&v).ok_or_else(|| {
                    crate::ReadError::BadKey(format!("malformed row for {key:?}"))
                })?;
                Ok((key, entry))
            })
            .collect()
    }

    pub(crate) fn lmdb(&self) -> &Lmdb {
        self.store.lmdb()
    }

    /// The view's one row table.
    pub(crate) fn rows(&self) -> Result<Table, ViewError> {
        self.store.rows(0)
    }
}

/// A row operation derived from a record, computed before the write transaction.
enum RowOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    DeletePrefix(Vec<u8>),
}

#[async_trait]
impl<T: AsKvRecord + Send + Sync + 'static> View<T> for KeyValue<T> {
    fn version(&self) -> u32 {
        self.store.version()
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
        let mut ops = Vec::new();
        for (seq, record) in batch {
            let Some(kv) = record.as_kv() else { continue };
            // Records with invalid keys cannot be appended through the helpers; one written
            // another way is skipped rather than failing the view forever.
            match kv.as_ref() {
                KvRecord::Put {
                    key,
                    value,
                    flags,
                    expires,
                } if split_key(key).is_ok() => {
                    let row = KvEntry::encode(*seq, *flags, *expires, value);
                    ops.push(RowOp::Put(key.as_bytes().to_vec(), row));
                }
                KvRecord::Delete { key } => ops.push(RowOp::Delete(key.as_bytes().to_vec())),
                KvRecord::DeleteAll { collection } if check_collection(collection).is_ok() => {
                    ops.push(RowOp::DeletePrefix(format!("{collection}/").into_bytes()));
                }
                _ => {}
            }
        }
        self.store
            .commit(Some(last), move |txn, tables| {
                let rows = tables[0];
                for op in &ops {
                    match op {
                        RowOp::Put(k, v) => rows.put(txn, k, v)?,
                        RowOp::Delete(k) => {
                            rows.delete(txn, k)?;
                        }
                        RowOp::DeletePrefix(p) => {
                            let all = KeyRange {
                                lower: Bound::Unbounded,
                                upper: Bound::Unbounded,
                            };
                            rows.delete_range(txn, &all.with_prefix(p).as_refs())?;
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

    async fn sync(&self) -> Result<(), ViewError> {
        self.store.sync().await
    }

    async fn close(&self) -> Result<(), ViewError> {
        self.store.sync().await
    }
}
