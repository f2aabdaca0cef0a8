//! flumedb's own core cases, run over the log under test: gated reads, views ahead of the log,
//! rebuilds, failures, decode-once, backpressure and use after close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flume_core::{
    AppendError, Bytes, Db, DbError, DbOptions, FEED_QUEUE, Item, Log, LogError, Postcard,
    ReadRange, Seq, StreamOpts, ViewState, async_trait,
};
use futures::{FutureExt, TryStreamExt};
use tokio::sync::watch;

use crate::support::{CountingCodec, TestView, until};
use crate::{LogFactory, open, runner::Runner};

pub(crate) fn run<F: LogFactory>(r: &mut Runner, make: &impl Fn() -> F) {
    r.case(
        "db: a read waits until the view catches up, then sees the write",
        || gated_read(make()),
    );
    r.case("db: read-your-writes 1,000 times in a row", || {
        read_your_writes(make())
    });
    r.case(
        "db: ready_at waits for a given seq; stale does not wait",
        || ready_at_and_stale(make()),
    );
    r.case(
        "db: a view ahead of the log is destroyed before it is fed",
        || view_ahead(make()),
    );
    r.case("db: a changed version rebuilds the view", || {
        version_bump(make())
    });
    r.case(
        "db: unreadable view state is rebuilt",
        || unreadable(make()),
    );
    r.case(
        "db: a view resumes from its since without re-reading",
        || resume(make()),
    );
    r.case("db: rebuild re-feeds every record", || rebuild(make()));
    r.case(
        "db: a gated read begun while a rebuild empties the view waits for the rebuild",
        || read_during_destroy_waits(make()),
    );
    r.case("db: rebuild of an unknown view is an error", || {
        rebuild_unknown(make())
    });
    r.case("db: a duplicate view name is refused", || {
        duplicate_name(make())
    });
    r.case(
        "db: a failing view is marked failed and rebuilt; others stay live",
        || failing_view(make()),
    );
    r.case("db: status reports version, since, lag and state", || {
        status(make())
    });
    r.case(
        "db: live waits for a view that caught up on its own to join the feed",
        || live(make()),
    );
    r.case(
        "db: 4 views over 10,000 records decode each record once",
        || decode_once(make()),
    );
    r.case("db: a rebuilding view does not delay a live view", || {
        rebuild_does_not_stall(make())
    });
    r.case(
        "db: 64 appending tasks keep the append queue bounded",
        || backpressure(make()),
    );
    r.case("db: typed get and stream", || typed_get_stream(make()));
    r.case("db: after close, appends, reads and use_view fail", || {
        after_close(make())
    });
}

async fn db(log: Arc<dyn Log>) -> Db<String> {
    Db::open_with(log, Arc::new(Postcard), DbOptions::default())
        .await
        .unwrap()
}

async fn gated_read<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let slow = TestView::new().slow(Duration::from_millis(20));
    let view = db.use_view("slow", slow).await.unwrap();
    for i in 0..5 {
        let seq = db.append(format!("r{i}")).await.unwrap();
        let v = view.ready().await.unwrap();
        assert_eq!(
            v.lock().since,
            Some(seq),
            "the gated read must include the append"
        );
        assert_eq!(v.values().last().unwrap(), &format!("r{i}"));
    }
    db.close().await.unwrap();
}

async fn read_your_writes<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let view = db.use_view("v", TestView::new()).await.unwrap();
    for i in 0..1000 {
        let value = format!("w{i}");
        let seq = db.append(value.clone()).await.unwrap();
        let v = view.ready().await.unwrap();
        let s = v.lock();
        assert_eq!(s.records.last(), Some(&(seq, value)), "iteration {i}");
    }
    db.close().await.unwrap();
}

