//! [`SinceCell`]: where a log keeps its acknowledged `since`.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use crate::Seq;
use crate::lock::lock;
use crate::seq::AtomicSince;

/// A log's acknowledged `since`, kept the way [`Log`](crate::Log) needs it: one lock-free word for
/// [`current_since`](crate::Log::current_since), one watch channel for the streams and views that
/// wait for it to move, and a close that ends them.
///
/// Invariants: the word is stored before the channel is sent, so a reader woken by the channel
/// never loads an older value; after [`close`](Self::close) nothing is published and every
/// receiver sees the channel closed.
///
/// ```
/// use flume_core::{Seq, SinceCell};
///
/// let since = SinceCell::new(None);
/// let rx = since.subscribe();
/// assert!(since.publish(Seq(7)));
/// assert_eq!((since.load(), *rx.borrow()), (Some(Seq(7)), Some(Seq(7))));
/// // A log that orders its appends with their `since` publishes through the held cell.
/// since.hold().expect("open").publish(Seq(8));
/// assert!(since.close());
/// assert!(!since.close(), "only the first close closes");
/// assert!(since.hold().is_none() && !since.is_open());
/// assert!(!since.publish(Seq(9)), "nothing is published after close");
/// let last = (Some(Seq(8)), Some(Seq(8)));
/// assert_eq!((since.load(), *rx.borrow()), last, "the last value stays");
/// assert!(rx.has_changed().is_err(), "receivers see the channel closed");
/// ```
#[derive(Debug)]
pub struct SinceCell {
    now: AtomicSince,
    /// `None` once closed: dropping the sender is what closes every receiver.
    tx: Mutex<Option<watch::Sender<Option<Seq>>>>,
    rx: watch::Receiver<Option<Seq>>,
}

/// The open cell, held: while it lives, no other publish and no close can run.
///
/// A log that must order its appends with their `since` updates (or exclude a close during an
/// append) holds one for the whole append.
#[derive(Debug)]
pub struct SincePublisher<'a> {
    now: &'a AtomicSince,
    tx: MutexGuard<'a, Option<watch::Sender<Option<Seq>>>>,
}

impl SinceCell {
    /// An open cell holding `since` (the last record found on open, `None` for an empty log).
    ///
    /// # Panics
    /// For a seq of `u64::MAX` (no log reaches it: seqs are offsets or counts).
    pub fn new(since: Option<Seq>) -> Self {
        let (tx, rx) = watch::channel(since);
        SinceCell {
            now: AtomicSince::new(since),
            tx: Mutex::new(Some(tx)),
            rx,
        }
    }

    /// The value last published: one atomic load.
    pub fn load(&self) -> Option<Seq> {
        self.now.load()
    }

    /// A receiver of every value published from now on; closed when the cell is.
    pub fn subscribe(&self) -> watch::Receiver<Option<Seq>> {
        self.rx.clone()
    }

    /// The cell, held for publishing; `None` once closed.
    pub fn hold(&self) -> Option<SincePublisher<'_>> {
        let tx = lock(&self.tx);
        tx.is_some()
            .then_some(SincePublisher { now: &self.now, tx })
    }

    /// Publish `since` if the cell is open; whether it was.
    ///
    /// # Panics
    /// For a seq of `u64::MAX` (no log reaches it: seqs are offsets or counts).
    pub fn publish(&self, since: Seq) -> bool {
        self.hold().map(|p| p.publish(since)).is_some()
    }

    /// Whether [`close`](Self::close) has not run yet.
    pub fn is_open(&self) -> bool {
        lock(&self.tx).is_some()
    }

    /// Close the cell, ending every receiver's wait; true for the call that closed it.
    pub fn close(&self) -> bool {
        lock(&self.tx).take().is_some()
    }
}

impl SincePublisher<'_> {
    /// Make `since` the cell's value: stored, then sent.
    ///
    /// # Panics
    /// For a seq of `u64::MAX` (no log reaches it: seqs are offsets or counts).
    pub fn publish(&self, since: Seq) {
        self.now.store(Some(since));
        // `hold` builds a publisher only over an open cell, and the guard keeps it open.
        let tx = self.tx.as_ref().expect("a held cell is open");
        tx.send_replace(Some(since));
    }
}
