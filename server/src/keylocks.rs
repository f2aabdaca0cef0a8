//! Per-key serialization of read-modify-write commands.
//!
//! A check-then-append (add, cas, incr, ...) must not interleave with another write of the same
//! key, or one of them is lost. Every key-value write made by the server takes its key's stripe
//! (a fixed array of async mutexes, so memory does not grow with the number of keys), reads the
//! current entry with a *gated* read, appends, and releases the stripe once the append is
//! acknowledged. The next holder's gated read waits until the view includes every record
//! acknowledged when it starts, which includes the previous holder's write: no update is lost.
//! Writes of the whole collection (`flush_all`) take every stripe, in order.

use std::hash::{BuildHasher, RandomState};

use tokio::sync::{Mutex, MutexGuard};

/// Stripes; a power of two.
const STRIPES: usize = 1024;

pub(crate) struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Hold `key`'s stripe.
    pub(crate) async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let i = (self.hasher.hash_one(key) as usize) & (STRIPES - 1);
        self.stripes[i].lock().await
    }

    /// Hold every stripe (in index order, so two callers cannot deadlock).
    pub(crate) async fn lock_all(&self) -> Vec<MutexGuard<'_, ()>> {
        let mut guards = Vec::with_capacity(STRIPES);
        for s in self.stripes.iter() {
            guards.push(s.lock().await);
        }
        guards
    }
}
