//! `flume bench ...`: the benchmark harness, as `flume-bench ...`.

use std::ffi::OsString;

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct Args {
    /// Arguments for flume-bench (`flume bench --help` shows them; `--list` names the workloads)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    flume_bench::main_with_args(std::iter::once(OsString::from("flume bench")).chain(args.args))
}
