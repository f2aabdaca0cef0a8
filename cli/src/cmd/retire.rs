//! `flume retire`: delete the oldest segment files of the log to free disk space (retention),
//! after showing what goes and asking.
//!
//! Whole segments go, never the one holding the last record. The views are caught up and closed
//! (durable) first, so none of them needs a deleted record again.

use std::path::Path;

use anyhow::{Context, bail};
use flume_core::{Log, Seq};
use flume_log_offset::{OffsetLog, Retirement};
use flume_store::parse_size;
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
    let report = match catch_up(db).await? {
        None => json!({ "retired": false, "reason": "the log is empty" }),
        Some(last) => {
            let log = open::write_log(db)?;
            let result = retire(&log, last, &args);
            let closed = log.close().await;
            let report = result?;
            closed?;
            report
        }
    };
    let mut out = Out::new();
    out.json(&report)?;
    out.flush()
}

/// Catch every view up with the log and close them all, durable: then none of them needs a
/// record up to the log's last one (returned) again. A view still catching up as the records
/// it needs went would be rebuilt from what remains.
async fn catch_up(db: &Path) -> anyhow::Result<Option<Seq>> {
    let store = open::store(db, false).await?;
    let live = async {
        for (name, view) in store.views() {
            view.live().await.with_context(|| {
                format!("view {name} cannot catch up with the log; nothing was retired")
            })?;
        }
        anyhow::Ok(store.db().since())
    }
    .await;
    let closed = store.close().await;
    let last = live?;
    closed?;
    Ok(last)
}

fn retire(log: &OffsetLog, last: Seq, args: &Args) -> anyhow::Result<serde_json::Value> {
    let before = match (args.before, args.keep) {
        (Some(seq), _) => Seq(seq),
        // Records from `last - keep` on stay: at least `keep` bytes of them.
        (None, Some(keep)) => Seq(last.0.saturating_sub(keep)),
        (None, None) => bail!("say what to retire: --before SEQ or --keep SIZE"),
    };
    // Records appended after the views closed (by another process since) may not be in them.
    let before = before.min(Seq(last.0.saturating_add(1)));
    let plan = log.retirement(before);
    if plan.segments == 0 {
        return Ok(json!({
            "retired": false,
            "before": before.0,
            "first": plan.first.map(|s| s.0),
            "reason": "no whole segment lies below that seq (the one holding the last record always stays)",
        }));
    }
    eprintln!("{}", describe(&plan));
    if !args.yes && !ask::confirm("Delete these segments?", "retire segments")? {
        eprintln!("nothing was changed");
        return Err(Exit(1).into());
    }
    let first = log
        .retire_before(before)
        .context("the retirement failed; run it again to finish it")?;
    tracing::info!(
        "retired {} segment(s), {}",
        plan.segments,
        out::bytes(plan.bytes)
    );
    Ok(json!({
        "retired": true,
        "before": before.0,
        "segments": plan.segments,
        "bytes": plan.bytes,
        "from": plan.from.map(|s| s.0),
        "first": first.map(|s| s.0),
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
