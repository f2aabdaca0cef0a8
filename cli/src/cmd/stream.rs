//! `flume stream`: records in log order as ndjson, with flumedb's stream options.
//!
//! It reads the log read-only, without the writer lock, so it runs beside any writer. A live
//! stream follows records appended by other processes by watching the log's files and reading
//! what is new whenever they change.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::CommandFactory;
use flume_core::{Item, Log, LogError, Seq, StreamOpts};
use futures::TryStreamExt;
use serde_json::json;

use crate::app::Cli;
use crate::open;
use crate::out::Out;

/// How often a live stream looks for changes to the log's files.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only records with a seq greater than this
    #[arg(long, value_name = "SEQ", conflicts_with = "gte")]
    gt: Option<u64>,
    /// Only records with a seq greater than or equal to this
    #[arg(long, value_name = "SEQ")]
    gte: Option<u64>,
    /// Only records with a seq less than this
    #[arg(long, value_name = "SEQ", conflicts_with = "lte")]
    lt: Option<u64>,
    /// Only records with a seq less than or equal to this
    #[arg(long, value_name = "SEQ")]
    lte: Option<u64>,
    /// Newest first
    #[arg(long, conflicts_with = "live")]
    reverse: bool,
    /// Stop after this many records
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Keep running and print records as they are appended (by any process)
    #[arg(long)]
    live: bool,
    /// With --live: `--old=false` prints only records appended from now on
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    old: bool,
    /// Print values only (one JSON document per line)
    #[arg(long, conflicts_with = "seqs")]
    values: bool,
    /// Print seqs only (one number per line)
    #[arg(long)]
    seqs: bool,
}

impl Args {
    fn lower(&self) -> Bound<Seq> {
        match (self.gt, self.gte) {
            (Some(s), _) => Bound::Excluded(Seq(s)),
            (None, Some(s)) => Bound::Included(Seq(s)),
            (None, None) => Bound::Unbounded,
        }
    }

    fn upper(&self) -> Bound<Seq> {
        match (self.lt, self.lte) {
            (Some(s), _) => Bound::Excluded(Seq(s)),
            (None, Some(s)) => Bound::Included(Seq(s)),
            (None, None) => Bound::Unbounded,
        }
    }
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    if !args.old && !args.live {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "`--old=false` needs `--live` (it means: only records appended from now on)",
            )
            .exit();
    }
    open::require(db)?;
    let mut out = Out::new();
    let mut printer = Printer {
        args: &args,
        printed: 0,
    };
    let mut lower = args.lower();
    let upper = args.upper();
    let mut log = open::read_log(db)?;
    warn_corruption(log.as_ref());
    if !args.old
        && let Some(last) = log.as_ref().and_then(Log::current_since)
    {
        lower = max_lower(lower, Bound::Excluded(last));
    }
    let dir = open::log_dir(db);
    let mut seen = Signature::of(&dir);
    loop {
        if let Some(l) = &log {
            let mut opts = StreamOpts::new();
            opts.lower = lower;
            opts.upper = upper;
            opts.reverse = args.reverse;
            opts.limit = args.limit.map(|n| n - printer.printed);
            let mut records = l.stream(opts.clone());
            loop {
                match records.try_next().await {
                    Ok(Some(Item::Record { seq, value })) => {
                        printer.print(&mut out, seq, &value)?;
                        lower = Bound::Excluded(seq);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e @ LogError::Corrupt { .. }) if !args.reverse => {
                        // Reads fail a whole chunk at a time: print what precedes the damage.
                        drop(records);
                        if let Some(upper) = open::cap_upper(upper, open::last_readable(db)?) {
                            opts.lower = lower;
                            opts.upper = upper;
                            opts.limit = args.limit.map(|n| n - printer.printed);
                            let mut rest = l.stream(opts);
                            while let Some(item) = rest.try_next().await? {
                                if let Item::Record { seq, value } = item {
                                    printer.print(&mut out, seq, &value)?;
                                }
                            }
                        }
                        out.flush()?;
                        return Err(anyhow::Error::new(e)
                            .context("the records before the damage were printed"));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            drop(records);
            l.close().await?;
        }
        out.flush()?;
        if !args.live || printer.done() || past(upper, log.as_ref().and_then(Log::current_since)) {
            return Ok(());
        }
        // Wait until the log's files change, then read what is new.
        loop {
            tokio::time::sleep(POLL).await;
            let now = Signature::of(&dir);
            if now != seen {
                seen = now;
                break;
            }
        }
        log = open::read_log(db)?;
    }
}

struct Printer<'a> {
    args: &'a Args,
    printed: usize,
}

impl Printer<'_> {
    fn print(&mut self, out: &mut Out, seq: Seq, bytes: &[u8]) -> anyhow::Result<()> {
        if self.args.seqs {
            out.json(&seq.0)?;
        } else {
            let record = open::decode(seq, bytes)?;
            if self.args.values {
                out.json(&record)?;
            } else {
                out.json(&json!({ "seq": seq.0, "value": record }))?;
            }
        }
        self.printed += 1;
        if self.args.live {
            out.flush()?;
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.args.limit.is_some_and(|n| self.printed >= n)
    }
}

fn warn_corruption(log: Option<&flume_log_offset::OffsetLog>) {
    if let Some(e) = log.and_then(flume_log_offset::OffsetLog::corruption) {
        tracing::warn!("{e}; showing the records before it");
    }
}

/// The tighter of two lower bounds.
fn max_lower(a: Bound<Seq>, b: Bound<Seq>) -> Bound<Seq> {
    let key = |b: &Bound<Seq>| match b {
        Bound::Unbounded => (0, 0),
        Bound::Included(s) => (s.0, 1),
        Bound::Excluded(s) => (s.0, 2),
    };
    if key(&a) >= key(&b) { a } else { b }
}

/// True when no record after `last` can be within `upper`.
fn past(upper: Bound<Seq>, last: Option<Seq>) -> bool {
    match (upper, last) {
        (Bound::Included(u), Some(l)) => l >= u,
        (Bound::Excluded(u), Some(l)) => l.0 + 1 >= u.0,
        _ => false,
    }
}

/// What changes when a writer appends: the segment files and their lengths, the newest one's
/// without the zeros a live writer keeps ahead of its frames (its file grows once per MiB).
#[derive(PartialEq, Eq)]
struct Signature(Vec<(PathBuf, u64)>);

impl Signature {
    fn of(dir: &Path) -> Signature {
        let mut files: Vec<(PathBuf, u64)> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                    .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if let Some((path, len)) = files.last_mut() {
            // A file retired meanwhile shows as empty, like one that cannot be read.
            *len = flume_log_offset::written_len(path).unwrap_or(0);
        }
        Signature(files)
    }
}
