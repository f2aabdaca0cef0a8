//! A stored key-value row: `seq (u64 BE) | flags (u32 BE) | expires (u64 BE) | kind (u8) | value`,
//! kind 0 for bytes, 1 for a document (postcard-encoded).

use std::time::{SystemTime, UNIX_EPOCH};

use flume_core::{Codec, Document, Postcard, Seq};

use super::KvValue;

const HEADER: usize = 8 + 4 + 8 + 1;

/// A key's current value with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KvEntry {
    /// The seq of the record that wrote it (memcached's `cas`).
    pub seq: Seq,
    /// The client's flags.
    pub flags: u32,
    /// Unix seconds after which it reads as absent; 0 = never.
    pub expires: u64,
    /// The value.
    pub value: KvValue,
}

impl KvEntry {
    pub(crate) fn encode(seq: Seq, flags: u32, expires: u64, value: &KvValue) -> Vec<u8> {
        let (kind, payload) = match value {
            KvValue::Bytes(b) => (0u8, std::borrow::Cow::Borrowed(b.as_slice())),
            KvValue::Document(d) => {
                let bytes = Postcard.encode(d).map(|b| b.to_vec()).unwrap_or_default();
                (1u8, std::borrow::Cow::Owned(bytes))
            }
        };
        let mut row = Vec::with_capacity(HEADER + payload.len());
        row.extend_from_slice(&seq.0.to_be_bytes());
        row.extend_from_slice(&flags.to_be_bytes());
        row.extend_from_slice(&expires.to_be_bytes());
        row.push(kind);
        row.extend_from_slice(&payload);
        row
    }

    /// Decode a row; `None` if it is malformed.
    pub(crate) fn decode(row: &[u8]) -> Option<KvEntry> {
        let seq = u64::from_be_bytes(row.get(0..8)?.try_into().ok()?);
        let flags = u32::from_be_bytes(row.get(8..12)?.try_into().ok()?);
        let expires = u64::from_be_bytes(row.get(12..20)?.try_into().ok()?);
        let payload = row.get(HEADER..)?;
        let value = match row.get(20)? {
            0 => KvValue::Bytes(payload.to_vec()),
            1 => KvValue::Document(<Postcard as Codec<Document>>::decode(&Postcard, payload).ok()?),
            _ => return None,
        };
        Some(KvEntry {
            seq: Seq(seq),
            flags,
            expires,
            value,
        })
    }

    /// The expiry time of a row without decoding its value.
    pub(crate) fn row_expires(row: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(row.get(12..20)?.try_into().ok()?))
    }

    /// True when the entry has expired at `now` (unix seconds).
    pub fn expired_at(&self, now: u64) -> bool {
        is_expired(self.expires, now)
    }

    /// True when the entry has expired by now; only entries with an expiry read the clock.
    pub(crate) fn expired_now(&self) -> bool {
        self.expires != 0 && self.expired_at(now_unix())
    }
}

pub(crate) fn is_expired(expires: u64, now: u64) -> bool {
    expires != 0 && expires <= now
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_round_trip() {
        for value in [
            KvValue::Bytes(vec![]),
            KvValue::Bytes(vec![1, 2, 3]),
            KvValue::Document(Document(json!({"a": 1}))),
        ] {
            let row = KvEntry::encode(Seq(42), 7, 99, &value);
            let e = KvEntry::decode(&row).unwrap();
            assert_eq!(
                (e.seq, e.flags, e.expires, e.value),
                (Seq(42), 7, 99, value)
            );
            assert_eq!(KvEntry::row_expires(&row), Some(99));
        }
        assert!(KvEntry::decode(&[1, 2, 3]).is_none());
    }

    #[test]
    fn expiry() {
        assert!(!is_expired(0, u64::MAX));
        assert!(is_expired(10, 10));
        assert!(!is_expired(11, 10));
    }
}
