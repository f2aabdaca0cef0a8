//! The schemaless JSON document, in JSON for people and with explicit tags for postcard.
//!
//! postcard is not self-describing, so `serde_json::Value`'s own serde impl cannot be read back
//! from it. `Document` branches on `is_human_readable()`: human-readable formats (JSON, TOML) see
//! plain JSON; binary formats see a tagged enum (null, bool, i64, u64, f64, string, array,
//! object) that needs no schema. Object key order is kept.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;

use serde::de::{self, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::CodecError;

/// A schemaless JSON value: the record type of the CLI, the server and queries.
///
/// Numbers are kept as JSON numbers: integers exactly (as `i64` or `u64`), other numbers as
/// `f64`, printed in their shortest exact form, so every document round-trips through JSON text
/// and through the binary codec unchanged.
///
/// ```
/// use flume_core::{Codec, Document, Postcard};
/// let doc: Document = r#"{"type":"post","n":-3,"tags":["a","é"],"x":null}"#.parse()?;
/// let bytes = Postcard.encode(&doc)?;
/// let back: Document = Postcard.decode(&bytes)?;
/// assert_eq!(back.to_string(), r#"{"type":"post","n":-3,"tags":["a","é"],"x":null}"#);
/// # Ok::<(), flume_core::CodecError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document(pub Value);

impl Document {
    /// Parse JSON text.
    ///
    /// # Errors
    /// [`CodecError::Decode`] naming the line and column of the first syntax error.
    pub fn from_json(text: &str) -> Result<Self, CodecError> {
        serde_json::from_str(text)
            .map(Document)
            .map_err(|e| CodecError::Decode(e.to_string()))
    }

    /// The value at a path of object keys and array indexes (`["value", "author"]`), if present.
    pub fn path<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        path.iter().try_fold(&self.0, |v, key| match v {
            Value::Object(map) => map.get(key.as_ref()),
            Value::Array(items) => key
                .as_ref()
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// Take the inner value.
    pub fn into_inner(self) -> Value {
        self.0
    }
}

impl From<Value> for Document {
    fn from(value: Value) -> Self {
        Document(value)
    }
}

impl Deref for Document {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl DerefMut for Document {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.0
    }
}

impl FromStr for Document {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, CodecError> {
        Document::from_json(s)
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

const NAME: &str = "Document";
const VARIANTS: &[&str] = &[
    "Null", "Bool", "I64", "U64", "F64", "String", "Array", "Object",
];

/// Serializes a borrowed value with the tagged binary representation.
struct Tagged<'a>(&'a Value);

impl Serialize for Tagged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit_variant(NAME, 0, "Null"),
            Value::Bool(b) => s.serialize_newtype_variant(NAME, 1, "Bool", b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    s.serialize_newtype_variant(NAME, 2, "I64", &i)
                } else if let Some(u) = n.as_u64() {
                    s.serialize_newtype_variant(NAME, 3, "U64", &u)
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    s.serialize_newtype_variant(NAME, 4, "F64", &f)
                }
            }
            Value::String(text) => s.serialize_newtype_variant(NAME, 5, "String", text),
            Value::Array(items) => s.serialize_newtype_variant(NAME, 6, "Array", &TaggedSeq(items)),
            Value::Object(map) => s.serialize_newtype_variant(NAME, 7, "Object", &TaggedMap(map)),
        }
    }
}

struct TaggedSeq<'a>(&'a [Value]);

impl Serialize for TaggedSeq<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&Tagged(item))?;
        }
        seq.end()
    }
}

struct TaggedMap<'a>(&'a Map<String, Value>);

impl Serialize for TaggedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Tagged(v))?;
        }
        map.end()
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.0.serialize(s)
        } else {
            Tagged(&self.0).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            Value::deserialize(d).map(Document)
        } else {
            d.deserialize_enum(NAME, VARIANTS, TaggedVisitor)
                .map(Document)
        }
    }
}

