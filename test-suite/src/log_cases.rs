//! The JavaScript test-flumelog cases, and the contract details they imply.

use std::sync::Arc;

use flume_core::{Bytes, Item, Log, LogError, Output, ReadRange, Seq, StreamOpts, stream_owned};
use futures::{FutureExt, StreamExt};

use crate::read_ahead;
use crate::support::{append, append_batch, collect};
use crate::{LogFactory, open, runner::Runner};

/// Five records of different lengths, the empty one included.
const FIVE: [&str; 5] = ["a", "bb", "", "dddd", "eeeee"];

#[derive(Clone, Copy, Debug)]
enum Bound {
    Gt,
    Gte,
    Lt,
    Lte,
}

pub(crate) fn run<F: LogFactory>(r: &mut Runner, make: &impl Fn() -> F) {
    r.case("empty log: stream ends with nothing", || {
        empty_stream(make())
    });
    r.case("empty log: since is None", || empty_since(make()));
    r.case("append one: since is its seq, get returns it", || {
        append_one(make())
    });
    r.case("append batch: since moves once, to the last seq", || {
        batch_since_once(make())
    });
    r.case("append batch: get of the last seq", || {
        batch_get_last(make())
    });
    r.case("append batch: records are adjacent and ordered", || {
        batch_adjacent(make())
    });
    r.case("empty batch appends nothing", || empty_batch(make()));
    for bound in [Bound::Gt, Bound::Gte, Bound::Lt, Bound::Lte] {
        for reverse in [false, true] {
            for output in [Output::Records, Output::Values] {
                let dir = if reverse { "reverse" } else { "forward" };
                let name = format!("stream {bound:?} {dir} {output:?}").to_lowercase();
                r.case(&name, || stream_bound(make(), bound, reverse, output));
            }
        }
    }
    r.case("stream seqs only", || stream_seqs(make()));
    r.case("stream gt the last seq is empty", || gt_last_empty(make()));
    r.case("stream limit, forward and reverse", || stream_limit(make()));
    r.case(
        "stream bounds between records are numeric or a clear error",
        || between_bounds(make()),
    );
    r.case("stream with contradictory options is an error", || {
        bad_options(make())
    });
    r.case(
        "read stops at its byte budget, returning at least one record",
        || read_budget(make()),
    );
    r.case(
        "read_chunk returns read's records, as appended, across read buffers",
        || read_chunk_matches_read(make()),
    );
    r.case("get each record", || get_each(make()));
    r.case("get of a seq where no record starts is an error", || {
        get_not_a_record(make())
    });
    r.case("large and binary records round-trip", || {
        large_records(make())
    });
    r.case("concurrent appends: distinct seqs, batches whole", || {
        concurrent_appends(make())
    });
    r.case("live stream sees a later append", || {
        live_sees_append(make())
    });
    r.case("live stream stops cleanly when dropped", || {
        live_drop(make())
    });
    r.case(
        "live stream with old: false yields only new records",
        || live_old_false(make()),
    );
    r.case("live stream with a limit ends", || live_limit(make()));
    r.case(
        "owned streams over many chunks (read-ahead): every record once, in order",
        || owned_many_chunks(make()),
    );
    r.case(
        "owned stream consumed in a task reads ahead off its threads",
        || read_ahead::owned_reads_ahead_off_the_consumers_thread(make()),
    );
    r.case(
        "owned live stream across chunks while appends continue",
        || owned_live_chunks(make()),
    );
    r.case("close: append, get and stream fail", || close_fails(make()));
    r.case("close ends live streams with an error", || {
        close_ends_live(make())
    });
    r.case("reopen sees the last record and continues after it", || {
        reopen(make())
    });
}

async fn empty_stream<F: LogFactory>(f: F) {
    let log = open(&f).await;
    assert!(collect(&*log, StreamOpts::new()).await.is_empty());
    assert!(collect(&*log, StreamOpts::new().reverse()).await.is_empty());
}

async fn empty_since<F: LogFactory>(f: F) {
    let log = open(&f).await;
    assert_eq!(log.current_since(), None);
    assert_eq!(*log.since().borrow(), None);
}

