//! The storage every LMDB view shares: its row tables, its entry in the meta table, and its
//! `since`, committed together.

use std::sync::{Mutex, OnceLock};

use flume_core::{DbError, Seq, ViewError, ViewMeta};
use heed::RwTxn;

use crate::env::{Lmdb, Table, relock};
use crate::{ReadError, meta};

/// One stored row: key and value bytes.
pub type Row = (Vec<u8>, Vec<u8>);

/// A view's tables in an [`Lmdb`] environment, and its `{version, since}` kept beside them.
///
/// Every write goes through [`commit`](ViewTables::commit), which writes the rows and the new
/// `since` in one transaction: after any crash a view's rows and `since` agree.
pub struct ViewTables {
    lmdb: Lmdb,
    name: String,
    version: u32,
    /// The row tables (in the order `open` named them) and the meta table.
    tables: OnceLock<(Vec<Table>, Table)>,
    since: Mutex<Option<Seq>>,
}

impl ViewTables {
    /// The storage of the view `name` (its meta key, and the prefix of its tables' names), whose
    /// code has version `version`.
    pub fn new(lmdb: &Lmdb, name: String, version: u32) -> Self {
        ViewTables {
            lmdb: lmdb.clone(),
            name,
            version,
            tables: OnceLock::new(),
            since: Mutex::new(None),
        }
    }

    /// The same storage, for code of another version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The environment.
    pub fn lmdb(&self) -> &Lmdb {
        &self.lmdb
    }

    /// The view's code version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Create or open the row tables `<name>:<suffix>` (or `<name>` for an empty suffix) and
    /// load the stored meta.
    ///
    /// # Errors
    /// LMDB errors; [`ViewError::Unreadable`] for malformed meta.
    pub async fn open(&self, suffixes: &[String]) -> Result<ViewMeta, ViewError> {
        let mut rows = Vec::with_capacity(suffixes.len());
        for s in suffixes {
            let name = if s.is_empty() {
                self.name.clone()
            } else {
                format!("{}:{s}", self.name)
            };
            rows.push(self.lmdb.table(&name).await?);
        }
        let meta_table = self.lmdb.table(meta::META_TABLE).await?;
        let _ = self.tables.set((rows, meta_table));
        let stored = meta::load(&self.lmdb, meta_table, &self.name)?;
        self.set_since(stored.since);
        Ok(stored)
    }

    /// Row table `i` (in the order `open` named them).
    ///
    /// # Errors
    /// When the view was not opened.
    pub fn rows(&self, i: usize) -> Result<Table, ViewError> {
        self.tables
            .get()
            .and_then(|(rows, _)| rows.get(i).copied())
            .ok_or_else(not_open)
    }

    /// Every row of table `i`, in key order, read in one transaction (for tools and tests).
    ///
    /// # Errors
    /// When the view was not opened; LMDB errors.
    pub fn dump(&self, i: usize) -> Result<Vec<Row>, ReadError> {
        let rows = self.rows(i).map_err(|source| DbError::View {
            view: self.name.clone(),
            source,
        })?;
        let all = self.lmdb.read(|txn| {
            rows.iter(txn)?
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<heed::Result<Vec<_>>>()
        })?;
        Ok(all)
    }

    /// The last record the view includes.
    pub fn since(&self) -> Option<Seq> {
        *relock(self.since.lock())
    }

    fn set_since(&self, since: Option<Seq>) {
        *relock(self.since.lock()) = since;
    }

    /// Run `write` on the row tables and store `since`, in one write transaction.
    ///
    /// # Errors
    /// LMDB errors, and `write`'s.
    pub async fn commit<F>(&self, since: Option<Seq>, mut write: F) -> Result<(), ViewError>
    where
        F: FnMut(&mut RwTxn<'_>, &[Table]) -> heed::Result<()> + Send + 'static,
    {
        let (rows, meta_table) = self.tables.get().cloned().ok_or_else(not_open)?;
        let (name, version) = (self.name.clone(), self.version);
        self.lmdb
            .write(move |txn| {
                write(txn, &rows)?;
                meta::put(txn, meta_table, &name, version, since)
            })
            .await?;
        self.set_since(since);
        Ok(())
    }

    /// Make the view's committed rows and `since` durable (see [`Lmdb::sync`]). Every LMDB view
    /// calls it from `View::sync` (before the log retires records) and as it closes, so a
    /// synced or closed view is durable at its `since`, as a reduce view's checkpoint is:
    /// records the log retires after that are never needed again.
    ///
    /// # Errors
    /// LMDB errors.
    pub async fn sync(&self) -> Result<(), ViewError> {
        Ok(self.lmdb.sync().await?)
    }

    /// Empty every row table and store `since = None` with this code's version.
    ///
    /// # Errors
    /// LMDB errors.
    pub async fn destroy(&self) -> Result<(), ViewError> {
        self.commit(None, |txn, rows| rows.iter().try_for_each(|t| t.clear(txn)))
            .await
    }
}

fn not_open() -> ViewError {
    ViewError::Other("the view was not opened".into())
}
