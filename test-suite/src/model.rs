//! A model-based property test: random sequences of appends, batches, gets, streams and reopens,
//! checked against a `Vec` of what was acknowledged.

use std::ops::{Bound, RangeBounds};

use flume_core::{Bytes, Item, Log, LogError, Output, Seq, StreamOpts};
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::{LogFactory, open, runner::Runner};

/// Cases the property test runs (the acceptance floor is 256).
pub(crate) const CASES: u32 = 256;

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    /// Get the record at an index of the model (modulo its length), or a seq just past it.
    Get {
        index: usize,
        off_by_one: bool,
    },
    Stream {
        lower: Pick,
        upper: Pick,
        reverse: bool,
        limit: Option<usize>,
        output: Output,
    },
    Reopen,
}

/// A bound chosen relative to the model's records: at a record, or one past it.
#[derive(Clone, Copy, Debug)]
enum Pick {
    None,
    At {
        index: usize,
        inclusive: bool,
        off_by_one: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
    let pick = || {
        prop_oneof![
            Just(Pick::None),
            (any::<usize>(), any::<bool>(), proptest::bool::weighted(0.2)).prop_map(
                |(index, inclusive, off_by_one)| Pick::At {
                    index,
                    inclusive,
                    off_by_one
                }
            ),
        ]
    };
    let output = prop_oneof![
        Just(Output::Records),
        Just(Output::Values),
        Just(Output::Seqs)
    ];
    prop_oneof![
        4 => bytes().prop_map(Op::Append),
        3 => proptest::collection::vec(bytes(), 0..6).prop_map(Op::Batch),
        2 => (any::<usize>(), proptest::bool::weighted(0.2))
            .prop_map(|(index, off_by_one)| Op::Get { index, off_by_one }),
        4 => (pick(), pick(), any::<bool>(), proptest::option::of(0usize..8), output)
            .prop_map(|(lower, upper, reverse, limit, output)| Op::Stream { lower, upper, reverse, limit, output }),
        1 => Just(Op::Reopen),
    ]
}

pub(crate) fn run<F: LogFactory>(r: &mut Runner, make: &impl Fn() -> F) {
    let name = format!("model: {CASES} random operation sequences agree with a Vec");
    r.case_blocking(&name, || {
        let config = Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        let strategy = proptest::collection::vec(op(), 1..40);
        let result = runner.run(&strategy, |ops| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(check_sequence(make(), ops));
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    });
}

async fn check_sequence<F: LogFactory>(f: F, ops: Vec<Op>) {
    let mut log = open(&f).await;
    let mut model: Vec<(Seq, Bytes)> = Vec::new();
    for op in ops {
        match op {
            Op::Append(value) => {
                let value = Bytes::from(value);
                let seq = log
                    .append(value.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                push(&mut model, seq, value);
            }
            Op::Batch(values) => {
                let values: Vec<Bytes> = values.into_iter().map(Bytes::from).collect();
                let seqs = log
                    .append_batch(values.clone())
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(seqs.len(), values.len());
                for (seq, value) in seqs.into_iter().zip(values) {
                    push(&mut model, seq, value);
                }
            }
            Op::Get { index, off_by_one } => check_get(&*log, &model, index, off_by_one).await,
            Op::Stream {
                lower,
                upper,
                reverse,
                limit,
                output,
            } => {
                let mut opts = StreamOpts::new();
                opts.lower = resolve(lower, &model);
                opts.upper = resolve(upper, &model);
                opts.reverse = reverse;
                opts.limit = limit;
                opts.output = output;
                check_stream(&*log, &model, opts).await;
            }
            Op::Reopen => {
                log.close().await.unwrap();
                drop(log);
                log = open(&f).await;
            }
        }
        assert_eq!(log.current_since(), model.last().map(|(s, _)| *s), "since");
        // A log overriding `current_since` keeps it equal to what its watch sent.
        assert_eq!(*log.since().borrow(), log.current_since(), "since watch");
    }
    log.close().await.unwrap();
}

fn push(model: &mut Vec<(Seq, Bytes)>, seq: Seq, value: Bytes) {
    if let Some((last, _)) = model.last() {
        assert!(seq > *last, "seqs must increase: {seq} after {last}");
    }
    model.push((seq, value));
}

fn resolve(pick: Pick, model: &[(Seq, Bytes)]) -> Bound<Seq> {
    match pick {
        Pick::None => Bound::Unbounded,
        Pick::At { .. } if model.is_empty() => Bound::Unbounded,
        Pick::At {
            index,
            inclusive,
            off_by_one,
        } => {
            let seq = model[index % model.len()].0;
            let seq = if off_by_one {
                Seq(seq.0.saturating_add(1))
            } else {
                seq
            };
            if inclusive {
                Bound::Included(seq)
            } else {
                Bound::Excluded(seq)
            }
        }
    }
}

async fn check_get(log: &dyn Log, model: &[(Seq, Bytes)], index: usize, off_by_one: bool) {
    let Some((seq, _)) = (!model.is_empty()).then(|| &model[index % model.len()]) else {
        assert!(matches!(
            log.get(Seq(index as u64)).await,
            Err(LogError::NotARecord { .. })
        ));
        return;
    };
    let probe = if off_by_one { Seq(seq.0 + 1) } else { *seq };
    match model.iter().find(|(s, _)| *s == probe) {
        Some((_, v)) => assert_eq!(&log.get(probe).await.unwrap(), v),
        None => assert!(
            matches!(log.get(probe).await, Err(LogError::NotARecord { .. })),
            "get({probe}) where no record starts"
        ),
    }
}

async fn check_stream(log: &dyn Log, model: &[(Seq, Bytes)], opts: StreamOpts) {
    let mut want: Vec<&(Seq, Bytes)> = model
        .iter()
        .filter(|(s, _)| (opts.lower, opts.upper).contains(s))
        .collect();
    if opts.reverse {
        want.reverse();
    }
    if let Some(n) = opts.limit {
        want.truncate(n);
    }
    let want: Vec<Item<Bytes>> = want
        .into_iter()
        .map(|(seq, value)| match opts.output {
            Output::Records => Item::Record {
                seq: *seq,
                value: value.clone(),
            },
            Output::Values => Item::Value(value.clone()),
            Output::Seqs => Item::Seq(*seq),
        })
        .collect();
    let got: Vec<Result<Item<Bytes>, LogError>> = log.stream(opts.clone()).collect().await;
    let on_boundary = |b: Bound<Seq>| match b {
        Bound::Included(s) | Bound::Excluded(s) => model.iter().any(|(m, _)| *m == s),
        Bound::Unbounded => true,
    };
    let mut items = Vec::with_capacity(got.len());
    for item in got {
        match item {
            Ok(item) => items.push(item),
            // A log may refuse a bound where no record starts, with a clear error.
            Err(LogError::NotARecord { .. })
                if !(on_boundary(opts.lower) && on_boundary(opts.upper)) =>
            {
                return;
            }
            Err(e) => panic!("{opts:?}: {e}"),
        }
    }
    assert_eq!(items, want, "{opts:?}");
}
