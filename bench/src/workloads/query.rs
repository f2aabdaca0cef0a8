//! A 0.1%-selective query over the log: through the index the planner picks, and as a forced
//! full scan of the same data in the same run.

use std::sync::Arc;
use std::time::Instant;

use anyhow::ensure;
use flume_core::{Db, DbOptions, Document, Postcard};
use flume_log_offset::{Durability, OffsetLog, Options};
use flume_view_index::Lmdb;
use flume_view_query::{IndexSpec, Path, Query, QueryOpts, QueryReads, QueryView};
use futures::TryStreamExt;
use serde_json::json;

use super::{Ctx, append_records};
use crate::{Metric, Target};

/// One author in a thousand: the query selects 0.1% of the records.
const AUTHORS: u64 = 1000;

pub(crate) async fn query(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("query");
    let log = OffsetLog::open_with(
        dir.join("log"),
        Options::new().durability(Durability::Buffered),
    )?;
    let db: Db<Document> =
        Db::open_with(Arc::new(log), Arc::new(Postcard), DbOptions::default()).await?;
    let lmdb = Lmdb::open(dir.join("views"))?;
    let indexes = vec![IndexSpec::new("author", [Path::from(["author"])])];
    let view = db
        .use_view("query", QueryView::new(&lmdb, "query", 1, indexes))
        .await?;
    append_records(&db, ctx.records, |k| {
        Document(json!({"author": format!("@author{}", k % AUTHORS), "type": "post", "n": k, "text": "a hundred bytes or so of text"}))
    })
    .await?;
    view.ready().await?;
    let q = Query::parse(&json!([{"$filter": {"author": "@author7"}}, {"$map": "n"}]))?;
    let expected = ctx.records.div_ceil(AUTHORS).min(ctx.records);
    let plan = view.explain(&q, &QueryOpts::new());
    ensure!(
        plan["index"] == "author",
        "the planner did not pick the index: {plan}"
    );
    let timed = |opts: QueryOpts| {
        let view = view.clone();
        let q = q.clone();
        async move {
            let start = Instant::now();
            let results: Vec<_> = view.query(&q, opts).try_collect().await?;
            anyhow::Ok((start.elapsed().as_secs_f64(), results.len() as u64))
        }
    };
    // The first indexed run also builds the log's sparse seq index (once per segment per
    // process); the second shows the steady state.
    let (cold, _) = timed(QueryOpts::new()).await?;
    let (indexed, n1) = timed(QueryOpts::new()).await?;
    let (scan, n2) = timed(QueryOpts::new().force_scan()).await?;
    ensure!(
        n1 == n2 && n1 >= expected.saturating_sub(1),
        "the plans disagree: {n1} vs {n2} results"
    );
    db.close().await?;
    Ok(vec![
        Metric::new("query_indexed_cold_ms", cold * 1e3, "ms"),
        Metric::new("query_indexed_ms", indexed * 1e3, "ms"),
        Metric::new("query_scan_ms", scan * 1e3, "ms"),
        Metric::new("query_scan_rec_s", ctx.records as f64 / scan, "rec/s"),
        Metric::new("query_index_speedup", scan / indexed, "x")
            .target(Target::AtLeast(100.0))
            .beside("query_scan_ms"),
    ])
}