async fn ready_at_and_stale<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let blocked = TestView::new();
    let view = db.use_view("v", blocked.clone()).await.unwrap();
    assert!(view.stale().unwrap().values().is_empty());
    let seq = db.append("x".into()).await.unwrap();
    let v = view.ready_at(seq).await.unwrap();
    assert_eq!(v.values(), ["x"]);
    // Waiting for a seq not yet appended resolves when it is.
    let later = db.append("y".into()).await.unwrap();
    let waiter = {
        let view = view.clone();
        tokio::spawn(async move { view.ready_at(Seq(later.0 + 1)).await.map(|v| v.values()) })
    };
    db.append("z".into()).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), ["x", "y", "z"]);
    db.close().await.unwrap();
}

async fn view_ahead<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let db = db(log).await;
    db.append_batch(vec!["a".into(), "b".into()]).await.unwrap();
    let view = TestView::new();
    {
        let mut s = view.lock();
        s.stored_version = Some(1);
        s.since = Some(Seq(u64::MAX / 2));
        s.records = vec![(Seq(u64::MAX / 2), "from a longer log".into())];
    }
    let handle = db.use_view("ahead", view.clone()).await.unwrap();
    let v = handle.ready().await.unwrap();
    assert_eq!(v.values(), ["a", "b"]);
    let (destroys, violations) = {
        let s = v.lock();
        (s.destroys, s.violations.clone())
    };
    assert_eq!(destroys, 1);
    assert!(violations.is_empty(), "fed before destroy: {violations:?}");
    db.close().await.unwrap();
}

async fn version_bump<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let v1 = TestView::new();
    let h = db.use_view("v", v1.clone()).await.unwrap();
    db.append_batch(vec!["a".into(), "b".into()]).await.unwrap();
    h.ready().await.unwrap();
    db.close().await.unwrap();
    drop(db);
    let db = self::db(open(&f).await).await;
    let v2 = v1.with_version(2);
    let h = db.use_view("v", v2).await.unwrap();
    let v = h.ready().await.unwrap();
    assert_eq!(v.values(), ["a", "b"]);
    assert_eq!(v.lock().destroys, 1);
    assert_eq!(v.lock().stored_version, Some(2));
    db.close().await.unwrap();
}

async fn unreadable<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    db.append_batch(vec!["a".into(), "b".into()]).await.unwrap();
    let view = TestView::new();
    view.lock().unreadable = true;
    let h = db.use_view("v", view).await.unwrap();
    let v = h.ready().await.unwrap();
    assert_eq!(v.values(), ["a", "b"]);
    assert_eq!(v.lock().destroys, 1);
    db.close().await.unwrap();
}

/// A database over the log under test whose codec counts its decodes, and that count.
async fn open_counting<F: LogFactory>(f: &F) -> (Db<String>, Arc<AtomicU64>) {
    let codec = CountingCodec::new(Postcard);
    let decodes = codec.counter();
    let db = Db::open_with(open(f).await, Arc::new(codec), DbOptions::default())
        .await
        .unwrap();
    (db, decodes)
}

async fn resume<F: LogFactory>(f: F) {
    let (db, decodes) = open_counting(&f).await;
    let view = TestView::new();
    let h = db.use_view("v", view.clone()).await.unwrap();
    db.append_batch((0..100).map(|i| i.to_string()).collect())
        .await
        .unwrap();
    h.ready().await.unwrap();
    db.close().await.unwrap();
    drop(db);
    assert!(
        decodes.load(Ordering::SeqCst) >= 100,
        "the view read the records"
    );
    // The reopened database's own count: the first one's cannot move any more.
    let (db, decodes) = open_counting(&f).await;
    let h = db.use_view("v", view.with_version(1)).await.unwrap();
    let seq = db.append("new".into()).await.unwrap();
    let v = h.ready().await.unwrap();
    assert_eq!(v.lock().records.len(), 101);
    assert_eq!(v.lock().destroys, 0);
    assert_eq!(v.lock().records.last(), Some(&(seq, "new".to_string())));
    assert!(v.lock().violations.is_empty());
    assert_eq!(
        decodes.load(Ordering::SeqCst),
        1,
        "only the new record was decoded: the old ones were not read again"
    );
    db.close().await.unwrap();
}

