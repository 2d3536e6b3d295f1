//! Alert subscriptions: a console user asks for the alerts of chosen
//! services and severities to be POSTed to a webhook. Subscriptions and
//! their deliveries live in the console store; [`Dispatcher`] reads the
//! alert notices from the hot store (the `alerts` history, embedded or
//! DynamoDB) every [`POLL`] (those of the last hour only), and POSTs each
//! notice raised after a subscription was made, and matching it, once (a delivery is recorded
//! only after a 2xx answer; a failure is retried at the next poll, up to
//! [`MAX_ATTEMPTS`] times, each counted in
//! `spate_console_webhook_deliveries_total`).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use spate_operators::alerts::record::AlertRecord;

use super::store::{ConsoleStore, StoreError};
use crate::query::history::HistorySource;

/// How often the notices are read.
pub const POLL: Duration = Duration::from_secs(2);
/// Attempts at delivering one notice to one subscription.
pub const MAX_ATTEMPTS: i64 = 5;
/// How far back a round looks for notices, milliseconds (an hour).
pub const LOOKBACK_MS: i64 = 3_600_000;
/// Time a webhook has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Alert severities a subscription may choose.
pub const SEVERITIES: [&str; 3] = ["CRITICAL", "ERROR", "WARNING"];

/// One subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// Its id.
    pub id: i64,
    /// The user who made it.
    pub owner: String,
    /// Where notices are POSTed.
    pub url: String,
    /// Only these services; empty: every service.
    pub services: Vec<String>,
    /// Only these alert severities; empty: every severity.
    pub severities: Vec<String>,
    /// When it was made, UTC milliseconds (older notices are not sent).
    pub created_ms: i64,
    /// Notices delivered so far.
    pub delivered: i64,
}

impl Subscription {
    /// Whether `alert` is for this subscription.
    pub fn matches(&self, alert: &AlertRecord) -> bool {
        alert.raised_at_ms >= self.created_ms
            && (self.services.is_empty() || self.services.contains(&alert.service))
            && (self.severities.is_empty() || self.severities.contains(&alert.severity))
    }
}

/// Checks a webhook URL: `http://` or `https://` with a host, at most 2,000
/// characters.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("the webhook must be an http:// or https:// URL")?;
    if url.len() > 2000 || rest.is_empty() || rest.starts_with('/') {
        return Err("the webhook URL needs a host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the webhook URL may not contain spaces".into());
    }
    Ok(())
}

/// `url` without its path and query, which often hold the webhook's secret
/// (`https://hooks.example.com/services/T0/B0/XXXX` →
/// `https://hooks.example.com/…`): what pages, logs and the audit show.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    if rest.len() > host.len() {
        format!("{scheme}://{host}/…")
    } else {
        format!("{scheme}://{host}")
    }
}

