//! `flume retire`: delete the oldest segment files of the log to free disk space (retention),
//! after showing what goes and asking.
//!
//! Whole segments go, never the one holding the last record. The views are caught up and closed
//! (durable) first, so none of them needs a deleted record again.

use std::path::Path;

use anyhow::{Context, bail};
use flume_core::{Log, Seq};
use flume_log_offset::{OffsetLog, Retirement};
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

/// A byte count with an optional unit: `4096`, `64KiB`, `10G`; whole numbers only.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let unit = unit.trim_start();
    let not_a_size = || {
        format!(
            "{s:?} is not a size: expected a whole number of bytes with an optional unit, e.g. 4096, 512MiB or 10GB"
        )
    };
    if !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(not_a_size());
    }
    let n: u64 = digits.parse().map_err(|_| not_a_size())?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is more bytes than fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_their_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("12B"), Ok(12));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("3 MiB"), Ok(3 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
    }

    #[test]
    fn bad_sizes_say_what_is_expected() {
        for bad in ["", "GiB", "1.5GB", "-1", "ten"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("not a size"), "{bad:?}: {e}");
        }
        assert!(
            parse_size("10 parsecs")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("20000000TiB").unwrap_err().contains("64 bits"));
    }
}