async fn rebuild<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let a = db.use_view("a", TestView::new()).await.unwrap();
    let b = db.use_view("b", TestView::new()).await.unwrap();
    let values: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    db.append_batch(values.clone()).await.unwrap();
    a.ready().await.unwrap();
    b.ready().await.unwrap();
    db.rebuild(Some("a")).await.unwrap();
    let sa = a.stale().unwrap();
    assert_eq!(
        sa.values(),
        values,
        "rebuild returns once the view has caught up"
    );
    assert_eq!(sa.lock().destroys, 1);
    assert_eq!(b.stale().unwrap().lock().destroys, 0);
    db.rebuild(None).await.unwrap();
    assert_eq!(a.stale().unwrap().lock().destroys, 2);
    assert_eq!(b.stale().unwrap().values(), values);
    assert_eq!(b.stale().unwrap().lock().destroys, 1);
    db.close().await.unwrap();
}

async fn read_during_destroy_waits<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let (view, release) = TestView::new().gated_destroy();
    let h = db.use_view("v", view).await.unwrap();
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    db.append_batch(values.clone()).await.unwrap();
    assert_eq!(h.ready().await.unwrap().values(), values);
    let mut rebuild = std::pin::pin!(db.rebuild(Some("v")));
    assert!(futures::poll!(&mut rebuild).is_pending());
    until(|| h.stale().unwrap().lock().destroying).await;
    // The view is inside its destroy: a gated read must wait for the rebuild, not return a view
    // that is being emptied.
    assert!(
        h.ready().now_or_never().is_none(),
        "a gated read begun during the destroy returned the view"
    );
    release.send_replace(true);
    rebuild.await.unwrap();
    assert_eq!(h.ready().await.unwrap().values(), values);
    db.close().await.unwrap();
}

async fn rebuild_unknown<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    assert!(matches!(db.rebuild(Some("nope")).await, Err(DbError::UnknownView(n)) if n == "nope"));
    db.close().await.unwrap();
}

async fn duplicate_name<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    db.use_view("v", TestView::new()).await.unwrap();
    match db.use_view("v", TestView::new()).await {
        Err(DbError::DuplicateView(name)) => assert_eq!(name, "v"),
        other => panic!("expected DuplicateView, got {:?}", other.err()),
    }
    db.close().await.unwrap();
}

