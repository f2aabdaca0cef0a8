//! Gated reads on an index: get by key, and ranges in key order, optionally live.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use flume_core::{
    DbError, Item, LogError, LogStream, Seq, StreamOpts, ViewHandle, async_trait, stream_owned,
};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::Value;

use super::{Index, IndexOps};
use crate::range::KeyRange;
use crate::{ReadError, key};
use flume_core::bounds::{max_lower, min_upper};

/// Entries read from LMDB per read transaction.
const CHUNK: usize = 512;

/// Options of [`IndexReads::read`]: key bounds (tuples), a tuple prefix, direction, limit, live,
/// and which parts of each entry to return (flumeview-level's `keys`, `seqs`, `values`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IndexOpts {
    /// Lower key bound.
    pub lower: Bound<Vec<Value>>,
    /// Upper key bound.
    pub upper: Bound<Vec<Value>>,
    /// Only keys starting with this tuple.
    pub prefix: Option<Vec<Value>>,
    /// Largest key first. Not with `live`.
    pub reverse: bool,
    /// At most this many entries.
    pub limit: Option<usize>,
    /// After the entries present now, keep yielding entries put by records appended later.
    pub live: bool,
    /// Return each entry's key.
    pub keys: bool,
    /// Return each entry's seq.
    pub seqs: bool,
    /// Return each entry's record.
    pub values: bool,
}

impl Default for IndexOpts {
    fn default() -> Self {
        IndexOpts {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            prefix: None,
            reverse: false,
            limit: None,
            live: false,
            keys: true,
            seqs: true,
            values: true,
        }
    }
}

impl IndexOpts {
    /// Every entry, in key order, with key, seq and record.
    pub fn new() -> Self {
        Self::default()
    }
    /// Keys greater than `key`.
    pub fn gt(mut self, key: impl Into<Vec<Value>>) -> Self {
        self.lower = Bound::Excluded(key.into());
        self
    }
    /// Keys greater than or equal to `key`.
    pub fn gte(mut self, key: impl Into<Vec<Value>>) -> Self {
        self.lower = Bound::Included(key.into());
        self
    }
    /// Keys less than `key`.
    pub fn lt(mut self, key: impl Into<Vec<Value>>) -> Self {
        self.upper = Bound::Excluded(key.into());
        self
    }
    /// Keys less than or equal to `key`.
    pub fn lte(mut self, key: impl Into<Vec<Value>>) -> Self {
        self.upper = Bound::Included(key.into());
        self
    }
    /// Keys that start with the tuple `prefix`.
    pub fn prefix(mut self, prefix: impl Into<Vec<Value>>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    /// Largest key first.
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
    /// At most `n` entries.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
    /// Keep yielding entries put by later records.
    pub fn live(mut self) -> Self {
        self.live = true;
        self
    }
    /// Choose the parts of each entry returned.
    pub fn parts(mut self, keys: bool, seqs: bool, values: bool) -> Self {
        (self.keys, self.seqs, self.values) = (keys, seqs, values);
        self
    }

    fn range(&self) -> KeyRange {
        let encode = |b: &Bound<Vec<Value>>| b.as_ref().map(|k| key::encode(k));
        let range = KeyRange {
            lower: encode(&self.lower),
            upper: encode(&self.upper),
        };
        match &self.prefix {
            Some(p) => range.with_prefix(&key::encode(p)),
            None => range,
        }
    }
}

/// One index entry, with the parts asked for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IndexItem<T> {
    /// The key tuple.
    pub key: Option<Vec<Value>>,
    /// The seq of the record that put it.
    pub seq: Option<Seq>,
    /// The record.
    pub value: Option<T>,
}

/// Gated reads on an [`Index`]: each waits until the index includes every record acknowledged
/// when it was called.
#[async_trait]
pub trait IndexReads<T> {
    /// The record the key points at, with its seq.
    ///
    /// # Errors
    /// [`ReadError::Db`] when the view failed or the database closed; LMDB errors.
    async fn get(&self, key: &[Value]) -> Result<Option<(Seq, T)>, ReadError>;

