//! The log's own behaviour beyond the conformance suite: segments, bounds, retirement, limits,
//! read-only opens, locking.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::{At, Racing, segments};
use flume_core::{Bytes, Log, LogError, ReadRange, Seq, StreamOpts};
use flume_log_offset::storage::Storage;
use flume_log_offset::{Durability, OffsetLog, Options, SimStorage, verify_storage};
use futures::TryStreamExt;

fn rec(i: usize) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat(i % 37)))
}

fn small() -> Options {
    Options::new().segment_size(4096)
}

fn range(lower: Bound<Seq>, upper: Bound<Seq>, reverse: bool) -> ReadRange {
    ReadRange {
        lower,
        upper,
        reverse,
        max: usize::MAX,
        max_bytes: usize::MAX,
        values: true,
    }
}

async fn fill(log: &OffsetLog, n: usize) -> Vec<(Seq, Bytes)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let k = (i % 4 + 1).min(n - i);
        let batch: Vec<Bytes> = (i..i + k).map(rec).collect();
        let seqs = log.append_batch(batch.clone()).await.unwrap();
        out.extend(seqs.into_iter().zip(batch));
        i += k;
    }
    out
}

#[tokio::test]
async fn append_get_read_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    let all = fill(&log, 400).await;
    let segments = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count();
    assert!(segments > 3, "small segments roll: {segments}");
    for (seq, value) in &all {
        assert_eq!(&log.get(*seq).await.unwrap(), value);
    }
    let fwd = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert_eq!(fwd, all);
    let mut rev = log
        .read(range(Bound::Unbounded, Bound::Unbounded, true))
        .await
        .unwrap();
    rev.reverse();
    assert_eq!(rev, all);
    log.close().await.unwrap();

    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    assert_eq!(log.current_since(), all.last().map(|r| r.0));
    let got: Vec<_> = log
        .stream(StreamOpts::new())
        .map_ok(|i| (i.seq().unwrap(), i.into_value().unwrap()))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, all);
    let more = log.append(Bytes::from("after reopen")).await.unwrap();
    assert!(more > all.last().unwrap().0);
    assert_eq!(log.get(more).await.unwrap(), "after reopen");
}

#[tokio::test]
async fn every_non_boundary_is_not_a_record_and_bounds_are_numeric() {
    let log = OffsetLog::open_storage(Arc::new(SimStorage::new()), small()).unwrap();
    let all = fill(&log, 120).await;
    let end = all.last().unwrap().0.0 + 200;
    let starts: std::collections::HashSet<u64> = all.iter().map(|r| r.0.0).collect();
    for x in 0..end {
        match log.get(Seq(x)).await {
            Ok(v) => assert!(starts.contains(&x) && all.iter().any(|r| r.0.0 == x && r.1 == v)),
            Err(LogError::NotARecord { seq }) => {
                assert_eq!(seq, Seq(x));
                assert!(!starts.contains(&x));
            }
            Err(e) => panic!("get({x}): {e}"),
        }
    }
    // Bounds anywhere, not only at boundaries.
    for x in (0..end).step_by(7) {
        let want: Vec<_> = all.iter().filter(|r| r.0.0 > x).cloned().collect();
        let got = log
            .read(range(Bound::Excluded(Seq(x)), Bound::Unbounded, false))
            .await
            .unwrap();
        assert_eq!(got, want, "gt {x}");
        let mut want: Vec<_> = all.iter().filter(|r| r.0.0 <= x).cloned().collect();
        want.reverse();
        let got = log
            .read(range(Bound::Unbounded, Bound::Included(Seq(x)), true))
            .await
            .unwrap();
        assert_eq!(got, want, "lte {x} reverse");
        let mut want: Vec<_> = all.iter().filter(|r| r.0.0 < x).cloned().collect();
        want.reverse();
        let got = log
            .read(range(Bound::Unbounded, Bound::Excluded(Seq(x)), true))
            .await
            .unwrap();
        assert_eq!(got, want, "lt {x} reverse");
    }
}