async fn append_one<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seq = append(&*log, "hello").await;
    assert_eq!(log.current_since(), Some(seq));
    assert_eq!(log.get(seq).await.unwrap(), "hello");
}

async fn batch_since_once<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let first = append(&*log, "first").await;
    let mut rx = log.since();
    rx.borrow_and_update();
    // Watch every change while the batch goes in: no intermediate seq may ever show.
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        while rx.changed().await.is_ok() {
            seen.push(*rx.borrow_and_update());
            if seen.len() == 1 {
                break;
            }
        }
        seen
    });
    let seqs = append_batch(&*log, &["a", "b", "c"]).await;
    let seen = watcher.await.unwrap();
    assert_eq!(
        seen,
        [Some(seqs[2])],
        "since must move once, to the batch's last seq"
    );
    assert_eq!(log.current_since(), Some(seqs[2]));
    assert!(seqs[0] > first);
}

async fn batch_get_last<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = append_batch(&*log, &["x", "y", "z"]).await;
    assert_eq!(seqs.len(), 3);
    assert_eq!(log.get(seqs[2]).await.unwrap(), "z");
    assert_eq!(log.get(seqs[0]).await.unwrap(), "x");
}

async fn batch_adjacent<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append(&*log, "before").await;
    let seqs = append_batch(&*log, &FIVE).await;
    append(&*log, "after").await;
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs must increase: {seqs:?}"
    );
    let got: Vec<Seq> = collect(&*log, StreamOpts::new().seqs())
        .await
        .iter()
        .filter_map(Item::seq)
        .collect();
    assert_eq!(
        &got[1..6],
        &seqs[..],
        "a batch's records are adjacent, in order"
    );
}

async fn empty_batch<F: LogFactory>(f: F) {
    let log = open(&f).await;
    assert_eq!(
        log.append_batch(Vec::new()).await.unwrap(),
        Vec::<Seq>::new()
    );
    assert_eq!(log.current_since(), None);
    let seq = append(&*log, "one").await;
    assert_eq!(
        log.append_batch(Vec::new()).await.unwrap(),
        Vec::<Seq>::new()
    );
    assert_eq!(log.current_since(), Some(seq));
}

/// Append the five records; return their seqs.
async fn five(log: &dyn Log) -> Vec<Seq> {
    let mut seqs = vec![append(log, FIVE[0]).await];
    seqs.extend(append_batch(log, &FIVE[1..4]).await);
    seqs.push(append(log, FIVE[4]).await);
    seqs
}

fn expected(
    seqs: &[Seq],
    keep: impl Fn(usize) -> bool,
    reverse: bool,
    output: Output,
) -> Vec<Item<Bytes>> {
    let mut items: Vec<Item<Bytes>> = (0..FIVE.len())
        .filter(|i| keep(*i))
        .map(|i| {
            let value = Bytes::from_static(FIVE[i].as_bytes());
            match output {
                Output::Records => Item::Record {
                    seq: seqs[i],
                    value,
                },
                Output::Values => Item::Value(value),
                Output::Seqs => Item::Seq(seqs[i]),
            }
        })
        .collect();
    if reverse {
        items.reverse();
    }
    items
}

async fn stream_bound<F: LogFactory>(f: F, bound: Bound, reverse: bool, output: Output) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    let pivot = seqs[2];
    let mut opts = match bound {
        Bound::Gt => StreamOpts::new().gt(pivot),
        Bound::Gte => StreamOpts::new().gte(pivot),
        Bound::Lt => StreamOpts::new().lt(pivot),
        Bound::Lte => StreamOpts::new().lte(pivot),
    };
    opts.reverse = reverse;
    opts.output = output;
    let keep = |i: usize| match bound {
        Bound::Gt => i > 2,
        Bound::Gte => i >= 2,
        Bound::Lt => i < 2,
        Bound::Lte => i <= 2,
    };
    assert_eq!(
        collect(&*log, opts).await,
        expected(&seqs, keep, reverse, output)
    );
}

