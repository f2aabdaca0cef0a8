//! Reads: `get`, and forward and backward range reads across segments.
//!
//! Reads see only acknowledged data: they take `end` (and the last seq) once, at the start, and
//! never look past it. Every frame returned is checked (structure and salted CRC); a frame that
//! fails at a known boundary is [`LogError::Corrupt`], never returned.
//!
//! A read must start at a frame boundary. Streams continue from the last seq they were given,
//! which the [`BoundaryCache`] remembers, so they do not touch the index; any other bound is
//! resolved by the segment's sparse index, which is exact.

use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use flume_core::{Chunk, LogError, ReadRange, Seq};

use crate::frame::{Header, SEG_HEADER};
use crate::log::{Shared, lock};
use crate::segment::{
    Chunks, Segment, bad_before_to_error, bad_to_error, frame_at, frame_before, seq_before,
};
use crate::storage::StorageFile;

const CACHE: usize = 64;

/// Recently returned or appended frames, as `(start, end)` logical offsets: known boundaries.
#[derive(Default)]
pub(crate) struct BoundaryCache {
    entries: Vec<(u64, u64)>,
    next: usize,
}

impl BoundaryCache {
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if self.entries.iter().any(|e| e.0 == start) {
            return;
        }
        if self.entries.len() < CACHE {
            self.entries.push((start, end));
        } else {
            self.entries[self.next] = (start, end);
            self.next = (self.next + 1) % CACHE;
        }
    }

    fn end_of(&self, start: u64) -> Option<u64> {
        self.entries.iter().find(|e| e.0 == start).map(|e| e.1)
    }
}

/// What a read sees: fixed when it starts.
struct View {
    first: u64,
    end: u64,
    last: u64,
}

impl Shared {
    fn view(&self) -> Option<View> {
        let st = self.state();
        let last = st.last?;
        Some(View {
            first: st.first(),
            end: st.end,
            last,
        })
    }

    /// The segment holding logical offset `x`, and the logical end of its visible data.
    fn segment(&self, x: u64, view: &View) -> Result<(Arc<Segment>, u64), LogError> {
        let st = self.state();
        let i = st.segments.partition_point(|s| s.base <= x);
        if i == 0 {
            return Err(LogError::Truncated {
                seq: Seq(x),
                first: Seq(st.first()),
            });
        }
        let seg = st.segments[i - 1].clone();
        let hi = st
            .segments
            .get(i)
            .map_or(view.end, |n| n.base)
            .min(view.end);
        Ok((seg, hi))
    }

    /// The file of `seg`, read for logical offset `x`. A sealed segment is opened on first use,
    /// after the state lock that found it was released: `retire_before` may have removed it
    /// since, or, under a read-only log, the writer's process may have; then the read is below
    /// the first seq, not an I/O failure.
    pub(crate) fn file(&self, seg: &Segment, x: u64) -> Result<Arc<dyn StorageFile>, LogError> {
        seg.file(self.ctx()).map_err(|e| match e {
            LogError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound && self.retired(seg) =>
            {
                LogError::Truncated {
                    seq: Seq(x),
                    first: Seq(self.state().first()),
                }
            }
            e => e,
        })
    }

    /// Whether `seg`, whose file was not found, was retired.
    fn retired(&self, seg: &Segment) -> bool {
        let first = self.state().first();
        seg.base < first || self.forget_retired(seg)
    }

    /// The first frame start at or after logical `x` (or `view.end`).
    fn seek(&self, x: u64, view: &View) -> Result<u64, LogError> {
        if x >= view.end {
            return Ok(view.end);
        }
        let x = x.max(view.first);
        let (seg, hi) = self.segment(x, view)?;
        let ctx = self.ctx();
        let file = self.file(&seg, x)?;
        let pos = seg
            .index()
            .seek(ctx, &seg, &*file, seg.pos(x), seg.pos(hi))?;
        Ok(seg.seq(pos))
    }

