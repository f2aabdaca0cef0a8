//! Gated reads through the handle: get, get_meta, get_at, read, and the live stream of states.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Stats, model, record, view};
use flume_core::{Db, DbError, Postcard, Seq};
use flume_log_memory::MemoryLog;
use flume_view_reduce::{Reduce, ReduceExt};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_wait_for_the_callers_writes() {
    let db: Db<String> = Db::open(MemoryLog::new(), Postcard).await.unwrap();
    let h = db.use_view("stats", view(4, None, true)).await.unwrap();
    let empty = h.get_meta().await.unwrap();
    assert_eq!(
        (empty.seq, empty.version, empty.value),
        (None, 4, Stats::default())
    );

    let mut all = Vec::new();
    for i in 0..200 {
        let seq = db.append(record(i)).await.unwrap();
        all.push((seq, record(i)));
        // Every read sees the append just made, with no explicit wait.
        assert_eq!(h.read(|s| s.last.clone()).await.unwrap(), model(&all).last);
    }
    assert_eq!(h.get().await.unwrap(), model(&all));
    let at = h.get_at(all[10].0).await.unwrap();
    assert!(at.seq >= Some(all[10].0));
    db.close().await.unwrap();
    assert!(matches!(h.get().await, Err(DbError::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_at_waits_for_a_future_seq() {
    let db: Db<String> = Db::open(MemoryLog::new(), Postcard).await.unwrap();
    let h = db.use_view("stats", view(1, None, false)).await.unwrap();
    let first = db.append(record(1)).await.unwrap();
    // Wait for anything after `first`, before it is appended.
    let waiter = {
        let h = h.clone();
        tokio::spawn(async move { h.get_at(Seq(first.get() + 1)).await })
    };
    let second = db.append(record(2)).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.seq, Some(second));
    assert_eq!(got.value.count, 2);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_follows_every_change_then_ends_on_close() {
    let db: Db<String> = Db::open(MemoryLog::new(), Postcard).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let h = db
        .use_view("stats", view(1, Some(&tmp.path().join("s")), true))
        .await
        .unwrap();
    let mut states = h.stream();
    let first = states.next().await.unwrap().unwrap();
    assert_eq!((first.seq, first.value), (None, Stats::default()));

    // A reader keeping up sees each batch's state.
    let mut all = Vec::new();
    for i in 0..20 {
        let seqs = db
            .append_batch(vec![record(2 * i), record(2 * i + 1)])
            .await
            .unwrap();
        all.extend(seqs.into_iter().zip([record(2 * i), record(2 * i + 1)]));
        let got = states.next().await.unwrap().unwrap();
        assert_eq!(got.seq, Some(all.last().unwrap().0));
        assert_eq!(got.value, model(&all));
    }

    // A slow reader skips to the latest state: nothing is queued, seqs only increase.
    for i in 40..240 {
        let seq = db.append(record(i)).await.unwrap();
        all.push((seq, record(i)));
    }
    let last = all.last().unwrap().0;
    let mut seen = 0;
    let mut prev = Some(all[39].0);
    loop {
        let got = states.next().await.unwrap().unwrap();
        assert!(got.seq > prev, "seqs increase");
        prev = got.seq;
        seen += 1;
        if got.seq == Some(last) {
            assert_eq!(got.value, model(&all));
            break;
        }
    }
    assert!(seen <= 200, "at most one state per batch");

    db.close().await.unwrap();
    assert!(matches!(states.next().await, Some(Err(DbError::Closed))));
    assert!(states.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_reduce_fails_the_view_instead_of_hanging_readers() {
    let db: Db<u64> = Db::open(MemoryLog::new(), Postcard).await.unwrap();
    let h = db
        .use_view(
            "picky",
            Reduce::new(1, 0u64, |sum: &mut u64, _, n: &u64| {
                assert!(*n != 13, "unlucky record");
                *sum += n;
            }),
        )
        .await
        .unwrap();
    db.append_batch(vec![1, 2, 3]).await.unwrap();
    assert_eq!(h.get().await.unwrap(), 6);
    db.append(13).await.unwrap();
    match h.get().await {
        Err(DbError::ViewFailed { reason, .. }) => {
            assert!(
                reason.contains("panicked") && reason.contains("unlucky"),
                "{reason}"
            );
        }
        other => panic!("expected the view to fail, got {other:?}"),
    }
    let mut states = h.stream();
    assert!(matches!(
        states.next().await,
        Some(Err(DbError::ViewFailed { .. }))
    ));
    assert!(states.next().await.is_none());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_only_view_rebuilds_on_every_open() {
    let store = flume_log_memory::MemoryStore::new();
    let db: Db<String> = Db::open(MemoryLog::open(store.clone()).unwrap(), Postcard)
        .await
        .unwrap();
    let h = db.use_view("stats", view(1, None, true)).await.unwrap();
    assert!(h.stale().unwrap().dir().is_none());
    let seqs = db
        .append_batch((0..50).map(record).collect())
        .await
        .unwrap();
    let all: Vec<(Seq, String)> = seqs.into_iter().zip((0..50).map(record)).collect();
    assert_eq!(h.get().await.unwrap(), model(&all));
    db.close().await.unwrap();

    let db: Db<String> = Db::open(MemoryLog::open(store).unwrap(), Postcard)
        .await
        .unwrap();
    let h = db.use_view("stats", view(1, None, true)).await.unwrap();
    assert_eq!(h.get().await.unwrap(), model(&all));
    db.close().await.unwrap();
}
