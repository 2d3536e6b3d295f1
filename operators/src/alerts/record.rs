//! The records the window aggregator and the alert router produce and every
//! alert output and store consumes: closed windows ([`WindowRecord`]) and
//! alert notices ([`AlertRecord`]); the [`AlertStore`] that keeps them for
//! queries, and its classified error ([`AlertStoreError`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spate_engine::{ActorError, ErrorClass, RetryHint};

/// Counts of one service in one closed event-time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Window start, UTC milliseconds (inclusive).
    pub window_start_ms: i64,
    /// Window end, UTC milliseconds (exclusive).
    pub window_end_ms: i64,
    /// The service.
    pub service: String,
    /// Events in the window.
    pub events: u64,
    /// Events per severity, indexed by `Severity::index` (INFO, WARNING, ERROR,
    /// CRITICAL).
    pub severity: [u64; 4],
    /// Events per tag.
    pub tags: BTreeMap<String, u64>,
}

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The rule's condition holds.
    Firing,
    /// The condition cleared (after having fired).
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert notice: a rule firing for a service, or its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Deterministic id, `<rule>:<service>:<window_start_ms>:<state>`, so a
    /// notice written twice overwrites itself.
    pub id: String,
    /// The rule's name (`critical`, `error_burst`, `error_rate`, `silence`, or a
    /// configured name).
    pub rule: String,
    /// The service the alert is about.
    pub service: String,
    /// Firing or resolved.
    pub state: AlertState,
    /// Severity of the alert itself (`CRITICAL`, `ERROR`, `WARNING`).
    pub severity: String,
    /// The window that decided, UTC milliseconds.
    pub window_start_ms: i64,
    /// End of that window, UTC milliseconds.
    pub window_end_ms: i64,
    /// When the notice was raised (processing time), UTC milliseconds.
    pub raised_at_ms: i64,
    /// The measured value (a count, or a rate).
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// One readable sentence.
    pub message: String,
}

/// Why an [`AlertStore`] or [`WindowStore`](super::window_store::WindowStore)
/// call failed, classified like [`spate_engine::ActorError`]: whose fault it
/// is, and whether trying again may help ([`AlertStoreError::retry`]).
///
/// ```
/// use spate_engine::{ErrorClass, RetryHint};
/// use spate_operators::alerts::record::AlertStoreError;
/// let e = AlertStoreError::External("dynamodb hot record window: throttled".into());
/// assert_eq!((e.class(), e.retry()), (ErrorClass::External, RetryHint::Backoff));
/// let e = AlertStoreError::BadInput("dynamodb hot query: table not found".into());
/// assert_eq!(e.retry(), RetryHint::Never);
/// assert_eq!(e.to_string(), "dynamodb hot query: table not found");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertStoreError {
    /// The records, or the store's settings, are unusable (a missing table,
    /// access denied, an item rejected, a foreign database file): the same
    /// call fails again.
    #[error("{0}")]
    BadInput(String),
    /// The store's service, network or disk failed (throttling, a timeout,
    /// a busy database, a full disk): the same call may pass later.
    #[error("{0}")]
    External(String),
    /// A bug: a stored record that cannot be read, a store call that
    /// panicked.
    #[error("{0}")]
    Internal(String),
}

impl AlertStoreError {
    /// The error of `class` with `message` (how the stores convert their own
    /// classified errors).
    pub fn classified(class: ErrorClass, message: impl Into<String>) -> Self {
        let message = message.into();
        match class {
            ErrorClass::BadInput => AlertStoreError::BadInput(message),
            ErrorClass::External => AlertStoreError::External(message),
            ErrorClass::Internal => AlertStoreError::Internal(message),
        }
    }

    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        match self {
            AlertStoreError::BadInput(_) => ErrorClass::BadInput,
            AlertStoreError::External(_) => ErrorClass::External,
            AlertStoreError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// Whether to try again: never for bad input, with backoff otherwise
    /// (a bug may be a race that passes; the router bounds its attempts).
    pub fn retry(&self) -> RetryHint {
        match self {
            AlertStoreError::BadInput(_) => RetryHint::Never,
            AlertStoreError::External(_) | AlertStoreError::Internal(_) => RetryHint::Backoff,
        }
    }
}

impl From<AlertStoreError> for ActorError {
    fn from(e: AlertStoreError) -> Self {
        ActorError::new(e.class(), e.retry(), e.to_string())
    }
}

/// Where closed windows and alert notices are kept for queries (the hot
/// store: SQLite, or DynamoDB); the alert router calls it, on the blocking
/// pool, before acknowledging.
pub trait AlertStore: Send + Sync + 'static {
    /// Durably records closed windows and alert notices (upserts by key).
    fn record(
        &self,
        windows: &[WindowRecord],
        alerts: &[AlertRecord],
    ) -> Result<(), AlertStoreError>;
}
