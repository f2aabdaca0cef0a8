//! Opening a log directory: find the segments, validate the tail, cut a torn tail.
//!
//! Only the last segment can hold frames that were never synced: the writer syncs a segment
//! before it creates the next one. So open checks the sealed segments' lengths (metadata only)
//! and reads just the tail of the last one; the cost does not grow with the log.
//!
//! The tail algorithm relies on each frame's *watermark*: the file offset below which its segment
//! was synced when the frame was written. Bytes past the newest watermark were never known to be
//! durable, so after a power loss they can hold any mix of old, new and zeroed sectors; bytes below
//! it were synced, so damage there is corruption, never a torn write.
//!
//! 1. Search backwards from the end of the file for the last frame that fully checks (its CRC is
//!    salted with its position, so a frame embedded in a payload never matches). Its watermark `w`
//!    bounds the torn window; with no such frame `w` is the segment's first frame.
//! 2. Walk forwards from `w`, keeping frames while they check; the end is the end of the last frame
//!    that closes a batch. Everything after it (a bad frame, an incomplete batch, garbage) is a
//!    torn tail: cut and synced.
//! 3. Walk backwards from the end over `verify_tail_bytes` more (at least one frame), checking
//!    every frame: any failure there is [`LogError::Corrupt`].

use std::sync::Arc;

use flume_core::LogError;

use crate::frame::{self, SEG_HEADER};
use crate::options::Options;
use crate::segment::{
    Bad, Chunks, Ctx, Segment, bad_before_to_error, check_header, frame_at, frame_before,
};
use crate::storage::{Storage, StorageFile};

/// The state of the log found on disk.
pub(crate) struct Recovered {
    /// Ascending by base; tile the logical space from the first retained offset to `end`.
    pub(crate) segments: Vec<Arc<Segment>>,
    /// Logical end of the valid data.
    pub(crate) end: u64,
    /// Logical start and end of the last record.
    pub(crate) last: Option<(u64, u64)>,
    /// The last segment's file position where appends continue (writable opens).
    pub(crate) tail: Option<(Arc<dyn StorageFile>, u64)>,
    /// Read-only opens: the corruption that stopped the valid data early.
    pub(crate) corruption: Option<LogError>,
}

/// How many times a read-only open starts again when the last segment shrank under it.
const SHRUNK_RETRIES: u32 = 10;

pub(crate) fn recover(storage: &dyn Storage, opts: &Options) -> Result<Recovered, LogError> {
    let mut retries = 0;
    loop {
        match recover_once(storage, opts) {
            Err(e) if opts.read_only && shrunk(&e) && retries < SHRUNK_RETRIES => retries += 1,
            done => return done,
        }
    }
}

/// Whether `e` is a read past the end of a file: beside a live writer, the last segment's file
/// shrinks when the writer cuts its zeros (it seals the segment or closes the log), so a reader
/// that sized the file before may read past its new end; reading again sees the frames whole.
pub(crate) fn shrunk(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof)
}

fn recover_once(storage: &dyn Storage, opts: &Options) -> Result<Recovered, LogError> {
    let ctx = Ctx { storage };
    let writable = !opts.read_only;
    let dir_err = |e| ctx.io("", e);
    let mut bases = Vec::new();
    let mut removed = false;
    for name in storage.list().map_err(dir_err)? {
        if let Some(base) = frame::parse_segment_name(&name) {
            bases.push(base);
        } else if writable && name.ends_with(".log.tmp") {
            // A segment whose creation never completed: it never held a frame.
            storage.remove(&name).map_err(|e| ctx.io(&name, e))?;
            removed = true;
        }
    }
    if removed {
        storage.sync_dir().map_err(dir_err)?;
    }
    bases.sort_unstable();
    let Some(&last_base) = bases.last() else {
        if !writable {
            return Ok(Recovered {
                segments: Vec::new(),
                end: 0,
                last: None,
                tail: None,
                corruption: None,
            });
        }
        let file = create_segment(ctx, 0, None)?;
        return Ok(Recovered {
            segments: vec![Arc::new(Segment::new(0, Some(file.clone())))],
            end: 0,
            last: None,
            tail: Some((file, SEG_HEADER)),
            corruption: None,
        });
    };

    // Sealed segments were synced whole before their successor existed: their lengths must tile.
    let mut segments = Vec::with_capacity(bases.len());
    for pair in bases.windows(2) {
        let name = frame::segment_name(pair[0]);
        let len = storage.file_len(&name).map_err(|e| ctx.io(&name, e))?;
        if len < SEG_HEADER || pair[0].checked_add(len - SEG_HEADER) != Some(pair[1]) {
            return Err(ctx.corrupt(
                &name,
                len,
                format!(
                    "the segment's length does not reach the next segment's first offset {}: a segment is damaged or missing",
                    pair[1]
                ),
            ));
        }
        segments.push(Arc::new(Segment::new(pair[0], None)));
    }

    let name = frame::segment_name(last_base);
    let file = storage
        .open(&name, writable)
        .map_err(|e| ctx.io(&name, e))?;
    let seg = Arc::new(Segment::new(last_base, Some(file.clone())));
    check_header(ctx, &name, &*file, last_base)?;
    let len = file.len().map_err(|e| ctx.io(&name, e))?;

    let mut corruption = None;
    let (end, last) = match scan_tail(ctx, &seg, &*file, len, opts.verify_tail_bytes) {
        Ok(t) => t,
        Err(e @ LogError::Corrupt { .. }) if !writable => {
            corruption = Some(e);
            scan_until_bad(ctx, &seg, &*file, len)?
        }
        Err(e) => return Err(e),
    };
    if writable {
        if end < len {
            file.set_len(end).map_err(|e| ctx.io(&name, e))?;
        }
        // Also makes durable a valid tail that a crashed process left only in the page cache:
        // new frames will name `end` as their watermark.
        file.sync_data().map_err(|e| ctx.io(&name, e))?;
    }
    let mut last = last.map(|(s, e)| (seg.seq(s), seg.seq(e)));
    segments.push(seg.clone());
    if last.is_none() {
        last = last_of_sealed(ctx, &segments[..segments.len() - 1])?;
    }
    Ok(Recovered {
        end: seg.seq(end),
        segments,
        last,
        tail: writable.then_some((file, end)),
        corruption,
    })
}

