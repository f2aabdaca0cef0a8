//! One stream (ndjson or Server-Sent Events), produced by its own task into a channel of one
//! frame that the HTTP body drains.
//!
//! Memory per subscriber is bounded: one log read (`Hub::read_budget` bytes, or a single larger
//! record), the frame being built and the frame waiting in the channel (each at most
//! `frame_bytes` plus one record). When the client reads slowly the task waits on the channel,
//! the hub's ring moves on, and the task later catches up from the log: the backlog stays in the
//! log, never in memory.

use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flume_core::{Output, Seq};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use super::{Cursor, Hub, bound_after, is_empty, record_json};
use crate::metrics::{Metrics, inc};

/// Silence longer than this gets a keep-alive (an SSE comment, an empty ndjson line), which
/// also tells the task when the client has gone.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// How records are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON value per line.
    Ndjson,
    /// `id: <seq>` and `data: <json>` per event.
    Sse,
}

/// What a stream yields.
#[derive(Clone, Debug)]
pub(crate) struct StreamSpec {
    pub(crate) lower: Bound<Seq>,
    pub(crate) upper: Bound<Seq>,
    pub(crate) reverse: bool,
    pub(crate) limit: Option<usize>,
    /// Forward only (checked by the caller).
    pub(crate) live: bool,
    pub(crate) old: bool,
    pub(crate) output: Output,
    pub(crate) format: Format,
}

/// Start a stream's task; its frames arrive on the returned channel, which ends with the stream.
pub(crate) fn spawn(
    hub: Arc<Hub>,
    spec: StreamSpec,
    buffer_bytes: usize,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> mpsc::Receiver<Bytes> {
    // The stream starts now, not when its task first runs: records appended in between are new
    // to it (a live stream without old records sends them).
    let start = hub.log.current_since();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let _gauge = metrics.subscribers.guard();
        inc(&metrics.subscribers_total);
        let mut sink = Sink {
            tx,
            buf: BytesMut::new(),
            frame_bytes: (buffer_bytes / 4).clamp(4 << 10, 256 << 10),
            format: spec.format,
            output: spec.output,
            remaining: spec.limit,
            last_sent: None,
            events: 0,
            shutdown,
        };
        let end = run(&hub, &spec, start, &mut sink, &metrics).await;
        metrics
            .subscriber_events
            .fetch_add(sink.events, std::sync::atomic::Ordering::Relaxed);
        match end {
            Stop::Done => {
                let _ = sink.flush().await;
            }
            Stop::Shutdown => sink.close_event().await,
            Stop::Failed(reason) => sink.error_event(&reason).await,
            Stop::Gone => {}
        }
    });
    rx
}

/// Why a stream ends.
enum Stop {
    /// Bounds or limit reached, or a stream that is not live ran out of records.
    Done,
    /// The server is shutting down.
    Shutdown,
    /// The client went away.
    Gone,
    /// A read failed.
    Failed(String),
}

/// `start`: the log's `since` when the stream was asked for.
async fn run(
    hub: &Hub,
    spec: &StreamSpec,
    start: Option<Seq>,
    sink: &mut Sink,
    metrics: &Metrics,
) -> Stop {
    if sink.remaining == Some(0) {
        return Stop::Done;
    }
    let values = spec.output != Output::Seqs;
    let budget = hub.read_budget;
    if !spec.live {
        let mut cursor = Cursor::new(
            Arc::clone(&hub.log),
            spec.lower,
            spec.upper,
            spec.reverse,
            values,
            budget,
        );
        return match sink.drain(&mut cursor, start).await {
            Ok(()) => Stop::Done,
            Err(stop) => stop,
        };
    }
    // Everything at or below `pos` has been sent (or is below the stream's start).
    let mut pos = after_bound(spec.lower);
    if !spec.old {
        pos = pos.max(start);
    }
    loop {
        // Join the ring first, then read the log up to `since`: whatever the ring publishes
        // from now on overlaps or continues what the log read returns.
        let mut ring = hub.subscribe();
        let target = hub.log.current_since();
        let mut cursor = Cursor::new(
            Arc::clone(&hub.log),
            bound_after(pos),
            spec.upper,
            false,
            values,
            budget,
        );
        if let Err(stop) = sink.drain(&mut cursor, target).await {
            return stop;
        }
        pos = pos.max(target);
        if is_empty(bound_after(pos), spec.upper) {
            return Stop::Done;
        }
        if let Err(stop) = sink.flush().await {
            return stop;
        }
        loop {
            let woke = tokio::select! {
                r = ring.recv() => Some(r),
                _ = sink.shutdown.wait_for(|s| *s) => return Stop::Shutdown,
                () = sink.tx.closed() => return Stop::Gone,
                () = tokio::time::sleep(KEEPALIVE) => None,
            };
            let Some(received) = woke else {
                if let Err(stop) = sink.keepalive().await {
                    return stop;
                }
                continue;
            };
            let chunk = match received {
                Ok(chunk) => chunk,
                Err(RecvError::Lagged(_)) => {
                    // Too slow for the ring: read the backlog from the log instead.
                    inc(&metrics.subscriber_catchups);
                    break;
                }
                Err(RecvError::Closed) => return Stop::Shutdown,
            };
            if chunk.end {
                return Stop::Failed("the database was closed".into());
            }
            let Some(last) = chunk.last() else { continue };
            if Some(last) <= pos {
                continue;
            }
            if chunk.after > pos {
                // A gap (the hub skipped or failed a read): read it from the log.
                break;
            }
            for event in chunk.events.iter().filter(|e| Some(e.seq) > pos) {
                if !within_upper(event.seq, spec.upper) {
                    return Stop::Done;
                }
                if let Err(stop) = sink.push(event.seq, || event.json.clone()).await {
                    return stop;
                }
            }
            pos = Some(last);
            if ring.is_empty()
                && let Err(stop) = sink.flush().await
            {
                return stop;
            }
        }
    }
}

