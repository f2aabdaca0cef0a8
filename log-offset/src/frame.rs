//! The byte layout of segment headers and record frames (see `docs/design.md` §5).
//!
//! A frame is `header (16) | payload (len) | trailer (4)`:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | `len`: payload length, u32 LE |
//! | 4..8 | `crc`: CRC32C of `seq` (u64 LE) ‖ bytes 0..4 ‖ bytes 8..end |
//! | 8..14 | `watermark`: u48 LE, file offset below which the segment was synced when this frame was written |
//! | 14 | `flags`: bit 0 = last frame of its batch; other bits zero |
//! | 15 | reserved, zero |
//! | 16..16+len | payload |
//! | 16+len..20+len | `len` again, u32 LE, so frames can be walked backwards |
//!
//! The CRC is salted with the frame's seq (its logical offset), so a frame copied or embedded at
//! another position (a log stored inside a record, a misdirected write) never validates there.

/// Bytes before the payload.
pub(crate) const HEADER: usize = 16;
/// Bytes after the payload.
pub(crate) const TRAILER: usize = 4;
/// Bytes a frame adds to its payload.
pub(crate) const OVERHEAD: u64 = (HEADER + TRAILER) as u64;
/// The flag of the last frame of a batch: recovery keeps only whole batches.
pub(crate) const BATCH_END: u8 = 1;
/// The largest watermark a header can hold (u48).
const WATERMARK_MAX: u64 = (1 << 48) - 1;

/// Size of the segment file header.
pub(crate) const SEG_HEADER: u64 = 32;
const SEG_MAGIC: &[u8; 8] = b"FLUMELOG";
const SEG_VERSION: u32 = 1;

/// A parsed frame header; structurally plausible, not yet checksummed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) watermark: u64,
    pub(crate) flags: u8,
}

impl Header {
    /// Total bytes of the frame this header starts.
    pub(crate) fn frame_len(&self) -> u64 {
        u64::from(self.len) + OVERHEAD
    }

    pub(crate) fn batch_end(&self) -> bool {
        self.flags & BATCH_END != 0
    }
}

/// Parse a header, rejecting impossible values before anything is allocated for the payload.
///
/// `pos` is the frame's file offset: a watermark above it cannot have been written.
pub(crate) fn parse_header(b: &[u8], pos: u64) -> Result<Header, &'static str> {
    let len = u32_at(b, 0);
    let crc = u32_at(b, 4);
    let word = u64::from_le_bytes(arr(&b[8..16]));
    let watermark = word & WATERMARK_MAX;
    let flags = b[14];
    if b[15] != 0 || flags & !BATCH_END != 0 {
        return Err("frame header has unknown flags");
    }
    if watermark < SEG_HEADER || watermark > pos {
        return Err("frame header has an impossible sync watermark");
    }
    Ok(Header {
        len,
        crc,
        watermark,
        flags,
    })
}

/// Check a whole frame (`frame` holds exactly header, payload and trailer) at logical `seq`.
pub(crate) fn verify(frame: &[u8], seq: u64, header: &Header) -> Result<(), &'static str> {
    debug_assert_eq!(frame.len() as u64, header.frame_len());
    let t = frame.len() - TRAILER;
    if u32_at(frame, t) != header.len {
        return Err("frame trailer does not match its header");
    }
    if checksum(seq, frame) != header.crc {
        return Err("frame checksum mismatch");
    }
    Ok(())
}

/// The trailer's length field of a frame ending at the end of `b`.
pub(crate) fn trailer_len(b: &[u8]) -> u32 {
    u32_at(b, b.len() - TRAILER)
}

pub(crate) fn checksum(seq: u64, frame: &[u8]) -> u32 {
    // `seq ‖ len` in one small buffer: two CRC calls instead of three (per-call overhead
    // dominates for frames of small records). Same value as checksumming the pieces in turn.
    let mut salt = [0u8; 12];
    salt[..8].copy_from_slice(&seq.to_le_bytes());
    salt[8..].copy_from_slice(&frame[0..4]);
    crc32c::crc32c_append(crc32c::crc32c(&salt), &frame[8..])
}

