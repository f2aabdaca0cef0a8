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

fn main() -> std::process::ExitCode {
    app::main()
}
