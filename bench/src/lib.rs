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

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Parser;

pub use metric::{Metric, Target};

/// Run Flume's benchmark workloads and print their metrics.
#[derive(Debug, Parser)]
#[command(name = "flume-bench", version, about, long_about = None)]
pub struct Args {
    /// Print one JSON object of metrics instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Records per workload (default 1,000,000).
    #[arg(long, default_value_t = 1_000_000)]
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
    if let [_, flag, dir, records] = args.as_slice()
        && flag == workloads::RSS_CHILD
    {
        return workloads::rss_child(&dir.to_string_lossy(), &records.to_string_lossy());
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut metrics = Vec::new();
    for w in chosen {
        eprintln!("flume-bench: running {} ...", w.name);
        let got = rt.block_on((w.run)(&ctx))?;
        metrics.extend(got);
    }
    if args.json {
        println!("{}", report::json(&metrics));
    } else {
        print!("{}", report::table(&metrics));
    }
    Ok(())
}
