//! One LMDB environment per database directory, shared by every view in it.
//!
//! Write transactions run on one dedicated thread (LMDB requires a transaction to end on the
//! thread that began it, and one writer at a time anyway), so callers never hold a transaction
//! across an `.await`. Read transactions are `WithoutTls`: any task may open one on any thread,
//! briefly. A write that hits `MapFull` is aborted, the map is doubled while no transaction is
//! open (readers hold a shared lock that the resize takes exclusively), and the write is retried.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, Weak, mpsc};
use std::thread::JoinHandle;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};
use tokio::sync::oneshot;

use crate::error::LmdbError;

/// A table (LMDB named database) of raw byte keys and values.
pub type Table = Database<'static, Bytes, Bytes>;

/// The initial map size; it doubles whenever a write finds it full.
const INITIAL_MAP: usize = 256 << 20;
/// Named databases per environment (each view uses one or two).
const MAX_DBS: u32 = 1024;

type Job = Box<dyn FnOnce(&Writer) + Send>;

/// A shared handle on the LMDB environment of one directory. Cloning shares it; opening the same
/// directory again in this process returns the same environment.
#[derive(Clone)]
pub struct Lmdb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    env: Env<WithoutTls>,
    /// Readers hold it shared for the life of a read transaction; a resize holds it exclusively.
    resize: Arc<RwLock<()>>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the writer thread owns.
struct Writer {
    env: Env<WithoutTls>,
    resize: Arc<RwLock<()>>,
}

/// The environments open in this process, by canonical path: LMDB must not open one twice.
fn registry() -> MutexGuard<'static, HashMap<PathBuf, Weak<Inner>>> {
    static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = LazyLock::new(Mutex::default);
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lmdb {
    /// Open (creating if needed) the environment in `dir`.
    ///
    /// # Errors
    /// [`LmdbError`] when the directory cannot be created or LMDB cannot open it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, LmdbError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| LmdbError::io(dir, e))?;
        let path = dir.canonicalize().map_err(|e| LmdbError::io(dir, e))?;
        let mut open = registry();
        if let Some(inner) = open.get(&path).and_then(Weak::upgrade) {
            return Ok(Lmdb { inner });
        }
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(INITIAL_MAP)
            .max_dbs(MAX_DBS)
            .max_readers(4096);
        // SAFETY: LMDB's contract is that a file is not opened twice by one process and that the
        // map is not modified by others in ways it does not expect. The registry above returns
        // the already open environment for this canonical path instead of opening it again, and
        // the directory is Flume's own (nothing else writes its data.mdb).
        #[allow(unsafe_code)]
        let env = unsafe { options.open(&path) }.map_err(|e| LmdbError::open(&path, e))?;
        let resize = Arc::new(RwLock::new(()));
        let (tx, rx) = mpsc::channel::<Job>();
        let writer = Writer {
            env: env.clone(),
            resize: Arc::clone(&resize),
        };
        let thread = std::thread::Builder::new()
            .name("flume-lmdb-writer".into())
            .spawn(move || {
                for job in rx {
                    job(&writer);
                }
            })
            .map_err(|e| LmdbError::io(&path, e))?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            env,
            resize,
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

    /// Run `f` in a write transaction on the writer thread and commit. `f` may run more than
    /// once: when the map is full the transaction is aborted, the map grown, and `f` run again.
    ///
    /// # Errors
    /// LMDB's errors; [`LmdbError::Closed`] when the environment is closing.
    pub async fn write<R, F>(&self, f: F) -> Result<R, LmdbError>
    where
        R: Send + 'static,
        F: FnMut(&mut RwTxn<'_>) -> heed::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |w: &Writer| {
            let _ = tx.send(w.run(f));
        });
        self.send(job)?;
        rx.await.map_err(|_| LmdbError::Closed)?
    }

    /// Create (or open) the named table.
    ///
    /// # Errors
    /// LMDB's errors (too many tables: the environment allows 1024).
    pub async fn table(&self, name: &str) -> Result<Table, LmdbError> {
        let name = name.to_string();
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |w: &Writer| {
            let _ = tx.send(w.create_table(&name));
        });
        self.send(job)?;
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
        let _shared = self.inner.resize.read().unwrap_or_else(|p| p.into_inner());
        let txn = self.inner.env.read_txn().map_err(LmdbError::Lmdb)?;
        f(&txn).map_err(LmdbError::Lmdb)
    }

    fn send(&self, job: Job) -> Result<(), LmdbError> {
        let jobs = self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.as_ref()
            .ok_or(LmdbError::Closed)?
            .send(job)
            .map_err(|_| LmdbError::Closed)
    }
}

impl Writer {
    fn run<R>(&self, mut f: impl FnMut(&mut RwTxn<'_>) -> heed::Result<R>) -> Result<R, LmdbError> {
        loop {
            let attempt = (|| {
                let mut txn = self.env.write_txn()?;
                let r = f(&mut txn)?;
                txn.commit()?;
                Ok(r)
            })();
            match attempt {
                Err(heed::Error::Mdb(heed::MdbError::MapFull)) => self.grow()?,
                other => return other.map_err(LmdbError::Lmdb),
            }
        }
    }

    fn create_table(&self, name: &str) -> Result<Table, LmdbError> {
        let txn = self.env.write_txn().map_err(LmdbError::Lmdb)?;
        let created = self.env.create_databases_and_commit(txn, |opener, txn| {
            let table: Database<'_, Bytes, Bytes> = opener.create_database(txn, Some(name))?;
            Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(table))
        });
        match created {
            Ok(CommitOrAbort::Commit(table)) => Ok(table),
            Ok(CommitOrAbort::Abort(())) => Err(LmdbError::Closed),
            Err(heed::Error::Mdb(heed::MdbError::MapFull)) => {
                self.grow()?;
                self.create_table(name)
            }
            Err(e) => Err(LmdbError::Lmdb(e)),
        }
    }

    /// Double the map while no transaction is open in this process.
    fn grow(&self) -> Result<(), LmdbError> {
        let _exclusive = self.resize.write().unwrap_or_else(|p| p.into_inner());
        let size = self.env.info().map_size * 2;
        // SAFETY: LMDB allows resizing an open environment when no transaction is active in
        // this process. Write transactions only run on this thread, and the failed one was
        // dropped; read transactions are only opened under the shared side of `resize`, which we
        // hold exclusively here.
        #[allow(unsafe_code)]
        unsafe { self.env.resize(size) }.map_err(LmdbError::Lmdb)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop the writer after the jobs already queued, and wait for it so that the
        // environment is closed when this returns and the directory can be opened again.
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
        let mut open = registry();
        if open.get(&self.path).is_some_and(|w| w.strong_count() == 0) {
            open.remove(&self.path);
        }
    }
}
