//! Injected I/O errors: a failed write or fdatasync acknowledges nothing, poisons the writer, and
//! a reopen finds every record acknowledged before.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::io;
use std::sync::Arc;

use common::all;
use flume_core::{Bytes, Log, LogError, Seq};
use flume_log_offset::storage::{Fault, FaultOp, LockError, LockGuard, Storage, StorageFile};
use flume_log_offset::{Durability, OffsetLog, Options, Repair, SimStorage, verify_storage};
use futures::FutureExt;
use futures::future::join_all;

async fn acked(log: &OffsetLog, n: usize) -> Vec<(Seq, Bytes)> {
    let mut out = Vec::new();
    for i in 0..n {
        let v = Bytes::from(format!("acked-{i}"));
        out.push((log.append(v.clone()).await.unwrap(), v));
    }
    out
}

/// A log of small (4 KiB) segments, on simulated storage, holding `n` acknowledged records.
async fn segmented(n: usize) -> (SimStorage, Options, OffsetLog, Vec<(Seq, Bytes)>) {
    let storage = SimStorage::new();
    let opts = Options::new().segment_size(4096);
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone()).unwrap();
    let records = acked(&log, n).await;
    (storage, opts, log, records)
}

async fn fails_and_poisons(fault: Fault, d: Durability, opts: Options) {
    fails_and_poisons_sized(fault, d, opts, 0).await;
}

/// As `fails_and_poisons`, with records padded by `pad` bytes.
async fn fails_and_poisons_sized(fault: Fault, d: Durability, opts: Options, pad: usize) {
    let storage = SimStorage::new();
    let log =
        OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone().durability(d)).unwrap();
    let before = acked(&log, 10).await;
    let since = log.current_since();
    let stats = log.write_stats();
    storage.inject(fault);
    // Several batches in flight together: they share the failing write or sync.
    let batch = |i: usize| {
        ["a", "b"]
            .map(|r| {
                let mut v = format!("doomed-{i}-{r}").into_bytes();
                v.resize(v.len() + pad, b'.');
                Bytes::from(v)
            })
            .to_vec()
    };
    let results = join_all((0..5).map(|i| log.append_batch(batch(i)))).await;
    for (i, r) in results.into_iter().enumerate() {
        let e = r.expect_err("no acknowledgement after a failed write or sync");
        assert_eq!(e.rejected, batch(i), "the records are handed back");
        assert!(
            matches!(e.error, LogError::Io { .. } | LogError::Poisoned { .. }),
            "{}",
            e.error
        );
    }
    assert_eq!(
        log.current_since(),
        since,
        "since never moves for a failed batch"
    );
    assert_eq!(
        log.write_stats(),
        stats,
        "a failed write or sync counts nothing"
    );
    let later = log.append(Bytes::from("later")).await.unwrap_err();
    assert!(
        matches!(later.error, LogError::Poisoned { .. }),
        "{}",
        later.error
    );
    assert!(
        later.error.to_string().contains("reopened"),
        "{}",
        later.error
    );
    assert_eq!(log.read(all()).await.unwrap(), before, "reads still work");
    // No sync is retried after the failure, not even by close.
    let ops = storage.ops();
    let _ = log.close().await;
    assert_eq!(storage.ops(), ops, "close retried a write or sync");
    storage.clear_faults();

    // Reopen without power loss: exactly what was acknowledged.
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone()).unwrap();
    assert_eq!(log.read(all()).await.unwrap(), before);
    log.append(Bytes::from("works again")).await.unwrap();
    log.close().await.unwrap();

    // And after a power loss, whatever the disk kept of the failed batches: every acknowledged
    // record, and the failed batches whole or not at all.
    for seed in 0..20 {
        let image = storage.crash_image(seed);
        let log = OffsetLog::open_storage(Arc::new(image), opts.clone()).unwrap();
        let got = log.read(all()).await.unwrap();
        assert_eq!(&got[..before.len()], &before[..], "seed {seed}");
    }
}

#[tokio::test]
async fn fsync_failure_poisons_sync_mode() {
    fails_and_poisons(Fault::new(FaultOp::Sync), Durability::Sync, Options::new()).await;
}

#[tokio::test]
async fn fsync_failure_once_still_poisons() {
    // Even when the next fsync would succeed, it is never retried.
    fails_and_poisons(
        Fault::new(FaultOp::Sync).times(1),
        Durability::Sync,
        Options::new(),
    )
    .await;
}

#[tokio::test]
async fn enospc_on_write_poisons_both_modes() {
    for d in [Durability::Sync, Durability::Buffered] {
        fails_and_poisons(Fault::new(FaultOp::Write).errno(28), d, Options::new()).await;
    }
}

#[tokio::test]
async fn failures_with_large_batches_poison() {
    // 5 batches of 2 × 60 KB in flight together.
    for (op, d) in [
        (FaultOp::Write, Durability::Sync),
        (FaultOp::Write, Durability::Buffered),
        (FaultOp::Sync, Durability::Sync),
    ] {
        fails_and_poisons_sized(Fault::new(op), d, Options::new(), 60_000).await;
    }
}

#[tokio::test]
async fn failure_creating_the_next_segment_poisons() {
    let opts = Options::new().segment_size(4096);
    let storage = SimStorage::new();
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone()).unwrap();
    let before = acked(&log, 3).await;
    storage.inject(Fault::new(FaultOp::Create));
    let big = Bytes::from(vec![7u8; 3000]);
    let mut failed = None;
    for _ in 0..3 {
        if let Err(e) = log.append(big.clone()).await {
            failed = Some(e.error);
            break;
        }
    }
    let failed = failed.expect("a roll needed a new segment and creation failed");
    assert!(
        matches!(failed, LogError::Io { .. }),
        "the I/O error: {failed}"
    );
    assert!(matches!(
        log.append(Bytes::from("x")).await.unwrap_err().error,
        LogError::Poisoned { .. }
    ));
    let got = log.read(all()).await.unwrap();
    assert_eq!(&got[..3], &before[..]);
    drop(log);
    storage.clear_faults();
    let log = OffsetLog::open_storage(Arc::new(storage), opts).unwrap();
    assert_eq!(log.read(all()).await.unwrap(), got);
    log.append(big).await.unwrap();
}