    /// Entries in key order (see [`IndexOpts`]). Errors arrive as items, after which it ends.
    fn read(&self, opts: IndexOpts) -> BoxStream<'static, Result<IndexItem<T>, ReadError>>;
}

#[async_trait]
impl<T: Send + Sync + 'static> IndexReads<T> for ViewHandle<Index<T>> {
    async fn get(&self, key: &[Value]) -> Result<Option<(Seq, T)>, ReadError> {
        let index = self.ready().await?;
        let rows = index.rows().map_err(crate::index_err)?;
        let key = key::encode(key);
        let seq = index
            .lmdb()
            .read(|txn| Ok(rows.get(txn, &key)?.and_then(decode_seq)))?;
        let Some(seq) = seq else { return Ok(None) };
        Ok(fetch(index, &key, seq).await?.map(|v| (seq, v)))
    }

    fn read(&self, opts: IndexOpts) -> BoxStream<'static, Result<IndexItem<T>, ReadError>> {
        if opts.reverse && opts.live {
            let e = DbError::Log(LogError::InvalidOptions(
                "`reverse` cannot be combined with `live`".into(),
            ));
            return stream::once(async move { Err(ReadError::Db(e)) }).boxed();
        }
        let range = opts.range();
        let cursor = Cursor {
            handle: self.clone(),
            range,
            opts,
            state: State::Start,
            buf: VecDeque::new(),
        };
        stream::unfold(cursor, |mut c| async move {
            let item = c.next().await?;
            Some((item, c))
        })
        .boxed()
    }
}

fn decode_seq(bytes: &[u8]) -> Option<Seq> {
    bytes.try_into().ok().map(u64::from_be_bytes).map(Seq)
}

