//! Runs named cases, each on a fresh runtime with a hang guard, and reports every failure.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// A hang guard, not a timing assertion: a case that has not finished by then is stuck.
const HANG: Duration = Duration::from_secs(120);

/// What a conformance run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Distinct checks that passed.
    pub passed: usize,
    /// Their names, in the order they ran.
    pub names: Vec<String>,
}

pub(crate) struct Runner {
    suite: &'static str,
    names: Vec<String>,
    failed: Vec<String>,
}

impl Runner {
    pub(crate) fn new(suite: &'static str) -> Self {
        Runner {
            suite,
            names: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Run one async case to completion on its own multi-threaded runtime.
    pub(crate) fn case<Fut: Future<Output = ()>>(
        &mut self,
        name: &str,
        body: impl FnOnce() -> Fut,
    ) {
        self.case_blocking(name, || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            rt.block_on(async {
                if tokio::time::timeout(HANG, body()).await.is_err() {
                    panic!("hung for {HANG:?}");
                }
            });
        });
    }

    /// Run one synchronous case, catching its panic so every case runs and is reported.
    pub(crate) fn case_blocking(&mut self, name: &str, body: impl FnOnce()) {
        match catch_unwind(AssertUnwindSafe(body)) {
            Ok(()) => {
                println!("{} conformance: ok   {name}", self.suite);
                self.names.push(name.to_string());
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("{} conformance: FAIL {name}: {msg}", self.suite);
                self.failed.push(format!("{name}: {msg}"));
            }
        }
    }

    pub(crate) fn finish(self) -> Report {
        let passed = self.names.len();
        println!(
            "{} conformance: {passed} passed, {} failed",
            self.suite,
            self.failed.len()
        );
        if !self.failed.is_empty() {
            panic!(
                "{} conformance checks failed:\n  {}",
                self.failed.len(),
                self.failed.join("\n  ")
            );
        }
        Report {
            passed,
            names: self.names,
        }
    }
}
