//! Conformance checks that every Flume [`Log`] and [`View`] implementation runs.
//!
//! A log crate's tests call [`check_log`] in one line with a [`LogFactory`]; it runs every case of
//! the JavaScript test-flumelog suite, flumedb's own core cases (gated reads, views ahead of the
//! log, rebuild, duplicate names, use after close) and a model-based property test, and panics
//! listing every case that failed. View crates call [`check_view`] with a [`ViewFactory`].
//!
//! This is test code: it panics on failure and is not for production use.
//!
//! ```
//! use flume_log_memory::{MemoryLog, MemoryStore};
//! let report = flume_test_suite::check_log(|| {
//!     let store = MemoryStore::new();
//!     move || MemoryLog::open(store.clone())
//! });
//! assert!(report.passed >= 30);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(clippy::unwrap_used)]

mod db_cases;
mod factory;
mod log_cases;
mod model;
mod read_ahead;
mod runner;
mod support;
mod view_check;

use std::sync::Arc;

use flume_core::Log;

pub use factory::{LogFactory, ViewFactory};
pub use runner::Report;
pub use support::{CountingCodec, TestView, TestViewState};
pub use view_check::check_view;

/// Run the whole log conformance suite against the logs made by `make`.
///
/// `make` is called once per case and must return a factory for a fresh, empty location; the
/// factory's `open` opens that same location again after a close (reopen cases).
///
/// # Panics
/// After running every case, if any failed, listing them.
pub fn check_log<F: LogFactory>(make: impl Fn() -> F) -> Report {
    let mut runner = runner::Runner::new("log");
    log_cases::run(&mut runner, &make);
    db_cases::run(&mut runner, &make);
    model::run(&mut runner, &make);
    runner.finish()
}

/// Open a log from a factory, panicking with the reason on failure.
pub(crate) async fn open<F: LogFactory>(f: &F) -> Arc<dyn Log> {
    match f.open().await {
        Ok(log) => log,
        Err(e) => panic!("the factory could not open the log: {e}"),
    }
}
