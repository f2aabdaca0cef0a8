//! The query language: a pipeline of `$filter`, `$map`, `$reduce` and `$sort` stages, in any
//! order and number, written in JSON.

mod filter;
mod map;
mod reduce;
mod sort;

use flume_core::Seq;
use serde_json::Value;

pub(crate) use filter::{Op, Rule};
pub(crate) use map::MapRule;
pub(crate) use reduce::Reduce;

use crate::error::{At, Bad, QueryError};
use crate::path::Path;

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub(crate) stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stage {
    Filter(Rule),
    Map(MapRule),
    Reduce(Reduce),
    Sort(Vec<Path>),
}

impl Stage {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Stage::Filter(_) => "$filter",
            Stage::Map(_) => "$map",
            Stage::Reduce(_) => "$reduce",
            Stage::Sort(_) => "$sort",
        }
    }

    /// Stages that need every value before they can yield one.
    pub(crate) fn blocking(&self) -> bool {
        matches!(self, Stage::Reduce(_) | Stage::Sort(_))
    }
}

/// Options of a query run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryOpts {
    /// At most this many results.
    pub limit: Option<usize>,
    /// Newest records first (and, with a final `$sort`, descending).
    pub reverse: bool,
    /// After the current results, keep yielding results of records appended later.
    pub live: bool,
    /// With `live`, `false` skips the records already in the log.
    pub old: bool,
    /// Ignore the indexes and scan the log (for tests and comparisons).
    pub force_scan: bool,
}

impl QueryOpts {
    /// Old records, oldest first, no limit, not live.
    pub fn new() -> Self {
        QueryOpts {
            old: true,
            ..Self::default()
        }
    }
    /// At most `n` results.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// Newest first.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// Keep yielding results for new records.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }
    /// Whether to include the records already in the log.
    pub fn old(mut self, old: bool) -> Self {
        self.old = old;
        self
    }
    /// Scan the log instead of using an index.
    pub fn force_scan(mut self) -> Self {
        self.force_scan = true;
        self
    }
}

impl Query {
    /// Parse a query: an array of stages, or one stage. Each stage is an object with exactly
    /// one of `$filter`, `$map`, `$reduce`, `$sort`.
    ///
    /// # Errors
    /// [`QueryError::Malformed`] naming the stage (from 1) and the operator at fault.
    pub fn parse(v: &Value) -> Result<Query, QueryError> {
        let stages: Vec<&Value> = match v {
            Value::Array(stages) => stages.iter().collect(),
            one @ Value::Object(_) => vec![one],
            other => {
                return Err(
                    Bad::new(format!("a query is an array of stages, not {other}")).at(0, "query"),
                );
            }
        };
        let mut parsed = Vec::with_capacity(stages.len());
        for (i, s) in stages.iter().enumerate() {
            parsed.push(parse_stage(i + 1, s)?);
        }
        Ok(Query { stages: parsed })
    }

    /// Parse JSON text.
    ///
    /// # Errors
    /// [`QueryError::Malformed`], for bad JSON too.
    pub fn from_json(text: &str) -> Result<Query, QueryError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Bad::new(format!("not JSON: {e}")).at(0, "query"))?;
        Query::parse(&v)
    }

    /// Refuse options the pipeline cannot honour (`live` with a `$reduce` or `$sort`).
    ///
    /// # Errors
    /// [`QueryError::Malformed`] naming the stage.
    pub fn check(&self, opts: &QueryOpts) -> Result<(), QueryError> {
        if opts.live
            && let Some((i, s)) = self.stages.iter().enumerate().find(|(_, s)| s.blocking())
        {
            let message =
                "a live query can only $filter and $map: run it without live, or drop the stage";
            return Err(QueryError::Malformed {
                at: At {
                    stage: i + 1,
                    kind: s.name().into(),
                    operator: None,
                },
                message: message.into(),
            });
        }
        Ok(())
    }
}

fn parse_stage(n: usize, v: &Value) -> Result<Stage, QueryError> {
    let Value::Object(map) = v else {
        return Err(Bad::new(format!(
            "a stage is an object like {{\"$filter\": ...}}, not {v}"
        ))
        .at(n, "stage"));
    };
    let mut entries = map.iter();
    let (Some((kind, arg)), None) = (entries.next(), entries.next()) else {
        let keys: Vec<_> = map.keys().map(String::as_str).collect();
        let message = format!(
            "a stage has exactly one of $filter, $map, $reduce, $sort; found [{}]",
            keys.join(", ")
        );
        return Err(Bad::new(message).at(n, "stage"));
    };
    let stage = match kind.as_str() {
        "$filter" => Rule::parse(arg).map(Stage::Filter),
        "$map" => MapRule::parse(arg).map(Stage::Map),
        "$reduce" => Reduce::parse(arg).map(Stage::Reduce),
        "$sort" => sort::parse(arg).map(Stage::Sort),
        other => {
            let message =
                format!("{other:?} is not a stage; the stages are $filter, $map, $reduce, $sort");
            return Err(Bad::new(message).at(n, "stage"));
        }
    };
    stage.map_err(|b| b.at(n, kind))
}

/// Run stages on values in memory; each value keeps its record's seq until a `$reduce`.
pub(crate) fn run_stages(
    stages: &[Stage],
    mut values: Vec<(Option<Seq>, Value)>,
    reverse: bool,
) -> Vec<(Option<Seq>, Value)> {
    for stage in stages {
        values = match stage {
            Stage::Filter(rule) => values
                .into_iter()
                .filter(|(_, v)| rule.matches(Some(v)))
                .collect(),
            Stage::Map(rule) => values
                .into_iter()
                .filter_map(|(s, v)| rule.apply(&v).map(|m| (s, m)))
                .collect(),
            Stage::Reduce(r) => r
                .apply(values.into_iter().map(|(_, v)| v).collect())
                .into_iter()
                .map(|v| (None, v))
                .collect(),
            Stage::Sort(paths) => {
                sort::sort(&mut values, paths, reverse);
                values
            }
        };
    }
    values
}

/// Run the streaming stages (filter, map) on one value; `None` when it is dropped.
pub(crate) fn stream_stages(stages: &[Stage], v: &Value) -> Option<Value> {
    let mut out: Option<Value> = None;
    for stage in stages {
        let cur = out.as_ref().unwrap_or(v);
        match stage {
            Stage::Filter(rule) => {
                if !rule.matches(Some(cur)) {
                    return None;
                }
            }
            Stage::Map(rule) => out = Some(rule.apply(cur)?),
            Stage::Reduce(_) | Stage::Sort(_) => {
                unreachable!("only streaming stages are run one by one")
            }
        }
    }
    Some(out.unwrap_or_else(|| v.clone()))
}
