//! `$filter` rules: a primitive means equality; objects match per key (nested); arrays match
//! positionally; operator objects (`$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$prefix`, `$in`,
//! `$is`/`$type`, `$not`, `$truthy`) must all hold.
//!
//! Range operators compare within a type: `{"$gt": 5}` matches numbers above 5, not strings.
//! A missing field matches only `$ne`, `$not` of a rule it fails, `{"$is": "undefined"}` and
//! `{"$truthy": false}`.

use std::cmp::Ordering;

use flume_view_index::key;
use serde_json::{Map, Value};

use crate::error::Bad;

/// A parsed filter rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    /// Equal to a primitive (null, boolean, number, string).
    Eq(Value),
    /// An object whose fields match.
    Fields(Vec<(String, Rule)>),
    /// An array whose first elements match, in order.
    Items(Vec<Rule>),
    /// Every operator holds.
    Ops(Vec<Op>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Op {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    Prefix(String),
    In(Vec<Value>),
    Is(Kind),
    Not(Box<Rule>),
    Truthy(bool),
}

/// Type names for `$is` / `$type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Boolean,
    Number,
    Integer,
    String,
    Array,
    Object,
    Undefined,
}

const OPERATORS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $prefix, $in, $is, $type, $not, $truthy";

impl Rule {
    pub(crate) fn parse(v: &Value) -> Result<Rule, Bad> {
        match v {
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => parse_ops(map),
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Rule::parse(v)?)))
                    .collect::<Result<_, Bad>>()?;
                Ok(Rule::Fields(fields))
            }
            Value::Array(items) => Ok(Rule::Items(
                items.iter().map(Rule::parse).collect::<Result<_, _>>()?,
            )),
            primitive => Ok(Rule::Eq(primitive.clone())),
        }
    }

    /// Does `value` (absent when `None`) satisfy the rule?
    pub(crate) fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Rule::Eq(want) => value.is_some_and(|v| equal(v, want)),
            Rule::Fields(fields) => match value {
                Some(Value::Object(map)) => fields.iter().all(|(k, r)| r.matches(map.get(k))),
                _ => false,
            },
            Rule::Items(rules) => match value {
                Some(Value::Array(items)) => {
                    items.len() >= rules.len()
                        && rules.iter().zip(items).all(|(r, v)| r.matches(Some(v)))
                }
                _ => false,
            },
            Rule::Ops(ops) => ops.iter().all(|op| op.holds(value)),
        }
    }
}

fn parse_ops(map: &Map<String, Value>) -> Result<Rule, Bad> {
    let mut ops = Vec::with_capacity(map.len());
    for (name, arg) in map {
        let op = match name.as_str() {
            "$eq" => Op::Eq(arg.clone()),
            "$ne" => Op::Ne(arg.clone()),
            "$gt" => Op::Cmp(Ordering::Greater, false, comparable(name, arg)?),
            "$gte" => Op::Cmp(Ordering::Greater, true, comparable(name, arg)?),
            "$lt" => Op::Cmp(Ordering::Less, false, comparable(name, arg)?),
            "$lte" => Op::Cmp(Ordering::Less, true, comparable(name, arg)?),
            "$prefix" => match arg {
                Value::String(s) => Op::Prefix(s.clone()),
                other => return Err(Bad::op(name, format!("expects a string, not {other}"))),
            },
            "$in" => match arg {
                Value::Array(vals) => Op::In(vals.clone()),
                other => {
                    return Err(Bad::op(
                        name,
                        format!("expects an array of values, not {other}"),
                    ));
                }
            },
            "$is" | "$type" => Op::Is(kind(name, arg)?),
            "$not" => Op::Not(Box::new(
                Rule::parse(arg).map_err(|b| Bad::op(name, b.message))?,
            )),
            "$truthy" => match arg {
                Value::Bool(b) => Op::Truthy(*b),
                other => return Err(Bad::op(name, format!("expects true or false, not {other}"))),
            },
            other if other.starts_with('$') => {
                return Err(Bad::op(
                    other,
                    format!("is not a filter operator; the operators are {OPERATORS}"),
                ));
            }
            field => {
                return Err(Bad::new(format!(
                    "cannot mix operators and the field {field:?} in one object: put the field in its own object"
                )));
            }
        };
        ops.push(op);
    }
    Ok(Rule::Ops(ops))
}

fn comparable(op: &str, v: &Value) -> Result<Value, Bad> {
    match v {
        Value::Number(_) | Value::String(_) | Value::Bool(_) => Ok(v.clone()),
        other => Err(Bad::op(
            op,
            format!("expects a number, string or boolean, not {other}"),
        )),
    }
}

fn kind(op: &str, v: &Value) -> Result<Kind, Bad> {
    Ok(match v.as_str() {
        Some("null") => Kind::Null,
        Some("boolean") => Kind::Boolean,
        Some("number") => Kind::Number,
        Some("integer") => Kind::Integer,
        Some("string") => Kind::String,
        Some("array") => Kind::Array,
        Some("object") => Kind::Object,
        Some("undefined") => Kind::Undefined,
        _ => {
            return Err(Bad::op(
                op,
                format!(
                    "expects a type name (null, boolean, number, integer, string, array, object, undefined), not {v}"
                ),
            ));
        }
    })
}

impl Op {
    fn holds(&self, value: Option<&Value>) -> bool {
        match self {
            Op::Eq(want) => value.is_some_and(|v| equal(v, want)),
            Op::Ne(want) => !value.is_some_and(|v| equal(v, want)),
            Op::Cmp(dir, inclusive, bound) => value.is_some_and(|v| {
                same_type(v, bound) && {
                    let o = key::compare(v, bound);
                    o == *dir || (*inclusive && o == Ordering::Equal)
                }
            }),
            Op::Prefix(p) => matches!(value, Some(Value::String(s)) if s.starts_with(p.as_str())),
            Op::In(vals) => value.is_some_and(|v| vals.iter().any(|w| equal(v, w))),
            Op::Is(k) => is_kind(value, *k),
            Op::Not(rule) => !rule.matches(value),
            Op::Truthy(want) => truthy(value) == *want,
        }
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn is_kind(v: Option<&Value>, k: Kind) -> bool {
    match (v, k) {
        (None, Kind::Undefined) => true,
        (Some(Value::Null), Kind::Null) | (Some(Value::Bool(_)), Kind::Boolean) => true,
        (Some(Value::Number(_)), Kind::Number) | (Some(Value::String(_)), Kind::String) => true,
        (Some(Value::Array(_)), Kind::Array) | (Some(Value::Object(_)), Kind::Object) => true,
        (Some(Value::Number(n)), Kind::Integer) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

/// JavaScript's truthiness: absent, null, false, 0 and "" are false; everything else is true.
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// Deep equality with numbers compared by value (1 equals 1.0) and objects as maps.
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => key::compare(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}
