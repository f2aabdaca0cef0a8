//! Opening a database directory: `log/` (the file log), `views/` (the LMDB environment),
//! `reduce/<name>/` (reduce views' checkpoints) and `flume.toml`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flume_core::{Db, DbOptions, Log, Postcard, Seq, ViewHandle, ViewMeta};
use flume_log_offset::storage::create_dir_synced;
use flume_log_offset::{OffsetLog, Options};
use flume_view_index::{KeyValue, Lmdb};
use flume_view_query::QueryView;

use crate::config::Config;
use crate::retain::{Background, Planned, Retainer, Retired};
use crate::views::{self, StoreView};
use crate::{Record, StoreError};

/// What one declared view has stored, read by [`Store::stored`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoredView {
    /// The view's name.
    pub name: String,
    /// Its kind's name.
    pub kind: &'static str,
    /// The version its code stores now; a different stored version means a rebuild at the next
    /// open.
    pub version: u32,
    /// What is stored, or why it cannot be read (a reduce view held by a running server, a
    /// damaged checkpoint).
    pub meta: Result<ViewMeta, String>,
}

/// An open database directory: the log of [`Record`]s and its declared views.
pub struct Store {
    dir: PathBuf,
    config: Config,
    log: Arc<OffsetLog>,
    db: Db<Record>,
    views: Vec<(String, StoreView)>,
    retainer: Arc<Retainer>,
    /// Applies `[log] retain` while the store is open; taken by `close`.
    retention: std::sync::Mutex<Option<Background>>,
}