async fn stream_seqs<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    let all = |_| true;
    assert_eq!(
        collect(&*log, StreamOpts::new().seqs()).await,
        expected(&seqs, all, false, Output::Seqs)
    );
    let rev = StreamOpts::new().seqs().reverse();
    assert_eq!(
        collect(&*log, rev).await,
        expected(&seqs, all, true, Output::Seqs)
    );
}

async fn gt_last_empty<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    assert!(
        collect(&*log, StreamOpts::new().gt(seqs[4]))
            .await
            .is_empty()
    );
    assert!(
        collect(&*log, StreamOpts::new().gt(seqs[4]).reverse())
            .await
            .is_empty()
    );
    assert!(
        collect(&*log, StreamOpts::new().lt(seqs[0]))
            .await
            .is_empty()
    );
}

async fn stream_limit<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    let fwd = collect(&*log, StreamOpts::new().limit(2)).await;
    assert_eq!(fwd, expected(&seqs, |i| i < 2, false, Output::Records));
    let rev = collect(&*log, StreamOpts::new().limit(2).reverse()).await;
    assert_eq!(rev, expected(&seqs, |i| i >= 3, true, Output::Records));
    assert!(collect(&*log, StreamOpts::new().limit(0)).await.is_empty());
    let bounded = collect(&*log, StreamOpts::new().gt(seqs[0]).limit(2).reverse()).await;
    assert_eq!(bounded, expected(&seqs, |i| i >= 3, true, Output::Records));
}

async fn between_bounds<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    // A value strictly between two records' seqs, if the log leaves a gap there.
    for i in 0..4 {
        let mid = Seq(seqs[i].0 + 1);
        if mid == seqs[i + 1] {
            continue;
        }
        for (opts, keep) in [
            (
                StreamOpts::new().gt(mid),
                Box::new(move |j: usize| j > i) as Box<dyn Fn(usize) -> bool>,
            ),
            (StreamOpts::new().gte(mid), Box::new(move |j: usize| j > i)),
            (StreamOpts::new().lt(mid), Box::new(move |j: usize| j <= i)),
            (StreamOpts::new().lte(mid), Box::new(move |j: usize| j <= i)),
        ] {
            let items: Vec<_> = log.stream(opts.clone()).collect().await;
            match items.iter().find_map(|r| r.as_ref().err()) {
                Some(LogError::NotARecord { .. } | LogError::InvalidOptions(_)) => {}
                Some(other) => panic!("{opts:?}: unexpected error {other}"),
                None => {
                    let got: Vec<_> = items.into_iter().map(Result::unwrap).collect();
                    assert_eq!(
                        got,
                        expected(&seqs, keep, false, Output::Records),
                        "{opts:?}"
                    );
                }
            }
        }
    }
}

async fn bad_options<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append(&*log, "x").await;
    for opts in [
        StreamOpts::new().reverse().live(),
        StreamOpts::new().old(false),
    ] {
        let items: Vec<_> = log.stream(opts.clone()).collect().await;
        assert!(
            matches!(items.as_slice(), [Err(LogError::InvalidOptions(_))]),
            "{opts:?} must yield one InvalidOptions error"
        );
    }
}

async fn read_budget<F: LogFactory>(f: F) {
    let log = open(&f).await;
    log.append_batch(vec![Bytes::from(vec![7u8; 1000]); 10])
        .await
        .unwrap();
    for reverse in [false, true] {
        let range = |max_bytes| ReadRange {
            lower: std::ops::Bound::Unbounded,
            upper: std::ops::Bound::Unbounded,
            reverse,
            max: 100,
            max_bytes,
            values: true,
        };
        assert_eq!(
            log.read(range(1)).await.unwrap().len(),
            1,
            "at least one record"
        );
        // 1000 and 2000 bytes are under 2500; the third record reaches it and is the last.
        assert_eq!(
            log.read(range(2500)).await.unwrap().len(),
            3,
            "reverse: {reverse}"
        );
        assert_eq!(log.read(range(usize::MAX)).await.unwrap().len(), 10);
    }
    assert_eq!(
        collect(&*log, StreamOpts::new()).await.len(),
        10,
        "streams read on past a budget"
    );
}

