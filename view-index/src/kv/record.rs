//! Key-value records: the log records the key-value view is built from, and key validation.

use std::borrow::Cow;

use flume_core::Document;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::kv::KvError;

/// The longest collection, and the longest member, accepted, in bytes (memcached's key limit, so
/// any memcached key fits as a member).
pub const MAX_KEY_LEN: usize = 250;

/// A stored value: opaque bytes (memcached) or a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvValue {
    /// Opaque bytes.
    Bytes(Vec<u8>),
    /// A JSON document.
    Document(Document),
}

/// One key-value operation, as appended to the log. Keys are `collection/member`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRecord {
    /// Set `key` to `value`.
    Put {
        /// `collection/member`.
        key: String,
        /// The value.
        value: KvValue,
        /// Opaque client flags (memcached's), stored and returned.
        flags: u32,
        /// Unix time in seconds after which the entry reads as absent; 0 = never.
        expires: u64,
    },
    /// Remove `key`.
    Delete {
        /// `collection/member`.
        key: String,
    },
    /// Remove every member of `collection`.
    DeleteAll {
        /// The collection.
        collection: String,
    },
}

/// Records that may carry a key-value operation: the view reads only those.
pub trait AsKvRecord {
    /// The operation this record carries, if any.
    fn as_kv(&self) -> Option<Cow<'_, KvRecord>>;
}

impl AsKvRecord for KvRecord {
    fn as_kv(&self) -> Option<Cow<'_, KvRecord>> {
        Some(Cow::Borrowed(self))
    }
}

/// Documents carry key-value operations as `{"$kv": "put", "key": "c/m", "value": <json>}` (or
/// `"bytes": [..]` for opaque bytes, plus optional `"flags"` and `"expires"`),
/// `{"$kv": "delete", "key": "c/m"}` and `{"$kv": "delete_all", "collection": "c"}`. Other
/// documents are ignored by the view.
impl AsKvRecord for Document {
    fn as_kv(&self) -> Option<Cow<'_, KvRecord>> {
        let op = self.get("$kv")?.as_str()?;
        let text = |k: &str| self.get(k).and_then(Value::as_str).map(str::to_string);
        let record = match op {
            "put" => {
                let value = match (self.get("value"), self.get("bytes")) {
                    (Some(v), None) => KvValue::Document(Document(v.clone())),
                    (None, Some(Value::Array(b))) => {
                        let bytes: Option<Vec<u8>> = b
                            .iter()
                            .map(|x| x.as_u64().and_then(|n| u8::try_from(n).ok()))
                            .collect();
                        KvValue::Bytes(bytes?)
                    }
                    _ => return None,
                };
                let flags = self
                    .get("flags")
                    .map_or(Some(0), |f| f.as_u64().and_then(|f| u32::try_from(f).ok()))?;
                let expires = self.get("expires").map_or(Some(0), Value::as_u64)?;
                KvRecord::Put {
                    key: text("key")?,
                    value,
                    flags,
                    expires,
                }
            }
            "delete" => KvRecord::Delete { key: text("key")? },
            "delete_all" => KvRecord::DeleteAll {
                collection: text("collection")?,
            },
            _ => return None,
        };
        Some(Cow::Owned(record))
    }
}

impl From<KvRecord> for Document {
    fn from(r: KvRecord) -> Document {
        Document(match r {
            KvRecord::Put {
                key,
                value: KvValue::Document(d),
                flags,
                expires,
            } => {
                json!({"$kv": "put", "key": key, "value": d.0, "flags": flags, "expires": expires})
            }
            KvRecord::Put {
                key,
                value: KvValue::Bytes(b),
                flags,
                expires,
            } => {
                json!({"$kv": "put", "key": key, "bytes": b, "flags": flags, "expires": expires})
            }
            KvRecord::Delete { key } => json!({"$kv": "delete", "key": key}),
            KvRecord::DeleteAll { collection } => {
                json!({"$kv": "delete_all", "collection": collection})
            }
        })
    }
}

