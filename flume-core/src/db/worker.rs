//! One task per view: open it, rebuild it when needed, catch it up with the log on its own, then
//! join the shared feed; on failure, mark it failed and rebuild after a backoff.
//!
//! The worker is a loop, never a recursion, and every retry waits out a growing backoff.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::Shared;
use super::backoff::Backoff;
use super::feed::{Batch, FEED_QUEUE, FeedMsg, Join};
use super::status::{Progress, Readable, ViewState};
use crate::seq::reached;
use crate::{Seq, View, ViewError};

pub(crate) enum Command {
    /// Destroy and rebuild; the reply says whether the destroy succeeded.
    Rebuild(oneshot::Sender<Result<(), String>>),
}

/// Why the worker left its driving loop.
enum Exit {
    Shutdown,
    Rebuild(oneshot::Sender<Result<(), String>>),
    Failed(String),
}

pub(crate) struct Worker<T: Send + Sync + 'static> {
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) view: Arc<dyn View<T>>,
    pub(crate) progress: watch::Sender<Progress>,
    /// The lock-free copy of `progress` that gated reads check first.
    pub(crate) readable: Arc<Readable>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) joins: mpsc::Sender<Join<T>>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Told once the view is open and either live or known to be building.
    pub(crate) started: Option<oneshot::Sender<()>>,
    pub(crate) since: Option<Seq>,
}

