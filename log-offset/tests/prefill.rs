//! The writer keeps its active segment zero-filled ahead of its frames, in 1 MiB steps: a crash
//! leaves those zeros, which recovery skips and cuts and `verify` does not call a torn tail, and
//! a sealed or closed segment ends exactly at its last frame.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::all;
use flume_core::{Bytes, Log, Seq};
use flume_log_offset::storage::{LockError, LockGuard, Storage, StorageFile};
use flume_log_offset::{OffsetLog, Options, SimStorage, verify_storage};

const MIB: usize = 1 << 20;
const FIRST: &str = "00000000000000000000.log";
/// A segment header's and a frame's bytes beyond the record.
const SEG_HEADER: usize = 32;
const FRAME: usize = 20;

/// Appends `n` records of about 1 KiB, the odd ones in batches of three; every record with its
/// seq, and the file position where the frames end.
async fn fill(log: &OffsetLog, n: usize) -> (Vec<(Seq, Bytes)>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let batch: Vec<Bytes> = (i..(i + 1 + 2 * (i % 2)).min(n))
            .map(|j| Bytes::from(format!("{j:06}-{}", "r".repeat(1000 + j % 97))))
            .collect();
        i += batch.len();
        let seqs = log.append_batch(batch.clone()).await.unwrap();
        out.extend(seqs.into_iter().zip(batch));
    }
    let end = SEG_HEADER + out.iter().map(|(_, r)| r.len() + FRAME).sum::<usize>();
    (out, end)
}

fn opened(storage: &SimStorage, opts: &Options) -> OffsetLog {
    OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone()).unwrap()
}

#[tokio::test]
async fn zeros_ahead_of_the_frames_survive_a_crash_and_are_cut() {
    let storage = SimStorage::new();
    let opts = Options::new().segment_size(8 << 20);
    let log = opened(&storage, &opts);
    // 1,500 records of ~1 KiB cross the first MiB: the zeros run to the second.
    let (acked, end) = fill(&log, 1500).await;
    let live = storage.read_file(FIRST).unwrap();
    assert!(end > MIB && end < 2 * MIB, "{end}");
    assert_eq!(live.len(), 2 * MIB, "zero-filled to the next MiB");
    assert!(live[end..].iter().all(|&b| b == 0));

    // Beside the live writer, verify finds every record and no torn tail.
    let report = verify_storage(&storage, &opts, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.records, report.torn_tail), (1500, None));

    // The process dies (the page cache survives): everything is there, the zeros are cut.
    let killed = SimStorage::new();
    killed.write_file(FIRST, live.clone());
    let reopened = opened(&killed, &opts);
    assert_eq!(reopened.read(all()).await.unwrap(), acked);
    assert_eq!(killed.read_file(FIRST).unwrap().len(), end);
    reopened.append(Bytes::from("after")).await.unwrap();
    reopened.close().await.unwrap();

    // The machine dies: every acknowledged (synced) record survives whatever the disk kept.
    for seed in 0..20 {
        let image = storage.crash_image(seed);
        let log = opened(&image, &opts);
        assert_eq!(log.read(all()).await.unwrap(), acked, "seed {seed}");
    }

    log.close().await.unwrap();
    assert_eq!(
        storage.read_file(FIRST).unwrap().len(),
        end,
        "a closed segment ends at its last frame"
    );
}

#[tokio::test]
async fn bytes_past_the_zeros_are_a_torn_tail() {
    let storage = SimStorage::new();
    let opts = Options::new();
    let log = opened(&storage, &opts);
    let (acked, end) = fill(&log, 50).await;
    // A crashed process's file whose zeros end in a stray sector of a write that never finished.
    let mut live = storage.read_file(FIRST).unwrap();
    assert_eq!(live.len(), MIB);
    live[end + 5000..end + 5512].fill(7);
    let crashed = SimStorage::new();
    crashed.write_file(FIRST, live);
    let report = verify_storage(&crashed, &opts, &mut |_| {}).unwrap();
    let torn = report.torn_tail.expect("the stray bytes are a torn tail");
    assert_eq!((torn.offset, torn.bytes), (end as u64, (MIB - end) as u64));
    let reopened = opened(&crashed, &opts);
    assert_eq!(reopened.read(all()).await.unwrap(), acked);
    assert_eq!(crashed.read_file(FIRST).unwrap().len(), end);
    log.close().await.unwrap();
}

