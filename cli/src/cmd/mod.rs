//! The subcommands: one file each. This enum is the whole command surface.

mod append;
mod bench;
mod export;
mod get;
mod import;
mod init;
mod kv;
mod query;
mod rebuild;
mod repair;
mod retire;
mod serve;
mod stats;
mod stream;
mod verify;
mod views;

use clap::Subcommand;

use crate::app::Cli;

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a database directory with a commented flume.toml
    Init(init::Args),
    /// Append JSON documents (an argument, or ndjson on stdin) and print their seqs
    Append(append::Args),
    /// Print the record at a seq
    Get(get::Args),
    /// Print records in log order (ndjson), optionally following new ones
    Stream(stream::Args),
    /// Run a map-filter-reduce query (ndjson), or --explain how it would run
    Query(query::Args),
    /// Serve HTTP (JSON, ndjson, live SSE) and the memcached protocol until SIGINT/SIGTERM
    Serve(serve::Args),
    /// Read and write the key-value view (keys are collection/member)
    #[command(subcommand)]
    Kv(kv::Command),
    /// List the views: name, kind, version, since, lag and state
    Views(views::Args),
    /// Destroy views and rebuild them from the log
    Rebuild(rebuild::Args),
    /// Check every frame of the log and every view's position; exit 1 on any problem
    Verify(verify::Args),
    /// Cut the log at its first corruption (after asking) and rebuild the views
    Repair(repair::Args),
    /// Delete the oldest segments of the log to free space (after asking)
    ///
    /// Whole segment files go, never the one holding the last record. The views catch up first
    /// and keep what they derived from the deleted records (counts, key-value entries); index
    /// and query reads no longer return those records, and a rebuild sees only the records that
    /// remain.
    Retire(retire::Args),
    /// Append records from ndjson or from a JavaScript flumelog-offset file
    Import(import::Args),
    /// Print every record as ndjson, in a form `flume import` reads back
    Export(export::Args),
    /// Print the size of the log and the views
    Stats(stats::Args),
    /// Run the benchmark harness (flume-bench) with the remaining arguments
    Bench(bench::Args),
}

/// Run a parsed command line.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let db = cli.db;
    match cli.command {
        // These run without an async runtime (flume-bench starts its own).
        Command::Bench(args) => bench::run(args),
        Command::Init(args) => init::run(&db, args),
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                match command {
                    Command::Append(args) => append::run(&db, args).await,
                    Command::Get(args) => get::run(&db, args).await,
                    Command::Stream(args) => stream::run(&db, args).await,
                    Command::Kv(command) => kv::run(&db, command).await,
                    Command::Query(args) => query::run(&db, args).await,
                    Command::Serve(args) => serve::run(&db, args).await,
                    Command::Views(args) => views::run(&db, args).await,
                    Command::Rebuild(args) => rebuild::run(&db, args).await,
                    Command::Verify(args) => verify::run(&db, args).await,
                    Command::Repair(args) => repair::run(&db, args).await,
                    Command::Retire(args) => retire::run(&db, args).await,
                    Command::Import(args) => import::run(&db, args).await,
                    Command::Export(args) => export::run(&db, args).await,
                    Command::Stats(args) => stats::run(&db, args).await,
                    Command::Bench(_) | Command::Init(_) => unreachable!("handled above"),
                }
            })
        }
    }
}
