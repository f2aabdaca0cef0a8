//! Checkpoints on disk: resume without re-reading, crash mid-rebuild, corrupt state, version
//! bumps, one view per directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Stats, model, record, stored_since, view};
use flume_core::{Codec, Db, DbOptions, Log, Postcard, Seq, View, ViewError, ViewHandle};
use flume_log_memory::{MemoryLog, MemoryStore};
use flume_log_offset::{OffsetLog, Options};
use flume_test_suite::CountingCodec;
use flume_view_reduce::{Checkpoints, Reduce, ReduceExt};

/// A database over `log` whose decodes are counted.
async fn open_db(log: impl Log) -> (Db<String>, Arc<AtomicU64>) {
    let codec = CountingCodec::new(Postcard);
    let decodes = codec.counter();
    let db = Db::open_with(Arc::new(log), Arc::new(codec), DbOptions::default())
        .await
        .unwrap();
    (db, decodes)
}

/// Append records `from..to` in batches of `batch`, returning them with their seqs.
async fn fill(db: &Db<String>, from: u64, to: u64, batch: u64) -> Vec<(Seq, String)> {
    let mut out = Vec::new();
    let mut i = from;
    while i < to {
        let end = (i + batch).min(to);
        let records: Vec<String> = (i..end).map(record).collect();
        let seqs = db.append_batch(records.clone()).await.unwrap();
        out.extend(seqs.into_iter().zip(records));
        i = end;
    }
    out
}

async fn use_reduce(
    db: &Db<String>,
    version: u32,
    dir: &Path,
) -> ViewHandle<Reduce<String, Stats>> {
    db.use_view("stats", view(version, Some(dir), true))
        .await
        .unwrap()
}

/// The view holds the model of `all` (once caught up), and the database decoded only the `new`
/// records appended since the view's checkpoint to get there.
async fn holds_reading_only_the_new(
    h: &ViewHandle<Reduce<String, Stats>>,
    all: &[(Seq, String)],
    decodes: &AtomicU64,
    new: u64,
) {
    assert_eq!(h.get().await.unwrap(), model(all));
    assert_eq!(
        decodes.load(Ordering::SeqCst),
        new,
        "only the new records are read"
    );
}

