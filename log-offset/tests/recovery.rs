//! Recovery: truncation at every byte of the tail, garbage tails, and single-bit flips.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::ops::Bound;
use std::sync::Arc;

use common::all;
use flume_core::{Bytes, Log, LogError, Seq};
use flume_log_offset::{OffsetLog, Options, SimStorage};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The only segment's name (base 0), and the bytes before its first frame.
const SEG: &str = "00000000000000000000.log";
const HDR: u64 = 32;
/// Frame bytes around a payload.
const OVERHEAD: u64 = 20;

fn seed() -> u64 {
    let seed = std::env::var("FLUME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (set FLUME_SEED to replay)");
    seed
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
}

/// One record, its seq, and the batch (index) it belongs to.
#[derive(Clone, Debug, PartialEq)]
struct Rec {
    seq: Seq,
    value: Bytes,
    batch: usize,
}

impl Rec {
    fn start(&self) -> u64 {
        self.seq.0 + HDR
    }
    fn end(&self) -> u64 {
        self.start() + OVERHEAD + self.value.len() as u64
    }
}

/// Write `batches` to a fresh simulated log (one segment) and return the records and the file.
fn build(rt: &tokio::runtime::Runtime, batches: &[Vec<Bytes>]) -> (Vec<Rec>, Vec<u8>) {
    let storage = SimStorage::new();
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), Options::new()).unwrap();
    let mut recs = Vec::new();
    rt.block_on(async {
        for (b, batch) in batches.iter().enumerate() {
            let seqs = log.append_batch(batch.clone()).await.unwrap();
            for (seq, value) in seqs.into_iter().zip(batch) {
                recs.push(Rec {
                    seq,
                    value: value.clone(),
                    batch: b,
                });
            }
        }
        log.close().await.unwrap();
    });
    (recs, storage.read_file(SEG).unwrap())
}

fn open_bytes(bytes: Vec<u8>, opts: Options) -> (SimStorage, Result<OffsetLog, LogError>) {
    let storage = SimStorage::new();
    storage.write_file(SEG, bytes);
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), opts);
    (storage, log)
}

fn read_all(rt: &tokio::runtime::Runtime, log: &OffsetLog) -> Result<Vec<(Seq, Bytes)>, LogError> {
    rt.block_on(log.read(all()))
}

/// The records of the whole batches that end at or before `len`.
fn complete(recs: &[Rec], len: u64) -> Vec<(Seq, Bytes)> {
    let whole = |b: usize| recs.iter().filter(|r| r.batch == b).all(|r| r.end() <= len);
    recs.iter()
        .filter(|r| whole(r.batch))
        .map(|r| (r.seq, r.value.clone()))
        .collect()
}

fn check_truncations(batches: Vec<Vec<Bytes>>) {
    let rt = rt();
    let (recs, bytes) = build(&rt, &batches);
    let from = recs[recs.len() - 3].start();
    for len in from..=bytes.len() as u64 {
        let (_, log) = open_bytes(bytes[..len as usize].to_vec(), Options::new());
        let log = log.unwrap_or_else(|e| panic!("cut at {len}: {e}"));
        let want = complete(&recs, len);
        assert_eq!(read_all(&rt, &log).unwrap(), want, "cut at {len}");
        assert_eq!(
            log.current_since(),
            want.last().map(|r| r.0),
            "cut at {len}"
        );
        let next = rt.block_on(log.append(Bytes::from("next"))).unwrap();
        assert_eq!(rt.block_on(log.get(next)).unwrap(), "next", "cut at {len}");
        let mut after = want.clone();
        after.push((next, Bytes::from("next")));
        assert_eq!(read_all(&rt, &log).unwrap(), after, "cut at {len}");
    }
}

#[test]
fn truncation_at_every_byte_of_the_last_three_frames() {
    let batches: Vec<Vec<Bytes>> = (0..40)
        .map(|i| vec![Bytes::from(vec![i as u8; 10 + i * 3])])
        .collect();
    check_truncations(batches);
}

#[test]
fn truncation_inside_a_batch_drops_the_whole_batch() {
    let mut batches: Vec<Vec<Bytes>> = (0..10).map(|i| vec![Bytes::from(vec![i; 50])]).collect();
    batches.push((0..3).map(|i| Bytes::from(vec![100 + i; 40])).collect());
    check_truncations(batches);
}

#[test]
fn garbage_tails_are_discarded_on_every_reopen() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = rt();
    for kind in ["zeros", "random"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEG);
        let mut want = Vec::new();
        for round in 0..10 {
            let log = OffsetLog::open(dir.path()).unwrap();
            assert_eq!(read_all(&rt, &log).unwrap(), want, "{kind} round {round}");
            for i in 0..5 {
                let v = Bytes::from(format!(
                    "{kind}-{round}-{i}-{}",
                    "y".repeat(rng.random_range(0..300))
                ));
                want.push((rt.block_on(log.append(v.clone())).unwrap(), v));
            }
            rt.block_on(log.close()).unwrap();
            let n = rng.random_range(1..=64 * 1024);
            let garbage: Vec<u8> = if kind == "zeros" {
                vec![0; n]
            } else {
                (0..n).map(|_| rng.random()).collect()
            };
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend_from_slice(&garbage);
            std::fs::write(&path, bytes).unwrap();
        }
        let log = OffsetLog::open(dir.path()).unwrap();
        assert_eq!(read_all(&rt, &log).unwrap(), want, "{kind} final");
    }
}

/// Which record (index) holds file byte `at`; `None` for the segment header.
fn holder(recs: &[Rec], at: u64) -> Option<usize> {
    recs.iter().position(|r| r.start() <= at && at < r.end())
}

