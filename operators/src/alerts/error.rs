//! Failures of the alert stages, classified.

use std::path::{Path, PathBuf};

use spate_engine::{ActorError, ErrorClass};

/// Failures of the alert stages.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The configuration is unusable.
    #[error("alerts config: {0}")]
    Config(String),
    /// Writing an output failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path (or `stdout`).
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A store call failed, also after its retries.
    #[error("alert store: cannot {what}, giving up after {attempts} attempts: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// Calls made.
        attempts: u32,
        /// The last failure.
        source: super::record::AlertStoreError,
    },
    /// A notice could not be encoded.
    #[error("cannot encode alert: {0}")]
    Encode(#[from] serde_json::Error),
}

impl AlertError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        AlertError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whose fault it is: a bad config is bad input, the disk and the store
    /// are external, an encoding failure is a bug.
    pub fn class(&self) -> ErrorClass {
        match self {
            AlertError::Config(_) => ErrorClass::BadInput,
            AlertError::Io { .. } => ErrorClass::External,
            AlertError::Store { source, .. } => source.class(),
            AlertError::Encode(_) => ErrorClass::Internal,
        }
    }
}

impl From<AlertError> for ActorError {
    fn from(e: AlertError) -> Self {
        ActorError::classified(e.class(), e.to_string())
    }
}
