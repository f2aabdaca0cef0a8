//! Test support, not a product: serve a database directory on loopback (port 0 unless told
//! otherwise), print `http=ADDR` and `memcached=ADDR` on stdout, and run until SIGINT/SIGTERM.
//! The integration tests run it as a child process so they can kill it with SIGKILL and read
//! its memory from /proc.
//!
//! Usage: `flume-server-child DIR [--subscriber-buffer BYTES] [--idle-secs N]`

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use flume_server::{Limits, Server, ServerConfig, shutdown_signal};
use flume_store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .ok_or("usage: flume-server-child DIR [--subscriber-buffer BYTES] [--idle-secs N]")?
        .clone();
    let mut limits = Limits::default();
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or("a flag needs a value")?;
        match flag.as_str() {
            "--subscriber-buffer" => limits = limits.subscriber_buffer_bytes(value.parse()?),
            "--idle-secs" => {
                limits = limits.idle_timeout(Some(Duration::from_secs(value.parse()?)))
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let signal = shutdown_signal()?;
        let store = Arc::new(Store::open(&dir).await?);
        let config = ServerConfig::new()
            .http(Some("127.0.0.1:0".parse()?))
            .memcached(Some("127.0.0.1:0".parse()?))
            .limits(limits);
        let server = Server::start(Arc::clone(&store), config).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "http={}", server.http_addr().ok_or("no http")?)?;
        writeln!(
            out,
            "memcached={}",
            server.memcached_addr().ok_or("no memcached")?
        )?;
        out.flush()?;
        drop(out);
        server.run_until(signal).await;
        store.close().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
