//! Index reads: get, every bound, prefix, reverse, limit, parts, live, retired records.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use flume_core::{
    AppendError, Bytes, Db, DbOptions, Document, Log, LogError, Postcard, ReadRange, Seq,
    ViewHandle, async_trait,
};
use flume_log_memory::MemoryLog;
use flume_view_index::{Index, IndexItem, IndexOpts, IndexReads, Lmdb, key};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;

fn by_author(lmdb: &Lmdb) -> Index<Document> {
    Index::new(lmdb, "by_author", 1, |doc: &Document, ops| {
        if let (Some(a), Some(n)) = (doc.get("author"), doc.get("n")) {
            ops.put([a.clone(), n.clone()]);
        }
    })
}

async fn setup(
    log: Arc<dyn Log>,
) -> (
    tempfile::TempDir,
    Db<Document>,
    ViewHandle<Index<Document>>,
    Vec<(Vec<Value>, Seq)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(log, Arc::new(Postcard), DbOptions::default())
        .await
        .unwrap();
    let index = db
        .use_view("by_author", by_author(&Lmdb::open(dir.path()).unwrap()))
        .await
        .unwrap();
    let mut model = Vec::new();
    let authors = [
        json!("@amy"),
        json!("@bob"),
        json!(null),
        json!(3),
        json!("@amy2"),
    ];
    for i in 0..60i64 {
        let author = authors[(i % 5) as usize].clone();
        let n = json!((i * 37) % 23 - 11);
        let seq = db
            .append(Document(json!({"author": author, "n": n, "i": i})))
            .await
            .unwrap();
        let key = vec![author, n];
        model.retain(|(k, _)| *k != key);
        model.push((key, seq));
    }
    model.sort_by_key(|(k, _)| key::encode(k));
    (dir, db, index, model)
}

/// Which model keys a case keeps.
type Keep = Box<dyn Fn(&Vec<Value>) -> bool>;

async fn read(index: &ViewHandle<Index<Document>>, opts: IndexOpts) -> Vec<IndexItem<Document>> {
    index.read(opts).try_collect().await.unwrap()
}

#[tokio::test]
async fn get_returns_the_seq_and_record() {
    let (_dir, db, index, model) = setup(Arc::new(MemoryLog::new())).await;
    for (key, seq) in &model {
        let (got_seq, doc) = index.get(key).await.unwrap().unwrap();
        assert_eq!(got_seq, *seq);
        assert_eq!(doc["author"], key[0]);
        assert_eq!(doc["n"], key[1]);
    }
    assert!(index.get(&[json!("@nobody")]).await.unwrap().is_none());
    db.close().await.unwrap();
}

