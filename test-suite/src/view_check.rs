//! `check_view`: the conformance cases every view implementation runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flume_core::{Bytes, Codec, CodecError, Db, DbError, DbOptions, ViewHandle};

use crate::runner::{Report, Runner};
use crate::{LogFactory, ViewFactory, open};

/// Records appended by each case (in batches and singly).
const RECORDS: u64 = 600;

/// Run the view conformance cases: views made by `make_view`, over logs made by `make_log`.
///
/// Each call of a maker must give a fresh, empty location. The cases check that incremental
/// updates equal a rebuild from scratch, that a reopened view resumes from its `since` without
/// re-reading old records (persistent views), that a version change or a view ahead of the log
/// rebuilds it, and that reads fail after close.
///
/// # Panics
/// After running every case, if any failed, listing them.
pub fn check_view<VF: ViewFactory, LF: LogFactory>(
    make_view: impl Fn() -> VF,
    make_log: impl Fn() -> LF,
) -> Report {
    let mut r = Runner::new("view");
    r.case(
        "view: incremental updates equal a rebuild from scratch",
        || incremental(make_view(), make_view(), make_log()),
    );
    r.case("view: rebuild re-feeds every record", || {
        rebuild(make_view(), make_log())
    });
    if make_view().persistent() {
        r.case("view: reopen resumes from since without re-reading", || {
            resume(make_view(), make_log())
        });
    }
    r.case("view: a version change rebuilds the view", || {
        version_change(make_view(), make_view(), make_log())
    });
    r.case("view: a view ahead of the log is rebuilt", || {
        ahead(make_view(), make_view(), make_log(), make_log())
    });
    r.case("view: reads fail after close", || {
        after_close(make_view(), make_log())
    });
    r.finish()
}

/// Counts decodes, sharing the factory's codec.
struct Counting<T> {
    inner: Arc<dyn Codec<T>>,
    decodes: Arc<AtomicU64>,
}

impl<T: Send + Sync + 'static> Codec<T> for Counting<T> {
    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        self.inner.encode(value)
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        self.decodes.fetch_add(1, Ordering::Relaxed);
        self.inner.decode(bytes)
    }
}

struct Opened<VF: ViewFactory> {
    db: Db<VF::Record>,
    handle: ViewHandle<VF::View>,
    decodes: Arc<AtomicU64>,
}

async fn open_db<VF: ViewFactory, LF: LogFactory>(vf: &VF, lf: &LF, version: u32) -> Opened<VF> {
    let decodes = Arc::new(AtomicU64::new(0));
    let codec = Arc::new(Counting {
        inner: vf.codec(),
        decodes: Arc::clone(&decodes),
    });
    let db = Db::open_with(open(lf).await, codec, DbOptions::default())
        .await
        .unwrap();
    let handle = db
        .use_view("under-test", vf.open(version).await)
        .await
        .unwrap();
    Opened {
        db,
        handle,
        decodes,
    }
}

/// Append `RECORDS` records from `start`, in batches of varied sizes and singly, reading
/// through the view between some of them.
async fn fill<VF: ViewFactory>(vf: &VF, o: &Opened<VF>, start: u64) {
    let mut i = start;
    let end = start + RECORDS;
    let mut size = 1;
    while i < end {
        let n = size.min(end - i);
        let batch: Vec<VF::Record> = (i..i + n).map(|j| vf.record(j)).collect();
        if n == 1 {
            o.db.append(batch.into_iter().next().unwrap())
                .await
                .unwrap();
        } else {
            o.db.append_batch(batch).await.unwrap();
        }
        i += n;
        size = size * 3 % 97 + 1;
        if size % 4 == 0 {
            o.handle.ready().await.unwrap();
        }
    }
}

async fn snapshot<VF: ViewFactory>(vf: &VF, o: &Opened<VF>) -> VF::Snapshot {
    let view = o.handle.ready().await.unwrap();
    vf.snapshot(view).await
}