async fn read_chunk_matches_read<F: LogFactory>(f: F) {
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let log = open(&f).await;
    // 0 to 2 KiB each, 3 MB in all: many of a file log's read buffers, empty values among them.
    const N: usize = 3000;
    let values: Vec<Bytes> = (0..N)
        .map(|i| Bytes::from(vec![i as u8; (i * 37) % 2048]))
        .collect();
    let mut all = Vec::with_capacity(N);
    for batch in values.chunks(250) {
        let seqs = log.append_batch(batch.to_vec()).await.expect("append");
        all.extend(seqs.into_iter().zip(batch.iter().cloned()));
    }
    let bounds = [
        (Unbounded, Unbounded),
        (Excluded(all[10].0), Included(all[2900].0)),
        (Included(all[10].0), Excluded(all[2900].0)),
    ];
    let budgets = [(N, usize::MAX), (1024, 100_000), (N, 1)];
    for (reverse, (lower, upper), (max, max_bytes), values) in every_read(bounds, budgets) {
        let range = ReadRange {
            lower,
            upper,
            reverse,
            max,
            max_bytes,
            values,
        };
        let read = log.read(range.clone()).await.expect("read");
        let chunk = log.read_chunk(range.clone()).await.expect("read_chunk");
        assert_eq!(chunk.len(), read.len(), "{range:?}");
        let got = chunk.into_records();
        assert_eq!(got, read, "{range:?}");
        // What the range holds, in its direction; a log may return fewer, never none of them.
        let mut want: Vec<_> = all.iter().filter(|(s, _)| range.contains(*s)).collect();
        if reverse {
            want.reverse();
        }
        assert!(!got.is_empty() && got.len() <= want.len(), "{range:?}");
        for ((seq, value), (want_seq, want_value)) in got.iter().zip(want) {
            assert_eq!(seq, want_seq, "{range:?}");
            assert!(
                value == want_value || (!values && value.is_empty()),
                "{range:?}"
            );
        }
    }
    log.close().await.expect("close");
}

/// Every direction, bound pair, budget and values flag.
fn every_read<B: Copy, M: Copy>(
    bounds: [B; 3],
    budgets: [M; 3],
) -> impl Iterator<Item = (bool, B, M, bool)> {
    [false, true].into_iter().flat_map(move |reverse| {
        bounds.into_iter().flat_map(move |b| {
            budgets
                .into_iter()
                .flat_map(move |m| [true, false].map(|values| (reverse, b, m, values)))
        })
    })
}

async fn get_each<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    for (seq, value) in seqs.iter().zip(FIVE) {
        assert_eq!(log.get(*seq).await.unwrap(), value);
    }
}

async fn get_not_a_record<F: LogFactory>(f: F) {
    let log = open(&f).await;
    assert!(
        matches!(log.get(Seq(0)).await, Err(LogError::NotARecord { .. })),
        "get on an empty log"
    );
    let seqs = five(&*log).await;
    let mut probes = vec![
        Seq(seqs[4].0 + 1),
        Seq(seqs[4].0 + 1_000_000),
        Seq(u64::MAX),
    ];
    probes.extend(
        seqs.windows(2)
            .map(|w| Seq(w[0].0 + 1))
            .filter(|s| !seqs.contains(s)),
    );
    for probe in probes {
        match log.get(probe).await {
            Err(LogError::NotARecord { seq }) => assert_eq!(seq, probe),
            other => panic!("get({probe}) must be NotARecord, got {other:?}"),
        }
    }
}

async fn large_records<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let big: Bytes = (0..1_000_000u64).map(|i| (i * 7919 % 251) as u8).collect();
    let binary = Bytes::from_static(&[0, 255, 0, 10, 13, 0]);
    let seqs = log
        .append_batch(vec![big.clone(), binary.clone(), Bytes::new()])
        .await
        .unwrap();
    assert_eq!(log.get(seqs[0]).await.unwrap(), big);
    assert_eq!(log.get(seqs[1]).await.unwrap(), binary);
    assert_eq!(log.get(seqs[2]).await.unwrap(), Bytes::new());
    let rev = collect(&*log, StreamOpts::new().reverse().values()).await;
    assert_eq!(
        rev,
        [
            Item::Value(Bytes::new()),
            Item::Value(binary),
            Item::Value(big)
        ]
    );
}

