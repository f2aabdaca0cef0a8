//! The order of document values that keys preserve, computed on the values themselves: the
//! reference the encoding is tested against, and what queries sort and compare with.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Compare two values: `null < false < true < numbers < strings < arrays < objects`, numbers
/// numerically (exactly, across `i64`, `u64` and `f64`), strings by UTF-8 bytes, arrays and
/// objects element by element.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => compare_seq(x.iter(), y.iter()),
        (Value::Object(x), Value::Object(y)) => {
            let mut xs = x.iter();
            let mut ys = y.iter();
            loop {
                match (xs.next(), ys.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some((ka, va)), Some((kb, vb))) => {
                        let o = ka
                            .as_bytes()
                            .cmp(kb.as_bytes())
                            .then_with(|| compare(va, vb));
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                }
            }
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compare tuples element by element; a prefix sorts first.
pub(crate) fn compare_seq<'a>(
    mut xs: impl Iterator<Item = &'a Value>,
    mut ys: impl Iterator<Item = &'a Value>,
) -> Ordering {
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare(x, y) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) => 5,
        Value::Object(_) => 6,
    }
}

/// An exact number: an integer, or a float that is not an integer.
enum Exact {
    Int(i128),
    Float(f64),
}

fn exact(n: &Number) -> Exact {
    if let Some(i) = n.as_i64() {
        return Exact::Int(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Exact::Int(i128::from(u));
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 2f64.powi(100) {
        Exact::Int(f as i128)
    } else {
        Exact::Float(f)
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    match (exact(a), exact(b)) {
        (Exact::Int(x), Exact::Int(y)) => x.cmp(&y),
        (Exact::Float(x), Exact::Float(y)) => x.total_cmp(&y),
        (Exact::Int(x), Exact::Float(y)) => int_vs_float(x, y),
        (Exact::Float(x), Exact::Int(y)) => int_vs_float(y, x).reverse(),
    }
}

/// `i` against a float that is not an integer (or is huge): compare with its floor.
fn int_vs_float(i: i128, f: f64) -> Ordering {
    if f >= 2f64.powi(100) {
        return Ordering::Less;
    }
    if f <= -(2f64.powi(100)) {
        return Ordering::Greater;
    }
    // f is not an integer, so i != f: i > f exactly when i > floor(f).
    if i > f.floor() as i128 {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}
