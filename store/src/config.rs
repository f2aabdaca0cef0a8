//! `flume.toml`: how a database directory's log is opened and which views it keeps.

use std::collections::BTreeSet;
use std::path::Path;

use flume_log_offset::Durability;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The file name of the configuration in a database directory.
pub const CONFIG_FILE: &str = "flume.toml";

/// A path into a document: object keys and array indexes, e.g. `["value", "author"]`.
pub type DocPath = Vec<String>;

/// The whole configuration. A directory without `flume.toml` uses [`Config::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// How the log is opened.
    #[serde(default)]
    pub log: LogConfig,
    /// The views, in order.
    #[serde(default, rename = "view")]
    pub views: Vec<ViewSpec>,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LogConfig {
    /// `"sync"` (acknowledge after fdatasync; the default) or `"buffered"` (acknowledge after
    /// write: survives a crash of the process, not a power loss).
    #[serde(default = "sync")]
    pub durability: DurabilityName,
    /// Segment file size in bytes.
    #[serde(default = "segment_size")]
    pub segment_size: u64,
    /// The largest record accepted, in bytes.
    #[serde(default = "max_record_size")]
    pub max_record_size: u32,
    /// Keep at least this many bytes of the newest records: while the database is open (`flume
    /// serve`), older whole segments are deleted (see [`Store::retire_before`]). `None` (the
    /// default) keeps everything. Written as bytes or with a unit: `"10GiB"`.
    ///
    /// [`Store::retire_before`]: crate::Store::retire_before
    #[serde(
        default,
        deserialize_with = "crate::size::deserialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub retain: Option<u64>,
    /// Seconds between two checks of `retain` (default 60).
    #[serde(default = "retain_every")]
    pub retain_every: u64,
}

/// The durability modes by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityName {
    /// See [`Durability::Sync`].
    Sync,
    /// See [`Durability::Buffered`].
    Buffered,
}

impl From<DurabilityName> for Durability {
    fn from(d: DurabilityName) -> Durability {
        match d {
            DurabilityName::Sync => Durability::Sync,
            DurabilityName::Buffered => Durability::Buffered,
        }
    }
}

fn sync() -> DurabilityName {
    DurabilityName::Sync
}
fn segment_size() -> u64 {
    64 << 20
}
fn max_record_size() -> u32 {
    16 << 20
}
fn retain_every() -> u64 {
    60
}
fn one() -> u32 {
    1
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            durability: sync(),
            segment_size: segment_size(),
            max_record_size: max_record_size(),
            retain: None,
            retain_every: retain_every(),
        }
    }
}

/// One `[[view]]`: its name, its kind and the kind's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawView", into = "RawView")]
#[non_exhaustive]
pub struct ViewSpec {
    /// A unique name (letters, digits, `_`, `-`).
    pub name: String,
    /// Bump it to rebuild the view after changing its settings.
    pub version: u32,
    /// What the view is.
    pub kind: ViewKind,
}

/// A `[[view]]` table as written: every field any kind takes, checked against the kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: String,
    kind: String,
    #[serde(default = "one")]
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<DocPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paths: Option<Vec<DocPath>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    indexes: Option<Vec<QueryIndex>>,
}

/// One index of a query view: `{ name = "tya", paths = [["value", "type"], ["value", "author"]] }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryIndex {
    /// The index's name, shown by `flume query --explain`.
    pub name: String,
    /// The key's paths, in order.
    pub paths: Vec<DocPath>,
}

impl TryFrom<RawView> for ViewSpec {
    type Error = String;

    fn try_from(raw: RawView) -> Result<Self, String> {
        let name = raw.name;
        let need_path = |path: Option<DocPath>| {
            path.ok_or_else(|| {
                format!(
                    "view {name:?}: kind {:?} needs `path = [\"key\", ...]`",
                    raw.kind
                )
            })
        };
        let kind = match raw.kind.as_str() {
            "count" => ViewKind::Count,
            "kv" => ViewKind::Kv,
            "sum" => ViewKind::Sum {
                path: need_path(raw.path.clone())?,
            },
            "min" => ViewKind::Min {
                path: need_path(raw.path.clone())?,
            },
            "max" => ViewKind::Max {
                path: need_path(raw.path.clone())?,
            },
            "count_by" => ViewKind::CountBy {
                path: need_path(raw.path.clone())?,
            },
            "query" => ViewKind::Query {
                indexes: raw.indexes.clone().unwrap_or_default(),
            },
            "index" => ViewKind::Index {
                paths: raw.paths.clone().ok_or_else(|| {
                    format!("view {name:?}: an index needs `paths = [[\"key\"], ...]`")
                })?,
            },
            other => {
                return Err(format!(
                    "view {name:?}: unknown kind {other:?}; the kinds are count, sum, min, max, count_by, index, query, kv"
                ));
            }
        };
        let takes_path = matches!(
            kind,
            ViewKind::Sum { .. }
                | ViewKind::Min { .. }
                | ViewKind::Max { .. }
                | ViewKind::CountBy { .. }
        );
        if raw.path.is_some() && !takes_path {
            return Err(format!(
                "view {name:?}: kind {:?} takes no `path`",
                raw.kind
            ));
        }
        if raw.paths.is_some() && !matches!(kind, ViewKind::Index { .. }) {
            return Err(format!(
                "view {name:?}: kind {:?} takes no `paths`",
                raw.kind
            ));
        }
        Ok(ViewSpec {
            name,
            version: raw.version,
            kind,
        })
    }
}

