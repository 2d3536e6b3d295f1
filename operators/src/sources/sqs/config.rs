//! `[[sources.sqs]]`: the settings of one queue, and the SQS source kind.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::component::ConfigError;

/// `[[sources.sqs]]`: one SQS queue to consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    /// URL of the queue (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    pub queue_url: String,
    /// Concurrent long-polling receivers.
    #[serde(default = "default_pollers")]
    pub pollers: usize,
    /// Long-poll wait of a receive (seconds, 0 to 20).
    #[serde(
        rename = "wait_time",
        alias = "wait_time_secs",
        with = "crate::component::units::with::secs",
        default = "default_wait_time_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub wait_time_secs: u32,
    /// Visibility timeout asked for on receive and on each extension (seconds).
    #[serde(
        rename = "visibility_timeout",
        alias = "visibility_timeout_secs",
        with = "crate::component::units::with::secs",
        default = "default_visibility_timeout_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub visibility_timeout_secs: u32,
    /// Messages per receive (1 to 10).
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Extend the visibility of messages still in flight past half their
    /// timeout, so slow commits (large lake files) do not cause redelivery.
    #[serde(default = "default_extend_visibility")]
    pub extend_visibility: bool,
}

fn default_pollers() -> usize {
    4
}
fn default_wait_time_secs() -> u32 {
    20
}
fn default_visibility_timeout_secs() -> u32 {
    60
}
fn default_max_messages() -> u32 {
    10
}
fn default_extend_visibility() -> bool {
    true
}

impl SqsConfig {
    /// The defaults for the queue at `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> Self {
        SqsConfig {
            queue_url: queue_url.into(),
            pollers: default_pollers(),
            wait_time_secs: default_wait_time_secs(),
            visibility_timeout_secs: default_visibility_timeout_secs(),
            max_messages: default_max_messages(),
            extend_visibility: default_extend_visibility(),
        }
    }

    /// Checks the limits SQS imposes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_url.is_empty() {
            return Err(ConfigError::new("queue_url", "must not be empty"));
        }
        if self.pollers == 0 {
            return Err(ConfigError::new("pollers", "must be at least 1"));
        }
        if self.wait_time_secs > 20 {
            return Err(ConfigError::new("wait_time", "must be 0s to 20s"));
        }
        if !(1..=10).contains(&self.max_messages) {
            return Err(ConfigError::new("max_messages", "must be 1 to 10"));
        }
        if !(1..=43_200).contains(&self.visibility_timeout_secs) {
            return Err(ConfigError::new("visibility_timeout", "must be 1s to 12h"));
        }
        Ok(())
    }
}

impl Default for SqsConfig {
    /// The defaults with an empty `queue_url` (which [`SqsConfig::validate`]
    /// rejects).
    fn default() -> Self {
        SqsConfig::new("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::SourceKind;
    use crate::sources::sqs::SqsKind;

    #[test]
    fn config_defaults_match_serde_defaults() {
        let parsed: SqsConfig =
            serde_json::from_value(serde_json::json!({ "queue_url": "http://q/1/logs" })).unwrap();
        assert_eq!(parsed, SqsConfig::new("http://q/1/logs"));
        assert_eq!(parsed.pollers, 4);
        assert_eq!(parsed.wait_time_secs, 20);
        assert_eq!(parsed.visibility_timeout_secs, 60);
        assert_eq!(parsed.max_messages, 10);
        assert!(parsed.extend_visibility);
        assert!(parsed.validate().is_ok());
        let unknown = serde_json::from_value::<SqsConfig>(
            serde_json::json!({ "queue_url": "q", "poolers": 2 }),
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn invalid_limits_are_rejected() {
        let base = SqsConfig::new("http://q/1/logs");
        let cases = [
            SqsConfig {
                max_messages: 11,
                ..base.clone()
            },
            SqsConfig {
                max_messages: 0,
                ..base.clone()
            },
            SqsConfig {
                wait_time_secs: 21,
                ..base.clone()
            },
            SqsConfig {
                pollers: 0,
                ..base.clone()
            },
            SqsConfig {
                visibility_timeout_secs: 0,
                ..base.clone()
            },
            SqsConfig::default(),
        ];
        for c in cases {
            let err = SqsKind::validate(&c).unwrap_err();
            assert!(!err.key().is_empty(), "{err}");
        }
    }
}
