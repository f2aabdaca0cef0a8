//! The views a `flume.toml` declares, built over the directory's log and LMDB environment.

use std::collections::BTreeMap;
use std::path::Path;

use std::cmp::Ordering;

use flume_core::{Db, DbError, Document, Seq, View, ViewError, ViewHandle, ViewMeta, ViewStatus};
use flume_view_index::{Index, KeyValue, Lmdb, key};
use flume_view_query::{IndexSpec, Path as QueryPath, QueryView};
use flume_view_reduce::{Reduce, ReduceExt};
use serde_json::Value;

use crate::config::{DocPath, ViewKind, ViewSpec};
use crate::{Record, StoreError};

/// A view of a database directory, by kind.
#[derive(Clone)]
#[non_exhaustive]
pub enum StoreView {
    /// `kind = "count"`.
    Count(ViewHandle<Reduce<Record, u64>>),
    /// `kind = "sum"`.
    Sum(ViewHandle<Reduce<Record, f64>>),
    /// `kind = "min"` or `"max"`.
    Extreme(ViewHandle<Reduce<Record, Option<Document>>>),
    /// `kind = "count_by"`: counts keyed by the value's JSON text.
    CountBy(ViewHandle<Reduce<Record, BTreeMap<String, u64>>>),
    /// `kind = "index"`: keys are the paths' values, then the record's seq.
    Index(ViewHandle<Index<Record>>),
    /// `kind = "kv"`.
    Kv(ViewHandle<KeyValue<Record>>),
    /// `kind = "query"`.
    Query(ViewHandle<QueryView<Record>>),
}

impl StoreView {
    /// The view's status.
    pub fn status(&self) -> ViewStatus {
        match self {
            StoreView::Count(h) => h.status(),
            StoreView::Sum(h) => h.status(),
            StoreView::Extreme(h) => h.status(),
            StoreView::CountBy(h) => h.status(),
            StoreView::Index(h) => h.status(),
            StoreView::Kv(h) => h.status(),
            StoreView::Query(h) => h.status(),
        }
    }

    /// Wait until the view includes every record acknowledged now and is fed live, so that its
    /// [`status`](Self::status) says so (see [`ViewHandle::live`]).
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] or [`DbError::Closed`].
    pub async fn live(&self) -> Result<(), DbError> {
        match self {
            StoreView::Count(h) => h.live().await,
            StoreView::Sum(h) => h.live().await,
            StoreView::Extreme(h) => h.live().await,
            StoreView::CountBy(h) => h.live().await,
            StoreView::Index(h) => h.live().await,
            StoreView::Kv(h) => h.live().await,
            StoreView::Query(h) => h.live().await,
        }
    }

    /// Make the view durable at the `since` it has reached (see [`View::sync`]); that `since`.
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] or [`DbError::Closed`]; the view's storage errors.
    pub async fn sync(&self) -> Result<Option<Seq>, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            StoreView::Count(h) => synced(h).await,
            StoreView::Sum(h) => synced(h).await,
            StoreView::Extreme(h) => synced(h).await,
            StoreView::CountBy(h) => synced(h).await,
            StoreView::Index(h) => synced(h).await,
            StoreView::Kv(h) => synced(h).await,
            StoreView::Query(h) => synced(h).await,
        }
    }

    /// The value of a reduce view as JSON, once it has caught up; `None` for indexes and the
    /// key-value view, which are read by key.
    ///
    /// # Errors
    /// [`DbError::ViewFailed`] or [`DbError::Closed`].
    pub async fn value(&self) -> Result<Option<Value>, DbError> {
        Ok(Some(match self {
            StoreView::Count(h) => Value::from(h.get().await?),
            StoreView::Sum(h) => Value::from(h.get().await?),
            StoreView::Extreme(h) => h.get().await?.map_or(Value::Null, Document::into_inner),
            StoreView::CountBy(h) => Value::Object(
                h.get()
                    .await?
                    .into_iter()
                    .map(|(k, n)| (k, Value::from(n)))
                    .collect(),
            ),
            StoreView::Index(_) | StoreView::Kv(_) | StoreView::Query(_) => return Ok(None),
        }))
    }
}

/// `since` is read before the sync, which makes at least that much durable.
async fn synced<V: View<Record>>(
    h: &ViewHandle<V>,
) -> Result<Option<Seq>, Box<dyn std::error::Error + Send + Sync>> {
    let view = h.stale()?;
    let since = view.since();
    view.sync().await?;
    Ok(since)
}

fn at<'a>(doc: &'a Document, path: &DocPath) -> Option<&'a Value> {
    doc.path(path)
}

/// A declared view, built but not yet attached to a database.
pub(crate) enum Built {
    Count(Reduce<Record, u64>),
    Sum(Reduce<Record, f64>),
    Extreme(Reduce<Record, Option<Document>>),
    CountBy(Reduce<Record, BTreeMap<String, u64>>),
    Index(Index<Record>),
    Kv(KeyValue<Record>),
    Query(QueryView<Record>),
}

impl Built {
    /// The version the view's code stores (what its stored meta is compared with).
    pub(crate) fn version(&self) -> u32 {
        match self {
            Built::Count(v) => View::<Record>::version(v),
            Built::Sum(v) => View::<Record>::version(v),
            Built::Extreme(v) => View::<Record>::version(v),
            Built::CountBy(v) => View::<Record>::version(v),
            Built::Index(v) => View::<Record>::version(v),
            Built::Kv(v) => View::<Record>::version(v),
            Built::Query(v) => View::<Record>::version(v),
        }
    }

