//! When the lake writer stages buffered rows and seals staged partitions:
//! pure functions of what it holds, tested without I/O.
//!
//! Rows wait in memory only until the next staging commit, or until the
//! writer's buffers pass their budget ([`to_stage`]). A staged partition is
//! sealed into one Parquet file by [`next_seal`] when the file it would make
//! reaches the target size, when its hour is over (the writer has seen events
//! past the hour's end plus a grace period, and the partition has settled),
//! when its oldest staged row reaches the maximum age, or when the staging
//! area as a whole passes its budget.

use std::time::Duration;

use tokio::time::Instant;

/// Limits that make the lake writer seal a staged partition.
#[derive(Debug, Clone, PartialEq)]
pub struct SealPolicy {
    /// Seal once the Parquet file would be about this large.
    pub target_file_bytes: u64,
    /// Seal once the partition's oldest staged row is this old.
    pub max_age: Duration,
    /// A partition's hour is over once the writer has seen an event this long
    /// after the hour's end (event time, milliseconds).
    pub hour_grace_ms: i64,
    /// ...and once nothing was staged into it for this long.
    pub settle: Duration,
    /// Seal the largest partition while the staging area holds more than
    /// this (bytes on disk).
    pub max_staged_bytes: u64,
}

/// What the writer has staged for one partition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StagedStats {
    /// Start of the partition's hour (event time, ms since the epoch).
    pub hour_start_ms: i64,
    /// Bytes of its staging segments on disk.
    pub staged_bytes: u64,
    /// Arrow (in-memory) size of the rows staged: what the Parquet size is
    /// estimated from.
    pub arrow_bytes: u64,
    /// When its oldest staged row was staged.
    pub first_staged_at: Instant,
    /// When rows were last staged into it.
    pub last_staged_at: Instant,
}

/// Why a partition is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealReason {
    /// The file would reach the target size.
    Size,
    /// The partition's hour is over and the partition settled.
    HourClosed,
    /// Its oldest staged row reached the maximum age.
    Age,
    /// The staging area is over its budget; this is its largest partition.
    StagingFull,
    /// The writer is flushing (shutdown, or the end of `spate ingest`).
    Flush,
}

impl SealReason {
    /// The label of the `reason` metric.
    pub fn as_str(self) -> &'static str {
        match self {
            SealReason::Size => "size",
            SealReason::HourClosed => "hour_closed",
            SealReason::Age => "age",
            SealReason::StagingFull => "staging_full",
            SealReason::Flush => "flush",
        }
    }
}

/// The Parquet size `arrow_bytes` of rows is expected to make, at the ratio
/// of Parquet to Arrow bytes seen so far (`ratio`, clamped to 0.01–1).
///
/// ```
/// use spate_operators::sinks::lake::policy::estimated_file_bytes;
/// assert_eq!(estimated_file_bytes(1_000, 0.2), 200);
/// assert_eq!(estimated_file_bytes(1_000, 7.0), 1_000);
/// ```
pub fn estimated_file_bytes(arrow_bytes: u64, ratio: f64) -> u64 {
    (arrow_bytes as f64 * ratio.clamp(0.01, 1.0)) as u64
}