impl<T: Send + Sync + 'static> Worker<T> {
    /// Drive the view until the database closes, then close the view.
    pub(crate) async fn run(mut self) -> Result<(), ViewError> {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(30));
        let mut reset = !self.open().await;
        let mut reply: Option<oneshot::Sender<Result<(), String>>> = None;
        loop {
            if reset {
                let destroyed = self.destroy().await;
                if let Some(r) = reply.take() {
                    let _ = r.send(destroyed.clone());
                }
                if let Err(reason) = destroyed {
                    match self.fail_and_wait(reason, &mut backoff).await {
                        Exit::Shutdown => break,
                        Exit::Rebuild(r) => reply = Some(r),
                        Exit::Failed(_) => {}
                    }
                    continue;
                }
            }
            let exit = match self.drive(&mut backoff).await {
                Exit::Failed(reason) => self.fail_and_wait(reason, &mut backoff).await,
                exit => exit,
            };
            match exit {
                Exit::Shutdown => break,
                Exit::Rebuild(r) => reply = Some(r),
                Exit::Failed(_) => {}
            }
            reset = true;
        }
        self.signal_started();
        self.publish(ViewState::Closed);
        self.view.close().await
    }

    /// Load the stored state; false when it must be destroyed first.
    async fn open(&mut self) -> bool {
        let meta = match self.view.open().await {
            Ok(meta) => meta,
            Err(_) => return false,
        };
        if meta.version.is_some_and(|v| v != self.view.version()) {
            return false;
        }
        let log_since = self.shared.log.current_since();
        if !reached(log_since, meta.since) {
            // The view has records the log does not (the log was replaced or cut).
            return false;
        }
        self.since = meta.since;
        self.publish(ViewState::Building);
        true
    }

    /// Empty the view for a rebuild. Readers are told first that it holds nothing (`since =
    /// None`), so that gated reads beginning after this wait for the rebuild instead of reading
    /// a view being emptied (a read already past its gate may still finish on it).
    async fn destroy(&mut self) -> Result<(), String> {
        self.since = None;
        self.publish(ViewState::Building);
        self.view
            .destroy()
            .await
            .map_err(|e| format!("destroy failed: {e}"))
    }

    /// Mark the view failed and sleep out the backoff. A rebuild command cuts the wait short;
    /// `Exit::Failed` means the backoff ran out and it is time to retry.
    async fn fail_and_wait(&mut self, reason: String, backoff: &mut Backoff) -> Exit {
        self.publish(ViewState::Failed(reason.clone()));
        self.signal_started();
        let delay = backoff.next_delay();
        tokio::select! {
            _ = self.shutdown.wait_for(|closed| *closed) => Exit::Shutdown,
            cmd = self.commands.recv() => match cmd {
                Some(Command::Rebuild(r)) => Exit::Rebuild(r),
                None => Exit::Shutdown,
            },
            _ = tokio::time::sleep(delay) => Exit::Failed(reason),
        }
    }

    /// Catch up alone, join the feed, and apply its batches until something ends it.
    async fn drive(&mut self, backoff: &mut Backoff) -> Exit {
        let mut feed = loop {
            if let Some(exit) = self.catch_up().await {
                return exit;
            }
            match self.join().await {
                Ok(Some(rx)) => break rx,
                Ok(None) => continue,
                Err(exit) => return exit,
            }
        };
        backoff.reset();
        self.publish(ViewState::Live);
        self.signal_started();
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.shutdown.wait_for(|closed| *closed) => return Exit::Shutdown,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Rebuild(r)) => return Exit::Rebuild(r),
                    None => return Exit::Shutdown,
                },
                msg = feed.recv() => msg,
            };
            match msg {
                Some(FeedMsg::Batch(batch)) => {
                    let (batches, then) = coalesce(batch, &mut feed);
                    let since = self.since;
                    let fresh: Vec<(Seq, &T)> = batches
                        .iter()
                        .flat_map(|b| b.iter())
                        .filter(|(seq, _)| !reached(since, Some(*seq)))
                        .map(|(seq, v)| (*seq, v))
                        .collect();
                    if let Err(reason) = self.apply(&fresh, ViewState::Live).await {
                        return Exit::Failed(reason);
                    }
                    if let Some(reason) = then {
                        return Exit::Failed(reason);
                    }
                }
                Some(FeedMsg::Failed(reason)) => return Exit::Failed(reason),
                None => return Exit::Shutdown,
            }
        }
    }

    /// Read, decode and apply chunks until the view has reached the log's `since`.
    async fn catch_up(&mut self) -> Option<Exit> {
        loop {
            if *self.shutdown.borrow() {
                return Some(Exit::Shutdown);
            }
            if let Ok(Command::Rebuild(r)) = self.commands.try_recv() {
                return Some(Exit::Rebuild(r));
            }
            let target = self.shared.log.current_since();
            if reached(self.since, target) {
                return None;
            }
            self.signal_started();
            let lower = self.since.map_or(Bound::Unbounded, Bound::Excluded);
            let read = match self.shared.read_decoded(lower, target).await {
                Ok(read) => read,
                Err(reason) => return Some(Exit::Failed(reason)),
            };
            let refs: Vec<(Seq, &T)> = read.records.iter().map(|(s, v)| (*s, v)).collect();
            if let Err(reason) = self.apply(&refs, ViewState::Building).await {
                return Some(Exit::Failed(reason));
            }
            if let Some(reason) = read.failure {
                return Some(Exit::Failed(reason));
            }
            if read.last.is_none() {
                // `since` promised records the log did not return: a log bug, not a view's.
                return Some(Exit::Failed(format!(
                    "the log returned no records up to {target:?}"
                )));
            }
        }
    }

    /// Ask the feed to take this view. `Ok(None)`: catch up further first.
    ///
    /// Both waits also watch for shutdown, so a close never waits on a feed that is stopping.
    async fn join(&mut self) -> Result<Option<mpsc::Receiver<FeedMsg<T>>>, Exit> {
        let (tx, rx) = mpsc::channel(FEED_QUEUE);
        let (reply, answer) = oneshot::channel();
        let join = Join {
            since: self.since,
            tx,
            reply,
        };
        let joins = self.joins.clone();
        let answered = tokio::select! {
            _ = self.shutdown.wait_for(|closed| *closed) => return Err(Exit::Shutdown),
            answered = async move {
                joins.send(join).await.ok()?;
                answer.await.ok()
            } => answered,
        };
        match answered {
            Some(Ok(())) => Ok(Some(rx)),
            Some(Err(_pos)) => Ok(None),
            None => Err(Exit::Shutdown),
        }
    }

    async fn apply(&mut self, batch: &[(Seq, &T)], state: ViewState) -> Result<(), String> {
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        self.view.apply(batch).await.map_err(|e| e.to_string())?;
        self.since = Some(last);
        self.publish(state);
        Ok(())
    }

    fn publish(&self, state: ViewState) {
        let progress = Progress {
            since: self.since,
            state,
        };
        self.readable.set(&progress);
        self.progress.send_replace(progress);
    }

    fn signal_started(&mut self) {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
    }
}