/// Frames encoded for one write.
///
/// The buffer starts with `SALT_ROOM` spare bytes, so that every frame has 4 bytes before it:
/// the spare ones for the first frame, the previous frame's trailer for the others. `push` lays
/// the CRC's input out in place (`seq` over those 4 bytes and the frame's `len`, then `len`
/// over the frame's `crc` field, then the frame's bytes 8..) to checksum it in one call, then
/// puts the borrowed bytes back: one CRC call per frame, not two, halves the CRC's cost for
/// small records (the per-call overhead dominates there).
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
}

/// Spare bytes before the first frame.
const SALT_ROOM: usize = 4;

impl FrameBuf {
    pub(crate) fn new() -> Self {
        FrameBuf {
            buf: vec![0; SALT_ROOM],
        }
    }

    /// The encoded frames.
    pub(crate) fn frames(&self) -> &[u8] {
        &self.buf[SALT_ROOM..]
    }

    /// Bytes of encoded frames.
    pub(crate) fn len(&self) -> u64 {
        (self.buf.len() - SALT_ROOM) as u64
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.len() == SALT_ROOM
    }

    /// Make room for `n` more bytes of frames.
    pub(crate) fn reserve(&mut self, n: u64) {
        self.buf.reserve(usize::try_from(n).unwrap_or(usize::MAX));
    }

    /// Forget the frames; keep the memory unless it exceeds `keep` bytes.
    pub(crate) fn clear(&mut self, keep: usize) {
        if self.buf.capacity() > keep {
            self.buf = vec![0; SALT_ROOM];
        } else {
            self.buf.truncate(SALT_ROOM);
        }
    }

