//! Read transactions: reused while no commit happened since they began, and spread over shards
//! so that threads reading at once (up to one per shard) touch no shared lock.
//!
//! Beginning an LMDB read transaction is most of the cost of a point read: a reader slot taken
//! under LMDB's lock, and each named table looked up again in the new snapshot. So finished read
//! transactions go back to an idle list, tagged with the commit generation read just before they
//! began, and are reused while that generation is current.
//!
//! Invariant: a transaction tagged with the current generation sees every commit made so far. The
//! writer bumps the generation after each commit and before reporting it, and a reader loads the
//! generation before beginning its transaction, so a tag can only be older than the snapshot,
//! never newer. Transactions whose tag is not current are closed instead of reused: a reader never
//! sees a snapshot older than a commit it was told about. Once per round of writes, after its
//! replies, the writer closes the stale idle transactions (those that pin old pages) and keeps
//! the current ones; one put back just after that pins old pages only until the next round or
//! the next read on its shard, which finds it stale and closes its shard's whole list. Almost
//! always all of that list is stale too; a reader reads the generation before it takes the
//! shard's lock to put its transaction back, so a current one can lie under an older one, and is
//! then closed with it (which costs only a new `begin`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use heed::{Env, RoTxn, WithoutTls};

use super::relock;

/// Shards of readers; a thread always uses the same one.
const SHARDS: usize = 16;
/// At most this many idle transactions per shard (more are simply closed).
const IDLE: usize = 8;

type Tagged = (u64, RoTxn<'static, WithoutTls>);

pub(super) struct Readers {
    generation: AtomicU64,
    shards: Box<[Shard]>,
}

/// One shard, on its own cache lines so that threads on different shards share nothing.
#[repr(align(128))]
struct Shard {
    /// Held shared for the life of a read transaction; map growth holds every shard exclusively
    /// (LMDB may only resize while no transaction of this process is open).
    resize: RwLock<()>,
    idle: Mutex<Vec<Tagged>>,
}

/// A read transaction in use; it goes back to its shard's idle list when dropped.
pub(super) struct Reader<'a> {
    readers: &'a Readers,
    shard: &'a Shard,
    txn: Option<Tagged>,
    _shared: RwLockReadGuard<'a, ()>,
}

/// Every shard held exclusively: no read transaction is open in this process.
pub(super) struct Exclusive<'a> {
    _guards: Vec<RwLockWriteGuard<'a, ()>>,
}

impl Readers {
    pub(super) fn new() -> Self {
        Readers {
            generation: AtomicU64::new(0),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    resize: RwLock::new(()),
                    idle: Mutex::new(Vec::new()),
                })
                .collect(),
        }
    }

    /// This thread's shard.
    fn shard(&self) -> &Shard {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        &self.shards[SLOT.with(|s| *s) % SHARDS]
    }

    /// A read transaction that sees every commit made before this call.
    pub(super) fn begin<'a>(&'a self, env: &Env<WithoutTls>) -> heed::Result<Reader<'a>> {
        let shard = self.shard();
        let shared = relock(shard.resize.read());
        let current = self.generation.load(Ordering::Acquire);
        let reused = {
            let mut idle = shard.idle();
            match idle.pop() {
                Some(tagged) if tagged.0 == current => Some(tagged),
                // Older than a commit, and so (almost always) is everything under it.
                Some(_) => {
                    idle.clear();
                    None
                }
                None => None,
            }
        };
        let txn = match reused {
            Some(tagged) => tagged,
            None => (current, env.clone().static_read_txn()?),
        };
        Ok(Reader {
            readers: self,
            shard,
            txn: Some(txn),
            _shared: shared,
        })
    }

    /// After a commit, before it is reported: idle transactions are no longer reused. (The
    /// writer closes them with [`Readers::close_stale`] once it has replied.)
    pub(super) fn committed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Write transactions committed so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Close the idle transactions older than the last commit: they pin pages it freed. Current
    /// ones stay for the next reads.
    pub(super) fn close_stale(&self) {
        for shard in &self.shards {
            let current = self.generation.load(Ordering::Acquire);
            // Closed once the shard's lock is released, as in `close_idle`: its readers need not
            // wait for the aborts.
            let stale: Vec<_> = shard
                .idle()
                .extract_if(.., |(tag, _)| *tag != current)
                .collect();
            drop(stale);
        }
    }

    /// Close every idle transaction (they own clones of the environment).
    pub(super) fn close_idle(&self) {
        for shard in &self.shards {
            let idle = std::mem::take(&mut *shard.idle());
            drop(idle);
        }
    }

    /// Wait until no read transaction is open, and keep it so (idle ones are closed).
    pub(super) fn exclusive(&self) -> Exclusive<'_> {
        let guards = self
            .shards
            .iter()
            .map(|s| relock(s.resize.write()))
            .collect();
        self.close_idle();
        Exclusive { _guards: guards }
    }
}

