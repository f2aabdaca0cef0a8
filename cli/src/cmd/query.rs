//! `flume query JSON`: run a map-filter-reduce query (ndjson out), or `--explain` its plan.

use std::path::Path;

use anyhow::Context;
use flume_view_query::{Query, QueryOpts, QueryReads};
use futures::StreamExt;

use crate::open;
use crate::out::Out;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The query: a JSON array of stages ($filter, $map, $reduce, $sort), or one stage
    query: String,
    /// Print how the query would run (the index and bounds chosen, or a scan) instead of results
    #[arg(long)]
    explain: bool,
    /// After the current results, keep printing results of records appended later
    #[arg(long)]
    live: bool,
    /// With --live, `--old false` skips the records already in the log
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, requires = "live")]
    old: bool,
    /// At most N results
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Newest records first (with a final $sort: descending)
    #[arg(long)]
    reverse: bool,
    /// Print each result as {"seq": S, "value": V} (seq is null after a $reduce)
    #[arg(long)]
    with_seqs: bool,
    /// Ignore the indexes and scan the log
    #[arg(long)]
    scan: bool,
    /// The query view to use (default: the first declared)
    #[arg(long, value_name = "NAME")]
    view: Option<String>,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let query = Query::from_json(&args.query).context("the query is not valid")?;
    let mut opts = QueryOpts::new().old(args.old);
    opts.limit = args.limit;
    opts.reverse = args.reverse;
    opts.live = args.live;
    opts.force_scan = args.scan;
    let store = open::store(db, false).await?;
    let result = async {
        let view = store.query(args.view.as_deref())?;
        let mut out = Out::new();
        if args.explain {
            out.json(&view.explain(&query, &opts))?;
            return out.flush();
        }
        let mut results = view.query(&query, opts);
        while let Some(item) = results.next().await {
            let item = item?;
            if args.with_seqs {
                out.json(&serde_json::json!({"seq": item.seq.map(|s| s.0), "value": item.value}))?;
            } else {
                out.json(&item.value)?;
            }
            if args.live {
                out.flush()?;
            }
        }
        out.flush()
    }
    .await;
    let closed = store.close().await;
    result?;
    Ok(closed?)
}