#[tokio::test]
async fn retire_before_truncates_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    let all = fill(&log, 300).await;
    let cut = all[150].0;
    let first = log.retire_before(cut).unwrap().first.unwrap();
    assert!(first > all[0].0 && first <= cut, "{first} {cut}");
    assert!(matches!(
        log.get(all[0].0).await,
        Err(LogError::Truncated { .. })
    ));
    assert!(matches!(
        log.read(range(Bound::Included(all[0].0), Bound::Unbounded, false))
            .await,
        Err(LogError::Truncated { .. })
    ));
    let kept = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert_eq!(kept.first().unwrap().0, first);
    assert_eq!(
        kept.as_slice(),
        &all[all.iter().position(|r| r.0 == first).unwrap()..]
    );
    // Retiring everything keeps the segment that holds the last record.
    log.retire_before(Seq(u64::MAX)).unwrap();
    assert_eq!(
        log.get(all.last().unwrap().0).await.unwrap(),
        all.last().unwrap().1
    );
    log.close().await.unwrap();
    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    assert_eq!(log.current_since(), Some(all.last().unwrap().0));
    let kept = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert_eq!(kept.last(), all.last());
}

/// `retirement` foretells `retire_before` exactly: the files it deletes, their bytes, the seqs
/// it cuts, from a read-only open too; and nothing at all while the log has one segment.
#[tokio::test]
async fn retirement_says_what_retire_before_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    let none = log.retirement(Seq(u64::MAX));
    assert_eq!(
        (none.segments, none.bytes, none.from, none.first),
        (0, 0, None, None)
    );
    let all = fill(&log, 12).await;
    assert_eq!(segments(dir.path()).len(), 1);
    let one = log.retirement(Seq(u64::MAX));
    assert_eq!(
        (one.segments, one.from, one.first),
        (0, None, Some(all[0].0))
    );
    let all = [all, fill(&log, 600).await].concat();
    let mut deleted = 0;
    for cut in [all[1].0, all[150].0, all[151].0, all[400].0, Seq(u64::MAX)] {
        let plan = log.retirement(cut);
        // A read-only open lists the segments as they are when it opens.
        let reader = OffsetLog::open_with(dir.path(), small().read_only(true)).unwrap();
        assert_eq!(
            reader.retirement(cut),
            plan,
            "a read-only log sees the same"
        );
        reader.close().await.unwrap();
        let before = segments(dir.path());
        let sizes: Vec<u64> = before
            .iter()
            .map(|(_, path)| std::fs::metadata(path).unwrap().len())
            .collect();
        let done = log.retire_before(cut).unwrap();
        let after = segments(dir.path());
        let gone = before.len() - after.len();
        assert_eq!(&before[gone..], after.as_slice(), "only the oldest go");
        assert_eq!(done.segments, gone, "cut {cut}");
        assert_eq!(done.bytes, sizes[..gone].iter().sum::<u64>());
        assert_eq!(done.first, log.first());
        assert_eq!(plan, done, "cut {cut}: what was planned went");
        if gone == 0 {
            assert_eq!(done.from, None);
        } else {
            assert_eq!(done.from, Some(Seq(before[0].0)));
            let below = all
                .iter()
                .filter(|(seq, _)| Some(*seq) < done.first)
                .count();
            assert!(below > deleted, "cut {cut}: more records go");
            deleted = below;
        }
        assert_eq!(
            log.retirement(cut).segments,
            0,
            "done: nothing more to retire below {cut}"
        );
    }
    assert!(
        deleted > 500,
        "retiring everything left {} records",
        all.len() - deleted
    );
    assert_eq!(segments(dir.path()).len(), 1);
    log.close().await.unwrap();
}

/// A read that continues after the last retired record (a stream or a view resuming exactly at
/// the boundary) has missed nothing: it gets every retained record, also after a reopen, when
/// only the first segment's header knows where the record before it started. A read after any
/// earlier record has missed some: it is truncated. Checked at every segment boundary, one
/// segment retired at a time.
#[tokio::test]
async fn a_read_after_the_last_retired_record_is_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = OffsetLog::open_with(dir.path(), small()).unwrap();
    let all = fill(&log, 1000).await;
    let (mut first, mut boundaries) = (all[0].0, 0);
    for (seq, _) in &all[1..] {
        let now = log.retire_before(*seq).unwrap().first.unwrap();
        if now == first {
            continue;
        }
        (first, boundaries) = (now, boundaries + 1);
        let at = all.iter().position(|r| r.0 == first).unwrap();
        reads_after_the_boundary(&log, &all, at, "as retired").await;
        log.close().await.unwrap();
        log = OffsetLog::open_with(dir.path(), small()).unwrap();
        reads_after_the_boundary(&log, &all, at, "after a reopen").await;
    }
    assert!(boundaries >= 5, "only {boundaries} segments were retired");
    log.close().await.unwrap();
}