/// Which staged partition to seal next (the index into `parts`), and why, or
/// `None` when none is due. `watermark_ms` is the latest event time the
/// writer has seen; `ratio` the Parquet-to-Arrow size ratio of earlier seals.
///
/// Order: a partition at the target size first (the largest), then the
/// oldest of the hours that are over, then the oldest past the maximum age,
/// then, while staging is over its budget, the largest.
///
/// ```
/// use spate_operators::sinks::lake::policy::{next_seal, SealPolicy, SealReason, StagedStats};
/// use std::time::Duration;
/// use tokio::time::Instant;
/// let policy = SealPolicy {
///     target_file_bytes: 100,
///     max_age: Duration::from_secs(3600),
///     hour_grace_ms: 300_000,
///     settle: Duration::from_secs(2),
///     max_staged_bytes: 1 << 30,
/// };
/// let now = Instant::now();
/// let part = StagedStats { hour_start_ms: 0, staged_bytes: 500, arrow_bytes: 1_000, first_staged_at: now, last_staged_at: now };
/// assert_eq!(next_seal(&[part], now, 0, 0.2, &policy), Some((0, SealReason::Size)));
/// assert_eq!(next_seal(&[part], now, 0, 0.05, &policy), None);
/// ```
pub fn next_seal(
    parts: &[StagedStats],
    now: Instant,
    watermark_ms: i64,
    ratio: f64,
    policy: &SealPolicy,
) -> Option<(usize, SealReason)> {
    let largest = |eligible: &dyn Fn(&StagedStats) -> bool| {
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| eligible(p))
            .max_by_key(|(_, p)| p.arrow_bytes)
            .map(|(i, _)| i)
    };
    let oldest = |eligible: &dyn Fn(&StagedStats) -> bool| {
        parts
            .iter()
            .enumerate()
            .filter(|(_, p)| eligible(p))
            .min_by_key(|(_, p)| p.first_staged_at)
            .map(|(i, _)| i)
    };
    let full =
        |p: &StagedStats| estimated_file_bytes(p.arrow_bytes, ratio) >= policy.target_file_bytes;
    if let Some(i) = largest(&full) {
        return Some((i, SealReason::Size));
    }
    let closed = |p: &StagedStats| {
        p.hour_start_ms
            .saturating_add(3_600_000)
            .saturating_add(policy.hour_grace_ms)
            <= watermark_ms
            && now.saturating_duration_since(p.last_staged_at) >= policy.settle
    };
    if let Some(i) = oldest(&closed) {
        return Some((i, SealReason::HourClosed));
    }
    let aged = |p: &StagedStats| now.saturating_duration_since(p.first_staged_at) >= policy.max_age;
    if let Some(i) = oldest(&aged) {
        return Some((i, SealReason::Age));
    }
    let staged: u64 = parts.iter().map(|p| p.staged_bytes).sum();
    if staged > policy.max_staged_bytes {
        return largest(&|_| true).map(|i| (i, SealReason::StagingFull));
    }
    None
}

