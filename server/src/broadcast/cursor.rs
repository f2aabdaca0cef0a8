//! Reading the log in chunks bounded in bytes as well as in records.
//!
//! `Db::stream` reads up to 1,024 records per step (4,096 when reading ahead), up to
//! `READ_BYTES` (4 MiB): it can be more than a subscriber's share of the server's buffer
//! (`Hub::read_budget`). So streams here read the log directly and size each read from the
//! records just read.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use flume_core::bounds::{is_empty_range, min_upper};
use flume_core::{Codec, Log, LogError, Postcard, ReadRange, Seq};
use flume_store::Record;

/// The most records one read returns (as `Db::stream`).
const MAX_PER_READ: usize = 1024;

/// A position in the log and what remains to read.
pub(crate) struct Cursor {
    log: Arc<dyn Log>,
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    reverse: bool,
    values: bool,
    /// Bytes one read may return (about: a single record larger than this is read alone).
    budget: usize,
    per_read: usize,
}

impl Cursor {
    pub(crate) fn new(
        log: Arc<dyn Log>,
        lower: Bound<Seq>,
        upper: Bound<Seq>,
        reverse: bool,
        values: bool,
        budget: usize,
    ) -> Self {
        // The first read takes one record: record sizes are unknown until then.
        Cursor {
            log,
            lower,
            upper,
            reverse,
            values,
            budget: budget.max(1),
            per_read: 1,
        }
    }

    /// The next records within the bounds and at or below `since`, in the cursor's direction;
    /// empty when there are none now.
    pub(crate) async fn next(&mut self, since: Option<Seq>) -> Result<Vec<(Seq, Bytes)>, LogError> {
        let Some(since) = since else {
            return Ok(Vec::new());
        };
        let upper = min_upper(self.upper, Bound::Included(since));
        if is_empty_range(self.lower, upper) {
            return Ok(Vec::new());
        }
        let range = ReadRange {
            lower: self.lower,
            upper,
            reverse: self.reverse,
            max: self.per_read,
            max_bytes: self.budget,
            values: self.values,
        };
        let mut records = self.log.read(range).await?;
        records.truncate(self.per_read);
        let Some(&(last, _)) = records.last() else {
            return Ok(records);
        };
        if self.reverse {
            self.upper = Bound::Excluded(last);
        } else {
            self.lower = Bound::Excluded(last);
        }
        let bytes: usize = records.iter().map(|(_, v)| v.len() + 32).sum();
        let average = bytes / records.len();
        self.per_read = (self.budget / average.max(1)).clamp(1, MAX_PER_READ);
        Ok(records)
    }
}

/// A record as JSON (a document; key-value records in their `$kv` form). The store encodes
/// records with postcard (`Store::open`), so they are decoded here the same way.
pub(crate) fn record_json(bytes: &[u8]) -> Bytes {
    let json = match <Postcard as Codec<Record>>::decode(&Postcard, bytes) {
        Ok(record) => serde_json::to_vec(&*record.to_document()),
        Err(e) => serde_json::to_vec(&serde_json::json!({ "$error": e.to_string() })),
    };
    Bytes::from(json.unwrap_or_else(|_| b"null".to_vec()))
}
