//! Parsing the command line, logging, the runtime, and turning errors into exit codes.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cmd::{self, Command};

/// Flume: a database whose truth is an append-only log, with views (counts, indexes, a
/// key-value map) streamed from it and rebuilt from it at will.
///
/// A database is a directory: `log/` (the durable log), `views/` and `reduce/` (the views, derived
/// data) and `flume.toml` (which views to keep; `flume init` writes a commented one). Without a
/// `flume.toml` the defaults apply: a durable log, a key-value view `kv`, a count `count` and a
/// query view `query`.
///
/// Data goes to stdout as JSON or ndjson (`--format table` for people where it helps); logs go
/// to stderr (set RUST_LOG=debug for more). Exit status: 0 ok, 1 error, 2 usage error.
#[derive(Debug, Parser)]
#[command(
    name = "flume",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// The database directory.
    #[arg(
        long,
        global = true,
        env = "FLUME_DB",
        hide_env_values = true,
        default_value = "./flume-data",
        value_name = "DIR"
    )]
    pub(crate) db: PathBuf,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// An error that has already been reported (on stdout or stderr) and only sets the exit status.
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

pub(crate) fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // flume-bench re-executes `current_exe()`, which is this binary when it runs as `flume bench`.
    if args
        .get(1)
        .is_some_and(|a| flume_bench::is_internal_child(a))
    {
        return finish(flume_bench::main_with_args(args));
    }
    // Usage errors exit with status 2 here, `--help` and `--version` with 0.
    let cli = Cli::parse_from(args);
    init_logging();
    finish(cmd::run(cli))
}

fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,flume=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .init();
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
        return ExitCode::from(*code);
    }
    // `flume stream | head`: the reader left; that is not an error of ours.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