    /// Append one frame for `payload` at logical `seq`.
    pub(crate) fn push(&mut self, seq: u64, payload: &[u8], watermark: u64, flags: u8) {
        // Callers check the record size first; a payload over u32 would be a bug, not input.
        let len = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes();
        debug_assert!(watermark <= WATERMARK_MAX);
        let word = (watermark & WATERMARK_MAX) | (u64::from(flags) << 48);
        let start = self.buf.len();
        let mut header = [0u8; HEADER];
        header[8..16].copy_from_slice(&word.to_le_bytes());
        self.buf.extend_from_slice(&header);
        self.buf.extend_from_slice(payload);
        self.buf.extend_from_slice(&len);
        // The CRC's input in place: `seq ‖ len ‖ frame[8..]` from `start - 4`.
        let salt = start - SALT_ROOM;
        let borrowed: [u8; SALT_ROOM] = arr(&self.buf[salt..start]);
        self.buf[salt..start + 4].copy_from_slice(&seq.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&len);
        let crc = crc32c::crc32c(&self.buf[salt..]);
        self.buf[salt..start].copy_from_slice(&borrowed);
        self.buf[start..start + 4].copy_from_slice(&len);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The segment file header: magic, version, the segment's first logical offset and, when known,
/// the length of the frame just before it (the previous segment's last).
///
/// That length outlives the previous segment: once it is retired, a read that continues after
/// its last record can still be told it missed nothing. It is stored as a u32, 0 when unknown
/// (no previous frame, or one too long to record: the read is then taken as truncated).
pub(crate) fn encode_segment_header(base: u64, before: Option<u64>) -> [u8; SEG_HEADER as usize] {
    let before = before
        .filter(|&n| n >= OVERHEAD)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let mut h = [0u8; SEG_HEADER as usize];
    h[0..8].copy_from_slice(SEG_MAGIC);
    h[8..12].copy_from_slice(&SEG_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    h[24..28].copy_from_slice(&before.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The length of the frame before the segment, as its (checked) header records it.
pub(crate) fn frame_before_segment(h: &[u8]) -> Option<u64> {
    Some(u64::from(u32_at(h, 24))).filter(|&n| n >= OVERHEAD)
}

/// Check a segment header against the base its file name claims.
pub(crate) fn check_segment_header(h: &[u8], base: u64) -> Result<(), String> {
    if h.len() < SEG_HEADER as usize || &h[0..8] != SEG_MAGIC {
        return Err("not a Flume log segment (bad magic)".into());
    }
    if crc32c::crc32c(&h[0..28]) != u32_at(h, 28) {
        return Err("segment header checksum mismatch".into());
    }
    let version = u32_at(h, 8);
    if version != SEG_VERSION {
        return Err(format!(
            "segment format version {version} is not supported (this build reads version {SEG_VERSION})"
        ));
    }
    let stored = u64::from_le_bytes(arr(&h[16..24]));
    if stored != base {
        return Err(format!(
            "segment header says it starts at {stored}, its file name says {base}"
        ));
    }
    Ok(())
}

/// The file name of the segment whose first frame has logical offset `base`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// The base of a segment file name, if `name` is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(&b[at..]))
}

/// The first `N` bytes of `b`.
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference encoding: the CRC computed over the pieces in turn.
    fn reference(seq: u64, payload: &[u8], watermark: u64, flags: u8) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let mut out = Vec::new();
        out.extend_from_slice(&len);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(watermark | (u64::from(flags) << 48)).to_le_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&len);
        let mut crc = crc32c::crc32c(&seq.to_le_bytes());
        crc = crc32c::crc32c_append(crc, &len);
        crc = crc32c::crc32c_append(crc, &out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn roundtrip_and_salt() {
        let mut buf = FrameBuf::new();
        buf.push(77, b"hello", SEG_HEADER, BATCH_END);
        let frame = buf.frames();
        let h = parse_header(frame, 100).unwrap();
        assert_eq!(h.len, 5);
        assert!(h.batch_end());
        assert_eq!(h.frame_len(), frame.len() as u64);
        verify(frame, 77, &h).unwrap();
        assert!(
            verify(frame, 78, &h).is_err(),
            "the CRC is salted with the seq"
        );
        assert_eq!(trailer_len(frame), 5);
    }

    #[test]
    fn frames_equal_the_reference() {
        let payloads: [&[u8]; 5] = [b"", b"a", b"0123456789abcdef", &[0xff; 300], b"xyz"];
        let mut buf = FrameBuf::new();
        let mut expected = Vec::new();
        let mut seq = 1000;
        for (i, p) in payloads.iter().enumerate() {
            let flags = if i + 1 == payloads.len() {
                BATCH_END
            } else {
                0
            };
            buf.push(seq, p, 4096, flags);
            expected.extend(reference(seq, p, 4096, flags));
            seq += p.len() as u64 + OVERHEAD;
        }
        assert_eq!(buf.frames(), &expected[..]);
        assert_eq!(buf.len(), expected.len() as u64);
        let mut at = 0;
        let mut seq = 1000;
        while at < expected.len() {
            let h = parse_header(&expected[at..], 1 << 20).unwrap();
            let end = at + h.frame_len() as usize;
            verify(&expected[at..end], seq, &h).unwrap();
            seq += h.frame_len();
            at = end;
        }
        buf.clear(1 << 20);
        assert!(buf.is_empty());
        assert_eq!(buf.len(), 0);
        // After a clear, the first frame again borrows the spare bytes, which stay out of frames.
        buf.push(5, b"again", 64, BATCH_END);
        assert_eq!(buf.frames(), &reference(5, b"again", 64, BATCH_END)[..]);
    }

    #[test]
    fn zeros_never_verify() {
        let zeros = [0u8; 20];
        if let Ok(h) = parse_header(&zeros, 100) {
            assert!(verify(&zeros, 0, &h).is_err());
        }
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("LOCK"), None);
        let h = encode_segment_header(9, None);
        check_segment_header(&h, 9).unwrap();
        assert!(check_segment_header(&h, 10).is_err());
        assert_eq!(frame_before_segment(&h), None);
    }

    /// The length of the frame before a segment survives in its header when it fits; a length
    /// no frame can have, or one too long for the field, is stored as unknown.
    #[test]
    fn segment_header_records_the_frame_before() {
        let h = encode_segment_header(1000, Some(120));
        check_segment_header(&h, 1000).unwrap();
        assert_eq!(frame_before_segment(&h), Some(120));
        for odd in [0, OVERHEAD - 1, 1 << 32] {
            let h = encode_segment_header(1 << 40, Some(odd));
            check_segment_header(&h, 1 << 40).unwrap();
            assert_eq!(frame_before_segment(&h), None, "{odd}");
        }
    }
}
