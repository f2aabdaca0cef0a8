//! `flume`: the command line of a Flume database directory. `flume --help` lists the commands.
#![forbid(unsafe_code)]

mod app;
mod ask;
mod cmd;
mod input;
mod open;
mod out;
mod progress;
mod stored;

/// Flume's binaries allocate with mimalloc: decoding records makes many small values, and decoded
/// scans ran faster with it than with glibc's allocator (docs/design.md §10); `flume bench` then
/// measures what `flume-bench` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    app::main()
}
