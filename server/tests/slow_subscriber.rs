//! A subscriber that stops reading while 100 MB is appended costs the server a bounded buffer,
//! not the backlog; when it reads again it gets every record, in order.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::ChildServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUFFER: usize = 1 << 20;
const RECORD: usize = 10_000;
const RECORDS: usize = 10_000; // 100 MB of documents
const PER_BATCH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_costs_a_bounded_buffer_then_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(
        dir.path(),
        &[
            "--subscriber-buffer",
            &BUFFER.to_string(),
            "--idle-secs",
            "3600",
        ],
    );
    let http = reqwest::Client::new();
    let url = format!("http://{}/log/batch", server.http);
    let pad = "x".repeat(RECORD);

    // Warm up (allocator arenas, the log's buffers), then take the baseline.
    for _ in 0..5 {
        let batch: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({ "warm": i, "pad": pad }))
            .collect();
        http.post(&url)
            .json(&batch)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let since: Value = http
        .get(format!("http://{}/health", server.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let start = since["since"].as_u64().unwrap();

    // The subscriber: a raw socket that sends its request and then does not read.
    let mut sub = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let request = format!(
        "GET /log?live=true&output=seqs&gt={start} HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\r\n"
    );
    sub.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = server.rss();

    // Sample the server's RSS while 100 MB is appended.
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (Arc::clone(&peak), Arc::clone(&done), server.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kb) = status
                        .lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    peak.fetch_max(kb * 1024, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut written = Vec::with_capacity(RECORDS);
    for b in 0..RECORDS / PER_BATCH {
        let batch: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({ "n": b * PER_BATCH + i, "pad": pad }))
            .collect();
        let r: Value = http
            .post(&url)
            .json(&batch)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        written.extend(
            r["seqs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap()),
        );
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grown = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "server RSS: baseline {} MiB, peak growth {} MiB while 100 MB was appended past a stalled subscriber",
        baseline >> 20,
        grown >> 20
    );
    // The buffer, the hub's ring (sized from it), hyper's write buffer, one 1 MB request body
    // in flight and its parsed form: a small constant, nothing like the 100 MB backlog.
    let allowed = BUFFER as u64 + (24 << 20);
    assert!(
        grown <= allowed,
        "RSS grew {grown} bytes, more than the buffer plus a constant ({allowed})"
    );

    // Resume reading: every record, in order, exactly once.
    let mut ids = Vec::with_capacity(RECORDS);
    let mut buf = vec![0u8; 1 << 16];
    let mut text = Vec::new();
    let mut headers_done = false;
    while ids.len() < RECORDS {
        let n = sub.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream ended after {} records", ids.len());
        text.extend_from_slice(&buf[..n]);
        if !headers_done {
            let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(text.starts_with(b"HTTP/1.1 200"));
            text.drain(..end + 4);
            headers_done = true;
        }
        // Chunked transfer encoding wraps the events; the `id: ` lines are what count.
        let keep_from = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in text[..keep_from].split(|&b| b == b'\n') {
            if let Some(id) = line.strip_prefix(b"id: ") {
                ids.push(
                    std::str::from_utf8(id)
                        .unwrap()
                        .trim()
                        .parse::<u64>()
                        .unwrap(),
                );
            }
        }
        text.drain(..keep_from);
    }
    assert_eq!(ids, written);
    server.terminate();
}
