//! The whole conformance suite, once per durability mode.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

use flume_log_offset::{Durability, OffsetLog, Options};

fn check(durability: Durability) {
    flume_test_suite::check_log(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        move || OffsetLog::open_with(dir.path(), Options::new().durability(durability))
    });
}

#[test]
fn conformance_sync() {
    check(Durability::Sync);
}

#[test]
fn conformance_buffered() {
    check(Durability::Buffered);
}