impl From<ViewSpec> for RawView {
    fn from(v: ViewSpec) -> RawView {
        let mut raw = RawView {
            name: v.name,
            kind: String::new(),
            version: v.version,
            path: None,
            paths: None,
            indexes: None,
        };
        raw.kind = match v.kind {
            ViewKind::Count => "count",
            ViewKind::Kv => "kv",
            ViewKind::Sum { path } => (raw.path.insert(path), "sum").1,
            ViewKind::Min { path } => (raw.path.insert(path), "min").1,
            ViewKind::Max { path } => (raw.path.insert(path), "max").1,
            ViewKind::CountBy { path } => (raw.path.insert(path), "count_by").1,
            ViewKind::Index { paths } => (raw.paths.insert(paths), "index").1,
            ViewKind::Query { indexes } => (raw.indexes.insert(indexes), "query").1,
        }
        .to_string();
        raw
    }
}

/// The kinds of views a directory can declare.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ViewKind {
    /// The number of records.
    Count,
    /// The sum of the numbers at `path`.
    Sum {
        /// Where the number is.
        path: DocPath,
    },
    /// The smallest value at `path` (in key order).
    Min {
        /// Where the value is.
        path: DocPath,
    },
    /// The largest value at `path` (in key order).
    Max {
        /// Where the value is.
        path: DocPath,
    },
    /// How many records have each value at `path`.
    CountBy {
        /// Where the value is.
        path: DocPath,
    },
    /// An index of the records having every path, keyed by their values in order.
    Index {
        /// The key's paths.
        paths: Vec<DocPath>,
    },
    /// Map-filter-reduce queries (`flume query`), using these indexes when they help.
    Query {
        /// The declared indexes.
        indexes: Vec<QueryIndex>,
    },
    /// The collection/member key-value view.
    Kv,
}

impl ViewKind {
    /// The kind's name, as `flume.toml` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            ViewKind::Count => "count",
            ViewKind::Sum { .. } => "sum",
            ViewKind::Min { .. } => "min",
            ViewKind::Max { .. } => "max",
            ViewKind::CountBy { .. } => "count_by",
            ViewKind::Index { .. } => "index",
            ViewKind::Query { .. } => "query",
            ViewKind::Kv => "kv",
        }
    }
}

/// The configuration `flume init` writes: the defaults, explained.
pub const TEMPLATE: &str = r#"# flume.toml: how this database directory's log is opened and which views it keeps.
# Views are derived from the log and can be rebuilt at any time (`flume rebuild`); after changing a
# view's settings, bump its `version` and it is rebuilt on the next open.

[log]
# "sync": an append is acknowledged after fdatasync (survives power loss; the default).
# "buffered": acknowledged after write (survives a crash of the process, not of the machine).
durability = "sync"
# segment_size = 67108864     # bytes per segment file
# max_record_size = 16777216  # the largest record accepted, in bytes
# Retention: keep at least this much of the newest records; while the database is open (`flume
# serve`) older whole segment files are deleted, checked every `retain_every` seconds. Views keep
# what they derived from deleted records; a rebuild sees only what remains. Default: keep all.
# retain = "10GiB"
# retain_every = 60

# The collection/member key-value view (`flume kv`, memcached).
[[view]]
name = "kv"
kind = "kv"

# The number of records.
[[view]]
name = "count"
kind = "count"

# Map-filter-reduce queries (`flume query`). Without indexes every query scans the log; an index
# over the paths a query filters on makes selective queries fast (`flume query --explain`).
[[view]]
name = "query"
kind = "query"
# indexes = [
#   { name = "type", paths = [["type"]] },
#   { name = "author_time", paths = [["author"], ["timestamp"]] },
# ]

# Other kinds (paths are lists of object keys):
# [[view]]
# name = "posts_by_author"
# kind = "index"
# paths = [["author"], ["timestamp"]]
#
# [[view]]
# name = "types"
# kind = "count_by"          # also: "sum", "min", "max" of a path
# path = ["type"]
"#;

impl Default for Config {
    /// What a directory without `flume.toml` gets: the template's log settings and views.
    fn default() -> Self {
        match toml::from_str(TEMPLATE) {
            Ok(config) => config,
            Err(e) => unreachable!("the built-in template parses: {e}"),
        }
    }
}

