//! Broadcast after persist: live subscribers get acknowledged records, in log order, exactly
//! once, and a slow subscriber never makes an appender wait.
//!
//! One task (the hub) follows the log's `since`, which moves only once records are durable,
//! reads each new record once, turns it into JSON once and publishes it in chunks on a bounded
//! ring (`tokio::sync::broadcast`) shared by every live subscriber. Publishing never waits: the
//! ring overwrites its oldest chunk. A subscriber that falls behind the ring (the socket is
//! slow, the client stopped reading) loses its place in it and catches up by reading the log
//! itself, then rejoins the ring. Each chunk names the position it follows (`after`), so a
//! subscriber can tell a contiguous chunk from a gap and never skips or repeats a record.
//!
//! Memory is the ring (shared, bounded in chunks of bounded bytes) plus, per subscriber, at
//! most one log read and one or two frames (see [`subscriber`]).

mod cursor;
pub(crate) mod subscriber;

use std::sync::Arc;

use bytes::Bytes;
use flume_core::{Log, Seq};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub(crate) use cursor::{Cursor, record_json};
pub(crate) use flume_core::bounds::is_empty_range as is_empty;

use crate::metrics::{Metrics, inc};

/// JSON bytes per published chunk (a chunk always holds at least one record).
const CHUNK_BYTES: usize = 64 << 10;

/// A run of consecutive records of the log: every record with `after < seq <= last()`.
pub(crate) struct Chunk {
    /// The seq just before the chunk (`None`: the start of the log).
    pub(crate) after: Option<Seq>,
    pub(crate) events: Vec<Event>,
    /// The last chunk: the log was closed.
    pub(crate) end: bool,
}

impl Chunk {
    fn last(&self) -> Option<Seq> {
        self.events.last().map(|e| e.seq)
    }
}

/// A record as JSON.
#[derive(Clone)]
pub(crate) struct Event {
    pub(crate) seq: Seq,
    pub(crate) json: Bytes,
}

/// The hub: publishes each acknowledged record once to every live subscriber.
pub(crate) struct Hub {
    tx: broadcast::Sender<Arc<Chunk>>,
    pub(crate) log: Arc<dyn Log>,
    pub(crate) read_budget: usize,
}

impl Hub {
    /// Start following `log`. The ring holds about `buffer_bytes` of chunks (at least 4).
    pub(crate) fn start(
        log: Arc<dyn Log>,
        buffer_bytes: usize,
        metrics: Arc<Metrics>,
        mut shutdown: watch::Receiver<bool>,
    ) -> (Arc<Hub>, JoinHandle<()>) {
        let capacity = (buffer_bytes / CHUNK_BYTES).max(4);
        let (tx, _) = broadcast::channel(capacity);
        let read_budget = (buffer_bytes / 4).max(4 << 10);
        let hub = Arc::new(Hub {
            tx,
            log,
            read_budget,
        });
        let task = {
            let hub = Arc::clone(&hub);
            tokio::spawn(async move {
                tokio::select! {
                    () = hub.run(&metrics) => {
                        // The log was closed: tell live subscribers.
                        let _ = hub.tx.send(Arc::new(Chunk { after: None, events: Vec::new(), end: true }));
                    }
                    _ = shutdown.wait_for(|s| *s) => {}
                }
            })
        };
        (hub, task)
    }

    /// A place in the ring: every chunk published from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Chunk>> {
        self.tx.subscribe()
    }

    async fn run(&self, metrics: &Metrics) {
        let mut since = self.log.since();
        let mut pos = *since.borrow_and_update();
        while since.changed().await.is_ok() {
            let now = *since.borrow_and_update();
            if self.tx.receiver_count() == 0 {
                // Nobody listens: skip ahead without reading. A subscriber catches up from the
                // log before it reads the ring, and the next chunk's `after` tells it so.
                pos = now;
                continue;
            }
            let mut cursor = Cursor::new(
                Arc::clone(&self.log),
                bound_after(pos),
                std::ops::Bound::Unbounded,
                false,
                true,
                self.read_budget,
            );
            loop {
                let records = match cursor.next(now).await {
                    Ok(records) => records,
                    Err(_) => {
                        // Subscribers see the gap (`after` jumps) and read the log themselves.
                        inc(&metrics.broadcast_errors);
                        pos = now;
                        break;
                    }
                };
                if records.is_empty() {
                    break;
                }
                let mut chunk = Chunk {
                    after: pos,
                    events: Vec::new(),
                    end: false,
                };
                let mut bytes = 0;
                for (seq, value) in records {
                    let json = record_json(&value);
                    bytes += json.len();
                    chunk.events.push(Event { seq, json });
                    if bytes >= CHUNK_BYTES {
                        pos = chunk.last();
                        let full = std::mem::replace(
                            &mut chunk,
                            Chunk {
                                after: pos,
                                events: Vec::new(),
                                end: false,
                            },
                        );
                        let _ = self.tx.send(Arc::new(full));
                        bytes = 0;
                    }
                }
                if !chunk.events.is_empty() {
                    pos = chunk.last();
                    let _ = self.tx.send(Arc::new(chunk));
                }
            }
        }
    }
}

/// The lower bound of everything after `pos`.
pub(crate) fn bound_after(pos: Option<Seq>) -> std::ops::Bound<Seq> {
    pos.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded)
}
