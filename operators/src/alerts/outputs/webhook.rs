//! The webhook output: each notice POSTed as Slack-compatible JSON
//! (`{"text": ..., "attachments": [...]}`), from a background task.
//!
//! Connect errors, timeouts, 5xx and 429 are retried with exponential backoff
//! and jitter (a 429's `Retry-After` is honoured up to `max_backoff`), up to
//! `max_retries` retries; other 4xx answers are not retried. A notice that
//! cannot be delivered is logged and counted in
//! `spate_alert_deliveries_failed_total{output="webhook"}`.
//!
//! # Backpressure
//!
//! [`WebhookOutput::enqueue`] never waits: the queue is bounded (`queue`), and
//! a notice arriving when it is full is dropped, logged and counted in
//! `spate_alerts_dropped_total{output="webhook"}`.
//!
//! # Shutdown
//!
//! [`WebhookOutput::close`] lets the task finish the queue for at most
//! `drain_timeout`, then aborts it; notices not delivered by then count as
//! failed.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spate_engine::{SupervisorPolicy, backoff_delay};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::format_line;
use crate::alerts::AlertError;
use crate::alerts::record::{AlertRecord, AlertState};
use crate::aws::secrets::{self, SecretError};

/// `[alerts.webhook]`: where and how notices are POSTed.
#[derive(Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL to POST to (`http://` or `https://`); required.
    #[serde(default)]
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
    /// Notices waiting for delivery at most; more are dropped (and counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Sent as `Authorization: Bearer <token>` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// The bearer token from AWS Secrets Manager instead: a secret ARN or name,
    /// read once at startup (with the `[aws]` settings). Not with `bearer_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<String>,
    /// With `bearer_token_secret`: the secret is a JSON object and the token is
    /// the string value of this key. Default: the whole secret string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_key: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// At shutdown, how long queued notices may still be delivered (milliseconds).
    #[serde(
        rename = "drain_timeout",
        alias = "drain_timeout_ms",
        with = "crate::component::units::with::millis",
        default = "default_drain_timeout_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub drain_timeout_ms: u64,
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

impl Default for WebhookConfig {
    /// Every default, and no URL (which [`WebhookConfig::validate`] rejects).
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            timeout_ms: default_timeout_ms(),
            max_retries: default_max_retries(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            queue: default_queue(),
            bearer_token: None,
            bearer_token_secret: None,
            bearer_token_secret_key: None,
            headers: BTreeMap::new(),
            drain_timeout_ms: default_drain_timeout_ms(),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    /// Leaves out the token and header values (they may be secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("timeout", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("queue", &self.queue)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("bearer_token_secret", &self.bearer_token_secret)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Checks the URL, the headers, the limits and the token settings.
    pub fn validate(&self) -> Result<(), AlertError> {
        let bad = |why: &str| AlertError::Config(format!("webhook: {why}"));
        if self.bearer_token.is_some() && self.bearer_token_secret.is_some() {
            return Err(bad("set bearer_token or bearer_token_secret, not both"));
        }
        if self.bearer_token_secret_key.is_some() && self.bearer_token_secret.is_none() {
            return Err(bad("bearer_token_secret_key needs bearer_token_secret"));
        }
        if self
            .bearer_token_secret
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(bad("bearer_token_secret is empty"));
        }
        self.header_map().map(|_| ())
    }

    /// With `bearer_token_secret` set, reads the token from Secrets Manager
    /// into `bearer_token` (the secret settings are cleared); otherwise
    /// returns the config as it is. Call once at startup.
    pub async fn resolve_secret(
        mut self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<Self, SecretError> {
        if let Some(secret) = self.bearer_token_secret.take() {
            let key = self.bearer_token_secret_key.take();
            let token = secrets::secret_string(client, &secret, key.as_deref()).await?;
            self.bearer_token = Some(token);
        }
        Ok(self)
    }

    /// Whether the token has to be read from Secrets Manager first.
    pub fn needs_secret(&self) -> bool {
        self.bearer_token_secret.is_some()
    }

    fn header_map(&self) -> Result<HeaderMap, AlertError> {
        let bad = |why: String| AlertError::Config(format!("webhook: {why}"));
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| bad(format!("url {:?} is not valid: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("url {:?} must be http or https", self.url)));
        }
        if self.queue == 0 || self.timeout_ms == 0 {
            return Err(bad("queue and timeout must be above 0".into()));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(format!("header name {name:?} is not valid")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| bad(format!("value of header {name} is not valid")))?;
            headers.insert(name, value);
        }
        if let Some(token) = &self.bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| bad("bearer_token is not a valid header value".into()))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(headers)
    }

    fn retry_policy(&self) -> SupervisorPolicy {
        SupervisorPolicy {
            initial_backoff: Duration::from_millis(self.initial_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms.max(self.initial_backoff_ms)),
            multiplier: 2.0,
            jitter: 0.2,
            ..SupervisorPolicy::default()
        }
    }
}

/// What happened to the notices given to a [`WebhookOutput`].
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Notices delivered (2xx).
    pub delivered: AtomicU64,
    /// Notices given up on (retries exhausted, not retryable, or shutdown).
    pub failed: AtomicU64,
    /// Notices dropped because the queue was full.
    pub dropped: AtomicU64,
    /// HTTP attempts made.
    pub attempts: AtomicU64,
    /// Notices enqueued and not yet delivered or failed.
    pending: AtomicU64,
}

