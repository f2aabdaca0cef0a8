//! One segment file: its place in the logical offset space, its lazily opened handle, its index,
//! and the chunked reader that walks its frames.

use std::io;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use flume_core::LogError;

use crate::frame::{self, SEG_HEADER};
use crate::index::Index;
use crate::log::lock;
use crate::storage::{Storage, StorageFile};

/// Bytes read per I/O when walking frames: large enough to amortise the call over many small
/// records, small enough to keep readers' memory low.
pub(crate) const CHUNK: usize = 256 << 10;

/// What every read needs to name files in errors and bound allocations.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) storage: &'a dyn Storage,
}

impl Ctx<'_> {
    pub(crate) fn corrupt(&self, name: &str, offset: u64, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            file: self.storage.path(name),
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(&self, name: &str, source: io::Error) -> LogError {
        LogError::Io {
            path: self.storage.path(name),
            source,
        }
    }
}

/// A segment: frames whose logical offsets start at `base`. File offset `p` holds logical offset
/// `base + p - SEG_HEADER`, so segments tile the logical space without gaps.
pub(crate) struct Segment {
    pub(crate) base: u64,
    pub(crate) name: String,
    file: OnceLock<Arc<dyn StorageFile>>,
    index: Mutex<Index>,
}

impl Segment {
    pub(crate) fn new(base: u64, file: Option<Arc<dyn StorageFile>>) -> Self {
        let cell = OnceLock::new();
        if let Some(f) = file {
            let _ = cell.set(f);
        }
        Segment {
            base,
            name: frame::segment_name(base),
            file: cell,
            index: Mutex::new(Index::new()),
        }
    }

    /// The file position of logical offset `seq` (which must be ≥ base).
    pub(crate) fn pos(&self, seq: u64) -> u64 {
        seq - self.base + SEG_HEADER
    }

    /// The logical offset of file position `pos`.
    pub(crate) fn seq(&self, pos: u64) -> u64 {
        self.base + pos - SEG_HEADER
    }

    /// The file, opened (and its header checked) on first use: a log of many segments keeps
    /// descriptors only for those it reads.
    pub(crate) fn file(&self, ctx: Ctx<'_>) -> Result<Arc<dyn StorageFile>, LogError> {
        if let Some(f) = self.file.get() {
            return Ok(f.clone());
        }
        let f = ctx
            .storage
            .open(&self.name, false)
            .map_err(|e| ctx.io(&self.name, e))?;
        check_header(ctx, &self.name, &*f, self.base)?;
        Ok(self.file.get_or_init(|| f).clone())
    }

