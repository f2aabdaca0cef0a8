//! Helpers shared by the integration tests: servers in-process and as child processes, a raw
//! memcached connection, an SSE reader, and finding external programs.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use flume_server::{Limits, Server, ServerConfig};
use flume_store::Store;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A server on a fresh directory, both fronts on loopback port 0.
pub struct TestServer {
    pub server: Server,
    pub store: Arc<Store>,
    pub http: SocketAddr,
    pub mc: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).await.unwrap());
        let config = ServerConfig::new()
            .http(Some("127.0.0.1:0".parse().unwrap()))
            .memcached(Some("127.0.0.1:0".parse().unwrap()))
            .limits(limits);
        let server = Server::start(Arc::clone(&store), config).await.unwrap();
        let (http, mc) = (
            server.http_addr().unwrap(),
            server.memcached_addr().unwrap(),
        );
        TestServer {
            server,
            store,
            http,
            mc,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
        self.store.close().await.unwrap();
    }
}

/// The server as a child process (`flume-server-child`), so it can be killed with SIGKILL and
/// its memory read from /proc.
pub struct ChildServer {
    pub child: Child,
    pub http: SocketAddr,
    pub mc: SocketAddr,
}

impl ChildServer {
    pub fn start(dir: &Path, args: &[&str]) -> ChildServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flume-server-child"))
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut addr = |prefix: &str| -> SocketAddr {
            let line = lines
                .next()
                .expect("the child prints its addresses")
                .unwrap();
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{line:?}"))
                .parse()
                .unwrap()
        };
        let http = addr("http=");
        let mc = addr("memcached=");
        ChildServer { child, http, mc }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes, from /proc.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the server exits cleanly on SIGTERM: {status}"
        );
    }
}

/// A program needed by a test: its path, or `None` after saying loudly that the test is
/// skipped. With `CI=true` a missing program fails the test (design.md §6).
pub fn find_program(names: &[&str], package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    missing(&format!(
        "{} (Debian package {package})",
        names.join(" or ")
    ))
}

pub fn missing(what: &str) -> Option<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is required when CI=true: .ci/run installs it");
    }
    eprintln!("\n*** SKIPPED: {what} is not installed; install it to run this test ***\n");
    None
}

/// A raw memcached text-protocol connection.
pub struct Mc {
    rd: BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Mc {
    pub async fn connect(addr: SocketAddr) -> Mc {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        Mc {
            rd: BufReader::new(rd),
            wr,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    /// One reply line, without `\r\n`; `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        let n = self.rd.read_until(b'\n', &mut line).await.unwrap();
        if n == 0 {
            return None;
        }
        assert!(
            line.ends_with(b"\r\n"),
            "reply lines end with CRLF: {line:?}"
        );
        line.truncate(line.len() - 2);
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// Send a command and read its one-line reply.
    pub async fn cmd(&mut self, command: &str) -> String {
        self.send(command.as_bytes()).await;
        self.line().await.expect("a reply")
    }

    /// `get`/`gets` of several keys: `(key, flags, cas, value)` for each hit.
    pub async fn get(&mut self, command: &str) -> Vec<(String, u32, Option<u64>, Vec<u8>)> {
        self.send(command.as_bytes()).await;
        let mut hits = Vec::new();
        loop {
            let line = self.line().await.expect("a reply");
            if line == "END" {
                return hits;
            }
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[0], "VALUE", "{line}");
            let len: usize = parts[3].parse().unwrap();
            let mut data = vec![0; len + 2];
            self.rd.read_exact(&mut data).await.unwrap();
            assert!(data.ends_with(b"\r\n"));
            data.truncate(len);
            hits.push((
                parts[1].to_string(),
                parts[2].parse().unwrap(),
                parts.get(4).map(|c| c.parse().unwrap()),
                data,
            ));
        }
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads events from a streaming response body.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader {
            body: response.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).unwrap();
                let mut event = Event {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            match self.body.next().await {
                Some(chunk) => self.buf.extend_from_slice(&chunk.unwrap()),
                None => return None,
            }
        }
    }
}