/// A read-only log is a snapshot of the files: when the writer's process retires segments under
/// it, its reads of them are `Truncated` (not an I/O error), as the writer's own reads are, and
/// it learns the new first seq; a read that continues after the last retired record gets the
/// rest, forwards and backwards. A segment file missing after one that is still there is a hole,
/// not a retirement: its reads stay I/O errors.
#[tokio::test]
async fn a_read_only_log_sees_the_writers_retirement_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open_with(dir.path(), small()).unwrap();
    let all = fill(&log, 600).await;
    let ro = || OffsetLog::open_with(dir.path(), small().read_only(true)).unwrap();
    let (getter, resumer, reverser) = (ro(), ro(), ro());
    let first = log.retire_before(all[300].0).unwrap().first.unwrap();
    let at = all.iter().position(|r| r.0 == first).unwrap();
    assert!(at > 1, "{first}");

    assert_eq!(getter.first(), Some(all[0].0), "a snapshot until it reads");
    match getter.get(all[0].0).await {
        Err(LogError::Truncated { seq, first: f }) => assert_eq!((seq, f), (all[0].0, first)),
        other => panic!("not truncated: {other:?}"),
    }
    assert_eq!(getter.first(), Some(first));
    assert_eq!(getter.get(all[at].0).await.unwrap(), all[at].1);

    reads_after_the_boundary(&resumer, &all, at, "read-only, retired under it").await;
    let back = reverser
        .read(range(Bound::Unbounded, Bound::Unbounded, true))
        .await
        .unwrap();
    let want: Vec<_> = all[at..].iter().rev().cloned().collect();
    assert!(back == want, "a reverse read stops at the new first seq");

    // A hole: the second retained segment's file is removed by hand (under an open log: an
    // open refuses the log, its segments no longer tile).
    let holed = ro();
    let files = segments(dir.path());
    let (hole, next) = (files[1].0, files[2].0);
    std::fs::remove_file(&files[1].1).unwrap();
    let inside = all.iter().find(|r| (hole..next).contains(&r.0.0)).unwrap();
    match holed.get(inside.0).await {
        Err(LogError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("a hole read as {other:?}"),
    }
    assert_eq!(holed.first(), Some(first), "a hole retires nothing");
    for r in [getter, resumer, reverser, holed] {
        r.close().await.unwrap();
    }
    log.close().await.unwrap();
}

/// A read-only open that lists segments a retirement deletes before it reads them lists again
/// and opens what is left (it failed with an I/O not-found error).
#[tokio::test]
async fn a_read_only_open_racing_a_retirement_opens_what_is_left() {
    let sim = Arc::new(SimStorage::new());
    let log = OffsetLog::open_storage(sim.clone(), small()).unwrap();
    let all = fill(&log, 600).await;
    log.close().await.unwrap();
    // The directory's first listing goes stale at once: the two oldest segments go after it.
    let mut names: Vec<String> = sim.list().unwrap();
    names.retain(|n| n.ends_with(".log"));
    names.sort();
    let oldest = [names[0].as_str(), names[1].as_str()];
    let racing = Arc::new(Racing::new(sim.clone(), At::List, &oldest));
    let ro = OffsetLog::open_storage(racing.clone(), small().read_only(true)).unwrap();
    assert!(racing.raced(), "the race happened");
    let first = ro.first().unwrap();
    assert!(first > all[0].0);
    let at = all.iter().position(|r| r.0 == first).unwrap();
    let got = ro
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert!(got.as_slice() == &all[at..], "what is left, from {first}");
    ro.close().await.unwrap();
}

