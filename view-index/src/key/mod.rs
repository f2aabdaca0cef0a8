//! Order-preserving encoding of key tuples: comparing two encoded keys byte by byte gives the same
//! answer as comparing the tuples by [`compare`].
//!
//! The order of values is `null < false < true < numbers < strings < arrays < objects`; numbers in
//! numeric order whatever their representation (negatives, floats, `i64`, `u64`); strings by their
//! UTF-8 bytes (code point order); arrays element by element, a prefix before longer arrays;
//! objects entry by entry in their stored order.
//!
//! Layout (each value starts with a tag byte ≥ 1, so the terminator 0 sorts before any value):
//! - `0x01` null, `0x02` false, `0x03` true;
//! - `0x04` number: 8 bytes of the nearest `f64` in sortable form, then 4 bytes of the exact
//!   integer remainder (sign-flipped big-endian `i32`), so integers above 2^53 keep their order;
//! - `0x05` string: the bytes with `0x00` escaped as `0x00 0xFF`, ended by `0x00 0x01`;
//! - `0x06` array: the elements, then `0x00`; `0x07` object: tagged key string, value, …, then
//!   `0x00`.
//!
//! A tuple is its elements' encodings concatenated, so a tuple's prefix encodes to a byte prefix
//! and prefix scans work. postcard is never used for keys: its varints do not sort.

mod order;

use serde_json::{Map, Number, Value};

pub use order::compare;

const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const NUMBER: u8 = 0x04;
const STRING: u8 = 0x05;
const ARRAY: u8 = 0x06;
const OBJECT: u8 = 0x07;
const END: u8 = 0x00;

/// Encode a tuple of values as an order-preserving key.
pub fn encode(tuple: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * tuple.len());
    encode_into(tuple, &mut out);
    out
}

/// Append [`encode`]`(tuple)` to `out`: a tuple's encoding is its values' encodings end to end.
pub fn encode_into(tuple: &[Value], out: &mut Vec<u8>) {
    for v in tuple {
        encode_value(v, out);
    }
}

/// Append one value's encoding to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => encode_number(n, out),
        Value::String(s) => {
            out.push(STRING);
            encode_str(s, out);
        }
        Value::Array(items) => {
            out.push(ARRAY);
            items.iter().for_each(|i| encode_value(i, out));
            out.push(END);
        }
        Value::Object(map) => {
            out.push(OBJECT);
            for (k, v) in map {
                // Tagged like any string, so a key never starts with the terminator.
                out.push(STRING);
                encode_str(k, out);
                encode_value(v, out);
            }
            out.push(END);
        }
    }
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    out.push(NUMBER);
    // The nearest f64 orders every number but ties integers beyond 2^53; the exact remainder
    // (at most 2^11 for 64-bit integers) breaks those ties.
    let (approx, remainder) = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => split_int(i128::from(i)),
        (None, Some(u)) => split_int(i128::from(u)),
        _ => (n.as_f64().unwrap_or(0.0), 0),
    };
    // -0.0 equals 0.0.
    let approx = if approx == 0.0 { 0.0 } else { approx };
    let bits = approx.to_bits();
    let sortable = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    out.extend_from_slice(&sortable.to_be_bytes());
    out.extend_from_slice(&((remainder as u32) ^ (1 << 31)).to_be_bytes());
}

fn split_int(i: i128) -> (f64, i32) {
    let approx = i as f64;
    // `approx` is within 2^11 of `i`, and below 2^64 in magnitude, so both casts are exact.
    (approx, (i - approx as i128) as i32)
}

/// Decode a key made by [`encode`] back into its tuple.
///
/// # Errors
/// A description of the first malformed byte; keys written by `encode` always decode.
pub fn decode(mut key: &[u8]) -> Result<Vec<Value>, String> {
    let mut tuple = Vec::new();
    while !key.is_empty() {
        tuple.push(decode_value(&mut key)?);
    }
    Ok(tuple)
}

fn take<'a>(key: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if key.len() < n {
        return Err(format!("key ends {} bytes early", n - key.len()));
    }
    let (head, tail) = key.split_at(n);
    *key = tail;
    Ok(head)
}

fn decode_value(key: &mut &[u8]) -> Result<Value, String> {
    let tag = take(key, 1)?[0];
    Ok(match tag {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        NUMBER => decode_number(key)?,
        STRING => Value::String(decode_str(key)?),
        ARRAY => {
            let mut items = Vec::new();
            while key.first() != Some(&END) {
                items.push(decode_value(key)?);
            }
            take(key, 1)?;
            Value::Array(items)
        }
        OBJECT => {
            let mut map = Map::new();
            while key.first() != Some(&END) {
                let Value::String(k) = decode_value(key)? else {
                    return Err("an object key in a key is not a string".into());
                };
                map.insert(k, decode_value(key)?);
            }
            take(key, 1)?;
            Value::Object(map)
        }
        other => return Err(format!("unknown key tag {other:#04x}")),
    })
}

fn decode_str(key: &mut &[u8]) -> Result<String, String> {
    let mut bytes = Vec::new();
    loop {
        match take(key, 1)?[0] {
            0x00 => match take(key, 1)?[0] {
                0x01 => break,
                0xFF => bytes.push(0),
                other => return Err(format!("bad string escape 0x00 {other:#04x}")),
            },
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|e| format!("key string is not UTF-8: {e}"))
}

fn decode_number(key: &mut &[u8]) -> Result<Value, String> {
    let sortable = u64::from_be_bytes(take(key, 8)?.try_into().map_err(|_| "short number")?);
    let remainder = u32::from_be_bytes(take(key, 4)?.try_into().map_err(|_| "short number")?);
    let bits = if sortable >> 63 == 1 {
        sortable ^ (1 << 63)
    } else {
        !sortable
    };
    let approx = f64::from_bits(bits);
    let remainder = (remainder ^ (1 << 31)) as i32;
    if approx.fract() == 0.0 && approx.abs() <= 2f64.powi(64) {
        let exact = approx as i128 + i128::from(remainder);
        if let Ok(i) = i64::try_from(exact) {
            return Ok(Value::from(i));
        }
        if let Ok(u) = u64::try_from(exact) {
            return Ok(Value::from(u));
        }
    }
    Number::from_f64(approx)
        .map(Value::Number)
        .ok_or_else(|| "non-finite number in key".into())
}

#[cfg(test)]
mod tests;
