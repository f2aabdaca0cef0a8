//! The shared feed: reads each new record once, decodes it once, and hands the decoded batch to
//! every live view.
//!
//! A view joins the feed only once it has caught up with the feed's position on its own (see
//! `worker.rs`), so the feed never waits for a view that is rebuilding. It does wait for live views
//! whose queues are full: that is the backpressure that keeps memory bounded, and it means a live
//! view as slow as its writers slows the other live views (as in flumedb).

use std::ops::Bound;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Shared, chunk_range};
use crate::Seq;
use crate::seq::reached;

/// Decoded batches a live view may have queued for it (besides those it took into the apply in
/// progress) before the shared feed waits for it, and with it every other live view.
pub const FEED_QUEUE: usize = 4;

/// Records in log order, decoded once, shared by every live view.
pub(crate) type Batch<T> = Arc<Vec<(Seq, T)>>;

pub(crate) enum FeedMsg<T> {
    Batch(Batch<T>),
    /// The feed could not read or decode the next records: the view fails and rebuilds alone.
    Failed(String),
}

/// A view asking to be fed from the feed's position on.
pub(crate) struct Join<T> {
    pub(crate) since: Option<Seq>,
    pub(crate) tx: mpsc::Sender<FeedMsg<T>>,
    /// `Ok` once joined; `Err(pos)` when the view must first catch up to `pos` by itself.
    pub(crate) reply: oneshot::Sender<Result<(), Option<Seq>>>,
}

pub(crate) struct Feed<T> {
    shared: Arc<Shared<T>>,
    joins: mpsc::Receiver<Join<T>>,
    since: watch::Receiver<Option<Seq>>,
    shutdown: watch::Receiver<bool>,
    /// The last record handed to the live views.
    pos: Option<Seq>,
    live: Vec<mpsc::Sender<FeedMsg<T>>>,
}

impl<T: Send + Sync + 'static> Feed<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, joins: mpsc::Receiver<Join<T>>) -> Self {
        let since = shared.log.since();
        let pos = *since.borrow();
        let shutdown = shared.closed.subscribe();
        Feed {
            shared,
            joins,
            since,
            shutdown,
            pos,
            live: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            while let Ok(join) = self.joins.try_recv() {
                self.join(join);
            }
            if *self.shutdown.borrow() {
                return;
            }
            let target = *self.since.borrow_and_update();
            if reached(self.pos, target) {
                tokio::select! {
                    _ = self.shutdown.changed() => {}
                    Some(join) = self.joins.recv() => self.join(join),
                    r = self.since.changed() => if r.is_err() { return },
                }
                continue;
            }
            if self.live.is_empty() {
                // Nobody to feed: views that join later catch up on their own first.
                self.pos = target;
                continue;
            }
            if !self.step(target).await {
                return;
            }
        }
    }

    fn join(&mut self, join: Join<T>) {
        let answer = if reached(join.since, self.pos) {
            self.live.push(join.tx);
            Ok(())
        } else {
            Err(self.pos)
        };
        let _ = join.reply.send(answer);
    }

    /// Read, decode and deliver one chunk of `(pos, target]`. False on shutdown.
    async fn step(&mut self, target: Option<Seq>) -> bool {
        let lower = self.pos.map_or(Bound::Unbounded, Bound::Excluded);
        let (batch, failure, next_pos) = match self.shared.read_decoded(lower, target).await {
            Ok(read) => (read.records, read.failure, read.last),
            Err(reason) => (Vec::new(), Some(reason), target),
        };
        if !batch.is_empty() && !self.deliver(FeedMsg::Batch(Arc::new(batch))).await {
            return false;
        }
        if let Some(reason) = failure {
            // Every live view fails and rebuilds on its own, with backoff; the feed moves past
            // the bad record so it never spins on it.
            if !self.deliver(FeedMsg::Failed(reason)).await {
                return false;
            }
            self.live.clear();
            self.pos = target;
        } else {
            self.pos = next_pos;
        }
        true
    }

    /// Send to every live view, dropping the ones that left. False on shutdown.
    async fn deliver(&mut self, msg: FeedMsg<T>) -> bool {
        let mut kept = Vec::with_capacity(self.live.len());
        for tx in self.live.drain(..) {
            let msg = match &msg {
                FeedMsg::Batch(b) => FeedMsg::Batch(Arc::clone(b)),
                FeedMsg::Failed(r) => FeedMsg::Failed(r.clone()),
            };
            tokio::select! {
                _ = self.shutdown.changed() => return false,
                sent = tx.send(msg) => if sent.is_ok() { kept.push(tx) },
            }
        }
        self.live = kept;
        true
    }
}

/// What one chunk read gave: the records decoded before any failure, the seq of the last record
/// read, and the failure if there was one.
pub(crate) struct Decoded<T> {
    pub(crate) records: Vec<(Seq, T)>,
    pub(crate) last: Option<Seq>,
    pub(crate) failure: Option<String>,
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// Read one chunk after `lower` up to `target` and decode it.
    ///
    /// # Errors
    /// The log's read error, as a reason.
    pub(crate) async fn read_decoded(
        &self,
        lower: Bound<Seq>,
        target: Option<Seq>,
    ) -> Result<Decoded<T>, String> {
        let Some(range) = chunk_range(lower, target) else {
            return Ok(Decoded {
                records: Vec::new(),
                last: None,
                failure: None,
            });
        };
        let raw = self.log.read(range).await.map_err(|e| e.to_string())?;
        let last = raw.last().map(|(s, _)| *s);
        let mut records = Vec::with_capacity(raw.len());
        for (seq, bytes) in raw {
            match self.codec.decode(&bytes) {
                Ok(v) => records.push((seq, v)),
                Err(e) => {
                    let failure = Some(format!("record {seq}: {e}"));
                    return Ok(Decoded {
                        records,
                        last,
                        failure,
                    });
                }
            }
        }
        Ok(Decoded {
            records,
            last,
            failure: None,
        })
    }
}