/// Steps 1–3 of the module docs: the end of the valid data (a file position) and the file
/// positions of the last frame.
fn scan_tail(
    ctx: Ctx<'_>,
    seg: &Segment,
    file: &dyn StorageFile,
    len: u64,
    verify_bytes: u64,
) -> Result<(u64, Option<(u64, u64)>), LogError> {
    let mut chunks = Chunks::new(file, SEG_HEADER, len);

    // 1. The newest frame that checks, and its watermark.
    let mut p = search_from(file, len).map_err(|e| ctx.io(&seg.name, e))?;
    let mut watermark = SEG_HEADER;
    while p >= SEG_HEADER + frame::OVERHEAD {
        match frame_before(&mut chunks, seg, p, SEG_HEADER) {
            Ok((_, f)) => {
                watermark = f.watermark;
                break;
            }
            Err(Bad::Io(e)) => return Err(ctx.io(&seg.name, e)),
            Err(Bad::Frame(_)) => p -= 1,
        }
    }

    // 2. Forward from the watermark: whole batches only.
    let mut end = watermark;
    let mut p = watermark;
    while p < len {
        match frame_at(&mut chunks, seg, p, len) {
            Ok(f) => {
                p += f.frame_len();
                if f.batch_end() {
                    end = p;
                }
            }
            Err(Bad::Io(e)) => return Err(ctx.io(&seg.name, e)),
            Err(Bad::Frame(_)) => break,
        }
    }

    // 3. Backward from the end: below the watermark every frame was synced, so must check.
    let mut q = end;
    let mut last = None;
    while q > SEG_HEADER {
        match frame_before(&mut chunks, seg, q, SEG_HEADER) {
            Ok((s, f)) => {
                if last.is_none() {
                    if !f.batch_end() {
                        return Err(ctx.corrupt(
                            &seg.name,
                            s,
                            "the last frame before a synced point does not close its batch",
                        ));
                    }
                    last = Some((s, q));
                }
                q = s;
            }
            Err(Bad::Io(e)) => return Err(ctx.io(&seg.name, e)),
            Err(Bad::Frame(reason)) => {
                return Err(ctx.corrupt(
                    &seg.name,
                    q,
                    format!("the frame ending at this offset, below a synced point: {reason}"),
                ));
            }
        }
        if end - q >= verify_bytes {
            break;
        }
    }
    Ok((end, last))
}

/// Where step 1 starts: past the last non-zero byte, skipping the zeros a writer keeps ahead of
/// its frames (up to 1 MiB, see `PREFILL` in the writer) without testing each position. No frame
/// that checks ends more than 12 bytes after its last non-zero byte: its trailer repeats its
/// length, and an empty record's frame has its watermark (at least 32) in its last 12 bytes.
fn search_from(file: &dyn StorageFile, len: u64) -> std::io::Result<u64> {
    Ok(last_nonzero(file, SEG_HEADER, len)?.map_or(SEG_HEADER, |z| (z + 12).min(len)))
}

