//! `$reduce`: plain keys group (by a key or path), `$count`, `$sum`, `$min`, `$max` and
//! `$collect` aggregate. One row per group, groups in key order; a reducer alone (no group keys)
//! gives a single value.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use flume_view_index::key;
use serde_json::{Map, Value};

use crate::error::Bad;
use crate::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reduce {
    /// `{"$count": true}` and friends alone: one value.
    Single(Reducer),
    /// An object of group keys and reducers: one object per group.
    Rows(Vec<(String, Field)>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Field {
    Group(Path),
    Agg(Reducer),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reducer {
    /// Counts values (that have the path, when one is given).
    Count(Option<Path>),
    Sum(Path),
    Min(Path),
    Max(Path),
    Collect(Path),
}

const REDUCERS: &str = "$count, $sum, $min, $max, $collect";

impl Reduce {
    pub(crate) fn parse(v: &Value) -> Result<Reduce, Bad> {
        let Value::Object(map) = v else {
            return Err(Bad::new(format!(
                "$reduce takes an object of group keys and reducers, not {v}"
            )));
        };
        if map.keys().any(|k| k.starts_with('$')) {
            return Ok(Reduce::Single(Reducer::parse(map)?));
        }
        let mut fields = Vec::with_capacity(map.len());
        for (name, rule) in map {
            let field = match rule {
                Value::Object(inner) if inner.keys().any(|k| k.starts_with('$')) => {
                    Field::Agg(Reducer::parse(inner)?)
                }
                other => Field::Group(
                    Path::parse(other).map_err(|m| Bad::new(format!("group key {name:?}: {m}")))?,
                ),
            };
            fields.push((name.clone(), field));
        }
        if fields.is_empty() {
            return Err(Bad::new("$reduce needs at least one group key or reducer"));
        }
        Ok(Reduce::Rows(fields))
    }

    pub(crate) fn apply(&self, values: Vec<Value>) -> Vec<Value> {
        match self {
            Reduce::Single(r) => vec![r.over(values.iter())],
            Reduce::Rows(fields) => {
                let groups: Vec<&Path> = fields
                    .iter()
                    .filter_map(|(_, f)| match f {
                        Field::Group(p) => Some(p),
                        Field::Agg(_) => None,
                    })
                    .collect();
                // Group keys in key order, so results do not depend on the order of records.
                let mut by_group: BTreeMap<Vec<u8>, (Vec<Value>, Vec<&Value>)> = BTreeMap::new();
                for v in &values {
                    let key: Vec<Value> = groups
                        .iter()
                        .map(|p| p.get(v).cloned().unwrap_or(Value::Null))
                        .collect();
                    by_group
                        .entry(key::encode(&key))
                        .or_insert_with(|| (key, Vec::new()))
                        .1
                        .push(v);
                }
                by_group
                    .into_values()
                    .map(|(key, members)| {
                        let mut key = key.into_iter();
                        let mut row = Map::with_capacity(fields.len());
                        for (name, field) in fields {
                            let value = match field {
                                Field::Group(_) => key.next().unwrap_or(Value::Null),
                                Field::Agg(r) => r.over(members.iter().copied()),
                            };
                            row.insert(name.clone(), value);
                        }
                        Value::Object(row)
                    })
                    .collect()
            }
        }
    }
}

impl Reducer {
    fn parse(map: &Map<String, Value>) -> Result<Reducer, Bad> {
        if map.len() != 1 {
            return Err(Bad::new(format!(
                "a reducer is an object with one operator ({REDUCERS})"
            )));
        }
        let Some((op, arg)) = map.iter().next() else {
            return Err(Bad::new("empty reducer"));
        };
        let path = || Path::parse(arg).map_err(|m| Bad::op(op, m));
        Ok(match op.as_str() {
            "$count" => match arg {
                Value::Bool(true) => Reducer::Count(None),
                _ => Reducer::Count(Some(path()?)),
            },
            "$sum" => Reducer::Sum(path()?),
            "$min" => Reducer::Min(path()?),
            "$max" => Reducer::Max(path()?),
            "$collect" => Reducer::Collect(path()?),
            other => {
                return Err(Bad::op(
                    other,
                    format!("is not a reducer; the reducers are {REDUCERS}"),
                ));
            }
        })
    }

    fn over<'a>(&self, values: impl Iterator<Item = &'a Value>) -> Value {
        match self {
            Reducer::Count(None) => Value::from(values.count() as u64),
            Reducer::Count(Some(p)) => {
                Value::from(values.filter(|v| p.get(v).is_some()).count() as u64)
            }
            Reducer::Sum(p) => sum(values.filter_map(|v| p.get(v)).filter(|v| v.is_number())),
            Reducer::Min(p) => extreme(values.filter_map(|v| p.get(v)), Ordering::Less),
            Reducer::Max(p) => extreme(values.filter_map(|v| p.get(v)), Ordering::Greater),
            Reducer::Collect(p) => Value::Array(values.filter_map(|v| p.get(v).cloned()).collect()),
        }
    }
}

/// Integers sum exactly while they fit an `i64`; any other number makes the sum an `f64`.
fn sum<'a>(numbers: impl Iterator<Item = &'a Value>) -> Value {
    let mut exact: Option<i128> = Some(0);
    let mut float = 0.0;
    for n in numbers {
        float += n.as_f64().unwrap_or(0.0);
        exact = match (exact, n.as_i64()) {
            (Some(acc), Some(i)) => Some(acc + i128::from(i)),
            _ => None,
        };
    }
    match exact.and_then(|e| i64::try_from(e).ok()) {
        Some(i) => Value::from(i),
        None => Value::from(float),
    }
}

fn extreme<'a>(values: impl Iterator<Item = &'a Value>, want: Ordering) -> Value {
    values
        .fold(None, |best: Option<&Value>, v| match best {
            Some(b) if key::compare(v, b) != want => Some(b),
            _ => Some(v),
        })
        .cloned()
        .unwrap_or(Value::Null)
}
