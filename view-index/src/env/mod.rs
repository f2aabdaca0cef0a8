//! One LMDB environment per database directory, shared by every view in it.
//!
//! Write transactions run on one dedicated thread (LMDB requires a transaction to end on the
//! thread that began it, and one writer at a time anyway), so callers never hold a transaction
//! across an `.await`. Read transactions are `WithoutTls`: any task may open one on any thread,
//! briefly. A write that hits `MapFull` is aborted, the map is doubled while no transaction is
//! open (readers hold a shared lock that the resize takes exclusively), and the write is retried.
//! Read transactions are reused while no commit happened since they began (see `readers`).

mod readers;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak, mpsc};
use std::thread::JoinHandle;

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use self::readers::Readers;
use self::writer::{Job, WriteJob, Writer};
use tokio::sync::oneshot;

use crate::error::LmdbError;

/// A table (LMDB named database) of raw byte keys and values.
pub type Table = Database<'static, Bytes, Bytes>;

/// The initial map size; it doubles whenever a write finds it full.
const INITIAL_MAP: usize = 256 << 20;
/// Named databases per environment (each view uses one or two).
const MAX_DBS: u32 = 1024;

/// A shared handle on the LMDB environment of one directory. Cloning shares it; opening the same
/// directory again in this process returns the same environment.
#[derive(Clone)]
pub struct Lmdb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    env: Env<WithoutTls>,
    readers: Arc<Readers>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The environments open in this process, by canonical path: LMDB must not open one twice.
fn registry() -> MutexGuard<'static, HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = LazyLock::new(Mutex::default);
    relock(OPEN.lock())
}

/// A lock's guard even if a panic poisoned it: what these locks guard stays consistent.
pub(crate) fn relock<G>(r: Result<G, std::sync::PoisonError<G>>) -> G {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Lmdb {
    /// Open (creating if needed) the environment in `dir`.
    ///
    /// # Errors
    /// [`LmdbError`] when the directory cannot be created or LMDB cannot open it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, LmdbError> {
        Self::open_with_map(dir, INITIAL_MAP)
    }

    /// [`open`](Lmdb::open) with a first map size of `bytes` (rounded up by LMDB to whole
    /// pages) instead of 256 MiB; it still doubles whenever a write finds it full. Ignored when
    /// the environment is already open in this process.
    ///
    /// # Errors
    /// As [`open`](Lmdb::open).
    pub fn open_with_map(dir: impl AsRef<Path>, bytes: usize) -> Result<Self, LmdbError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| LmdbError::io(dir, e))?;
        let path = dir.canonicalize().map_err(|e| LmdbError::io(dir, e))?;
        let mut open = registry();
        if let Some(inner) = open.get(&path).and_then(Weak::upgrade) {
            return Ok(Lmdb { inner });
        }
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(bytes).max_dbs(MAX_DBS).max_readers(4096);
        // SAFETY: LMDB's contract is that a file is not opened twice by one process and that the
        // map is not modified by others in ways it does not expect. The registry above returns
        // the already open environment for this canonical path instead of opening it again, and
        // the directory is Flume's own (nothing else writes its data.mdb).
        // NO_META_SYNC (one fsync per commit instead of two) is "unsafe" only in that a machine
        // crash may undo the last commit; LMDB keeps the file consistent. Views store their
        // `since` in the same transaction as their rows, so an undone commit is a view a little
        // behind the log, which it catches up from the log on open.
        #[allow(unsafe_code)]
        let env = unsafe {
            options.flags(EnvFlags::NO_META_SYNC);
            options.open(&path)
        }
        .map_err(|e| LmdbError::open(&path, e))?;
        let readers = Arc::new(Readers::new());
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = Writer {
            env: env.clone(),
            readers: Arc::clone(&readers),
        };
        let thread = std::thread::Builder::new()
            .name("flume-lmdb-writer".into())
            .spawn(move || writer.serve(rx))
            .map_err(|e| LmdbError::io(&path, e))?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            env,
            readers,
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        });
        open.insert(path, Arc::downgrade(&inner));
        Ok(Lmdb { inner })
    }

    /// The environment's directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Write transactions committed since the environment was opened (writes queued together
    /// share one).
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.inner.readers.commits()
    }

    /// The size of the memory map now, in bytes (it doubles whenever a write finds it full).
    pub fn map_size(&self) -> usize {
        self.inner.env.info().map_size
    }

    /// Run `f` in a write transaction on the writer thread and commit. Writes queued together
    /// may share one transaction (see `writer`): an error of `f` fails this write alone, while a
    /// transaction that cannot begin or commit, or a full map that cannot grow, fails every write
    /// of the group. `f` may run more than once, each time in a fresh transaction: when the map
    /// is full, when another write of its transaction failed, or when the group is too big for
    /// one transaction (then each write gets its own).
    ///
    /// # Errors
    /// LMDB's errors; [`LmdbError::Closed`] when the environment is closing.
    pub async fn write<R, F>(&self, f: F) -> Result<R, LmdbError>
    where
        R: Send + 'static,
        F: FnMut(&mut RwTxn<'_>) -> heed::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Write(Box::new(WriteJob::new(f, tx))))?;
        rx.await.map_err(|_| LmdbError::Closed)?
    }

    /// Make every committed write durable, the last one's meta page included (commits skip
    /// that fsync: see `NO_META_SYNC` at open). For a view syncing before the log retires
    /// records, or closing, so that its `since` survives a machine crash too.
    ///
    /// # Errors
    /// LMDB's error when the fsync fails.
    pub async fn sync(&self) -> Result<(), LmdbError> {
        let env = self.inner.env.clone();
        tokio::task::spawn_blocking(move || env.force_sync())
            .await
            .map_err(|_| LmdbError::Closed)?
            .map_err(LmdbError::Lmdb)
    }

    /// Create (or open) the named table.
    ///
    /// # Errors
    /// LMDB's errors (too many tables: the environment allows 1024).
    pub async fn table(&self, name: &str) -> Result<Table, LmdbError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Table(name.to_string(), tx))?;
        rx.await.map_err(|_| LmdbError::Closed)?
    }

    /// Run `f` in a read transaction, here and now. Keep it short: it holds off map growth.
    ///
    /// # Errors
    /// LMDB's errors, and `f`'s.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&RoTxn<'_, WithoutTls>) -> heed::Result<R>,
    ) -> Result<R, LmdbError> {
        let reader = self
            .inner
            .readers
            .begin(&self.inner.env)
            .map_err(LmdbError::Lmdb)?;
        f(reader.txn()).map_err(LmdbError::Lmdb)
    }

    fn send(&self, job: Job) -> Result<(), LmdbError> {
        let jobs = relock(self.inner.jobs.lock());
        jobs.as_ref()
            .ok_or(LmdbError::Closed)?
            .send(job)
            .map_err(|_| LmdbError::Closed)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop the writer after the jobs already queued, and wait for it so that the
        // environment is closed when this returns and the directory can be opened again.
        drop(relock(self.jobs.lock()).take());
        if let Some(thread) = relock(self.thread.lock()).take() {
            let _ = thread.join();
        }
        // Idle read transactions own clones of the environment: close them so that it closes.
        self.readers.close_idle();
        let mut open = registry();
        if open.get(&self.path).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&self.path);
        }
    }
}