/// A live view stops taking queued batches into one `apply` once it holds this many records; the
/// check comes before each batch, so one `apply` holds fewer than this plus one batch. (What it
/// takes frees queue slots the feed may refill meanwhile: the bound is in records, not batches.)
const COALESCE: usize = super::VIEW_CHUNK;

/// `first` and the batches already queued behind it (see [`COALESCE`]), so that a view
/// that fell behind (its writes waiting on a shared LMDB commit, say) catches up in fewer, larger
/// transactions: one commit and one fsync for all of them instead of one each. Also returns a
/// failure queued behind them, to report once they are applied.
fn coalesce<T>(
    first: Batch<T>,
    feed: &mut mpsc::Receiver<FeedMsg<T>>,
) -> (Vec<Batch<T>>, Option<String>) {
    let mut total = first.len();
    let mut batches = vec![first];
    while total < COALESCE {
        match feed.try_recv() {
            Ok(FeedMsg::Batch(next)) => {
                total += next.len();
                batches.push(next);
            }
            Ok(FeedMsg::Failed(reason)) => return (batches, Some(reason)),
            Err(_) => break,
        }
    }
    (batches, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: u64, n: u64) -> Batch<u64> {
        Arc::new((from..from + n).map(|s| (Seq(s), s)).collect())
    }

    fn seqs(batches: &[Batch<u64>]) -> Vec<u64> {
        batches.iter().flat_map(|b| b.iter().map(|r| r.1)).collect()
    }

    #[test]
    fn queued_batches_are_taken_in_order_up_to_the_cap() {
        let (tx, mut rx) = mpsc::channel(8);
        let half = (COALESCE / 2) as u64;
        for from in [10, 10 + half, 10 + 2 * half] {
            tx.try_send(FeedMsg::Batch(batch(from, half))).ok().unwrap();
        }
        let (taken, failure) = coalesce(batch(0, 10), &mut rx);
        // Queued batches are taken while fewer than COALESCE records are held: two of them
        // here. The third waits for the next apply.
        assert_eq!(seqs(&taken), (0..10 + 2 * half).collect::<Vec<_>>());
        assert!(failure.is_none());
        let (rest, _) = coalesce(batch(0, 0), &mut rx);
        assert_eq!(
            seqs(&rest),
            (10 + 2 * half..10 + 3 * half).collect::<Vec<_>>()
        );
        // Nothing queued: just the batch itself.
        assert_eq!(seqs(&coalesce(batch(7, 1), &mut rx).0), [7]);
    }

    #[test]
    fn a_failure_queued_behind_batches_is_returned_after_them() {
        let (tx, mut rx) = mpsc::channel(8);
        tx.try_send(FeedMsg::Batch(batch(5, 5))).ok().unwrap();
        tx.try_send(FeedMsg::Failed("bad record".into()))
            .ok()
            .unwrap();
        tx.try_send(FeedMsg::Batch(batch(10, 5))).ok().unwrap();
        let (taken, failure) = coalesce(batch(0, 5), &mut rx);
        assert_eq!(seqs(&taken), (0..10).collect::<Vec<_>>());
        assert_eq!(failure.as_deref(), Some("bad record"));
    }
}
