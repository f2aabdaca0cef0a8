//! One memcached connection: read, parse every complete request, execute in order, write the
//! replies in one go (pipelining), repeat.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::commands::{Engine, Flow};
use super::parse::{ParseLimits, Parsed, parse};
use crate::metrics::inc;

/// Replies are written once this much is pending, even mid-pipeline.
const FLUSH_BYTES: usize = 64 << 10;
/// Read buffer kept between requests; a larger one (after a big value) is released.
const KEEP_BYTES: usize = 64 << 10;

pub(super) async fn serve(
    stream: TcpStream,
    engine: &Engine,
    idle: Option<Duration>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = engine.parse_limits();
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 << 10);
    let mut out = Vec::with_capacity(16 << 10);
    // Bytes still to discard: a data block refused as too large.
    let mut swallow = 0usize;
    // Discard up to the next newline: the rest of an over-long line.
    let mut skip_line = false;
    loop {
        let mut close = false;
        loop {
            if swallow > 0 {
                let n = swallow.min(buf.len());
                buf.advance(n);
                swallow -= n;
                if swallow > 0 {
                    break;
                }
            }
            if skip_line {
                match memchr::memchr(b'\n', &buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        skip_line = false;
                    }
                    None => {
                        buf.clear();
                        break;
                    }
                }
            }
            if *shutdown.borrow() {
                // Finish what was acknowledged; take no new requests.
                close = true;
                break;
            }
            match parse(&buf, limits) {
                Parsed::Incomplete { want } => {
                    if let Some(want) = want {
                        buf.reserve(want.saturating_sub(buf.len()));
                    }
                    break;
                }
                Parsed::Command { cmd, len } => {
                    buf.advance(len);
                    if let Flow::Close = engine.execute(cmd, &mut out).await {
                        close = true;
                        break;
                    }
                }
                Parsed::Error {
                    reply,
                    len,
                    swallow: s,
                    skip_line: skip,
                } => {
                    inc(&engine.metrics.mc_errors);
                    buf.advance(len.min(buf.len()));
                    swallow = s;
                    skip_line = skip;
                    out.extend_from_slice(reply.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
            }
            if out.len() >= FLUSH_BYTES && !write(&mut wr, &mut out, idle).await {
                return;
            }
        }
        if !out.is_empty() && !write(&mut wr, &mut out, idle).await {
            return;
        }
        if close {
            let _ = wr.shutdown().await;
            return;
        }
        if buf.is_empty() && buf.capacity() > KEEP_BYTES {
            buf = BytesMut::with_capacity(16 << 10);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 << 10);
        }
        let read = async {
            match idle {
                Some(t) => tokio::time::timeout(t, rd.read_buf(&mut buf))
                    .await
                    .unwrap_or(Ok(0)),
                None => rd.read_buf(&mut buf).await,
            }
        };
        let n = tokio::select! {
            n = read => n,
            _ = shutdown.wait_for(|s| *s) => Ok(0),
        };
        match n {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Write and clear `out`; false when the peer is gone or stalled past the idle timeout.
async fn write(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    out: &mut Vec<u8>,
    idle: Option<Duration>,
) -> bool {
    let done = match idle {
        Some(t) => matches!(tokio::time::timeout(t, wr.write_all(out)).await, Ok(Ok(()))),
        None => wr.write_all(out).await.is_ok(),
    };
    out.clear();
    if out.capacity() > KEEP_BYTES {
        out.shrink_to(16 << 10);
    }
    done
}

impl Engine {
    fn parse_limits(&self) -> ParseLimits {
        self.parse_limits
    }
}