async fn incremental<VF: ViewFactory, LF: LogFactory>(vf: VF, fresh: VF, lf: LF) {
    let o = open_db(&vf, &lf, 1).await;
    fill(&vf, &o, 0).await;
    let live = snapshot(&vf, &o).await;
    // A second, new view over the same log builds from scratch.
    let scratch = o.db.use_view("scratch", fresh.open(1).await).await.unwrap();
    let rebuilt = fresh.snapshot(scratch.ready().await.unwrap()).await;
    assert_eq!(live, rebuilt);
    o.db.close().await.unwrap();
}

async fn rebuild<VF: ViewFactory, LF: LogFactory>(vf: VF, lf: LF) {
    let o = open_db(&vf, &lf, 1).await;
    fill(&vf, &o, 0).await;
    let before = snapshot(&vf, &o).await;
    let decoded = o.decodes.load(Ordering::SeqCst);
    o.db.rebuild(Some("under-test")).await.unwrap();
    assert_eq!(
        o.decodes.load(Ordering::SeqCst) - decoded,
        RECORDS,
        "rebuild reads every record again"
    );
    assert_eq!(vf.snapshot(o.handle.stale().unwrap()).await, before);
    o.db.close().await.unwrap();
}

async fn resume<VF: ViewFactory, LF: LogFactory>(vf: VF, lf: LF) {
    let o = open_db(&vf, &lf, 1).await;
    fill(&vf, &o, 0).await;
    let before = snapshot(&vf, &o).await;
    o.db.close().await.unwrap();
    drop(o);
    let o = open_db(&vf, &lf, 1).await;
    assert_eq!(snapshot(&vf, &o).await, before);
    assert_eq!(
        o.decodes.load(Ordering::SeqCst),
        0,
        "a reopened view must not re-read old records"
    );
    fill(&vf, &o, RECORDS).await;
    snapshot(&vf, &o).await;
    assert_eq!(
        o.decodes.load(Ordering::SeqCst),
        RECORDS,
        "only new records are read"
    );
    o.db.close().await.unwrap();
}

async fn version_change<VF: ViewFactory, LF: LogFactory>(vf: VF, fresh: VF, lf: LF) {
    let o = open_db(&vf, &lf, 1).await;
    fill(&vf, &o, 0).await;
    let scratch = o.db.use_view("scratch", fresh.open(1).await).await.unwrap();
    let expected = fresh.snapshot(scratch.ready().await.unwrap()).await;
    o.db.close().await.unwrap();
    drop(o);
    let o = open_db(&vf, &lf, 2).await;
    assert_eq!(snapshot(&vf, &o).await, expected);
    assert_eq!(
        o.decodes.load(Ordering::SeqCst),
        RECORDS,
        "a new version re-reads every record"
    );
    o.db.close().await.unwrap();
}

async fn ahead<VF: ViewFactory, LF: LogFactory>(vf: VF, fresh: VF, long: LF, short: LF) {
    let o = open_db(&vf, &long, 1).await;
    fill(&vf, &o, 0).await;
    fill(&vf, &o, RECORDS).await;
    snapshot(&vf, &o).await;
    o.db.close().await.unwrap();
    drop(o);
    // The same view storage over a shorter log: its since is past the log's end.
    let o = open_db(&vf, &short, 1).await;
    fill(&vf, &o, 0).await;
    let got = snapshot(&vf, &o).await;
    let scratch = o.db.use_view("scratch", fresh.open(1).await).await.unwrap();
    assert_eq!(got, fresh.snapshot(scratch.ready().await.unwrap()).await);
    o.db.close().await.unwrap();
}

async fn after_close<VF: ViewFactory, LF: LogFactory>(vf: VF, lf: LF) {
    let o = open_db(&vf, &lf, 1).await;
    o.db.append(vf.record(0)).await.unwrap();
    snapshot(&vf, &o).await;
    o.db.close().await.unwrap();
    assert!(matches!(o.handle.ready().await, Err(DbError::Closed)));
    assert!(matches!(o.handle.stale(), Err(DbError::Closed)));
}