    pub(crate) fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        let not = LogError::NotARecord { seq };
        let Some(view) = self.view() else {
            return Err(not);
        };
        if seq.0 < view.first {
            return Err(LogError::Truncated {
                seq,
                first: Seq(view.first),
            });
        }
        if seq.0 >= view.end {
            return Err(not);
        }
        let known = lock(&self.cache).end_of(seq.0).is_some();
        if !known && self.seek(seq.0, &view)? != seq.0 {
            return Err(not);
        }
        let (seg, hi) = self.segment(seq.0, &view)?;
        let ctx = self.ctx();
        let file = self.file(&seg, seq.0)?;
        // No read-ahead: a get reads its header, then its frame.
        let mut chunks = Chunks::new(&*file, SEG_HEADER, seg.pos(hi)).ahead(0);
        let pos = seg.pos(seq.0);
        let frame = frame_at(&mut chunks, &seg, pos, seg.pos(hi))
            .map_err(|b| bad_to_error(ctx, &seg, pos, b))?;
        let (buf, range) = chunks.payload(pos, &frame);
        Ok(buf.slice(range))
    }

    /// Whether `seq` is the last record before `first`: a read that continues after it (a
    /// stream or view resuming at the retired boundary) has missed nothing. The first segment's
    /// header records the length of the frame before it, as the retired segment is gone.
    fn last_retired(&self, seq: u64, first: u64) -> Result<bool, LogError> {
        if lock(&self.cache).end_of(seq) == Some(first) {
            return Ok(true);
        }
        let Some(seg) = self.state().segments.first().cloned() else {
            return Ok(false);
        };
        if seg.base != first {
            // Retired since the read began: the caller's view is stale, and `seq` below it.
            return Ok(false);
        }
        let file = self.file(&seg, seq)?;
        Ok(seq_before(self.ctx(), &seg.name, &*file, seg.base)? == Some(seq))
    }

    /// A read that segments retired under it made `Truncated` is read once more, now that the
    /// new first seq is known: one that continues after the last retired record has missed
    /// nothing, and gets the rest.
    pub(crate) fn read(&self, range: &ReadRange) -> Result<Chunk, LogError> {
        let Some(view) = self.view() else {
            return Ok(Chunk::new());
        };
        let done = self.read_in(range, &view);
        if let Err(LogError::Truncated { .. }) = done
            && let Some(now) = self.view()
            && now.first != view.first
        {
            return self.read_in(range, &now);
        }
        done
    }

    /// The read, within what `view` saw.
    fn read_in(&self, range: &ReadRange, view: &View) -> Result<Chunk, LogError> {
        if range.max == 0 {
            return Ok(Chunk::new());
        }
        let below_first = match range.lower {
            Bound::Included(s) => s.0 < view.first,
            Bound::Excluded(s) => {
                s.0.saturating_add(1) < view.first && !self.last_retired(s.0, view.first)?
            }
            Bound::Unbounded => false,
        };
        if below_first {
            let seq = match range.lower {
                Bound::Included(s) | Bound::Excluded(s) => s,
                Bound::Unbounded => Seq(view.first),
            };
            return Err(LogError::Truncated {
                seq,
                first: Seq(view.first),
            });
        }
        let (out, last_end) = if range.reverse {
            self.read_back(range, view)?
        } else {
            self.read_fwd(range, view)?
        };
        if let Some(seq) = out.last_seq() {
            lock(&self.cache).insert(seq.0, last_end);
        }
        Ok(out)
    }

    /// The records, and the logical end of the last one.
    fn read_fwd(&self, range: &ReadRange, view: &View) -> Result<(Chunk, u64), LogError> {
        let known = |s: u64| lock(&self.cache).end_of(s);
        let mut x = match range.lower {
            Bound::Unbounded => view.first,
            Bound::Included(s) if known(s.0).is_some() => s.0,
            Bound::Included(s) => self.seek(s.0, view)?,
            Bound::Excluded(s) => match known(s.0) {
                Some(end) => end,
                None => self.seek(s.0.saturating_add(1), view)?,
            },
        };
        let mut out = Chunk::new();
        let mut bytes = 0;
        let mut last_end = 0;
        let ctx = self.ctx();
        while x < view.end && out.len() < range.max && bytes < range.max_bytes {
            let (seg, hi) = self.segment(x, view)?;
            let file = self.file(&seg, x)?;
            let hi_pos = seg.pos(hi);
            let mut chunks = Chunks::new(&*file, SEG_HEADER, hi_pos);
            let mut p = seg.pos(x);
            let (from, before) = (p, out.len());
            while p < hi_pos && out.len() < range.max && bytes < range.max_bytes {
                let seq = Seq(seg.seq(p));
                if !range.contains(seq) {
                    return Ok((out, last_end));
                }
                chunks.progress(from, out.len() - before, range.max - out.len());
                let f = frame_at(&mut chunks, &seg, p, hi_pos)
                    .map_err(|b| bad_to_error(ctx, &seg, p, b))?;
                push(&mut out, seq, &chunks, p, &f, range.values);
                p += f.frame_len();
                last_end = seg.seq(p);
                bytes += f.len as usize;
            }
            x = seg.seq(p);
        }
        Ok((out, last_end))
    }

    /// The records, newest first, and the logical end of the last (oldest) one.
    fn read_back(&self, range: &ReadRange, view: &View) -> Result<(Chunk, u64), LogError> {
        let known = |s: u64| lock(&self.cache).end_of(s);
        // `x` is a boundary: the read returns the frames that end at or before it.
        let mut x = match range.upper {
            Bound::Unbounded => view.end,
            Bound::Included(s) if s.0 >= view.last => view.end,
            Bound::Included(s) => match known(s.0) {
                Some(end) => end,
                None => self.seek(s.0.saturating_add(1), view)?,
            },
            Bound::Excluded(s) if known(s.0).is_some() => s.0,
            Bound::Excluded(s) => self.seek(s.0, view)?,
        };
        let mut out = Chunk::new();
        let mut bytes = 0;
        let mut last_end = 0;
        let ctx = self.ctx();
        while x > view.first && out.len() < range.max && bytes < range.max_bytes {
            let (seg, _) = self.segment(x - 1, view)?;
            let file = self.file(&seg, x - 1)?;
            let mut p = seg.pos(x);
            let mut chunks = Chunks::new(&*file, SEG_HEADER, p);
            let (from, before) = (p, out.len());
            while p > SEG_HEADER && out.len() < range.max && bytes < range.max_bytes {
                chunks.progress(from, out.len() - before, range.max - out.len());
                let (start, f) = frame_before(&mut chunks, &seg, p, SEG_HEADER)
                    .map_err(|b| bad_before_to_error(ctx, &seg, p, b))?;
                let seq = Seq(seg.seq(start));
                if !range.contains(seq) {
                    return Ok((out, last_end));
                }
                push(&mut out, seq, &chunks, start, &f, range.values);
                last_end = seg.seq(p);
                p = start;
                bytes += f.len as usize;
            }
            x = seg.seq(p);
        }
        Ok((out, last_end))
    }
}

/// Add the record of the frame at `pos`, just read by `chunks`, to `out`: its value (a range of
/// the chunks' buffer), or an empty one when the read wants no values.
fn push(out: &mut Chunk, seq: Seq, chunks: &Chunks<'_>, pos: u64, header: &Header, values: bool) {
    if values {
        let (buf, range) = chunks.payload(pos, header);
        out.push(seq, buf, range);
    } else {
        // Consecutive empty values share the empty buffer: no allocation per record.
        static EMPTY: Bytes = Bytes::new();
        out.push(seq, &EMPTY, 0..0);
    }
}
