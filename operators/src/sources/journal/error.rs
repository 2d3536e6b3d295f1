//! [`JournalError`]: why an append, a read or opening the journal failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spate_engine::{ActorError, ErrorClass, RetryHint};

/// Failures of the journal.
///
/// The HTTP layer maps [`JournalError::Saturated`] to 429 and every other
/// refusal to 503, both with [`JournalError::retry_after`] as `Retry-After`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// Too many bytes are appended but not yet taken by the pipeline.
    #[error("journal saturated: {backlog_bytes} bytes wait for the pipeline (limit {limit_bytes})")]
    Saturated {
        /// Bytes appended and not yet read by the pipeline.
        backlog_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
    },
    /// The journal files would exceed their disk budget.
    #[error("journal disk limit reached: {disk_bytes} bytes on disk, {limit_bytes} allowed")]
    DiskLimit {
        /// Bytes the journal's files take now.
        disk_bytes: u64,
        /// The configured limit.
        limit_bytes: u64,
    },
    /// A file system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error (shared: one failed write answers every caller of its group).
        source: Arc<std::io::Error>,
    },
    /// One record is too large to be framed (more than 4 GiB).
    #[error("journal record of {bytes} bytes is too large")]
    RecordTooLarge {
        /// Size of the record's payload.
        bytes: usize,
    },
    /// The journal is shutting down and takes no more appends.
    #[error("journal is closed")]
    Closed,
    /// The files on disk contradict each other (overlapping segments).
    #[error("journal is corrupt: {0}")]
    Corrupt(String),
    /// The configuration is unusable.
    #[error("journal config: {0}")]
    Config(String),
}

impl JournalError {
    pub(super) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// Whose fault it is: a full journal or a failing disk is external, a record
    /// too large or a bad config is bad input, corruption is internal.
    pub fn class(&self) -> ErrorClass {
        match self {
            JournalError::Saturated { .. }
            | JournalError::DiskLimit { .. }
            | JournalError::Io { .. }
            | JournalError::Closed => ErrorClass::External,
            JournalError::RecordTooLarge { .. } | JournalError::Config(_) => ErrorClass::BadInput,
            JournalError::Corrupt(_) => ErrorClass::Internal,
        }
    }

    /// What to do about it: wait and retry (with the suggested delay), back off,
    /// or give up.
    pub fn retry(&self) -> RetryHint {
        match self {
            JournalError::RecordTooLarge { .. } | JournalError::Config(_) => RetryHint::Never,
            JournalError::Corrupt(_) | JournalError::Io { .. } => RetryHint::Backoff,
            JournalError::Saturated { .. }
            | JournalError::DiskLimit { .. }
            | JournalError::Closed => RetryHint::After(self.retry_after().unwrap_or_default()),
        }
    }

    /// The `Retry-After` to suggest to a client, `None` when retrying the same
    /// request cannot succeed.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JournalError::Saturated { .. } => Some(Duration::from_secs(1)),
            JournalError::DiskLimit { .. } => Some(Duration::from_secs(30)),
            JournalError::Io { .. } | JournalError::Closed => Some(Duration::from_secs(5)),
            JournalError::RecordTooLarge { .. }
            | JournalError::Corrupt(_)
            | JournalError::Config(_) => None,
        }
    }

    /// Label for `spate_journal_rejected_total{reason}`.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            JournalError::Saturated { .. } => "saturated",
            JournalError::DiskLimit { .. } => "disk_limit",
            JournalError::Io { .. } => "io",
            JournalError::RecordTooLarge { .. } => "too_large",
            JournalError::Closed => "closed",
            JournalError::Corrupt(_) => "corrupt",
            JournalError::Config(_) => "config",
        }
    }
}

impl From<JournalError> for ActorError {
    fn from(e: JournalError) -> Self {
        ActorError::new(e.class(), e.retry(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_is_retryable_and_bad_records_are_not() {
        let saturated = JournalError::Saturated {
            backlog_bytes: 10,
            limit_bytes: 5,
        };
        assert_eq!(saturated.class(), ErrorClass::External);
        assert_eq!(saturated.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(
            saturated.to_string(),
            "journal saturated: 10 bytes wait for the pipeline (limit 5)"
        );
        let too_large = JournalError::RecordTooLarge { bytes: 1 };
        assert_eq!(too_large.class(), ErrorClass::BadInput);
        assert_eq!(too_large.retry(), RetryHint::Never);
        assert_eq!(too_large.retry_after(), None);
        let actor: ActorError = JournalError::io(
            "write",
            Path::new("/j/x.seg"),
            std::io::Error::other("disk gone"),
        )
        .into();
        assert_eq!(actor.class(), ErrorClass::External);
        assert_eq!(actor.message(), "cannot write /j/x.seg: disk gone");
    }
}
