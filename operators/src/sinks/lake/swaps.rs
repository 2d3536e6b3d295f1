//! The swap counter of a local lake: how a query learns that `spate lake
//! compact` swapped a partition directory while it ran.
//!
//! A query lists a partition, then reads its files. The listing of the local
//! object store drops an entry whose path no longer resolves, so a swap in
//! the middle of a listing leaves the merged-away files out without an
//! error. The compactor therefore counts its swaps in a file beside the
//! table: it adds one before a swap and one after it (the count is odd while
//! a swap is under way), and a query reads the count before and after it
//! runs and runs again when it changed (a seqlock). A count left odd by a
//! compactor that died between the two is ignored once it is
//! [`STALE_AFTER`] old, and set even by the next compaction.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::LakeError;

/// The counter's file, in the lake directory (beside `logs/`).
pub const SWAPS_FILE: &str = ".compact-swaps";

/// How long an odd count means a swap is under way: a swap is a rename and
/// a directory sync, milliseconds.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// One reading of the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwapCount {
    /// Swaps begun and ended, two each.
    pub count: u64,
    /// A swap is under way (the count is odd, and recent).
    pub swapping: bool,
}

impl SwapCount {
    /// Whether a query that read `self` before it ran and `after` once it
    /// had finished saw no swap.
    ///
    /// ```
    /// use spate_operators::sinks::lake::swaps::SwapCount;
    /// let quiet = SwapCount { count: 4, swapping: false };
    /// assert!(quiet.unchanged_at(quiet));
    /// assert!(!quiet.unchanged_at(SwapCount { count: 5, swapping: true }));
    /// ```
    pub fn unchanged_at(self, after: SwapCount) -> bool {
        !self.swapping && self.count == after.count
    }
}

/// Reads the counter of the lake at `lake_dir` (0 when there is none).
pub fn read_swaps(lake_dir: &Path) -> SwapCount {
    let path = lake_dir.join(SWAPS_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return SwapCount::default();
    };
    let count = text.trim().parse().unwrap_or(0);
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age < STALE_AFTER);
    SwapCount {
        count,
        swapping: count % 2 == 1 && fresh,
    }
}

/// Adds one to the counter (written whole, then renamed into place).
pub(super) fn bump(lake_dir: &Path) -> Result<u64, LakeError> {
    let path = lake_dir.join(SWAPS_FILE);
    let next = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let tmp = lake_dir.join(format!("{SWAPS_FILE}.tmp"));
    std::fs::write(&tmp, format!("{next}\n")).map_err(|e| LakeError::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LakeError::io("rename", &path, e))?;
    Ok(next)
}

/// Makes the count even: what a compactor that died mid-swap left.
pub(super) fn settle(lake_dir: &Path) -> Result<(), LakeError> {
    let path = lake_dir.join(SWAPS_FILE);
    let odd = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .is_some_and(|n| n % 2 == 1);
    if odd {
        bump(lake_dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_under_way_or_done_during_a_query_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let before = read_swaps(dir.path());
        assert_eq!(before, SwapCount::default());
        assert!(before.unchanged_at(read_swaps(dir.path())));
        assert_eq!(bump(dir.path()).unwrap(), 1);
        let during = read_swaps(dir.path());
        assert!(during.swapping);
        assert!(!before.unchanged_at(during));
        assert!(
            !during.unchanged_at(during),
            "a swap under way is never stable"
        );
        bump(dir.path()).unwrap();
        let after = read_swaps(dir.path());
        assert_eq!(
            after,
            SwapCount {
                count: 2,
                swapping: false
            }
        );
        assert!(!before.unchanged_at(after));
        assert!(after.unchanged_at(read_swaps(dir.path())));
    }

    #[test]
    fn an_odd_count_left_by_a_dead_compactor_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        bump(dir.path()).unwrap();
        settle(dir.path()).unwrap();
        assert_eq!(read_swaps(dir.path()).count, 2);
        settle(dir.path()).unwrap();
        assert_eq!(read_swaps(dir.path()).count, 2);
    }
}
