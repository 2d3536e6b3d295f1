//! Why a query failed, classified for the caller (HTTP status, exit code).

use std::time::Duration;

use datafusion::error::DataFusionError;
use spate_engine::ErrorClass;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is malformed, names something that does not exist, is not
    /// read-only, or fails on the data it reads (a bad cast): the caller's
    /// to fix (HTTP 400). The message is DataFusion's.
    #[error("{0}")]
    BadQuery(String),
    /// The query needs more memory than the limit allows (HTTP 400: narrow it).
    /// The message names the limit.
    #[error("{0}")]
    ResourcesExhausted(String),
    /// The result is larger than a response may be (HTTP 400: select fewer
    /// rows or columns). The message names the limit.
    #[error("{0}")]
    ResultTooLarge(String),
    /// The query ran past its time limit and was cancelled (HTTP 504).
    #[error("query cancelled after its time limit of {0:?}")]
    Timeout(Duration),
    /// Too many queries running and waiting already (HTTP 429, retry later).
    #[error(
        "too many queries: {running} running and {queued} waiting already (query.max_concurrent, query.queue_len); retry later"
    )]
    Rejected {
        /// Queries running at most.
        running: usize,
        /// Queries waiting at most.
        queued: usize,
    },
    /// The service is shutting down; the query was cancelled or not started
    /// (HTTP 503).
    #[error("query cancelled: the service is shutting down")]
    ShuttingDown,
    /// Reading the lake failed (disk, object store, a corrupt file) (HTTP 503).
    #[error("cannot read the lake: {0}")]
    Storage(String),
    /// Reading the alert and window history failed (HTTP 503).
    #[error("cannot read the alert history: {0}")]
    History(String),
    /// A bug (HTTP 500).
    #[error("internal query error: {0}")]
    Internal(String),
}

impl QueryError {
    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        match self {
            QueryError::BadQuery(_)
            | QueryError::ResourcesExhausted(_)
            | QueryError::ResultTooLarge(_)
            | QueryError::Timeout(_) => ErrorClass::BadInput,
            QueryError::Storage(_)
            | QueryError::History(_)
            | QueryError::Rejected { .. }
            | QueryError::ShuttingDown => ErrorClass::External,
            QueryError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// The HTTP status an API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::BadQuery(_)
            | QueryError::ResourcesExhausted(_)
            | QueryError::ResultTooLarge(_) => 400,
            QueryError::Timeout(_) => 504,
            QueryError::Rejected { .. } => 429,
            QueryError::Storage(_) | QueryError::History(_) | QueryError::ShuttingDown => 503,
            QueryError::Internal(_) => 500,
        }
    }

    /// Seconds a client should wait before trying again (`Retry-After`), for
    /// the refusals worth retrying as they are.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            QueryError::Rejected { .. } => Some(1),
            QueryError::ShuttingDown => Some(5),
            _ => None,
        }
    }

    /// The error of a query whose task panicked, with the panic's message.
    /// A result too large for Arrow's 32-bit offsets (a string or list column
    /// over 2 GiB in one batch) is the query's to narrow (400); any other
    /// panic is a bug (500).
    pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        if message.contains("overflow") && message.contains("offset") {
            QueryError::ResultTooLarge(format!(
                "query result too large: a column holds more than 2 GiB in one batch \
                 (select fewer or shorter values): {message}"
            ))
        } else {
            QueryError::Internal(format!("query panicked: {message}"))
        }
    }

    /// Label of the `outcome` metric.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            QueryError::Rejected { .. } => "rejected",
            QueryError::ShuttingDown => "shutting_down",
            QueryError::BadQuery(_) => "bad_query",
            QueryError::ResourcesExhausted(_) => "resources_exhausted",
            QueryError::ResultTooLarge(_) => "result_too_large",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "storage_error",
            QueryError::History(_) => "history_error",
            QueryError::Internal(_) => "internal_error",
        }
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        use datafusion::arrow::error::ArrowError as A;
        let message = e.to_string();
        match e.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::Execution(_) => QueryError::BadQuery(message),
            DataFusionError::ArrowError(a, _)
                if matches!(
                    **a,
                    A::CastError(_)
                        | A::ParseError(_)
                        | A::DivideByZero
                        | A::ArithmeticOverflow(_)
                        | A::InvalidArgumentError(_)
                        | A::ComputeError(_)
                ) =>
            {
                QueryError::BadQuery(message)
            }
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted(message),
            DataFusionError::IoError(_)
            | DataFusionError::ObjectStore(_)
            | DataFusionError::ParquetError(_) => QueryError::Storage(message),
            _ => QueryError::Internal(message),
        }
    }
}
