//! The records of a database directory: JSON documents, and key-value operations kept in their
//! native form so that values stay raw bytes (memcached's) instead of JSON arrays.

use std::borrow::Cow;

use flume_core::Document;
use flume_view_index::{AsKvRecord, KvRecord};
use flume_view_query::AsJson;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One record of a database directory.
///
/// In JSON (export, HTTP, the CLI) a record is a plain document; a key-value operation is the
/// document `{"$kv": "put", "key": "c/m", ...}` (see [`KvRecord`]). In the log (postcard) both
/// are tagged binary, so a 1 MiB memcached value costs 1 MiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A schemaless document.
    Doc(Document),
    /// A key-value operation.
    Kv(KvRecord),
}

impl Record {
    /// Read a JSON document: the `$kv` form becomes a key-value record, anything else a document.
    pub fn from_document(doc: Document) -> Record {
        match doc.as_kv() {
            Some(kv) => Record::Kv(kv.into_owned()),
            None => Record::Doc(doc),
        }
    }

    /// The record as a document (what queries, indexes and JSON output see).
    pub fn to_document(&self) -> Cow<'_, Document> {
        match self {
            Record::Doc(d) => Cow::Borrowed(d),
            Record::Kv(kv) => Cow::Owned(Document::from(kv.clone())),
        }
    }
}

impl From<Document> for Record {
    fn from(doc: Document) -> Record {
        Record::from_document(doc)
    }
}

impl From<KvRecord> for Record {
    fn from(kv: KvRecord) -> Record {
        Record::Kv(kv)
    }
}

/// Queries see a record as its JSON document.
impl AsJson for Record {
    fn as_json(&self) -> Cow<'_, Value> {
        match self {
            Record::Doc(d) => Cow::Borrowed(&d.0),
            Record::Kv(kv) => Cow::Owned(Document::from(kv.clone()).into_inner()),
        }
    }
}

impl AsKvRecord for Record {
    fn as_kv(&self) -> Option<Cow<'_, KvRecord>> {
        match self {
            Record::Kv(kv) => Some(Cow::Borrowed(kv)),
            Record::Doc(d) => d.as_kv(),
        }
    }
}

/// The binary form: an explicitly tagged enum, which postcard can read back.
#[derive(Serialize)]
#[serde(rename = "Record")]
enum ReprRef<'a> {
    Doc(&'a Document),
    Kv(&'a KvRecord),
}

#[derive(Deserialize)]
#[serde(rename = "Record")]
enum Repr {
    Doc(Document),
    Kv(KvRecord),
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return self.to_document().serialize(s);
        }
        match self {
            Record::Doc(d) => ReprRef::Doc(d),
            Record::Kv(kv) => ReprRef::Kv(kv),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return Document::deserialize(d).map(Record::from_document);
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Doc(doc) => Record::Doc(doc),
            Repr::Kv(kv) => Record::Kv(kv),
        })
    }
}

#[cfg(test)]
mod tests {
    use flume_core::{Codec, Json, Postcard};
    use flume_view_index::KvValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn records_round_trip_in_binary_and_json() {
        let records = [
            Record::Doc(Document(json!({"type": "post", "n": [1, 2.5, null]}))),
            Record::Kv(KvRecord::Put {
                key: "c/m".into(),
                value: KvValue::Bytes(vec![0, 1, 255]),
                flags: 3,
                expires: 0,
            }),
            Record::Kv(KvRecord::DeleteAll {
                collection: "c".into(),
            }),
        ];
        for r in records {
            let bin: Record = Postcard.decode(&Postcard.encode(&r).unwrap()).unwrap();
            assert_eq!(bin, r);
            let text: Record = Json.decode(&Json.encode(&r).unwrap()).unwrap();
            assert_eq!(text, r);
        }
    }

    #[test]
    fn raw_bytes_stay_compact_in_the_log() {
        let r = Record::Kv(KvRecord::Put {
            key: "c/m".into(),
            value: KvValue::Bytes(vec![7; 1 << 20]),
            flags: 0,
            expires: 0,
        });
        assert!(Postcard.encode(&r).unwrap().len() < (1 << 20) + 64);
    }
}
