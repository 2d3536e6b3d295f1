//! Delivery of JSON bodies by HTTP POST from a background task, shared by
//! the [`webhook`](super::webhook) and [`pagerduty`](super::pagerduty)
//! outputs.
//!
//! Connect errors, timeouts, 5xx and 429 are retried with exponential backoff
//! and jitter (a 429's `Retry-After` is honoured up to the maximum backoff),
//! up to `max_retries` retries; other 4xx answers are not retried. A body
//! that cannot be delivered is logged and counted in
//! `spate_alert_deliveries_failed_total{output}`.
//!
//! # Backpressure
//!
//! [`HttpDelivery::enqueue`] never waits: the queue is bounded, and a body
//! arriving when it is full is dropped, logged and counted in
//! `spate_alerts_dropped_total{output}`.
//!
//! # Shutdown
//!
//! [`HttpDelivery::close`] lets the task finish the queue for at most the
//! drain timeout, then aborts it; bodies not delivered by then count as
//! failed.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use spate_engine::{SupervisorPolicy, backoff_delay};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What happened to the bodies given to an [`HttpDelivery`].
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Bodies delivered (2xx).
    pub delivered: AtomicU64,
    /// Bodies given up on (retries exhausted, not retryable, or shutdown).
    pub failed: AtomicU64,
    /// Bodies dropped because the queue was full.
    pub dropped: AtomicU64,
    /// HTTP attempts made.
    pub attempts: AtomicU64,
    /// Bodies enqueued and not yet delivered or failed.
    pending: AtomicU64,
}

impl DeliveryStats {
    fn fail(&self, output: &'static str, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("spate_alert_deliveries_failed_total", "output" => output).increment(n);
    }
}

/// Where and how bodies are POSTed.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// The output's name in metrics and logs (`webhook`, `pagerduty`).
    pub output: &'static str,
    /// The URL.
    pub url: String,
    /// Headers of every request.
    pub headers: HeaderMap,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff between attempts.
    pub policy: SupervisorPolicy,
}

/// One body to POST; `id` names it in logs.
#[derive(Debug)]
struct Job {
    id: String,
    body: serde_json::Value,
}

/// A bounded queue of bodies and the task POSTing them.
#[derive(Debug)]
pub struct HttpDelivery {
    tx: mpsc::Sender<Job>,
    task: JoinHandle<()>,
    stats: Arc<DeliveryStats>,
    drain_timeout: Duration,
    output: &'static str,
}

impl HttpDelivery {
    /// Starts the delivery task (inside a tokio runtime) with a queue of
    /// `queue` bodies.
    pub fn spawn(
        client: reqwest::Client,
        target: HttpTarget,
        queue: usize,
        drain_timeout: Duration,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let stats = Arc::new(DeliveryStats::default());
        let output = target.output;
        let task = tokio::spawn(deliver_queue(rx, client, target, stats.clone()));
        HttpDelivery {
            tx,
            task,
            stats,
            drain_timeout,
            output,
        }
    }

    /// The delivery counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Queues `body` without waiting; returns `false` (and counts a drop)
    /// when the queue is full.
    pub fn enqueue(&self, id: &str, body: serde_json::Value) -> bool {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            id: id.to_string(),
            body,
        };
        match self.tx.try_send(job) {
            Ok(()) => true,
            Err(e) => {
                self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("spate_alerts_dropped_total", "output" => self.output)
                    .increment(1);
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "delivery task gone",
                };
                tracing::warn!(alert = %id, "{} {why}: alert notice dropped", self.output);
                false
            }
        }
    }

    /// Stops taking bodies and delivers what is queued, for at most the
    /// drain timeout; what is left counts as failed.
    pub async fn close(self) {
        let HttpDelivery {
            tx,
            mut task,
            stats,
            drain_timeout,
            output,
        } = self;
        drop(tx);
        if tokio::time::timeout(drain_timeout, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let left = stats.pending.swap(0, Ordering::Relaxed);
            if left > 0 {
                stats.fail(output, left);
                tracing::warn!(
                    notices = left,
                    "{output} not drained within {drain_timeout:?}: alert notices not delivered"
                );
            }
        }
    }
}

async fn deliver_queue(
    mut rx: mpsc::Receiver<Job>,
    client: reqwest::Client,
    target: HttpTarget,
    stats: Arc<DeliveryStats>,
) {
    while let Some(job) = rx.recv().await {
        let result = deliver(&client, &target, &job, &stats).await;
        stats.pending.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => {
                stats.fail(target.output, 1);
                tracing::error!(alert = %job.id, url = %target.url, "{} delivery failed: {reason}", target.output);
            }
        }
    }
}

/// POSTs one body, retrying as configured; the error says why it gave up.
async fn deliver(
    client: &reqwest::Client,
    target: &HttpTarget,
    job: &Job,
    stats: &DeliveryStats,
) -> Result<(), String> {
    let mut retry = 0u32;
    loop {
        stats.attempts.fetch_add(1, Ordering::Relaxed);
        let sent = client
            .post(&target.url)
            .headers(target.headers.clone())
            .json(&job.body)
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
        if retry >= target.max_retries {
            return Err(format!("{reason}, after {} attempts", retry + 1));
        }
        let backoff = backoff_delay(&target.policy, retry, jitter_sample());
        let delay = retry_after
            .map_or(backoff, |r| r.max(backoff))
            .min(target.policy.max_backoff);
        tracing::debug!(alert = %job.id, "{} attempt failed ({reason}), retrying in {delay:?}", target.output);
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