/// The record an entry points at; `None` (and the entry removed) if the log retired it.
async fn fetch<T: Send + Sync + 'static>(
    index: &Index<T>,
    key: &[u8],
    seq: Seq,
) -> Result<Option<T>, ReadError> {
    let records = index.records().ok_or(ReadError::Db(DbError::Closed))?;
    match records.get(seq).await {
        Ok(v) => Ok(Some(v)),
        Err(DbError::Log(LogError::Truncated { .. })) => {
            let rows = index.rows().map_err(crate::index_err)?;
            let key = key.to_vec();
            index
                .lmdb()
                .write(move |txn| {
                    if rows.get(txn, &key)?.and_then(decode_seq) == Some(seq) {
                        rows.delete(txn, &key)?;
                    }
                    Ok(())
                })
                .await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

enum State {
    Start,
    /// Scanning entries of records up to `since`; `after` is the last key yielded.
    Scan {
        since: Option<Seq>,
        range: KeyRange,
    },
    /// Following the log after the scan.
    Live(LogStream),
    Done,
}

/// A raw index row: encoded key and seq bytes.
type Row<'t> = (&'t [u8], &'t [u8]);

struct Cursor<T: Send + Sync + 'static> {
    handle: ViewHandle<Index<T>>,
    range: KeyRange,
    opts: IndexOpts,
    state: State,
    buf: VecDeque<IndexItem<T>>,
}

impl<T: Send + Sync + 'static> Cursor<T> {
    async fn next(&mut self) -> Option<Result<IndexItem<T>, ReadError>> {
        loop {
            if self.opts.limit == Some(0) {
                return None;
            }
            if let Some(item) = self.buf.pop_front() {
                if let Some(n) = &mut self.opts.limit {
                    *n -= 1;
                }
                return Some(Ok(item));
            }
            let step = match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return None,
                State::Start => self.start().await,
                State::Scan { since, range } => self.scan(since, range).await,
                State::Live(stream) => self.live(stream).await,
            };
            if let Err(e) = step {
                self.state = State::Done;
                return Some(Err(e));
            }
        }
    }

    /// Wait for the gate, then remember the index's `since`: the scan shows entries of records
    /// up to it, and a live read continues with the records after it, so none is seen twice.
    async fn start(&mut self) -> Result<(), ReadError> {
        let index = self.handle.ready().await?;
        let since = flume_core::View::since(index);
        self.state = State::Scan {
            since,
            range: self.range.clone(),
        };
        Ok(())
    }

    async fn scan(&mut self, since: Option<Seq>, mut range: KeyRange) -> Result<(), ReadError> {
        let index = self.handle.stale()?;
        let rows = index.rows().map_err(crate::index_err)?;
        let reverse = self.opts.reverse;
        let want = self.opts.limit.map_or(CHUNK, |n| n.min(CHUNK));
        let entries: Vec<(Vec<u8>, Seq)> = index.lmdb().read(|txn| {
            let mut out = Vec::with_capacity(want);
            let refs = range.as_refs();
            let iter: Box<dyn Iterator<Item = heed::Result<Row<'_>>>> = if reverse {
                Box::new(rows.rev_range(txn, &refs)?)
            } else {
                Box::new(rows.range(txn, &refs)?)
            };
            for entry in iter {
                let (k, v) = entry?;
                let Some(seq) = decode_seq(v) else { continue };
                out.push((k.to_vec(), seq));
                if out.len() == want {
                    break;
                }
            }
            Ok(out)
        })?;
        let Some((last, _)) = entries.last() else {
            self.state = self.after_scan(since);
            return Ok(());
        };
        if reverse {
            range.upper = min_upper(range.upper, Bound::Excluded(last.clone()));
        } else {
            range.lower = max_lower(range.lower, Bound::Excluded(last.clone()));
        }
        for (k, seq) in entries {
            // Entries written after the scan began belong to the live part.
            if since.is_none_or(|s| seq > s) {
                continue;
            }
            if let Some(item) = item(self.parts(), index, &k, seq, None).await? {
                self.buf.push_back(item);
            }
        }
        self.state = State::Scan { since, range };
        Ok(())
    }

    fn after_scan(&self, since: Option<Seq>) -> State {
        if !self.opts.live {
            return State::Done;
        }
        let Ok(index) = self.handle.stale() else {
            return State::Done;
        };
        let Some(records) = index.records() else {
            return State::Done;
        };
        let opts = match since {
            Some(s) => StreamOpts::new().gt(s).live(),
            None => StreamOpts::new().live(),
        };
        State::Live(stream_owned(Arc::clone(records.log()), opts))
    }

    /// Follow the log: records appended later are mapped by the index function, and their puts
    /// within the range are yielded.
    async fn live(&mut self, mut stream: LogStream) -> Result<(), ReadError> {
        let Some(next) = stream.next().await else {
            return Ok(());
        };
        let entry = next.map_err(DbError::from)?;
        let index = self.handle.stale()?;
        let records = index.records().ok_or(ReadError::Db(DbError::Closed))?;
        if let Item::Record { seq, value } = entry {
            let record = records.decode(seq, &value)?;
            let mut ops = IndexOps::default();
            index.map_record(seq, &record, &mut ops);
            let mut record = Some(record);
            for (k, _, put) in ops.rows() {
                if put
                    && self.range.contains(k)
                    && let Some(it) = item(self.parts(), index, k, seq, record.take()).await?
                {
                    self.buf.push_back(it);
                }
            }
        }
        self.state = State::Live(stream);
        Ok(())
    }

    fn parts(&self) -> Parts {
        Parts {
            keys: self.opts.keys,
            seqs: self.opts.seqs,
            values: self.opts.values,
        }
    }
}

/// Which parts of an entry to return.
#[derive(Clone, Copy)]
struct Parts {
    keys: bool,
    seqs: bool,
    values: bool,
}

async fn item<T: Send + Sync + 'static>(
    parts: Parts,
    index: &Index<T>,
    k: &[u8],
    seq: Seq,
    record: Option<T>,
) -> Result<Option<IndexItem<T>>, ReadError> {
    let key = if parts.keys {
        Some(key::decode(k).map_err(ReadError::BadKey)?)
    } else {
        None
    };
    let value = match (parts.values, record) {
        (false, _) => None,
        (true, Some(r)) => Some(r),
        (true, None) => match fetch(index, k, seq).await? {
            Some(v) => Some(v),
            None => return Ok(None),
        },
    };
    Ok(Some(IndexItem {
        key,
        seq: parts.seqs.then_some(seq),
        value,
    }))
}