impl Shard {
    fn idle(&self) -> MutexGuard<'_, Vec<Tagged>> {
        relock(self.idle.lock())
    }
}

impl Reader<'_> {
    pub(super) fn txn(&self) -> &RoTxn<'static, WithoutTls> {
        // Present from `begin` until `drop`.
        &self.txn.as_ref().expect("a reader holds its transaction").1
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(tagged) = self.txn.take() else {
            return;
        };
        // Reuse it only if no commit happened since it began; otherwise close it.
        if tagged.0 == self.readers.generation.load(Ordering::Acquire) {
            let mut idle = self.shard.idle();
            if idle.len() < IDLE {
                idle.push(tagged);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lmdb;

    /// An environment in a fresh directory (kept alive by the first) and an empty reader cache.
    fn fixture() -> (tempfile::TempDir, Lmdb, Readers) {
        let dir = tempfile::tempdir().unwrap();
        let lmdb = Lmdb::open(dir.path()).unwrap();
        (dir, lmdb, Readers::new())
    }

    #[test]
    fn a_transaction_from_before_a_commit_is_never_reused() {
        let (_dir, lmdb, readers) = fixture();
        let env = &lmdb.inner.env;
        let tag = |r: &Reader<'_>| r.txn.as_ref().map(|t| t.0);

        drop(readers.begin(env).unwrap());
        assert_eq!(readers.shard().idle().len(), 1);
        let reused = readers.begin(env).unwrap();
        assert_eq!(tag(&reused), Some(0));
        assert!(readers.shard().idle().is_empty(), "the idle one was taken");
        drop(reused);

        // A commit whose emptying of the idle lists ran before that transaction went back: the
        // race the tag guards against.
        readers.generation.fetch_add(1, Ordering::AcqRel);
        assert_eq!(readers.shard().idle().len(), 1);
        let fresh = readers.begin(env).unwrap();
        assert_eq!(
            tag(&fresh),
            Some(1),
            "a transaction older than a commit was reused"
        );
    }

    #[test]
    fn a_stale_idle_transaction_closes_its_whole_list() {
        let (_dir, lmdb, readers) = fixture();
        let env = &lmdb.inner.env;
        let (a, b) = (readers.begin(env).unwrap(), readers.begin(env).unwrap());
        drop((a, b));
        assert_eq!(readers.shard().idle().len(), 2);
        readers.committed();
        let _fresh = readers.begin(env).unwrap();
        assert!(
            readers.shard().idle().is_empty(),
            "the stale one under the top was kept"
        );
    }

    #[test]
    fn the_writers_round_closes_stale_idle_transactions_and_keeps_current_ones() {
        let (_dir, lmdb, readers) = fixture();
        drop(readers.begin(&lmdb.inner.env).unwrap());
        readers.close_stale();
        assert_eq!(readers.shard().idle().len(), 1, "a current one was closed");
        readers.committed();
        readers.close_stale();
        assert!(readers.shard().idle().is_empty(), "a stale one was kept");
    }
}
