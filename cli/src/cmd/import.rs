//! `flume import [FILE]`: append records from ndjson or from a JavaScript flumelog-offset log, in
//! atomic batches, and print a summary.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::json;

use crate::input::flumelog::{self, OffsetBits};
use crate::input::{self, DEFAULT_BATCH, ndjson};
use crate::out::Out;
use crate::{open, progress};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum From {
    /// One JSON document per line (what `flume export` writes)
    Ndjson,
    /// A log file of the JavaScript flumelog-offset 3.x, written with flumecodec's json codec
    FlumelogOffset,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The file to import; `-` or none reads stdin (ndjson only)
    file: Option<PathBuf>,
    /// The input's format
    #[arg(long, value_enum, default_value_t = From::Ndjson)]
    from: From,
    /// flumelog-offset only: the width of its end-of-record offsets (its `offsetCodec` option)
    #[arg(long, value_enum, value_name = "BITS", default_value_t = OffsetBits::Auto)]
    offset_bits: OffsetBits,
    /// Records per atomic batch: an unreadable record appends nothing from its batch
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let file = args.file.filter(|f| f.as_os_str() != "-");
    let size = args.batch as usize;
    let (rx, total, unit, bits) = match (args.from, &file) {
        (From::Ndjson, Some(path)) => {
            let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let total = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(256 << 10, f));
            (ndjson::read(reader, size)?, total, "line", None)
        }
        (From::Ndjson, None) => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                tracing::info!(
                    "reading ndjson from the terminal: one JSON document per line, Ctrl-D to end"
                );
            }
            (
                ndjson::read(Box::new(BufReader::with_capacity(256 << 10, stdin)), size)?,
                None,
                "line",
                None,
            )
        }
        (From::FlumelogOffset, Some(path)) => {
            let (rx, bits) = flumelog::read(path, args.offset_bits, size)?;
            (
                rx,
                std::fs::metadata(path).ok().map(|m| m.len()),
                "record",
                Some(bits),
            )
        }
        (From::FlumelogOffset, None) => bail!("--from flumelog-offset reads a file: give its path"),
    };
    let store = open::store(db, true).await?;
    let bar = match total {
        Some(total) => progress::bytes(total, "importing"),
        None => progress::records("importing"),
    };
    let name = file
        .as_ref()
        .map_or_else(|| "FILE".to_string(), |f| f.display().to_string());
    let resume = |first: u64| match (args.from, &file) {
        (From::Ndjson, _) => {
            format!("Fix it, then import the rest with `tail -n +{first} {name} | flume import`")
        }
        (From::FlumelogOffset, _) => {
            "The records before it can be kept; the file needs repair to import the rest".into()
        }
    };
    let started = Instant::now();
    let result = input::append_all(&store, rx, unit, &bar, &resume, |_| Ok(())).await;
    bar.finish_and_clear();
    let closed = store.close().await;
    let sum = result?;
    closed?;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "imported {} records in {:.2} s ({:.0} records/s)",
        sum.records,
        secs,
        sum.records as f64 / secs.max(1e-9)
    );
    let mut out = Out::new();
    let mut summary = serde_json::to_value(&sum)?;
    if let Some(bits) = bits {
        summary["offset_bits"] = json!(bits);
    }
    out.json(&summary)?;
    out.flush()
}
