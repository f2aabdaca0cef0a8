//! `flume repair`: cut the log at its first corruption, keeping every whole batch before it,
//! after showing what would be lost and asking; then rebuild every view.

use std::path::Path;

use anyhow::Context;
use flume_core::LogError;
use flume_log_offset::{Repair, RepairPlan};
use serde_json::json;

use crate::app::Exit;
use crate::out::{self, Out};
use crate::{ask, open, progress};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Cut without asking
    #[arg(long, short = 'y')]
    yes: bool,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    open::require(db)?;
    let dir = open::log_dir(db);
    let mut out = Out::new();
    if !dir.is_dir() {
        out.json(&json!({ "repaired": false, "reason": "the database has no log yet" }))?;
        return out.flush();
    }
    let opts = open::log_options(&open::config(db)?);
    let total: u64 = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = progress::bytes(total, "verifying");
    let repair = Repair::prepare(&dir, &opts, &mut |n| bar.set_position(n));
    bar.finish_and_clear();
    let repair = repair.map_err(|e| match e {
        LogError::Locked { holder } => anyhow::anyhow!(
            "the database {} is in use by {holder}: stop it (another flume command, or `flume serve`) and run repair again",
            db.display()
        ),
        e => anyhow::Error::new(e).context("cannot check the log"),
    })?;
    let Some(plan) = repair.plan().cloned() else {
        drop(repair);
        tracing::info!("the log is intact: nothing to cut");
        out.json(&json!({ "repaired": false, "reason": "the log is intact" }))?;
        return out.flush();
    };
    eprintln!("{}", describe(&plan));
    if !args.yes && !ask::confirm("Cut the log?", "cut the log")? {
        eprintln!("nothing was changed");
        return Err(Exit(1).into());
    }
    let plan = repair
        .apply()
        .context("the repair failed; run it again to finish")?
        .unwrap_or(plan);
    tracing::info!("cut the log at seq {}; rebuilding the views", plan.cut_seq);
    let store = open::store(db, false).await?;
    let mut views = Vec::new();
    let rebuilt = super::rebuild::rebuild(&store, None, &mut |v| {
        views.push(v);
        Ok(())
    })
    .await;
    let closed = store.close().await;
    rebuilt?;
    closed?;
    out.json(&json!({
        "repaired": true,
        "corrupt": plan.corrupt,
        "damage": super::verify::damage_json(&plan.damage),
        "file": plan.file,
        "cut_offset": plan.cut_offset,
        "cut_seq": plan.cut_seq,
        "lost_records": plan.lost_records,
        "first_lost": plan.first_lost.map(|s| s.0),
        "lost_bytes": plan.lost_bytes,
        "removed": plan.removed,
        "views_rebuilt": views,
    }))?;
    out.flush()
}

/// What the cut loses, for people.
fn describe(plan: &RepairPlan) -> String {
    let d = &plan.damage;
    let mut s = if plan.corrupt {
        format!(
            "The log is corrupt in {} at offset {} (seq {}): {}.\nRepair cuts the log at seq {} ({} truncated to {} bytes{}), keeping every whole batch before the damage.\n",
            d.file.display(),
            d.offset,
            d.seq,
            d.reason,
            plan.cut_seq,
            plan.file.display(),
            plan.cut_offset,
            if plan.rewrite_header {
                ", its damaged header rewritten"
            } else {
                ""
            },
        )
    } else {
        format!(
            "The log ends with {} bytes of an interrupted write in {} at offset {}: no acknowledged record is there.\nRepair cuts them (the next open would too).\n",
            d.bytes,
            d.file.display(),
            d.offset
        )
    };
    s.push_str(&format!(
        "Lost: {} of log data, including {} record(s) that still read{}{}.\n",
        out::bytes(plan.lost_bytes),
        plan.lost_records,
        plan.first_lost
            .map_or(String::new(), |f| format!(" (from seq {f})")),
        if plan.corrupt {
            "; records inside the damaged region cannot be counted"
        } else {
            ""
        },
    ));
    if !plan.removed.is_empty() {
        s.push_str(&format!(
            "Deleted: {} later segment file(s):\n",
            plan.removed.len()
        ));
        for p in &plan.removed {
            s.push_str(&format!("  {}\n", p.display()));
        }
    }
    s.push_str("Every view is rebuilt afterwards. To keep a copy first: `flume export > backup.ndjson` exports what still reads.");
    s
}
