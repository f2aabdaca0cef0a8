use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The position of a record in a log, chosen by the log.
///
/// Seqs are strictly increasing in append order but not necessarily dense: the file log uses byte
/// offsets, so the seq after `s` is not `s + 1`. Never compute a seq; take it from an append, a
/// stream or `since`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl Seq {
    /// The raw number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The smallest bound past `since` (`Seq(0)` past nothing: an empty log, a view that
    /// applied nothing). A bound, not a record's seq: seqs compare numerically, so it means
    /// "anything after `since`".
    ///
    /// ```
    /// use flume_core::Seq;
    ///
    /// assert_eq!(Seq::after(None), Seq(0));
    /// assert_eq!(Seq::after(Some(Seq(41))), Seq(42));
    /// assert_eq!(Seq::after(Some(Seq(u64::MAX))), Seq(u64::MAX));
    /// ```
    pub fn after(since: Option<Seq>) -> Seq {
        since.map_or(Seq(0), |s| Seq(s.0.saturating_add(1)))
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u64> for Seq {
    fn from(value: u64) -> Self {
        Seq(value)
    }
}

/// True when a view (or reader) at `have` has seen everything up to `want`.
///
/// `None` means "nothing": an empty log, or a view that has seen nothing.
pub(crate) fn reached(have: Option<Seq>, want: Option<Seq>) -> bool {
    match (have, want) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(h), Some(w)) => h >= w,
    }
}

/// An `Option<Seq>` readable without a lock: the word of a [`SinceCell`](crate::SinceCell), so
/// that [`Log::current_since`](crate::Log::current_since) is one atomic load, which matters to
/// gated reads running on many threads at once.
///
/// Stored as `seq + 1`, `0` meaning `None` (a seq of `u64::MAX` cannot be stored).
#[derive(Debug)]
pub(crate) struct AtomicSince(AtomicU64);

impl AtomicSince {
    /// A cell holding `since`.
    ///
    /// # Panics
    /// For a seq of `u64::MAX` (no log reaches it: seqs are offsets or counts).
    pub(crate) fn new(since: Option<Seq>) -> Self {
        AtomicSince(AtomicU64::new(encode(since)))
    }

    /// The value last stored (with acquire ordering: what was written before the store is
    /// visible after this load).
    pub(crate) fn load(&self) -> Option<Seq> {
        decode(self.0.load(Ordering::Acquire))
    }

    /// Store `since` (with release ordering).
    ///
    /// # Panics
    /// For a seq of `u64::MAX`, as [`AtomicSince::new`].
    pub(crate) fn store(&self, since: Option<Seq>) {
        self.0.store(encode(since), Ordering::Release);
    }
}

/// `since` as one word: `seq + 1`, `0` for `None`.
///
/// # Panics
/// For a seq of `u64::MAX` (not storable; see [`try_encode`]).
pub(crate) fn encode(since: Option<Seq>) -> u64 {
    try_encode(since).expect("seq u64::MAX is not storable")
}

/// [`encode`], or `None` for a seq of `u64::MAX`.
pub(crate) fn try_encode(since: Option<Seq>) -> Option<u64> {
    since.map_or(Some(0), |s| s.0.checked_add(1))
}

/// The `since` an [`encode`]d word holds.
pub(crate) fn decode(word: u64) -> Option<Seq> {
    word.checked_sub(1).map(Seq)
}
