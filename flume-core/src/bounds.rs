//! Combining range bounds: seq bounds of streams, and byte bounds of index keys.

use std::ops::Bound;

use crate::Seq;

/// The tighter (higher) of two lower bounds.
pub fn max_lower<T: Ord>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.max(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.max(y)),
        (Included(x), Excluded(y)) | (Excluded(y), Included(x)) => {
            if x > y {
                Included(x)
            } else {
                Excluded(y)
            }
        }
    }
}

/// The tighter (lower) of two upper bounds.
pub fn min_upper<T: Ord>(a: Bound<T>, b: Bound<T>) -> Bound<T> {
    use Bound::*;
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.min(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.min(y)),
        (Included(x), Excluded(y)) | (Excluded(y), Included(x)) => {
            if x < y {
                Included(x)
            } else {
                Excluded(y)
            }
        }
    }
}

/// True when no seq lies between the bounds (seqs are integers).
pub fn is_empty_range(lower: Bound<Seq>, upper: Bound<Seq>) -> bool {
    use Bound::*;
    match (lower, upper) {
        (Unbounded, _) | (_, Unbounded) => false,
        (Included(a), Included(b)) => a > b,
        (Included(a), Excluded(b)) | (Excluded(a), Included(b)) => a >= b,
        (Excluded(a), Excluded(b)) => a.0.saturating_add(1) >= b.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Bound::*;

    #[test]
    fn tighter_bounds_and_empty_ranges() {
        assert_eq!(max_lower(Included(3), Excluded(3)), Excluded(3));
        assert_eq!(max_lower(Included(4), Excluded(3)), Included(4));
        assert_eq!(min_upper(Included(3), Excluded(3)), Excluded(3));
        assert_eq!(min_upper(Unbounded, Included(2)), Included(2));
        assert!(is_empty_range(Excluded(Seq(1)), Excluded(Seq(2))));
        assert!(!is_empty_range(Excluded(Seq(1)), Excluded(Seq(3))));
        assert!(!is_empty_range(Unbounded, Excluded(Seq(0))));
    }
}
