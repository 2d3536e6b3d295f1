//! The embedded hot store: recent important events, closed windows and alerts
//! in a local SQLite database, with the access patterns DynamoDB serves in
//! production.
//!
//! `spate run` writes it ([`HotWriter`] for events, [`HotStore`] as the alert
//! router's [`AlertStore`](crate::alerts::record::AlertStore) for windows and
//! alerts); `spate hot recent|alerts`, another process, reads it at the same
//! time ([`HotStore::open_read_only`]). The database runs in WAL mode, so readers
//! never block the writer nor see a half-written transaction, and with
//! `synchronous=FULL`, so a committed transaction survives a power cut: acks
//! depend on it.
//!
//! # Tables
//!
//! | table | key | indexes | serves |
//! | --- | --- | --- | --- |
//! | `event_blocks` | rowid | `(service, last_ms)`, `(last_ms)`, `(ingest_ms)` | "recent errors of service X between T1 and T2" ([`HotStore::recent`] with a service), "recent errors anywhere" (without), retention |
//! | `windows` | `(window_start_ms, service)` | `(service, window_start_ms)` | "counts per window", of one service or all ([`HotStore::windows`]) |
//! | `alerts` | `id` | `(raised_at_ms)` | "alerts today" ([`HotStore::alerts`]) |
//! | `baselines` | `(rule, service)` | | anomaly baselines of the alert router ([`alert_state`]) |
//! | `silences` | `service` | | maintenance windows (`spate alerts silence`, [`alert_state`]) |
//!
//! Hot events are packed ([`blocks`]): each commit stores the events of each
//! service and minute (of event time) it holds in one `event_blocks` row, in
//! the block layout of the DynamoDB store (zstd at a fast level, split at
//! 16 KiB), with the span, the oldest and newest event time, the latest
//! arrival and the highest severity beside it, so questions skip blocks
//! without opening them and read the newest first. A block never holds an event twice; a batch
//! redelivered in a later commit lands in another block and readers keep
//! one event per `event_id` (it comes from the source position). Windows
//! and alerts are keyed, so every write of them is an upsert (alert ids are
//! deterministic). Only events at or above [`HotConfig::min_severity`] go
//! hot; everything goes to the lake. Retention ([`HotStore::expire`])
//! deletes blocks whose events all arrived more than [`HotConfig::retention`]
//! ago (or, with `retention_from = "event"`, whose newest event time is that
//! old): an event stays at least that long, and longer only by the spread
//! of its block (the arrivals of one commit, or one minute of event time). Windows and alerts older than [`HotConfig::alert_retention`] go
//! too. The schema is versioned with `PRAGMA user_version`
//! ([`schema::SCHEMA_VERSION`]); a writer migrates the one row per event of
//! version 3 into blocks.
//!
//! # DynamoDB
//!
//! [`dynamo_hot`](crate::sinks::dynamo_hot) answers the same questions from
//! one DynamoDB table, with the same blocks (compressed harder, at zstd level
//! 15, since DynamoDB bills a write by the item's size).
//!
//! # Backpressure
//!
//! [`HotWriter`] buffers hot rows for at most `commit_interval` and at most
//! `max_buffered_rows` rows, then commits them in one transaction on the
//! blocking pool while its mailbox waits; a slow disk therefore stalls the
//! stages before it instead of growing memory. Batches with no hot rows are
//! acknowledged at once and cost nothing.
//!
//! # Shutdown
//!
//! The final flush commits what is buffered and only then delivers the held
//! acks. If a commit fails, every held batch fails with the reason (its source
//! redelivers it, and readers keep one event per `event_id`) and the
//! writer restarts with backoff.

pub mod alert_state;
pub mod blocks;
pub mod buffer;
pub mod event;
pub mod event_view;
mod migrate;
pub mod newest;
pub mod query;
pub mod rows;
pub mod schema;
pub mod store;
pub mod writer;

use std::path::PathBuf;

use rusqlite::ErrorCode;
use serde::{Deserialize, Serialize};
use spate_engine::{ActorError, ErrorClass};

use crate::event::Severity;

