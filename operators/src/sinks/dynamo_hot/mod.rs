//! The DynamoDB hot store: recent important events, window counts and alerts
//! in one DynamoDB table, with the questions the embedded
//! [`HotStore`](crate::sinks::hot::HotStore) answers.
//!
//! [`DynamoHotWriter`] writes events (the actor after the decoder);
//! [`DynamoHotStore`] answers `recent` and `alerts` (for `spate hot`) and is
//! the alert router's [`AlertStore`](crate::alerts::record::AlertStore).
//!
//! # Keys
//!
//! One table with a string hash key `pk` and a string range key `sk`, as
//! `deploy/local/up.sh` creates it, and TTL on `expires_at` (epoch seconds):
//!
//! | item | `pk` | `sk` | serves |
//! | --- | --- | --- | --- |
//! | block | `svc#<service>` | `<minute start ms, 13 digits>#<writer>#<seq>` | recent events of one service: one Query, newest first |
//! | service registry | `svcs#<YYYY-MM-DD>` | `<service>` | recent events of every service: the services of the range's days, each queried, merged |
//! | window | `win#<service>` | `<window start ms, 13 digits>` | counts per window, merged across processes with atomic `ADD` |
//! | alert | `alerts#<YYYY-MM-DD>` | `<raised ms, 13 digits>#<alert id>` | alerts of a day, newest first |
//! | alert claim | `alert#<alert id>` | `claim` | raises an alert once across processes |
//! | baseline | `base#<rule>` | `<service>` | anomaly baselines, saved conditionally ([`alert_state`]) |
//! | silence | `silences` | `<service>` | maintenance windows ([`alert_state`]) |
//!
//! Hot events are packed ([`block`]): each commit of the writer stores the
//! events of each service and minute (of event time) it holds in one block
//! item, their columns in a compact binary layout, zstd-compressed but for
//! their random ids (`columns.rs`; `blk`, binary; `n` its events, `top` the
//! index of its highest severity), split at 128 KB. Blocks of the layout
//! before (JSON columns, with `raw`, their length uncompressed) still read. A put costs one write unit per started KB, so the write
//! units of a hot event are its share of a block's compressed bytes, not one
//! or two items of its own. The first block of a service and day also lists
//! the service under the day (each writer rewrites that entry about once an
//! hour, as later blocks outlive it). There is no index to pay
//! for.
//!
//! Redelivery: a block never holds an event twice (the events of one commit
//! are deduplicated by `event_id`); a batch redelivered in a later commit (or
//! to another process) lands in another block, and readers keep one event per
//! `event_id`. `expires_at` of a block is the latest arrival (`ingest_ts`) of
//! its events plus `ttl` (windows and alerts: plus `alert_ttl`). Event items
//! of one event each (`sk = <ts ms>#<event_id>`, written before blocks) are
//! still read until they expire.
//!
//! An alert is written in one transaction with its claim item, the claim put
//! with `attribute_not_exists(pk)`: when two processes raise the same alert
//! (the same deterministic id) exactly one transaction succeeds
//! ([`DynamoHotStore::record_alert`] says which). The claim names its
//! owner (one token per store), so [`DynamoHotStore::claim_alert`] also
//! reports a win when an earlier attempt of the same store wrote it and its
//! answer was lost. In shared-window mode the store is the router's
//! [`WindowStore`](crate::alerts::window_store::WindowStore): window
//! counts are read back with strongly consistent Queries, one per service.
//! Window counts are added
//! with `ADD`, so the partial counts of several processes sum up; a window
//! record written twice by one process (a retry after a lost response)
//! counts twice.
//!
//! # Backpressure
//!
//! [`DynamoHotWriter`] buffers hot rows for at most `commit_interval` and
//! `max_buffered_rows` rows, then writes them packed (BatchWriteItem, 25 items a
//! call, unprocessed items retried with exponential backoff and jitter) while
//! its mailbox waits; a throttled table stalls the stages before it.
//!
//! # Shutdown
//!
//! The final flush writes what is buffered and only then delivers the held
//! acks; a write that fails after its retries fails every held batch with the
//! reason (the sources redeliver them; readers keep one event per id).

pub mod alert_state;
pub mod batch_write;
pub mod block;
pub mod block_v1;
mod column_reader;
mod columns;
mod flat_json;
pub mod items;
mod recent;
pub mod store;
mod values;
mod wire;
pub mod writer;

