//! `flume retire`: delete the oldest segment files of the log to free disk space (retention),
//! after showing what goes and asking.
//!
//! Whole segments go, never the one holding the last record. The views are caught up and made
//! durable first ([`Store::plan_retirement`]), so none of them needs a deleted record again.

use std::path::Path;

use anyhow::Context;
use flume_core::{Log, Seq};
use flume_log_offset::Retirement;
use flume_store::{Store, parse_size};
use serde_json::json;

use crate::app::Exit;
use crate::out::{self, Out};
use crate::{ask, open};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["before", "keep"])))]
pub(crate) struct Args {
    /// Delete the segments whose records all lie below this seq
    #[arg(long, value_name = "SEQ")]
    before: Option<u64>,
    /// Keep at least this much of the newest records: a byte count with an optional unit (B,
    /// K/KiB, M/MiB, G/GiB, T/TiB are powers of 1024; KB, MB, GB, TB of 1000), e.g. 10GiB
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    keep: Option<u64>,
    /// Delete without asking
    #[arg(long, short = 'y')]
    yes: bool,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let store = open::store(db, false).await?;
    let report = retire(&store, &args).await;
    let closed = store.close().await;
    let report = report?;
    closed?;
    let mut out = Out::new();
    out.json(&report)?;
    out.flush()
}

async fn retire(store: &Store, args: &Args) -> anyhow::Result<serde_json::Value> {
    // Caught up first: the retirement stops at the `since` of the view that applied the least,
    // and a view that cannot catch up says so here.
    for (name, view) in store.views() {
        view.live().await.with_context(|| {
            format!("view {name} cannot catch up with the log; nothing was retired")
        })?;
    }
    // `None` for an empty log (both from the log's last seq). Clap requires one of the two.
    let before = match args.keep {
        Some(keep) => store.keeping(keep),
        None => store.log().current_since().and(args.before.map(Seq)),
    };
    let Some(before) = before else {
        return Ok(json!({ "retired": false, "reason": "the log is empty" }));
    };
    let planned = store
        .plan_retirement(before)
        .await
        .context("nothing was retired")?;
    let plan = planned.plan().clone();
    if plan.segments == 0 {
        return Ok(json!({
            "retired": false,
            "before": planned.before().0,
            "first": plan.first.map(|s| s.0),
            "reason": "no whole segment lies below that seq (the one holding the last record always stays)",
        }));
    }
    eprintln!("{}", describe(&plan));
    // Asked off the runtime's threads: the store's views keep running meanwhile.
    let asked = args.yes
        || tokio::task::spawn_blocking(|| {
            ask::confirm("Delete these segments?", "retire segments")
        })
        .await??;
    if !asked {
        eprintln!("nothing was changed");
        return Err(Exit(1).into());
    }
    let retired = planned
        .retire()
        .await
        .context("the retirement failed; run it again to finish it")?;
    tracing::info!(
        "retired {} segment(s), {}",
        retired.segments,
        out::bytes(retired.bytes)
    );
    Ok(json!({
        "retired": true,
        "before": retired.before.0,
        "segments": retired.segments,
        "bytes": retired.bytes,
        "from": plan.from.map(|s| s.0),
        "first": retired.first.map(|s| s.0),
    }))
}

/// What the retirement deletes, for people.
fn describe(plan: &Retirement) -> String {
    let range = match (plan.from, plan.first) {
        (Some(from), Some(first)) => {
            format!(" (the records from seq {from} to just before seq {first})")
        }
        _ => String::new(),
    };
    format!(
        "Retiring deletes {} segment file(s), {}{range}.\n\
         Views keep what they derived from them (counts, key-value entries); index and query reads no longer return them; a rebuild sees only the records that remain.\n\
         To keep a copy first: `flume export > backup.ndjson`.",
        plan.segments,
        out::bytes(plan.bytes),
    )
}
