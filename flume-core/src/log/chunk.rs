//! [`Chunk`]: records read together, their values kept as ranges of a few shared buffers.

use std::ops::{Deref, Range};

use bytes::Bytes;

use crate::Seq;

/// Records read together by [`Log::read_chunk`](super::Log::read_chunk), in the read's order:
/// each one's seq, and its value as a range of one of a few shared buffers.
///
/// A file log reads many records per system call into one buffer; a chunk keeps that buffer
/// once, not a reference-counted handle per record, so reading and freeing a thousand records
/// costs a few reference counts, not two thousand. A stream borrows each value
/// ([`get`](Chunk::get)); a caller that keeps one takes a handle to it
/// ([`ValueRef::to_bytes`]).
///
/// ```
/// use flume_core::{Bytes, Chunk, Seq};
///
/// let buf = Bytes::from_static(b"helloworld");
/// let mut chunk = Chunk::new();
/// chunk.push(Seq(0), &buf, 0..5);
/// chunk.push(Seq(5), &buf, 5..10);
/// let (seq, value) = chunk.get(1).unwrap();
/// assert_eq!((seq, &*value), (Seq(5), &b"world"[..]));
/// assert_eq!(chunk.buffers(), 1);
/// assert_eq!(chunk.into_records(), vec![(Seq(0), buf.slice(0..5)), (Seq(5), buf.slice(5..10))]);
/// ```
#[derive(Clone, Default)]
pub struct Chunk {
    bufs: Vec<Bytes>,
    records: Vec<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: Seq,
    /// Index into `bufs`.
    buf: usize,
    start: usize,
    end: usize,
}

impl Chunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Chunk::default()
    }

    /// Append the record `seq` whose value is `buf[range]`.
    ///
    /// `buf` is kept once for consecutive records in the same buffer: the same address and
    /// length. The chunk holds the buffer from its first record on, so any handle found there
    /// is to the same bytes.
    ///
    /// # Panics
    /// If `range` is not within `buf`: a log that reads wrongly stops there, not at the reader.
    pub fn push(&mut self, seq: Seq, buf: &Bytes, range: Range<usize>) {
        assert!(
            range.start <= range.end && range.end <= buf.len(),
            "record {seq:?}: value range {range:?} is outside its {}-byte buffer",
            buf.len()
        );
        let same = self
            .bufs
            .last()
            .is_some_and(|last| last.as_ptr() == buf.as_ptr() && last.len() == buf.len());
        if !same {
            self.bufs.push(buf.clone());
        }
        self.records.push(Entry {
            seq,
            buf: self.bufs.len() - 1,
            start: range.start,
            end: range.end,
        });
    }

    /// Append the record `seq` whose value is all of `value`.
    pub fn push_value(&mut self, seq: Seq, value: Bytes) {
        let end = value.len();
        self.bufs.push(value);
        self.records.push(Entry {
            seq,
            buf: self.bufs.len() - 1,
            start: 0,
            end,
        });
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The number of buffers the values lie in.
    pub fn buffers(&self) -> usize {
        self.bufs.len()
    }

    /// The seq of the last record.
    pub fn last_seq(&self) -> Option<Seq> {
        self.records.last().map(|e| e.seq)
    }

    /// Record `i`: its seq and its value, borrowed.
    #[inline]
    pub fn get(&self, i: usize) -> Option<(Seq, ValueRef<'_>)> {
        let e = self.records.get(i)?;
        let value = ValueRef {
            buf: &self.bufs[e.buf],
            start: e.start,
            end: e.end,
        };
        Some((e.seq, value))
    }

    /// Keep the first `n` records (buffers no record uses any more are let go).
    pub fn truncate(&mut self, n: usize) {
        self.records.truncate(n);
        let bufs = self.records.last().map_or(0, |e| e.buf + 1);
        self.bufs.truncate(bufs);
    }

    /// The records as `(seq, value)` pairs, as [`Log::read`](super::Log::read) returns them.
    pub fn into_records(self) -> Vec<(Seq, Bytes)> {
        (0..self.len())
            .filter_map(|i| self.get(i))
            .map(|(seq, value)| (seq, value.to_bytes()))
            .collect()
    }
}

