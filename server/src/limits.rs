//! Connection limits and idle timeouts, shared by both fronts.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::{Gauge, GaugeGuard};

/// At most `max` connections at once: each accepted connection holds a permit until it closes.
#[derive(Clone)]
pub(crate) struct ConnLimit {
    permits: Arc<Semaphore>,
}

impl ConnLimit {
    pub(crate) fn new(max: usize) -> Self {
        ConnLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// A permit, or `None` when the limit is reached.
    pub(crate) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }
}

/// A stream that fails with `TimedOut` once neither direction has made progress for `timeout`,
/// and holds its connection permit and gauge until dropped.
pub(crate) struct IdleIo<T> {
    inner: T,
    timeout: Option<Duration>,
    deadline: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
    _gauge: GaugeGuard,
}

impl<T> IdleIo<T> {
    pub(crate) fn new(
        inner: T,
        timeout: Option<Duration>,
        permit: Option<OwnedSemaphorePermit>,
        gauge: GaugeGuard,
    ) -> Self {
        // Without a timeout the deadline is never polled.
        let deadline = Box::pin(tokio::time::sleep(
            timeout.unwrap_or(Duration::from_secs(3600)),
        ));
        IdleIo {
            inner,
            timeout,
            deadline,
            _permit: permit,
            _gauge: gauge,
        }
    }

    fn progress(&mut self) {
        if let Some(t) = self.timeout {
            self.deadline.as_mut().reset(Instant::now() + t);
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.timeout.is_some() && self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.progress();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The HTTP listener: refuses connections beyond the limit with a `503` and wraps the others
/// in [`IdleIo`].
pub(crate) struct LimitedListener {
    pub(crate) listener: TcpListener,
    pub(crate) limit: ConnLimit,
    pub(crate) idle: Option<Duration>,
    pub(crate) gauge: Gauge,
    pub(crate) rejected: Arc<std::sync::atomic::AtomicU64>,
}

fn busy() -> Vec<u8> {
    let body = "{\"error\":\"too many connections: the server's limit is reached, retry later\"}\n";
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl axum::serve::Listener for LimitedListener {
    type Io = IdleIo<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(conn) => conn,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.limit.try_acquire() {
                Some(permit) => {
                    return (
                        IdleIo::new(stream, self.idle, Some(permit), self.gauge.guard()),
                        addr,
                    );
                }
                None => {
                    self.rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), stream.write_all(&busy()))
                                .await;
                    });
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}
