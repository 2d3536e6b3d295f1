//! The PagerDuty output: Events API v2. A firing notice is a `trigger`, a
//! resolution a `resolve`, both with the dedup key `spate/<rule>/<service>`,
//! so reminders update the open incident and the resolution closes it.
//! Each notice is one event (PagerDuty groups incidents itself; a grouped
//! event could not be resolved alert by alert).
//!
//! The routing key (an integration key of a PagerDuty service) comes from
//! `routing_key`, or from AWS Secrets Manager (`routing_key_secret`, read
//! once at startup, like the webhook's token). Delivery, retries and
//! shutdown are those of [`super::http_delivery`]: 2xx (PagerDuty answers
//! 202) is delivered, 429 and 5xx are retried, other 4xx are not.
//!
//! # Backpressure
//!
//! Events wait in a bounded queue (`queue`); a full queue drops the event and
//! counts `spate_alerts_dropped_total{output="pagerduty"}`.
//!
//! # Shutdown
//!
//! Queued events are delivered for at most `drain_timeout`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use spate_engine::SupervisorPolicy;

use super::format_window;
use super::http_delivery::{DeliveryStats, HttpDelivery, HttpTarget};
use crate::alerts::AlertError;
use crate::alerts::record::{AlertRecord, AlertState};
use crate::aws::secrets::{self, SecretError};
use crate::component::ConfigError;

/// `[alerts.pagerduty]`: PagerDuty Events API v2.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key (Events API v2). Set this or
    /// `routing_key_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// The routing key from AWS Secrets Manager instead: a secret ARN or
    /// name, read once at startup (with the `[aws]` settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_secret: Option<String>,
    /// With `routing_key_secret`: the secret is a JSON object and the key is
    /// the string value of this key. Default: the whole secret string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_secret_key: Option<String>,
    /// The Events API endpoint.
    #[serde(default = "default_url")]
    pub url: String,
    /// Timeout of one request, connecting included (milliseconds).
    #[serde(
        rename = "timeout",
        alias = "timeout_ms",
        with = "crate::component::units::with::millis",
        default = "default_timeout_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub timeout_ms: u64,
    /// Retries after the first attempt, on connect errors, timeouts, 5xx and 429.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Delay before the first retry (milliseconds); doubles each retry, ±20 % jitter.
    #[serde(
        rename = "initial_backoff",
        alias = "initial_backoff_ms",
        with = "crate::component::units::with::millis",
        default = "default_initial_backoff_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub initial_backoff_ms: u64,
    /// Upper bound of the delay between retries (milliseconds).
    #[serde(
        rename = "max_backoff",
        alias = "max_backoff_ms",
        with = "crate::component::units::with::millis",
        default = "default_max_backoff_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub max_backoff_ms: u64,
    /// Events waiting for delivery at most; more are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// At shutdown, how long queued events may still be delivered (milliseconds).
    #[serde(
        rename = "drain_timeout",
        alias = "drain_timeout_ms",
        with = "crate::component::units::with::millis",
        default = "default_drain_timeout_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub drain_timeout_ms: u64,
}

fn default_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_retries() -> u32 {
    5
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    30_000
}
fn default_queue() -> usize {
    1_000
}
fn default_drain_timeout_ms() -> u64 {
    5_000
}

impl Default for PagerDutyConfig {
    /// Every default, and no routing key (which
    /// [`PagerDutyConfig::validate`] rejects).
    fn default() -> Self {
        PagerDutyConfig {
            routing_key: None,
            routing_key_secret: None,
            routing_key_secret_key: None,
            url: default_url(),
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            queue: default_queue(),
            drain_timeout_ms: default_drain_timeout_ms(),
        }
    }
}

