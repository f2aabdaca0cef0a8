//! Streams over any [`Log`], built from `read` and the `since` channel.

use std::collections::VecDeque;
use std::ops::{Bound, Deref};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream};
use tokio::sync::watch;

use super::{Item, Log, ReadRange, StreamOpts, is_empty_range, max_lower, min_upper};
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
    let cursor = Cursor {
        log,
        since,
        lower,
        upper: opts.upper,
        remaining: opts.limit,
        buf: VecDeque::new(),
        done: false,
        pinned: (!opts.live).then_some(now),
        opts,
    };
    Box::pin(stream::unfold(cursor, |mut c| async move {
        let item = c.next().await?;
        Some((item, c))
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
    buf: VecDeque<(Seq, Bytes)>,
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
    async fn next(&mut self) -> Option<Result<Item<Bytes>, LogError>> {
        loop {
            if self.done || self.remaining == Some(0) {
                return None;
            }
            if let Some((seq, value)) = self.buf.pop_front() {
                if let Some(n) = &mut self.remaining {
                    *n -= 1;
                }
                return Some(Ok(Item::shaped(self.opts.output, seq, value)));
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
                Ok(true) => continue,
                Ok(false) => {}
            }
            if !self.opts.live || is_empty_range(self.lower, self.upper) {
                return None;
            }
            if self.since.changed().await.is_err() {
                return self.fail(LogError::Closed);
            }
        }
    }

    fn fail(&mut self, e: LogError) -> Option<Result<Item<Bytes>, LogError>> {
        self.done = true;
        Some(Err(e))
    }

    /// Read the next chunk of `(cursor, since]`; false when there is nothing more to read now.
    async fn fill(&mut self, since: Option<Seq>) -> Result<bool, LogError> {
        let Some(since) = since else { return Ok(false) };
        let upper = min_upper(self.upper, Bound::Included(since));
        if is_empty_range(self.lower, upper) {
            return Ok(false);
        }
        let max = self.remaining.map_or(CHUNK, |n| n.min(CHUNK));
        let range = ReadRange {
            lower: self.lower,
            upper,
            reverse: self.opts.reverse,
            max,
            values: self.opts.output != super::Output::Seqs,
        };
        let records = self.log.read(range).await?;
        let Some(&(last, _)) = records.last() else {
            return Ok(false);
        };
        if self.opts.reverse {
            self.upper = Bound::Excluded(last);
        } else {
            self.lower = Bound::Excluded(last);
        }
        self.buf.extend(records);
        Ok(true)
    }
}
