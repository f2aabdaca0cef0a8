//! Mutexes that keep serving after a panic.

use std::sync::{Mutex, MutexGuard};

/// The guard of `m`, even if a panic poisoned it: the crate's locks guard plain data (a slot, a
/// list, a map) that a panic cannot leave half-changed, so serving on is safe.
pub(crate) fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
