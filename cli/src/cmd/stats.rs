//! `flume stats`: records, bytes and segments of the log, and each view's position and size.
//!
//! It reads the log read-only (counting its records means reading it) and the views' stored
//! positions, so it runs beside a writer.

use std::path::Path;

use flume_core::{Log, StreamOpts};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::out::{self, Format, Out};
use crate::{open, stored};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let log = open::read_log(db)?;
    let log_dir = open::log_dir(db);
    let (mut records, mut first, mut last) = (0u64, None, None);
    if let Some(log) = &log {
        first = log.first().map(|s| s.0);
        last = log.current_since().map(|s| s.0);
        let mut seqs = log.stream(StreamOpts::new().seqs());
        while seqs.try_next().await?.is_some() {
            records += 1;
        }
    }
    let segments: Vec<u64> = files(&log_dir)
        .iter()
        .filter(|(name, _)| name.ends_with(".log"))
        .map(|(_, len)| *len)
        .collect();
    let log_bytes: u64 = segments.iter().sum();
    let segments = segments.len();
    let config = open::config(db)?;
    let views: Vec<Value> = stored::read(db, &config)
        .await
        .iter()
        .map(|v| {
            let since = v.meta.as_ref().ok().and_then(|m| m.since).map(|s| s.0);
            let lag = match (last, since) {
                (Some(l), Some(s)) => l.saturating_sub(s),
                (Some(l), None) => l + 1,
                (None, _) => 0,
            };
            json!({ "name": v.name, "kind": v.kind, "since": since, "lag": lag })
        })
        .collect();
    let views_bytes = dir_bytes(&db.join("views")) + dir_bytes(&db.join("reduce"));
    let stats = json!({
        "db": db,
        "records": records,
        "first": first,
        "last": last,
        "segments": segments,
        "log_bytes": log_bytes,
        "views_bytes": views_bytes,
        "views": views,
    });
    let mut out = Out::new();
    match args.format {
        Format::Json => out.json(&stats)?,
        Format::Table => {
            let mut rows = vec![
                vec!["records".into(), records.to_string()],
                vec!["first seq".into(), out::cell(first)],
                vec!["last seq".into(), out::cell(last)],
                vec!["segments".into(), segments.to_string()],
                vec!["log size".into(), out::bytes(log_bytes)],
                vec!["views size".into(), out::bytes(views_bytes)],
            ];
            for v in &views {
                rows.push(vec![
                    format!("view {}", v["name"].as_str().unwrap_or("")),
                    format!(
                        "{}, since {}, lag {}",
                        v["kind"].as_str().unwrap_or(""),
                        out::cell(v["since"].as_u64()),
                        v["lag"]
                    ),
                ]);
            }
            out.text(&out::table(&["stat", "value"], &rows))?;
        }
    }
    if let Some(log) = log {
        log.close().await?;
    }
    out.flush()
}

fn files(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map_or(0, |m| m.len()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
