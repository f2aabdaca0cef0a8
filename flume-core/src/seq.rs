use std::fmt;

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
