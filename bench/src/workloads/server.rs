//! Server workloads: the memcached protocol against Debian's `memcached` started on loopback in
//! the same run and driven by the same load generator; HTTP appends beside in-process appends;
//! SSE fan-out to 100 subscribers beside the appends' own acknowledgement latency.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use flume_server::{Server, ServerConfig};
use flume_store::{Record, Store};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Ctx;
use crate::{Metric, Target};

/// Concurrent connections of the memcached load generator.
const MC_CONNS: usize = 32;
/// Keys set before the get phase, and the value size.
const MC_KEYS: usize = 10_000;
const MC_VALUE: usize = 32;
/// Concurrent HTTP appenders, and SSE subscribers.
const HTTP_WRITERS: usize = 64;
const SUBSCRIBERS: usize = 100;

/// A store and a server on loopback, port 0.
async fn flume(ctx: &Ctx, name: &str) -> anyhow::Result<(Arc<Store>, Server)> {
    let store = Arc::new(Store::open(ctx.dir.join(name)).await?);
    let config = ServerConfig::new()
        .http(Some("127.0.0.1:0".parse()?))
        .memcached(Some("127.0.0.1:0".parse()?));
    let server = Server::start(Arc::clone(&store), config).await?;
    Ok((store, server))
}

/// Debian's memcached on a free loopback port, killed on drop.
struct Memcached(Child, SocketAddr);

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn memcached() -> anyhow::Result<Option<Memcached>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = match Command::new("memcached")
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-t",
            "2",
            "-m",
            "256",
            "-u",
            "nobody",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "flume-bench: memcached not found ({e}); install Debian's `memcached` for the baseline"
            );
            return Ok(None);
        }
    };
    let mc = Memcached(child, SocketAddr::from(([127, 0, 0, 1], port)));
    for _ in 0..100 {
        if TcpStream::connect(mc.1).await.is_ok() {
            return Ok(Some(mc));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("memcached did not start on {}", mc.1)
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Set,
}

/// The load generator: `MC_CONNS` connections, each sending `per_conn` requests one at a time
/// (no pipelining) over random keys; requests per second.
async fn mc_load(addr: SocketAddr, op: Op, per_conn: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let tasks: Vec<_> = (0..MC_CONNS)
        .map(|c| {
            tokio::spawn(async move {
                let (rd, mut wr) = TcpStream::connect(addr).await?.into_split();
                let mut rd = BufReader::new(rd);
                let mut line = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ c as u64;
                let value = vec![b'v'; MC_VALUE];
                for _ in 0..per_conn {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = x % MC_KEYS as u64;
                    match op {
                        Op::Get => {
                            wr.write_all(format!("get key:{key:08}\r\n").as_bytes())
                                .await?
                        }
                        Op::Set => {
                            let mut req =
                                format!("set key:{key:08} 0 0 {MC_VALUE}\r\n").into_bytes();
                            req.extend_from_slice(&value);
                            req.extend_from_slice(b"\r\n");
                            wr.write_all(&req).await?;
                        }
                    }
                    let mut found = false;
                    loop {
                        line.clear();
                        ensure!(
                            rd.read_until(b'\n', &mut line).await? > 0,
                            "the server closed the connection"
                        );
                        match (op, line.as_slice()) {
                            (Op::Get, b"END\r\n") => break,
                            (Op::Get, l) if l.starts_with(b"VALUE ") => found = true,
                            (Op::Get, _) => {}
                            (Op::Set, b"STORED\r\n") => {
                                found = true;
                                break;
                            }
                            (Op::Set, l) => bail!("set: {}", String::from_utf8_lossy(l)),
                        }
                    }
                    ensure!(found, "key:{key:08} was not found");
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((MC_CONNS * per_conn) as f64 / start.elapsed().as_secs_f64())
}

/// Set every key once, pipelined on one connection.
async fn preload(addr: SocketAddr) -> anyhow::Result<()> {
    let (rd, mut wr) = TcpStream::connect(addr).await?.into_split();
    let writer = tokio::spawn(async move {
        for key in 0..MC_KEYS {
            let mut req = format!("set key:{key:08} 0 0 {MC_VALUE}\r\n").into_bytes();
            req.extend_from_slice(&[b'v'; MC_VALUE]);
            req.extend_from_slice(b"\r\n");
            wr.write_all(&req).await?;
        }
        anyhow::Ok(wr)
    });
    let mut lines = BufReader::new(rd).lines();
    for _ in 0..MC_KEYS {
        let line = lines.next_line().await?.context("closed")?;
        ensure!(line == "STORED", "preload: {line}");
    }
    writer.await??;
    Ok(())
}

pub(crate) async fn memcached_protocol(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let gets = (ctx.records as usize).clamp(10_000, 400_000) / MC_CONNS;
    let sets = (ctx.records as usize / 20).clamp(2_000, 40_000) / MC_CONNS;
    let (store, server) = flume(ctx, "server_mc").await?;
    let addr = server.memcached_addr().context("memcached front is off")?;
    preload(addr).await?;
    let flume_get = mc_load(addr, Op::Get, gets).await?;
    let flume_set = mc_load(addr, Op::Set, sets).await?;
    server.shutdown().await;
    store.close().await?;
    let mut out = vec![
        Metric::new("mc_get_rec_s", flume_get, "req/s"),
        Metric::new("mc_set_rec_s", flume_set, "req/s"),
    ];
    if let Some(mc) = memcached().await? {
        preload(mc.1).await?;
        let base_get = mc_load(mc.1, Op::Get, gets).await?;
        let base_set = mc_load(mc.1, Op::Set, sets).await?;
        drop(mc);
        out = vec![
            Metric::new("memcached_get_rec_s", base_get, "req/s"),
            Metric::new("mc_get_rec_s", flume_get, "req/s").beside("memcached_get_rec_s"),
            Metric::new("mc_get_memcached_ratio", flume_get / base_get, "x")
                .target(Target::AtLeast(0.5))
                .beside("memcached_get_rec_s"),
            Metric::new("memcached_set_rec_s", base_set, "req/s"),
            Metric::new("mc_set_rec_s", flume_set, "req/s").beside("memcached_set_rec_s"),
            Metric::new("mc_set_memcached_ratio", flume_set / base_set, "x")
                .beside("memcached_set_rec_s"),
        ];
    }
    Ok(out)
}

fn doc(n: u64) -> anyhow::Result<Record> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    Ok(Record::from_document(serde_json::from_value(
        serde_json::json!({ "n": n, "t": nanos, "body": "x".repeat(60) }),
    )?))
}

/// Appends through HTTP from 64 clients, beside the same appends made in-process (the cost
/// of HTTP, JSON and the server on top of the database).
pub(crate) async fn http_append(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let per_writer = (ctx.records as usize / 50).clamp(100, 1_000);
    let (store, server) = flume(ctx, "server_http").await?;
    let url = format!("http://{}/log", server.http_addr().context("http is off")?);
    let http = reqwest::Client::new();
    let start = Instant::now();
    let tasks: Vec<_> = (0..HTTP_WRITERS)
        .map(|w| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let body = serde_json::json!({ "w": w, "n": n, "body": "x".repeat(60) });
                    http.post(&url)
                        .json(&body)
                        .send()
                        .await?
                        .error_for_status()?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let http_rate = (HTTP_WRITERS * per_writer) as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let tasks: Vec<_> = (0..HTTP_WRITERS)
        .map(|_| {
            let db = store.db().clone();
            tokio::spawn(async move {
                for n in 0..per_writer {
                    db.append(doc(n as u64)?).await.map_err(|e| e.error)?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let db_rate = (HTTP_WRITERS * per_writer) as f64 / start.elapsed().as_secs_f64();
    server.shutdown().await;
    store.close().await?;
    Ok(vec![
        Metric::new("db_append_w64_rec_s", db_rate, "rec/s"),
        Metric::new("http_append_w64_rec_s", http_rate, "rec/s").beside("db_append_w64_rec_s"),
    ])
}

/// 100 SSE subscribers; a writer appends timestamped records one at a time; each delivery's
/// latency is measured from just before its append. Beside it: the appends' own latency
/// (a record cannot be delivered before it is durable).
pub(crate) async fn sse_fanout(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let records = (ctx.records as usize / 500).clamp(200, 2_000);
    let (store, server) = flume(ctx, "server_sse").await?;
    let base = format!("http://{}", server.http_addr().context("http is off")?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SUBSCRIBERS + 8)
        .build()?;
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let response = http
            .get(format!("{base}/log?live=true&output=values"))
            .send()
            .await?
            .error_for_status()?;
        subscribers.push(tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buf = Vec::new();
            let mut latencies = Vec::with_capacity(records);
            while latencies.len() < records {
                let chunk = body.next().await.context("the stream ended")??;
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buf.drain(..end + 2).collect();
                    let text = String::from_utf8_lossy(&event);
                    if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
                        let v: serde_json::Value = serde_json::from_str(data)?;
                        let sent = v["t"].as_u64().context("no timestamp")?;
                        latencies.push(now.saturating_sub(sent));
                    }
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut acks = Vec::with_capacity(records);
    let start = Instant::now();
    for n in 0..records {
        let t0 = Instant::now();
        store
            .db()
            .append(doc(n as u64)?)
            .await
            .map_err(|e| e.error)?;
        acks.push(t0.elapsed().as_nanos() as u64);
    }
    let mut latencies = Vec::with_capacity(records * SUBSCRIBERS);
    for s in subscribers {
        latencies.extend(s.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    server.shutdown().await;
    store.close().await?;
    let pct = |v: &mut Vec<u64>, q: usize| {
        v.sort_unstable();
        v[(v.len() * q / 100).min(v.len() - 1)] as f64 / 1e6
    };
    Ok(vec![
        Metric::new("append_ack_p99_ms", pct(&mut acks, 99), "ms"),
        Metric::new("sse_fanout_p50_ms", pct(&mut latencies, 50), "ms").beside("append_ack_p99_ms"),
        Metric::new("sse_fanout_p99_ms", pct(&mut latencies, 99), "ms").beside("append_ack_p99_ms"),
        Metric::new(
            "sse_fanout_events_s",
            latencies.len() as f64 / elapsed,
            "ev/s",
        ),
    ])
}
