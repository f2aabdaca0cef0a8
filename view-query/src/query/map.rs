//! `$map`: `true` keeps the value; a key or path picks a value (values without it are dropped);
//! an object builds a new object of named rules (`true` inside copies the same key; missing
//! fields are left out).

use serde_json::{Map, Value};

use crate::error::Bad;
use crate::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MapRule {
    Identity,
    Pick(Path),
    Object(Vec<(String, MapRule)>),
}

impl MapRule {
    pub(crate) fn parse(v: &Value) -> Result<MapRule, Bad> {
        match v {
            Value::Bool(true) => Ok(MapRule::Identity),
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (name, rule) in map {
                    if name.starts_with('$') {
                        return Err(Bad::op(
                            name,
                            "is not a $map rule: $map takes true, a key, a path or an object of those",
                        ));
                    }
                    let rule = match rule {
                        Value::Bool(true) => MapRule::Pick(Path(vec![name.clone()])),
                        other => MapRule::parse(other)?,
                    };
                    fields.push((name.clone(), rule));
                }
                Ok(MapRule::Object(fields))
            }
            other => Path::parse(other)
                .map(MapRule::Pick)
                .map_err(|m| Bad::new(format!("$map: {m}"))),
        }
    }

    /// The mapped value; `None` drops the value from the results.
    pub(crate) fn apply(&self, v: &Value) -> Option<Value> {
        match self {
            MapRule::Identity => Some(v.clone()),
            MapRule::Pick(path) => path.get(v).cloned(),
            MapRule::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (name, rule) in fields {
                    if let Some(x) = rule.apply(v) {
                        out.insert(name.clone(), x);
                    }
                }
                Some(Value::Object(out))
            }
        }
    }
}
