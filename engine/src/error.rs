//! Classified errors at the engine boundary.
//!
//! Every failure an actor reports is an [`ActorError`] with an [`ErrorClass`] (whose
//! fault it is) and a [`RetryHint`] (what the supervisor should do about it).

use std::fmt;
use std::time::Duration;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The input was malformed; retrying the same input will fail again.
    BadInput,
    /// An external service (S3, DynamoDB, a webhook, the disk) failed.
    External,
    /// A bug or broken invariant inside Spate.
    Internal,
}

impl ErrorClass {
    /// Lowercase label used in metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::BadInput => "bad_input",
            ErrorClass::External => "external",
            ErrorClass::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the supervisor should do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Restart the actor with the usual exponential backoff.
    Backoff,
    /// Restart the actor no sooner than this.
    After(Duration),
    /// The failure is unrecoverable: trip the pipeline's kill switch.
    Never,
}

/// An error returned by an actor or source hook.
///
/// ```
/// use spate_engine::{ActorError, ErrorClass, RetryHint};
/// let e = ActorError::external("s3 put failed: timeout");
/// assert_eq!(e.class(), ErrorClass::External);
/// assert_eq!(e.retry(), RetryHint::Backoff);
/// assert_eq!(e.to_string(), "external error: s3 put failed: timeout");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{class} error: {message}")]
pub struct ActorError {
    class: ErrorClass,
    retry: RetryHint,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ActorError {
    /// An error of the given class and retry hint.
    pub fn new(class: ErrorClass, retry: RetryHint, message: impl Into<String>) -> Self {
        ActorError {
            class,
            retry,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `class` whose retry hint follows from it: a component's own
    /// error that is bad input (a bad setting, a missing file) never heals, so
    /// [`RetryHint::Never`]; anything else may, so [`RetryHint::Backoff`].
    ///
    /// ```
    /// use spate_engine::{ActorError, ErrorClass, RetryHint};
    /// assert_eq!(ActorError::classified(ErrorClass::BadInput, "bad table").retry(), RetryHint::Never);
    /// assert_eq!(ActorError::classified(ErrorClass::External, "disk full").retry(), RetryHint::Backoff);
    /// ```
    pub fn classified(class: ErrorClass, message: impl Into<String>) -> Self {
        let retry = match class {
            ErrorClass::BadInput => RetryHint::Never,
            _ => RetryHint::Backoff,
        };
        Self::new(class, retry, message)
    }

    /// Malformed input: the batch is failed, the actor keeps running.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BadInput, RetryHint::Backoff, message)
    }

    /// An external service failed: the actor restarts with backoff.
    pub fn external(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::External, RetryHint::Backoff, message)
    }

    /// A bug: the actor restarts with backoff.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, RetryHint::Backoff, message)
    }

    /// An unrecoverable failure: the whole pipeline stops.
    pub fn fatal(class: ErrorClass, message: impl Into<String>) -> Self {
        Self::new(class, RetryHint::Never, message)
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Replaces the retry hint.
    pub fn with_retry(mut self, retry: RetryHint) -> Self {
        self.retry = retry;
        self
    }

    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// What the supervisor should do.
    pub fn retry(&self) -> RetryHint {
        self.retry
    }

    /// The message without the class prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Sending into a mailbox failed because the receiving actor is gone.
///
/// The batch is dropped with it, so its ack resolves as failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mailbox of actor {actor} is closed")]
pub struct MailboxClosed {
    /// Name of the receiving actor.
    pub actor: String,
}

impl From<MailboxClosed> for ActorError {
    fn from(e: MailboxClosed) -> Self {
        ActorError::internal(e.to_string())
    }
}
