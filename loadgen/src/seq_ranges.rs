//! Sets of sequence numbers as sorted, disjoint, half-open ranges: what `loadgen send`
//! records as acknowledged, and what `loadgen verify --send-report` checks against.

use serde::{Deserialize, Serialize};

/// Sequence numbers as sorted, disjoint, non-adjacent `[start, end)` ranges.
///
/// ```
/// use spate_loadgen::SeqRanges;
///
/// let mut acked = SeqRanges::default();
/// acked.insert(500, 1_000);
/// acked.insert(0, 500);
/// acked.insert(2_000, 2_500);
/// assert_eq!(acked.ranges(), &[[0, 1_000], [2_000, 2_500]]);
/// assert_eq!(acked.len(), 1_500);
/// assert!(acked.contains(999) && !acked.contains(1_000));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeqRanges(Vec<[u64; 2]>);

impl SeqRanges {
    /// Adds `[start, end)`, merging with the ranges it touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // The first range that ends at or after `start` (it may merge).
        let first = self.0.partition_point(|r| r[1] < start);
        // Ranges from `first` that start at or before `end` merge.
        let mut last = first;
        let (mut lo, mut hi) = (start, end);
        while last < self.0.len() && self.0[last][0] <= end {
            lo = lo.min(self.0[last][0]);
            hi = hi.max(self.0[last][1]);
            last += 1;
        }
        self.0.splice(first..last, [[lo, hi]]);
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[[u64; 2]] {
        &self.0
    }

    /// How many numbers.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| r[1] - r[0]).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.0.partition_point(|r| r[1] <= seq);
        self.0.get(i).is_some_and(|r| r[0] <= seq)
    }

    /// Checks a set read from a file: every range non-empty, sorted and disjoint.
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.0.iter().enumerate() {
            if r[0] >= r[1] {
                return Err(format!("range {i} [{}, {}) is empty", r[0], r[1]));
            }
            if i > 0 && self.0[i - 1][1] > r[0] {
                return Err(format!("range {i} overlaps or precedes the one before"));
            }
        }
        Ok(())
    }

    /// Every number in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|r| r[0]..r[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_in_any_order() {
        let mut set = SeqRanges::default();
        for (start, end) in [
            (10, 20),
            (30, 40),
            (0, 5),
            (20, 30),
            (5, 6),
            (50, 50),
            (45, 60),
        ] {
            set.insert(start, end);
        }
        assert_eq!(set.ranges(), &[[0, 6], [10, 40], [45, 60]]);
        set.insert(3, 50);
        assert_eq!(set.ranges(), &[[0, 60]]);
        assert_eq!(set.len(), 60);
        assert!(set.validate().is_ok());
        assert_eq!(set.iter().count(), 60);
    }

    #[test]
    fn membership_and_validation() {
        let set: SeqRanges = serde_json::from_str("[[0,2],[5,7]]").unwrap();
        let members: Vec<u64> = (0..9).filter(|&s| set.contains(s)).collect();
        assert_eq!(members, [0, 1, 5, 6]);
        assert_eq!(serde_json::to_string(&set).unwrap(), "[[0,2],[5,7]]");
        for bad in ["[[3,3]]", "[[0,5],[4,8]]", "[[5,7],[0,2]]"] {
            let set: SeqRanges = serde_json::from_str(bad).unwrap();
            assert!(set.validate().is_err(), "{bad}");
        }
    }
}
