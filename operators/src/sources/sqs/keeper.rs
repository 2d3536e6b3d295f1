//! The keeper of in-flight SQS messages: deletes what was delivered, returns
//! what failed, and extends the visibility of what is still in flight.
//!
//! Ack callbacks cannot wait, so they post [`Settle`] commands on an unbounded
//! channel (bounded in practice by the messages in flight, which backpressure
//! bounds); one task per queue drains it, batching up to 10 entries a call.
//!
//! # Shutdown
//!
//! The task ends once every sender is gone: the [`SqsQueue`](super::SqsQueue)
//! and the ack of every message it handed out.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::progress::SqsProgress;

/// SQS takes at most this many entries per batch call.
const BATCH: usize = 10;

/// What to do with one received message.
#[derive(Debug)]
pub(super) enum Settle {
    /// A message was received: extend its visibility while it is in flight.
    Track(String),
    /// Every sink committed it: delete it.
    Delete(String),
    /// It failed somewhere: make it visible again now (the redrive policy
    /// moves it to the dead-letter queue after `maxReceiveCount`).
    Return(String),
}

/// Settings of the keeper task.
pub(super) struct Keeper {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub visibility: Duration,
    pub extend: bool,
    pub progress: Arc<SqsProgress>,
}

impl Keeper {
    /// Runs until every sender of `rx` is dropped.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Settle>) {
        // receipt handle -> when it becomes visible again
        let mut tracked: HashMap<String, Instant> = HashMap::new();
        let period = (self.visibility / 4).max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut commands = Vec::with_capacity(64);
        loop {
            tokio::select! {
                received = rx.recv_many(&mut commands, 256) => {
                    if received == 0 {
                        break;
                    }
                    self.apply(&mut commands, &mut tracked).await;
                }
                _ = ticks.tick(), if self.extend => self.extend_due(&mut tracked).await,
            }
        }
    }

    async fn apply(&self, commands: &mut Vec<Settle>, tracked: &mut HashMap<String, Instant>) {
        let mut delete = Vec::new();
        let mut give_back = Vec::new();
        for command in commands.drain(..) {
            match command {
                Settle::Track(receipt) => {
                    tracked.insert(receipt, Instant::now() + self.visibility);
                }
                Settle::Delete(receipt) => {
                    tracked.remove(&receipt);
                    delete.push(receipt);
                }
                Settle::Return(receipt) => {
                    tracked.remove(&receipt);
                    give_back.push(receipt);
                }
            }
        }
        for chunk in delete.chunks(BATCH) {
            let ok = self.delete(chunk).await;
            metrics::counter!("spate_sqs_messages_deleted_total").increment(ok as u64);
            self.progress
                .deleted
                .fetch_add(ok as u64, Ordering::Relaxed);
            self.progress.settled(chunk.len());
        }
        for chunk in give_back.chunks(BATCH) {
            let ok = self.change_visibility(chunk, 0).await;
            metrics::counter!("spate_sqs_messages_returned_total").increment(ok as u64);
            self.progress
                .returned
                .fetch_add(ok as u64, Ordering::Relaxed);
            self.progress.settled(chunk.len());
        }
    }

    /// Extends every message that is past half its visibility timeout.
    async fn extend_due(&self, tracked: &mut HashMap<String, Instant>) {
        let now = Instant::now();
        let half = self.visibility / 2;
        let due: Vec<String> = tracked
            .iter()
            .filter(|(_, visible_at)| visible_at.saturating_duration_since(now) <= half)
            .map(|(receipt, _)| receipt.clone())
            .collect();
        let secs = self.visibility.as_secs().min(i32::MAX as u64) as i32;
        for chunk in due.chunks(BATCH) {
            let ok = self.change_visibility(chunk, secs).await;
            metrics::counter!("spate_sqs_visibility_extended_total").increment(ok as u64);
            for receipt in chunk {
                if let Some(at) = tracked.get_mut(receipt) {
                    *at = now + self.visibility;
                }
            }
        }
    }

    /// Deletes up to 10 messages; returns how many were deleted.
    async fn delete(&self, receipts: &[String]) -> usize {
        let entries: Vec<_> = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .ok()
            })
            .collect();
        let result = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) => {
                for failed in out.failed() {
                    tracing::warn!(queue = %self.queue_url, code = failed.code(), message = failed.message(), "sqs delete failed; the message will be redelivered");
                }
                self.count_delete_errors(out.failed().len());
                out.successful().len()
            }
            Err(e) => {
                let e = aws_sdk_sqs::error::DisplayErrorContext(e);
                tracing::warn!(queue = %self.queue_url, error = %e, "sqs delete failed; the messages will be redelivered");
                self.count_delete_errors(receipts.len());
                0
            }
        }
    }

    /// `spate_sqs_delete_errors_total` and the progress's `delete_errors`:
    /// messages whose delete failed (the queue delivers them again).
    fn count_delete_errors(&self, messages: usize) {
        metrics::counter!("spate_sqs_delete_errors_total").increment(messages as u64);
        self.progress
            .delete_errors
            .fetch_add(messages as u64, Ordering::Relaxed);
    }

    /// Sets the visibility timeout of up to 10 messages; returns how many
    /// changed.
    async fn change_visibility(&self, receipts: &[String], secs: i32) -> usize {
        let entries: Vec<_> = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(secs)
                    .build()
                    .ok()
            })
            .collect();
        let result = self
            .client
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        match result {
            Ok(out) => {
                for failed in out.failed() {
                    tracing::debug!(queue = %self.queue_url, code = failed.code(), "sqs visibility change failed");
                }
                metrics::counter!("spate_sqs_visibility_errors_total")
                    .increment(out.failed().len() as u64);
                out.successful().len()
            }
            Err(e) => {
                let e = aws_sdk_sqs::error::DisplayErrorContext(e);
                tracing::warn!(queue = %self.queue_url, error = %e, "sqs visibility change failed");
                metrics::counter!("spate_sqs_visibility_errors_total")
                    .increment(receipts.len() as u64);
                0
            }
        }
    }
}