impl WebhookStats {
    fn fail(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("spate_alert_deliveries_failed_total", "output" => "webhook")
            .increment(n);
    }
}

struct Settings {
    url: String,
    headers: HeaderMap,
    max_retries: u32,
    policy: SupervisorPolicy,
}

/// The webhook output: a bounded queue and the task delivering it.
#[derive(Debug)]
pub struct WebhookOutput {
    tx: mpsc::Sender<AlertRecord>,
    task: JoinHandle<()>,
    stats: Arc<WebhookStats>,
    drain_timeout: Duration,
}

impl WebhookOutput {
    /// Validates `config`, builds an HTTP client with its timeout, and starts
    /// the delivery task (call inside a tokio runtime).
    pub fn spawn(config: &WebhookConfig) -> Result<Self, AlertError> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| AlertError::Config(format!("webhook: cannot build client: {e}")))?;
        Self::with_client(config, client)
    }

    /// Like [`WebhookOutput::spawn`], with a client of the caller's (proxies,
    /// TLS roots; its timeouts replace `timeout`).
    pub fn with_client(
        config: &WebhookConfig,
        client: reqwest::Client,
    ) -> Result<Self, AlertError> {
        if config.needs_secret() {
            return Err(AlertError::Config(
                "webhook: bearer_token_secret is read at startup, before the output starts".into(),
            ));
        }
        let settings = Settings {
            url: config.url.clone(),
            headers: config.header_map()?,
            max_retries: config.max_retries,
            policy: config.retry_policy(),
        };
        let (tx, rx) = mpsc::channel(config.queue);
        let stats = Arc::new(WebhookStats::default());
        let task = tokio::spawn(deliver_queue(rx, client, settings, stats.clone()));
        Ok(WebhookOutput {
            tx,
            task,
            stats,
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
        })
    }

    /// The delivery counters.
    pub fn stats(&self) -> Arc<WebhookStats> {
        self.stats.clone()
    }

    /// Queues `alert` for delivery without waiting; returns `false` (and counts
    /// a drop) when the queue is full.
    pub fn enqueue(&self, alert: &AlertRecord) -> bool {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(alert.clone()) {
            Ok(()) => true,
            Err(e) => {
                self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("spate_alerts_dropped_total", "output" => "webhook").increment(1);
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "delivery task gone",
                };
                tracing::warn!(alert = %alert.id, "webhook {why}: alert notice dropped");
                false
            }
        }
    }

    /// Stops taking notices and delivers what is queued, for at most the
    /// drain timeout; what is left counts as failed.
    pub async fn close(self) {
        let WebhookOutput {
            tx,
            mut task,
            stats,
            drain_timeout,
        } = self;
        drop(tx);
        if tokio::time::timeout(drain_timeout, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let left = stats.pending.swap(0, Ordering::Relaxed);
            if left > 0 {
                stats.fail(left);
                tracing::warn!(
                    notices = left,
                    "webhook not drained within {drain_timeout:?}: alert notices not delivered"
                );
            }
        }
    }
}

async fn deliver_queue(
    mut rx: mpsc::Receiver<AlertRecord>,
    client: reqwest::Client,
    settings: Settings,
    stats: Arc<WebhookStats>,
) {
    while let Some(alert) = rx.recv().await {
        let result = deliver(&client, &settings, &alert, &stats).await;
        stats.pending.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => {
                stats.fail(1);
                tracing::error!(alert = %alert.id, url = %settings.url, "webhook delivery failed: {reason}");
            }
        }
    }
}

