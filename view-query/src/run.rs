//! Running a query: gate on the view, pick the candidates (an index range or the whole log),
//! run the pipeline on them, then follow the log when live.
//!
//! Results come in log order (newest first with `reverse`) unless the pipeline ends with
//! `$sort`, so the plan never changes the answer. A producer task feeds a bounded channel:
//! dropping the stream stops it.

use std::ops::Bound;

use flume_core::{DbError, LogError, LogStream, Seq, StreamOpts, ViewHandle, stream_owned};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::QueryError;
use crate::plan::{Plan, plan};
use crate::query::{Query, QueryOpts, Stage, run_stages, stream_stages};
use crate::view::QueryView;

/// Results buffered between the producer and the reader.
const BUFFER: usize = 256;
/// Index entries read per read transaction.
const CHUNK: usize = 4096;

/// One result: the value the pipeline produced and, while each result still stands for one
/// record (no `$reduce`), that record's seq.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct QueryItem {
    /// The record's seq.
    pub seq: Option<Seq>,
    /// The result.
    pub value: Value,
}

/// Queries on a [`QueryView`]'s handle. Results wait until the view includes every record
/// acknowledged when the query started; a live query without old records reads only the log
/// from the call on, so it does not wait for the view.
pub trait QueryReads {
    /// Run `query`. Errors arrive as items, after which the stream ends.
    fn query(
        &self,
        query: &Query,
        opts: QueryOpts,
    ) -> BoxStream<'static, Result<QueryItem, QueryError>>;

    /// How `query` would run: the index and bounds chosen (or a scan), and every index's score.
    fn explain(&self, query: &Query, opts: &QueryOpts) -> Value;
}

impl<T: Send + Sync + 'static> QueryReads for ViewHandle<QueryView<T>> {
    fn query(
        &self,
        query: &Query,
        opts: QueryOpts,
    ) -> BoxStream<'static, Result<QueryItem, QueryError>> {
        if let Err(e) = query.check(&opts) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        // A live query without old records starts now, not when its task first runs: its log
        // stream is opened here, and opening it fixes where "new" begins.
        let tail = if opts.live && !opts.old {
            let opts = StreamOpts::new().live().old(false);
            match self.stale().and_then(|view| follow(view, opts)) {
                Ok(stream) => Some(stream),
                Err(e) => return futures::stream::once(async move { Err(e.into()) }).boxed(),
            }
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(BUFFER);
        let (handle, query) = (self.clone(), query.clone());
        tokio::spawn(async move {
            let out = Out {
                tx: tx.clone(),
                left: opts.limit,
            };
            if let Err(e) = run(handle, query, opts, tail, out).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed()
    }

    fn explain(&self, query: &Query, opts: &QueryOpts) -> Value {
        match self.stale() {
            Ok(view) => plan(query, &view.indexes, opts.force_scan).explain,
            Err(e) => Value::from(e.to_string()),
        }
    }
}

/// Where results go, counting down the limit.
struct Out {
    tx: mpsc::Sender<Result<QueryItem, QueryError>>,
    left: Option<usize>,
}

impl Out {
    /// False once the reader is gone or the limit is reached: stop producing.
    async fn send(&mut self, seq: Option<Seq>, value: Value) -> bool {
        if self.left == Some(0) {
            return false;
        }
        if self.tx.send(Ok(QueryItem { seq, value })).await.is_err() {
            return false;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        self.left != Some(0)
    }
}

/// `tail`: the live part, when it was opened at the call (a live query without old records,
/// which reads nothing else).
async fn run<T: Send + Sync + 'static>(
    handle: ViewHandle<QueryView<T>>,
    query: Query,
    opts: QueryOpts,
    tail: Option<LogStream>,
    mut out: Out,
) -> Result<(), QueryError> {
    if let Some(stream) = tail {
        // Only the log from the call on: nothing to wait for in the view (a view rebuilding or
        // catching up would hold the first records back). A live query has no blocking stages
        // (`Query::check`), so every stage streams.
        return live(handle.stale()?, stream, &query.stages, &mut out).await;
    }
    let view = handle.ready().await?;
    let since = flume_core::View::since(view);
    let plan = plan(&query, &view.indexes, opts.force_scan);
    let mut stages: &[Stage] = &query.stages;
    if plan.index_order {
        // The index already yields the final `$sort`'s order.
        stages = &stages[..stages.len() - 1];
    }
    let split = stages
        .iter()
        .position(Stage::blocking)
        .unwrap_or(stages.len());
    let (streaming, rest) = stages.split_at(split);
    if opts.old {
        let mut source = Candidates::new(view, &plan, since, opts.reverse)?;
        if rest.is_empty() {
            while let Some((seq, record)) = source.next(view).await? {
                if let Some(v) = stream_stages(streaming, &(view.to_json)(&record))
                    && !out.send(Some(seq), v).await
                {
                    return Ok(());
                }
            }
        } else {
            let mut values = Vec::new();
            while let Some((seq, record)) = source.next(view).await? {
                if let Some(v) = stream_stages(streaming, &(view.to_json)(&record)) {
                    values.push((Some(seq), v));
                }
            }
            for (seq, value) in run_stages(rest, values, opts.reverse) {
                if !out.send(seq, value).await {
                    return Ok(());
                }
            }
        }
    }
    if opts.live {
        // Exactly where the old records ended.
        live(view, follow(view, after(since))?, streaming, &mut out).await?;
    }
    Ok(())
}

/// The live stream of the log's records after `since` (all of them with `None`).
fn after(since: Option<Seq>) -> StreamOpts {
    match since {
        Some(s) => StreamOpts::new().gt(s).live(),
        None => StreamOpts::new().live(),
    }
}

/// A stream of the log under `view`.
fn follow<T: Send + Sync + 'static>(
    view: &QueryView<T>,
    opts: StreamOpts,
) -> Result<LogStream, DbError> {
    let records = view.records().ok_or(DbError::Closed)?;
    Ok(stream_owned(std::sync::Arc::clone(records.log()), opts))
}

