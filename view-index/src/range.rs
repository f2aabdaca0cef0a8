//! Byte ranges of encoded keys: bounds, prefixes, and the tighter of two bounds.

use std::ops::Bound;

use flume_core::bounds::{max_lower, min_upper};

/// A range of encoded keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub(crate) lower: Bound<Vec<u8>>,
    pub(crate) upper: Bound<Vec<u8>>,
}

impl KeyRange {
    /// The range, narrowed to keys that start with `prefix`.
    pub(crate) fn with_prefix(self, prefix: &[u8]) -> Self {
        let lower = max_lower(self.lower, Bound::Included(prefix.to_vec()));
        let upper = match successor(prefix) {
            Some(end) => min_upper(self.upper, Bound::Excluded(end)),
            None => self.upper,
        };
        KeyRange { lower, upper }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.lower {
            Bound::Unbounded => true,
            Bound::Included(l) => key >= l.as_slice(),
            Bound::Excluded(l) => key > l.as_slice(),
        };
        let below = match &self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => key <= u.as_slice(),
            Bound::Excluded(u) => key < u.as_slice(),
        };
        above && below
    }

    pub(crate) fn as_refs(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            self.lower.as_ref().map(Vec::as_slice),
            self.upper.as_ref().map(Vec::as_slice),
        )
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_hold_exactly_the_prefixed_keys() {
        let all = KeyRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        };
        let r = all.clone().with_prefix(&[5, 0xFF]);
        assert!(r.contains(&[5, 0xFF]));
        assert!(r.contains(&[5, 0xFF, 0xFF, 3]));
        assert!(!r.contains(&[6]));
        assert!(!r.contains(&[5, 0xFE, 9]));
        let r = all.with_prefix(&[0xFF]);
        assert!(r.contains(&[0xFF, 0xFF]));
        assert_eq!(r.upper, Bound::Unbounded);
    }
}
