//! Offline checks of a whole log directory, and cutting a log at its first damage.
//!
//! Opening a log validates only its tail (so reopening costs the same for any size); reads check
//! every frame they return. [`verify`] is the complete check: it walks **every frame of every
//! segment**, checking each CRC, header and trailer, that sealed segments end on a whole batch and
//! tile the logical offset space, and it classifies the first failure the way recovery would:
//!
//! - a **torn tail**: bytes after the last whole batch of the last segment that a writable open
//!   would cut (the remains of a crash; never acknowledged data). Not an error.
//! - **corruption**: anything else, that is damage to data that was acknowledged. Reported with the
//!   file and byte offset of the first bad frame.
//!
//! [`Repair`] cuts the log at its first damage, keeping whole batches: the segment holding the
//! damage is truncated at the end of its last whole batch before it (synced) and every later
//! segment is deleted (newest first, then the directory is synced), so a crash midway leaves a
//! log that is still a prefix of the original. It holds the writer lock from the check to the
//! cut, so no writer can append in between.
//!
//! ```
//! use flume_core::{Bytes, Log};
//! use flume_log_offset::{OffsetLog, Options, verify};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = OffsetLog::open(dir.path())?;
//! log.append_batch(vec![Bytes::from("a"), Bytes::from("b")]).await?;
//! log.close().await?;
//! drop(log);
//!
//! let report = verify(dir.path())?;
//! assert_eq!(report.records, 2);
//! assert!(report.is_ok());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flume_core::{LogError, Seq};

use crate::frame::{self, SEG_HEADER};
use crate::options::Options;
use crate::recovery;
use crate::segment::{
    Bad, Chunks, Ctx, Segment, check_header, frame_at, listed_bases, retired_since_listed,
};
use crate::storage::{FsStorage, LockError, LockGuard, Storage, StorageFile};

/// How often (in bytes walked) the progress callback is called.
const PROGRESS_EVERY: u64 = 1 << 20;

/// What [`verify`] found in a log directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The segment files, oldest first.
    pub segments: Vec<SegmentReport>,
    /// Valid records before the first damage (all of them when there is none).
    pub records: u64,
    /// Whole batches among them.
    pub batches: u64,
    /// The seq of the first valid record.
    pub first: Option<Seq>,
    /// The seq of the last record of the last whole batch before the first damage: what a
    /// reader sees.
    pub last: Option<Seq>,
    /// The logical offset where the valid data (whole batches) ends: where [`Repair`] cuts.
    pub end: u64,
    /// The first damage to acknowledged data, if any.
    pub corruption: Option<Damage>,
    /// Bytes after the last whole batch of the last segment that the next writable open cuts
    /// (the remains of an interrupted write). Not an error.
    pub torn_tail: Option<Damage>,
    /// Segment files that were listed but retired (deleted by a writer's retention, which
    /// deletes the oldest first) before they could be checked: not checked, and not an error.
    /// `first` and the counts are of the segments checked, retired since or not.
    pub retired_meanwhile: Vec<PathBuf>,
}

impl VerifyReport {
    /// True when no corruption was found (a torn tail is not corruption).
    pub fn is_ok(&self) -> bool {
        self.corruption.is_none()
    }

    /// Bytes of all segment files, headers included.
    pub fn file_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }
}

/// One segment file as [`verify`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentReport {
    /// The file.
    pub file: PathBuf,
    /// The logical offset of its first frame.
    pub base: u64,
    /// Its length in bytes, header included.
    pub len: u64,
    /// Valid records walked in it (up to the first damage).
    pub records: u64,
}

/// A place where the log stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The segment file.
    pub file: PathBuf,
    /// The segment's base (its first logical offset).
    pub base: u64,
    /// The byte offset in the file of the bad frame (or of the bad header, or where the file
    /// should have ended).
    pub offset: u64,
    /// The same place as a logical offset (a seq, if a record started there).
    pub seq: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    /// What check failed.
    pub reason: String,
}

/// Check every frame of every segment of the log in `dir` (opened with default [`Options`]).
///
/// Takes no lock and changes nothing, so it may run beside a writer; a writer appending
/// meanwhile may show up as a torn tail, and segments its retention deletes before they are
/// reached are listed in [`VerifyReport::retired_meanwhile`].
///
/// # Errors
/// [`LogError::Io`] when the directory or a file cannot be read. Damage is not an error: it is
/// in the report.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, LogError> {
    verify_with(dir, &Options::default(), &mut |_| {})
}

