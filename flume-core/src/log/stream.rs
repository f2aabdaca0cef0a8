//! Streams over any [`Log`], built from `read` and the `since` channel.

use std::ops::{Bound, Deref};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use super::{Item, Log, ReadRange, StreamOpts};
use crate::bounds::{is_empty_range, max_lower, min_upper};
use crate::{LogError, Seq};

/// Records read per call to [`Log::read`]: large enough to amortise the call, small enough that a
/// stream holds little memory.
const CHUNK: usize = 1024;

/// A stream that owns its log handle, so it can outlive the caller's borrow (servers, tasks).
pub fn stream_owned<L: Log + ?Sized>(
    log: Arc<L>,
    opts: StreamOpts,
) -> BoxStream<'static, Result<Item<Bytes>, LogError>> {
    build(log, opts)
}

pub(super) fn stream_ref<L: Log + ?Sized>(
    log: &L,
    opts: StreamOpts,
) -> BoxStream<'_, Result<Item<Bytes>, LogError>> {
    build(log, opts)
}

fn build<'a, R, L>(log: R, opts: StreamOpts) -> BoxStream<'a, Result<Item<Bytes>, LogError>>
where
    R: Deref<Target = L> + Send + Sync + 'a,
    L: Log + ?Sized,
{
    if let Err(e) = opts.validate() {
        return Box::pin(stream::once(async move { Err(e) }));
    }
    let since = log.since();
    let now = *since.borrow();
    let mut lower = opts.lower;
    if let (false, Some(now)) = (opts.old, now) {
        lower = max_lower(lower, Bound::Excluded(now));
    }
    let output = opts.output;
    let cursor = Cursor {
        log,
        since,
        lower,
        upper: opts.upper,
        remaining: opts.limit,
        done: false,
        pinned: (!opts.live).then_some(now),
        opts,
    };
    // The cursor yields whole chunks; flattening them keeps the per-record cost to an iterator
    // step instead of a future per record.
    let chunks = stream::unfold(cursor, |mut c| async move {
        let chunk = c.next_chunk().await?;
        Some((chunk, c))
    });
    Box::pin(chunks.flat_map(move |chunk| {
        match chunk {
            Ok(records) => Either::Left(stream::iter(
                records
                    .into_iter()
                    .map(move |(seq, value)| Ok(Item::shaped(output, seq, value))),
            )),
            Err(e) => Either::Right(stream::once(future::ready(Err(e)))),
        }
    }))
}

/// The stream's position: the bounds of what is still to be yielded.
struct Cursor<R> {
    log: R,
    since: watch::Receiver<Option<Seq>>,
    /// Forward streams move `lower` up; reverse streams move `upper` down.
    lower: Bound<Seq>,
    upper: Bound<Seq>,
    remaining: Option<usize>,
    done: bool,
    /// A stream that is not live yields the records acknowledged when it was created, no more.
    pinned: Option<Option<Seq>>,
    opts: StreamOpts,
}

impl<R, L> Cursor<R>
where
    R: Deref<Target = L> + Send + Sync,
    L: Log + ?Sized,
{
    /// The next non-empty chunk of records, an error (after which the stream ends), or the end.
    async fn next_chunk(&mut self) -> Option<Result<Vec<(Seq, Bytes)>, LogError>> {
        loop {
            if self.done || self.remaining == Some(0) {
                return None;
            }
            if self.since.has_changed().is_err() {
                return self.fail(LogError::Closed);
            }
            let since = match self.pinned {
                Some(pinned) => pinned,
                None => *self.since.borrow_and_update(),
            };
            match self.fill(since).await {
                Err(e) => return self.fail(e),
                Ok(Some(records)) => return Some(Ok(records)),
                Ok(None) => {}
            }
            if !self.opts.live || is_empty_range(self.lower, self.upper) {
                return None;
            }
            if self.since.changed().await.is_err() {
                return self.fail(LogError::Closed);
            }
        }
    }

    fn fail(&mut self, e: LogError) -> Option<Result<Vec<(Seq, Bytes)>, LogError>> {
        self.done = true;
        Some(Err(e))
    }

    /// Read the next chunk of `(cursor, since]`; `None` when there is nothing more to read now.
    async fn fill(&mut self, since: Option<Seq>) -> Result<Option<Vec<(Seq, Bytes)>>, LogError> {
        let Some(since) = since else { return Ok(None) };
        let upper = min_upper(self.upper, Bound::Included(since));
        if is_empty_range(self.lower, upper) {
            return Ok(None);
        }
        let max = self.remaining.map_or(CHUNK, |n| n.min(CHUNK));
        let range = ReadRange {
            lower: self.lower,
            upper,
            reverse: self.opts.reverse,
            max,
            max_bytes: super::READ_BYTES,
            values: self.opts.output != super::Output::Seqs,
        };
        let mut records = self.log.read(range).await?;
        // A log may return fewer than `max`, never more.
        records.truncate(max);
        let Some(&(last, _)) = records.last() else {
            return Ok(None);
        };
        if self.opts.reverse {
            self.upper = Bound::Excluded(last);
        } else {
            self.lower = Bound::Excluded(last);
        }
        if let Some(n) = &mut self.remaining {
            *n -= records.len();
        }
        Ok(Some(records))
    }
}
