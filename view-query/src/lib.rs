//! Map-filter-reduce queries over a Flume log, with automatic index selection.
//!
//! A [`QueryView`] declares named indexes, each a list of document paths (as flumeview-query's
//! `{key: "tya", value: [["value","type"], ["value","author"]]}`); every record that has all of
//! an index's paths gets an entry. A [`Query`] is a JSON pipeline of `$filter`, `$map`,
//! `$reduce` and `$sort` stages. When a query starts with a `$filter`, the planner scores it
//! against every index (exact values beat ranges), reads the best index's tightest key range,
//! and runs the whole pipeline on those candidates; otherwise it scans the log. Either way the
//! results are the same: log order (newest first with `reverse`) unless the pipeline ends with
//! `$sort`. [`QueryReads::explain`] shows the plan.
//!
//! It is not SQL and has no joins: one pipeline over one log.
//!
//! ```
//! use flume_core::{Db, Document, Postcard};
//! use flume_log_memory::MemoryLog;
//! use flume_view_index::Lmdb;
//! use flume_view_query::{IndexSpec, Path, Query, QueryOpts, QueryReads, QueryView};
//! use futures::TryStreamExt;
//! use serde_json::json;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db: Db<Document> = Db::open(MemoryLog::new(), Postcard).await?;
//! let indexes = vec![IndexSpec::new("type_author", [Path::from(["type"]), Path::from(["author"])])];
//! let view = db.use_view("query", QueryView::new(&Lmdb::open(dir.path())?, "query", 1, indexes)).await?;
//! for (t, a, n) in [("post", "@amy", 1), ("like", "@bob", 2), ("post", "@bob", 3), ("post", "@amy", 4)] {
//!     db.append(Document(json!({"type": t, "author": a, "n": n}))).await?;
//! }
//! let query = Query::parse(&json!([
//!     {"$filter": {"type": "post", "author": "@amy"}},
//!     {"$map": "n"}
//! ]))?;
//! assert_eq!(view.explain(&query, &QueryOpts::new())["index"], "type_author");
//! let ns: Vec<_> = view.query(&query, QueryOpts::new()).map_ok(|r| r.value).try_collect().await?;
//! assert_eq!(ns, [json!(1), json!(4)]);
//!
//! let totals = Query::parse(&json!({"$reduce": {"author": "author", "total": {"$sum": "n"}}}))?;
//! let rows: Vec<_> = view.query(&totals, QueryOpts::new()).map_ok(|r| r.value).try_collect().await?;
//! assert_eq!(rows, [json!({"author": "@amy", "total": 5}), json!({"author": "@bob", "total": 5})]);
//! db.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod path;
mod plan;
mod query;
mod run;
mod view;

pub use error::{At, QueryError};
pub use path::Path;
pub use plan::IndexSpec;
pub use query::{Query, QueryOpts};
pub use run::{QueryItem, QueryReads};
pub use view::{AsJson, QueryView, ToJson};
