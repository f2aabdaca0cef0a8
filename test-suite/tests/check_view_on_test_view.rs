//! `check_view` run on the suite's own recording view, over the in-memory log: proves the view
//! conformance cases hold for a correct view.

use std::sync::Arc;

use flume_core::{Codec, Postcard, async_trait};
use flume_log_memory::{MemoryLog, MemoryStore};
use flume_test_suite::{TestView, ViewFactory, check_view};

/// One "storage location" of a TestView: its shared state survives close and open.
struct Location(TestView);

#[async_trait]
impl ViewFactory for Location {
    type Record = String;
    type View = TestView;
    type Snapshot = Vec<String>;

    async fn open(&self, version: u32) -> TestView {
        self.0.with_version(version)
    }
    fn record(&self, i: u64) -> String {
        format!("record {i}")
    }
    fn codec(&self) -> Arc<dyn Codec<String>> {
        Arc::new(Postcard)
    }
    async fn snapshot(&self, view: &TestView) -> Vec<String> {
        view.values()
    }
}

#[test]
fn test_view_passes_check_view() {
    let report = check_view(
        || Location(TestView::new()),
        || {
            let s = MemoryStore::new();
            move || MemoryLog::open(s.clone())
        },
    );
    assert_eq!(report.passed, 6);
}