async fn concurrent_appends<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..25 {
                let values = [format!("{t}-{i}-a"), format!("{t}-{i}-b")];
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let seqs = append_batch(&*log, &refs).await;
                acked.push((seqs, values));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let all = collect(&*log, StreamOpts::new()).await;
    assert_eq!(all.len(), 8 * 25 * 2);
    let position = |seq: Seq| all.iter().position(|it| it.seq() == Some(seq)).unwrap();
    for (seqs, values) in acked {
        let p = position(seqs[0]);
        assert_eq!(
            position(seqs[1]),
            p + 1,
            "a batch's records must be adjacent"
        );
        assert_eq!(all[p].value().unwrap(), values[0].as_bytes());
        assert_eq!(all[p + 1].value().unwrap(), values[1].as_bytes());
    }
    let seqs: Vec<Seq> = all.iter().filter_map(Item::seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

async fn live_sees_append<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append_batch(&*log, &["a", "b"]).await;
    let mut live = log.stream(StreamOpts::new().live().values());
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        Item::Value(Bytes::from("a"))
    );
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        Item::Value(Bytes::from("b"))
    );
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move { append(&*writer, "c").await });
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        Item::Value(Bytes::from("c"))
    );
    task.await.unwrap();
    append_batch(&*log, &["d", "e"]).await;
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        Item::Value(Bytes::from("d"))
    );
    assert_eq!(
        live.next().await.unwrap().unwrap(),
        Item::Value(Bytes::from("e"))
    );
    assert!(
        live.next().now_or_never().is_none(),
        "a live stream waits; it does not end or invent records"
    );
}

async fn live_drop<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append(&*log, "a").await;
    let mut live = stream_owned(Arc::clone(&log), StreamOpts::new().live());
    live.next().await.unwrap().unwrap();
    let pending = live.next().now_or_never();
    assert!(pending.is_none());
    drop(live);
    // Nothing kept running: the stream held the only other handle on the log.
    assert_eq!(
        Arc::strong_count(&log),
        1,
        "a dropped live stream must release the log"
    );
    append(&*log, "b").await;
    log.close().await.unwrap();
}

async fn live_old_false<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append_batch(&*log, &["old1", "old2"]).await;
    let mut live = log.stream(StreamOpts::new().live().old(false));
    let seq = append(&*log, "new").await;
    let item = live.next().await.unwrap().unwrap();
    assert_eq!(
        item,
        Item::Record {
            seq,
            value: Bytes::from("new")
        }
    );
}

async fn live_limit<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append(&*log, "a").await;
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move {
        for v in ["b", "c", "d"] {
            append(&*writer, v).await;
        }
    });
    let got = collect(&*log, StreamOpts::new().live().limit(3).values()).await;
    assert_eq!(got, ["a", "b", "c"].map(|v| Item::Value(Bytes::from(v))));
    task.await.unwrap();
}

/// More records than an owned stream reads in its first read and two read-aheads (1,024 records,
/// then 4,096 at a time), so streams cross several reads, limits and bounds land inside one.
pub(crate) const MANY: usize = 10_000;

pub(crate) async fn append_many(log: &dyn Log, from: usize, n: usize) -> Vec<(Seq, Bytes)> {
    let values: Vec<Bytes> = (from..from + n)
        .map(|i| Bytes::from(format!("record {i}")))
        .collect();
    let mut out = Vec::with_capacity(n);
    for batch in values.chunks(250) {
        let seqs = log.append_batch(batch.to_vec()).await.expect("append");
        out.extend(seqs.into_iter().zip(batch.iter().cloned()));
    }
    out
}

