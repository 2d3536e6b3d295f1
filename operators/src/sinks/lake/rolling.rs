//! When the lake writer commits its open files: a pure function of their stats.

use std::time::Duration;

use tokio::time::Instant;

/// Limits that make the lake writer commit (close and publish) its open files.
#[derive(Debug, Clone, PartialEq)]
pub struct RollPolicy {
    /// Commit once any open file reaches this many bytes.
    pub max_file_bytes: u64,
    /// Commit once the oldest open file is this old.
    pub max_age: Duration,
    /// Commit once this many bytes are held across all open files (bounds the
    /// data at risk and the time acks wait).
    pub max_open_bytes: u64,
}

/// What the writer currently holds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OpenFilesStats {
    /// Number of open files.
    pub files: usize,
    /// Bytes of the largest open file (written plus buffered).
    pub largest_file_bytes: u64,
    /// Bytes across all open files.
    pub total_bytes: u64,
    /// When the oldest open file was opened.
    pub oldest_opened_at: Option<Instant>,
}

/// Why the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollReason {
    /// A file reached `max_file_bytes`.
    FileSize,
    /// Open files together reached `max_open_bytes`.
    OpenBytes,
    /// The oldest file reached `max_age`.
    Age,
}

/// Whether to commit now, and why.
///
/// ```
/// use spate_operators::sinks::lake::rolling::{should_roll, OpenFilesStats, RollPolicy, RollReason};
/// use std::time::Duration;
/// use tokio::time::Instant;
/// let policy = RollPolicy { max_file_bytes: 100, max_age: Duration::from_secs(60), max_open_bytes: 1000 };
/// let now = Instant::now();
/// let stats = OpenFilesStats { files: 1, largest_file_bytes: 150, total_bytes: 150, oldest_opened_at: Some(now) };
/// assert_eq!(should_roll(&stats, now, &policy), Some(RollReason::FileSize));
/// assert_eq!(should_roll(&OpenFilesStats::default(), now, &policy), None);
/// ```
pub fn should_roll(
    stats: &OpenFilesStats,
    now: Instant,
    policy: &RollPolicy,
) -> Option<RollReason> {
    if stats.files == 0 {
        return None;
    }
    if stats.largest_file_bytes >= policy.max_file_bytes {
        return Some(RollReason::FileSize);
    }
    if stats.total_bytes >= policy.max_open_bytes {
        return Some(RollReason::OpenBytes);
    }
    match stats.oldest_opened_at {
        Some(at) if now.saturating_duration_since(at) >= policy.max_age => Some(RollReason::Age),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RollPolicy {
        RollPolicy {
            max_file_bytes: 1_000,
            max_age: Duration::from_secs(300),
            max_open_bytes: 5_000,
        }
    }

    #[test]
    fn nothing_open_never_rolls() {
        let now = Instant::now();
        assert_eq!(
            should_roll(
                &OpenFilesStats::default(),
                now + Duration::from_secs(9_999),
                &policy()
            ),
            None
        );
    }

    #[test]
    fn rolls_by_size_total_and_age() {
        let t0 = Instant::now();
        let small = OpenFilesStats {
            files: 3,
            largest_file_bytes: 900,
            total_bytes: 2_000,
            oldest_opened_at: Some(t0),
        };
        assert_eq!(
            should_roll(&small, t0 + Duration::from_secs(299), &policy()),
            None
        );
        assert_eq!(
            should_roll(&small, t0 + Duration::from_secs(300), &policy()),
            Some(RollReason::Age)
        );
        let big = OpenFilesStats {
            largest_file_bytes: 1_000,
            ..small
        };
        assert_eq!(should_roll(&big, t0, &policy()), Some(RollReason::FileSize));
        let many = OpenFilesStats {
            total_bytes: 5_000,
            ..small
        };
        assert_eq!(
            should_roll(&many, t0, &policy()),
            Some(RollReason::OpenBytes)
        );
    }
}
