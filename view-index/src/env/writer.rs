//! The writer thread: every write transaction of an environment runs here.
//!
//! Write jobs that queue up while a transaction commits are committed together in the next one
//! (group commit): with several views fed by the same records, their writes share one commit
//! and its fsync instead of paying one each. Each job still succeeds or fails alone: when one
//! fails, the transaction is aborted, that job gets its error, and the others run again in a new
//! transaction. When the map is full, the transaction is aborted, the map grown and the group run
//! again; when the jobs together dirty more pages than one transaction holds, each runs in its
//! own. So a job's closure may run more than once, always in a fresh transaction.

use std::sync::{Arc, mpsc};

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, MdbError, RwTxn, WithoutTls};
use tokio::sync::oneshot;

use super::Table;
use super::readers::Readers;
use crate::error::LmdbError;

/// At most this many write jobs share one transaction.
const GROUP: usize = 64;

pub(super) enum Job {
    Write(Box<dyn Pending>),
    Table(String, oneshot::Sender<Result<Table, LmdbError>>),
}

/// A write job waiting for its transaction.
pub(super) trait Pending: Send {
    /// Do the job's writes in `txn`.
    fn apply(&mut self, txn: &mut RwTxn<'_>) -> heed::Result<()>;
    /// Report the outcome: `Ok` once the transaction holding the writes committed.
    fn finish(self: Box<Self>, outcome: Result<(), LmdbError>);
}

/// A closure and where to send its result.
pub(super) struct WriteJob<R, F> {
    f: F,
    out: Option<R>,
    reply: oneshot::Sender<Result<R, LmdbError>>,
}

impl<R, F> WriteJob<R, F> {
    pub(super) fn new(f: F, reply: oneshot::Sender<Result<R, LmdbError>>) -> Self {
        WriteJob {
            f,
            out: None,
            reply,
        }
    }
}

impl<R, F> Pending for WriteJob<R, F>
where
    R: Send,
    F: FnMut(&mut RwTxn<'_>) -> heed::Result<R> + Send,
{
    fn apply(&mut self, txn: &mut RwTxn<'_>) -> heed::Result<()> {
        self.out = Some((self.f)(txn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), LmdbError>) {
        let WriteJob { out, reply, .. } = *self;
        let _ = reply.send(outcome.and_then(|()| out.ok_or(LmdbError::Closed)));
    }
}

/// What the writer thread owns.
pub(super) struct Writer {
    pub(super) env: Env<WithoutTls>,
    pub(super) readers: Arc<Readers>,
}

/// Why a group's transaction did not commit.
enum Failure {
    /// Job `i` failed: it alone gets the error.
    Job(usize, heed::Error),
    MapFull,
    /// The transaction holds too many dirty pages: the group's size, not one job's fault.
    TxnFull(heed::Error),
    /// Beginning or committing failed: every job gets the error.
    Txn(heed::Error),
}

impl Writer {
    /// Run jobs until every sender is gone.
    pub(super) fn serve(self, jobs: mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut group = Vec::new();
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write(w) => group.push(w),
                    Job::Table(name, reply) => {
                        // Keep the queue's order: writes before the table, then the table.
                        self.commit(std::mem::take(&mut group));
                        let _ = reply.send(self.create_table(&name));
                    }
                }
                if group.len() < GROUP {
                    next = jobs.try_recv().ok();
                }
            }
            self.commit(group);
            // Once per round, off the path to the replies: they only needed the generation
            // bumped (each commit does that).
            self.readers.close_stale();
        }
    }

    /// Commit `group` in as few transactions as its failures allow, and report to every job.
    fn commit(&self, mut group: Vec<Box<dyn Pending>>) {
        while !group.is_empty() {
            match self.attempt(&mut group) {
                Ok(()) => group.drain(..).for_each(|job| job.finish(Ok(()))),
                Err(Failure::Job(i, e)) => group.remove(i).finish(Err(LmdbError::Lmdb(e))),
                Err(Failure::MapFull) => {
                    if let Err(e) = self.grow() {
                        fail_all(group.drain(..), &e);
                    }
                }
                // Too much for one transaction together: each job gets one of its own.
                Err(Failure::TxnFull(_)) if group.len() > 1 => {
                    group.drain(..).for_each(|job| self.commit(vec![job]));
                }
                Err(Failure::TxnFull(e) | Failure::Txn(e)) => {
                    fail_all(group.drain(..), &LmdbError::Lmdb(e));
                }
            }
        }
    }

    fn attempt(&self, group: &mut [Box<dyn Pending>]) -> Result<(), Failure> {
        let mut txn = self.env.write_txn().map_err(Failure::Txn)?;
        for (i, job) in group.iter_mut().enumerate() {
            match job.apply(&mut txn) {
                Ok(()) => {}
                Err(heed::Error::Mdb(MdbError::MapFull)) => return Err(Failure::MapFull),
                Err(e @ heed::Error::Mdb(MdbError::TxnFull)) => return Err(Failure::TxnFull(e)),
                Err(e) => return Err(Failure::Job(i, e)),
            }
        }
        match txn.commit() {
            Ok(()) => {
                self.readers.committed();
                Ok(())
            }
            Err(heed::Error::Mdb(MdbError::MapFull)) => Err(Failure::MapFull),
            Err(e) => Err(Failure::Txn(e)),
        }
    }

