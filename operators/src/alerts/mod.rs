//! Alerts: rules over closed windows, deduplication, and the outputs.
//!
//! The window aggregator ([`crate::windows`]) only closes event-time windows.
//! The [`router::AlertRouter`] is where the rules run, in every mode: it adds
//! the closed windows' counts to a [`window_store::WindowStore`] (in memory
//! for one process; the DynamoDB hot table when several processes consume
//! one stream and their partial counts merge there), reads the merged counts
//! back ([`pending`]: at once in memory, after a settle delay when shared),
//! and runs the [`evaluate::AlertEvaluator`]: every [`rules::Rule`] is
//! evaluated per closed window and service, and [`dedup::Dedup`] turns the
//! results into notices (one `firing` when a condition starts to hold, a
//! reminder after the cooldown, one `resolved` when it clears). With a shared
//! store each notice is claimed, so that exactly one process sends it. The
//! router records windows and notices in an [`record::AlertStore`] and writes
//! the notices to the [`outputs`]: stdout, an NDJSON file, a webhook, SNS,
//! PagerDuty.
//!
//! Besides fixed thresholds, [`anomaly`] rules compare a service's counts
//! with a baseline learnt per hour of the day (or week), kept in the hot
//! store across restarts. Between the rules and the outputs, [`silence`]
//! holds back the notices of services in a maintenance window
//! (`spate alerts silence`), and [`routing`] sends each notice to the
//! outputs of the routes it matches (by service, severity, rule and tags),
//! with repeat intervals; the webhook groups the notices of one service
//! decided together into one message.
//!
//! # Backpressure
//!
//! Stdout and file writes are small and synchronous. The webhook never blocks
//! the pipeline: notices go to a bounded queue served by a background task; a
//! full queue drops the notice and counts
//! `spate_alerts_dropped_total{output="webhook"}`.
//!
//! # Shutdown
//!
//! When the router closes, the webhook queue is drained for at most
//! `drain_timeout`; notices still queued after that are counted as failed.

pub mod anomaly;
pub mod dedup;
mod error;
pub mod evaluate;
pub mod outputs;
pub mod pending;
pub mod record;
mod retry;
pub mod rhythm;
pub mod router;
pub mod routing;
pub mod rules;
pub mod silence;
pub mod window_store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::error::AlertError;
use self::outputs::pagerduty::PagerDutyConfig;
use self::outputs::webhook::WebhookConfig;
use self::routing::{OutputName, RouteConfig, validate_routes};
use self::rules::{AlertRuleConfig, Rule, compile_rules, default_rules};
use crate::component::ConfigError;

/// `[alerts]`: rules, deduplication and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Print one readable line per notice on stdout.
    #[serde(default = "default_true")]
    pub stdout: bool,
    /// Append every notice as one JSON line to `file`.
    #[serde(default = "default_true")]
    pub file_enabled: bool,
    /// The NDJSON file of notices. Default: `<data-dir>/alerts.ndjson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// POST notices to a webhook (Slack-compatible JSON). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    /// Publish notices to an SNS topic (`[alerts.sns] topic_arn = "..."`), with
    /// message attributes service, severity, rule and state for filter policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<crate::sinks::sns::SnsConfig>,
    /// Send notices to PagerDuty (Events API v2): firing notices trigger,
    /// resolutions resolve, with one dedup key per rule and service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutyConfig>,
    /// While an alert keeps firing, repeat it after this long (seconds of event
    /// time, between window starts).
    #[serde(
        rename = "cooldown",
        alias = "cooldown_secs",
        with = "crate::component::units::with::secs",
        default = "default_cooldown_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub cooldown_secs: u64,
    /// The rules (`[[alerts.rules]]`). Rules given replace the defaults
    /// (`critical`, `error_burst`, `error_rate`, `silence`); `rules = []`
    /// disables alerting.
    #[serde(default = "default_rules")]
    pub rules: Vec<AlertRuleConfig>,
    /// Which outputs get which notices (`[[alerts.routes]]`), matched in
    /// order by service, severity, rule and tags. Default: none, every
    /// notice to every output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

fn default_true() -> bool {
    true
}
fn default_cooldown_secs() -> u64 {
    900
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            stdout: default_true(),
            file_enabled: default_true(),
            file: None,
            webhook: None,
            sns: None,
            pagerduty: None,
            cooldown_secs: default_cooldown_secs(),
            rules: default_rules(),
            routes: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Checks the rules, the outputs and the routes, returning the compiled
    /// rules; errors name the key within `[alerts]`.
    pub fn validate(&self) -> Result<Vec<Rule>, ConfigError> {
        if let Some(webhook) = &self.webhook {
            webhook.validate().map_err(|e| {
                let message = e.to_string();
                let message = message
                    .strip_prefix("alerts config: webhook: ")
                    .unwrap_or(&message);
                ConfigError::from_keyed_message(message).within("webhook")
            })?;
        }
        if let Some(pagerduty) = &self.pagerduty {
            pagerduty.validate().map_err(|e| e.within("pagerduty"))?;
        }
        let rules = compile_rules(&self.rules)?;
        validate_routes(&self.routes, &self.configured_outputs(), &rules)?;
        Ok(rules)
    }

    /// The outputs this configuration turns on.
    pub fn configured_outputs(&self) -> BTreeSet<OutputName> {
        let mut on = BTreeSet::new();
        let outputs = [
            (OutputName::Stdout, self.stdout),
            (OutputName::File, self.file_enabled),
            (OutputName::Webhook, self.webhook.is_some()),
            (OutputName::Sns, self.sns.is_some()),
            (OutputName::Pagerduty, self.pagerduty.is_some()),
        ];
        for (name, enabled) in outputs {
            if enabled {
                on.insert(name);
            }
        }
        on
    }

    /// The NDJSON file to write, if enabled: `file`, or `default_path`.
    pub fn file_path(&self, default_path: &Path) -> Option<PathBuf> {
        self.file_enabled
            .then(|| self.file.clone().unwrap_or_else(|| default_path.into()))
    }

    /// Reminder period in milliseconds.
    pub fn cooldown_ms(&self) -> i64 {
        i64::try_from(self.cooldown_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_defaults_equal_default() {
        let parsed: AlertsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, AlertsConfig::default());
        assert_eq!(parsed.validate().unwrap().len(), 4);
        assert_eq!(
            parsed.file_path(Path::new("/data/alerts.ndjson")),
            Some(PathBuf::from("/data/alerts.ndjson"))
        );
    }

    #[test]
    fn configured_rules_replace_defaults_and_unknown_fields_fail() {
        let c: AlertsConfig = serde_json::from_str(
            r#"{"file_enabled": false, "rules": [{"name": "logins", "kind": "tag",
                "tag": "failed_login", "threshold": 5, "severity": "WARNING"}]}"#,
        )
        .unwrap();
        let rules = c.validate().unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].tag.as_deref(), Some("failed_login"));
        assert_eq!(c.file_path(Path::new("x")), None);
        assert!(serde_json::from_str::<AlertsConfig>(r#"{"rulez": []}"#).is_err());
        let bad: AlertsConfig =
            serde_json::from_str(r#"{"rules": [{"name": "t", "kind": "tag"}]}"#).unwrap();
        let err = bad.validate().unwrap_err();
        assert_eq!(err.key(), "rules[0].tag");
        assert!(err.message().starts_with("rule \"t\""), "{err}");
    }
}