async fn failing_view<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let bad = TestView::new();
    bad.lock().fail_on = Some("poison".into());
    let bad_h = db.use_view("bad", bad.clone()).await.unwrap();
    let good_h = db.use_view("good", TestView::new()).await.unwrap();
    db.append("ok".into()).await.unwrap();
    db.append("poison".into()).await.unwrap();
    match bad_h.ready().await {
        Err(DbError::ViewFailed { view, reason }) => {
            assert_eq!(view, "bad");
            assert!(reason.contains("poison"), "{reason}");
        }
        other => panic!("a read on a failed view must fail, got {:?}", other.err()),
    }
    assert!(matches!(bad_h.status().state, ViewState::Failed(_)));
    assert_eq!(good_h.ready().await.unwrap().values(), ["ok", "poison"]);
    // The failure is retried with backoff, never in a tight loop (which would destroy the view
    // thousands of times here; a slow machine only lowers the count).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let destroys = bad.lock().destroys;
    assert!(
        destroys <= 4,
        "{destroys} rebuilds in 300 ms is not a backoff"
    );
    // Once the cause is gone a later rebuild succeeds.
    bad.lock().fail_on = None;
    let values = loop {
        match bad_h.ready().await {
            Ok(v) => break v.values(),
            Err(DbError::ViewFailed { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(values, ["ok", "poison"]);
    // Fail it again; an explicit rebuild does not wait out the backoff.
    bad.lock().fail_on = Some("boom".into());
    db.append("boom".into()).await.unwrap();
    assert!(matches!(
        bad_h.ready().await,
        Err(DbError::ViewFailed { .. })
    ));
    bad.lock().fail_on = None;
    db.rebuild(Some("bad")).await.unwrap();
    assert_eq!(
        bad_h.ready().await.unwrap().values(),
        ["ok", "poison", "boom"]
    );
    db.close().await.unwrap();
}

async fn status<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let h = db
        .use_view("v", TestView::new().with_version(7))
        .await
        .unwrap();
    let seq = db.append("a".into()).await.unwrap();
    h.ready().await.unwrap();
    let all = db.status();
    assert_eq!(all.len(), 1);
    let s = &all[0];
    assert_eq!(
        (s.name.as_str(), s.version, s.since, s.lag),
        ("v", 7, Some(seq), 0)
    );
    assert_eq!(s.state, ViewState::Live);
    assert_eq!(h.status(), *s);
    db.close().await.unwrap();
    assert_eq!(h.status().state, ViewState::Closed);
}

async fn live<F: LogFactory>(f: F) {
    let (db, decodes) = open_counting(&f).await;
    // A live view stuck in its first apply, then more records than its queue holds: the feed
    // is left waiting to deliver, so it answers no join until the view is released.
    let (stuck, release) = TestView::new().gated();
    let a = db.use_view("stuck", stuck.clone()).await.unwrap();
    a.live().await.unwrap();
    // The first batch alone is in the stuck apply; the rest fill the queue.
    let mut last = Some(db.append("r0".into()).await.unwrap());
    until(|| stuck.lock().at_gate > 0).await;
    for i in 1..=FEED_QUEUE as u64 + 1 {
        last = Some(db.append(format!("r{i}")).await.unwrap());
        // The feed decodes each record once: it has read this one and is delivering it.
        until(|| decodes.load(Ordering::SeqCst) > i).await;
    }
    // A second view catches up on its own and is readable, but cannot join the feed yet.
    let b = db.use_view("late", TestView::new()).await.unwrap();
    assert_eq!(b.ready().await.unwrap().values().len(), FEED_QUEUE + 2);
    let s = b.status();
    assert_eq!((s.since, s.lag, s.state), (last, 0, ViewState::Building));
    assert!(
        b.live().now_or_never().is_none(),
        "not live before the feed takes it"
    );
    release.send_replace(true);
    for h in [&a, &b] {
        h.live().await.unwrap();
        let s = h.status();
        assert_eq!((s.since, s.lag, s.state), (last, 0, ViewState::Live));
    }
    db.close().await.unwrap();
    assert!(matches!(b.live().await, Err(DbError::Closed)));
}

async fn decode_once<F: LogFactory>(f: F) {
    let (db, decodes) = open_counting(&f).await;
    let mut handles = Vec::new();
    for name in ["v1", "v2", "v3", "v4"] {
        handles.push(db.use_view(name, TestView::new()).await.unwrap());
    }
    for chunk in 0..100 {
        let batch: Vec<String> = (0..100).map(|i| format!("{chunk}-{i}")).collect();
        db.append_batch(batch).await.unwrap();
    }
    for h in &handles {
        assert_eq!(h.ready().await.unwrap().lock().records.len(), 10_000);
    }
    assert_eq!(
        decodes.load(Ordering::SeqCst),
        10_000,
        "each record decoded exactly once"
    );
    db.close().await.unwrap();
}

async fn rebuild_does_not_stall<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let live = db.use_view("live", TestView::new()).await.unwrap();
    db.append_batch((0..20).map(|i| i.to_string()).collect())
        .await
        .unwrap();
    // A view held inside its first apply stands in for a long rebuild.
    let (slow, release) = TestView::new().gated();
    let slow_h = db.use_view("slow", slow).await.unwrap();
    assert_eq!(slow_h.status().state, ViewState::Building);
    for i in 0..20 {
        let seq = db.append(format!("live{i}")).await.unwrap();
        assert_eq!(live.ready().await.unwrap().lock().since, Some(seq));
    }
    assert_eq!(
        slow_h.status().since,
        None,
        "the held view is still in its first apply"
    );
    release.send_replace(true);
    assert_eq!(slow_h.ready().await.unwrap().values().len(), 40);
    db.close().await.unwrap();
}

async fn backpressure<F: LogFactory>(f: F) {
    let slow = Arc::new(SlowAppends {
        inner: open(&f).await,
        delay: Duration::from_millis(2),
    });
    let capacity = 4096;
    let options = DbOptions::default().append_queue_bytes(capacity);
    let db: Db<String> = Db::open_with(slow, Arc::new(Postcard), options)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                db.append(format!("{t:02}-{i:02}-{}", "x".repeat(90)))
                    .await
                    .unwrap();
                let q = db.queue_stats();
                assert!(q.in_flight_bytes <= q.capacity_bytes, "{q:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let q = db.queue_stats();
    assert_eq!(q.capacity_bytes, capacity);
    assert!(
        q.high_water_bytes <= capacity,
        "in-flight bytes exceeded the bound: {q:?}"
    );
    assert!(
        q.high_water_bytes > capacity / 2,
        "the queue never filled, so nothing was tested: {q:?}"
    );
    assert_eq!(q.in_flight_bytes, 0);
    let all: Vec<_> = db
        .stream(StreamOpts::new().seqs())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 64 * 20);
    db.close().await.unwrap();
}

async fn typed_get_stream<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let seqs = db.append_batch(vec!["x".into(), "y".into()]).await.unwrap();
    assert_eq!(db.get(seqs[1]).await.unwrap(), "y");
    let rev: Vec<_> = db
        .stream(StreamOpts::new().reverse())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        rev,
        [
            Item::Record {
                seq: seqs[1],
                value: "y".to_string()
            },
            Item::Record {
                seq: seqs[0],
                value: "x".into()
            }
        ]
    );
    // Bytes that are not a record of this type are a decode error naming the seq.
    let raw = db
        .log()
        .append(Bytes::from_static(&[0xff, 0xff, 0xff]))
        .await
        .unwrap();
    match db.get(raw).await {
        Err(DbError::Codec { seq, .. }) => assert_eq!(seq, Some(raw)),
        other => panic!("expected a codec error, got {other:?}"),
    }
    db.close().await.unwrap();
}