#[tokio::test]
async fn sealed_segments_end_at_their_last_frame() {
    let storage = SimStorage::new();
    // 64 KiB segments: each is zero-filled whole when started, and cut when the next begins.
    let opts = Options::new().segment_size(64 << 10);
    let log = opened(&storage, &opts);
    let (acked, _) = fill(&log, 300).await;
    let mut names = storage.list().unwrap();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    let bases: Vec<usize> = names.iter().map(|n| n[..20].parse().unwrap()).collect();
    for (i, name) in names.iter().enumerate() {
        let len = storage.read_file(name).unwrap().len();
        match bases.get(i + 1) {
            Some(next) => assert_eq!(len, SEG_HEADER + next - bases[i], "{name}"),
            None => assert_eq!(len, 64 << 10, "the active segment is zero-filled"),
        }
    }
    // Power loss right after the sealed segments were cut: every record, in place.
    for seed in 0..5 {
        let log = opened(&storage.crash_image(seed), &opts);
        assert_eq!(log.read(all()).await.unwrap(), acked, "seed {seed}");
    }
    log.close().await.unwrap();
}

#[tokio::test]
async fn an_empty_last_record_before_the_zeros_is_kept() {
    let storage = SimStorage::new();
    let opts = Options::new();
    let log = opened(&storage, &opts);
    let (mut acked, _) = fill(&log, 3).await;
    let empty = Bytes::new();
    acked.push((log.append(empty.clone()).await.unwrap(), empty));
    let killed = SimStorage::new();
    killed.write_file(FIRST, storage.read_file(FIRST).unwrap());
    assert_eq!(opened(&killed, &opts).read(all()).await.unwrap(), acked);
    log.close().await.unwrap();
}

/// Beside a live writer, a reader may size the last segment before the writer cuts its zeros
/// (at a close or a segment switch) and read past the new end: a read-only open and `verify`
/// then start again, and see the frames whole.
#[tokio::test]
async fn a_reader_that_sized_the_file_before_the_zeros_were_cut_starts_again() {
    let storage = SimStorage::new();
    let opts = Options::new();
    let log = opened(&storage, &opts);
    let (acked, _) = fill(&log, 20).await;
    log.close().await.unwrap();
    let stale = Stale {
        inner: storage.clone(),
        misreport: Arc::new(AtomicU32::new(1)),
    };
    let ro = Options::new().read_only(true);
    let reader = OffsetLog::open_storage(Arc::new(stale.clone()), ro.clone()).unwrap();
    assert_eq!(reader.read(all()).await.unwrap(), acked);
    assert_eq!(
        stale.misreport.load(Ordering::SeqCst),
        0,
        "the stale length was seen"
    );

    stale.misreport.store(1, Ordering::SeqCst);
    let report = verify_storage(&stale, &ro, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!((report.records, report.torn_tail), (20, None));
    assert_eq!(stale.misreport.load(Ordering::SeqCst), 0);
}

/// A storage whose files report the length they had before a writer cut 1 MiB of zeros, the
/// first `misreport` times a length is asked (of the storage or of an open file).
#[derive(Clone)]
struct Stale {
    inner: SimStorage,
    misreport: Arc<AtomicU32>,
}

struct StaleFile {
    inner: Arc<dyn StorageFile>,
    misreport: Arc<AtomicU32>,
}

/// `MIB` while `misreport` counts down, then 0.
fn stale(misreport: &AtomicU32) -> u64 {
    misreport
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .map_or(0, |_| MIB as u64)
}

impl StorageFile for StaleFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.inner.len()? + stale(&self.misreport))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Storage for Stale {
    fn path(&self, name: &str) -> PathBuf {
        self.inner.path(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(self.inner.file_len(name)? + stale(&self.misreport))
    }
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(StaleFile {
            inner: self.inner.open(name, write)?,
            misreport: self.misreport.clone(),
        }))
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