pub use self::buffer::HotBuffer;
pub use self::event::{HotEvent, StoredEvent};
pub use self::query::RecentQuery;
pub use self::rows::HotRows;
pub use self::store::{ExpireStats, Expired, HotStore, Retention};
pub use self::writer::HotWriter;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Failures of the hot store.
#[derive(Debug, thiserror::Error)]
pub enum HotError {
    /// An SQLite call failed.
    #[error("hot store {op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A read-only open found no database file.
    #[error("no hot store at {}; is `spate run` using this data dir?", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file's schema version is not one this build knows.
    #[error(
        "hot store at {} has schema version {found}, this build reads version {expected}",
        path.display()
    )]
    SchemaVersion {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The version this build writes and reads.
        expected: i64,
    },
    /// A read-only open found a file an older build wrote, not yet migrated.
    #[error(
        "hot store at {} has schema version {found}, written by an older spate; \
         start `spate run` on it once to migrate it",
        path.display()
    )]
    Outdated {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
    },
    /// The rows do not have the lake's columns, or a stored row is unreadable.
    #[error("hot store data: {0}")]
    Data(String),
    /// The configuration is unusable.
    #[error("hot config: {0}")]
    Config(String),
    /// The blocking task running a commit panicked or was cancelled.
    #[error("hot store task failed: {0}")]
    Task(String),
}

impl HotError {
    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> HotError {
        move |source| HotError::Sqlite { op, source }
    }

    /// Whose fault it is: the disk and a busy database are external and worth
    /// retrying; a missing or foreign file and a bad config are bad input;
    /// anything else is a bug.
    pub fn class(&self) -> ErrorClass {
        match self {
            HotError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(
                    ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::ReadOnly
                    | ErrorCode::PermissionDenied
                    | ErrorCode::FileLockingProtocolFailed
                    | ErrorCode::OutOfMemory,
                ) => ErrorClass::External,
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ErrorClass::BadInput,
                _ => ErrorClass::Internal,
            },
            HotError::Missing { .. }
            | HotError::SchemaVersion { .. }
            | HotError::Outdated { .. }
            | HotError::Config(_) => ErrorClass::BadInput,
            HotError::Data(_) | HotError::Task(_) => ErrorClass::Internal,
        }
    }

    /// True for failures that may pass on their own (busy, locked, disk full).
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::External
    }
}

impl From<HotError> for crate::alerts::record::AlertStoreError {
    fn from(e: HotError) -> Self {
        Self::classified(e.class(), e.to_string())
    }
}

impl From<HotError> for ActorError {
    fn from(e: HotError) -> Self {
        ActorError::classified(e.class(), e.to_string())
    }
}

/// `[hot]`: what is kept hot, where, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HotConfig {
    /// The SQLite database file. Default: `<data-dir>/hot.db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Events at or above this severity go hot (`INFO`, `WARNING`, `ERROR` or
    /// `CRITICAL`, any case). Everything goes to the lake regardless.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Events are kept this long, counted as `retention_from` says.
    #[serde(
        rename = "retention",
        alias = "retention_hours",
        with = "crate::component::units::with::hours",
        default = "default_retention_hours"
    )]
    #[schemars(with = "crate::component::units::Hours")]
    pub retention_hours: u64,
    /// What event retention counts from: `ingest` (when Spate received the
    /// event: a replay of old logs stays for the whole retention) or `event`
    /// (the event's own time: old logs expire at the next pass). Default
    /// `ingest`.
    #[serde(default)]
    pub retention_from: RetentionClock,
    /// Closed windows and alerts are kept this many days.
    #[serde(
        rename = "alert_retention",
        alias = "alert_retention_days",
        with = "crate::component::units::with::days",
        default = "default_alert_retention_days"
    )]
    #[schemars(with = "crate::component::units::Days")]
    pub alert_retention_days: u64,
    /// Buffered hot rows are committed (and their sources acknowledged) at
    /// least this often, in milliseconds.
    #[serde(
        rename = "commit_interval",
        alias = "commit_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_commit_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub commit_interval_ms: u64,
    /// Commit early when this many rows are buffered.
    #[serde(default = "default_max_buffered_rows")]
    pub max_buffered_rows: usize,
}