/// The length of the segment file at `path` without the zeros its writer keeps ahead of its
/// frames (docs/design.md §5): the end of its last non-zero byte. A live segment's file grows
/// only once per MiB, so a process that watches a log for appends (as `flume stream --live`
/// does) compares this instead. Reads backwards from the end, up to 1 MiB for a live segment;
/// a sealed segment ends with a frame, so this is its length.
///
/// # Errors
/// Opening or reading the file.
pub fn written_len(path: &std::path::Path) -> std::io::Result<u64> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"))?;
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    let file = crate::FsStorage::existing(dir).open(&name.to_string_lossy(), false)?;
    let len = file.len()?;
    Ok(last_nonzero(&*file, 0, len)?.map_or(0, |z| z + 1))
}

/// The position of the last non-zero byte in `[lo, hi)` of `file`, reading backwards.
pub(crate) fn last_nonzero(
    file: &dyn StorageFile,
    lo: u64,
    hi: u64,
) -> std::io::Result<Option<u64>> {
    const BLOCK: u64 = 64 << 10;
    const PAGE: usize = 4096;
    let mut buf = vec![0u8; BLOCK.min(hi.saturating_sub(lo)) as usize];
    let mut hi = hi;
    while hi > lo {
        let from = hi.saturating_sub(BLOCK).max(lo);
        let block = &mut buf[..(hi - from) as usize];
        file.read_exact_at(block, from)?;
        // Whole pages first (the check vectorises), then the byte within the last non-zero one.
        if let Some(k) = block.rchunks(PAGE).position(|c| c.iter().any(|&b| b != 0)) {
            let page_lo = block.len().saturating_sub((k + 1) * PAGE);
            let page = &block[page_lo..block.len() - k * PAGE];
            let i = page.iter().rposition(|&b| b != 0).unwrap_or(0);
            return Ok(Some(from + (page_lo + i) as u64));
        }
        hi = from;
    }
    Ok(None)
}

/// Read-only fallback after corruption: the valid whole batches before the first bad frame.
/// Reads the whole last segment, which only damaged logs pay.
fn scan_until_bad(
    ctx: Ctx<'_>,
    seg: &Segment,
    file: &dyn StorageFile,
    len: u64,
) -> Result<(u64, Option<(u64, u64)>), LogError> {
    let mut chunks = Chunks::new(file, SEG_HEADER, len);
    let (mut p, mut end, mut last) = (SEG_HEADER, SEG_HEADER, None);
    while p < len {
        match frame_at(&mut chunks, seg, p, len) {
            Ok(f) => {
                let start = p;
                p += f.frame_len();
                if f.batch_end() {
                    end = p;
                    last = Some((start, p));
                }
            }
            Err(Bad::Io(e)) => return Err(ctx.io(&seg.name, e)),
            Err(Bad::Frame(_)) => break,
        }
    }
    Ok((end, last))
}

/// The last record of the newest non-empty sealed segment (the last segment may be empty).
fn last_of_sealed(ctx: Ctx<'_>, sealed: &[Arc<Segment>]) -> Result<Option<(u64, u64)>, LogError> {
    for seg in sealed.iter().rev() {
        let file = seg.file(ctx)?;
        let len = file.len().map_err(|e| ctx.io(&seg.name, e))?;
        if len == SEG_HEADER {
            continue;
        }
        let mut chunks = Chunks::new(&*file, SEG_HEADER, len);
        let (s, _) = frame_before(&mut chunks, seg, len, SEG_HEADER)
            .map_err(|b| bad_before_to_error(ctx, seg, len, b))?;
        return Ok(Some((seg.seq(s), seg.seq(len))));
    }
    Ok(None)
}

/// Create a segment so that it either exists complete or not at all: write the header to a
/// temporary name, sync it, rename it, sync the directory. `before` is the length of the frame
/// just before `base`, when known (see [`frame::encode_segment_header`]).
pub(crate) fn create_segment(
    ctx: Ctx<'_>,
    base: u64,
    before: Option<u64>,
) -> Result<Arc<dyn StorageFile>, LogError> {
    let storage = ctx.storage;
    let name = frame::segment_name(base);
    let tmp = format!("{name}.tmp");
    let io = |e| ctx.io(&name, e);
    if storage.file_len(&tmp).is_ok() {
        storage.remove(&tmp).map_err(io)?;
    }
    let file = storage.create(&tmp).map_err(io)?;
    file.write_all_at(&frame::encode_segment_header(base, before), 0)
        .map_err(io)?;
    file.sync_data().map_err(io)?;
    storage.rename(&tmp, &name).map_err(io)?;
    storage.sync_dir().map_err(io)?;
    Ok(file)
}
