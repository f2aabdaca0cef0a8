//! Simulated power loss at every storage operation of mixed workloads: each crash image must open
//! (a torn tail is never mistaken for corruption) and recover a prefix of whole batches that holds
//! every batch acknowledged in `Sync` mode.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::all;
use flume_core::{Bytes, Log, Seq};
use flume_log_offset::{Durability, OffsetLog, Options, SimStorage};
use futures::future::join_all;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A step appends one batch, or several batches concurrently (they share a group commit).
type Step = Vec<Vec<Bytes>>;

/// Records of up to `pad` random bytes after their id.
fn workload(seed: u64, pad: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..30)
        .map(|s| {
            let batches = if rng.random_range(0..4) == 0 {
                rng.random_range(2..5)
            } else {
                1
            };
            (0..batches)
                .map(|b| {
                    let n = rng.random_range(1..5);
                    (0..n)
                        .map(|r| {
                            let mut v = format!("s{s}b{b}r{r}/{n}|").into_bytes();
                            let pad = rng.random_range(0..pad);
                            v.extend((0..pad).map(|_| rng.random::<u8>()));
                            Bytes::from(v)
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// `(step, batch)` of a record, from its prefix.
fn id(v: &[u8]) -> (usize, usize, usize, usize) {
    let s = String::from_utf8_lossy(&v[..v.iter().position(|&c| c == b'|').unwrap()]).to_string();
    let nums: Vec<usize> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2], nums[3])
}

fn opts(d: Durability, segment: u64) -> Options {
    Options::new().segment_size(segment).durability(d)
}

/// Records of up to 700 bytes in small segments: many rolls.
const PAD: usize = 700;
const SEGMENT: u64 = 4096;
/// Records of up to 30 KB: batches and groups of up to hundreds of KB, several per segment.
const BIG_PAD: usize = 30_000;
const BIG_SEGMENT: u64 = 1 << 20;

/// Run the workload until the first failure; the acknowledged batches with their seqs.
async fn run(
    storage: &SimStorage,
    steps: &[Step],
    d: Durability,
    segment: u64,
) -> Vec<((usize, usize), Vec<Seq>)> {
    let mut acked = Vec::new();
    let Ok(log) = OffsetLog::open_storage(Arc::new(storage.clone()), opts(d, segment)) else {
        return acked;
    };
    'steps: for (s, step) in steps.iter().enumerate() {
        let results = join_all(step.iter().map(|b| log.append_batch(b.clone()))).await;
        let mut failed = false;
        for (b, r) in results.into_iter().enumerate() {
            match r {
                Ok(seqs) => acked.push(((s, b), seqs)),
                Err(_) => failed = true,
            }
        }
        if failed {
            break 'steps;
        }
    }
    let _ = log.close().await;
    acked
}

async fn check(
    image: SimStorage,
    steps: &[Step],
    acked: &[((usize, usize), Vec<Seq>)],
    d: Durability,
    segment: u64,
    ctx: &str,
) {
    let log = OffsetLog::open_storage(Arc::new(image.clone()), opts(d, segment))
        .unwrap_or_else(|e| panic!("{ctx}: the crash image does not open: {e}"));
    let got = log
        .read(all())
        .await
        .unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
    // Group into batches, checking each record's bytes and each batch's wholeness.
    let mut batches: Vec<((usize, usize), Vec<Seq>)> = Vec::new();
    let mut i = 0;
    while i < got.len() {
        let (s, b, r, n) = id(&got[i].1);
        assert_eq!(r, 0, "{ctx}: a batch starts mid-way at {}", got[i].0);
        let want = &steps[s][b];
        assert!(
            i + n <= got.len(),
            "{ctx}: partial batch s{s}b{b} at the end"
        );
        let mut seqs = Vec::new();
        for k in 0..n {
            assert_eq!(got[i + k].1, want[k], "{ctx}: record s{s}b{b}r{k} differs");
            seqs.push(got[i + k].0);
        }
        batches.push(((s, b), seqs));
        i += n;
    }
    // A prefix of the steps: every step before the last present one is whole; no duplicates.
    let present: HashMap<(usize, usize), Vec<Seq>> = batches.iter().cloned().collect();
    assert_eq!(present.len(), batches.len(), "{ctx}: a batch appears twice");
    let last_step = batches.iter().map(|((s, _), _)| *s).max();
    let mut prev = 0;
    for ((s, _), _) in &batches {
        assert!(*s >= prev, "{ctx}: steps out of order");
        prev = *s;
    }
    if let Some(last) = last_step {
        for (s, step) in steps.iter().enumerate().take(last) {
            for b in 0..step.len() {
                assert!(
                    present.contains_key(&(s, b)),
                    "{ctx}: s{s}b{b} missing before s{last}"
                );
            }
        }
    }
    if d == Durability::Sync {
        for (key, seqs) in acked {
            assert_eq!(
                present.get(key),
                Some(seqs),
                "{ctx}: acknowledged batch {key:?} lost"
            );
        }
    }
    // The recovered log takes appends and keeps them.
    let extra = log
        .append(Bytes::from("after"))
        .await
        .unwrap_or_else(|e| panic!("{ctx}: {}", e.error));
    log.close().await.unwrap();
    let log = OffsetLog::open_storage(Arc::new(image), opts(d, segment)).unwrap();
    assert_eq!(log.get(extra).await.unwrap(), "after", "{ctx}");
    assert_eq!(log.read(all()).await.unwrap().len(), got.len() + 1, "{ctx}");
}

fn crash_points(d: Durability, workloads: u64, pad: usize, segment: u64) -> usize {
    let seed: u64 = std::env::var("FLUME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (set FLUME_SEED to replay)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut points = 0;
    for w in 0..workloads {
        let wseed = seed.wrapping_add(w);
        let steps = workload(wseed, pad);
        let dry = SimStorage::new();
        rt.block_on(run(&dry, &steps, d, segment));
        let total = dry.ops();
        for k in 0..=total {
            let storage = SimStorage::new();
            storage.crash_after(k);
            let acked = rt.block_on(run(&storage, &steps, d, segment));
            for image_seed in 0..2 {
                let ctx = format!(
                    "{d:?} workload seed {wseed}, crash after {k} of {total} ops, image {image_seed}"
                );
                let image = storage.crash_image(wseed ^ (k << 8) ^ image_seed);
                rt.block_on(check(image, &steps, &acked, d, segment, &ctx));
                points += 1;
            }
        }
    }
    points
}

#[test]
fn power_loss_sync() {
    let n = crash_points(Durability::Sync, 6, PAD, SEGMENT);
    println!("{n} crash images checked");
    assert!(n >= 1000, "only {n} crash points");
}

#[test]
fn power_loss_buffered_keeps_whole_batches() {
    let n = crash_points(Durability::Buffered, 2, PAD, SEGMENT);
    println!("{n} crash images checked");
}

#[test]
fn power_loss_large_batches() {
    for d in [Durability::Sync, Durability::Buffered] {
        let n = crash_points(d, 1, BIG_PAD, BIG_SEGMENT);
        println!("{d:?}: {n} crash images checked");
    }
}
