//! Retention while the database is open: `Store::retire_before` and `[log] retain`.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

use std::path::Path;
use std::time::Duration;

use flume_core::{Log, Seq};
use flume_store::{Config, Record, Store};
use flume_view_index::{KvDb, KvReads, KvValue};
use futures::FutureExt;
use serde_json::json;

fn config(retain: &str) -> Config {
    Config::parse(&format!(
        r#"
[log]
segment_size = 4096
{retain}

[[view]]
name = "kv"
kind = "kv"

[[view]]
name = "count"
kind = "count"
"#
    ))
    .unwrap()
}

/// A kv entry, then 300 records of about 80 bytes in batches of 10.
async fn fill(store: &Store) {
    store
        .db()
        .kv_put("users/amy", KvValue::Bytes(b"hi".to_vec()))
        .await
        .unwrap();
    fill_records(store).await;
}

/// 300 records of about 80 bytes in batches of 10.
async fn fill_records(store: &Store) {
    for b in 0..30 {
        let batch: Vec<Record> = (0..10)
            .map(|i| {
                let doc = json!({ "i": b * 10 + i, "pad": "x".repeat(60) });
                Record::from_document(doc.to_string().parse().unwrap())
            })
            .collect();
        store.db().append_batch(batch).await.unwrap();
    }
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

async fn count(store: &Store) -> serde_json::Value {
    store.view("count").unwrap().value().await.unwrap().unwrap()
}

/// The count view counts every record `fill` wrote, and the kv entry is there: nothing the
/// views derived was lost, though the records may be retired. (Reads wait for the views.)
async fn views_hold_everything(store: &Store) {
    assert_eq!(
        count(store).await,
        json!(301),
        "not rebuilt from what remains"
    );
    let amy = store.kv().unwrap().get("users/amy").await.unwrap();
    assert!(amy.is_some(), "the kv entry is kept");
}

/// Retiring everything while open deletes every segment but the last, and nothing from just
/// after the last record the views applied; the views keep what they derived, also after a
/// reopen. (That a crash loses nothing either is the SIGKILL test of `cli/tests/serve.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_before_while_open_keeps_what_the_views_derived() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), config("")).await.unwrap();
    fill(&store).await;
    let files = segment_files(tmp.path());
    assert!(files > 3, "{files} segments");

    let last = store.db().since().unwrap();
    // Both views are read once they have applied every record.
    views_hold_everything(&store).await;
    let retired = store.retire_before(Seq(u64::MAX)).await.unwrap();
    assert_eq!(retired.before, Seq(last.0 + 1), "{retired:?}");
    assert!(retired.segments > 0);
    assert_eq!(segment_files(tmp.path()), files - retired.segments);
    assert_eq!(retired.first, store.log().first());
    assert!(retired.first.unwrap() > Seq(0));
    views_hold_everything(&store).await;
    let again = store.retire_before(Seq(u64::MAX)).await.unwrap();
    assert_eq!((again.segments, again.bytes), (0, 0), "{again:?}");
    store.close().await.unwrap();

    let store = Store::open_with(tmp.path(), config("")).await.unwrap();
    views_hold_everything(&store).await;
    store.close().await.unwrap();
}

/// A planned retirement shows what goes and deletes nothing until it is carried out; it holds
/// off any other retirement of the store meanwhile, so what it showed is what goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_retirement_deletes_what_it_shows_once_carried_out() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open_with(tmp.path(), config("")).await.unwrap();
    assert_eq!(store.keeping(1), None, "an empty log");
    fill(&store).await;
    views_hold_everything(&store).await;
    let (last, files) = (store.db().since().unwrap(), segment_files(tmp.path()));
    let before = store.keeping(8192).unwrap();
    assert_eq!(before, Seq(last.0 - 8192));

    let planned = store.plan_retirement(before).await.unwrap();
    assert_eq!(planned.before(), before, "the views had applied everything");
    assert!(planned.plan().segments > 0, "{planned:?}");
    drop(planned);
    assert_eq!(
        segment_files(tmp.path()),
        files,
        "a dropped plan deletes nothing"
    );

    let planned = store.plan_retirement(before).await.unwrap();
    let plan = planned.plan().clone();
    let retired = planned.retire().await.unwrap();
    assert_eq!(
        (retired.segments, retired.bytes),
        (plan.segments, plan.bytes)
    );
    assert_eq!((retired.before, retired.first), (before, plan.first));
    assert_eq!(segment_files(tmp.path()), files - plan.segments);
    views_hold_everything(&store).await;
    store.close().await.unwrap();
}

/// A plan holds off a second one until it is dropped, a bound past the end is lowered to just
/// after the last record, with no view to lower it, and what goes is what the plan showed. (No views: a plan then waits for
/// nothing but the lock, so one poll tells whether it was free.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_plan_at_a_time_and_never_past_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::parse("[log]\nsegment_size = 4096\n").unwrap();
    let store = Store::open_with(tmp.path(), config).await.unwrap();
    fill_records(&store).await;
    let last = store.db().since().unwrap();
    let planned = store.plan_retirement(Seq(u64::MAX)).await.unwrap();
    assert_eq!(planned.before(), Seq(last.0 + 1));
    assert!(store.plan_retirement(Seq(1)).now_or_never().is_none());
    drop(planned);
    let next = store.plan_retirement(Seq(1)).now_or_never();
    assert!(next.is_some(), "the lock is free again");
    drop(next);

    // The log grows into new segments meanwhile: what goes is what the plan showed.
    let planned = store.plan_retirement(Seq(u64::MAX)).await.unwrap();
    let plan = planned.plan().clone();
    fill_records(&store).await;
    let retired = planned.retire().await.unwrap();
    assert_eq!(retired.segments, plan.segments);
    assert_eq!(store.log().first(), plan.first);
    store.close().await.unwrap();
}

/// `[log] retain` keeps at least that many bytes of the newest records and deletes older whole
/// segments in the background while the store is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_deletes_old_segments_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config("retain = \"8KiB\"\nretain_every = 1");
    assert_eq!(config.log.retain, Some(8192));
    let store = Store::open_with(tmp.path(), config).await.unwrap();
    fill(&store).await;
    let last = store.db().since().unwrap();
    // A hang guard, not a timing assertion: the check runs every second.
    tokio::time::timeout(Duration::from_secs(120), async {
        while store.log().first() == Some(Seq(0)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("nothing was retired");
    let first = store.log().first().unwrap();
    assert!(
        first.0 <= last.0 - 8192,
        "kept less than 8 KiB: from {first} to {last}"
    );
    views_hold_everything(&store).await;
    let kept = store.log().get(first).await;
    assert!(kept.is_ok(), "{kept:?}");
    store.close().await.unwrap();
}

#[test]
fn retain_takes_bytes_or_a_size_and_refuses_nonsense() {
    let parse = |log: &str| Config::parse(&format!("[log]\n{log}\n"));
    assert_eq!(parse("retain = 4096").unwrap().log.retain, Some(4096));
    assert_eq!(
        parse("retain = \"10GiB\"").unwrap().log.retain,
        Some(10 << 30)
    );
    assert_eq!(parse("").unwrap().log.retain, None);
    let bad = parse("retain = \"1.5GB\"").unwrap_err();
    assert!(bad.contains("not a size"), "{bad}");
    for bad in ["retain = -1", "retain = 1.5", "retain = true"] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains("a size such as"), "{bad}: {e}");
    }
    let bad = parse("retain_every = 0").unwrap_err();
    assert!(bad.contains("at least 1"), "{bad}");
}
