//! Index selection: score the first `$filter` against every index, pick the best, compute the
//! tightest key range; the whole pipeline still runs on the candidates, so results never depend
//! on the plan.
//!
//! An index holds only the records that have all its paths, so it can serve a query only when the
//! filter rejects every record lacking one of them (the rule at each path fails on a missing
//! value). Walking the index's paths in order, an exact value (a primitive or `$eq`) scores 2 and
//! continues; a range (`$gt/$gte/$lt/$lte`, combinable) or a `$prefix` scores 1 and stops. The
//! highest score wins; ties go to the index with fewer paths, then to the first declared.

use std::cmp::Ordering;
use std::ops::Bound;

use flume_view_index::key;
use serde_json::{Value, json};

use crate::path::Path;
use crate::query::{Op, Query, Rule, Stage};

/// A declared index: a name and the paths whose values make its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    /// The index's name (its table is `query:<view>:<name>`).
    pub name: String,
    /// The key's paths, in order.
    pub paths: Vec<Path>,
}

impl IndexSpec {
    /// An index named `name` over `paths`.
    pub fn new(name: &str, paths: impl IntoIterator<Item = Path>) -> Self {
        IndexSpec {
            name: name.to_string(),
            paths: paths.into_iter().collect(),
        }
    }
}

/// A range of encoded index keys.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// One side of a range: the bound and whether it is inclusive.
type Side = Option<(Value, bool)>;

/// Where results come from and in which order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// The index used, by position, with its key range.
    pub(crate) index: Option<(usize, KeyRange)>,
    /// True when the results come in the index's order and a final `$sort` is already done.
    pub(crate) index_order: bool,
    /// For `explain`.
    pub(crate) explain: Value,
}

/// What the filter says about one path.
enum Leaf {
    Exact(Value),
    Range {
        lower: Option<(Value, bool)>,
        upper: Option<(Value, bool)>,
    },
    Prefix(String),
    Other,
}

fn rule_at<'a>(rule: &'a Rule, path: &Path) -> Option<&'a Rule> {
    path.0.iter().try_fold(rule, |r, key| match r {
        Rule::Fields(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, r)| r),
        _ => None,
    })
}

fn classify(rule: &Rule) -> Leaf {
    match rule {
        Rule::Eq(v) => Leaf::Exact(v.clone()),
        Rule::Ops(ops) => {
            if let Some(v) = ops.iter().find_map(|o| {
                if let Op::Eq(v) = o {
                    Some(v.clone())
                } else {
                    None
                }
            }) {
                return Leaf::Exact(v);
            }
            let (mut lower, mut upper): (Side, Side) = (None, None);
            for op in ops {
                if let Op::Cmp(dir, inclusive, v) = op {
                    let slot = if *dir == Ordering::Greater {
                        &mut lower
                    } else {
                        &mut upper
                    };
                    let tighter = match slot {
                        None => true,
                        Some((cur, _)) => key::compare(v, cur) == *dir,
                    };
                    if tighter {
                        *slot = Some((v.clone(), *inclusive));
                    }
                }
            }
            if lower.is_some() || upper.is_some() {
                return Leaf::Range { lower, upper };
            }
            match ops.iter().find_map(|o| {
                if let Op::Prefix(p) = o {
                    Some(p.clone())
                } else {
                    None
                }
            }) {
                Some(p) => Leaf::Prefix(p),
                None => Leaf::Other,
            }
        }
        _ => Leaf::Other,
    }
}

/// The smallest byte string above every string starting with `p`, if any.
fn successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn enc(prefix: &[u8], v: &Value) -> Vec<u8> {
    let mut out = prefix.to_vec();
    key::encode_value(v, &mut out);
    out
}

