use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Seq;
use crate::seq;

/// Where a view is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewState {
    /// Loading its stored state.
    Opening,
    /// Catching up with the log on its own (after open, a rebuild or a failure).
    Building,
    /// Fed by the shared feed as records are appended.
    Live,
    /// Failed with this reason; it will be destroyed and rebuilt after a backoff. Reads fail.
    Failed(String),
    /// The database was closed.
    Closed,
}

impl fmt::Display for ViewState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewState::Opening => f.write_str("opening"),
            ViewState::Building => f.write_str("building"),
            ViewState::Live => f.write_str("live"),
            ViewState::Failed(reason) => write!(f, "failed: {reason}"),
            ViewState::Closed => f.write_str("closed"),
        }
    }
}

/// The part of a view's progress a gated read checks, kept in an atomic by the worker (beside the
/// `Progress` watch, which stays the source of wake-ups) so that concurrent readers of a caught-up
/// view take no lock and write no shared memory.
///
/// One word holds both whether the view is usable and its `since`, so that a reader never pairs
/// one state's flag with another's `since` (say "usable" of a view just emptied for a rebuild with
/// the `since` it had before). `UNUSABLE` marks a failed or closed view; otherwise the word is
/// `since` encoded as [`AtomicSince`](crate::seq::AtomicSince) stores it. A `since` too large to
/// encode (or encoded as `UNUSABLE`) reads as unusable, which only sends readers to the slow path.
#[derive(Debug)]
pub(crate) struct Readable(AtomicU64);

const UNUSABLE: u64 = u64::MAX;

impl Default for Readable {
    fn default() -> Self {
        Readable(AtomicU64::new(UNUSABLE))
    }
}

impl Readable {
    /// Mirror `p`. The worker calls it before sending `p`, after the view applied its records.
    pub(crate) fn set(&self, p: &Progress) {
        let word = match p.state {
            ViewState::Failed(_) | ViewState::Closed => UNUSABLE,
            _ => seq::try_encode(p.since).unwrap_or(UNUSABLE),
        };
        self.0.store(word, Ordering::Release);
    }

    /// True when the view is usable and includes `target`.
    pub(crate) fn reached(&self, target: Option<Seq>) -> bool {
        match self.0.load(Ordering::Acquire) {
            UNUSABLE => false,
            word => seq::reached(seq::decode(word), target),
        }
    }
}

/// A view's progress as published by its worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) since: Option<Seq>,
    pub(crate) state: ViewState,
}

/// A snapshot of one view's status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewStatus {
    /// The name given to `use_view`.
    pub name: String,
    /// The view code's version.
    pub version: u32,
    /// The last record the view includes.
    pub since: Option<Seq>,
    /// How far the view is behind the log, in seq units (bytes for the file log); 0 when caught up.
    pub lag: u64,
    /// What the view is doing.
    pub state: ViewState,
}

impl ViewStatus {
    pub(crate) fn new(name: &str, version: u32, p: &Progress, log_since: Option<Seq>) -> Self {
        let lag = match (log_since, p.since) {
            (Some(log), Some(view)) => log.0.saturating_sub(view.0),
            (Some(log), None) => log.0.saturating_add(1),
            (None, _) => 0,
        };
        ViewStatus {
            name: name.to_string(),
            version,
            since: p.since,
            lag,
            state: p.state.clone(),
        }
    }
}

/// The append queue's occupancy, for monitoring backpressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Bytes of encoded records handed to the log and not yet acknowledged.
    pub in_flight_bytes: u64,
    /// The most bytes ever in flight at once.
    pub high_water_bytes: u64,
    /// The bound: appends wait while it is reached.
    pub capacity_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(r: &Readable, since: Option<u64>, state: ViewState) {
        r.set(&Progress {
            since: since.map(Seq),
            state,
        });
    }

    #[test]
    fn readable_mirrors_usability_and_since_together() {
        let r = Readable::default();
        assert!(!r.reached(None), "nothing published yet");
        set(&r, None, ViewState::Building);
        assert!(r.reached(None));
        assert!(!r.reached(Some(Seq(0))));
        set(&r, Some(5), ViewState::Live);
        assert!(r.reached(Some(Seq(5))));
        assert!(!r.reached(Some(Seq(6))));
        set(&r, Some(5), ViewState::Failed("x".into()));
        assert!(!r.reached(None), "a failed view is never read");
        set(&r, Some(5), ViewState::Closed);
        assert!(!r.reached(None));
        // Seqs whose encoding is (or would pass) the marker go to the slow path.
        set(&r, Some(u64::MAX - 1), ViewState::Live);
        assert!(!r.reached(None));
        set(&r, Some(u64::MAX), ViewState::Live);
        assert!(!r.reached(None));
    }
}
