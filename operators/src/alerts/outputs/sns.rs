//! Alert notices to an SNS topic, from a background task.
//!
//! # Backpressure
//!
//! Like the webhook, publishing never blocks the pipeline: notices wait in a
//! bounded queue; a full queue drops the notice and counts
//! `spate_alerts_dropped_total{output="sns"}`. A publish is retried with
//! exponential backoff; one that keeps failing is counted in
//! `spate_alert_deliveries_failed_total{output="sns"}` and logged.
//!
//! # Shutdown
//!
//! [`SnsOutput::close`] stops taking notices and waits (up to a deadline) for the
//! queue to drain.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::alerts::record::AlertRecord;
use crate::sinks::sns::SnsPublisher;

/// Notices waiting to be published at most.
const QUEUE: usize = 1000;
/// Attempts per notice.
const ATTEMPTS: u32 = 5;
/// How long `close` waits for the queue to drain.
const DRAIN: Duration = Duration::from_secs(5);

/// The SNS output: a queue and the task publishing from it.
#[derive(Debug)]
pub struct SnsOutput {
    queue: mpsc::Sender<AlertRecord>,
    task: JoinHandle<()>,
}

impl SnsOutput {
    /// Starts the publishing task (needs a tokio runtime).
    pub fn spawn(publisher: SnsPublisher) -> Self {
        let (queue, mut rx) = mpsc::channel::<AlertRecord>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                publish_with_retries(&publisher, &alert).await;
            }
        });
        SnsOutput { queue, task }
    }

    /// Queues a notice; false (and counted) when the queue is full.
    pub fn enqueue(&self, alert: &AlertRecord) -> bool {
        match self.queue.try_send(alert.clone()) {
            Ok(()) => true,
            Err(_) => {
                metrics::counter!("spate_alerts_dropped_total", "output" => "sns").increment(1);
                false
            }
        }
    }

    /// Stops taking notices and waits for the queue to drain (bounded).
    pub async fn close(self) {
        let SnsOutput { queue, mut task } = self;
        drop(queue);
        if tokio::time::timeout(DRAIN, &mut task).await.is_err() {
            task.abort();
            tracing::warn!("sns alert queue not drained within {DRAIN:?}");
        }
    }
}

async fn publish_with_retries(publisher: &SnsPublisher, alert: &AlertRecord) {
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        match publisher.publish(alert).await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, alert = %alert.id, "sns publish failed, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                metrics::counter!("spate_alert_deliveries_failed_total", "output" => "sns")
                    .increment(1);
                tracing::error!(alert = %alert.id, "sns publish gave up after {attempt} attempts: {e}");
            }
        }
    }
}
