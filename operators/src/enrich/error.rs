//! Why loading the reference table failed.

use super::table::TableError;

/// Loading the table failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The file or object could not be read.
    #[error("cannot read reference table {path}: {reason}")]
    Read {
        /// The table's path or URL.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The text is not a valid table.
    #[error("reference table {path}: {source}")]
    Parse {
        /// The table's path or URL.
        path: String,
        /// What is wrong, and where.
        source: TableError,
    },
    /// The table names an S3 object but no S3 client is at hand, or a bad URL.
    #[error("reference table {path}: {reason}")]
    Location {
        /// The table's path or URL.
        path: String,
        /// What is wrong.
        reason: String,
    },
}
