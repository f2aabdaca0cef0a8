//! Read access to the log's records for views whose reads return records (indexes, queries).

use std::sync::Arc;

use crate::{Codec, DbError, Log, Seq};

/// The log and codec of the database a view belongs to, handed to the view by
/// [`View::attach`](crate::View::attach) so its reads can return whole records.
pub struct RecordReader<T> {
    log: Arc<dyn Log>,
    codec: Arc<dyn Codec<T>>,
}

impl<T> Clone for RecordReader<T> {
    fn clone(&self) -> Self {
        RecordReader {
            log: Arc::clone(&self.log),
            codec: Arc::clone(&self.codec),
        }
    }
}

impl<T: Send + Sync + 'static> RecordReader<T> {
    pub(crate) fn new(log: Arc<dyn Log>, codec: Arc<dyn Codec<T>>) -> Self {
        RecordReader { log, codec }
    }

    /// The record at `seq`, decoded.
    ///
    /// # Errors
    /// The log's error ([`LogError::Truncated`](crate::LogError::Truncated) for a retired record,
    /// `Closed`), or a decode error.
    pub async fn get(&self, seq: Seq) -> Result<T, DbError> {
        let bytes = self.log.get(seq).await?;
        self.decode(seq, &bytes)
    }

    /// Decode bytes read from the log at `seq`.
    ///
    /// # Errors
    /// [`DbError::Codec`] naming the seq.
    pub fn decode(&self, seq: Seq, bytes: &[u8]) -> Result<T, DbError> {
        self.codec.decode(bytes).map_err(|source| DbError::Codec {
            seq: Some(seq),
            source,
        })
    }

    /// The log.
    pub fn log(&self) -> &Arc<dyn Log> {
        &self.log
    }
}
