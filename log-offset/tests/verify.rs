//! `verify` walks every frame and finds the first damage; `Repair` cuts there, keeping whole
//! batches, and the log reopens as the prefix before the damage.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{At, Racing, segments};

use flume_core::{Bytes, Log, LogError, Seq, StreamOpts};
use flume_log_offset::{FsStorage, OffsetLog, Options, Repair, repair, verify, verify_storage};
use futures::TryStreamExt;

const HDR: u64 = 32;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn opts() -> Options {
    Options::new().segment_size(4096)
}

/// Appends `batches` batches of 3 records of ~100 bytes (several segments); returns each batch's
/// seqs.
fn fill(dir: &Path, batches: usize) -> Vec<Vec<Seq>> {
    rt().block_on(async {
        let log = OffsetLog::open_with(dir, opts()).unwrap();
        let mut out = Vec::new();
        for b in 0..batches {
            let batch = (0..3)
                .map(|i| Bytes::from(format!("batch {b:04} record {i} {}", "x".repeat(70))))
                .collect();
            out.push(log.append_batch(batch).await.unwrap());
        }
        log.close().await.unwrap();
        out
    })
}

fn all_seqs(dir: &Path) -> Vec<Seq> {
    rt().block_on(async {
        let log = OffsetLog::open_with(dir, opts()).unwrap();
        let seqs: Vec<Seq> = log
            .stream(StreamOpts::new().seqs())
            .map_ok(|item| item.seq().unwrap())
            .try_collect()
            .await
            .unwrap();
        log.close().await.unwrap();
        seqs
    })
}

/// The segment file holding `seq`, and the file offset of its frame.
fn locate(dir: &Path, seq: Seq) -> (PathBuf, u64) {
    let (base, path) = segments(dir)
        .into_iter()
        .rev()
        .find(|(b, _)| *b <= seq.0)
        .unwrap();
    (path, seq.0 - base + HDR)
}

fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], offset).unwrap();
}

#[test]
fn a_clean_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let batches = fill(dir.path(), 40);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.segments.len() > 3, "several segments");
    assert_eq!(report.records, 120);
    assert_eq!(report.batches, 40);
    assert_eq!(report.first, Some(batches[0][0]));
    assert_eq!(report.last, Some(*batches.last().unwrap().last().unwrap()));
    assert_eq!(report.torn_tail, None);
    assert_eq!(report.segments.iter().map(|s| s.records).sum::<u64>(), 120);
}

#[test]
fn empty_logs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.records, 0);
    fill(dir.path(), 0);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok());
    assert_eq!((report.records, report.last), (0, None));
    assert!(matches!(
        verify(dir.path().join("missing")),
        Err(LogError::Io { .. })
    ));
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_found_and_cut_at_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let batches = fill(dir.path(), 40);
    // The middle record of batch 5, which lies in a sealed segment.
    let victim = batches[5][1];
    let (file, offset) = locate(dir.path(), victim);
    assert_ne!(file, segments(dir.path()).last().unwrap().1);
    flip(&file, offset + 30);

    let report = verify(dir.path()).unwrap();
    let bad = report.corruption.clone().expect("corruption found");
    assert_eq!(
        (bad.file.clone(), bad.offset, bad.seq),
        (file.clone(), offset, victim.0)
    );
    assert!(bad.reason.contains("checksum"), "{}", bad.reason);
    assert_eq!(report.records, 15, "the whole batches before the damage");
    assert_eq!(report.last, Some(batches[4][2]));

    // A writable open checks only the tail, so it may not notice; repair does.
    let repair = Repair::prepare(dir.path(), &opts(), &mut |_| {}).unwrap();
    let plan = repair.plan().unwrap().clone();
    assert!(plan.corrupt);
    assert_eq!(plan.file, file);
    assert_eq!(plan.cut_seq, batches[5][0].0);
    assert_eq!(plan.first_lost, Some(batches[5][0]));
    let later = segments(dir.path())
        .into_iter()
        .filter(|(_, p)| *p > file)
        .count();
    assert_eq!(plan.removed.len(), later);
    // The record before the damage in its batch, and every record of later segments, which
    // still read (the records of the damaged segment after the damage cannot be counted).
    assert!(
        plan.lost_records >= 1 && plan.lost_records < 120 - 15,
        "{plan:?}"
    );
    repair.apply().unwrap();

    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.torn_tail, None);
    let expect: Vec<Seq> = batches[..5].iter().flatten().copied().collect();
    assert_eq!(all_seqs(dir.path()), expect);

    // The log keeps working: the next append starts where the cut was.
    let seq = rt().block_on(async {
        let log = OffsetLog::open_with(dir.path(), opts()).unwrap();
        let s = log.append(Bytes::from("after repair")).await.unwrap();
        log.close().await.unwrap();
        s
    });
    assert_eq!(seq, batches[5][0]);
}

#[test]
fn damage_in_the_last_segment_is_corruption_but_a_torn_tail_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let batches = fill(dir.path(), 40);
    let last = *batches.last().unwrap().last().unwrap();
    let (file, end) = {
        let (f, o) = locate(dir.path(), last);
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(o < len);
        (f, len)
    };
    // Garbage after the last batch: a torn tail, cut by the next open, not an error.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all_at(&[7; 50], end)
        .unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok());
    let torn = report.torn_tail.clone().unwrap();
    assert_eq!((torn.offset, torn.bytes), (end, 50));
    assert_eq!(report.records, 120);
    // Repair cuts a torn tail too, losing no record.
    let plan = repair(dir.path(), &opts()).unwrap().unwrap();
    assert!(!plan.corrupt);
    assert_eq!((plan.cut_offset, plan.lost_records), (end, 0));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), end);
    assert_eq!(
        repair(dir.path(), &opts()).unwrap(),
        None,
        "nothing left to cut"
    );

    // The first record of the last segment, damaged: below the synced end, so corruption.
    let first_in_last = batches
        .iter()
        .flatten()
        .copied()
        .find(|s| locate(dir.path(), *s).0 == file)
        .unwrap();
    let (_, offset) = locate(dir.path(), first_in_last);
    flip(&file, offset + 20);
    let report = verify(dir.path()).unwrap();
    let bad = report.corruption.clone().unwrap();
    assert_eq!((bad.file, bad.offset), (file.clone(), offset));
    repair(dir.path(), &opts()).unwrap().unwrap();
    let seqs = all_seqs(dir.path());
    assert!(seqs.iter().all(|s| *s < first_in_last));
    assert_eq!(seqs.len() % 3, 0, "whole batches only");
}

