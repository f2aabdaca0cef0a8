//! Gated reads on the key-value view, and `Db` helpers that append key-value records.

use flume_core::{Db, Seq, ViewHandle, async_trait};

use super::entry::{is_expired, now_unix};
use super::{
    AsKvRecord, KeyValue, KvEntry, KvError, KvRecord, KvValue, check_collection, split_key,
};
use crate::range::KeyRange;
use crate::{ReadError, key_value_err};

/// Gated reads: each waits until the view includes every record acknowledged when it was called.
/// Expired entries read as absent.
///
/// The methods return unboxed futures (point reads are short enough for an allocation to show).
pub trait KvReads {
    /// The entry of `key`, unless absent or expired.
    ///
    /// # Errors
    /// [`ReadError::Db`] when the view failed or the database closed; LMDB errors.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<KvEntry>, ReadError>> + Send;

    /// Every live member of `collection`, in key order, as `(member, entry)`.
    ///
    /// # Errors
    /// As [`get`](KvReads::get).
    fn get_all(
        &self,
        collection: &str,
    ) -> impl Future<Output = Result<Vec<(String, KvEntry)>, ReadError>> + Send;

    /// [`get`](KvReads::get) without waiting for the view to catch up.
    ///
    /// # Errors
    /// As [`get`](KvReads::get).
    fn get_stale(&self, key: &str) -> Result<Option<KvEntry>, ReadError>;
}

impl<T: AsKvRecord + Send + Sync + 'static> KvReads for ViewHandle<KeyValue<T>> {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, ReadError> {
        lookup(self.ready().await?, key)
    }

    async fn get_all(&self, collection: &str) -> Result<Vec<(String, KvEntry)>, ReadError> {
        let view = self.ready().await?;
        let rows = view.rows().map_err(key_value_err)?;
        let prefix = format!("{collection}/");
        let range = KeyRange {
            lower: std::ops::Bound::Unbounded,
            upper: std::ops::Bound::Unbounded,
        }
        .with_prefix(prefix.as_bytes());
        let now = now_unix();
        let found = view.lmdb().read(|txn| {
            let mut out = Vec::new();
            for row in rows.range(txn, &range.as_refs())? {
                let (k, v) = row?;
                if KvEntry::row_expires(v).is_some_and(|e| is_expired(e, now)) {
                    continue;
                }
                out.push((k.to_vec(), v.to_vec()));
            }
            Ok(out)
        })?;
        let mut members = Vec::with_capacity(found.len());
        for (k, v) in found {
            let key = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let entry = KvEntry::decode(&v)
                .ok_or_else(|| ReadError::BadKey(format!("malformed row for {key:?}")))?;
            members.push((key, entry));
        }
        Ok(members)
    }

    fn get_stale(&self, key: &str) -> Result<Option<KvEntry>, ReadError> {
        lookup(self.stale()?, key)
    }
}

/// One key's live entry, read in one short transaction.
fn lookup<T>(view: &KeyValue<T>, key: &str) -> Result<Option<KvEntry>, ReadError> {
    let rows = view.rows().map_err(key_value_err)?;
    let row = view
        .lmdb()
        .read(|txn| Ok(rows.get(txn, key.as_bytes())?.map(KvEntry::decode)))?;
    match row {
        None => Ok(None),
        Some(None) => Err(ReadError::BadKey(format!("malformed row for {key:?}"))),
        Some(Some(e)) if e.expired_now() => Ok(None),
        Some(Some(e)) => Ok(Some(e)),
    }
}

/// Helpers on a [`Db`] whose records can carry key-value operations: each validates, appends one
/// record and returns its seq.
#[async_trait]
pub trait KvDb {
    /// Set `key` (`collection/member`) to `value`.
    ///
    /// # Errors
    /// [`KvError::InvalidKey`] before anything is appended; [`KvError::Db`] if the append fails.
    async fn kv_put(&self, key: &str, value: KvValue) -> Result<Seq, KvError> {
        self.kv_put_with(key, value, 0, 0).await
    }

    /// Set `key` with memcached's flags and an expiry (unix seconds, 0 = never).
    ///
    /// # Errors
    /// As [`kv_put`](KvDb::kv_put).
    async fn kv_put_with(
        &self,
        key: &str,
        value: KvValue,
        flags: u32,
        expires: u64,
    ) -> Result<Seq, KvError>;

    /// Remove `key`.
    ///
    /// # Errors
    /// As [`kv_put`](KvDb::kv_put).
    async fn kv_delete(&self, key: &str) -> Result<Seq, KvError>;

    /// Remove every member of `collection`.
    ///
    /// # Errors
    /// As [`kv_put`](KvDb::kv_put).
    async fn kv_delete_all(&self, collection: &str) -> Result<Seq, KvError>;
}

#[async_trait]
impl<T: From<KvRecord> + Send + Sync + 'static> KvDb for Db<T> {
    async fn kv_put_with(
        &self,
        key: &str,
        value: KvValue,
        flags: u32,
        expires: u64,
    ) -> Result<Seq, KvError> {
        split_key(key)?;
        let record = KvRecord::Put {
            key: key.to_string(),
            value,
            flags,
            expires,
        };
        Ok(self.append(T::from(record)).await.map_err(|e| e.error)?)
    }

    async fn kv_delete(&self, key: &str) -> Result<Seq, KvError> {
        split_key(key)?;
        Ok(self
            .append(T::from(KvRecord::Delete {
                key: key.to_string(),
            }))
            .await
            .map_err(|e| e.error)?)
    }

    async fn kv_delete_all(&self, collection: &str) -> Result<Seq, KvError> {
        check_collection(collection)?;
        let record = KvRecord::DeleteAll {
            collection: collection.to_string(),
        };
        Ok(self.append(T::from(record)).await.map_err(|e| e.error)?)
    }
}