impl Store {
    /// Open `dir` (created if absent) with its `flume.toml`, or the defaults without one.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a bad `flume.toml`; the log's errors (another writer holds
    /// it, corruption); LMDB errors.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        // A missing directory has no `flume.toml`; `open_with` creates it.
        let config = Config::load(dir)?;
        Self::open_with(dir, config).await
    }

    /// Open `dir` with an explicit configuration.
    ///
    /// # Errors
    /// As [`open`](Store::open).
    pub async fn open_with(dir: impl AsRef<Path>, config: Config) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_synced(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let options = Options::new()
            .durability(config.log.durability.into())
            .segment_size(config.log.segment_size)
            .max_record_size(config.log.max_record_size);
        let log = Arc::new(OffsetLog::open_with(dir.join("log"), options)?);
        let db = Db::open_with(
            Arc::clone(&log) as Arc<dyn Log>,
            Arc::new(Postcard),
            DbOptions::default(),
        )
        .await?;
        let lmdb = Lmdb::open(dir.join("views"))?;
        let mut views = Vec::with_capacity(config.views.len());
        for spec in &config.views {
            let built = views::build(&lmdb, &dir.join("reduce"), spec);
            let view = match built.start(&db, &spec.name).await {
                Ok(view) => view,
                Err(e) => {
                    let _ = db.close().await;
                    return Err(e);
                }
            };
            views.push((spec.name.clone(), view));
        }
        let retainer = Arc::new(Retainer::new(Arc::clone(&log), views.clone()));
        let retention = config.log.retain.map(|keep| {
            let every = Duration::from_secs(config.log.retain_every);
            Background::start(Arc::clone(&retainer), keep, every)
        });
        Ok(Store {
            dir,
            config,
            log,
            db,
            views,
            retainer,
            retention: std::sync::Mutex::new(retention),
        })
    }

    /// Read every declared view's stored version and `since` without opening the database:
    /// no writer lock is taken, nothing is fed, and a view ahead of its log is not rebuilt (so
    /// `flume verify` can report it).
    ///
    /// # Errors
    /// LMDB errors opening the views' environment.
    pub async fn stored(
        dir: impl AsRef<Path>,
        config: &Config,
    ) -> Result<Vec<StoredView>, StoreError> {
        let dir = dir.as_ref();
        let views_dir = dir.join("views");
        let lmdb = if views_dir.join("data.mdb").is_file() {
            Some(Lmdb::open(&views_dir)?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(config.views.len());
        for spec in &config.views {
            let reduce = views::build_reduce(&dir.join("reduce"), spec);
            let built = match (reduce, &lmdb) {
                (Some(built), _) => Some(built),
                (None, Some(env)) => Some(views::build(env, &dir.join("reduce"), spec)),
                // No environment yet: the view has stored nothing.
                (None, None) => None,
            };
            let (version, meta) = match &built {
                Some(b) => (b.version(), b.stored().await.map_err(|e| e.to_string())),
                None => (spec.version, Ok(ViewMeta::default())),
            };
            out.push(StoredView {
                name: spec.name.clone(),
                kind: spec.kind.name(),
                version,
                meta,
            });
        }
        Ok(out)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database: append, get, stream, rebuild, status.
    pub fn db(&self) -> &Db<Record> {
        &self.db
    }

    /// The file log itself (for `sync`, retention and checks).
    pub fn log(&self) -> &Arc<OffsetLog> {
        &self.log
    }

    /// The declared views, in order.
    pub fn views(&self) -> &[(String, StoreView)] {
        &self.views
    }

    /// The view named `name`.
    ///
    /// # Errors
    /// [`StoreError::UnknownView`] listing the names there are.
    pub fn view(&self, name: &str) -> Result<&StoreView, StoreError> {
        self.views
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| StoreError::UnknownView {
                name: name.to_string(),
                known: self.views.iter().map(|(n, _)| n.clone()).collect(),
            })
    }

    /// The key-value view.
    ///
    /// # Errors
    /// [`StoreError::NoKeyValueView`] when `flume.toml` declares none.
    pub fn kv(&self) -> Result<&ViewHandle<KeyValue<Record>>, StoreError> {
        self.views
            .iter()
            .find_map(|(_, v)| match v {
                StoreView::Kv(h) => Some(h),
                _ => None,
            })
            .ok_or(StoreError::NoKeyValueView)
    }

    /// The query view named `name`, or the first one declared when `name` is `None`.
    ///
    /// # Errors
    /// [`StoreError::UnknownView`] when there is no such view, or it is not a query view.
    pub fn query(&self, name: Option<&str>) -> Result<&ViewHandle<QueryView<Record>>, StoreError> {
        let found = self.views.iter().find_map(|(n, v)| match v {
            StoreView::Query(h) if name.is_none_or(|want| want == n) => Some(h),
            _ => None,
        });
        found.ok_or_else(|| StoreError::UnknownView {
            name: name.unwrap_or("(a query view)").to_string(),
            known: self
                .views
                .iter()
                .filter(|(_, v)| matches!(v, StoreView::Query(_)))
                .map(|(n, _)| n.clone())
                .collect(),
        })
    }

    /// Delete the log's oldest segment files whose records all lie below `before` (retention),
    /// while the database is open. No record a view may need again goes: every view is first
    /// made durable at the `since` it has reached, and `before` is lowered to just after the
    /// lowest of those. Whole segments only, never the one holding the last record.
    ///
    /// Views keep what they derived from the deleted records (a count, key-value entries);
    /// index and query reads skip them; a rebuild sees only what remains.
    ///
    /// # Errors
    /// [`StoreError::ViewSync`] when a view cannot be made durable (a failed view; nothing is
    /// deleted); the log's I/O errors deleting files (a retry finishes the work).
    pub async fn retire_before(&self, before: Seq) -> Result<Retired, StoreError> {
        self.retainer.retire_before(before).await
    }

    /// [`retire_before`](Self::retire_before) in two steps, to show what goes before it goes:
    /// the views are synced and `before` lowered now, and [`Planned::retire`] deletes exactly
    /// the segments the plan shows. Until it is carried out or dropped, the plan holds off
    /// every other retirement of this store: the background one skips its checks, and a
    /// `retire_before` or second plan waits (so the holder must not call them itself).
    ///
    /// # Errors
    /// [`StoreError::ViewSync`] when a view cannot be made durable.
    pub async fn plan_retirement(&self, before: Seq) -> Result<Planned, StoreError> {
        self.retainer.plan(before).await
    }

    /// The seq to retire below to keep at least `keep` bytes of the newest records (`[log]
    /// retain` uses it); `None` when the log is empty.
    pub fn keeping(&self, keep: u64) -> Option<Seq> {
        self.retainer.keeping(keep)
    }

    /// Stop the background retention, then close the views and the log.
    ///
    /// # Errors
    /// The first error closing a view or the log.
    pub async fn close(&self) -> Result<(), StoreError> {
        let retention = self
            .retention
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(retention) = retention {
            retention.stop().await;
        }
        Ok(self.db.close().await?)
    }
}