#[test]
fn a_damaged_segment_header_or_a_missing_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let segs = segments(dir.path());
    assert!(segs.len() >= 4);
    flip(&segs[2].1, 3);
    let report = verify(dir.path()).unwrap();
    let bad = report.corruption.clone().unwrap();
    assert_eq!((bad.file.clone(), bad.offset), (segs[2].1.clone(), 0));
    let plan = repair(dir.path(), &opts()).unwrap().unwrap();
    assert!(plan.rewrite_header);
    assert_eq!(plan.cut_seq, segs[2].0);
    assert!(verify(dir.path()).unwrap().is_ok());
    let seqs = all_seqs(dir.path());
    assert!(!seqs.is_empty() && seqs.iter().all(|s| s.0 < segs[2].0));

    // A segment deleted from the middle: the previous one no longer reaches the next.
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1].1).unwrap();
    let report = verify(dir.path()).unwrap();
    let bad = report.corruption.clone().unwrap();
    assert_eq!(bad.file, segs[0].1);
    assert_eq!(bad.offset, std::fs::metadata(&segs[0].1).unwrap().len());
    assert!(bad.reason.contains("next segment"), "{}", bad.reason);
    let plan = repair(dir.path(), &opts()).unwrap().unwrap();
    assert_eq!(plan.removed.len(), segs.len() - 2);
    assert!(verify(dir.path()).unwrap().is_ok());
}

/// Segments a writer's retention deletes while verify walks the log are listed as retired, not
/// checked and not an error (it failed with an I/O "not found"); a file that goes while an
/// older one stays is a hole, and stays an I/O error.
#[test]
fn segments_retired_during_verify_are_reported_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let clean = verify(dir.path()).unwrap();
    let segs = segments(dir.path());
    let name = |i: usize| names(&segs)[i].clone();
    let fs = Arc::new(FsStorage::existing(dir.path()));

    // The three oldest go just as verify reaches the second: it walked the first already.
    let (n0, n1, n2) = (name(0), name(1), name(2));
    let racing = Racing::new(fs.clone(), At::FileLen(n1.clone()), &[&n0, &n1, &n2]);
    let report = verify_storage(&racing, &opts(), &mut |_| {}).unwrap();
    assert!(racing.raced());
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        report.retired_meanwhile,
        vec![segs[1].1.clone(), segs[2].1.clone()]
    );
    let checked: Vec<u64> = report.segments.iter().map(|s| s.base).collect();
    let mut expected = vec![segs[0].0];
    expected.extend(segs[3..].iter().map(|s| s.0));
    assert_eq!(checked, expected);
    let gone: u64 = clean.segments[1..3].iter().map(|s| s.records).sum();
    assert!(gone > 0);
    assert_eq!(report.records, clean.records - gone);
    assert_eq!((report.first, report.last), (clean.first, clean.last));
    assert_eq!(report.torn_tail, None);

    // A hole (in a log like it, the third goes while the older ones stay), and a directory
    // emptied of segments (a writer keeps its last one), are I/O errors.
    for gone in [vec![name(2)], names(&segs)] {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path(), 40);
        let fs = Arc::new(FsStorage::existing(dir.path()));
        let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
        let holed = Racing::new(fs, At::FileLen(gone[0].to_string()), &gone);
        match verify_storage(&holed, &opts(), &mut |_| {}) {
            Err(LogError::Io { path, source }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert_eq!(path.file_name().unwrap(), gone[0]);
            }
            other => panic!("{gone:?} gone verified as {other:?}"),
        }
        assert!(holed.raced());
    }

    // A repair holds the writer lock: no retirement runs under it, and a file gone is an error.
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let fs = Arc::new(FsStorage::existing(dir.path()));
    let racing = Racing::new(fs, At::FileLen(name(1)), &[&name(0), &name(1)]);
    match Repair::prepare_storage(Arc::new(racing), &opts(), &mut |_| {}) {
        Err(LogError::Io { source, .. }) => assert!(source.to_string().contains("locked")),
        other => panic!("a repair went on: {other:?}"),
    }
}

/// The file names of `segs`.
fn names(segs: &[(u64, PathBuf)]) -> Vec<String> {
    segs.iter()
        .map(|(_, p)| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect()
}

#[test]
fn repair_refuses_a_log_open_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 2);
    let log = OffsetLog::open_with(dir.path(), opts()).unwrap();
    let err = Repair::prepare(dir.path(), &opts(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
    // Verify takes no lock.
    assert!(verify(dir.path()).unwrap().is_ok());
    drop(log);
    assert_eq!(repair(dir.path(), &opts()).unwrap(), None);
}

#[test]
fn progress_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 40);
    let mut calls = Vec::new();
    let report =
        flume_log_offset::verify_with(dir.path(), &opts(), &mut |n| calls.push(n)).unwrap();
    assert_eq!(calls.last().copied(), Some(report.file_bytes()));
    assert!(calls.windows(2).all(|w| w[0] <= w[1]));
}