/// Reads after the record before `all[at]`, the first retained one, and after the one before.
async fn reads_after_the_boundary(log: &OffsetLog, all: &[(Seq, Bytes)], at: usize, when: &str) {
    let after = |s: Seq| range(Bound::Excluded(s), Bound::Unbounded, false);
    let got = log.read(after(all[at - 1].0)).await.unwrap();
    assert!(got.as_slice() == &all[at..], "{when}, at record {at}");
    let earlier = log.read(after(all[at - 2].0)).await;
    assert!(
        matches!(earlier, Err(LogError::Truncated { first, .. }) if first == all[at].0),
        "{when}, at record {at}: {earlier:?}"
    );
}

/// Option values the log cannot work with are refused by open with one message naming the
/// limits (a queue larger than a semaphore can count panicked inside open).
#[test]
fn invalid_options_are_refused_at_open() {
    for opts in [
        Options::new().segment_size(4095),
        Options::new().max_record_size(0),
        Options::new().queue_bytes(0),
        Options::new().queue_bytes(usize::MAX),
    ] {
        let Err(e) = OffsetLog::open_storage(Arc::new(SimStorage::new()), opts) else {
            panic!("opened");
        };
        assert!(e.to_string().starts_with("invalid options"), "{e}");
    }
}

/// `max_record_size` limits appends only: a reopen with a smaller one reads, keeps and verifies
/// the larger records already acknowledged (it once took them for a torn tail and cut them).
#[tokio::test]
async fn a_smaller_max_record_size_at_reopen_keeps_larger_records() {
    let storage = Arc::new(SimStorage::new());
    let records: Vec<Bytes> = (0..10u8).map(|i| Bytes::from(vec![i; 2000])).collect();
    let log = OffsetLog::open_storage(storage.clone(), Options::new()).unwrap();
    log.append_batch(records[..5].to_vec()).await.unwrap();
    for r in &records[5..] {
        log.append(r.clone()).await.unwrap();
    }
    log.close().await.unwrap();
    drop(log);
    let small = Options::new().max_record_size(1000);
    let report = verify_storage(&*storage, &small, &mut |_| {}).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    let log = OffsetLog::open_storage(storage.clone(), small.clone()).unwrap();
    let values = |got: Vec<(Seq, Bytes)>| got.into_iter().map(|(_, v)| v).collect::<Vec<_>>();
    let all = range(Bound::Unbounded, Bound::Unbounded, false);
    assert_eq!(values(log.read(all.clone()).await.unwrap()), records);
    let too_large = log.append(records[0].clone()).await.unwrap_err();
    assert!(matches!(too_large.error, LogError::TooLarge { .. }));
    log.close().await.unwrap();
    drop(log);
    let log = OffsetLog::open_storage(storage, Options::new()).unwrap();
    assert_eq!(values(log.read(all).await.unwrap()), records);
}

#[tokio::test]
async fn too_large_is_rejected_before_writing() {
    let log = OffsetLog::open_storage(
        Arc::new(SimStorage::new()),
        Options::new().max_record_size(100),
    )
    .unwrap();
    let err = log
        .append_batch(vec![Bytes::from("ok"), Bytes::from(vec![0u8; 101])])
        .await
        .unwrap_err();
    assert!(matches!(
        err.error,
        LogError::TooLarge {
            size: 101,
            max: 100
        }
    ));
    assert_eq!(err.rejected.len(), 2);
    assert_eq!(log.current_since(), None);
    log.append(Bytes::from(vec![1u8; 100])).await.unwrap();
}

#[tokio::test]
async fn empty_and_oversized_batches() {
    let log = OffsetLog::open_storage(Arc::new(SimStorage::new()), small()).unwrap();
    assert!(log.append_batch(vec![]).await.unwrap().is_empty());
    let empty = log.append(Bytes::new()).await.unwrap();
    assert_eq!(log.get(empty).await.unwrap(), "");
    // A batch bigger than a segment gets a segment of its own.
    let big: Vec<Bytes> = (0..20).map(|i| Bytes::from(vec![i as u8; 1000])).collect();
    let seqs = log.append_batch(big.clone()).await.unwrap();
    for (s, v) in seqs.iter().zip(&big) {
        assert_eq!(&log.get(*s).await.unwrap(), v);
    }
}