/// In `Buffered` mode a roll syncs the segment it seals: when that sync fails, the batch that
/// needed the roll gets the I/O error (as a failed group's first batch does), not `Poisoned`.
#[tokio::test]
async fn a_failed_sync_at_a_roll_fails_the_batch_with_the_io_error() {
    let storage = SimStorage::new();
    let opts = Options::new()
        .durability(Durability::Buffered)
        .segment_size(4096);
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts).unwrap();
    log.append(Bytes::from(vec![1u8; 3000])).await.unwrap();
    storage.inject(Fault::new(FaultOp::Sync));
    let e = log.append(Bytes::from(vec![2u8; 3000])).await.unwrap_err();
    assert!(matches!(e.error, LogError::Io { .. }), "{}", e.error);
    assert_eq!(e.rejected, Bytes::from(vec![2u8; 3000]));
    let later = log.append(Bytes::from("x")).await.unwrap_err();
    assert!(matches!(later.error, LogError::Poisoned { .. }));
}

#[tokio::test]
async fn open_fails_cleanly_when_the_disk_fails() {
    let storage = SimStorage::new();
    storage.inject(Fault::new(FaultOp::SyncDir));
    let e = OffsetLog::open_storage(Arc::new(storage.clone()), Options::new())
        .err()
        .expect("open must report the failed directory sync");
    assert!(matches!(e, LogError::Io { .. }), "{e}");
    storage.clear_faults();
    // The lock was released and the half-created segment is cleaned up.
    let log = OffsetLog::open_storage(Arc::new(storage), Options::new()).unwrap();
    log.append(Bytes::from("ok")).await.unwrap();
}

/// A storage that cannot open one file, as when the disk fails to read it (EIO) or its
/// permissions changed; every other operation goes to `inner`.
struct Unopenable {
    inner: SimStorage,
    name: String,
}

impl Storage for Unopenable {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.inner.path(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn file_len(&self, name: &str) -> io::Result<u64> {
        self.inner.file_len(name)
    }
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn StorageFile>> {
        if name == self.name {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        self.inner.open(name, write)
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.create(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
    fn lock(&self) -> Result<LockGuard, LockError> {
        self.inner.lock()
    }
}

/// A segment that cannot be read is an I/O error for reads, `verify` and `repair`, never damage:
/// damage at a segment's header would make `repair` replace it and delete every later segment.
#[tokio::test]
async fn an_unreadable_segment_is_an_io_error_not_damage() {
    let (storage, opts, log, records) = segmented(300).await;
    log.close().await.unwrap();
    drop(log);
    let mut names = storage.list().unwrap();
    names.retain(|n| n.ends_with(".log"));
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    let unopenable = Arc::new(Unopenable {
        inner: storage.clone(),
        name: names[1].clone(),
    });
    let is_io = |e: &LogError| matches!(e, LogError::Io { .. });

    let e = verify_storage(&*unopenable, &opts, &mut |_| {}).unwrap_err();
    assert!(is_io(&e), "verify: {e}");
    let e = Repair::prepare_storage(unopenable.clone(), &opts, &mut |_| {}).unwrap_err();
    assert!(is_io(&e), "repair: {e}");
    let log = OffsetLog::open_storage(unopenable, opts.clone()).unwrap();
    let in_second = records
        .iter()
        .map(|(seq, _)| *seq)
        .find(|seq| log.get(*seq).now_or_never().unwrap().is_err())
        .expect("a record in the unreadable segment");
    let e = log.get(in_second).await.unwrap_err();
    assert!(is_io(&e), "get: {e}");
    log.close().await.unwrap();
    drop(log);

    let log = OffsetLog::open_storage(Arc::new(storage), opts).unwrap();
    assert_eq!(log.read(all()).await.unwrap(), records, "nothing was cut");
}

/// A retirement that cannot delete a segment file fails with the I/O error, and leaves every
/// segment it did not delete readable: the log then reports the same first record a reopen
/// would find, and a retry deletes the rest.
#[tokio::test]
async fn a_failed_retirement_keeps_what_it_did_not_delete() {
    let (storage, opts, log, records) = segmented(400).await;
    let cut = records[300].0;
    // The first file goes, the second cannot be deleted.
    storage.inject(Fault::new(FaultOp::Remove).after(1).times(1));
    let e = log.retire_before(cut).unwrap_err();
    assert!(matches!(e, LogError::Io { .. }), "{e:?}");
    let first = log.first().unwrap();
    assert!(first > records[0].0 && first < cut, "{first} {cut}");
    let kept = log.read(all()).await.unwrap();
    let from = records.iter().position(|r| r.0 == first).unwrap();
    assert_eq!(
        kept.as_slice(),
        &records[from..],
        "from the first file not deleted"
    );
    let reopened = OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone().read_only(true));
    assert_eq!(reopened.unwrap().first(), Some(first), "as a reopen finds");
    // A retry deletes the rest, and a reopen agrees.
    let first = log.retire_before(cut).unwrap().first.unwrap();
    assert!(first > records[from].0 && first <= cut, "{first} {cut}");
    log.close().await.unwrap();
    let log = OffsetLog::open_storage(Arc::new(storage), opts).unwrap();
    assert_eq!(log.first(), Some(first));
    log.close().await.unwrap();
}
