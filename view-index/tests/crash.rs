//! SIGKILL a process that is appending and indexing, at random moments, many times; after each
//! kill the reopened views must equal views rebuilt from scratch over the same log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flume_core::{Db, DbOptions, Document, Postcard};
use flume_log_offset::OffsetLog;
use flume_view_index::{Index, KeyValue, KvRecord, KvValue, Lmdb};
use serde_json::json;

const CHILD: &str = "FLUME_VIEW_CRASH_CHILD";
const CYCLES: u64 = 60;

fn index(lmdb: &Lmdb) -> Index<Document> {
    Index::new(lmdb, "by_kind", 1, |doc: &Document, ops| {
        if let (Some(k), Some(n)) = (doc.get("kind"), doc.get("n")) {
            ops.put([k.clone(), n.clone()]);
        }
    })
}

async fn open(
    log_dir: &Path,
    views_dir: &Path,
) -> (Db<Document>, Index<Document>, KeyValue<Document>) {
    let log = OffsetLog::open(log_dir).unwrap();
    let db = Db::open_with(Arc::new(log), Arc::new(Postcard), DbOptions::default())
        .await
        .unwrap();
    let lmdb = Lmdb::open(views_dir).unwrap();
    (db, index(&lmdb), KeyValue::new(&lmdb, "kv"))
}

/// The child: append mixed batches forever, printing each acknowledged seq, until killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let seed: u64 = std::env::var("FLUME_SEED").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = Path::new(&dir);
        let (db, idx, kv) = open(&dir.join("log"), &dir.join("views")).await;
        let _idx = db.use_view("by_kind", idx).await.unwrap();
        let _kv = db.use_view("kv", kv).await.unwrap();
        let mut x = seed | 1;
        loop {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + (x % 12) as usize;
            let batch: Vec<Document> = (0..n as u64)
                .map(|i| {
                    let v = x.wrapping_add(i);
                    if v % 3 == 0 {
                        Document::from(KvRecord::Put {
                            key: format!("c{}/m{}", v % 5, v % 97),
                            value: KvValue::Bytes(v.to_be_bytes().to_vec()),
                            flags: 0,
                            expires: 0,
                        })
                    } else if v % 17 == 0 {
                        Document::from(KvRecord::DeleteAll {
                            collection: format!("c{}", v % 5),
                        })
                    } else {
                        let kind = ["a", "b", "c"][(v % 3) as usize];
                        Document(json!({"kind": kind, "n": v % 1000}))
                    }
                })
                .collect();
            let seqs = db.append_batch(batch).await.unwrap();
            println!("ack {}", seqs[0]);
        }
    });
}

#[test]
fn views_equal_a_rebuild_after_sigkill() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let seed = std::env::var("FLUME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed {seed} (set FLUME_SEED to replay)");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut x = seed | 1;
    for cycle in 0..CYCLES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let acks_before_kill = x % 60;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.path())
            .env("FLUME_SEED", (x ^ cycle).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = 0;
        while acks < acks_before_kill {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("ack ") => acks += 1,
                Some(_) => {}
                None => panic!("cycle {cycle}: the child exited before being killed"),
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        rt.block_on(verify(dir.path(), cycle));
    }
}

async fn verify(dir: &Path, cycle: u64) {
    let (db, idx, kv) = open(&dir.join("log"), &dir.join("views")).await;
    let idx = db.use_view("by_kind", idx).await.unwrap();
    let kv = db.use_view("kv", kv).await.unwrap();
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Lmdb::open(fresh_dir.path()).unwrap();
    let idx2 = db.use_view("fresh_index", index(&fresh)).await.unwrap();
    let kv2 = db
        .use_view("fresh_kv", KeyValue::<Document>::new(&fresh, "kv"))
        .await
        .unwrap();
    let (a, b) = (
        idx.ready().await.unwrap().entries().unwrap(),
        idx2.ready().await.unwrap().entries().unwrap(),
    );
    assert_eq!(a, b, "cycle {cycle}: the index differs from a rebuild");
    let (a, b) = (
        kv.ready().await.unwrap().entries().unwrap(),
        kv2.ready().await.unwrap().entries().unwrap(),
    );
    assert_eq!(
        a, b,
        "cycle {cycle}: the key-value view differs from a rebuild"
    );
    for h in db.status() {
        assert_eq!(
            h.since,
            db.since(),
            "cycle {cycle}: {} did not catch up",
            h.name
        );
    }
    db.close().await.unwrap();
}