    fn create_table(&self, name: &str) -> Result<Table, LmdbError> {
        let txn = self.env.write_txn().map_err(LmdbError::Lmdb)?;
        let created = self.env.create_databases_and_commit(txn, |opener, txn| {
            let table: Database<'_, Bytes, Bytes> = opener.create_database(txn, Some(name))?;
            Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit(table))
        });
        match created {
            Ok(CommitOrAbort::Commit(table)) => {
                self.readers.committed();
                Ok(table)
            }
            Ok(CommitOrAbort::Abort(())) => Err(LmdbError::Closed),
            Err(heed::Error::Mdb(MdbError::MapFull)) => {
                self.grow()?;
                self.create_table(name)
            }
            Err(e) => Err(LmdbError::Lmdb(e)),
        }
    }

    /// Double the map while no transaction is open in this process.
    fn grow(&self) -> Result<(), LmdbError> {
        let _exclusive = self.readers.exclusive();
        let size = self.env.info().map_size * 2;
        // SAFETY: LMDB allows resizing an open environment when no transaction is active in
        // this process. Write transactions only run on this thread, and the failed one was
        // dropped; read transactions are only open under a shared lock of their readers' shard,
        // and `exclusive` holds every shard's lock exclusively and closed the idle ones.
        #[allow(unsafe_code)]
        unsafe { self.env.resize(size) }.map_err(LmdbError::Lmdb)
    }
}

/// Report one error to every job (each gets its own copy).
fn fail_all(jobs: impl Iterator<Item = Box<dyn Pending>>, e: &LmdbError) {
    for job in jobs {
        job.finish(Err(duplicate(e)));
    }
}

fn duplicate(e: &LmdbError) -> LmdbError {
    match e {
        LmdbError::Lmdb(heed::Error::Mdb(m)) => LmdbError::Lmdb(heed::Error::Mdb(*m)),
        LmdbError::Closed => LmdbError::Closed,
        other => LmdbError::Lmdb(heed::Error::Io(std::io::Error::other(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lmdb;

    type Reply = oneshot::Receiver<Result<(), LmdbError>>;

    /// A fresh environment with table `t`, and a writer on it driven by the test itself.
    async fn setup() -> (tempfile::TempDir, Lmdb, Table, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let lmdb = Lmdb::open(dir.path()).unwrap();
        let table = lmdb.table("t").await.unwrap();
        let writer = Writer {
            env: lmdb.inner.env.clone(),
            readers: Arc::clone(&lmdb.inner.readers),
        };
        (dir, lmdb, table, writer)
    }

    /// The keys of `table`, in order.
    fn keys(lmdb: &Lmdb, table: Table) -> Vec<String> {
        lmdb.read(|txn| {
            table
                .iter(txn)?
                .map(|r| r.map(|(k, _)| String::from_utf8_lossy(k).into_owned()))
                .collect()
        })
        .unwrap()
    }

    /// A write job running `f`, and where its result arrives.
    fn job(
        f: impl FnMut(&mut RwTxn<'_>) -> heed::Result<()> + Send + 'static,
    ) -> (Box<dyn Pending>, Reply) {
        let (tx, rx) = oneshot::channel();
        (Box::new(WriteJob::new(f, tx)), rx)
    }

    /// A job putting `key`, then failing if `fail`.
    fn put(table: Table, key: &'static str, fail: bool) -> (Box<dyn Pending>, Reply) {
        job(move |txn| {
            table.put(txn, key.as_bytes(), b"v")?;
            if fail {
                return Err(heed::Error::Mdb(MdbError::Incompatible));
            }
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_failed_job_fails_alone_and_the_others_commit_together() {
        let (_dir, lmdb, table, writer) = setup().await;
        let before = lmdb.commits();
        let (a, mut ra) = put(table, "a", false);
        let (b, mut rb) = put(table, "b", true);
        let (c, mut rc) = put(table, "c", false);
        writer.commit(vec![a, b, c]);

        assert!(ra.try_recv().unwrap().is_ok());
        assert!(rc.try_recv().unwrap().is_ok());
        let failed = rb.try_recv().unwrap().unwrap_err();
        assert!(failed.to_string().contains("incompatible"), "{failed}");
        // The first attempt was aborted; `a` and `c` then shared one transaction.
        assert_eq!(lmdb.commits(), before + 1);
        assert_eq!(keys(&lmdb, table), ["a", "c"]);
    }

    /// A job that reports `TxnFull` the first `full` times it runs, then puts `key`.
    fn too_big(table: Table, key: &'static str, full: usize) -> (Box<dyn Pending>, Reply) {
        let mut runs = 0;
        job(move |txn| {
            runs += 1;
            if runs <= full {
                return Err(heed::Error::Mdb(MdbError::TxnFull));
            }
            table.put(txn, key.as_bytes(), b"v")
        })
    }

    #[tokio::test]
    async fn a_group_too_big_for_one_transaction_commits_job_by_job() {
        let (_dir, lmdb, table, writer) = setup().await;
        let before = lmdb.commits();
        let (a, mut ra) = put(table, "a", false);
        let (b, mut rb) = too_big(table, "b", 1);
        let (c, mut rc) = put(table, "c", false);
        writer.commit(vec![a, b, c]);
        for r in [&mut ra, &mut rb, &mut rc] {
            assert!(r.try_recv().unwrap().is_ok());
        }
        assert_eq!(lmdb.commits(), before + 3, "one transaction per job");
        assert_eq!(keys(&lmdb, table), ["a", "b", "c"]);

        // A job too big even alone gets the error.
        let (d, mut rd) = too_big(table, "d", usize::MAX);
        writer.commit(vec![d]);
        let failed = rd.try_recv().unwrap().unwrap_err();
        assert!(failed.to_string().contains("TXN_FULL"), "{failed}");
        assert_eq!(lmdb.commits(), before + 3);
        assert_eq!(keys(&lmdb, table), ["a", "b", "c"]);
    }
}