    pub(crate) fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The bases of the segment files in `storage`, oldest first.
pub(crate) fn listed_bases(storage: &dyn Storage) -> io::Result<Vec<u64>> {
    let mut bases: Vec<u64> = storage
        .list()?
        .iter()
        .filter_map(|name| frame::parse_segment_name(name))
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Whether the segment at `base`, whose file was just not found, was retired by a writer (this
/// process's or another's) after it was listed: retirements delete the oldest segment first, so
/// then no segment file at or below `base` is listed any more. A file missing while an older
/// one is still listed is a hole, not a retirement; so is a directory with no segment file
/// left, as a writer keeps the segment holding its last record.
///
/// `Some(lowest)`, the oldest segment listed now, when it was retired.
pub(crate) fn retired_since_listed(storage: &dyn Storage, base: u64) -> io::Result<Option<u64>> {
    let lowest = listed_bases(storage)?.first().copied();
    Ok(lowest.filter(|&lowest| lowest > base))
}

/// Read a segment file's header and check it against the segment's `base`. Damage (a file too
/// short to hold it, a wrong magic, version or base) is `Corrupt` at offset 0; any other failure
/// to read is `Io`: it says nothing about the data, and `repair` must not cut for it.
pub(crate) fn check_header(
    ctx: Ctx<'_>,
    name: &str,
    file: &dyn StorageFile,
    base: u64,
) -> Result<(), LogError> {
    read_header(ctx, name, file, base).map(|_| ())
}

/// The seq of the last record before segment `base` (the previous segment's last), when its
/// header records that frame's length: it does unless the segment is the log's first or was
/// written before the field existed. Errors as [`check_header`].
pub(crate) fn seq_before(
    ctx: Ctx<'_>,
    name: &str,
    file: &dyn StorageFile,
    base: u64,
) -> Result<Option<u64>, LogError> {
    let h = read_header(ctx, name, file, base)?;
    Ok(frame::frame_before_segment(&h).and_then(|n| base.checked_sub(n)))
}

/// The header of a segment file, checked as [`check_header`] says.
fn read_header(
    ctx: Ctx<'_>,
    name: &str,
    file: &dyn StorageFile,
    base: u64,
) -> Result<[u8; SEG_HEADER as usize], LogError> {
    let mut h = [0u8; SEG_HEADER as usize];
    match file.read_exact_at(&mut h, 0) {
        Ok(()) => frame::check_segment_header(&h, base)
            .map(|()| h)
            .map_err(|r| ctx.corrupt(name, 0, r)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(ctx.corrupt(name, 0, "segment header is missing"))
        }
        Err(e) => Err(ctx.io(name, e)),
    }
}

/// Reads a file region by chunks, so walking many small frames costs few system calls. Payloads
/// are handed out as ranges of the chunk's buffer, without copying.
pub(crate) struct Chunks<'a> {
    file: &'a dyn StorageFile,
    /// The last load: its first `filled` bytes hold the file from `start` (a pooled buffer is
    /// longer than most loads).
    buf: Bytes,
    filled: usize,
    start: u64,
    /// Reads never leave `[lo, hi)`.
    lo: u64,
    hi: u64,
    /// Read-ahead: starts small (a `get` or a short read stays cheap) and doubles with every
    /// load up to `max_ahead` (scans amortise their system calls).
    ahead: u64,
    max_ahead: u64,
    /// A walk that stops after a number of frames ([`Chunks::progress`]).
    quota: Option<Quota>,
}

/// How far a walk that stops after a number of frames has come: a load then reads ahead only
/// about as far as the frames still wanted reach (at the average size of those walked), so a
/// read of a thousand small records does not copy a chunk it will not use.
#[derive(Clone, Copy)]
struct Quota {
    /// Where the walk started.
    from: u64,
    /// Frames walked since `from`, and frames still wanted.
    done: u64,
    left: u64,
}

impl<'a> Chunks<'a> {
    pub(crate) fn new(file: &'a dyn StorageFile, lo: u64, hi: u64) -> Self {
        Chunks {
            file,
            buf: Bytes::new(),
            filled: 0,
            start: 0,
            lo,
            hi,
            ahead: 16 << 10,
            max_ahead: CHUNK as u64,
            quota: None,
        }
    }

    /// The walk that started at `from` has walked `done` frames and wants at most `left` more.
    pub(crate) fn progress(&mut self, from: u64, done: usize, left: usize) {
        self.quota = Some(Quota {
            from,
            done: done as u64,
            left: left as u64,
        });
    }

    /// How far a load at `pos` reads ahead: as far as the frames a walk still wants reach (an
    /// eighth more, for variation), up to `max_ahead`; else `ahead`.
    fn reach(&self, pos: u64) -> u64 {
        match self.quota {
            Some(q) if q.done > 0 => {
                let need = (pos.abs_diff(q.from) / q.done).saturating_mul(q.left);
                need.saturating_add(need / 8).min(self.max_ahead)
            }
            _ => self.ahead,
        }
    }

    /// Read at most `n` bytes beyond what is asked (default: up to [`CHUNK`]).
    pub(crate) fn ahead(mut self, n: u64) -> Self {
        self.ahead = n;
        self.max_ahead = n;
        self
    }

    fn covers(&self, pos: u64, n: u64) -> bool {
        pos >= self.start && pos + n <= self.start + self.filled as u64
    }

    /// `n` bytes at `pos`, reading ahead (forward walks). The caller checks `pos + n <= hi`.
    /// Borrowed: checking a frame costs no reference count; only payloads are shared out.
    pub(crate) fn get(&mut self, pos: u64, n: u64) -> io::Result<&[u8]> {
        if !self.covers(pos, n) {
            let len = n
                .max(self.reach(pos))
                .min(self.hi.saturating_sub(pos))
                .max(n);
            self.load(pos, len)?;
        }
        Ok(self.borrow(pos, n))
    }

    /// `n` bytes at `pos`, reading behind (backward walks). The caller checks `pos >= lo`.
    pub(crate) fn get_back(&mut self, pos: u64, n: u64) -> io::Result<&[u8]> {
        if !self.covers(pos, n) {
            let end = pos + n;
            let start = end.saturating_sub(self.reach(pos)).max(self.lo).min(pos);
            self.load(start, end - start)?;
        }
        Ok(self.borrow(pos, n))
    }

    fn borrow(&self, pos: u64, n: u64) -> &[u8] {
        let at = (pos - self.start) as usize;
        &self.buf[at..at + n as usize]
    }

    /// The payload of the frame at `pos`, which was just returned by `get`/`get_back`: the
    /// buffer it lies in and its range there.
    pub(crate) fn payload(&self, pos: u64, header: &frame::Header) -> (&Bytes, Range<usize>) {
        let at = (pos - self.start) as usize + frame::HEADER;
        (&self.buf, at..at + header.len as usize)
    }

    fn load(&mut self, start: u64, len: u64) -> io::Result<()> {
        let len = len as usize;
        let mut v = buffer(len);
        // Nothing is valid until the read succeeds.
        self.filled = 0;
        let read = self.file.read_exact_at(&mut v[..len], start);
        recycle(std::mem::replace(&mut self.buf, Bytes::from(v)));
        read?;
        self.filled = len;
        self.start = start;
        self.ahead = (self.ahead * 2).min(self.max_ahead);
        Ok(())
    }
}

impl Drop for Chunks<'_> {
    /// The last buffer goes back to the pool too (its payloads may outlive the walk).
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.buf));
    }
}