/// The key range of an index for exact values `prefix` then `leaf` on the next path.
fn bounds(prefix: &[u8], leaf: &Leaf) -> KeyRange {
    let all = |p: &[u8]| {
        (
            Bound::Included(p.to_vec()),
            successor(p).map_or(Bound::Unbounded, Bound::Excluded),
        )
    };
    match leaf {
        Leaf::Range { lower, upper } => {
            // Ranges stay within the bound's type: the first byte of its encoding is the type tag.
            let typed = lower
                .as_ref()
                .or(upper.as_ref())
                .map(|(v, _)| enc(&[], v)[0])
                .unwrap_or(0);
            let lo = match lower {
                Some((v, true)) => Bound::Included(enc(prefix, v)),
                Some((v, false)) => {
                    successor(&enc(prefix, v)).map_or(Bound::Unbounded, Bound::Included)
                }
                None => Bound::Included([prefix, &[typed]].concat()),
            };
            let hi = match upper {
                Some((v, true)) => {
                    successor(&enc(prefix, v)).map_or(Bound::Unbounded, Bound::Excluded)
                }
                Some((v, false)) => Bound::Excluded(enc(prefix, v)),
                None => Bound::Excluded([prefix, &[typed + 1]].concat()),
            };
            (lo, hi)
        }
        Leaf::Prefix(p) => {
            // A string starting with `p` encodes as the string tag then `p`'s escaped bytes.
            let mut start = enc(prefix, &Value::from(p.as_str()));
            start.truncate(start.len() - 2);
            all(&start)
        }
        Leaf::Exact(_) | Leaf::Other => all(prefix),
    }
}

/// Plan `query` over `indexes`.
pub(crate) fn plan(query: &Query, indexes: &[IndexSpec], force_scan: bool) -> Plan {
    let filter = match query.stages.first() {
        Some(Stage::Filter(rule)) => Some(rule),
        _ => None,
    };
    let mut scores = Vec::with_capacity(indexes.len());
    let mut best: Option<(usize, Scored)> = None;
    for (i, ix) in indexes.iter().enumerate() {
        let Some(scored) = filter.and_then(|f| score(f, ix)) else {
            scores.push(json!({"index": ix.name, "usable": false, "score": 0}));
            continue;
        };
        scores.push(json!({"index": ix.name, "usable": true, "score": scored.score}));
        let better = match &best {
            None => scored.score > 0,
            Some((j, b)) => {
                scored.score > b.score
                    || (scored.score == b.score && ix.paths.len() < indexes[*j].paths.len())
            }
        };
        if better {
            best = Some((i, scored));
        }
    }
    let chosen = if force_scan { None } else { best };
    let Some((i, scored)) = chosen else {
        let explain = json!({"plan": "scan", "order": "log", "scores": scores});
        return Plan {
            index: None,
            index_order: false,
            explain,
        };
    };
    let index_order = sort_after_filters(query).is_some_and(|p| *p == indexes[i].paths);
    let explain = json!({
        "plan": "index",
        "index": indexes[i].name,
        "paths": indexes[i].paths.iter().map(Path::to_json).collect::<Vec<_>>(),
        "bounds": scored.detail,
        "order": if index_order { "index" } else { "log" },
        "scores": scores,
    });
    Plan {
        index: Some((i, scored.range)),
        index_order,
        explain,
    }
}

/// How well an index serves a filter.
struct Scored {
    score: u32,
    range: KeyRange,
    /// The exact values and the range, for `explain`.
    detail: Value,
}

fn score(filter: &Rule, ix: &IndexSpec) -> Option<Scored> {
    // Usable only if the filter rejects records lacking any of the index's paths.
    let rules: Vec<&Rule> = ix
        .paths
        .iter()
        .map(|p| rule_at(filter, p))
        .collect::<Option<_>>()?;
    if rules.iter().any(|r| r.matches(None)) {
        return None;
    }
    let mut prefix = Vec::new();
    let mut exact = Vec::new();
    let mut score = 0;
    let mut last = Leaf::Other;
    for rule in rules {
        match classify(rule) {
            Leaf::Exact(v) => {
                key::encode_value(&v, &mut prefix);
                exact.push(v);
                score += 2;
            }
            leaf @ (Leaf::Range { .. } | Leaf::Prefix(_)) => {
                score += 1;
                last = leaf;
                break;
            }
            Leaf::Other => break,
        }
    }
    let side = |s: &Side| {
        s.as_ref()
            .map(|(v, inc)| json!({"value": v, "inclusive": inc}))
    };
    let range = match &last {
        Leaf::Range { lower, upper } => json!({"lower": side(lower), "upper": side(upper)}),
        Leaf::Prefix(p) => json!({"prefix": p}),
        _ => Value::Null,
    };
    Some(Scored {
        score,
        range: bounds(&prefix, &last),
        detail: json!({"exact": exact, "range": range}),
    })
}

/// The paths of a final `$sort` preceded only by filters, whose order an index can give.
fn sort_after_filters(query: &Query) -> Option<&Vec<Path>> {
    let (last, before) = query.stages.split_last()?;
    match last {
        Stage::Sort(paths) if before.iter().all(|s| matches!(s, Stage::Filter(_))) => Some(paths),
        _ => None,
    }
}
