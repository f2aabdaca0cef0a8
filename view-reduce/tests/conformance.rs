//! `check_view` on the reduce view: memory and file logs, persistent and memory-only, with and
//! without a map.

mod common;

use common::Location;
use flume_log_memory::{MemoryLog, MemoryStore};
use flume_log_offset::OffsetLog;
use flume_test_suite::check_view;

fn memory_log() -> impl Fn() -> Result<MemoryLog, flume_core::LogError> {
    let store = MemoryStore::new();
    move || MemoryLog::open(store.clone())
}

fn file_log() -> impl Fn() -> Result<OffsetLog, flume_core::LogError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    move || OffsetLog::open(dir.path())
}

#[test]
fn persistent_on_memory_log() {
    let report = check_view(|| Location::persistent(true), memory_log);
    assert_eq!(report.passed, 6);
}

#[test]
fn persistent_on_file_log() {
    let report = check_view(|| Location::persistent(false), file_log);
    assert_eq!(report.passed, 6);
}

#[test]
fn memory_only_on_memory_log() {
    let report = check_view(|| Location::memory(false), memory_log);
    assert_eq!(report.passed, 5);
}

#[test]
fn memory_only_on_file_log() {
    let report = check_view(|| Location::memory(true), file_log);
    assert_eq!(report.passed, 5);
}
