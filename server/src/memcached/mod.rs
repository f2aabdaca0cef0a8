//! The memcached text protocol over the key-value view: memcached key `K` is the key-value key
//! `<collection>/K` (collection `mc` by default). Every write is a log record: durable before
//! the reply, and broadcast to HTTP subscribers like any other record.

mod commands;
mod conn;
pub(crate) mod parse;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub(crate) use commands::{Engine, now_unix};

use crate::limits::ConnLimit;
use crate::metrics::inc;

/// Accept connections until shutdown, then wait up to `grace` for them to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    limit: ConnLimit,
    idle: Option<Duration>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Some(permit) = limit.try_acquire() else {
            inc(&engine.metrics.connections_rejected);
            tokio::spawn(async move {
                let mut stream = stream;
                let reply = stream.write_all(b"ERROR Too many open connections\r\n");
                let _ = tokio::time::timeout(Duration::from_secs(1), reply).await;
            });
            continue;
        };
        let engine = Arc::clone(&engine);
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let _gauge = engine.metrics.mc_connections.guard();
            inc(&engine.metrics.mc_connections_total);
            conn::serve(stream, &engine, idle, shutdown).await;
        });
    }
    drop(listener);
    let drained =
        tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        conns.abort_all();
    }
}