impl Config {
    /// Read `flume.toml` in `dir`, or the defaults when there is none.
    ///
    /// # Errors
    /// [`StoreError::Config`] naming the file, line and problem.
    pub fn load(dir: &Path) -> Result<Config, StoreError> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        Config::parse(&text).map_err(|message| StoreError::Config { path, message })
    }

    /// Parse and check configuration text.
    ///
    /// # Errors
    /// A message saying what is wrong and where.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.log.retain_every == 0 {
            return Err("[log] retain_every: use a number of seconds, at least 1".to_string());
        }
        let mut names = BTreeSet::new();
        for v in &self.views {
            let ok = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(format!(
                    "view name {:?}: use letters, digits, `_` and `-`",
                    v.name
                ));
            }
            if !names.insert(v.name.as_str()) {
                return Err(format!(
                    "two views are named {:?}: names must be unique",
                    v.name
                ));
            }
            let paths: Vec<&DocPath> = match &v.kind {
                ViewKind::Sum { path }
                | ViewKind::Min { path }
                | ViewKind::Max { path }
                | ViewKind::CountBy { path } => {
                    vec![path]
                }
                ViewKind::Index { paths } if paths.is_empty() => {
                    return Err(format!(
                        "view {:?}: an index needs at least one path",
                        v.name
                    ));
                }
                ViewKind::Index { paths } => paths.iter().collect(),
                ViewKind::Query { indexes } => {
                    let mut seen = BTreeSet::new();
                    for ix in indexes {
                        if !seen.insert(ix.name.as_str()) {
                            return Err(format!(
                                "view {:?}: two indexes are named {:?}",
                                v.name, ix.name
                            ));
                        }
                        if ix.paths.is_empty() {
                            return Err(format!(
                                "view {:?}: index {:?} needs at least one path",
                                v.name, ix.name
                            ));
                        }
                    }
                    indexes.iter().flat_map(|ix| ix.paths.iter()).collect()
                }
                ViewKind::Count | ViewKind::Kv => vec![],
            };
            if paths.iter().any(|p| p.is_empty()) {
                return Err(format!("view {:?}: a path needs at least one key", v.name));
            }
        }
        if self.views.iter().filter(|v| v.kind == ViewKind::Kv).count() > 1 {
            return Err("only one key-value view is allowed".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_default() {
        let c = Config::default();
        assert_eq!(c.log.durability, DurabilityName::Sync);
        let names: Vec<_> = c.views.iter().map(|v| (v.name.as_str(), &v.kind)).collect();
        let query = ViewKind::Query { indexes: vec![] };
        assert_eq!(
            names,
            [
                ("kv", &ViewKind::Kv),
                ("count", &ViewKind::Count),
                ("query", &query)
            ]
        );
        assert_eq!(Config::parse(TEMPLATE).unwrap(), c);
    }

    #[test]
    fn views_of_every_kind_parse() {
        let text = r#"
            [log]
            durability = "buffered"
            [[view]]
            name = "by_author"
            kind = "index"
            paths = [["author"], ["ts"]]
            version = 3
            [[view]]
            name = "total"
            kind = "sum"
            path = ["n"]
            [[view]]
            name = "types"
            kind = "count_by"
            path = ["type"]
            [[view]]
            name = "q"
            kind = "query"
            indexes = [{ name = "tya", paths = [["value", "type"], ["value", "author"]] }]
        "#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.log.durability, DurabilityName::Buffered);
        assert_eq!(c.views[0].version, 3);
        assert_eq!(
            c.views[0].kind,
            ViewKind::Index {
                paths: vec![vec!["author".into()], vec!["ts".into()]]
            }
        );
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        for (text, needle) in [
            ("[[view]]\nname = \"a\"\nkind = \"nope\"", "unknown kind"),
            ("[[view]]\nname = \"a\"\nkind = \"sum\"", "needs `path"),
            (
                "[[view]]\nname = \"a\"\nkind = \"count\"\npath = [\"x\"]",
                "takes no `path`",
            ),
            (
                "[[view]]\nname = \"a\"\nkind = \"count\"\ncolour = 1",
                "colour",
            ),
            (
                "[[view]]\nname = \"a\"\nkind = \"count\"\n[[view]]\nname = \"a\"\nkind = \"count\"",
                "unique",
            ),
            ("[[view]]\nname = \"a b\"\nkind = \"count\"", "letters"),
            (
                "[[view]]\nname = \"i\"\nkind = \"index\"\npaths = []",
                "at least one path",
            ),
            (
                "[[view]]\nname = \"s\"\nkind = \"sum\"\npath = []",
                "at least one key",
            ),
            ("[log]\ndurability = \"fast\"", "fast"),
            ("[log]\nspeed = 1", "speed"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}