impl fmt::Debug for PagerDutyConfig {
    /// Leaves out the routing key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyConfig")
            .field("routing_key", &self.routing_key.as_ref().map(|_| "***"))
            .field("routing_key_secret", &self.routing_key_secret)
            .field("url", &self.url)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl PagerDutyConfig {
    /// Checks the key settings, the URL and the limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.routing_key, &self.routing_key_secret) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "routing_key",
                    "set routing_key or routing_key_secret, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "routing_key",
                    "set routing_key or routing_key_secret",
                ));
            }
            (Some(k), None) if k.trim().is_empty() => {
                return Err(ConfigError::new("routing_key", "is empty"));
            }
            (None, Some(s)) if s.trim().is_empty() => {
                return Err(ConfigError::new("routing_key_secret", "is empty"));
            }
            _ => {}
        }
        if self.routing_key_secret_key.is_some() && self.routing_key_secret.is_none() {
            return Err(ConfigError::new(
                "routing_key_secret_key",
                "needs routing_key_secret",
            ));
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ConfigError::new("url", format!("{:?} is not valid: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "url",
                format!("{:?} must be http or https", self.url),
            ));
        }
        for (key, zero) in [
            ("queue", self.queue == 0),
            ("timeout", self.timeout_ms == 0),
        ] {
            if zero {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Whether the routing key has to be read from Secrets Manager first.
    pub fn needs_secret(&self) -> bool {
        self.routing_key_secret.is_some()
    }

    /// With `routing_key_secret` set, reads the key from Secrets Manager
    /// into `routing_key` (the secret settings are cleared). Call once at
    /// startup.
    pub async fn resolve_secret(
        mut self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, SecretError> {
        if let Some(secret) = self.routing_key_secret.take() {
            let key = self.routing_key_secret_key.take();
            self.routing_key = Some(secrets::secret_string(client, &secret, key.as_deref()).await?);
        }
        Ok(self)
    }
}

/// The dedup key of an alert: `spate/<rule>/<service>`, the same for its
/// trigger, reminders and resolution.
pub fn dedup_key(alert: &AlertRecord) -> String {
    format!("spate/{}/{}", alert.rule, alert.service)
}

/// The Events API v2 body of a notice.
///
/// ```
/// # use spate_operators::alerts::record::{AlertRecord, AlertState};
/// use spate_operators::alerts::outputs::pagerduty::event_body;
/// # let alert = AlertRecord { id: "critical:api:0:firing".into(), rule: "critical".into(),
/// #     service: "api".into(), state: AlertState::Firing, severity: "CRITICAL".into(),
/// #     window_start_ms: 0, window_end_ms: 300_000, raised_at_ms: 360_000, value: 2.0,
/// #     threshold: 0.0, message: "2 critical events > 0".into() };
/// let body = event_body("KEY", &alert);
/// assert_eq!(body["event_action"], "trigger");
/// assert_eq!(body["dedup_key"], "spate/critical/api");
/// assert_eq!(body["payload"]["severity"], "critical");
/// ```
pub fn event_body(routing_key: &str, alert: &AlertRecord) -> serde_json::Value {
    match alert.state {
        AlertState::Resolved => json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(alert),
        }),
        AlertState::Firing => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(alert),
            "payload": {
                "summary": summary(alert),
                "source": alert.service,
                "severity": match alert.severity.as_str() {
                    "CRITICAL" => "critical",
                    "ERROR" => "error",
                    "WARNING" => "warning",
                    _ => "info",
                },
                "timestamp": crate::sinks::hot::query::rfc3339_ms(alert.raised_at_ms),
                "component": alert.service,
                "group": alert.rule,
                "class": alert.rule,
                "custom_details": {
                    "message": alert.message,
                    "window": format_window(alert.window_start_ms, alert.window_end_ms),
                    "value": alert.value,
                    "threshold": alert.threshold,
                    "id": alert.id,
                },
            },
            "client": "spate",
        }),
    }
}

/// `<rule> on <service>: <message>`, at most 1024 characters (the API's limit).
fn summary(alert: &AlertRecord) -> String {
    let text = format!("{} on {}: {}", alert.rule, alert.service, alert.message);
    text.chars().take(1024).collect()
}

/// The PagerDuty output: a queue of events and the task sending them.
#[derive(Debug)]
pub struct PagerDutyOutput {
    delivery: HttpDelivery,
    routing_key: String,
}