async fn after_close<F: LogFactory>(f: F) {
    let db = db(open(&f).await).await;
    let h = db.use_view("v", TestView::new()).await.unwrap();
    let seq = db.append("a".into()).await.unwrap();
    h.ready().await.unwrap();
    db.close().await.unwrap();
    let AppendError { error, rejected } = db.append("b".into()).await.unwrap_err();
    assert!(matches!(error, DbError::Closed));
    assert_eq!(rejected, "b");
    assert!(matches!(db.get(seq).await, Err(DbError::Closed)));
    assert!(matches!(h.ready().await, Err(DbError::Closed)));
    assert!(matches!(h.stale(), Err(DbError::Closed)));
    let items: Vec<_> = futures::StreamExt::collect::<Vec<_>>(db.stream(StreamOpts::new())).await;
    assert!(matches!(items.as_slice(), [Err(DbError::Closed)]));
    assert!(matches!(
        db.use_view("w", TestView::new()).await,
        Err(DbError::Closed)
    ));
    assert!(matches!(db.rebuild(None).await, Err(DbError::Closed)));
    db.close().await.unwrap();
    assert!(
        matches!(db.log().get(seq).await, Err(LogError::Closed)),
        "closing the db closes the log"
    );
}

/// Wraps a log and slows every append, so that appenders pile up behind the queue bound.
struct SlowAppends {
    inner: Arc<dyn Log>,
    delay: Duration,
}

#[async_trait]
impl Log for SlowAppends {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        tokio::time::sleep(self.delay).await;
        self.inner.append_batch(records).await
    }
    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        self.inner.get(seq).await
    }
    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        self.inner.read(range).await
    }
    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.inner.since()
    }
    async fn close(&self) -> Result<(), LogError> {
        self.inner.close().await
    }
}