/// Check a `collection/member` key and split it at its first `/`.
///
/// # Errors
/// [`KvError::InvalidKey`] for an empty key, a key over 250 bytes, a control character, or an
/// empty collection or member.
pub fn split_key(key: &str) -> Result<(&str, &str), KvError> {
    let bad = |reason: &str| {
        Err(KvError::InvalidKey {
            key: printable(key),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    let (collection, member) = match key.split_once('/') {
        None => return bad("it has no `/`: keys are `collection/member`"),
        Some(("", _)) => return bad("the collection (before `/`) is empty"),
        Some((_, "")) => return bad("the member (after `/`) is empty"),
        Some(parts) => parts,
    };
    for (part, what) in [(collection, "collection"), (member, "member")] {
        if part.len() > MAX_KEY_LEN {
            let len = part.len();
            return bad(&format!(
                "the {what} is {len} bytes long; the limit is {MAX_KEY_LEN}"
            ));
        }
    }
    Ok((collection, member))
}

/// Check a collection name.
///
/// # Errors
/// [`KvError::InvalidKey`] for an empty or over-long name, a `/` or a control character.
pub fn check_collection(collection: &str) -> Result<(), KvError> {
    let bad = |reason: &str| {
        Err(KvError::InvalidKey {
            key: printable(collection),
            reason: reason.to_string(),
        })
    };
    if collection.is_empty() {
        return bad("the collection is empty");
    }
    if collection.len() > MAX_KEY_LEN {
        return bad(&format!(
            "the collection is {} bytes long; the limit is {MAX_KEY_LEN}",
            collection.len()
        ));
    }
    if collection.contains('/') || collection.chars().any(char::is_control) {
        return bad("a collection cannot contain `/` or control characters");
    }
    Ok(())
}

/// The key with control characters escaped and cut to a readable length, for error messages.
fn printable(key: &str) -> String {
    let escaped: String = key.chars().flat_map(char::escape_debug).take(80).collect();
    if escaped.len() < key.len() {
        format!("{escaped}…")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert_eq!(split_key("users/alice").unwrap(), ("users", "alice"));
        assert_eq!(split_key("a/b/c").unwrap(), ("a", "b/c"));
        for bad in [
            "",
            "nocollection",
            "/member",
            "collection/",
            "a/b\n",
            "a/\u{7}",
        ] {
            assert!(split_key(bad).is_err(), "{bad:?}");
        }
        assert!(split_key(&format!("c/{}", "x".repeat(250))).is_ok());
        let err = split_key(&format!("c/{}", "x".repeat(251)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("member is 251 bytes") && err.contains("250"),
            "{err}"
        );
        assert!(split_key(&format!("{}/m", "c".repeat(251))).is_err());
        assert!(check_collection("c").is_ok());
        assert!(check_collection("c/d").is_err() && check_collection("").is_err());
    }

    #[test]
    fn documents_carry_kv_records() {
        let records = [
            KvRecord::Put {
                key: "c/m".into(),
                value: KvValue::Bytes(vec![0, 255]),
                flags: 7,
                expires: 9,
            },
            KvRecord::Put {
                key: "c/n".into(),
                value: KvValue::Document(Document(json!({"a": [1, "x"]}))),
                flags: 0,
                expires: 0,
            },
            KvRecord::Delete { key: "c/m".into() },
            KvRecord::DeleteAll {
                collection: "c".into(),
            },
        ];
        for r in records {
            let doc = Document::from(r.clone());
            assert_eq!(doc.as_kv().unwrap().into_owned(), r);
        }
        assert!(Document(json!({"type": "post"})).as_kv().is_none());
        assert!(
            Document(json!({"$kv": "put", "key": "c/m"}))
                .as_kv()
                .is_none()
        );
    }
}
