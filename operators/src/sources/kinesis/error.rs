//! [`KinesisError`]: failures of the Kinesis source, classified.

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use spate_engine::{ActorError, ErrorClass, RetryHint};

/// Failures of the Kinesis source.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The stream was set up outside a Tokio runtime.
    #[error("kinesis stream must be created inside a tokio runtime")]
    NoRuntime,
    /// A Kinesis call failed.
    #[error("kinesis {op}: {message}")]
    Kinesis {
        /// What was being done.
        op: &'static str,
        /// The service's error code, if any.
        code: Option<String>,
        /// The error with its causes.
        message: String,
    },
    /// A DynamoDB call on the lease table failed.
    #[error("kinesis lease table {op}: {message}")]
    Dynamo {
        /// What was being done.
        op: &'static str,
        /// The service's error code, if any.
        code: Option<String>,
        /// The error with its causes.
        message: String,
    },
    /// The lease coordinator ended without being stopped.
    #[error("kinesis lease coordinator of {0} ended")]
    CoordinatorEnded(String),
}

/// Error codes that mean the configuration names something unusable.
const CONFIG_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "ValidationException",
    "InvalidArgumentException",
    "UnrecognizedClientException",
];

impl KinesisError {
    pub(crate) fn kinesis<E, R>(op: &'static str, e: aws_sdk_kinesis::error::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        KinesisError::Kinesis {
            op,
            code: e.code().map(str::to_string),
            message: aws_sdk_kinesis::error::DisplayErrorContext(e).to_string(),
        }
    }

    pub(crate) fn dynamo<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        KinesisError::Dynamo {
            op,
            code: aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e).map(str::to_string),
            message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        }
    }

    /// Whose fault it is: missing or forbidden resources are bad input,
    /// other service failures external, the rest internal.
    pub fn class(&self) -> ErrorClass {
        match self {
            KinesisError::Kinesis { code, .. } | KinesisError::Dynamo { code, .. } => {
                if code.as_deref().is_some_and(|c| CONFIG_CODES.contains(&c)) {
                    ErrorClass::BadInput
                } else {
                    ErrorClass::External
                }
            }
            KinesisError::NoRuntime | KinesisError::CoordinatorEnded(_) => ErrorClass::Internal,
        }
    }
}

impl From<KinesisError> for ActorError {
    fn from(e: KinesisError) -> Self {
        match e.class() {
            ErrorClass::BadInput => ActorError::fatal(e.class(), e.to_string()),
            class => ActorError::new(class, RetryHint::Backoff, e.to_string()),
        }
    }
}
