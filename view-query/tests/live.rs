//! Live queries: started before 1,000 appends, they yield exactly the matching ones, in order.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use flume_core::{Document, Seq, View};
use flume_view_query::{AsJson, IndexSpec, Path, Query, QueryOpts, QueryReads, QueryView, ToJson};
use futures::{FutureExt, StreamExt};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_yields_exactly_the_matching_appends_in_order() {
    let fx = common::fixture().await;
    let q =
        Query::parse(&json!([{"$filter": {"kind": "tick", "n": {"$gte": 500}}}, {"$map": "n"}]))
            .unwrap();
    // 250 of the 1,000 appends match; the limit ends the live query after the last of them.
    let mut live = fx
        .view
        .query(&q, QueryOpts::new().live().old(false).limit(250));
    let writer = fx.db.clone();
    let appends = tokio::spawn(async move {
        let mut matching = Vec::new();
        for n in 0..1000u64 {
            let kind = if n % 2 == 0 { "tick" } else { "tock" };
            let seq = writer
                .append(Document(json!({"kind": kind, "n": n})))
                .await
                .unwrap();
            if kind == "tick" && n >= 500 {
                matching.push((seq, n));
            }
        }
        matching
    });
    let mut got = Vec::new();
    while let Some(item) = live.next().await {
        let item = item.unwrap();
        got.push((item.seq.unwrap(), item.value.as_u64().unwrap()));
    }
    let want: Vec<(Seq, u64)> = appends.await.unwrap();
    assert_eq!(want.len(), 250);
    assert_eq!(got, want, "exactly the matching appends, in order, once");
    fx.db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_with_old_records_continues_after_them() {
    let fx = common::fixture().await;
    let q = Query::parse(&json!([{"$filter": {"type": "vote"}}, {"$map": "id"}])).unwrap();
    let mut live = fx.view.query(&q, QueryOpts::new().live().limit(4));
    for want in [4, 10, 15] {
        assert_eq!(live.next().await.unwrap().unwrap().value, json!(want));
    }
    fx.db
        .append(Document(json!({"id": 21, "type": "vote"})))
        .await
        .unwrap();
    assert_eq!(live.next().await.unwrap().unwrap().value, json!(21));
    assert!(live.next().await.is_none(), "the limit ends the live query");
    fx.db.close().await.unwrap();
}

/// A live query without old records starts when it is called, not when its task first runs:
/// records appended in between are its first results. On one thread the task cannot run before
/// the first appends below, which complete without waiting.
#[tokio::test]
async fn a_live_query_starts_when_it_is_called() {
    let fx = common::fixture().await;
    let q = Query::parse(&json!([{"$filter": {"kind": "new"}}, {"$map": "n"}])).unwrap();
    let mut live = fx
        .view
        .query(&q, QueryOpts::new().live().old(false).limit(1));
    for n in 0..3u64 {
        let append = fx.db.append(Document(json!({"kind": "new", "n": n})));
        append
            .now_or_never()
            .expect("a memory append waits for nothing")
            .unwrap();
    }
    // More appends, yielding between them, so that a query that started late yields too.
    let writer = fx.db.clone();
    let later = tokio::spawn(async move {
        for n in 3..50u64 {
            let doc = Document(json!({"kind": "new", "n": n}));
            writer.append(doc).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let first = live.next().await.unwrap().unwrap();
    assert_eq!(
        first.value,
        json!(0),
        "the first record appended after the call"
    );
    later.await.unwrap();
    fx.db.close().await.unwrap();
}

/// A live query without old records opens its log stream when called; on a database closed by
/// then, its first and only item is the error that says so (it neither hangs nor yields nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_of_a_closed_database_says_it_is_closed() {
    let fx = common::fixture().await;
    fx.db.close().await.unwrap();
    let q = Query::parse(&json!([{"$map": "n"}])).unwrap();
    let items: Vec<_> = fx
        .view
        .query(&q, QueryOpts::new().live().old(false))
        .collect()
        .await;
    assert_eq!(items.len(), 1, "one item: the error");
    let error = items[0].as_ref().unwrap_err().to_string();
    assert!(
        error.contains("the database is closed"),
        "the error says why: {error}"
    );
}

/// A live query without old records reads only the log from the call on, so a view that is
/// behind (rebuilding, or slow to apply) does not hold back its results. Here the view's apply
/// blocks on a marked record until the test releases it; the query's result arrives before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_query_without_old_records_does_not_wait_for_its_view() {
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(held);
    let to_json: Arc<ToJson<Document>> = Arc::new(move |doc: &Document| {
        if doc.0["hold"] == json!(true) {
            // Until released (or the sender is dropped), on a thread given up by the runtime.
            let _ = tokio::task::block_in_place(|| held.lock().unwrap().recv());
        }
        doc.as_json()
    });
    let kind = IndexSpec::new("kind", [Path(vec!["kind".into()])]);
    let fx = common::with_view(|lmdb| QueryView::with(lmdb, "q", 1, vec![kind], to_json)).await;
    let (db, view) = (&fx.db, &fx.view);
    db.append(Document(json!({"hold": true}))).await.unwrap();
    let q = Query::parse(&json!([{"$filter": {"kind": "new"}}, {"$map": "n"}])).unwrap();
    let mut live = view.query(&q, QueryOpts::new().live().old(false).limit(1));
    let seq = db
        .append(Document(json!({"kind": "new", "n": 1})))
        .await
        .unwrap();
    // A bound so that a query that waits for the view fails instead of hanging the suite.
    let first = tokio::time::timeout(Duration::from_secs(60), live.next())
        .await
        .expect("the live query waited for its view, held behind")
        .unwrap()
        .unwrap();
    assert_eq!((first.seq, first.value), (Some(seq), json!(1)));
    assert_eq!(
        View::since(view.stale().unwrap()),
        None,
        "the view had applied nothing when the result came"
    );
    release.send(()).unwrap();
    assert_eq!(View::since(view.ready().await.unwrap()), Some(seq));
    db.close().await.unwrap();
}
