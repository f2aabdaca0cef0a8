//! `check_view` on the query view, over the memory log and the file log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use flume_core::{Codec, Document, Postcard, async_trait};
use flume_log_memory::{MemoryLog, MemoryStore};
use flume_log_offset::OffsetLog;
use flume_test_suite::{ViewFactory, check_view};
use flume_view_index::Lmdb;
use flume_view_query::{IndexSpec, Path, QueryView};
use serde_json::{Value, json};

struct Place(tempfile::TempDir);

#[async_trait]
impl ViewFactory for Place {
    type Record = Document;
    type View = QueryView<Document>;
    type Snapshot = Vec<(String, Vec<Value>)>;

    async fn open(&self, version: u32) -> QueryView<Document> {
        let indexes = vec![
            IndexSpec::new("kind", [Path::from(["kind"])]),
            IndexSpec::new("kind_n", [Path::from(["kind"]), Path::from(["n"])]),
        ];
        QueryView::new(
            &Lmdb::open(self.0.path()).unwrap(),
            "q",
            version as u16,
            indexes,
        )
    }
    fn record(&self, i: u64) -> Document {
        let kind = ["a", "b", "c"][(i % 3) as usize];
        Document(json!({"kind": kind, "n": (i * 7919) % 100, "i": i}))
    }
    fn codec(&self) -> Arc<dyn Codec<Document>> {
        Arc::new(Postcard)
    }
    async fn snapshot(&self, view: &QueryView<Document>) -> Self::Snapshot {
        view.entries().unwrap()
    }
}

fn memory_log() -> impl Fn() -> Result<MemoryLog, flume_core::LogError> + Send + Sync + 'static {
    let store = MemoryStore::new();
    move || MemoryLog::open(store.clone())
}

fn offset_log() -> impl Fn() -> Result<OffsetLog, flume_core::LogError> + Send + Sync + 'static {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    move || OffsetLog::open(dir.path())
}

#[test]
fn query_view_on_memory_log() {
    check_view(|| Place(tempfile::tempdir().unwrap()), memory_log);
}

#[test]
fn query_view_on_offset_log() {
    check_view(|| Place(tempfile::tempdir().unwrap()), offset_log);
}