/// Wait (with a hang guard, not a timing assertion) until the state file records `since`.
async fn wait_for_checkpoint(dir: &Path, since: Option<Seq>) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while stored_since(dir) != Some(since) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no checkpoint at {since:?}; the file has {:?}",
            stored_since(dir)
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_resumes_without_rereading_on_the_file_log() {
    let log_dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");

    let (db, decodes) = open_db(OffsetLog::open(log_dir.path()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let mut all = fill(&db, 0, 5_000, 250).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 5_000);
    db.close().await.unwrap();

    let (db, decodes) = open_db(OffsetLog::open(log_dir.path()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let got = h.get_meta().await.unwrap();
    assert_eq!(got.seq, Some(all.last().unwrap().0));
    assert_eq!(got.value, model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 0, "nothing is re-read");
    all.extend(fill(&db, 5_000, 5_010, 3).await);
    holds_reading_only_the_new(&h, &all, &decodes, 10).await;
    db.close().await.unwrap();
}

/// A view closed at the last record of a segment resumes after that segment is retired: it missed
/// nothing, and reads the new records only. (The log used to report the read after that record
/// as truncated, which failed the view.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_resumes_after_the_segments_it_had_read_are_retired() {
    let log_dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    // Segments that the first 200 records fill exactly (each frame adds 20 bytes to its record,
    // each segment a 32-byte header: docs/design.md §5), so the view stops at a segment's end.
    let frames: u64 = (0..200)
        .map(|i| {
            Codec::<String>::encode(&Postcard, &record(i))
                .unwrap()
                .len() as u64
                + 20
        })
        .sum();
    let opts = Options::new().segment_size(32 + frames);

    let (db, _) = open_db(OffsetLog::open_with(log_dir.path(), opts.clone()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let mut all = fill(&db, 0, 200, 50).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    db.close().await.unwrap();

    // Records the view has not seen go to a second segment; the first, all seen, is retired.
    let log = OffsetLog::open_with(log_dir.path(), opts.clone()).unwrap();
    let records: Vec<String> = (200..210).map(record).collect();
    let encoded = records
        .iter()
        .map(|r| Codec::<String>::encode(&Postcard, r).unwrap())
        .collect();
    let seqs = log.append_batch(encoded).await.unwrap();
    all.extend(seqs.into_iter().zip(records));
    assert_eq!(
        log.retire_before(all[200].0).unwrap().first,
        Some(all[200].0)
    );
    log.close().await.unwrap();

    let (db, decodes) = open_db(OffsetLog::open_with(log_dir.path(), opts).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    holds_reading_only_the_new(&h, &all, &decodes, 10).await;
    db.close().await.unwrap();
}

/// Drive the view as the database would, "crash" it (drop without close) after it folded more
/// than its last checkpoint, and check that reopening gives the checkpoint, consistent with its
/// since, and that the database then feeds only the records after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_rebuild_keeps_the_checkpointed_progress() {
    let store = MemoryStore::new();
    let (db, _) = open_db(MemoryLog::open(store.clone()).unwrap()).await;
    let all = fill(&db, 0, 10_000, 1_000).await;
    db.close().await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let policy = Checkpoints::new()
        .records(4_096)
        .interval(Duration::MAX)
        .tail_delay(Duration::MAX);
    let rebuilding = view(1, Some(&dir), true).checkpoints(policy);
    assert_eq!(rebuilding.open().await.unwrap().since, None);
    let mut chunks = all.chunks(1_024);
    // Four full chunks: 4,096 records, a checkpoint is due.
    for chunk in chunks.by_ref().take(4) {
        let batch: Vec<(Seq, &String)> = chunk.iter().map(|(s, r)| (*s, r)).collect();
        rebuilding.apply(&batch).await.unwrap();
    }
    let checkpoint = all[4_095].0;
    wait_for_checkpoint(&dir, Some(checkpoint)).await;
    // Three more chunks, below the threshold: only in memory.
    for chunk in chunks.take(3) {
        let batch: Vec<(Seq, &String)> = chunk.iter().map(|(s, r)| (*s, r)).collect();
        rebuilding.apply(&batch).await.unwrap();
    }
    assert_eq!(rebuilding.since(), Some(all[7_167].0));
    drop(rebuilding); // the crash: no close, no final checkpoint

    // The stored state and since agree.
    let reopened = view(1, Some(&dir), true);
    let meta = reopened.open().await.unwrap();
    assert_eq!((meta.version, meta.since), (Some(1), Some(checkpoint)));
    assert_eq!(reopened.get(), model(&all[..4_096]));
    reopened.close().await.unwrap();

    // The database resumes from the checkpoint.
    let (db, decodes) = open_db(MemoryLog::open(store).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 10_000 - 4_096);
    db.close().await.unwrap();
}

/// Reaching the tail (a short batch) writes a checkpoint without waiting for the thresholds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_writes_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let policy = Checkpoints::new()
        .records(u64::MAX)
        .interval(Duration::MAX)
        .tail_delay(Duration::from_millis(1));
    let v = view(1, Some(&dir), false).checkpoints(policy);
    v.open().await.unwrap();
    let records: Vec<String> = (0..10).map(record).collect();
    let batch: Vec<(Seq, &String)> = records.iter().zip(0..).map(|(r, i)| (Seq(i), r)).collect();
    v.apply(&batch).await.unwrap();
    wait_for_checkpoint(&dir, Some(Seq(9))).await;
    v.close().await.unwrap();
}

/// Damage the state file in `damage` ways; each reopen must rebuild the state from the log.
async fn rebuilt_after(damage: impl Fn(&Path)) {
    let store = MemoryStore::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let (db, _) = open_db(MemoryLog::open(store.clone()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let all = fill(&db, 0, 300, 7).await;
    h.get().await.unwrap();
    db.close().await.unwrap();

    damage(&dir.join("state"));
    let (db, decodes) = open_db(MemoryLog::open(store.clone()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 300, "the state was rebuilt");
    db.close().await.unwrap();

    // The rebuilt state was written back: the next open reads nothing.
    let (db, decodes) = open_db(MemoryLog::open(store).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 0);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_state_file_is_rebuilt() {
    rebuilt_after(|path| {
        let len = std::fs::metadata(path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_len(len / 2).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_file_is_rebuilt() {
    rebuilt_after(|path| {
        let mut bytes = std::fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_foreign_state_file_is_rebuilt() {
    rebuilt_after(|path| std::fs::write(path, b"").unwrap()).await;
    rebuilt_after(|path| std::fs::write(path, b"{\"not\": \"a flume state\"}\n").unwrap()).await;
}

/// A state whose bytes pass the checks but do not decode as `S` (the type changed without a
/// version bump) is unreadable too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_another_type_is_unreadable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let strings = Reduce::new(
        1,
        vec![String::from("x")],
        |s: &mut Vec<String>, _, r: &String| s.push(r.clone()),
    )
    .persist_in(&dir);
    strings.open().await.unwrap();
    strings.destroy().await.unwrap();
    strings.close().await.unwrap();
    let stats = view(1, Some(&dir), true);
    match stats.open().await {
        Err(ViewError::Unreadable(msg)) => assert!(msg.contains("version"), "{msg}"),
        other => panic!("expected Unreadable, got {other:?}"),
    }
    stats.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leftover_temp_file_is_ignored() {
    let store = MemoryStore::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let (db, _) = open_db(MemoryLog::open(store.clone()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let all = fill(&db, 0, 100, 9).await;
    h.get().await.unwrap();
    db.close().await.unwrap();

    // A crash while writing a checkpoint leaves a partial temp file beside the intact state.
    std::fs::write(dir.join("state.tmp"), b"FLUMERED partial").unwrap();
    let (db, decodes) = open_db(MemoryLog::open(store).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(decodes.load(Ordering::SeqCst), 0);
    assert!(!dir.join("state.tmp").exists());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_bump_rebuilds_then_resumes() {
    let log_dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let (db, _) = open_db(OffsetLog::open(log_dir.path()).unwrap()).await;
    let h = use_reduce(&db, 1, &dir).await;
    let all = fill(&db, 0, 1_000, 100).await;
    assert_eq!(h.get_meta().await.unwrap().version, 1);
    db.close().await.unwrap();

    let (db, decodes) = open_db(OffsetLog::open(log_dir.path()).unwrap()).await;
    let h = use_reduce(&db, 2, &dir).await;
    let got = h.get_meta().await.unwrap();
    assert_eq!((got.version, &got.value), (2, &model(&all)));
    assert_eq!(
        decodes.load(Ordering::SeqCst),
        1_000,
        "a new version rebuilds"
    );
    db.close().await.unwrap();

    let (db, decodes) = open_db(OffsetLog::open(log_dir.path()).unwrap()).await;
    let h = use_reduce(&db, 2, &dir).await;
    assert_eq!(h.get().await.unwrap(), model(&all));
    assert_eq!(
        decodes.load(Ordering::SeqCst),
        0,
        "the rebuilt version was saved"
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_view_per_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let first = view(1, Some(&dir), true);
    first.open().await.unwrap();
    let second = view(1, Some(&dir), true);
    match second.open().await {
        Err(ViewError::Other(e)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("expected the directory to be in use, got {other:?}"),
    }
    // The database destroys a view that failed to open: that must not touch the holder's files.
    assert!(second.destroy().await.is_err());
    first.close().await.unwrap();
    second.open().await.unwrap();
    second.close().await.unwrap();
}

/// `sync` writes a checkpoint at once, whatever the policy: after it, the stored `since` is the
/// one the view had reached (log retention relies on it before deleting records).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_writes_a_checkpoint_now() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let never = Checkpoints::new()
        .records(u64::MAX)
        .interval(Duration::from_secs(3600))
        .tail_delay(Duration::from_secs(3600));
    let v = view(3, Some(&dir), true).checkpoints(never);
    v.open().await.unwrap();
    let (a, b) = (record(1), record(2));
    v.apply(&[(Seq(5), &a), (Seq(9), &b)]).await.unwrap();
    assert_eq!(stored_since(&dir), None, "no checkpoint is due");
    v.sync().await.unwrap();
    assert_eq!(stored_since(&dir), Some(Some(Seq(9))));
    drop(v); // no close
    let v = view(3, Some(&dir), true);
    assert_eq!(v.open().await.unwrap().since, Some(Seq(9)));
    v.close().await.unwrap();
}

/// A destroyed view is durably empty: a crash right after it cannot bring the old state back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stats");
    let v = view(3, Some(&dir), true);
    v.open().await.unwrap();
    let r = record(1);
    v.apply(&[(Seq(5), &r)]).await.unwrap();
    v.close().await.unwrap();
    assert_eq!(stored_since(&dir), Some(Some(Seq(5))));

    let v = view(3, Some(&dir), true);
    assert_eq!(v.open().await.unwrap().since, Some(Seq(5)));
    v.destroy().await.unwrap();
    assert_eq!(stored_since(&dir), Some(None));
    drop(v); // no close
    let v = view(3, Some(&dir), true);
    let meta = v.open().await.unwrap();
    assert_eq!((meta.version, meta.since), (Some(3), None));
    assert_eq!(v.get(), Stats::default());
    v.close().await.unwrap();
}

/// A reduce function that panics mid-batch leaves a partly folded state: it is never saved, and
/// the view refuses more records until it is destroyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_folded_state_is_never_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sum");
    let make = || {
        Reduce::new(1, 0u64, |sum: &mut u64, _, n: &u64| {
            *sum += n;
            assert!(*n != 13, "unlucky record");
        })
        .persist_in(&dir)
    };
    let v = make();
    v.open().await.unwrap();
    v.apply(&[(Seq(1), &1), (Seq(5), &2)]).await.unwrap();
    v.close().await.unwrap();
    assert_eq!(stored_since(&dir), Some(Some(Seq(5))));

    let v = make();
    v.open().await.unwrap();
    let err = v.apply(&[(Seq(6), &10), (Seq(7), &13)]).await.unwrap_err();
    assert!(err.to_string().contains("unlucky record"), "{err}");
    assert!(
        v.apply(&[(Seq(8), &1)]).await.is_err(),
        "refused until destroyed"
    );
    let err = v.sync().await.unwrap_err();
    assert!(
        err.to_string().contains("unlucky record"),
        "not durable: {err}"
    );
    v.close().await.unwrap();
    assert_eq!(
        stored_since(&dir),
        Some(Some(Seq(5))),
        "the partial fold was not saved"
    );

    let v = make();
    assert_eq!(v.open().await.unwrap().since, Some(Seq(5)));
    assert_eq!(v.get(), 3);
    v.destroy().await.unwrap();
    v.apply(&[(Seq(1), &1)]).await.unwrap();
    assert_eq!(v.get(), 1);
    v.close().await.unwrap();
}
