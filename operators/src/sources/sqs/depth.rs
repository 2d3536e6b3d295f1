//! What the queue itself reports: SQS's approximate counts of visible and
//! in-flight messages (GetQueueAttributes), and the messages this process
//! holds, as gauges labelled `queue`.
//!
//! | metric | meaning |
//! | --- | --- |
//! | `spate_sqs_queue_visible_messages{queue}` | `ApproximateNumberOfMessages`: waiting to be received, by any consumer |
//! | `spate_sqs_queue_inflight_messages{queue}` | `ApproximateNumberOfMessagesNotVisible`: received by some consumer, not yet deleted |
//! | `spate_sqs_messages_held{queue}` | received by this process and not yet deleted or returned |
//!
//! The queue attributes need `sqs:GetQueueAttributes`; when a call fails the
//! gauges keep their last value, `spate_sqs_queue_attribute_errors_total`
//! counts it, and the first failure is logged.
//!
//! # Shutdown
//!
//! The task ends with the queue's [`SqsProgress`] (it holds a weak
//! reference).

use std::sync::{Arc, Weak};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;

use super::progress::SqsProgress;

/// How often the queue's attributes are read (one call each time).
pub(super) const DEPTH_EVERY: Duration = Duration::from_secs(15);

/// What the watcher needs of a queue.
pub(super) struct DepthProbe {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// The `queue` label.
    pub name: Arc<str>,
}

/// Reads the queue's depth every [`DEPTH_EVERY`] until the queue (its
/// progress) is dropped.
pub(super) async fn watch(queue: DepthProbe, progress: Weak<SqsProgress>) {
    let mut ticks = tokio::time::interval(DEPTH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        ticks.tick().await;
        let Some(progress) = progress.upgrade() else {
            return;
        };
        let name = queue.name.to_string();
        metrics::gauge!("spate_sqs_messages_held", "queue" => name.clone())
            .set(progress.outstanding() as f64);
        drop(progress);
        let read = queue
            .client
            .get_queue_attributes()
            .queue_url(&queue.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await;
        match read {
            Ok(out) => {
                let attributes = out.attributes.unwrap_or_default();
                let count =
                    |a: &QueueAttributeName| attributes.get(a).and_then(|v| v.parse::<f64>().ok());
                if let Some(n) = count(&QueueAttributeName::ApproximateNumberOfMessages) {
                    metrics::gauge!("spate_sqs_queue_visible_messages", "queue" => name.clone())
                        .set(n);
                }
                if let Some(n) = count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible) {
                    metrics::gauge!("spate_sqs_queue_inflight_messages", "queue" => name).set(n);
                }
            }
            Err(e) => {
                metrics::counter!("spate_sqs_queue_attribute_errors_total").increment(1);
                let e = aws_sdk_sqs::error::DisplayErrorContext(e);
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(queue = %name, error = %e,
                        "sqs: cannot read the queue's depth (needs sqs:GetQueueAttributes); retrying quietly");
                } else {
                    tracing::debug!(queue = %name, error = %e, "sqs: cannot read the queue's depth");
                }
            }
        }
    }
}