/// [`verify`] with the log's options (recovery's, for the last segment) and a progress callback,
/// called with the number of bytes walked so far (at most every MiB and once per segment).
///
/// # Errors
/// As [`verify`].
pub fn verify_with(
    dir: impl AsRef<Path>,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, LogError> {
    verify_storage(&FsStorage::existing(dir), opts, progress)
}

/// [`verify_with`] over any [`Storage`].
///
/// # Errors
/// As [`verify`].
pub fn verify_storage(
    storage: &dyn Storage,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, LogError> {
    // Beside a live writer the last segment can shrink while it is read (see
    // `recovery::shrunk`): rare (a writer's close or segment switch), so start again.
    let mut retries = 0;
    loop {
        match verify_once(storage, opts, progress) {
            Err(e) if recovery::shrunk(&e) && retries < 3 => retries += 1,
            done => return done,
        }
    }
}

fn verify_once(
    storage: &dyn Storage,
    opts: &Options,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, LogError> {
    let ctx = Ctx { storage };
    let bases = listed_bases(storage).map_err(|e| ctx.io("", e))?;
    let mut report = VerifyReport {
        segments: Vec::with_capacity(bases.len()),
        records: 0,
        batches: 0,
        first: None,
        last: None,
        end: bases.first().copied().unwrap_or(0),
        corruption: None,
        torn_tail: None,
        retired_meanwhile: Vec::new(),
    };
    let mut walked = 0u64;
    for (i, &base) in bases.iter().enumerate() {
        let seg = Segment::new(base, None);
        let path = storage.path(&seg.name);
        let Some((len, file)) = open_listed(ctx, &seg)? else {
            report.retired_meanwhile.push(path);
            continue;
        };
        report.segments.push(SegmentReport {
            file: path.clone(),
            base,
            len,
            records: 0,
        });
        if report.corruption.is_some() {
            continue;
        }
        let damage = |offset: u64, reason: String| Damage {
            file: path.clone(),
            base,
            offset,
            seq: base + offset.saturating_sub(SEG_HEADER),
            bytes: len.saturating_sub(offset),
            reason,
        };
        match check_header(ctx, &seg.name, &*file, base) {
            Ok(()) => {}
            Err(LogError::Corrupt { reason, .. }) => {
                report.corruption = Some(damage(0, reason));
                continue;
            }
            Err(e) => return Err(e),
        }
        let is_last = i + 1 == bases.len();
        // Where the valid data of this segment must end: the whole file for a sealed segment;
        // what recovery keeps for the last one (bytes after it are a torn tail).
        let (hi, ro_corrupt) = if is_last {
            let ro = Options {
                read_only: true,
                ..opts.clone()
            };
            match recovery::recover(storage, &ro) {
                Ok(rec) => (
                    seg.pos(rec.end.max(base)).min(len),
                    rec.corruption.is_some(),
                ),
                Err(LogError::Corrupt { offset, reason, .. }) => {
                    report.corruption = Some(damage(offset, reason));
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else {
            (len, false)
        };
        // Read no further than the walk goes: past a live writer's frames the file may shrink.
        let mut chunks = Chunks::new(&*file, SEG_HEADER, hi);
        let mut walk = Walk::new(SEG_HEADER);
        let stop = walk.run(&mut chunks, &seg, hi, &mut |n| {
            progress(walked + n);
        });
        let seg_report = report.segments.last_mut();
        if let Some(s) = seg_report {
            s.records = walk.records;
        }
        report.records += walk.records;
        report.batches += walk.batches;
        if report.first.is_none() {
            report.first = walk.first.map(|p| Seq(seg.seq(p)));
        }
        if let Some(p) = walk.last {
            report.last = Some(Seq(seg.seq(p)));
        }
        report.end = seg.seq(walk.batch_end);
        walked += len;
        progress(walked);
        match stop {
            Stop::Io(e) => return Err(ctx.io(&seg.name, e)),
            Stop::Bad(pos, reason) => {
                report.corruption = Some(damage(pos, reason.to_string()));
                continue;
            }
            Stop::End => {}
        }
        if walk.batch_end != walk.pos {
            let reason = if is_last {
                "a batch is incomplete below the log's synced end"
            } else {
                "the segment ends inside a batch (its last frame does not close it)"
            };
            report.corruption = Some(damage(walk.batch_end, reason.to_string()));
            continue;
        }
        if is_last {
            if ro_corrupt {
                // Recovery stopped before a bad frame: find it, past the incomplete batch
                // that precedes it.
                let mut rest = Walk::new(hi);
                let mut chunks = Chunks::new(&*file, SEG_HEADER, len);
                let stop = rest.run(&mut chunks, &seg, len, &mut |_| {});
                let (pos, reason) = match stop {
                    Stop::Io(e) => return Err(ctx.io(&seg.name, e)),
                    Stop::Bad(pos, reason) => (pos, reason.to_string()),
                    Stop::End => (rest.pos, "an incomplete batch before a synced point".into()),
                };
                report.corruption = Some(damage(pos, reason));
            } else if hi < len
                && recovery::last_nonzero(&*file, hi, len)
                    .map_err(|e| ctx.io(&seg.name, e))?
                    .is_some()
            {
                // Zeros alone are the space a live (or crashed) writer filled ahead of its
                // frames, not a torn write.
                report.torn_tail = Some(damage(
                    hi,
                    "bytes after the last whole batch (an interrupted write); the next writable open cuts them"
                        .into(),
                ));
            }
        } else if let Some(&next) = bases.get(i + 1)
            && base.checked_add(len - SEG_HEADER) != Some(next)
        {
            report.corruption = Some(damage(
                len,
                format!(
                    "the segment's length does not reach the next segment's first offset {next}: a segment is damaged or missing"
                ),
            ));
        }
    }
    Ok(report)
}

/// A segment file's length and handle.
type Opened = (u64, Arc<dyn StorageFile>);

/// The length and file of a listed segment; `None` when a writer retired it since it was listed.
/// Once open, it reads to the end even if it is deleted meanwhile.
fn open_listed(ctx: Ctx<'_>, seg: &Segment) -> Result<Option<Opened>, LogError> {
    let storage = ctx.storage;
    let opened = storage
        .file_len(&seg.name)
        .and_then(|len| Ok((len, storage.open(&seg.name, false)?)));
    let io = |e| ctx.io(&seg.name, e);
    match opened {
        Ok(open) => Ok(Some(open)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match retired_since_listed(storage, seg.base).map_err(io)? {
                Some(_) => Ok(None),
                None => Err(io(e)),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Why a walk stopped.
enum Stop {
    /// It reached its end.
    End,
    /// A frame failed at this file position.
    Bad(u64, &'static str),
    Io(std::io::Error),
}

/// A forward walk over the frames of one segment, checking each.
struct Walk {
    /// The file position reached: the end of the last valid frame.
    pos: u64,
    /// The end of the last frame that closes a batch.
    batch_end: u64,
    first: Option<u64>,
    /// The start of the last record of the last whole batch.
    last: Option<u64>,
    records: u64,
    batches: u64,
}

impl Walk {
    fn new(pos: u64) -> Self {
        Walk {
            pos,
            batch_end: pos,
            first: None,
            last: None,
            records: 0,
            batches: 0,
        }
    }

    /// Walk frames from `self.pos` up to `hi`; records count once their batch is whole.
    fn run(
        &mut self,
        chunks: &mut Chunks<'_>,
        seg: &Segment,
        hi: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Stop {
        let mut pending = 0u64;
        let mut reported = self.pos;
        while self.pos < hi {
            let f = match frame_at(chunks, seg, self.pos, hi) {
                Ok(f) => f,
                Err(Bad::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Stop::Bad(self.pos, "the file ends inside this frame");
                }
                Err(Bad::Io(e)) => return Stop::Io(e),
                Err(Bad::Frame(reason)) => return Stop::Bad(self.pos, reason),
            };
            let start = self.pos;
            self.pos += f.frame_len();
            self.first.get_or_insert(start);
            pending += 1;
            if f.batch_end() {
                self.batch_end = self.pos;
                self.last = Some(start);
                self.records += pending;
                self.batches += 1;
                pending = 0;
            }
            if self.pos - reported >= PROGRESS_EVERY {
                reported = self.pos;
                progress(self.pos);
            }
        }
        if self.records == 0 {
            self.first = None;
        }
        Stop::End
    }
}

/// How [`Repair`] will cut the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairPlan {
    /// The damage being cut away (a corruption, or else a torn tail).
    pub damage: Damage,
    /// Whether that damage is corruption of acknowledged data (else a torn tail).
    pub corrupt: bool,
    /// The segment that is cut.
    pub file: PathBuf,
    /// Its new length (the end of its last whole batch before the damage).
    pub cut_offset: u64,
    /// The same place as a logical offset: the log's new end; the next append gets this seq.
    pub cut_seq: u64,
    /// The segment's header is damaged: it is replaced by an empty segment.
    pub rewrite_header: bool,
    /// Later segment files that are deleted.
    pub removed: Vec<PathBuf>,
    /// Bytes of log data lost (after the cut, segment headers excluded).
    pub lost_bytes: u64,
    /// Records that still checked and are lost: those of the incomplete batch before the damage
    /// and those of later segments up to their own first bad frame. Records inside or after a
    /// damaged region cannot be counted.
    pub lost_records: u64,
    /// The seq of the first lost record, if one could be read.
    pub first_lost: Option<Seq>,
}

/// A repair in progress: the directory is locked and verified; [`apply`](Repair::apply) cuts.
///
/// ```
/// use flume_log_offset::{Options, Repair};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let repair = Repair::prepare(dir.path(), &Options::default(), &mut |_| {})?;
/// if let Some(plan) = repair.plan() {
///     println!("cutting {} at {}: {} records lost", plan.file.display(), plan.cut_offset, plan.lost_records);
/// }
/// repair.apply()?;
/// # Ok(()) }
/// ```
pub struct Repair {
    storage: Arc<dyn Storage>,
    _lock: LockGuard,
    report: VerifyReport,
    plan: Option<RepairPlan>,
}

impl std::fmt::Debug for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repair")
            .field("report", &self.report)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Repair {
    /// Lock the log in `dir` (no writer may hold it), verify it (see [`verify_with`]) and plan
    /// the cut.
    ///
    /// # Errors
    /// [`LogError::Locked`] when a writer has the log open; [`LogError::Io`].
    pub fn prepare(
        dir: impl AsRef<Path>,
        opts: &Options,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Repair, LogError> {
        Self::prepare_storage(Arc::new(FsStorage::existing(dir)), opts, progress)
    }

    /// [`prepare`](Repair::prepare) over any [`Storage`].
    ///
    /// # Errors
    /// As [`prepare`](Repair::prepare).
    pub fn prepare_storage(
        storage: Arc<dyn Storage>,
        opts: &Options,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Repair, LogError> {
        let lock = storage.lock().map_err(|e| match e {
            LockError::Held { holder } => LogError::Locked { holder },
            LockError::Io(source) => LogError::Io {
                path: storage.path("LOCK"),
                source,
            },
        })?;
        let report = verify_storage(&*storage, opts, progress)?;
        let ctx = Ctx { storage: &*storage };
        // No writer retires under the lock: a segment file gone meanwhile was removed by hand.
        if let Some(path) = report.retired_meanwhile.first() {
            return Err(LogError::Io {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "a segment file was deleted while the log was locked for repair; run the repair again",
                ),
            });
        }
        let plan = plan(ctx, &report)?;
        Ok(Repair {
            storage,
            _lock: lock,
            report,
            plan,
        })
    }

    /// What the check found.
    pub fn report(&self) -> &VerifyReport {
        &self.report
    }

    /// The cut, or `None` when the log has nothing to cut.
    pub fn plan(&self) -> Option<&RepairPlan> {
        self.plan.as_ref()
    }

    /// Cut the log as planned and release the lock. Returns the plan carried out.
    ///
    /// Later segments are deleted newest first and the directory synced; then the damaged
    /// segment is truncated and synced (or, when its header is damaged, replaced by an empty
    /// segment, created and renamed with fsyncs). A crash midway leaves a prefix of the log, and
    /// running the repair again finishes it.
    ///
    /// # Errors
    /// [`LogError::Io`].
    pub fn apply(self) -> Result<Option<RepairPlan>, LogError> {
        let Some(plan) = self.plan else {
            return Ok(None);
        };
        let storage = &*self.storage;
        let ctx = Ctx { storage };
        for path in plan.removed.iter().rev() {
            let name = file_name(path);
            storage.remove(&name).map_err(|e| ctx.io(&name, e))?;
        }
        if !plan.removed.is_empty() {
            storage.sync_dir().map_err(|e| ctx.io("", e))?;
        }
        let name = frame::segment_name(plan.damage.base);
        if plan.rewrite_header {
            // Its `before` is left unknown (the previous segment is not read here): once that
            // segment is retired, a read resuming after its last record is reported truncated.
            recovery::create_segment(ctx, plan.damage.base, None)?;
        } else {
            let file = storage.open(&name, true).map_err(|e| ctx.io(&name, e))?;
            let len = file.len().map_err(|e| ctx.io(&name, e))?;
            if plan.cut_offset < len {
                file.set_len(plan.cut_offset)
                    .map_err(|e| ctx.io(&name, e))?;
            }
            file.sync_data().map_err(|e| ctx.io(&name, e))?;
        }
        Ok(Some(plan))
    }
}

/// Cut the log in `dir` at its first damage (see [`Repair`]); `None` when there was nothing to
/// cut.
///
/// # Errors
/// As [`Repair::prepare`] and [`Repair::apply`].
pub fn repair(dir: impl AsRef<Path>, opts: &Options) -> Result<Option<RepairPlan>, LogError> {
    Repair::prepare(dir, opts, &mut |_| {})?.apply()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Plan the cut at the report's first damage.
fn plan(ctx: Ctx<'_>, report: &VerifyReport) -> Result<Option<RepairPlan>, LogError> {
    let (damage, corrupt) = match (&report.corruption, &report.torn_tail) {
        (Some(d), _) => (d.clone(), true),
        (None, Some(d)) => (d.clone(), false),
        (None, None) => return Ok(None),
    };
    let Some(i) = report.segments.iter().position(|s| s.base == damage.base) else {
        return Ok(None);
    };
    let seg_len = report.segments[i].len;
    let rewrite_header = damage.offset == 0;
    let cut_offset = if rewrite_header {
        SEG_HEADER
    } else {
        (report.end.max(damage.base) - damage.base + SEG_HEADER).min(seg_len)
    };
    let removed: Vec<PathBuf> = report.segments[i + 1..]
        .iter()
        .map(|s| s.file.clone())
        .collect();
    let lost_bytes = seg_len.saturating_sub(cut_offset)
        + report.segments[i + 1..]
            .iter()
            .map(|s| s.len.saturating_sub(SEG_HEADER))
            .sum::<u64>();
    // Count what still reads after the cut: this segment up to the damage, later ones up to
    // their own first bad frame.
    let mut lost_records = 0;
    let mut first_lost = None;
    let mut count = |seg: &Segment, from: u64, hi: u64| -> Result<(), LogError> {
        if from >= hi {
            return Ok(());
        }
        let file = ctx
            .storage
            .open(&seg.name, false)
            .map_err(|e| ctx.io(&seg.name, e))?;
        match check_header(ctx, &seg.name, &*file, seg.base) {
            Ok(()) => {}
            Err(LogError::Corrupt { .. }) => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut chunks = Chunks::new(&*file, SEG_HEADER, hi);
        let mut pos = from;
        while pos < hi {
            match frame_at(&mut chunks, seg, pos, hi) {
                Ok(f) => {
                    first_lost.get_or_insert(Seq(seg.seq(pos)));
                    lost_records += 1;
                    pos += f.frame_len();
                }
                Err(Bad::Io(e)) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                    return Err(ctx.io(&seg.name, e));
                }
                Err(_) => break,
            }
        }
        Ok(())
    };
    if !rewrite_header {
        count(
            &Segment::new(damage.base, None),
            cut_offset,
            damage.offset.min(seg_len),
        )?;
    }
    for s in &report.segments[i + 1..] {
        count(&Segment::new(s.base, None), SEG_HEADER, s.len)?;
    }
    Ok(Some(RepairPlan {
        file: report.segments[i].file.clone(),
        cut_seq: damage.base + cut_offset - SEG_HEADER,
        cut_offset,
        rewrite_header,
        removed,
        lost_bytes,
        lost_records,
        first_lost,
        damage,
        corrupt,
    }))
}