/// The exclusive position equivalent to a lower bound (bounds compare numerically).
fn after_bound(lower: Bound<Seq>) -> Option<Seq> {
    match lower {
        Bound::Unbounded => None,
        Bound::Excluded(s) => Some(s),
        Bound::Included(s) => s.0.checked_sub(1).map(Seq),
    }
}

fn within_upper(seq: Seq, upper: Bound<Seq>) -> bool {
    match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => seq <= u,
        Bound::Excluded(u) => seq < u,
    }
}

/// Builds frames and hands them to the HTTP body.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    frame_bytes: usize,
    format: Format,
    output: Output,
    remaining: Option<usize>,
    last_sent: Option<Seq>,
    events: u64,
    shutdown: watch::Receiver<bool>,
}

impl Sink {
    /// Read the cursor up to `since`, pushing every record.
    async fn drain(&mut self, cursor: &mut Cursor, since: Option<Seq>) -> Result<(), Stop> {
        loop {
            let records = cursor
                .next(since)
                .await
                .map_err(|e| Stop::Failed(e.to_string()))?;
            if records.is_empty() {
                return Ok(());
            }
            for (seq, value) in records {
                self.push(seq, || record_json(&value)).await?;
            }
        }
    }

    /// Add one record to the frame; send the frame once it is full.
    async fn push(&mut self, seq: Seq, json: impl FnOnce() -> Bytes) -> Result<(), Stop> {
        if self.format == Format::Sse {
            let _ = write!(self.buf, "id: {seq}\ndata: ");
        }
        match self.output {
            Output::Records => {
                let _ = write!(self.buf, "{{\"seq\":{seq},\"value\":");
                self.buf.extend_from_slice(&json());
                self.buf.extend_from_slice(b"}");
            }
            Output::Values => self.buf.extend_from_slice(&json()),
            Output::Seqs => {
                let _ = write!(self.buf, "{seq}");
            }
        }
        self.buf.extend_from_slice(if self.format == Format::Sse {
            b"\n\n"
        } else {
            b"\n"
        });
        self.last_sent = Some(seq);
        self.events += 1;
        if let Some(n) = &mut self.remaining {
            *n -= 1;
            if *n == 0 {
                self.flush().await?;
                return Err(Stop::Done);
            }
        }
        if self.buf.len() >= self.frame_bytes {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hand the frame to the body; waits while the previous one is still unsent.
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let frame = self.buf.split().freeze();
        tokio::select! {
            sent = self.tx.send(frame) => sent.map_err(|_| Stop::Gone),
            _ = self.shutdown.wait_for(|s| *s) => Err(Stop::Shutdown),
        }
    }

    async fn keepalive(&mut self) -> Result<(), Stop> {
        self.buf.extend_from_slice(if self.format == Format::Sse {
            b":\n\n"
        } else {
            b"\n"
        });
        self.flush().await
    }

    /// Tell an SSE client where to resume (best effort: the server is going away).
    async fn close_event(&mut self) {
        if self.format == Format::Sse {
            let resume = self.last_sent.map_or("null".to_string(), |s| s.to_string());
            let _ = write!(
                self.buf,
                "event: close\ndata: {{\"reason\":\"the server is shutting down\",\"last_event_id\":{resume}}}\n\n"
            );
        }
        self.send_now().await;
    }

    async fn error_event(&mut self, reason: &str) {
        let json =
            serde_json::json!({ "error": reason, "last_event_id": self.last_sent.map(|s| s.0) });
        match self.format {
            Format::Sse => {
                let _ = write!(self.buf, "event: error\ndata: {json}\n\n");
            }
            Format::Ndjson => {
                let _ = writeln!(self.buf, "{json}");
            }
        }
        self.send_now().await;
    }

    /// Send what is left, giving a stalled client a second at most.
    async fn send_now(&mut self) {
        if !self.buf.is_empty() {
            let frame = self.buf.split().freeze();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tx.send(frame)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use flume_core::Log;
    use flume_log_memory::MemoryLog;

    /// A live stream without old records starts when it is asked for, not when its task first
    /// runs: records appended in between are its first events. On one thread the task cannot run
    /// before the append below, which completes without waiting.
    #[tokio::test]
    async fn a_live_stream_without_old_records_starts_when_asked_for() {
        let log: Arc<dyn Log> = Arc::new(MemoryLog::new());
        log.append(Bytes::from_static(b"\"old\"")).await.unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let (hub, _task) = Hub::start(Arc::clone(&log), 1 << 20, metrics.clone(), shutdown.clone());
        let spec = StreamSpec {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: Some(1),
            live: true,
            old: false,
            output: Output::Seqs,
            format: Format::Ndjson,
        };
        let mut frames = spawn(hub, spec, 1 << 20, metrics, shutdown);
        let append = log.append(Bytes::from_static(b"\"first\""));
        let first = append
            .now_or_never()
            .expect("a memory append waits for nothing")
            .unwrap();
        // More appends, yielding between them, so that a stream that started late sends too.
        let writer = Arc::clone(&log);
        let later = tokio::spawn(async move {
            for _ in 0..50 {
                writer
                    .append(Bytes::from_static(b"\"later\""))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        });
        let frame = frames.recv().await.expect("one event");
        let want = format!("{}\n", first.0);
        assert_eq!(
            frame,
            want.as_bytes(),
            "the first record appended after the request"
        );
        later.await.unwrap();
    }
}