struct TaggedVisitor;

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tagged document")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, variant): (u32, _) = data.variant()?;
        Ok(match tag {
            0 => {
                variant.unit_variant()?;
                Value::Null
            }
            1 => Value::Bool(variant.newtype_variant()?),
            2 => Value::from(variant.newtype_variant::<i64>()?),
            3 => Value::from(variant.newtype_variant::<u64>()?),
            4 => {
                let f: f64 = variant.newtype_variant()?;
                let n = Number::from_f64(f)
                    .ok_or_else(|| de::Error::custom("a document number must be finite"))?;
                Value::Number(n)
            }
            5 => Value::String(variant.newtype_variant()?),
            6 => Value::Array(variant.newtype_variant::<ArrayRepr>()?.0),
            7 => Value::Object(variant.newtype_variant::<ObjectRepr>()?.0),
            other => {
                return Err(de::Error::custom(format!("unknown document tag {other}")));
            }
        })
    }
}

struct ArrayRepr(Vec<Value>);

impl<'de> Deserialize<'de> for ArrayRepr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArrayRepr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of documents")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayRepr, A::Error> {
                // Cap the preallocation: the length prefix is untrusted input.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(Document(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(ArrayRepr(items))
            }
        }
        d.deserialize_seq(V)
    }
}

struct ObjectRepr(Map<String, Value>);

impl<'de> Deserialize<'de> for ObjectRepr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectRepr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of documents")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectRepr, A::Error> {
                let mut out = Map::new();
                while let Some((k, Document(v))) = map.next_entry::<String, Document>()? {
                    out.insert(k, v);
                }
                Ok(ObjectRepr(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, Json, Postcard};

    const SAMPLES: &[&str] = &[
        "null",
        "true",
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "0.1",
        "-0.0",
        "1e300",
        "5e-324",
        "1.7976931348623157e308",
        "\"\"",
        "\"héllo \\u0000 \\\"q\\\" 🦀 \\n\"",
        "[]",
        "{}",
        r#"{"z":1,"a":[1,2,{"b":[null,false,"x"]}],"m":{"n":{"o":-2.5}}}"#,
    ];

    #[test]
    fn json_text_round_trips_through_both_codecs() {
        for text in SAMPLES {
            let doc = Document::from_json(text).unwrap();
            let canonical = doc.to_string();
            let via_postcard: Document = Postcard.decode(&Postcard.encode(&doc).unwrap()).unwrap();
            let via_json: Document = Json.decode(&Json.encode(&doc).unwrap()).unwrap();
            for back in [via_postcard, via_json] {
                assert_eq!(back, doc, "{text}");
                assert_eq!(back.to_string(), canonical, "{text}");
            }
            assert_eq!(Document::from_json(&canonical).unwrap(), doc, "{text}");
        }
    }

    #[test]
    fn key_order_is_kept() {
        let doc = Document::from_json(r#"{"b":1,"a":2,"c":3}"#).unwrap();
        let back: Document = Postcard.decode(&Postcard.encode(&doc).unwrap()).unwrap();
        assert_eq!(back.to_string(), r#"{"b":1,"a":2,"c":3}"#);
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        for bytes in [&[9u8][..], &[6, 200, 200, 200, 200, 15], &[4, 0, 0], &[]] {
            let r: Result<Document, _> = Postcard.decode(bytes);
            assert!(matches!(r, Err(CodecError::Decode(_))), "{bytes:?}");
        }
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let doc = Document::from_json(r#"{"value":{"author":"a","tags":["x","y"]}}"#).unwrap();
        assert_eq!(doc.path(&["value", "author"]), Some(&Value::from("a")));
        assert_eq!(doc.path(&["value", "tags", "1"]), Some(&Value::from("y")));
        assert_eq!(doc.path(&["value", "missing"]), None);
        assert_eq!(doc.path::<&str>(&[]), Some(&doc.0));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_documents_round_trip(doc in arb_value()) {
            let doc = Document(doc);
            let back: Document = Postcard.decode(&Postcard.encode(&doc).unwrap()).unwrap();
            proptest::prop_assert_eq!(&back, &doc);
            let back: Document = Json.decode(&Json.encode(&doc).unwrap()).unwrap();
            proptest::prop_assert_eq!(&back, &doc);
        }
    }

    fn arb_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".*".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec((".*", inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }
}