/// A stream item that must be a record, as `(seq, value)`.
fn record(item: Result<Item<Bytes>, LogError>) -> (Seq, Bytes) {
    match item.unwrap_or_else(|e| panic!("stream error: {e}")) {
        Item::Record { seq, value } => (seq, value),
        other => panic!("expected records, got {other:?}"),
    }
}

async fn collect_owned(log: &Arc<dyn Log>, opts: StreamOpts) -> Vec<(Seq, Bytes)> {
    stream_owned(Arc::clone(log), opts)
        .map(record)
        .collect()
        .await
}

async fn owned_many_chunks<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let all = append_many(&*log, 0, MANY).await;
    assert_eq!(collect_owned(&log, StreamOpts::new()).await, all, "forward");
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(
        collect_owned(&log, StreamOpts::new().reverse()).await,
        rev,
        "reverse"
    );
    assert_eq!(
        collect_owned(&log, StreamOpts::new().limit(7000)).await,
        all[..7000],
        "forward with a limit across chunks"
    );
    let (lo, hi) = (all[100].0, all[MANY - 100].0);
    assert_eq!(
        collect_owned(&log, StreamOpts::new().gt(lo).lt(hi).reverse().limit(7000)).await,
        rev[100..7100],
        "reverse within bounds, with a limit"
    );
    let seqs: Vec<_> = stream_owned(Arc::clone(&log), StreamOpts::new().seqs())
        .map(|r| r.expect("seq"))
        .collect()
        .await;
    assert_eq!(
        seqs,
        all.iter().map(|(s, _)| Item::Seq(*s)).collect::<Vec<_>>(),
        "seqs only"
    );
    // Dropped after its first chunk, with the next one being read ahead: the stream lets go of
    // the log once that read ends.
    let mut s = stream_owned(Arc::clone(&log), StreamOpts::new());
    s.next().await.expect("a record").expect("no error");
    drop(s);
    while Arc::strong_count(&log) > 1 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    log.close().await.expect("close");
}

async fn owned_live_chunks<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let mut all = append_many(&*log, 0, MANY).await;
    let live = stream_owned(Arc::clone(&log), StreamOpts::new().live().limit(2 * MANY));
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move { append_many(&*writer, MANY, MANY).await });
    let got: Vec<(Seq, Bytes)> = live.map(record).collect().await;
    all.extend(task.await.expect("appender"));
    assert_eq!(got, all, "each record exactly once, in log order");
    log.close().await.expect("close");
}

async fn close_fails<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seq = append(&*log, "a").await;
    log.close().await.unwrap();
    let err = log.append(Bytes::from("b")).await.unwrap_err();
    assert!(
        matches!(err.error, LogError::Closed),
        "append after close: {}",
        err.error
    );
    assert_eq!(err.rejected, "b", "the rejected record is handed back");
    assert!(matches!(log.get(seq).await, Err(LogError::Closed)));
    let items: Vec<_> = log.stream(StreamOpts::new()).collect().await;
    assert!(
        matches!(items.as_slice(), [Err(LogError::Closed)]),
        "stream after close"
    );
    log.close().await.unwrap();
}

async fn close_ends_live<F: LogFactory>(f: F) {
    let log = open(&f).await;
    append(&*log, "a").await;
    let mut live = stream_owned(Arc::clone(&log), StreamOpts::new().live());
    live.next().await.unwrap().unwrap();
    let closer = Arc::clone(&log);
    let task = tokio::spawn(async move { closer.close().await });
    assert!(matches!(live.next().await, Some(Err(LogError::Closed))));
    assert!(live.next().await.is_none());
    task.await.unwrap().unwrap();
}

async fn reopen<F: LogFactory>(f: F) {
    let log = open(&f).await;
    let seqs = five(&*log).await;
    log.close().await.unwrap();
    drop(log);
    let log = open(&f).await;
    assert_eq!(log.current_since(), Some(seqs[4]));
    assert_eq!(log.get(seqs[4]).await.unwrap(), FIVE[4]);
    let next = append(&*log, "after reopen").await;
    assert!(next > seqs[4]);
    let all = collect(&*log, StreamOpts::new().values()).await;
    assert_eq!(all.len(), 6);
    log.close().await.unwrap();
}
