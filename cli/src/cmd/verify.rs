//! `flume verify`: check every frame of every log segment (CRC, header, trailer, whole batches,
//! segments tiling) and that no view is ahead of the log. Exit status 1 on any problem.
//!
//! It takes no lock and changes nothing, so it runs beside a writer; segments that writer's
//! retention deletes before they are reached are reported as retired, not checked.

use std::path::Path;

use flume_log_offset::{Damage, VerifyReport};
use serde_json::{Value, json};

use crate::app::Exit;
use crate::out::{self, Format, Out};
use crate::{open, progress, stored};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// Check the log in `db`, with a progress bar over its bytes; `None` when there is no log yet.
pub(crate) fn check_log(db: &Path) -> anyhow::Result<Option<VerifyReport>> {
    let dir = open::log_dir(db);
    if !dir.is_dir() {
        return Ok(None);
    }
    let opts = open::log_options(&open::config(db)?);
    let total: u64 = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = progress::bytes(total, "verifying");
    let report = flume_log_offset::verify_with(&dir, &opts, &mut |n| bar.set_position(n));
    bar.finish_and_clear();
    Ok(Some(report?))
}

pub(crate) fn damage_json(d: &Damage) -> Value {
    json!({ "file": d.file, "offset": d.offset, "seq": d.seq, "bytes": d.bytes, "reason": d.reason })
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    open::require(db)?;
    let Some(report) = check_log(db)? else {
        let mut out = Out::new();
        match args.format {
            Format::Json => {
                out.json(&json!({ "ok": true, "log": null, "views": [], "problems": [] }))?
            }
            Format::Table => out.text("the database has no log yet: nothing to check\n")?,
        }
        return out.flush();
    };
    let config = open::config(db)?;
    let views = stored::read(db, &config).await;
    let mut problems = Vec::new();
    if let Some(d) = &report.corruption {
        problems.push(format!(
            "the log is corrupt in {} at offset {} (seq {}): {}",
            d.file.display(),
            d.offset,
            d.seq,
            d.reason
        ));
    }
    let mut view_rows = Vec::new();
    for v in &views {
        let problem = stored::problem(v, report.last);
        let note = stored::note(v);
        if let Some(p) = &problem {
            problems.push(p.clone());
        }
        let meta = v.meta.as_ref().ok();
        view_rows.push(json!({
            "name": v.name,
            "kind": v.kind,
            "since": meta.and_then(|m| m.since).map(|s| s.0),
            "ok": problem.is_none(),
            "problem": problem,
            "note": note,
        }));
    }
    let mut out = Out::new();
    match args.format {
        Format::Json => out.json(&json!({
            "ok": problems.is_empty(),
            "log": {
                "segments": report.segments.len(),
                "records": report.records,
                "batches": report.batches,
                "bytes": report.file_bytes(),
                "first": report.first.map(|s| s.0),
                "last": report.last.map(|s| s.0),
                "corruption": report.corruption.as_ref().map(damage_json),
                "torn_tail": report.torn_tail.as_ref().map(damage_json),
                "retired_meanwhile": report.retired_meanwhile,
            },
            "views": view_rows,
            "problems": problems,
        }))?,
        Format::Table => {
            let status = if report.corruption.is_some() {
                "CORRUPT"
            } else {
                "ok"
            };
            let mut rows = vec![vec![
                "log".to_string(),
                "log".to_string(),
                out::cell(report.last.map(|s| s.0)),
                format!(
                    "{status}: {} records in {} segments, {}",
                    report.records,
                    report.segments.len(),
                    out::bytes(report.file_bytes())
                ),
            ]];
            for (v, row) in views.iter().zip(&view_rows) {
                let text = match (&row["problem"], &row["note"]) {
                    (Value::String(p), _) => format!("AHEAD: {p}"),
                    (_, Value::String(n)) => format!("ok ({n})"),
                    _ => "ok".into(),
                };
                rows.push(vec![
                    v.name.clone(),
                    v.kind.into(),
                    out::cell(row["since"].as_u64()),
                    text,
                ]);
            }
            out.text(&out::table(&["name", "kind", "since", "status"], &rows))?;
            if let Some(t) = &report.torn_tail {
                out.text(&format!(
                    "note: {} bytes at offset {} of {}: {}\n",
                    t.bytes,
                    t.offset,
                    t.file.display(),
                    t.reason
                ))?;
            }
            if !report.retired_meanwhile.is_empty() {
                out.text(&format!(
                    "note: {} segment file(s) were retired (a writer's retention deleted them) before they could be checked\n",
                    report.retired_meanwhile.len()
                ))?;
            }
            for p in &problems {
                out.text(&format!("problem: {p}\n"))?;
            }
        }
    }
    out.flush()?;
    if problems.is_empty() {
        return Ok(());
    }
    let fix = if report.corruption.is_some() {
        "run `flume repair` to cut the log at the corruption (it shows what would be lost and asks first)"
    } else {
        "run `flume rebuild VIEW` (or just open the database for writing) to rebuild the views ahead of the log"
    };
    eprintln!("error: verify found {} problem(s): {fix}", problems.len());
    Err(Exit(1).into())
}