/// Read buffers whose payloads may still be in use; reused once nothing points into them.
/// Fresh buffers cost an allocation, page faults and zeroing; reused ones do not. Every pooled
/// buffer is [`CHUNK`] bytes long, all of them initialised once, so any free one serves any
/// load of [`POOLED_LENS`] as it is. Enough for a few streams each holding a chunk of records,
/// one being read ahead and one being freed (one or two buffers each).
static POOL: Mutex<Vec<Bytes>> = Mutex::new(Vec::new());
const POOLED: usize = 16;

/// Loads of these sizes use pooled buffers; a smaller one (a `get`, the end of a read) gets a
/// buffer of its own size, and so does a larger one (a frame larger than a chunk).
const POOLED_LENS: std::ops::RangeInclusive<usize> = (16 << 10)..=CHUNK;

/// A buffer of at least `len` bytes: a pooled one nobody shares any more, or a new one.
fn buffer(len: usize) -> Vec<u8> {
    if !POOLED_LENS.contains(&len) {
        return vec![0; len];
    }
    let free = {
        let mut pool = lock(&POOL);
        let i = pool.iter().position(Bytes::is_unique);
        i.map(|i| pool.swap_remove(i))
    };
    // Only the pool held it, under the lock: it is still unique.
    match free.map(Bytes::try_into_mut) {
        Some(Ok(unique)) => Vec::from(unique),
        _ => vec![0; CHUNK],
    }
}

/// Pool a buffer replaced by a load, if it is one of the [`CHUNK`]-long ones.
fn recycle(old: Bytes) {
    if old.len() == CHUNK {
        let mut pool = lock(&POOL);
        if pool.len() < POOLED {
            pool.push(old);
        }
    }
}