/// POSTs one notice, retrying as configured; the error says why it gave up.
async fn deliver(
    client: &reqwest::Client,
    settings: &Settings,
    alert: &AlertRecord,
    stats: &WebhookStats,
) -> Result<(), String> {
    let body = slack_payload(alert);
    let mut retry = 0u32;
    loop {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let sent = client
            .post(&settings.url)
            .headers(settings.headers.clone())
            .json(&body)
            .send()
            .await;
        let (reason, retry_after) = match sent {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 429 => {
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                (format!("http status {}", resp.status()), retry_after)
            }
            Ok(resp) => return Err(format!("http status {} (not retried)", resp.status())),
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => (e.to_string(), None),
            Err(e) => return Err(e.to_string()),
        };
        if retry >= settings.max_retries {
            return Err(format!("{reason}, after {} attempts", retry + 1));
        }
        let backoff = backoff_delay(&settings.policy, retry, jitter_sample());
        let delay = retry_after
            .map_or(backoff, |r| r.max(backoff))
            .min(settings.policy.max_backoff);
        tracing::debug!(alert = %alert.id, "webhook attempt failed ({reason}), retrying in {delay:?}");
        tokio::time::sleep(delay).await;
        retry += 1;
    }
}

/// A uniform sample in `[0, 1)` for the jitter, from the standard library's
/// randomly keyed hasher.
fn jitter_sample() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The JSON body: Slack's `text` (the readable line) and one attachment with
/// the details.
pub fn slack_payload(alert: &AlertRecord) -> serde_json::Value {
    let color = match (alert.state, alert.severity.as_str()) {
        (AlertState::Resolved, _) => "#2eb886",
        (_, "CRITICAL") => "#a30200",
        (_, "ERROR") => "#e01e5a",
        _ => "#daa038",
    };
    json!({
        "text": format_line(alert),
        "attachments": [{
            "color": color,
            "title": format!("{} {} ({})", alert.rule, alert.state.as_str(), alert.severity),
            "text": alert.message,
            "fields": [
                {"title": "service", "value": alert.service, "short": true},
                {"title": "value", "value": alert.value.to_string(), "short": true},
                {"title": "threshold", "value": alert.threshold.to_string(), "short": true},
                {"title": "id", "value": alert.id, "short": false},
            ],
            "ts": alert.raised_at_ms.div_euclid(1000),
        }],
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode};
    use axum::routing::post;
    use tokio::sync::Notify;

    use super::*;
    use crate::alerts::outputs::tests::sample_alert;

    /// An accepted request: body, `Authorization`, `X-Team`.
    type Accepted = (serde_json::Value, Option<String>, Option<String>);

    /// What the test server saw.
    #[derive(Default)]
    struct Seen {
        requests: AtomicUsize,
        accepted: Mutex<Vec<Accepted>>,
        done: Notify,
    }

    /// A server answering 500 to the first `failures` requests, then 200.
    async fn server(failures: usize) -> (String, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let state = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: AxumHeaders, body: String| {
                let seen = state.clone();
                async move {
                    let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                    if n < failures {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let header = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .map(String::from)
                    };
                    seen.accepted.lock().unwrap().push((
                        serde_json::from_str(&body).unwrap(),
                        header("authorization"),
                        header("x-team"),
                    ));
                    seen.done.notify_one();
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), seen)
    }

    /// No request timeout and no pooled connections: under the paused clock a
    /// pending timer would jump ahead while real I/O is in flight.
    fn test_client() -> reqwest::Client {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    fn config(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.to_string(),
            initial_backoff_ms: 1_000,
            ..WebhookConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_server_errors_with_backoff_then_delivers_once() {
        let (url, seen) = server(2).await;
        let mut config = config(&url);
        config.bearer_token = Some("s3cret".into());
        config.headers.insert("X-Team".into(), "sre".into());
        let output = WebhookOutput::with_client(&config, test_client()).unwrap();
        let stats = output.stats();
        let started = tokio::time::Instant::now();
        assert!(output.enqueue(&sample_alert(AlertState::Firing)));
        seen.done.notified().await;
        output.close().await;

        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        assert_eq!(stats.delivered.load(Ordering::SeqCst), 1);
        assert_eq!(stats.failed.load(Ordering::SeqCst), 0);
        assert_eq!(stats.attempts.load(Ordering::SeqCst), 3);
        // Two backoffs of 1 s and 2 s, ±20 % jitter, on tokio's clock.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(2_400) && waited <= Duration::from_millis(3_600),
            "{waited:?}"
        );
        let accepted = seen.accepted.lock().unwrap();
        assert_eq!(accepted.len(), 1);
        let (body, auth, team) = &accepted[0];
        assert_eq!(
            body["text"],
            "ALERT firing error_burst service=api window=2026-11-23T10:00Z/5m: 14 errors > 10"
        );
        assert_eq!(body["attachments"][0]["fields"][0]["value"], "api");
        assert_eq!(auth.as_deref(), Some("Bearer s3cret"));
        assert_eq!(team.as_deref(), Some("sre"));
    }

    #[test]
    fn token_and_secret_together_are_a_config_error() {
        let mut c = config("http://127.0.0.1:1/hook");
        c.bearer_token = Some("t".into());
        c.bearer_token_secret = Some("prod/hook".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        c.bearer_token = None;
        assert!(c.validate().is_ok());
        assert!(c.needs_secret());
        let mut c = config("http://127.0.0.1:1/hook");
        c.bearer_token_secret_key = Some("token".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("needs bearer_token_secret"), "{err}");
        let parsed: WebhookConfig = serde_json::from_value(json!({
            "url": "http://h/x",
            "bearer_token_secret": "arn:aws:secretsmanager:us-east-1:1:secret:hook",
            "bearer_token_secret_key": "token",
        }))
        .unwrap();
        assert_eq!(parsed.bearer_token_secret_key.as_deref(), Some("token"));
    }

    #[tokio::test]
    async fn an_unresolved_secret_does_not_start_the_output() {
        let mut c = config("http://127.0.0.1:1/hook");
        c.bearer_token_secret = Some("prod/hook".into());
        let err = WebhookOutput::with_client(&c, test_client()).unwrap_err();
        assert!(err.to_string().contains("bearer_token_secret"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries() {
        let (url, seen) = server(usize::MAX).await;
        let mut config = config(&url);
        config.max_retries = 2;
        let output = WebhookOutput::with_client(&config, test_client()).unwrap();
        let stats = output.stats();
        output.enqueue(&sample_alert(AlertState::Firing));
        output.close().await;
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
        assert_eq!(stats.failed.load(Ordering::SeqCst), 1);
        assert_eq!(stats.delivered.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn full_queue_drops_and_counts() {
        let (url, seen) = server(0).await;
        let mut config = config(&url);
        config.queue = 2;
        let output = WebhookOutput::with_client(&config, test_client()).unwrap();
        let stats = output.stats();
        // The delivery task has not run yet: the third notice on finds the
        // queue full.
        let accepted: Vec<bool> = (0..5)
            .map(|_| output.enqueue(&sample_alert(AlertState::Firing)))
            .collect();
        assert_eq!(accepted, [true, true, false, false, false]);
        assert_eq!(stats.dropped.load(Ordering::SeqCst), 3);
        output.close().await;
        assert_eq!(stats.delivered.load(Ordering::SeqCst), 2);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn close_gives_up_at_the_drain_deadline() {
        let (url, seen) = server(usize::MAX).await;
        let mut config = config(&url);
        config.max_retries = 100;
        config.drain_timeout_ms = 5_000;
        let output = WebhookOutput::with_client(&config, test_client()).unwrap();
        let stats = output.stats();
        output.enqueue(&sample_alert(AlertState::Firing));
        output.enqueue(&sample_alert(AlertState::Resolved));
        let started = tokio::time::Instant::now();
        output.close().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(stats.failed.load(Ordering::SeqCst), 2);
        assert!(seen.requests.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn config_validation_and_secret_free_debug() {
        assert!(WebhookConfig::default().validate().is_err());
        assert!(config("ftp://x").validate().is_err());
        let mut c = config("https://hooks.example/x");
        assert!(c.validate().is_ok());
        c.headers.insert("bad header".into(), "v".into());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("header name")
        );
        let mut c = config("https://hooks.example/x");
        c.bearer_token = Some("s3cret".into());
        assert!(!format!("{c:?}").contains("s3cret"));
        let parsed: WebhookConfig =
            serde_json::from_str(r#"{"url": "https://hooks.example/x"}"#).unwrap();
        assert_eq!(
            parsed,
            WebhookConfig {
                url: "https://hooks.example/x".into(),
                ..WebhookConfig::default()
            }
        );
    }

    #[test]
    fn payload_colours_resolved_green() {
        let p = slack_payload(&sample_alert(AlertState::Resolved));
        assert_eq!(p["attachments"][0]["color"], "#2eb886");
        assert!(p["text"].as_str().unwrap().starts_with("ALERT resolved"));
    }
}