/// Which buffered partitions to stage now (bytes per partition,
/// `buffered`): every one that holds rows once the writer's buffers pass
/// `max_buffered_bytes`; nothing while they are within it.
///
/// All of them, not the largest few: the partitions of one decoded batch are
/// slices of one set of buffers ([`split_record_batch`](super::partition::split_record_batch)),
/// which stay in memory until the last of those partitions is staged, so
/// staging only some would not bring memory down to the budget.
///
/// ```
/// use spate_operators::sinks::lake::policy::to_stage;
/// assert_eq!(to_stage(&[10, 60, 0, 40], 100), vec![0, 1, 3]);
/// assert!(to_stage(&[10, 20], 100).is_empty());
/// ```
pub fn to_stage(buffered: &[usize], max_buffered_bytes: usize) -> Vec<usize> {
    let total: usize = buffered.iter().sum();
    if total <= max_buffered_bytes {
        return Vec::new();
    }
    (0..buffered.len()).filter(|&i| buffered[i] > 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn policy() -> SealPolicy {
        SealPolicy {
            target_file_bytes: 1_000,
            max_age: Duration::from_secs(3600),
            hour_grace_ms: 300_000,
            settle: Duration::from_secs(2),
            max_staged_bytes: 10_000,
        }
    }

    fn part(hour: i64, arrow_bytes: u64, first: Instant, last: Instant) -> StagedStats {
        StagedStats {
            hour_start_ms: hour * HOUR,
            staged_bytes: arrow_bytes / 2,
            arrow_bytes,
            first_staged_at: first,
            last_staged_at: last,
        }
    }

    #[test]
    fn nothing_staged_is_never_sealed() {
        let now = Instant::now();
        assert_eq!(next_seal(&[], now, i64::MAX, 1.0, &policy()), None);
    }

    #[test]
    fn the_largest_partition_at_the_target_size_goes_first() {
        let t0 = Instant::now();
        let parts = [
            part(10, 6_000, t0, t0),
            part(10, 9_000, t0, t0),
            part(9, 100, t0, t0),
        ];
        // At a ratio of 0.2, 6,000 and 9,000 Arrow bytes make 1,200 and 1,800.
        assert_eq!(
            next_seal(&parts, t0, 10 * HOUR, 0.2, &policy()),
            Some((1, SealReason::Size))
        );
        // At 0.1 neither is full; nothing else is due.
        assert_eq!(next_seal(&parts, t0, 10 * HOUR, 0.1, &policy()), None);
    }

    #[test]
    fn an_hour_is_over_after_the_grace_and_once_settled() {
        let t0 = Instant::now();
        let parts = [part(9, 100, t0, t0), part(10, 100, t0, t0)];
        let end_of_9 = 10 * HOUR;
        let settled = t0 + Duration::from_secs(2);
        // Events just past the end of hour 9: still within the grace.
        assert_eq!(
            next_seal(&parts, settled, end_of_9 + 1, 1.0, &policy()),
            None
        );
        // Past the grace, but rows were staged a moment ago.
        let past = end_of_9 + 300_000;
        assert_eq!(next_seal(&parts, t0, past, 1.0, &policy()), None);
        assert_eq!(
            next_seal(&parts, settled, past, 1.0, &policy()),
            Some((0, SealReason::HourClosed))
        );
    }

    #[test]
    fn old_partitions_seal_by_age_oldest_first() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let parts = [part(10, 100, t1, t1), part(10, 100, t0, t1)];
        let at = t1 + Duration::from_secs(3600);
        assert_eq!(
            next_seal(&parts, at, 10 * HOUR, 1.0, &policy()),
            Some((1, SealReason::Age))
        );
        assert_eq!(
            next_seal(
                &parts,
                at - Duration::from_secs(11),
                10 * HOUR,
                1.0,
                &policy()
            ),
            None
        );
    }

    #[test]
    fn a_full_staging_area_seals_its_largest_partition() {
        let t0 = Instant::now();
        // 6,000 + 16,000 Arrow bytes: 3,000 + 8,000 staged > 10,000.
        let parts = [part(10, 6_000, t0, t0), part(10, 16_000, t0, t0)];
        assert_eq!(
            next_seal(&parts, t0, 10 * HOUR, 0.01, &policy()),
            Some((1, SealReason::StagingFull))
        );
        let within = [part(10, 6_000, t0, t0), part(10, 12_000, t0, t0)];
        assert_eq!(next_seal(&within, t0, 10 * HOUR, 0.01, &policy()), None);
    }

    #[test]
    fn size_comes_before_a_closed_hour_and_age() {
        let t0 = Instant::now();
        let late = t0 + Duration::from_secs(7200);
        let parts = [part(1, 100, t0, t0), part(10, 5_000, t0, t0)];
        assert_eq!(
            next_seal(&parts, late, 20 * HOUR, 0.5, &policy()),
            Some((1, SealReason::Size))
        );
        assert_eq!(
            next_seal(&parts, late, 20 * HOUR, 0.01, &policy()),
            Some((0, SealReason::HourClosed))
        );
    }

    #[test]
    fn past_the_budget_every_buffered_partition_stages() {
        assert_eq!(to_stage(&[30, 30, 30, 30], 100), vec![0, 1, 2, 3]);
        assert_eq!(to_stage(&[0, 101, 0], 100), vec![1]);
        assert_eq!(to_stage(&[200], 100), vec![0]);
        assert!(to_stage(&[], 100).is_empty());
        assert!(to_stage(&[100], 100).is_empty());
    }
}
