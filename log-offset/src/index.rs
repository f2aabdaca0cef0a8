//! A sparse in-memory index of one segment's frame boundaries, built lazily.
//!
//! Seqs are byte offsets, so any number can be asked for; only the index can say whether a
//! number is a frame start without trusting bytes that might be the inside of a payload (a
//! record may itself contain valid-looking frames). The index walks the segment's frames from
//! its start once, checking each frame's structure (header fields, trailer equal to header), and
//! keeps one frame start every [`SAMPLE_GAP`] bytes: about 128 KiB per 64 MiB segment. A lookup
//! walks at most one gap's worth of headers from the nearest sample.

use flume_core::LogError;

use crate::frame::{self, SEG_HEADER};
use crate::segment::{Bad, Chunks, Ctx, Segment, bad_to_error};
use crate::storage::StorageFile;

const SAMPLE_GAP: u64 = 4096;

pub(crate) struct Index {
    /// Frame starts (file positions), ascending; the first is the segment's first frame.
    samples: Vec<u64>,
    /// Every frame before this file position was walked; it is a frame boundary.
    covered: u64,
    /// Where the walk met a frame whose structure is broken, and why.
    bad: Option<(u64, &'static str)>,
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            samples: vec![SEG_HEADER],
            covered: SEG_HEADER,
            bad: None,
        }
    }

    /// The first frame start at or after file position `target`, or `hi` (the end of the
    /// acknowledged data in this segment) when there is none before it.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] when a broken frame before `target` hides where frames start, or
    /// when the file ends before `hi`; [`LogError::Io`] when a read fails (a later seek retries).
    pub(crate) fn seek(
        &mut self,
        ctx: Ctx<'_>,
        seg: &Segment,
        file: &dyn StorageFile,
        target: u64,
        hi: u64,
    ) -> Result<u64, LogError> {
        let target = target.max(SEG_HEADER);
        if target >= hi {
            return Ok(hi);
        }
        if self.covered < target && self.bad.is_none() {
            self.extend(ctx, seg, file, target, hi)?;
        }
        if let Some((at, reason)) = self.bad
            && target > at
        {
            return Err(ctx.corrupt(&seg.name, at, reason));
        }
        let i = self.samples.partition_point(|&s| s <= target);
        let mut p = self.samples[i.saturating_sub(1)];
        let mut chunks = Chunks::new(file, SEG_HEADER, self.covered).ahead(2 * SAMPLE_GAP);
        while p < target && p < self.covered {
            // Walked before: the structure is known good.
            let h = chunks
                .get(p, frame::HEADER as u64)
                .map_err(|e| ctx.io(&seg.name, e))?;
            let header = frame::parse_header(h, p).map_err(|r| ctx.corrupt(&seg.name, p, r))?;
            p += header.frame_len();
        }
        Ok(p)
    }

    fn extend(
        &mut self,
        ctx: Ctx<'_>,
        seg: &Segment,
        file: &dyn StorageFile,
        target: u64,
        hi: u64,
    ) -> Result<(), LogError> {
        let mut p = self.covered;
        let mut last = self.samples.last().copied().unwrap_or(SEG_HEADER);
        let mut chunks = Chunks::new(file, SEG_HEADER, hi);
        while p < target && p < hi {
            match structure(&mut chunks, p, hi) {
                Ok(len) => {
                    if p - last >= SAMPLE_GAP {
                        self.samples.push(p);
                        last = p;
                    }
                    p += len;
                }
                Err(Bad::Frame(reason)) => {
                    self.bad = Some((p, reason));
                    break;
                }
                // The file ending before the log's data is corruption; a failed read (EIO) says
                // nothing about the data, and the walk resumes here next time.
                Err(bad) => {
                    self.covered = p;
                    return Err(bad_to_error(ctx, seg, p, bad));
                }
            }
        }
        self.covered = p;
        Ok(())
    }
}

/// The length of the frame at `p` if its structure holds.
fn structure(chunks: &mut Chunks<'_>, p: u64, hi: u64) -> Result<u64, Bad> {
    if p + frame::OVERHEAD > hi {
        return Err(Bad::Frame("frame header runs past the end of the data"));
    }
    let h = chunks.get(p, frame::HEADER as u64)?;
    let header = frame::parse_header(h, p).map_err(Bad::Frame)?;
    let len = header.frame_len();
    if p + len > hi {
        return Err(Bad::Frame("frame runs past the end of the data"));
    }
    let t = chunks.get(p + len - frame::TRAILER as u64, frame::TRAILER as u64)?;
    if frame::trailer_len(t) != header.len {
        return Err(Bad::Frame("frame trailer does not match its header"));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use flume_core::LogError;

    use super::*;
    use crate::frame::FrameBuf;
    use crate::storage::SimStorage;
    use crate::storage::mem::MemFile;

    /// A segment of 1,000 100-byte records; the logical end of its frames.
    fn segment() -> (Vec<u8>, u64) {
        let mut frames = FrameBuf::new();
        for i in 0..1000u64 {
            frames.push(frames.len(), &[i as u8; 100], SEG_HEADER, frame::BATCH_END);
        }
        let mut data = frame::encode_segment_header(0, None).to_vec();
        data.extend_from_slice(frames.frames());
        let end = data.len() as u64;
        (data, end)
    }

    /// A read that fails while the index walks the segment is an I/O error, not the corruption
    /// "shorter than the log's data" (it said nothing about the data), and a later seek, once
    /// reads work, finds the frame.
    #[test]
    fn a_failed_read_while_indexing_is_an_io_error() {
        let storage = SimStorage::new();
        let ctx = Ctx { storage: &storage };
        let seg = Segment::new(0, None);
        let (data, end) = segment();
        let target = SEG_HEADER + 900 * 120;
        let mut index = Index::new();
        let failing = MemFile::new(data.clone()).failing_from(end / 2);
        match index.seek(ctx, &seg, &failing, target, end) {
            Err(LogError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(5)),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        let healed = MemFile::new(data);
        assert_eq!(
            index.seek(ctx, &seg, &healed, target, end).ok(),
            Some(target)
        );
    }

    /// A file that ends before the acknowledged data is corruption.
    #[test]
    fn a_file_shorter_than_the_data_is_corruption() {
        let storage = SimStorage::new();
        let seg = Segment::new(0, None);
        let (mut data, end) = segment();
        data.truncate(data.len() / 2);
        let short = MemFile::new(data);
        let got = Index::new().seek(Ctx { storage: &storage }, &seg, &short, end - 120, end);
        assert!(
            matches!(&got, Err(LogError::Corrupt { reason, .. }) if reason.contains("shorter")),
            "{got:?}"
        );
    }
}