#[tokio::test]
async fn second_writer_is_refused_and_read_only_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open(dir.path()).unwrap();
    let seq = log.append(Bytes::from("one")).await.unwrap();
    match OffsetLog::open(dir.path()) {
        Err(LogError::Locked { holder }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            let msg = LogError::Locked { holder }.to_string();
            assert!(msg.contains("pid"), "{msg}");
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second writer opened the log"),
    }
    let ro = OffsetLog::open_with(dir.path(), Options::new().read_only(true)).unwrap();
    assert_eq!(ro.get(seq).await.unwrap(), "one");
    assert!(matches!(
        ro.append(Bytes::from("no")).await.unwrap_err().error,
        LogError::ReadOnly
    ));
    log.close().await.unwrap();
    // Released on close.
    let again = OffsetLog::open(dir.path()).unwrap();
    assert_eq!(again.get(seq).await.unwrap(), "one");
    drop(again);
    // And on drop.
    OffsetLog::open(dir.path()).unwrap();
}

#[tokio::test]
async fn buffered_mode_survives_reopen_and_sync_works() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small().durability(Durability::Buffered);
    let log = OffsetLog::open_with(dir.path(), opts.clone()).unwrap();
    let all = fill(&log, 200).await;
    log.sync().await.unwrap();
    drop(log);
    let log = OffsetLog::open_with(dir.path(), opts).unwrap();
    let got = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert_eq!(got, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_syncs() {
    let storage = Arc::new(SimStorage::new());
    let log = Arc::new(OffsetLog::open_storage(storage.clone(), Options::new()).unwrap());
    let opened = storage.ops();
    let (writers, each) = (16, 20);
    let mut tasks = Vec::new();
    for t in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..each {
                let v = Bytes::from(format!("{t}-{i}"));
                mine.push((log.append(v.clone()).await.unwrap(), v));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let got = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    assert_eq!(got, all);
    // A batch committed alone costs one write and one sync: 16 appenders that each await
    // their batch share them (group commit), so there are fewer.
    let alone = 2 * (writers * each) as u64;
    let used = storage.ops() - opened;
    assert!(used < alone, "{used} operations for {alone} batches");
}

/// Batches queued while a sync is in progress go out together after it: one write and one sync
/// for all of them (group commit), whatever the scheduling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_queued_behind_a_sync_share_the_next_write_and_sync() {
    let storage = Arc::new(SimStorage::new());
    let log = Arc::new(OffsetLog::open_storage(storage.clone(), Options::new()).unwrap());
    let opened = storage.ops();
    storage.hold_syncs();
    let first = tokio::spawn({
        let log = log.clone();
        async move { log.append(Bytes::from("first")).await.unwrap() }
    });
    // Once the first batch is written, the writer is in (or entering) its held sync.
    while storage.ops() == opened {
        tokio::task::yield_now().await;
    }
    let values: Vec<Bytes> = (0..16).map(|i| Bytes::from(format!("b{i}"))).collect();
    let mut queued: Vec<_> = values
        .iter()
        .map(|v| Box::pin(log.append(v.clone())))
        .collect();
    for append in &mut queued {
        // The first poll queues the batch; the acknowledgement is what stays pending.
        assert!(futures::poll!(append.as_mut()).is_pending());
    }
    storage.release_syncs();
    let first = first.await.unwrap();
    let mut seqs = Vec::new();
    for append in queued {
        seqs.push(append.await.unwrap());
    }
    let stats = log.write_stats();
    assert_eq!(
        (stats.batches, stats.writes, stats.syncs),
        (17, 2, 2),
        "the first batch's write and sync, then one of each for the 16 queued behind it"
    );
    let got = log
        .read(range(Bound::Unbounded, Bound::Unbounded, false))
        .await
        .unwrap();
    let mut want = vec![(first, Bytes::from("first"))];
    want.extend(seqs.into_iter().zip(values));
    assert_eq!(got, want);
}

#[tokio::test]
async fn closed_log_refuses_everything() {
    let log = OffsetLog::open_storage(Arc::new(SimStorage::new()), Options::new()).unwrap();
    let s = log.append(Bytes::from("a")).await.unwrap();
    let mut since = log.since();
    since.borrow_and_update();
    log.close().await.unwrap();
    assert!(matches!(log.get(s).await, Err(LogError::Closed)));
    assert!(matches!(
        log.append(Bytes::from("b")).await.unwrap_err().error,
        LogError::Closed
    ));
    assert!(since.changed().await.is_err(), "since closes with the log");
    log.close().await.unwrap();
}
