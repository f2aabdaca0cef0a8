//! Real crashes: a child process (this test binary, re-executed) appends single records and
//! batches and prints each acknowledged seq; the parent SIGKILLs it at random moments, reopens
//! the log and checks that every acknowledged record is present and intact, that what was
//! recovered is a prefix of what was attempted, and that no batch is partial.
//!
//! Also: a second writer in another process is refused, naming the holder's pid.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

use std::io::{BufRead, BufReader};
use std::ops::Bound;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flume_core::{Bytes, Log, LogError, ReadRange, Seq};
use flume_log_offset::{Durability, OffsetLog, Options};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const CHILD: &str = "FLUME_CRASH_CHILD";

fn opts(cycle: u64) -> Options {
    let d = if cycle.is_multiple_of(2) {
        Durability::Sync
    } else {
        Durability::Buffered
    };
    Options::new().segment_size(64 << 10).durability(d)
}

/// Step `i` of cycle `cycle`: one batch (often of one record), the same in parent and child.
fn step(seed: u64, cycle: u64, i: u64) -> Vec<Bytes> {
    let mut rng = StdRng::seed_from_u64(seed ^ (cycle << 32) ^ i);
    let n = if rng.random_range(0..2) == 0 {
        1
    } else {
        rng.random_range(2..8)
    };
    (0..n)
        .map(|r| {
            let mut v = format!("c{cycle}s{i}r{r}/{n}|").into_bytes();
            let pad = rng.random_range(0..300);
            v.extend((0..pad).map(|_| rng.random::<u8>()));
            Bytes::from(v)
        })
        .collect()
}

/// The child: runs only when re-executed by a parent test.
#[test]
fn child_main() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let var = |k: &str| -> u64 { std::env::var(k).unwrap().parse().unwrap() };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    if std::env::var("FLUME_CHILD_HOLD").is_ok() {
        let _log = OffsetLog::open(&dir).unwrap();
        println!("holding");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let (seed, cycle) = (var("FLUME_CRASH_SEED"), var("FLUME_CRASH_CYCLE"));
    let log = OffsetLog::open_with(&dir, opts(cycle)).unwrap();
    rt.block_on(async {
        for i in 0..100_000 {
            let seqs = log.append_batch(step(seed, cycle, i)).await.unwrap();
            let seqs: Vec<String> = seqs.iter().map(|s| s.0.to_string()).collect();
            // Printed only after the acknowledgement: what the parent reads was acknowledged.
            println!("ack {i} {}", seqs.join(","));
        }
    });
}

fn spawn(dir: &Path, envs: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Forward every stdout line of the child to a channel.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn after(seq: Option<Seq>) -> ReadRange {
    ReadRange {
        lower: seq.map_or(Bound::Unbounded, Bound::Excluded),
        upper: Bound::Unbounded,
        reverse: false,
        max: usize::MAX,
        max_bytes: usize::MAX,
        values: true,
    }
}

#[test]
fn sigkill_at_random_moments() {
    let cycles: u64 = std::env::var("FLUME_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("FLUME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (set FLUME_SEED to replay), {cycles} cycles");
    let mut rng = StdRng::seed_from_u64(seed);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // What the log held after the previous cycle.
    let mut last: Option<(Seq, Bytes)> = None;
    let mut count = 0usize;
    let (mut acked_total, mut recovered_total) = (0, 0);
    for cycle in 0..cycles {
        let ctx = format!("seed {seed} cycle {cycle}");
        let mut child = spawn(
            dir.path(),
            &[
                ("FLUME_CRASH_SEED", seed.to_string()),
                ("FLUME_CRASH_CYCLE", cycle.to_string()),
            ],
        );
        let rx = lines(&mut child);
        let wait_for = rng.random_range(0..30);
        let mut acks: Vec<(u64, Vec<Seq>)> = Vec::new();
        let parse = |line: &str| -> Option<(u64, Vec<Seq>)> {
            // The test harness may print "test child_main ... " before the first line.
            let mut parts = line[line.find("ack ")? + 4..].split(' ');
            let i = parts.next()?.parse().ok()?;
            let seqs = parts
                .next()?
                .split(',')
                .map(|s| Seq(s.parse().unwrap()))
                .collect();
            Some((i, seqs))
        };
        while acks.len() < wait_for {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => acks.extend(parse(&line)),
                Err(_) => panic!("{ctx}: the child stopped acknowledging"),
            }
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever it printed before dying was acknowledged.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            acks.extend(parse(&line));
        }

        let log = OffsetLog::open_with(dir.path(), opts(cycle))
            .unwrap_or_else(|e| panic!("{ctx}: reopen after SIGKILL: {e}"));
        // The records of earlier cycles are untouched.
        if let Some((seq, value)) = &last {
            assert_eq!(&rt.block_on(log.get(*seq)).unwrap(), value, "{ctx}");
        }
        let new = rt
            .block_on(log.read(after(last.as_ref().map(|l| l.0))))
            .unwrap();
        // A prefix of the attempted steps, each batch whole and intact.
        let mut at = 0;
        let mut steps = 0u64;
        while at < new.len() {
            let want = step(seed, cycle, steps);
            assert!(
                at + want.len() <= new.len(),
                "{ctx}: step {steps} is partial"
            );
            for (k, w) in want.iter().enumerate() {
                assert_eq!(&new[at + k].1, w, "{ctx}: step {steps} record {k} differs");
            }
            if let Some((_, seqs)) = acks.iter().find(|(i, _)| *i == steps) {
                let got: Vec<Seq> = new[at..at + want.len()].iter().map(|r| r.0).collect();
                assert_eq!(&got, seqs, "{ctx}: step {steps} moved");
            }
            at += want.len();
            steps += 1;
        }
        let max_acked = acks.iter().map(|a| a.0 + 1).max().unwrap_or(0);
        assert!(
            steps >= max_acked,
            "{ctx}: {max_acked} steps acknowledged, {steps} recovered"
        );
        acked_total += max_acked;
        recovered_total += steps;
        count += new.len();
        if let Some(l) = new.last() {
            last = Some(l.clone());
        }
        rt.block_on(log.close()).unwrap();
    }
    // A final full read: every record of every cycle, in order, intact.
    let log = OffsetLog::open(dir.path()).unwrap();
    let everything = rt.block_on(log.read(after(None))).unwrap();
    assert_eq!(everything.len(), count);
    println!("{cycles} cycles: {acked_total} steps acknowledged, {recovered_total} recovered");
}

#[test]
fn second_writer_in_another_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path(), &[("FLUME_CHILD_HOLD", "1".into())]);
    let rx = lines(&mut child);
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child opens the log");
        if line.ends_with("holding") {
            break;
        }
    }
    match OffsetLog::open(dir.path()) {
        Err(LogError::Locked { holder }) => {
            assert!(
                holder.contains(&format!("process {}", child.id())),
                "{holder}"
            )
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("two writers opened one log"),
    }
    // Reading alongside the writer is allowed.
    OffsetLog::open_with(dir.path(), Options::new().read_only(true)).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The kernel released the dead holder's lock.
    OffsetLog::open(dir.path()).unwrap();
}
