//! The in-memory state, shared by the view, its readers and its checkpoint writer.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use flume_core::{Seq, ViewError};
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the view and its checkpoint writer share.
pub(crate) struct Shared<S> {
    pub(crate) version: u32,
    pub(crate) cell: RwLock<Cell<S>>,
    /// Wakes the checkpoint writer when its deadline moved earlier.
    pub(crate) wake: Notify,
}

impl<S> Shared<S> {
    pub(crate) fn new(version: u32, initial: S) -> Self {
        Shared {
            version,
            cell: RwLock::new(Cell::new(initial)),
            wake: Notify::new(),
        }
    }

    /// Readers never see a torn fold: `apply` folds a whole batch under the write lock.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Cell<S>> {
        self.cell.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Cell<S>> {
        self.cell.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The state, the `since` it includes, and how much of it is not on disk yet.
///
/// `value` and `since` always change together under the lock, so any snapshot of the two is
/// consistent: that is what makes a checkpoint (written from a snapshot) sound.
pub(crate) struct Cell<S> {
    pub(crate) value: S,
    pub(crate) since: Option<Seq>,
    /// Records folded since the state was last reset (loaded, destroyed).
    pub(crate) folded: u64,
    /// `folded` as of the checkpoint on disk.
    pub(crate) saved: u64,
    /// When the oldest change not on disk was made (`None` when clean).
    pub(crate) dirty_since: Option<Instant>,
    /// The last batch was shorter than a read chunk: the view is at the log's tail.
    pub(crate) at_tail: bool,
    /// A checkpoint the background writer failed to write; the next `apply` reports it.
    pub(crate) save_error: Option<ViewError>,
    /// Set when the reduce function panicked mid-batch: `value` is then partly folded and must
    /// never be saved or fed more records; only `destroy` clears it.
    pub(crate) broken: Option<String>,
}

impl<S> Cell<S> {
    fn new(value: S) -> Self {
        Cell {
            value,
            since: None,
            folded: 0,
            saved: 0,
            dirty_since: None,
            at_tail: false,
            save_error: None,
            broken: None,
        }
    }

    /// Start over from `value` at `since`, which is what the disk holds (or will, after a
    /// destroy writes it).
    pub(crate) fn reset(&mut self, value: S, since: Option<Seq>) {
        *self = Cell {
            since,
            ..Cell::new(value)
        };
    }

    /// True when the state includes records the checkpoint on disk does not.
    pub(crate) fn dirty(&self) -> bool {
        self.folded != self.saved
    }

    /// Record that a snapshot taken at `taken`, when `folded` records were in, is on disk.
    pub(crate) fn mark_saved(&mut self, folded: u64, taken: Instant) {
        self.saved = folded;
        // Changes made after the snapshot are no older than it.
        self.dirty_since = self.dirty().then_some(taken);
    }
}
