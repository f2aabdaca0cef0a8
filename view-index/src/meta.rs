//! Each LMDB view's `{version, since}`, stored in one table of the environment and written in the
//! same write transaction as the view's rows, so the two always agree. Views built on [`Lmdb`]
//! in other crates use these too.

use flume_core::{Seq, ViewError, ViewMeta};
use heed::{RoTxn, RwTxn, WithoutTls};

use crate::env::{Lmdb, Table};

/// The table of view metadata, keyed by the view's table name.
pub const META_TABLE: &str = "__flume_view_meta";

/// Store `view`'s version and since, in the caller's write transaction.
///
/// Encoded as: version (u32 BE), then since (u64 BE) when present. 4 or 12 bytes.
///
/// # Errors
/// LMDB's errors.
pub fn put(
    txn: &mut RwTxn<'_>,
    meta: Table,
    view: &str,
    version: u32,
    since: Option<Seq>,
) -> heed::Result<()> {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&version.to_be_bytes());
    if let Some(s) = since {
        bytes.extend_from_slice(&s.0.to_be_bytes());
    }
    meta.put(txn, view.as_bytes(), &bytes)
}

pub(crate) fn get(
    txn: &RoTxn<'_, WithoutTls>,
    meta: Table,
    view: &str,
) -> heed::Result<Option<Vec<u8>>> {
    Ok(meta.get(txn, view.as_bytes())?.map(<[u8]>::to_vec))
}

/// Load a view's meta; unreadable bytes make the database rebuild the view.
///
/// # Errors
/// [`ViewError::Unreadable`] for malformed meta; LMDB errors.
pub fn load(lmdb: &Lmdb, meta: Table, view: &str) -> Result<ViewMeta, ViewError> {
    let Some(bytes) = lmdb.read(|txn| get(txn, meta, view))? else {
        return Ok(ViewMeta::default());
    };
    let version = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes);
    let since = match bytes.len() {
        4 => None,
        12 => bytes[4..].try_into().ok().map(u64::from_be_bytes).map(Seq),
        n => {
            return Err(ViewError::Unreadable(format!(
                "view meta of {view:?} has {n} bytes, not 4 or 12"
            )));
        }
    };
    Ok(ViewMeta { version, since })
}
