//! The embedded collection/member key-value store, over the durable file log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flume_core::{Db, DbOptions, Document, Postcard, StreamOpts, ViewHandle};
use flume_log_offset::OffsetLog;
use flume_view_index::{KeyValue, KvDb, KvError, KvReads, KvRecord, KvValue, Lmdb};
use futures::TryStreamExt;
use serde_json::json;

type Kv = ViewHandle<KeyValue<KvRecord>>;

async fn open(dir: &Path) -> (Db<KvRecord>, Kv) {
    let log = OffsetLog::open(dir.join("log")).unwrap();
    let db = Db::open_with(Arc::new(log), Arc::new(Postcard), DbOptions::default())
        .await
        .unwrap();
    let lmdb = Lmdb::open(dir.join("views")).unwrap();
    let kv = db.use_view("kv", KeyValue::new(&lmdb, "kv")).await.unwrap();
    (db, kv)
}

fn bytes(s: &str) -> KvValue {
    KvValue::Bytes(s.as_bytes().to_vec())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_collections_of_hundred_members_survive_reopen_with_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open(dir.path()).await;
    let mut batch = Vec::new();
    for c in 0..100 {
        for m in 0..100 {
            let key = format!("col{c:03}/mem{m:03}");
            batch.push(KvRecord::Put {
                key,
                value: bytes(&format!("{c}:{m}")),
                flags: c,
                expires: 0,
            });
        }
    }
    for chunk in batch.chunks(1000) {
        db.append_batch(chunk.to_vec()).await.unwrap();
    }
    db.kv_delete("col000/mem000").await.unwrap();
    db.kv_delete_all("col099").await.unwrap();
    db.kv_put("col098/mem000", bytes("replaced")).await.unwrap();
    assert_eq!(kv.get_all("col050").await.unwrap().len(), 100);
    db.close().await.unwrap();
    drop((db, kv));

    let (db, kv) = open(dir.path()).await;
    for c in 0..100u32 {
        let members = kv.get_all(&format!("col{c:03}")).await.unwrap();
        let expected = match c {
            0 => 99,
            99 => 0,
            _ => 100,
        };
        assert_eq!(members.len(), expected, "collection {c}");
        for (member, entry) in &members {
            let m: u32 = member.trim_start_matches("mem").parse().unwrap();
            let want = if (c, m) == (98, 0) {
                "replaced".to_string()
            } else {
                format!("{c}:{m}")
            };
            assert_eq!(entry.value, bytes(&want));
            if (c, m) != (98, 0) {
                assert_eq!(entry.flags, c);
            }
        }
        let sorted: Vec<_> = members.iter().map(|(m, _)| m.clone()).collect();
        let mut expected_order = sorted.clone();
        expected_order.sort();
        assert_eq!(sorted, expected_order, "get_all is in key order");
    }
    assert!(kv.get("col000/mem000").await.unwrap().is_none());
    assert!(kv.get("col099/mem050").await.unwrap().is_none());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tasks_agree_with_a_model_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open(dir.path()).await;
    let mut tasks = Vec::new();
    for t in 0..100u64 {
        let (db, kv) = (db.clone(), kv.clone());
        tasks.push(tokio::spawn(async move {
            let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            for i in 0..40u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let k = x % 8192;
                let key = format!("c{}/k{k:04}", k % 16);
                match x % 10 {
                    0..=4 => {
                        let seq = db.kv_put(&key, bytes(&format!("{t}-{i}"))).await.unwrap();
                        // Read-your-writes: the entry is this write or a later one.
                        let got = kv.get(&key).await.unwrap();
                        assert!(got.is_none_or(|e| e.seq >= seq));
                    }
                    5 | 6 => {
                        db.kv_delete(&key).await.unwrap();
                    }
                    7 => {
                        kv.get_all(&format!("c{}", k % 16)).await.unwrap();
                    }
                    _ => {
                        kv.get(&key).await.unwrap();
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The model: replay the log in order.
    let mut model = BTreeMap::new();
    let records: Vec<_> = db.stream(StreamOpts::new()).try_collect().await.unwrap();
    for item in records {
        let (seq, record) = match item {
            flume_core::Item::Record { seq, value } => (seq, value),
            _ => unreachable!(),
        };
        match record {
            KvRecord::Put { key, value, .. } => {
                model.insert(key, (seq, value));
            }
            KvRecord::Delete { key } => {
                model.remove(&key);
            }
            KvRecord::DeleteAll { .. } => unreachable!(),
        }
    }
    let mut seen = BTreeMap::new();
    for c in 0..16 {
        for (member, entry) in kv.get_all(&format!("c{c}")).await.unwrap() {
            seen.insert(format!("c{c}/{member}"), (entry.seq, entry.value));
        }
    }
    assert_eq!(seen, model);
    db.close().await.unwrap();
}

#[tokio::test]
async fn expired_entries_read_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    let (db, kv) = open(dir.path()).await;
    db.kv_put_with("s/old", bytes("x"), 1, now() - 1)
        .await
        .unwrap();
    db.kv_put_with("s/new", bytes("y"), 2, now() + 3600)
        .await
        .unwrap();
    db.kv_put_with("s/forever", bytes("z"), 3, 0).await.unwrap();
    assert!(kv.get("s/old").await.unwrap().is_none());
    let e = kv.get("s/new").await.unwrap().unwrap();
    assert_eq!((e.flags, e.value), (2, bytes("y")));
    let members: Vec<_> = kv
        .get_all("s")
        .await
        .unwrap()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(members, ["forever", "new"]);
    db.close().await.unwrap();
}

#[tokio::test]
async fn invalid_keys_are_refused_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _kv) = open(dir.path()).await;
    let long = format!("c/{}", "x".repeat(300));
    for key in ["", "nocollection", "/m", "c/", "c/a\tb", long.as_str()] {
        match db.kv_put(key, bytes("v")).await {
            Err(KvError::InvalidKey { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{key:?}: expected InvalidKey, got {other:?}"),
        }
        assert!(
            matches!(db.kv_delete(key).await, Err(KvError::InvalidKey { .. })),
            "{key:?}"
        );
    }
    for collection in ["", "a/b", "a\nb"] {
        assert!(matches!(
            db.kv_delete_all(collection).await,
            Err(KvError::InvalidKey { .. })
        ));
    }
    assert_eq!(db.since(), None, "nothing was appended");
    db.close().await.unwrap();
}

#[tokio::test]
async fn documents_carry_key_value_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open(dir.path().join("log")).unwrap();
    let db: Db<Document> = Db::open(log, Postcard).await.unwrap();
    let lmdb = Lmdb::open(dir.path().join("views")).unwrap();
    let kv = db.use_view("kv", KeyValue::new(&lmdb, "kv")).await.unwrap();
    db.append(Document(json!({"type": "post", "text": "not a kv record"})))
        .await
        .unwrap();
    let doc = KvValue::Document(Document(json!({"name": "Amy", "tags": ["a"]})));
    let seq = db.kv_put("users/amy", doc.clone()).await.unwrap();
    let e = kv.get("users/amy").await.unwrap().unwrap();
    assert_eq!((e.seq, e.value), (seq, doc));
    assert_eq!(db.get(seq).await.unwrap()["$kv"], json!("put"));
    db.close().await.unwrap();
}
