//! [`TailError`]: what can go wrong while tailing, classified for the supervisor.

use std::path::PathBuf;

use spate_engine::{ActorError, ErrorClass, RetryHint};

/// A failure of the tail source or its checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A glob pattern in `[tail]` does not parse.
    #[error("invalid tail glob {pattern:?}: {source}")]
    Glob {
        /// The pattern as configured.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: globset::Error,
    },
    /// Reading or writing the checkpoint file failed.
    #[error("cannot {action} tail checkpoint {}: {source}", path.display())]
    CheckpointIo {
        /// What was being done (`read`, `write`, `rename`, ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file exists but is not a checkpoint this version reads.
    #[error(
        "tail checkpoint {} is unreadable ({reason}); move it aside to start over",
        path.display()
    )]
    CheckpointFormat {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl TailError {
    /// Whose fault it is: a bad pattern or an unreadable checkpoint is bad input
    /// that retrying will not fix; the disk is external.
    pub fn class(&self) -> ErrorClass {
        match self {
            TailError::Glob { .. } | TailError::CheckpointFormat { .. } => ErrorClass::BadInput,
            TailError::CheckpointIo { .. } => ErrorClass::External,
        }
    }

    /// What the supervisor should do: bad input is fatal, the disk may recover.
    pub fn retry(&self) -> RetryHint {
        match self.class() {
            ErrorClass::BadInput => RetryHint::Never,
            _ => RetryHint::Backoff,
        }
    }
}

impl From<TailError> for ActorError {
    fn from(e: TailError) -> Self {
        ActorError::new(e.class(), e.retry(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_messages() {
        let io = TailError::CheckpointIo {
            action: "write",
            path: PathBuf::from("/data/checkpoints/tail.json"),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(io.class(), ErrorClass::External);
        assert_eq!(io.retry(), RetryHint::Backoff);
        assert_eq!(
            io.to_string(),
            "cannot write tail checkpoint /data/checkpoints/tail.json: disk full"
        );
        let bad = TailError::CheckpointFormat {
            path: PathBuf::from("tail.json"),
            reason: "expected value at line 1 column 1".into(),
        };
        let actor: ActorError = bad.into();
        assert_eq!(actor.class(), ErrorClass::BadInput);
        assert_eq!(actor.retry(), RetryHint::Never);
    }
}
