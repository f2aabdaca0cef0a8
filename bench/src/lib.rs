//! Flume's benchmark harness: named workloads whose throughput figures are printed beside a
//! baseline measured in the same run on the same disk, so ratios hold on a noisy machine.
//!
//! It is not a test: nothing here asserts; targets are reported as `ok` or `MISS` for people.
//!
//! ```no_run
//! // Same as `cargo run --release -p flume-bench -- --json append_batch`.
//! flume_bench::main_with_args(["flume-bench", "--json", "append_batch"])?;
//! # Ok::<(), anyhow::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod baseline;
mod metric;
mod report;
mod workloads;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use clap::Parser;

pub use metric::{Metric, Target};

/// The default `--records`, at which each workload has the size design.md §7 names.
pub(crate) const DEFAULT_RECORDS: u64 = 1_000_000;

/// Run Flume's benchmark workloads and print their metrics.
#[derive(Debug, Parser)]
#[command(name = "flume-bench", version, about, long_about = None)]
pub struct Args {
    /// Print one JSON object of metrics instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Records per workload (default 1,000,000).
    #[arg(long, default_value_t = DEFAULT_RECORDS)]
    pub records: u64,
    /// Directory for on-disk files (baselines, file logs); created if absent, emptied after.
    /// Keep it on the disk you want to measure (not tmpfs).
    #[arg(long, default_value = ".flume-bench")]
    pub dir: PathBuf,
    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,
    /// Workloads to run (default: all). `--list` shows them.
    pub workloads: Vec<String>,
}

/// Parse `args` (program name first) and run.
///
/// # Errors
/// Unknown workloads, I/O errors on the bench directory, and failures of the code under test.
pub fn main_with_args<I, S>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let [_, flag, name, dir, records] = args.as_slice()
        && is_internal_child(flag)
    {
        return workload_child(name, dir, records);
    }
    run(Args::parse_from(args))
}

/// Run the workloads named in `args`.
///
/// # Errors
/// As [`main_with_args`].
pub fn run(args: Args) -> anyhow::Result<()> {
    let all = workloads::all();
    if args.list {
        for w in &all {
            println!("{:<16} {}", w.name, w.about);
        }
        return Ok(());
    }
    let chosen = workloads::select(&all, &args.workloads)?;
    std::fs::create_dir_all(&args.dir)?;
    let scratch = tempfile::tempdir_in(&args.dir)?;
    let ctx = workloads::Ctx {
        records: args.records,
        dir: scratch.path().to_path_buf(),
    };
    let mut metrics = Vec::new();
    for w in chosen {
        eprintln!("flume-bench: running {} ...", w.name);
        metrics.extend(in_child(w.name, &ctx)?);
    }
    if args.json {
        println!("{}", report::json(&metrics));
    } else {
        print!("{}", report::table(&metrics));
    }
    Ok(())
}

/// The argument that makes this program run one workload and print its metrics as JSON.
const WORKLOAD_CHILD: &str = "--internal-workload-child";

/// Whether `arg` (the first argument) is the one the harness passes when it re-executes
/// `current_exe()` to run a workload in a child process. A program that embeds the harness
/// (`flume bench`) hands such invocations to [`main_with_args`] whole.
pub fn is_internal_child(arg: &OsStr) -> bool {
    arg == WORKLOAD_CHILD
}

/// Run one workload in a process of its own, so that its figures do not depend on what ran before
/// it in the same process (a heap grown by millions of records, idle threads). In one series the
/// reverse scan's decoding baseline ran at 5.4–5.6M records/s in 3 of 5 runs after three other
/// workloads, against 8.8–9.9M in 6 of 6 runs alone or first; this VM's own swings are as large,
/// so that did not prove a cause, but a workload's figure should not hinge on the order.
fn in_child(name: &str, ctx: &workloads::Ctx) -> anyhow::Result<Vec<Metric>> {
    let out = Command::new(std::env::current_exe()?)
        .arg(WORKLOAD_CHILD)
        .arg(name)
        .arg(&ctx.dir)
        .arg(ctx.records.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("starting a workload's process")?;
    if !out.status.success() {
        bail!("workload {name} failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("workload {name} printed no metrics"))
}

/// The child's side of [`in_child`]; errors go to stderr, where the parent's user sees them.
fn workload_child(name: &OsStr, dir: &OsStr, records: &OsStr) -> anyhow::Result<()> {
    let all = workloads::all();
    let w = workloads::find(&all, &name.to_string_lossy())?;
    let ctx = workloads::Ctx {
        records: records.to_string_lossy().parse()?,
        dir: PathBuf::from(dir),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let metrics = rt.block_on((w.run)(&ctx))?;
    println!("{}", serde_json::to_string(&metrics)?);
    Ok(())
}