    /// Read what the view has stored, without a database (nothing is fed or rebuilt).
    pub(crate) async fn stored(&self) -> Result<ViewMeta, ViewError> {
        match self {
            Built::Count(v) => View::<Record>::open(v).await,
            Built::Sum(v) => View::<Record>::open(v).await,
            Built::Extreme(v) => View::<Record>::open(v).await,
            Built::CountBy(v) => View::<Record>::open(v).await,
            Built::Index(v) => View::<Record>::open(v).await,
            Built::Kv(v) => View::<Record>::open(v).await,
            Built::Query(v) => View::<Record>::open(v).await,
        }
    }

    /// Attach the view to `db` under `name`.
    pub(crate) async fn start(self, db: &Db<Record>, name: &str) -> Result<StoreView, StoreError> {
        Ok(match self {
            Built::Count(v) => StoreView::Count(db.use_view(name, v).await?),
            Built::Sum(v) => StoreView::Sum(db.use_view(name, v).await?),
            Built::Extreme(v) => StoreView::Extreme(db.use_view(name, v).await?),
            Built::CountBy(v) => StoreView::CountBy(db.use_view(name, v).await?),
            Built::Index(v) => StoreView::Index(db.use_view(name, v).await?),
            Built::Kv(v) => StoreView::Kv(db.use_view(name, v).await?),
            Built::Query(v) => StoreView::Query(db.use_view(name, v).await?),
        })
    }
}

/// Build one declared view over the directory's LMDB environment and reduce directory.
pub(crate) fn build(lmdb: &Lmdb, reduce_dir: &Path, spec: &ViewSpec) -> Built {
    match build_reduce(reduce_dir, spec) {
        Some(built) => built,
        None => build_lmdb(lmdb, spec),
    }
}

/// A reduce view (kept in `reduce_dir/<name>`), or `None` for the kinds kept in LMDB.
pub(crate) fn build_reduce(reduce_dir: &Path, spec: &ViewSpec) -> Option<Built> {
    let version = spec.version;
    let dir = reduce_dir.join(&spec.name);
    Some(match &spec.kind {
        ViewKind::Count => Built::Count(
            Reduce::new(version, 0u64, |n: &mut u64, _: Seq, _: &Record| *n += 1).persist_in(dir),
        ),
        ViewKind::Sum { path } => {
            let path = path.clone();
            let view = Reduce::new(version, 0f64, move |sum: &mut f64, _: Seq, r: &Record| {
                if let Some(n) = at(&r.to_document(), &path).and_then(Value::as_f64) {
                    *sum += n;
                }
            });
            Built::Sum(view.persist_in(dir))
        }
        ViewKind::Min { path } | ViewKind::Max { path } => {
            let want = if matches!(spec.kind, ViewKind::Min { .. }) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let path = path.clone();
            let view = Reduce::new(
                version,
                None,
                move |best: &mut Option<Document>, _: Seq, r: &Record| {
                    let doc = r.to_document();
                    let Some(v) = at(&doc, &path) else { return };
                    if best.as_ref().is_none_or(|b| key::compare(v, b) == want) {
                        *best = Some(Document(v.clone()));
                    }
                },
            );
            Built::Extreme(view.persist_in(dir))
        }
        ViewKind::CountBy { path } => {
            let path = path.clone();
            let view = Reduce::new(
                version,
                BTreeMap::new(),
                move |counts: &mut BTreeMap<String, u64>, _: Seq, r: &Record| {
                    if let Some(v) = at(&r.to_document(), &path) {
                        *counts.entry(v.to_string()).or_default() += 1;
                    }
                },
            );
            Built::CountBy(view.persist_in(dir))
        }
        ViewKind::Index { .. } | ViewKind::Kv | ViewKind::Query { .. } => return None,
    })
}

/// A view kept in LMDB (an index, the key-value view, a query view).
fn build_lmdb(lmdb: &Lmdb, spec: &ViewSpec) -> Built {
    let (name, version) = (spec.name.as_str(), spec.version);
    match &spec.kind {
        ViewKind::Index { paths } => {
            let paths = paths.clone();
            Built::Index(Index::new(lmdb, name, version, move |r: &Record, ops| {
                let doc = r.to_document();
                let key: Option<Vec<Value>> = paths.iter().map(|p| at(&doc, p).cloned()).collect();
                // Records lacking a path are not indexed; equal values keep one entry each.
                if let Some(key) = key {
                    ops.put_unique(key);
                }
            }))
        }
        ViewKind::Kv => Built::Kv(KeyValue::new(lmdb, name)),
        ViewKind::Query { indexes } => {
            let specs = indexes
                .iter()
                .map(|ix| IndexSpec::new(&ix.name, ix.paths.iter().map(|p| QueryPath(p.clone()))))
                .collect();
            let version = u16::try_from(version).unwrap_or(u16::MAX);
            Built::Query(QueryView::new(lmdb, name, version, specs))
        }
        ViewKind::Count
        | ViewKind::Sum { .. }
        | ViewKind::Min { .. }
        | ViewKind::Max { .. }
        | ViewKind::CountBy { .. } => {
            unreachable!("reduce views are built by build_reduce")
        }
    }
}
