//! `[journal]`: where the ingest journal lives and how big it may grow.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::JournalError;

const MIB: u64 = 1024 * 1024;

/// `[journal]`: the write-ahead journal behind HTTP push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Directory of the journal. Default: `<data-dir>/journal` (the caller
    /// passes it to [`Journal::open`](super::Journal::open)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A segment file is closed and a new one started at the first group
    /// commit after it reaches this size (MiB).
    #[serde(
        rename = "segment_size",
        alias = "segment_mib",
        with = "crate::component::units::with::mib",
        default = "default_segment_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub segment_mib: u64,
    /// Bytes appended but not yet taken by the pipeline (MiB) at or above which
    /// appends are refused as saturated (HTTP 429 with `Retry-After`).
    #[serde(
        rename = "max_backlog",
        alias = "max_backlog_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_backlog_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_backlog_mib: u64,
    /// Total size of the journal files on disk (MiB) above which appends are
    /// refused (HTTP 503). Space is freed once the sinks commit and the
    /// checkpoint moves past whole segments.
    #[serde(
        rename = "max_disk",
        alias = "max_disk_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_disk_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_disk_mib: u64,
    /// Adjacent line records are coalesced into one pipeline batch of up to
    /// this many bytes (KiB).
    #[serde(
        rename = "chunk_size",
        alias = "chunk_kib",
        with = "crate::component::units::with::kib",
        default = "default_chunk_kib"
    )]
    #[schemars(with = "crate::component::units::KiB")]
    pub chunk_kib: u64,
    /// How often the checkpoint (the position below which every record is
    /// durably committed by the sinks) is saved when it moved (milliseconds).
    #[serde(
        rename = "checkpoint_interval",
        alias = "checkpoint_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_checkpoint_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub checkpoint_interval_ms: u64,
}

fn default_segment_mib() -> u64 {
    64
}

fn default_max_backlog_mib() -> u64 {
    512
}

fn default_max_disk_mib() -> u64 {
    4096
}

fn default_chunk_kib() -> u64 {
    1024
}

fn default_checkpoint_interval_ms() -> u64 {
    1000
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: None,
            segment_mib: default_segment_mib(),
            max_backlog_mib: default_max_backlog_mib(),
            max_disk_mib: default_max_disk_mib(),
            chunk_kib: default_chunk_kib(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
        }
    }
}

/// The configuration in the units the journal works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub segment_bytes: u64,
    pub max_backlog_bytes: u64,
    pub max_disk_bytes: u64,
    pub chunk_bytes: u64,
    pub checkpoint_interval: Duration,
}

impl JournalConfig {
    /// Checks the values without I/O (as [`Journal::open`](super::Journal::open) will).
    pub fn validate(&self) -> Result<(), JournalError> {
        self.limits().map(|_| ())
    }

    /// Checks the values and converts them to bytes and durations.
    pub(super) fn limits(&self) -> Result<Limits, JournalError> {
        let positive = [
            ("segment_size", self.segment_mib),
            ("max_backlog", self.max_backlog_mib),
            ("max_disk", self.max_disk_mib),
            ("chunk_size", self.chunk_kib),
            ("checkpoint_interval", self.checkpoint_interval_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(JournalError::Config(format!("{name}: must be at least 1")));
            }
        }
        let bytes = |name: &str, value: u64, unit: u64| {
            value
                .checked_mul(unit)
                .ok_or_else(|| JournalError::Config(format!("{name} = {value} is too large")))
        };
        Ok(Limits {
            segment_bytes: bytes("segment_size", self.segment_mib, MIB)?,
            max_backlog_bytes: bytes("max_backlog", self.max_backlog_mib, MIB)?,
            max_disk_bytes: bytes("max_disk", self.max_disk_mib, MIB)?,
            chunk_bytes: bytes("chunk_size", self.chunk_kib, 1024)?,
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_defaults_equal_default() {
        let parsed: JournalConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, JournalConfig::default());
        assert_eq!(parsed.segment_mib, 64);
        assert_eq!(parsed.max_backlog_mib, 512);
        assert_eq!(parsed.max_disk_mib, 4096);
        assert_eq!(parsed.chunk_kib, 1024);
        assert_eq!(parsed.checkpoint_interval_ms, 1000);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let parsed = serde_json::from_str::<JournalConfig>(r#"{"segment_mb": 1}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn limits_convert_units_and_refuse_zero() {
        let limits = JournalConfig::default().limits().unwrap();
        assert_eq!(limits.segment_bytes, 64 * MIB);
        assert_eq!(limits.chunk_bytes, 1024 * 1024);
        assert_eq!(limits.checkpoint_interval, Duration::from_secs(1));
        let zero = JournalConfig {
            chunk_kib: 0,
            ..JournalConfig::default()
        };
        let err = zero.limits().unwrap_err();
        assert_eq!(
            err.to_string(),
            "journal config: chunk_size: must be at least 1"
        );
        let huge = JournalConfig {
            max_disk_mib: u64::MAX,
            ..JournalConfig::default()
        };
        assert!(huge.limits().is_err());
    }
}