#[tokio::test]
async fn ranges_match_a_sorted_model() {
    let (_dir, db, index, model) = setup(Arc::new(MemoryLog::new())).await;
    let pivot = model[model.len() / 2].0.clone();
    let cases: Vec<(IndexOpts, Keep)> = vec![
        (IndexOpts::new(), Box::new(|_| true)),
        (
            IndexOpts::new().gt(pivot.clone()),
            Box::new({
                let p = pivot.clone();
                move |k| key::encode(k) > key::encode(&p)
            }),
        ),
        (
            IndexOpts::new().gte(pivot.clone()),
            Box::new({
                let p = pivot.clone();
                move |k| key::encode(k) >= key::encode(&p)
            }),
        ),
        (
            IndexOpts::new().lt(pivot.clone()),
            Box::new({
                let p = pivot.clone();
                move |k| key::encode(k) < key::encode(&p)
            }),
        ),
        (
            IndexOpts::new().lte(pivot.clone()),
            Box::new({
                let p = pivot.clone();
                move |k| key::encode(k) <= key::encode(&p)
            }),
        ),
        (
            IndexOpts::new().prefix([json!("@amy")]),
            Box::new(|k| k[0] == json!("@amy")),
        ),
        (
            IndexOpts::new().prefix([json!(null)]),
            Box::new(|k| k[0].is_null()),
        ),
        (
            IndexOpts::new()
                .prefix([json!("@bob")])
                .gte([json!("@bob"), json!(0)]),
            Box::new(|k| k[0] == json!("@bob") && k[1].as_i64().unwrap() >= 0),
        ),
    ];
    for (opts, keep) in cases {
        let want: Vec<_> = model.iter().filter(|(k, _)| keep(k)).cloned().collect();
        for reverse in [false, true] {
            for limit in [None, Some(3)] {
                let mut o = opts.clone();
                o.reverse = reverse;
                o.limit = limit;
                let mut expected = want.clone();
                if reverse {
                    expected.reverse();
                }
                if let Some(n) = limit {
                    expected.truncate(n);
                }
                let got: Vec<_> = read(&index, o.clone())
                    .await
                    .into_iter()
                    .map(|e| (e.key.unwrap(), e.seq.unwrap()))
                    .collect();
                assert_eq!(got, expected, "{o:?}");
            }
        }
    }
    // Parts: keys only, seqs only, values only.
    let e = &read(&index, IndexOpts::new().limit(1).parts(true, false, false)).await[0];
    assert!(e.key.is_some() && e.seq.is_none() && e.value.is_none());
    let e = &read(&index, IndexOpts::new().limit(1).parts(false, true, false)).await[0];
    assert!(e.key.is_none() && e.seq.is_some() && e.value.is_none());
    let e = &read(&index, IndexOpts::new().limit(1).parts(false, false, true)).await[0];
    assert_eq!(e.value.as_ref().unwrap()["author"], model[0].0[0]);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reads_yield_old_then_new_entries_exactly_once() {
    let (_dir, db, index, model) = setup(Arc::new(MemoryLog::new())).await;
    let old = model.iter().filter(|(k, _)| k[0] == json!("@amy")).count();
    let mut live = index.read(
        IndexOpts::new()
            .prefix([json!("@amy")])
            .live()
            .limit(old + 1000),
    );
    for _ in 0..old {
        live.next().await.unwrap().unwrap();
    }
    let writer = db.clone();
    let task = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for i in 0..2000 {
            let author = if i % 2 == 0 { "@amy" } else { "@zed" };
            seqs.push(
                writer
                    .append(Document(json!({"author": author, "n": 1000 + i})))
                    .await
                    .unwrap(),
            );
        }
        seqs
    });
    let mut got = Vec::new();
    while let Some(item) = live.next().await {
        got.push(item.unwrap().seq.unwrap());
    }
    let seqs = task.await.unwrap();
    let amy: Vec<Seq> = seqs.iter().step_by(2).copied().collect();
    assert_eq!(got, amy, "exactly the matching appends, in order, once");
    db.close().await.unwrap();
}

/// A memory log that reports every record below `cut` as retired.
struct Retiring {
    inner: MemoryLog,
    cut: std::sync::Mutex<Seq>,
}

#[async_trait]
impl Log for Retiring {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        self.inner.append_batch(records).await
    }
    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        let first = *self.cut.lock().unwrap();
        if seq < first {
            return Err(LogError::Truncated { seq, first });
        }
        self.inner.get(seq).await
    }
    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        self.inner.read(range).await
    }
    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.inner.since()
    }
    async fn close(&self) -> Result<(), LogError> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn retired_records_are_skipped_and_their_entries_removed() {
    let log = Arc::new(Retiring {
        inner: MemoryLog::new(),
        cut: std::sync::Mutex::new(Seq(0)),
    });
    let (_dir, db, index, model) = setup(log.clone()).await;
    let mut seqs: Vec<Seq> = model.iter().map(|(_, s)| *s).collect();
    seqs.sort();
    let cut = seqs[seqs.len() / 2];
    *log.cut.lock().unwrap() = cut;
    let kept: Vec<_> = model
        .iter()
        .filter(|(_, s)| *s >= cut)
        .map(|(k, s)| (k.clone(), *s))
        .collect();
    let got: Vec<_> = read(&index, IndexOpts::new())
        .await
        .into_iter()
        .map(|e| (e.key.unwrap(), e.seq.unwrap()))
        .collect();
    assert_eq!(got, kept, "entries of retired records are skipped");
    let retired = model.iter().find(|(_, s)| *s < cut).unwrap();
    assert!(index.get(&retired.0).await.unwrap().is_none());
    let entries = index.stale().unwrap().entries().unwrap();
    assert_eq!(entries.len(), kept.len(), "and removed from the index");
    // Reading keys and seqs only does not touch the log: nothing to skip.
    let all = read(&index, IndexOpts::new().parts(true, true, false)).await;
    assert_eq!(all.len(), kept.len());
    db.close().await.unwrap();
}

#[tokio::test]
async fn reverse_live_is_refused() {
    let (_dir, db, index, _model) = setup(Arc::new(MemoryLog::new())).await;
    let items: Vec<_> = index
        .read(IndexOpts::new().reverse().live())
        .collect()
        .await;
    assert!(matches!(items.as_slice(), [Err(_)]));
    db.close().await.unwrap();
}