impl PagerDutyOutput {
    /// Builds an HTTP client with the timeout and starts the delivery task
    /// (inside a tokio runtime). The routing key must be resolved.
    pub fn spawn(config: &PagerDutyConfig) -> Result<Self, AlertError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AlertError::Config(format!("pagerduty: cannot build client: {e}")))?;
        Self::with_client(config, client)
    }

    /// Like [`PagerDutyOutput::spawn`], with a client of the caller's.
    pub fn with_client(
        config: &PagerDutyConfig,
        client: reqwest::Client,
    ) -> Result<Self, AlertError> {
        let Some(routing_key) = config
            .routing_key
            .clone()
            .filter(|_| !config.needs_secret())
        else {
            return Err(AlertError::Config(
                "pagerduty: routing_key_secret is read at startup, before the output starts".into(),
            ));
        };
        config
            .validate()
            .map_err(|e| AlertError::Config(format!("pagerduty: {e}")))?;
        let target = HttpTarget {
            output: "pagerduty",
            url: config.url.clone(),
            headers: HeaderMap::new(),
            max_retries: config.max_retries,
            policy: SupervisorPolicy {
                initial_backoff: Duration::from_millis(config.initial_backoff_ms),
                max_backoff: Duration::from_millis(
                    config.max_backoff_ms.max(config.initial_backoff_ms),
                ),
                multiplier: 2.0,
                jitter: 0.2,
                ..SupervisorPolicy::default()
            },
        };
        Ok(PagerDutyOutput {
            delivery: HttpDelivery::spawn(
                client,
                target,
                config.queue,
                Duration::from_millis(config.drain_timeout_ms),
            ),
            routing_key,
        })
    }

    /// The delivery counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.delivery.stats()
    }

    /// Queues one event per notice without waiting.
    pub fn enqueue_all(&self, alerts: &[AlertRecord]) {
        for alert in alerts {
            self.delivery
                .enqueue(&alert.id, event_body(&self.routing_key, alert));
        }
    }

    /// Stops taking notices and delivers what is queued, within the drain
    /// timeout.
    pub async fn close(self) {
        self.delivery.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;
    use tokio::sync::Notify;

    use super::*;
    use crate::alerts::outputs::tests::sample_alert;

    /// A local Events API: answers 503 to the first `failures` requests, then
    /// 202 with PagerDuty's body, keeping what it accepted.
    #[derive(Default)]
    struct Receiver {
        requests: AtomicUsize,
        accepted: Mutex<Vec<serde_json::Value>>,
        arrived: Notify,
    }

    async fn receiver(failures: usize) -> (String, Arc<Receiver>) {
        let seen = Arc::new(Receiver::default());
        let state = seen.clone();
        let app = Router::new().route(
            "/v2/enqueue",
            post(move |body: String| {
                let seen = state.clone();
                async move {
                    if seen.requests.fetch_add(1, Ordering::SeqCst) < failures {
                        return (StatusCode::SERVICE_UNAVAILABLE, String::new());
                    }
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let key = body["dedup_key"].as_str().unwrap_or_default().to_string();
                    seen.accepted.lock().unwrap().push(body);
                    seen.arrived.notify_one();
                    (
                        StatusCode::ACCEPTED,
                        json!({"status": "success", "message": "Event processed", "dedup_key": key})
                            .to_string(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/v2/enqueue"), seen)
    }

    fn config(url: &str) -> PagerDutyConfig {
        PagerDutyConfig {
            routing_key: Some("R0UT1NGKEY".into()),
            url: url.into(),
            initial_backoff_ms: 1_000,
            ..PagerDutyConfig::default()
        }
    }

    /// No pooled connections: under the paused clock an idle timer would
    /// jump ahead while real I/O is in flight.
    fn test_client() -> reqwest::Client {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn trigger_then_resolve_with_one_dedup_key() {
        let (url, seen) = receiver(1).await;
        let output = PagerDutyOutput::with_client(&config(&url), test_client()).unwrap();
        let stats = output.stats();
        let firing = sample_alert(AlertState::Firing);
        output.enqueue_all(std::slice::from_ref(&firing));
        seen.arrived.notified().await;
        output.enqueue_all(&[sample_alert(AlertState::Resolved)]);
        seen.arrived.notified().await;
        output.close().await;

        // The first attempt got a 503 and was retried.
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        assert_eq!(stats.delivered.load(Ordering::SeqCst), 2);
        let accepted = seen.accepted.lock().unwrap();
        let (trigger, resolve) = (&accepted[0], &accepted[1]);
        assert_eq!(trigger["routing_key"], "R0UT1NGKEY");
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], "spate/error_burst/api");
        assert_eq!(trigger["payload"]["source"], "api");
        assert_eq!(trigger["payload"]["severity"], "error");
        assert_eq!(
            trigger["payload"]["summary"],
            "error_burst on api: 14 errors > 10"
        );
        assert_eq!(
            trigger["payload"]["custom_details"]["window"],
            "2026-11-23T10:00Z/5m"
        );
        assert_eq!(resolve["event_action"], "resolve");
        assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
        assert!(resolve.get("payload").is_none());
    }

    #[test]
    fn config_needs_exactly_one_key_source_and_hides_the_key() {
        let mut c = PagerDutyConfig::default();
        assert_eq!(c.validate().unwrap_err().key(), "routing_key");
        c.routing_key = Some("k".into());
        c.validate().unwrap();
        c.routing_key_secret = Some("prod/pagerduty".into());
        assert!(c.validate().unwrap_err().message().contains("not both"));
        c.routing_key = None;
        c.validate().unwrap();
        assert!(c.needs_secret());
        let err = PagerDutyOutput::with_client(&c, reqwest::Client::new()).unwrap_err();
        assert!(err.to_string().contains("routing_key_secret"), "{err}");
        c.routing_key_secret = None;
        c.routing_key_secret_key = Some("key".into());
        c.routing_key = Some("s3cret-key".into());
        assert_eq!(c.validate().unwrap_err().key(), "routing_key_secret_key");
        assert!(!format!("{c:?}").contains("s3cret-key"));
        let parsed: PagerDutyConfig = serde_json::from_value(
            json!({"routing_key_secret": "arn:x", "routing_key_secret_key": "k"}),
        )
        .unwrap();
        assert_eq!(parsed.url, "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(parsed.timeout_ms, 5_000);
        // Durations with units, the old `_ms` names still read as milliseconds.
        let parsed: PagerDutyConfig = serde_json::from_value(json!({
            "routing_key": "k", "timeout": "2s", "initial_backoff": "250ms",
            "max_backoff": "1m", "drain_timeout_ms": 1500
        }))
        .unwrap();
        assert_eq!(
            (
                parsed.timeout_ms,
                parsed.initial_backoff_ms,
                parsed.max_backoff_ms,
                parsed.drain_timeout_ms
            ),
            (2_000, 250, 60_000, 1_500)
        );
        let mut zero = parsed.clone();
        zero.timeout_ms = 0;
        assert_eq!(zero.validate().unwrap_err().key(), "timeout");
    }
}