/// What hot-store retention counts an event's age from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClock {
    /// When Spate received the event (`ingest_ts`).
    #[default]
    Ingest,
    /// The event's own time (`ts`).
    Event,
}

impl RetentionClock {
    /// `ingest` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionClock::Ingest => "ingest",
            RetentionClock::Event => "event",
        }
    }
}

fn default_min_severity() -> Severity {
    Severity::Warning
}
fn default_retention_hours() -> u64 {
    72
}
fn default_alert_retention_days() -> u64 {
    30
}
fn default_commit_interval_ms() -> u64 {
    200
}
fn default_max_buffered_rows() -> usize {
    50_000
}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig {
            path: None,
            min_severity: default_min_severity(),
            retention_hours: default_retention_hours(),
            retention_from: RetentionClock::default(),
            alert_retention_days: default_alert_retention_days(),
            commit_interval_ms: default_commit_interval_ms(),
            max_buffered_rows: default_max_buffered_rows(),
        }
    }
}

impl HotConfig {
    /// Checks the values that have no sensible zero.
    pub fn validate(&self) -> Result<(), HotError> {
        let zero = [
            ("retention", self.retention_hours == 0),
            ("alert_retention", self.alert_retention_days == 0),
            ("commit_interval", self.commit_interval_ms == 0),
            ("max_buffered_rows", self.max_buffered_rows == 0),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => Err(HotError::Config(format!("{name}: must be at least 1"))),
            None => Ok(()),
        }
    }

    /// The database file: `path`, or `default` (`<data-dir>/hot.db`).
    pub fn path_or(&self, default: PathBuf) -> PathBuf {
        self.path.clone().unwrap_or(default)
    }

    /// How long rows are kept.
    pub fn retention(&self) -> Retention {
        let hours = i64::try_from(self.retention_hours).unwrap_or(i64::MAX / HOUR_MS);
        let days = i64::try_from(self.alert_retention_days).unwrap_or(i64::MAX / DAY_MS);
        Retention {
            events_ms: hours.saturating_mul(HOUR_MS),
            alerts_ms: days.saturating_mul(DAY_MS),
            from: self.retention_from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spate_engine::RetryHint;

    #[test]
    fn config_defaults_match_serde_defaults() {
        let parsed: HotConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, HotConfig::default());
        assert_eq!(parsed.min_severity, Severity::Warning);
        assert_eq!(parsed.retention().events_ms, 72 * HOUR_MS);
        assert_eq!(parsed.retention().alerts_ms, 30 * DAY_MS);
        parsed.validate().unwrap();
    }

    #[test]
    fn min_severity_is_case_insensitive_and_strict() {
        let parsed: HotConfig = serde_json::from_str(r#"{"min_severity":"error"}"#).unwrap();
        assert_eq!(parsed.min_severity, Severity::Error);
        let round = serde_json::to_value(&parsed).unwrap();
        assert_eq!(round["min_severity"], "ERROR");
        let err = serde_json::from_str::<HotConfig>(r#"{"min_severity":"loud"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected INFO, WARNING, ERROR or CRITICAL"),
            "{err}"
        );
        assert!(serde_json::from_str::<HotConfig>(r#"{"colour":"red"}"#).is_err());
    }

    #[test]
    fn zero_values_are_rejected() {
        let config = HotConfig {
            commit_interval_ms: 0,
            ..HotConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "hot config: commit_interval: must be at least 1"
        );
        assert_eq!(err.class(), ErrorClass::BadInput);
    }

    #[test]
    fn busy_and_disk_full_are_external_and_retryable() {
        for code in [ErrorCode::DatabaseBusy, ErrorCode::DiskFull] {
            let source = rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error {
                    code,
                    extended_code: 0,
                },
                None,
            );
            let e = HotError::Sqlite {
                op: "commit",
                source,
            };
            assert!(e.is_retryable());
            let actor: ActorError = e.into();
            assert_eq!(actor.class(), ErrorClass::External);
            assert_eq!(actor.retry(), RetryHint::Backoff);
        }
    }
}
