//! `check_view` on the index and the key-value view, over the memory log and the file log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::Arc;

use flume_core::{Codec, Document, Postcard, Seq, async_trait};
use flume_log_memory::{MemoryLog, MemoryStore};
use flume_log_offset::OffsetLog;
use flume_test_suite::{ViewFactory, check_view};
use flume_view_index::{Index, KeyValue, KvEntry, KvRecord, KvValue, Lmdb};
use serde_json::{Value, json};
use tempfile::TempDir;

/// One LMDB directory.
struct Place(TempDir);

impl Place {
    fn new() -> Self {
        Place(tempfile::tempdir().unwrap())
    }
    fn lmdb(&self) -> Lmdb {
        Lmdb::open(self.0.path()).unwrap()
    }
}

struct IndexPlace(Place);

#[async_trait]
impl ViewFactory for IndexPlace {
    type Record = Document;
    type View = Index<Document>;
    type Snapshot = Vec<(Vec<Value>, Seq)>;

    async fn open(&self, version: u32) -> Index<Document> {
        Index::new(&self.0.lmdb(), "by_kind", version, |doc: &Document, ops| {
            let (Some(kind), Some(n)) = (doc.get("kind"), doc.get("n")) else {
                return;
            };
            ops.put([kind.clone(), n.clone()]);
            // Every tenth record retracts an older entry, so deletes are exercised too.
            if let Some(old) = doc.get("retract") {
                ops.delete([kind.clone(), old.clone()]);
            }
        })
    }
    fn record(&self, i: u64) -> Document {
        let kind = ["post", "like", "vote"][(i % 3) as usize];
        let mut doc = json!({"kind": kind, "n": (i * 7919) % 1000, "i": i});
        if i % 10 == 9 {
            doc["retract"] = json!((i * 31) % 1000);
        }
        Document(doc)
    }
    fn codec(&self) -> Arc<dyn Codec<Document>> {
        Arc::new(Postcard)
    }
    async fn snapshot(&self, view: &Index<Document>) -> Self::Snapshot {
        view.entries().unwrap()
    }
}

struct KvPlace(Place);

#[async_trait]
impl ViewFactory for KvPlace {
    type Record = KvRecord;
    type View = KeyValue<KvRecord>;
    type Snapshot = Vec<(String, KvEntry)>;

    async fn open(&self, version: u32) -> KeyValue<KvRecord> {
        KeyValue::new(&self.0.lmdb(), "kv").with_version(version as u16)
    }
    fn record(&self, i: u64) -> KvRecord {
        let key = format!("c{}/m{}", i % 7, i % 50);
        match i % 11 {
            3 => KvRecord::Delete { key },
            10 => KvRecord::DeleteAll {
                collection: format!("c{}", i % 7),
            },
            _ => KvRecord::Put {
                key,
                value: KvValue::Bytes(i.to_be_bytes().to_vec()),
                flags: i as u32,
                expires: 0,
            },
        }
    }
    fn codec(&self) -> Arc<dyn Codec<KvRecord>> {
        Arc::new(Postcard)
    }
    async fn snapshot(&self, view: &KeyValue<KvRecord>) -> Self::Snapshot {
        view.entries().unwrap()
    }
}

fn memory_log() -> impl Fn() -> Result<MemoryLog, flume_core::LogError> + Send + Sync + 'static {
    let store = MemoryStore::new();
    move || MemoryLog::open(store.clone())
}

fn offset_log() -> impl Fn() -> Result<OffsetLog, flume_core::LogError> + Send + Sync + 'static {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path: PathBuf = dir.path().to_path_buf();
    move || {
        let _keep = &dir;
        OffsetLog::open(&path)
    }
}

#[test]
fn index_on_memory_log() {
    check_view(|| IndexPlace(Place::new()), memory_log);
}

#[test]
fn index_on_offset_log() {
    check_view(|| IndexPlace(Place::new()), offset_log);
}

#[test]
fn key_value_on_memory_log() {
    check_view(|| KvPlace(Place::new()), memory_log);
}

#[test]
fn key_value_on_offset_log() {
    check_view(|| KvPlace(Place::new()), offset_log);
}