use serde::{Deserialize, Serialize};
use spate_engine::{ActorError, ErrorClass, RetryHint};

use crate::event::Severity;

pub use self::batch_write::{BatchWrite, DynamoBatchWriter, RetryPolicy};
pub use self::store::DynamoHotStore;
pub use self::writer::DynamoHotWriter;

/// `[hot.dynamodb]`: the DynamoDB hot table and what goes into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamoHotConfig {
    /// Name of the table (hash key `pk`, range key `sk`, both strings; TTL on
    /// `expires_at`).
    pub table: String,
    /// Events at or above this severity go hot (`INFO`, `WARNING`, `ERROR` or
    /// `CRITICAL`, any case). Everything goes to the lake regardless.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Events expire (TTL) this many hours after they arrived (their
    /// `ingest_ts`, not their event time: a replay of old logs stays).
    #[serde(
        rename = "ttl",
        alias = "ttl_hours",
        with = "crate::component::units::with::hours",
        default = "default_ttl_hours"
    )]
    #[schemars(with = "crate::component::units::Hours")]
    pub ttl_hours: u64,
    /// Windows and alerts expire this many days after they end or are
    /// raised.
    #[serde(
        rename = "alert_ttl",
        alias = "alert_ttl_days",
        with = "crate::component::units::with::days",
        default = "default_alert_ttl_days"
    )]
    #[schemars(with = "crate::component::units::Days")]
    pub alert_ttl_days: u64,
    /// Write early when this many hot rows are buffered.
    #[serde(default = "default_max_buffered_rows")]
    pub max_buffered_rows: usize,
    /// Buffered rows are written (and their sources acknowledged) at least
    /// this often, in milliseconds. Each write packs the rows of each service
    /// and minute into one block item, billed by its compressed size (one
    /// write unit per started KB): a longer interval fills blocks better and
    /// costs fewer write units per event, a shorter one shows events to
    /// `spate hot` sooner. Keep it below the source's visibility timeout.
    #[serde(
        rename = "commit_interval",
        alias = "commit_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_commit_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub commit_interval_ms: u64,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_ttl_hours() -> u64 {
    72
}
fn default_alert_ttl_days() -> u64 {
    30
}
fn default_max_buffered_rows() -> usize {
    20_000
}
fn default_commit_interval_ms() -> u64 {
    30_000
}

impl DynamoHotConfig {
    /// The defaults for `table`.
    pub fn new(table: impl Into<String>) -> Self {
        DynamoHotConfig {
            table: table.into(),
            min_severity: default_min_severity(),
            ttl_hours: default_ttl_hours(),
            alert_ttl_days: default_alert_ttl_days(),
            max_buffered_rows: default_max_buffered_rows(),
            commit_interval_ms: default_commit_interval_ms(),
        }
    }

    /// Checks the values that have no sensible zero.
    pub fn validate(&self) -> Result<(), DynamoHotError> {
        if self.table.is_empty() {
            return Err(DynamoHotError::Config("table is empty".into()));
        }
        let zero = [
            ("ttl", self.ttl_hours == 0),
            ("alert_ttl", self.alert_ttl_days == 0),
            ("max_buffered_rows", self.max_buffered_rows == 0),
            ("commit_interval", self.commit_interval_ms == 0),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => Err(DynamoHotError::Config(format!(
                "{name}: must be at least 1"
            ))),
            None => Ok(()),
        }
    }

    /// Event TTL in seconds.
    pub(crate) fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl_hours.saturating_mul(3600)).unwrap_or(i64::MAX / 2)
    }

    /// Window and alert TTL in seconds.
    pub(crate) fn alert_ttl_secs(&self) -> i64 {
        i64::try_from(self.alert_ttl_days.saturating_mul(86_400)).unwrap_or(i64::MAX / 2)
    }
}

impl Default for DynamoHotConfig {
    /// The defaults with an empty table name (which
    /// [`DynamoHotConfig::validate`] rejects).
    fn default() -> Self {
        DynamoHotConfig::new("")
    }
}