/// Why a frame failed: `Err` carries the reason; I/O errors are separate.
pub(crate) enum Bad {
    Io(io::Error),
    Frame(&'static str),
}

impl From<io::Error> for Bad {
    fn from(e: io::Error) -> Self {
        Bad::Io(e)
    }
}

/// Read and fully check the frame starting at file position `pos`, which must end by `hi`; its
/// header. Its payload is in `chunks` ([`Chunks::payload`]) until their next load.
pub(crate) fn frame_at(
    chunks: &mut Chunks<'_>,
    seg: &Segment,
    pos: u64,
    hi: u64,
) -> Result<frame::Header, Bad> {
    if pos + frame::OVERHEAD > hi {
        return Err(Bad::Frame("frame header runs past the end of the data"));
    }
    let h = chunks.get(pos, frame::HEADER as u64)?;
    let header = frame::parse_header(h, pos).map_err(Bad::Frame)?;
    if pos + header.frame_len() > hi {
        return Err(Bad::Frame("frame runs past the end of the data"));
    }
    let bytes = chunks.get(pos, header.frame_len())?;
    frame::verify(bytes, seg.seq(pos), &header).map_err(Bad::Frame)?;
    Ok(header)
}

/// Read and fully check the frame ending at file position `end`, which must start at or after `lo`;
/// where it starts, and its header (its payload as [`frame_at`]'s).
pub(crate) fn frame_before(
    chunks: &mut Chunks<'_>,
    seg: &Segment,
    end: u64,
    lo: u64,
) -> Result<(u64, frame::Header), Bad> {
    if end < lo + frame::OVERHEAD {
        return Err(Bad::Frame(
            "frame trailer points before the segment's start",
        ));
    }
    let t = chunks.get_back(end - frame::TRAILER as u64, frame::TRAILER as u64)?;
    let len = frame::trailer_len(t);
    let start = end.saturating_sub(frame::OVERHEAD + u64::from(len));
    if start < lo {
        return Err(Bad::Frame(
            "frame trailer points before the segment's start",
        ));
    }
    let bytes = chunks.get_back(start, end - start)?;
    let header = frame::parse_header(bytes, start).map_err(Bad::Frame)?;
    if header.len != len {
        return Err(Bad::Frame("frame trailer does not match its header"));
    }
    frame::verify(bytes, seg.seq(start), &header).map_err(Bad::Frame)?;
    Ok((start, header))
}

/// Map a frame failure at a known frame boundary to the log's error: corruption, since the
/// frame was acknowledged.
pub(crate) fn bad_to_error(ctx: Ctx<'_>, seg: &Segment, pos: u64, bad: Bad) -> LogError {
    match bad {
        Bad::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => ctx.corrupt(
            &seg.name,
            pos,
            "the segment file is shorter than the log's data",
        ),
        Bad::Io(e) => ctx.io(&seg.name, e),
        Bad::Frame(reason) => ctx.corrupt(&seg.name, pos, reason),
    }
}

/// [`bad_to_error`] for a frame read backwards from `end`: where it starts is not known (the
/// damaged bytes may be its trailer), so the error names where it ends, and says so.
pub(crate) fn bad_before_to_error(ctx: Ctx<'_>, seg: &Segment, end: u64, bad: Bad) -> LogError {
    match bad {
        Bad::Frame(reason) => ctx.corrupt(
            &seg.name,
            end,
            format!("the frame ending at this offset: {reason}"),
        ),
        bad => bad_to_error(ctx, seg, end, bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::mem::MemFile;

    /// An 8 MiB file.
    fn file() -> MemFile {
        MemFile::new(vec![0; 8 << 20])
    }

    /// Walk `want` frames of `size` bytes from `from` (forwards or backwards) as the reader does,
    /// telling the chunks its progress; the bytes read from the file.
    fn walk(want: usize, size: u64, reverse: bool) -> u64 {
        let file = file();
        let from = 4 << 20;
        let mut chunks = Chunks::new(&file, 0, 8 << 20);
        for done in 0..want {
            chunks.progress(from, done, want - done);
            let step = done as u64 * size;
            let got = if reverse {
                chunks.get_back(from - step - size, size).map(<[u8]>::len)
            } else {
                chunks.get(from + step, size).map(<[u8]>::len)
            };
            assert_eq!(got.expect("in the file"), size as usize);
        }
        file.bytes_read()
    }

    /// A read of a thousand small records copies about those records, not a whole chunk beyond
    /// them (it used to read twice what it returned), and in few loads.
    #[test]
    fn a_walk_of_a_known_number_of_frames_reads_about_that_much() {
        for reverse in [false, true] {
            let walked = 1024 * 120;
            let read = walk(1024, 120, reverse);
            assert!(read >= walked, "{read} < {walked}");
            assert!(
                read <= walked + walked / 8 + (16 << 10),
                "read {read} for {walked}"
            );
        }
    }

    /// Without a known end the read-ahead grows to a whole chunk, and large frames are read whole.
    #[test]
    fn an_open_ended_walk_reads_ahead_by_chunks() {
        let read = walk(1, 300 << 10, false);
        assert_eq!(read, 300 << 10);
        let file = file();
        let mut chunks = Chunks::new(&file, 0, 8 << 20);
        let mut pos = 0;
        while pos < (1 << 20) {
            chunks.get(pos, 100).expect("in the file");
            pos += 100;
        }
        let read = file.bytes_read();
        assert!(read >= 1 << 20 && read < (1 << 20) + CHUNK as u64, "{read}");
    }
}
