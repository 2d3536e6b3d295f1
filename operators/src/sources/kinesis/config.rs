//! `[[sources.kinesis]]`: the settings of one stream, and the Kinesis source
//! kind.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::component::ConfigError;

/// Where reading starts in a shard without a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The oldest record the stream keeps.
    #[default]
    TrimHorizon,
    /// Only records put after the shard is first leased.
    Latest,
}

/// `[[sources.kinesis]]`: one stream to consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// Name of the stream.
    pub stream: String,
    /// DynamoDB table of shard leases and checkpoints (hash key `lease_key`,
    /// a string); one table per stream and consuming application.
    pub lease_table: String,
    /// This process's name in the lease table. Default: `<hostname>-<pid>`.
    #[serde(default = "default_worker_id")]
    #[schemars(extend("default" = "<hostname>-<pid>"))]
    pub worker_id: String,
    /// A lease not renewed for this long (seconds) is free for another
    /// process to take.
    #[serde(
        rename = "lease_duration",
        alias = "lease_duration_secs",
        with = "crate::component::units::with::secs",
        default = "default_lease_duration_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub lease_duration_secs: u64,
    /// How often held leases are renewed and free ones looked for (seconds);
    /// below `lease_duration`.
    #[serde(
        rename = "renew_every",
        alias = "renew_every_secs",
        with = "crate::component::units::with::secs",
        default = "default_renew_every_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub renew_every_secs: u64,
    /// Wait between GetRecords calls of a shard that is caught up
    /// (milliseconds).
    #[serde(
        rename = "poll_interval",
        alias = "poll_interval_ms",
        with = "crate::component::units::with::millis",
        default = "default_poll_interval_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub poll_interval_ms: u64,
    /// Records per GetRecords call (1 to 10000).
    #[serde(default = "default_max_records")]
    pub max_records: u32,
    /// Where a shard without a checkpoint starts: `trim_horizon` or `latest`.
    #[serde(default)]
    pub start_at: StartAt,
}

/// `<hostname>-<pid>`.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "spate".to_string());
    format!("{host}-{}", std::process::id())
}
fn default_lease_duration_secs() -> u64 {
    30
}
fn default_renew_every_secs() -> u64 {
    10
}
fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_max_records() -> u32 {
    1000
}

impl KinesisConfig {
    /// The defaults for `stream` with leases in `lease_table`.
    pub fn new(stream: impl Into<String>, lease_table: impl Into<String>) -> Self {
        KinesisConfig {
            stream: stream.into(),
            lease_table: lease_table.into(),
            worker_id: default_worker_id(),
            lease_duration_secs: default_lease_duration_secs(),
            renew_every_secs: default_renew_every_secs(),
            poll_interval_ms: default_poll_interval_ms(),
            max_records: default_max_records(),
            start_at: StartAt::default(),
        }
    }

    /// Checks the limits Kinesis imposes and the lease timing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: &str| Err(ConfigError::new(key, msg));
        if self.stream.is_empty() {
            return bad("stream", "must not be empty");
        }
        if self.lease_table.is_empty() {
            return bad("lease_table", "must not be empty");
        }
        if self.worker_id.is_empty() {
            return bad("worker_id", "must not be empty");
        }
        if !(1..=10_000).contains(&self.max_records) {
            return bad("max_records", "must be 1 to 10000");
        }
        if self.poll_interval_ms == 0 {
            return bad("poll_interval", "must be at least 1");
        }
        if self.renew_every_secs == 0 || self.renew_every_secs >= self.lease_duration_secs {
            return bad("renew_every", "must be at least 1 and below lease_duration");
        }
        Ok(())
    }

    pub(crate) fn renew_every(&self) -> Duration {
        Duration::from_secs(self.renew_every_secs)
    }

    pub(crate) fn lease_duration_ms(&self) -> i64 {
        i64::try_from(self.lease_duration_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

impl Default for KinesisConfig {
    /// The defaults with an empty stream and table (which
    /// [`KinesisConfig::validate`] rejects).
    fn default() -> Self {
        KinesisConfig::new("", "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::SourceKind;
    use crate::sources::kinesis::KinesisKind;

    #[test]
    fn config_defaults_match_serde_defaults() {
        let parsed: KinesisConfig = serde_json::from_value(
            serde_json::json!({ "stream": "logs", "lease_table": "leases" }),
        )
        .unwrap();
        assert_eq!(parsed, KinesisConfig::new("logs", "leases"));
        assert_eq!(parsed.lease_duration_secs, 30);
        assert_eq!(parsed.renew_every_secs, 10);
        assert_eq!(parsed.poll_interval_ms, 1000);
        assert_eq!(parsed.max_records, 1000);
        assert_eq!(parsed.start_at, StartAt::TrimHorizon);
        assert!(
            parsed
                .worker_id
                .ends_with(&format!("-{}", std::process::id()))
        );
        parsed.validate().unwrap();
        let latest: KinesisConfig = serde_json::from_value(
            serde_json::json!({ "stream": "s", "lease_table": "t", "start_at": "latest" }),
        )
        .unwrap();
        assert_eq!(latest.start_at, StartAt::Latest);
        let unknown = serde_json::from_value::<KinesisConfig>(
            serde_json::json!({ "stream": "s", "lease_table": "t", "shards": 2 }),
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let base = KinesisConfig::new("logs", "leases");
        let cases = [
            KinesisConfig {
                max_records: 0,
                ..base.clone()
            },
            KinesisConfig {
                max_records: 10_001,
                ..base.clone()
            },
            KinesisConfig {
                renew_every_secs: 30,
                ..base.clone()
            },
            KinesisConfig {
                poll_interval_ms: 0,
                ..base.clone()
            },
            KinesisConfig {
                worker_id: String::new(),
                ..base.clone()
            },
            KinesisConfig::default(),
        ];
        for c in cases {
            let err = KinesisKind::validate(&c).unwrap_err();
            assert!(!err.key().is_empty(), "{err}");
        }
    }
}