/// A comma-separated list, trimmed, without empty items.
pub fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl ConsoleStore {
    /// Adds a subscription; its id.
    pub fn subscribe(
        &self,
        owner: &str,
        url: &str,
        services: &[String],
        severities: &[String],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO subscriptions (owner, url, services, severities, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![owner, url, services.join(","), severities.join(","), now_ms],
        )
        .map_err(self.error("add subscription"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Removes subscription `id` (of `owner` only, unless `None`); whether
    /// it existed.
    pub fn unsubscribe(&self, id: i64, owner: Option<&str>) -> Result<bool, StoreError> {
        let conn = self.lock();
        let n = conn
            .execute(
                "DELETE FROM subscriptions WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)",
                params![id, owner],
            )
            .map_err(self.error("remove subscription"))?;
        conn.execute("DELETE FROM deliveries WHERE subscription = ?1", [id])
            .map_err(self.error("remove deliveries"))?;
        Ok(n > 0)
    }

    /// The subscriptions (of `owner` only, unless `None`), oldest first.
    pub fn subscriptions(&self, owner: Option<&str>) -> Result<Vec<Subscription>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT s.id, s.owner, s.url, s.services, s.severities, s.created_ms, \
                 (SELECT count(*) FROM deliveries d WHERE d.subscription = s.id \
                  AND d.delivered_ms IS NOT NULL) \
                 FROM subscriptions s WHERE (?1 IS NULL OR s.owner = ?1) ORDER BY s.id",
            )
            .map_err(self.error("list subscriptions"))?;
        let rows = stmt
            .query_map([owner], |r| {
                Ok(Subscription {
                    id: r.get(0)?,
                    owner: r.get(1)?,
                    url: r.get(2)?,
                    services: list(&r.get::<_, String>(3)?),
                    severities: list(&r.get::<_, String>(4)?),
                    created_ms: r.get(5)?,
                    delivered: r.get(6)?,
                })
            })
            .map_err(self.error("list subscriptions"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.error("list subscriptions"))
    }

    /// Attempts so far at delivering `alert` to `subscription`, and whether
    /// it was delivered.
    fn delivery(&self, subscription: i64, alert: &str) -> Result<(i64, bool), StoreError> {
        self.lock()
            .query_row(
                "SELECT attempts, delivered_ms IS NOT NULL FROM deliveries \
                 WHERE subscription = ?1 AND alert = ?2",
                params![subscription, alert],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map(|r| r.unwrap_or((0, false)))
            .map_err(self.error("read delivery"))
    }

    /// Records an attempt (delivered at `delivered_ms`, or failed with
    /// `error`).
    fn record_attempt(
        &self,
        subscription: i64,
        alert: &str,
        delivered_ms: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO deliveries (subscription, alert, attempts, delivered_ms, last_error) \
                 VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT(subscription, alert) DO UPDATE SET \
                 attempts = attempts + 1, delivered_ms = ?3, last_error = ?4",
                params![subscription, alert, delivered_ms, error],
            )
            .map_err(self.error("record delivery"))?;
        Ok(())
    }
}

/// What a webhook receives: the notice, and which subscription it is for.
#[derive(Debug, Serialize)]
struct Delivery<'a> {
    subscription: i64,
    #[serde(flatten)]
    alert: &'a AlertRecord,
}

/// Sends the notices to the subscriptions' webhooks.
pub struct Dispatcher {
    store: Arc<ConsoleStore>,
    history: Arc<dyn HistorySource>,
    client: reqwest::Client,
}

impl Dispatcher {
    /// Reads subscriptions from `store` and notices from `history`.
    pub fn new(store: Arc<ConsoleStore>, history: Arc<dyn HistorySource>) -> Self {
        Dispatcher {
            store,
            history,
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// Polls until `closing` turns true.
    pub async fn run(self, mut closing: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!("console subscriptions: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = closing.wait_for(|c| *c) => return,
            }
        }
    }

    /// One round: every undelivered matching notice, to each subscription.
    pub async fn poll(&self) -> Result<usize, String> {
        let store = self.store.clone();
        let history = self.history.clone();
        let due = tokio::task::spawn_blocking(move || {
            let subscriptions = store.subscriptions(None).map_err(|e| e.to_string())?;
            if subscriptions.is_empty() {
                return Ok(Vec::new());
            }
            // Notices of the last hour at most: a service down longer does
            // not send old ones late.
            let since = subscriptions
                .iter()
                .map(|s| s.created_ms)
                .min()
                .unwrap_or(0)
                .max(spate_operators::event::wall_clock_ms() - LOOKBACK_MS);
            let alerts = history.alerts_since(since)?;
            let mut due = Vec::new();
            for s in &subscriptions {
                for a in alerts.iter().filter(|a| s.matches(a)) {
                    let (attempts, delivered) =
                        store.delivery(s.id, &a.id).map_err(|e| e.to_string())?;
                    if !delivered && attempts < MAX_ATTEMPTS {
                        due.push((s.clone(), a.clone()));
                    }
                }
            }
            Ok::<_, String>(due)
        })
        .await
        .map_err(|e| format!("subscription reader: {e}"))??;
        let mut sent = 0;
        for (subscription, alert) in due {
            let answer = self
                .client
                .post(&subscription.url)
                .json(&Delivery {
                    subscription: subscription.id,
                    alert: &alert,
                })
                .send()
                .await;
            let error = match answer {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("answered {}", r.status())),
                Err(e) => Some(e.without_url().to_string()),
            };
            let outcome = if error.is_none() { "ok" } else { "failed" };
            metrics::counter!("spate_console_webhook_deliveries_total", "outcome" => outcome)
                .increment(1);
            if let Some(e) = &error {
                tracing::warn!(
                    subscription = subscription.id,
                    alert = %alert.id,
                    "console webhook delivery failed: {e}"
                );
            } else {
                sent += 1;
            }
            let store = self.store.clone();
            let now = spate_operators::event::wall_clock_ms();
            tokio::task::spawn_blocking(move || {
                store.record_attempt(
                    subscription.id,
                    &alert.id,
                    error.is_none().then_some(now),
                    error.as_deref(),
                )
            })
            .await
            .map_err(|e| format!("delivery recorder: {e}"))?
            .map_err(|e| e.to_string())?;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spate_operators::alerts::record::AlertState;

    fn alert(service: &str, severity: &str, raised_at_ms: i64) -> AlertRecord {
        AlertRecord {
            id: format!("error_burst:{service}:{raised_at_ms}:firing"),
            rule: "error_burst".into(),
            service: service.into(),
            state: AlertState::Firing,
            severity: severity.into(),
            window_start_ms: 0,
            window_end_ms: 1,
            raised_at_ms,
            value: 11.0,
            threshold: 10.0,
            message: "m".into(),
        }
    }

    #[test]
    fn subscriptions_match_services_severities_and_time() {
        let s = Subscription {
            id: 1,
            owner: "ann".into(),
            url: "http://127.0.0.1:1/hook".into(),
            services: list(" checkout, ,api"),
            severities: list("ERROR"),
            created_ms: 100,
            delivered: 0,
        };
        assert_eq!(s.services, ["checkout", "api"]);
        assert!(s.matches(&alert("checkout", "ERROR", 100)));
        assert!(!s.matches(&alert("checkout", "ERROR", 99)), "raised before");
        assert!(!s.matches(&alert("search", "ERROR", 200)));
        assert!(!s.matches(&alert("api", "CRITICAL", 200)));
        let every = Subscription {
            services: Vec::new(),
            severities: Vec::new(),
            ..s
        };
        assert!(every.matches(&alert("search", "WARNING", 100)));
        assert!(check_url("https://hooks.example/x").is_ok());
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("http://").is_err());
        assert!(check_url("http://a b").is_err());
        assert_eq!(
            redact("https://hooks.example.com/services/T0/B0/XXXX?x=1"),
            "https://hooks.example.com/…"
        );
        assert_eq!(
            redact("http://user:pw@127.0.0.1:80/h"),
            "http://127.0.0.1:80/…"
        );
        assert_eq!(redact("http://127.0.0.1:80"), "http://127.0.0.1:80");
    }

    #[tokio::test]
    async fn matching_notices_reach_the_webhook_once_and_failures_are_retried_a_few_times() {
        use axum::Json;
        use axum::routing::post;
        use std::sync::Mutex;

        let received = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            post(move |Json(v): Json<serde_json::Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(v);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ConsoleStore::open_in(dir.path()).unwrap());
        let url = format!("http://{addr}/hook");
        let t = spate_operators::event::wall_clock_ms() - 60_000;
        let id = store
            .subscribe("ann", &url, &list("checkout"), &[], t)
            .unwrap();
        let history = Arc::new(crate::query::history::StaticHistory {
            alerts: vec![
                alert("checkout", "ERROR", t + 200),
                alert("checkout", "ERROR", t - 50), // before the subscription
                alert("search", "ERROR", t + 300),  // another service
                alert("search", "ERROR", t - 2 * LOOKBACK_MS), // too old
            ],
            windows: Vec::new(),
        });
        let dispatcher = Dispatcher::new(store.clone(), history);
        assert_eq!(dispatcher.poll().await.unwrap(), 1);
        assert_eq!(dispatcher.poll().await.unwrap(), 0, "delivered once");
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["subscription"], id);
        assert_eq!(
            got[0]["id"],
            format!("error_burst:checkout:{}:firing", t + 200)
        );
        assert_eq!(got[0]["state"], "firing");

        // Nobody listens there: tried MAX_ATTEMPTS times, then left.
        let dead = store
            .subscribe("bob", "http://127.0.0.1:1/hook", &list("search"), &[], 0)
            .unwrap();
        for _ in 0..MAX_ATTEMPTS + 2 {
            assert_eq!(dispatcher.poll().await.unwrap(), 0);
        }
        let attempts = |raised: i64| {
            store
                .delivery(dead, &format!("error_burst:search:{raised}:firing"))
                .unwrap()
        };
        assert_eq!(attempts(t + 300), (MAX_ATTEMPTS, false));
        // A notice older than the lookback is not sent at all.
        assert_eq!(attempts(t - 2 * LOOKBACK_MS), (0, false));
        assert_eq!(received.lock().unwrap().len(), 1);
    }

    #[test]
    fn subscriptions_are_stored_owned_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConsoleStore::open_in(dir.path()).unwrap();
        let a = store
            .subscribe("ann", "http://h/1", &list("checkout"), &[], 5)
            .unwrap();
        let b = store.subscribe("bob", "http://h/2", &[], &[], 6).unwrap();
        assert_eq!(store.subscriptions(None).unwrap().len(), 2);
        let anns = store.subscriptions(Some("ann")).unwrap();
        assert_eq!(anns.len(), 1);
        assert_eq!(anns[0].services, ["checkout"]);
        store.record_attempt(a, "x", None, Some("refused")).unwrap();
        assert_eq!(store.delivery(a, "x").unwrap(), (1, false));
        store.record_attempt(a, "x", Some(9), None).unwrap();
        assert_eq!(store.delivery(a, "x").unwrap(), (2, true));
        assert_eq!(store.subscriptions(Some("ann")).unwrap()[0].delivered, 1);
        // Not someone else's.
        assert!(!store.unsubscribe(b, Some("ann")).unwrap());
        assert!(store.unsubscribe(b, None).unwrap());
        assert!(store.unsubscribe(a, Some("ann")).unwrap());
        assert!(store.subscriptions(None).unwrap().is_empty());
        assert_eq!(store.delivery(a, "x").unwrap(), (0, false));
    }
}
