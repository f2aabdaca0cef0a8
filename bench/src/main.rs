//! `flume-bench`: run Flume's benchmark workloads. See `flume-bench --help`.

fn main() -> anyhow::Result<()> {
    flume_bench::main_with_args(std::env::args_os())
}