/// Each record of the live `stream` through the streaming stages.
async fn live<T: Send + Sync + 'static>(
    view: &QueryView<T>,
    mut stream: LogStream,
    stages: &[Stage],
    out: &mut Out,
) -> Result<(), QueryError> {
    let records = view.records().ok_or(DbError::Closed)?;
    while let Some(item) = stream.next().await {
        let item = item.map_err(DbError::from)?;
        let (Some(seq), Some(bytes)) = (item.seq(), item.value()) else {
            continue;
        };
        let record = records.decode(seq, bytes)?;
        if let Some(v) = stream_stages(stages, &(view.to_json)(&record))
            && !out.send(Some(seq), v).await
        {
            return Ok(());
        }
    }
    Ok(())
}

/// The records a query looks at, in the order results must come.
enum Candidates {
    /// Every record up to `since`, from the log.
    Scan(LogStream),
    /// Records found in an index, sorted into log order.
    Seqs(std::vec::IntoIter<Seq>),
    /// Records in the index's own order, read a chunk at a time.
    Ordered {
        table: usize,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        since: Option<Seq>,
        reverse: bool,
        buf: std::collections::VecDeque<Seq>,
    },
    Empty,
}

impl Candidates {
    fn new<T: Send + Sync + 'static>(
        view: &QueryView<T>,
        plan: &Plan,
        since: Option<Seq>,
        reverse: bool,
    ) -> Result<Self, QueryError> {
        let Some(since) = since else {
            return Ok(Candidates::Empty);
        };
        let Some((table, (lower, upper))) = plan.index.clone() else {
            let records = view.records().ok_or(DbError::Closed)?;
            let mut opts = StreamOpts::new().lte(since);
            opts.reverse = reverse;
            return Ok(Candidates::Scan(stream_owned(
                std::sync::Arc::clone(records.log()),
                opts,
            )));
        };
        if plan.index_order {
            let buf = std::collections::VecDeque::new();
            return Ok(Candidates::Ordered {
                table,
                lower,
                upper,
                since: Some(since),
                reverse,
                buf,
            });
        }
        let mut seqs = Vec::new();
        let mut cursor = (lower, upper);
        while let Some(chunk) = index_chunk(view, table, &mut cursor, false, Some(since))? {
            seqs.extend(chunk);
        }
        seqs.sort_unstable();
        if reverse {
            seqs.reverse();
        }
        Ok(Candidates::Seqs(seqs.into_iter()))
    }

    async fn next<T: Send + Sync + 'static>(
        &mut self,
        view: &QueryView<T>,
    ) -> Result<Option<(Seq, T)>, QueryError> {
        let records = view.records().ok_or(DbError::Closed)?;
        loop {
            let seq = match self {
                Candidates::Empty => return Ok(None),
                Candidates::Scan(stream) => {
                    let Some(item) = stream.next().await else {
                        return Ok(None);
                    };
                    let item = item.map_err(DbError::from)?;
                    let (Some(seq), Some(bytes)) = (item.seq(), item.value()) else {
                        continue;
                    };
                    return Ok(Some((seq, records.decode(seq, bytes)?)));
                }
                Candidates::Seqs(seqs) => match seqs.next() {
                    Some(seq) => seq,
                    None => return Ok(None),
                },
                Candidates::Ordered {
                    table,
                    lower,
                    upper,
                    since,
                    reverse,
                    buf,
                } => {
                    if buf.is_empty() {
                        let mut cursor = (
                            std::mem::replace(lower, Bound::Unbounded),
                            std::mem::replace(upper, Bound::Unbounded),
                        );
                        match index_chunk(view, *table, &mut cursor, *reverse, *since)? {
                            Some(chunk) => buf.extend(chunk),
                            None => return Ok(None),
                        }
                        (*lower, *upper) = cursor;
                    }
                    match buf.pop_front() {
                        Some(seq) => seq,
                        None => continue,
                    }
                }
            };
            match records.get(seq).await {
                Ok(record) => return Ok(Some((seq, record))),
                // A retired record is no longer a result.
                Err(DbError::Log(LogError::Truncated { .. })) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The next chunk of an index range (moving the cursor past it), keeping entries of records up
/// to `since`; `None` when the range is exhausted.
fn index_chunk<T: Send + Sync + 'static>(
    view: &QueryView<T>,
    table: usize,
    cursor: &mut (Bound<Vec<u8>>, Bound<Vec<u8>>),
    reverse: bool,
    since: Option<Seq>,
) -> Result<Option<Vec<Seq>>, QueryError> {
    let rows = view.rows(table).map_err(|e| DbError::View {
        view: "query".into(),
        source: e,
    })?;
    let (keys, last) = view.lmdb().read(|txn| {
        let range = (
            cursor.0.as_ref().map(Vec::as_slice),
            cursor.1.as_ref().map(Vec::as_slice),
        );
        let iter: Box<dyn Iterator<Item = heed::Result<Row<'_>>>> = if reverse {
            Box::new(rows.rev_range(txn, &range)?)
        } else {
            Box::new(rows.range(txn, &range)?)
        };
        let mut keys = Vec::with_capacity(CHUNK);
        let mut last = None;
        for row in iter.take(CHUNK) {
            let (k, _) = row?;
            keys.push(seq_of(k));
            last = Some(k.to_vec());
        }
        Ok((keys, last))
    })?;
    let Some(last) = last else { return Ok(None) };
    if reverse {
        cursor.1 = Bound::Excluded(last);
    } else {
        cursor.0 = Bound::Excluded(last);
    }
    Ok(Some(
        keys.into_iter()
            .flatten()
            .filter(|s| since.is_some_and(|since| *s <= since))
            .collect(),
    ))
}

/// An index row: key and (empty) value.
type Row<'t> = (&'t [u8], &'t [u8]);

/// The seq at the end of an index key: its last element, a number.
fn seq_of(key: &[u8]) -> Option<Seq> {
    let tuple = flume_view_index::key::decode(key).ok()?;
    tuple.last()?.as_u64().map(Seq)
}
