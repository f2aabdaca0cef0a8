//! `flume-bench`: run Flume's benchmark workloads. See `flume-bench --help`.

/// The allocator Flume's binaries use (the `flume` CLI's too, so `flume bench` measures the same):
/// decoding allocates every string of every record, and decoded scans ran faster with mimalloc
/// than with glibc's allocator (docs/design.md §10).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    flume_bench::main_with_args(std::env::args_os())
}
