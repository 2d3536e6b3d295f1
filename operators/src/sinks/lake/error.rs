//! Failures of the lake writer, classified.

use std::path::{Path, PathBuf};

use spate_engine::{ActorError, ErrorClass};

use crate::sinks::s3_lake::S3UploadError;
use crate::sinks::s3_lake::glue::GlueError;

/// Failures of the lake writer.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet or Arrow IPC encoding failed.
    #[error("parquet: {0}")]
    Parquet(String),
    /// The final flush left partitions staged: their seals failed.
    #[error(
        "{partitions} partitions could not be sealed ({}): {reason}",
        if *scratch {
            "their rows were staged as scratch and are deleted at the next start: run the command again"
        } else {
            "their rows stay staged and are sealed at the next start"
        }
    )]
    Unsealed {
        /// Partitions left staged.
        partitions: usize,
        /// Why the last seal failed.
        reason: String,
        /// A batch job's scratch staging ([`super::StagingDurability::Scratch`]):
        /// the rows are not kept, the job is run again.
        scratch: bool,
    },
    /// The configuration is unusable.
    #[error("lake config: {0}")]
    Config(String),
    /// Uploading a sealed file to S3 failed.
    #[error("lake upload: {0}")]
    Upload(#[from] S3UploadError),
    /// Registering a partition in the Glue catalog failed.
    #[error("lake catalog: {0}")]
    Catalog(#[from] GlueError),
}

impl LakeError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        LakeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whose fault it is: the disk, S3 and Glue are external, encoding errors
    /// are bugs, a bad config is bad input that retrying will not fix.
    pub fn class(&self) -> ErrorClass {
        match self {
            LakeError::Io { .. } | LakeError::Catalog(_) | LakeError::Unsealed { .. } => {
                ErrorClass::External
            }
            LakeError::Parquet(_) => ErrorClass::Internal,
            LakeError::Config(_) => ErrorClass::BadInput,
            LakeError::Upload(e) => e.class(),
        }
    }
}

impl From<LakeError> for ActorError {
    fn from(e: LakeError) -> Self {
        ActorError::classified(e.class(), e.to_string())
    }
}

impl From<spate_engine::work_threads::WorkFailed> for LakeError {
    fn from(e: spate_engine::work_threads::WorkFailed) -> Self {
        LakeError::Parquet(format!("seal task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsealed_partitions_say_what_becomes_of_their_rows() {
        let unsealed = |scratch| LakeError::Unsealed {
            partitions: 2,
            reason: "disk full".into(),
            scratch,
        };
        assert_eq!(
            unsealed(false).to_string(),
            "2 partitions could not be sealed (their rows stay staged and are sealed at the next \
             start): disk full"
        );
        let batch = unsealed(true).to_string();
        assert!(
            batch.contains("deleted at the next start: run the command again"),
            "{batch}"
        );
        assert_eq!(unsealed(true).class(), ErrorClass::External);
    }
}
