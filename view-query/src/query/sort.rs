//! `$sort`: by one path or a list of paths, ascending in key order (absent values first); the
//! `reverse` option sorts descending. The sort is stable.

use std::cmp::Ordering;

use flume_view_index::key;
use serde_json::Value;

use crate::error::Bad;
use crate::path::Path;

pub(crate) fn parse(v: &Value) -> Result<Vec<Path>, Bad> {
    let paths = match v {
        // A list of paths (each a key or an array of keys), or one path given as an array of keys.
        Value::Array(items) if items.iter().any(Value::is_array) => {
            items.iter().map(Path::parse).collect::<Result<Vec<_>, _>>()
        }
        other => Path::parse(other).map(|p| vec![p]),
    };
    paths.map_err(|m| Bad::new(format!("$sort: {m}")))
}

pub(crate) fn sort<S>(values: &mut [(S, Value)], paths: &[Path], reverse: bool) {
    values.sort_by(|(_, a), (_, b)| {
        let o = compare(a, b, paths);
        if reverse { o.reverse() } else { o }
    });
}

fn compare(a: &Value, b: &Value, paths: &[Path]) -> Ordering {
    for p in paths {
        let o = match (p.get(a), p.get(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => key::compare(x, y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