impl std::fmt::Debug for Chunk {
    /// The counts, not the buffers (256 KiB each, from a file log).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("records", &self.len())
            .field("buffers", &self.buffers())
            .field("last_seq", &self.last_seq())
            .finish()
    }
}

/// A record's value in a [`Chunk`], borrowed: its bytes, and a handle to them on demand.
#[derive(Clone, Copy)]
pub struct ValueRef<'a> {
    buf: &'a Bytes,
    start: usize,
    end: usize,
}

impl ValueRef<'_> {
    /// The value as a handle of its own (one reference count on the buffer it lies in).
    #[inline]
    pub fn to_bytes(&self) -> Bytes {
        self.buf.slice(self.start..self.end)
    }
}

impl std::fmt::Debug for ValueRef<'_> {
    /// The value's bytes, not its buffer's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueRef").field(&&**self).finish()
    }
}

impl Deref for ValueRef<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl From<Vec<(Seq, Bytes)>> for Chunk {
    fn from(records: Vec<(Seq, Bytes)>) -> Self {
        let mut chunk = Chunk {
            bufs: Vec::with_capacity(records.len()),
            records: Vec::with_capacity(records.len()),
        };
        for (seq, value) in records {
            chunk.push_value(seq, value);
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_in_one_buffer_keep_it_once() {
        let a = Bytes::from(b"abcdef".to_vec());
        let b = Bytes::from(b"xyz".to_vec());
        let mut chunk = Chunk::new();
        chunk.push(Seq(1), &a, 0..2);
        chunk.push(Seq(2), &a, 2..6);
        chunk.push(Seq(3), &b, 1..3);
        chunk.push(Seq(4), &a, 0..0);
        assert_eq!(
            chunk.buffers(),
            3,
            "a buffer pushed again after another is kept again"
        );
        assert_eq!(chunk.len(), 4);
        let values: Vec<_> = (0..4).map(|i| chunk.get(i).unwrap().1.to_vec()).collect();
        assert_eq!(values, [&b"ab"[..], b"cdef", b"yz", b""]);
        assert_eq!(
            chunk.get(2).unwrap().1.to_bytes(),
            Bytes::from_static(b"yz")
        );
        assert_eq!(chunk.get(3).unwrap().0, Seq(4));
        assert_eq!(chunk.last_seq(), Some(Seq(4)));
        assert!(chunk.get(4).is_none());
        assert_eq!(
            format!("{:?}", chunk.get(2).unwrap().1),
            "ValueRef([121, 122])"
        );
        assert_eq!(
            format!("{chunk:?}"),
            "Chunk { records: 4, buffers: 3, last_seq: Some(Seq(4)) }"
        );
    }

    #[test]
    fn a_slice_of_a_buffer_is_not_the_buffer() {
        let a = Bytes::from(b"abcdef".to_vec());
        let mut chunk = Chunk::new();
        chunk.push(Seq(1), &a, 0..1);
        chunk.push(Seq(2), &a.slice(1..), 0..2);
        assert_eq!(chunk.buffers(), 2);
        assert_eq!(&*chunk.get(1).unwrap().1, b"bc");
    }

    #[test]
    fn truncating_lets_unused_buffers_go() {
        let (a, b) = (Bytes::from_static(b"aa"), Bytes::from(b"bb".to_vec()));
        let mut chunk = Chunk::from(vec![(Seq(0), a.clone()), (Seq(2), b)]);
        chunk.truncate(1);
        assert_eq!((chunk.len(), chunk.buffers()), (1, 1));
        assert_eq!(chunk.clone().into_records(), vec![(Seq(0), a)]);
        chunk.truncate(0);
        assert!(chunk.is_empty() && chunk.buffers() == 0 && chunk.last_seq().is_none());
    }

    #[test]
    #[should_panic(expected = "outside its 2-byte buffer")]
    fn a_range_outside_the_buffer_is_refused() {
        Chunk::new().push(Seq(0), &Bytes::from_static(b"ab"), 1..3);
    }
}