#[test]
fn every_single_bit_flip_is_detected() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = rt();
    let mut batches = Vec::new();
    let mut total = 0;
    while total < 1 << 20 {
        let n = rng.random_range(1..2000);
        total += n + OVERHEAD as usize;
        batches.push(vec![Bytes::from(
            (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>(),
        )]);
    }
    let (recs, bytes) = build(&rt, &batches);
    let last = recs.len() - 1;
    let originals: std::collections::HashMap<Seq, Bytes> =
        recs.iter().map(|r| (r.seq, r.value.clone())).collect();
    let (mut torn, mut at_open, mut at_read) = (0, 0, 0);
    for flip in 0..10_000 {
        let at = rng.random_range(0..bytes.len() as u64);
        let bit = rng.random_range(0..8);
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 1 << bit;
        let who = holder(&recs, at);
        let ctx = format!("flip {flip}: bit {bit} of byte {at} (record {who:?} of {last})");
        // Half the time verify little at open, so damage must be caught while reading.
        let verify = if flip % 2 == 0 { 1 << 20 } else { 4096 };
        let opts = Options::new().verify_tail_bytes(verify);
        let (_, log) = open_bytes(damaged.clone(), opts.clone());
        if who == Some(last) {
            let log = log.unwrap_or_else(|e| panic!("{ctx}: a torn last frame must open: {e}"));
            let want: Vec<_> = recs[..last]
                .iter()
                .map(|r| (r.seq, r.value.clone()))
                .collect();
            assert_eq!(read_all(&rt, &log).unwrap(), want, "{ctx}");
            torn += 1;
            continue;
        }
        match log {
            Err(LogError::Corrupt { file, offset, .. }) => {
                assert!(file.ends_with(SEG) && offset <= bytes.len() as u64, "{ctx}");
                at_open += 1;
                if flip % 8 != 0 {
                    continue; // the read-only check on a sample keeps the test quick
                }
                // Read-only still serves the intact records before the damage.
                // (A damaged segment header leaves nothing to trust: read-only refuses too.)
                let (_, ro) = open_bytes(damaged, opts.read_only(true));
                let ro = match (ro, who) {
                    (Ok(ro), _) => ro,
                    (Err(LogError::Corrupt { offset: 0, .. }), None) => continue,
                    (Err(e), _) => panic!("{ctx}: read-only open: {e}"),
                };
                assert!(ro.corruption().is_some(), "{ctx}");
                if let Ok(got) = read_all(&rt, &ro) {
                    for (s, v) in &got {
                        assert_eq!(originals.get(s), Some(v), "{ctx}: altered record returned");
                    }
                }
            }
            Err(e) => panic!("{ctx}: expected Corrupt, got {e}"),
            Ok(log) => {
                assert_eq!(
                    log.current_since(),
                    Some(recs[last].seq),
                    "{ctx}: data was cut"
                );
                // Forward always; backward on a sample, to keep the test quick.
                let directions: &[bool] = if flip % 8 == 1 {
                    &[false, true]
                } else {
                    &[false]
                };
                for &reverse in directions {
                    let mut found = false;
                    let mut range = all();
                    range.reverse = reverse;
                    range.max = 256;
                    // Page through like a stream, checking every record returned.
                    loop {
                        match rt.block_on(log.read(range.clone())) {
                            Ok(page) if page.is_empty() => break,
                            Ok(page) => {
                                for (s, v) in &page {
                                    assert_eq!(originals.get(s), Some(v), "{ctx}: altered record");
                                }
                                let s = page.last().map(|p| p.0).unwrap_or(Seq(0));
                                if reverse {
                                    range.upper = Bound::Excluded(s);
                                } else {
                                    range.lower = Bound::Excluded(s);
                                }
                            }
                            Err(LogError::Corrupt { offset, reason, .. }) => {
                                // The damaged frame is named: forwards by its start, backwards
                                // by its end (its trailer may be what was damaged).
                                if let Some(i) = who {
                                    let want = if reverse {
                                        recs[i].end()
                                    } else {
                                        recs[i].start()
                                    };
                                    assert_eq!(
                                        offset, want,
                                        "{ctx}: {reason} (reverse: {reverse})"
                                    );
                                    assert_eq!(reason.contains("ending at this offset"), reverse);
                                }
                                found = true;
                                break;
                            }
                            Err(e) => panic!("{ctx}: {e}"),
                        }
                    }
                    assert!(found, "{ctx}: the flip went unnoticed (reverse: {reverse})");
                }
                if let Some(i) = who {
                    assert!(
                        matches!(
                            rt.block_on(log.get(recs[i].seq)),
                            Err(LogError::Corrupt { .. })
                        ),
                        "{ctx}"
                    );
                }
                at_read += 1;
            }
        }
    }
    println!("10000 flips: {torn} torn tails cut, {at_open} corrupt at open, {at_read} at read");
}

/// Segment names at the top of the seq space (a damaged or hostile directory) are refused as
/// corruption, not an arithmetic overflow.
#[test]
fn segments_named_near_the_end_of_the_seq_space_are_corruption() {
    let storage = SimStorage::new();
    for name in ["18446744073709551000.log", "18446744073709551615.log"] {
        storage.write_file(name, vec![0u8; 1000]);
    }
    for read_only in [false, true] {
        let opts = Options::new().read_only(read_only);
        match OffsetLog::open_storage(Arc::new(storage.clone()), opts) {
            Err(LogError::Corrupt { .. }) => {}
            Err(e) => panic!("not corruption: {e}"),
            Ok(_) => panic!("opened"),
        }
    }
    let report = flume_log_offset::verify_storage(&storage, &Options::new(), &mut |_| {}).unwrap();
    assert!(report.corruption.is_some());
}
