//! Shared by the query tests: the dataset, the declared indexes, a database with a query view.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use flume_core::{Db, DbOptions, Document, Postcard, ViewHandle};
use flume_log_memory::MemoryLog;
use flume_view_index::Lmdb;
use flume_view_query::{IndexSpec, Path, Query, QueryOpts, QueryReads, QueryView};
use futures::TryStreamExt;
use serde_json::Value;

pub(crate) const CORPUS: &str = include_str!("data/corpus.json");
pub(crate) const DATASET: &str = include_str!("data/dataset.json");

pub(crate) fn indexes() -> Vec<IndexSpec> {
    let corpus: Value = serde_json::from_str(CORPUS).unwrap();
    let mut out = Vec::new();
    for (name, paths) in corpus["indexes"].as_object().unwrap() {
        let paths = paths.as_array().unwrap().iter().map(|p| {
            Path(
                p.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            )
        });
        out.push(IndexSpec::new(name, paths));
    }
    out
}

pub(crate) struct Fixture {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) db: Db<Document>,
    pub(crate) view: ViewHandle<QueryView<Document>>,
}

/// A database on a memory log, no records yet, with the query view `make` builds as "q".
pub(crate) async fn with_view(make: impl FnOnce(&Lmdb) -> QueryView<Document>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(
        Arc::new(MemoryLog::new()),
        Arc::new(Postcard),
        DbOptions::default(),
    )
    .await
    .unwrap();
    let lmdb = Lmdb::open(dir.path()).unwrap();
    let view = db.use_view("q", make(&lmdb)).await.unwrap();
    Fixture {
        _dir: dir,
        db,
        view,
    }
}

/// The dataset in a database whose view "q" declares the corpus's indexes.
pub(crate) async fn fixture() -> Fixture {
    let fx = with_view(|lmdb| QueryView::new(lmdb, "q", 1, indexes())).await;
    let docs: Vec<Value> = serde_json::from_str(DATASET).unwrap();
    for d in docs {
        fx.db.append(Document(d)).await.unwrap();
    }
    fx
}

pub(crate) async fn run(
    view: &ViewHandle<QueryView<Document>>,
    query: &Query,
    opts: QueryOpts,
) -> Vec<Value> {
    view.query(query, opts)
        .map_ok(|item| item.value)
        .try_collect()
        .await
        .unwrap()
}
