//! `OffsetLog::write_stats`: what the writer counted matches what was appended, written and
//! synced, in both modes.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

use std::sync::Arc;

use flume_core::{Bytes, Log};
use flume_log_offset::storage::Storage;
use flume_log_offset::{Durability, OffsetLog, Options, SimStorage};
use futures::future::join_all;

/// A frame's bytes beyond its record.
const FRAME: u64 = 20;

fn record(i: usize) -> Bytes {
    Bytes::from(format!("record-{i}-{}", "x".repeat(i % 50)))
}

fn framed(records: &[Bytes]) -> u64 {
    records.iter().map(|r| r.len() as u64 + FRAME).sum()
}

#[tokio::test]
async fn sync_mode_counts_each_awaited_batch_and_its_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = OffsetLog::open(dir.path()).unwrap();
    assert_eq!(log.write_stats().syncs, 0, "nothing written yet");
    assert_eq!(log.write_stats().batches_per_sync(), None);

    // Awaited one at a time: every batch is its own group, write and sync.
    let singles: Vec<Bytes> = (0..10).map(record).collect();
    for (i, r) in singles.iter().enumerate() {
        log.append(r.clone()).await.unwrap();
        // Counted before it was acknowledged.
        assert_eq!(log.write_stats().records, i as u64 + 1);
    }
    let batch: Vec<Bytes> = (10..13).map(record).collect();
    log.append_batch(batch.clone()).await.unwrap();
    let s = log.write_stats();
    assert_eq!((s.batches, s.records), (11, 13));
    assert_eq!((s.writes, s.syncs), (11, 11));
    assert_eq!(s.bytes, framed(&singles) + framed(&batch));
    assert_eq!(s.mean_sync(), Some(s.sync_time / 11));
    assert_eq!(s.batches_per_sync(), Some(1.0));

    // Concurrent appenders share writes and syncs: at most one each per batch.
    let many: Vec<Bytes> = (13..77).map(record).collect();
    join_all(many.iter().map(|r| log.append(r.clone()))).await;
    let t = log.write_stats();
    assert_eq!((t.batches - s.batches, t.records - s.records), (64, 64));
    assert_eq!(t.bytes - s.bytes, framed(&many));
    let (writes, syncs) = (t.writes - s.writes, t.syncs - s.syncs);
    assert!((1..=64).contains(&writes), "{writes} writes for 64 batches");
    assert_eq!(syncs, writes, "one sync per write in Sync mode");
    log.close().await.unwrap();

    // A reopened log counts from zero.
    let log = OffsetLog::open(dir.path()).unwrap();
    assert_eq!(log.write_stats(), Default::default());
    log.close().await.unwrap();
}

#[tokio::test]
async fn buffered_mode_syncs_on_demand_on_segment_switch_and_at_close() {
    let storage = SimStorage::new();
    let opts = Options::new()
        .durability(Durability::Buffered)
        .segment_size(4096);
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts.clone()).unwrap();
    log.append(record(0)).await.unwrap();
    let s = log.write_stats();
    assert_eq!(
        (s.batches, s.writes, s.syncs),
        (1, 1, 0),
        "acknowledged after write"
    );
    log.sync().await.unwrap();
    assert_eq!(log.write_stats().syncs, 1);
    log.sync().await.unwrap();
    assert_eq!(log.write_stats().syncs, 1, "nothing new to sync");

    // 100 records of ~100 bytes fill several 4 KiB segments: each full one is synced.
    for i in 1..=100 {
        log.append(Bytes::from(vec![b'r'; 80 + i % 40]))
            .await
            .unwrap();
    }
    let s = log.write_stats();
    assert_eq!(s.batches, 101);
    let files = storage.list().unwrap().len() as u64;
    assert!(files > 2, "{files} files");
    // The first segment was synced by `sync` before it filled; every later switch seals one.
    assert_eq!(s.syncs, 1 + (files - 1), "one sync per sealed segment");
    assert_eq!(s.writes, 101, "a write per awaited batch");
    log.close().await.unwrap();
    assert_eq!(
        log.write_stats().syncs,
        s.syncs + 1,
        "close syncs the last segment"
    );
}
