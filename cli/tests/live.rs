//! `flume stream --live` in one process shows records appended by `flume append` in another.
//! (Arrival only: timings belong in flume-bench.)

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ok;
use serde_json::{Value, json};

/// A safety net so a broken build fails instead of hanging; not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

struct Streamer {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Streamer {
    fn start(db: &std::path::Path, args: &[&str]) -> Streamer {
        let mut child = Command::new(common::exe())
            .arg("--db")
            .arg(db)
            .arg("stream")
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Streamer { child, lines }
    }

    fn next(&self) -> Value {
        self.lines
            .recv_timeout(PATIENCE)
            .expect("a line from the live stream")
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_live_stream_shows_records_appended_by_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let first = ok(db, &["append", r#"{"n":0}"#])[0].as_u64().unwrap();
    let s = Streamer::start(db, &["--live"]);
    assert_eq!(
        s.next(),
        json!({"seq": first, "value": {"n": 0}}),
        "old records first"
    );
    for n in 1..=3 {
        let seq = ok(db, &["append", &format!("{{\"n\":{n}}}")])[0]
            .as_u64()
            .unwrap();
        assert_eq!(s.next(), json!({"seq": seq, "value": {"n": n}}));
    }
    // A batch from stdin, and a key-value write, arrive too, in order.
    let seqs = common::ok_in(db, &["append"], "{\"n\":4}\n{\"n\":5}\n");
    ok(db, &["kv", "put", "c/m", "1"]);
    assert_eq!(s.next()["seq"], seqs[0]);
    assert_eq!(s.next()["seq"], seqs[1]);
    assert_eq!(s.next()["value"]["$kv"], "put");
}

/// A writer that stays open (a server, an embedding program) keeps its segment's file
/// zero-filled a MiB ahead, so its appends do not change the file's length: they still arrive.
#[test]
fn a_live_stream_follows_a_writer_that_stays_open() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(flume_store::Store::open(db)).unwrap();
    let append = |n: u64| {
        let doc = format!("{{\"n\":{n}}}").parse().unwrap();
        let record = flume_store::Record::from_document(doc);
        rt.block_on(store.db().append(record)).unwrap().0
    };
    let first = append(0);
    let len = |db: &std::path::Path| {
        let seg = db.join("log").join("00000000000000000000.log");
        std::fs::metadata(seg).unwrap().len()
    };
    let before = len(db);
    let s = Streamer::start(db, &["--live"]);
    assert_eq!(s.next(), json!({"seq": first, "value": {"n": 0}}));
    for n in 1..=3 {
        let seq = append(n);
        assert_eq!(s.next(), json!({"seq": seq, "value": {"n": n}}));
    }
    assert_eq!(
        len(db),
        before,
        "the appends did not change the file's length"
    );
    rt.block_on(store.close()).unwrap();
}

#[test]
fn live_streams_with_old_false_values_and_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    ok(db, &["append", r#"{"old":true}"#]);
    let s = Streamer::start(db, &["--live", "--old=false", "--values"]);
    // The streamer notes the log's end when it starts, which this test cannot observe: append
    // until something arrives; it must be a new record, never the old one.
    let mut n = 0;
    let got = loop {
        n += 1;
        ok(db, &["append", &format!("{{\"new\":{n}}}")]);
        if let Ok(v) = s.lines.recv_timeout(Duration::from_millis(200)) {
            break v;
        }
        assert!(n < 300, "nothing arrived");
    };
    assert!(got.get("new").is_some(), "{got}");

    // --live --limit ends by itself once enough records arrived.
    let mut child = Command::new(common::exe())
        .args([
            "--db",
            db.to_str().unwrap(),
            "stream",
            "--live",
            "--old=false",
            "--seqs",
            "--limit",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut appended = Vec::new();
    while child.try_wait().unwrap().is_none() {
        appended.push(ok(db, &["append", "{}"])[0].clone());
        std::thread::sleep(Duration::from_millis(20));
        assert!(appended.len() < 3000, "the stream never ended");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let printed = common::lines(&out.stdout);
    assert_eq!(printed.len(), 1);
    assert!(
        appended.contains(&printed[0]),
        "{printed:?} is one of the new records"
    );
}