/// Failures of the DynamoDB hot store.
#[derive(Debug, thiserror::Error)]
pub enum DynamoHotError {
    /// The configuration is unusable.
    #[error("dynamodb hot config: {0}")]
    Config(String),
    /// A DynamoDB call failed.
    #[error("dynamodb hot {op}: {message}")]
    Dynamo {
        /// What was being done.
        op: &'static str,
        /// The service's error code, if any.
        code: Option<String>,
        /// The error with its causes.
        message: String,
    },
    /// Items stayed unprocessed after every retry.
    #[error("dynamodb hot batch write: {items} items still unprocessed after {attempts} attempts")]
    Unprocessed {
        /// Items not written.
        items: usize,
        /// Calls made.
        attempts: u32,
    },
    /// Rows without the lake's columns, or a stored item that cannot be read.
    #[error("dynamodb hot data: {0}")]
    Data(String),
}

/// Error codes that mean the configuration (or the item) is unusable.
const BAD_INPUT_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "ValidationException",
    "UnrecognizedClientException",
];

impl DynamoHotError {
    pub(crate) fn dynamo<E, R>(op: &'static str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        DynamoHotError::Dynamo {
            op,
            code: aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e).map(str::to_string),
            message: aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string(),
        }
    }

    /// Whose fault it is: a bad config, a missing table or a rejected item
    /// are bad input; throttling, service and network failures are external;
    /// unreadable rows are a bug.
    pub fn class(&self) -> ErrorClass {
        match self {
            DynamoHotError::Config(_) => ErrorClass::BadInput,
            DynamoHotError::Dynamo { code, .. } => {
                if code
                    .as_deref()
                    .is_some_and(|c| BAD_INPUT_CODES.contains(&c))
                {
                    ErrorClass::BadInput
                } else {
                    ErrorClass::External
                }
            }
            DynamoHotError::Unprocessed { .. } => ErrorClass::External,
            DynamoHotError::Data(_) => ErrorClass::Internal,
        }
    }

    /// True for failures worth retrying (throttling, service errors, network).
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::External
    }
}

impl From<DynamoHotError> for crate::alerts::record::AlertStoreError {
    fn from(e: DynamoHotError) -> Self {
        Self::classified(e.class(), e.to_string())
    }
}

impl From<DynamoHotError> for ActorError {
    fn from(e: DynamoHotError) -> Self {
        let retry = match &e {
            DynamoHotError::Config(_) => RetryHint::Never,
            _ => RetryHint::Backoff,
        };
        ActorError::new(e.class(), retry, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_serde_defaults() {
        let parsed: DynamoHotConfig =
            serde_json::from_value(serde_json::json!({ "table": "spate-hot" })).unwrap();
        assert_eq!(parsed, DynamoHotConfig::new("spate-hot"));
        assert_eq!(parsed.min_severity, Severity::Warning);
        assert_eq!(parsed.ttl_hours, 72);
        assert_eq!(parsed.max_buffered_rows, 20_000);
        assert_eq!(parsed.commit_interval_ms, 30_000);
        assert_eq!(parsed.ttl_secs(), 72 * 3600);
        parsed.validate().unwrap();
        let error: DynamoHotConfig =
            serde_json::from_value(serde_json::json!({ "table": "t", "min_severity": "error" }))
                .unwrap();
        assert_eq!(error.min_severity, Severity::Error);
        assert!(
            serde_json::from_value::<DynamoHotConfig>(
                serde_json::json!({ "table": "t", "tll": 1 })
            )
            .is_err()
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(DynamoHotConfig::default().validate().is_err());
        let zero = DynamoHotConfig {
            commit_interval_ms: 0,
            ..DynamoHotConfig::new("t")
        };
        let err = zero.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "dynamodb hot config: commit_interval: must be at least 1"
        );
        let actor: ActorError = err.into();
        assert_eq!(actor.retry(), RetryHint::Never);
    }

    #[test]
    fn errors_are_classified() {
        let throttled = DynamoHotError::Dynamo {
            op: "batch write",
            code: Some("ProvisionedThroughputExceededException".into()),
            message: "slow down".into(),
        };
        assert!(throttled.is_retryable());
        let missing = DynamoHotError::Dynamo {
            op: "batch write",
            code: Some("ResourceNotFoundException".into()),
            message: "no table".into(),
        };
        assert_eq!(missing.class(), ErrorClass::BadInput);
        assert!(!missing.is_retryable());
        let network = DynamoHotError::Dynamo {
            op: "query",
            code: None,
            message: "connection refused".into(),
        };
        assert!(network.is_retryable());
    }
}
