//! Paths into documents: `"author"`, or `["value", "author"]`, or `["tags", 0]`.

use serde_json::Value;

/// A path of object keys and array indexes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<String>);

impl Path {
    /// Read a path from JSON: a string is one key, an array lists keys (strings) and indexes
    /// (non-negative integers).
    pub(crate) fn parse(v: &Value) -> Result<Path, String> {
        match v {
            Value::String(s) => Ok(Path(vec![s.clone()])),
            Value::Array(parts) if !parts.is_empty() => parts
                .iter()
                .map(|p| match p {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) if n.as_u64().is_some() => Ok(n.to_string()),
                    other => Err(format!("a path holds keys and indexes, not {other}")),
                })
                .collect::<Result<_, _>>()
                .map(Path),
            other => Err(format!(
                "expected a key or a path (an array of keys), not {other}"
            )),
        }
    }

    /// The value at this path in `v`, if any.
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(v, |v, key| match v {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    /// As JSON, for explain output.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(self.0.iter().cloned().map(Value::from).collect())
    }
}

impl From<&[&str]> for Path {
    fn from(parts: &[&str]) -> Path {
        Path(parts.iter().map(|s| s.to_string()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Path {
    fn from(parts: [&str; N]) -> Path {
        Path(parts.iter().map(|s| s.to_string()).collect())
    }
}
