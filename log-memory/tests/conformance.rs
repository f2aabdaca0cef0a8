//! The whole conformance suite on the in-memory log.

use flume_log_memory::{MemoryLog, MemoryStore};

#[test]
fn conformance() {
    flume_test_suite::check_log(|| {
        let s = MemoryStore::new();
        move || MemoryLog::open(s.clone())
    });
}
