//! The SQS source: long-polls a queue with several pollers and turns each
//! message into a [`RawChunk`].
//!
//! A body may hold one JSON event, NDJSON, text lines, or a CloudWatch Logs
//! subscription payload; an SNS envelope is unwrapped first (see [`body`]).
//! Event ids are `sqs:<queue name>:<message id>:<offset>` (the decoder appends
//! the offset; CloudWatch payloads use their log event ids), so a redelivered
//! message produces the same ids.
//!
//! Each message is one batch with its own ack. `Delivered` deletes the message
//! (DeleteMessageBatch, up to 10 a call); `Failed` makes it visible again at
//! once, so it is retried, and after the queue's `maxReceiveCount` the redrive
//! policy moves it to the dead-letter queue. While a message is in flight past
//! half its visibility timeout, the timeout is extended.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use spate_operators::aws::AwsConfig;
//! use spate_operators::sources::sqs::{SqsConfig, SqsQueue};
//! let aws = AwsConfig::default();
//! let sdk = aws.load().await;
//! let queue = SqsQueue::new(aws.sqs_client(&sdk), SqsConfig::new("https://sqs.us-east-1.amazonaws.com/1/logs"))?;
//! let mut graph = spate_engine::GraphBuilder::new();
//! let q = queue.clone();
//! graph.source("sqs", move || q.source());
//! // ... decode and sinks; after the pipeline ends:
//! queue.settled(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! # Backpressure
//!
//! Pollers hand received messages over a channel with room for one receive per
//! poller; the source sends each message downstream with a waiting send. When
//! the pipeline is slow the channel fills and the pollers stop receiving, so at
//! most `pollers × 2 × max_messages` messages wait in Spate besides those in the
//! mailboxes (their visibility is extended meanwhile).
//!
//! # Shutdown
//!
//! On a stop request the pollers are cancelled (a receive cut short leaves its
//! messages invisible until their visibility timeout, then SQS redelivers
//! them), messages received but not yet sent downstream are made visible again,
//! and the source returns. Acks of messages already sent arrive as the pipeline
//! drains; [`SqsQueue::settled`] waits for their deletes.

pub mod body;
mod config;
mod depth;
mod keeper;
mod kind;
mod progress;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use spate_engine::{Ack, AckToken, ActorError, ActorResult, Batch, Ctx, Source, Verdict};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::body::{classify_body, count_lines};
pub use self::config::SqsConfig;
use self::keeper::{Keeper, Settle};
pub use self::kind::SqsKind;
pub use self::progress::SqsProgress;
use super::{ChunkFormat, RawChunk};
use crate::aws::queue_name;
use crate::event::wall_clock_ms;

/// Failures of the SQS source.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    /// The queue was set up outside a Tokio runtime.
    #[error("sqs queue must be created inside a tokio runtime")]
    NoRuntime,
    /// Every poller ended (they only end when the source is dropped).
    #[error("sqs pollers of {0} ended")]
    PollersEnded(String),
}

impl SqsError {
    /// Whose fault it is: both are bugs.
    pub fn class(&self) -> spate_engine::ErrorClass {
        match self {
            SqsError::NoRuntime | SqsError::PollersEnded(_) => spate_engine::ErrorClass::Internal,
        }
    }
}

impl From<SqsError> for ActorError {
    fn from(e: SqsError) -> Self {
        match e.class() {
            spate_engine::ErrorClass::BadInput => ActorError::fatal(e.class(), e.to_string()),
            class => ActorError::new(class, spate_engine::RetryHint::Backoff, e.to_string()),
        }
    }
}

/// A queue as Spate consumes it: the client, the settings, and the task that
/// settles messages. Shared by every (re)start of its [`SqsSource`].
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    config: SqsConfig,
    name: Arc<str>,
    /// `sqs:<queue name>`, the `source` of every event read from the queue.
    origin: Arc<str>,
    settle: mpsc::UnboundedSender<Settle>,
    progress: Arc<SqsProgress>,
}

impl SqsQueue {
    /// Starts the settling task for a queue whose settings passed
    /// [`SqsKind`]'s validation; must be called inside a Tokio runtime.
    pub fn new(client: aws_sdk_sqs::Client, config: SqsConfig) -> Result<Arc<Self>, SqsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SqsError::NoRuntime)?;
        let (settle, rx) = mpsc::unbounded_channel();
        let progress = Arc::new(SqsProgress::default());
        let keeper = Keeper {
            client: client.clone(),
            queue_url: config.queue_url.clone(),
            visibility: Duration::from_secs(u64::from(config.visibility_timeout_secs)),
            extend: config.extend_visibility,
            progress: progress.clone(),
        };
        runtime.spawn(keeper.run(rx));
        let name: Arc<str> = Arc::from(queue_name(&config.queue_url));
        metrics::gauge!("spate_sqs_messages_held", "queue" => name.to_string()).set(0.0);
        let queue = Arc::new(SqsQueue {
            origin: Arc::from(format!("sqs:{name}")),
            name,
            client,
            config,
            settle,
            progress,
        });
        let probe = depth::DepthProbe {
            client: queue.client.clone(),
            queue_url: queue.config.queue_url.clone(),
            name: queue.name.clone(),
        };
        runtime.spawn(depth::watch(probe, Arc::downgrade(&queue.progress)));
        Ok(queue)
    }

    /// A source reading this queue (the graph's factory calls this again after
    /// each restart).
    pub fn source(self: &Arc<Self>) -> SqsSource {
        SqsSource {
            queue: self.clone(),
        }
    }

    /// What has happened so far.
    pub fn progress(&self) -> &Arc<SqsProgress> {
        &self.progress
    }

    /// Waits until every received message is deleted or returned, or `limit`
    /// passes; true when all were settled.
    pub async fn settled(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.progress.settled.notified();
                if self.progress.outstanding() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    fn post(&self, command: Settle) {
        if self.settle.send(command).is_err() {
            // Only when the runtime is shutting down: SQS redelivers after the
            // visibility timeout.
            metrics::counter!("spate_sqs_settle_lost_total").increment(1);
        }
    }

    /// The ack of one message: delete on delivery, return on failure.
    fn ack(&self, receipt: String, message_id: String) -> Ack {
        let settle = self.settle.clone();
        let queue = self.name.clone();
        Ack::from(AckToken::new(move |verdict| {
            let command = match verdict {
                Verdict::Delivered => Settle::Delete(receipt),
                Verdict::Failed(reason) => {
                    tracing::debug!(%queue, %message_id, %reason, "sqs message failed; returning it");
                    Settle::Return(receipt)
                }
            };
            if settle.send(command).is_err() {
                metrics::counter!("spate_sqs_settle_lost_total").increment(1);
            }
        }))
    }

    /// The chunk of one message, or `None` for a message without a receipt
    /// handle (never sent by SQS; counted and skipped).
    fn chunk(&self, message: Message) -> Option<(RawChunk, String, String)> {
        let Some(receipt) = message.receipt_handle else {
            metrics::counter!("spate_sqs_messages_invalid_total").increment(1);
            self.progress.settled(1);
            return None;
        };
        let id = message.message_id.unwrap_or_default();
        let body = classify_body(message.body.unwrap_or_default().into_bytes());
        let lines = match body.format {
            ChunkFormat::Lines => count_lines(&body.bytes),
            ChunkFormat::CloudWatchPayload | ChunkFormat::Compressed => 1,
        };
        let chunk = RawChunk {
            bytes: Arc::new(body.bytes),
            source: Arc::from(format!("sqs:{}:{id}", self.name)),
            origin: self.origin.clone(),
            first_position: 0,
            ingest_ts_ms: wall_clock_ms(),
            format: body.format,
            lines,
        };
        Some((chunk, receipt, id))
    }
}

/// The source: see the module docs.
pub struct SqsSource {
    queue: Arc<SqsQueue>,
}

impl SqsSource {
    /// Sends one received message downstream.
    async fn emit(&self, message: Message, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let Some((chunk, receipt, id)) = self.queue.chunk(message) else {
            return Ok(());
        };
        self.queue.post(Settle::Track(receipt.clone()));
        let ack = self.queue.ack(receipt, id);
        ctx.send(Batch::new(chunk, ack)).await
    }

    /// Makes messages that will not be sent visible again.
    fn give_back(&self, messages: impl IntoIterator<Item = Message>) {
        for m in messages {
            if let Some(receipt) = m.receipt_handle {
                self.queue.post(Settle::Return(receipt));
            }
        }
    }
}

impl Source for SqsSource {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let config = &self.queue.config;
        let (tx, mut rx) = mpsc::channel::<Vec<Message>>(config.pollers);
        let mut pollers = JoinSet::new();
        for _ in 0..config.pollers {
            pollers.spawn(poll(self.queue.clone(), tx.clone()));
        }
        drop(tx);
        let result = loop {
            let messages = tokio::select! {
                biased;
                _ = ctx.stopped() => break Ok(()),
                received = rx.recv() => match received {
                    Some(m) => m,
                    None => break Err(SqsError::PollersEnded(self.queue.name.to_string()).into()),
                },
            };
            let mut messages = messages.into_iter();
            let mut sent = Ok(());
            for message in messages.by_ref() {
                sent = self.emit(message, ctx).await;
                if sent.is_err() {
                    break;
                }
            }
            if sent.is_err() {
                self.give_back(messages);
                break sent;
            }
        };
        pollers.abort_all();
        rx.close();
        while let Ok(messages) = rx.try_recv() {
            self.give_back(messages);
        }
        result
    }
}

/// One poller: long-polls until the source drops the receiving end.
async fn poll(queue: Arc<SqsQueue>, tx: mpsc::Sender<Vec<Message>>) {
    let config = &queue.config;
    let mut failures: u32 = 0;
    loop {
        let received = queue
            .client
            .receive_message()
            .queue_url(&config.queue_url)
            .max_number_of_messages(config.max_messages as i32)
            .wait_time_seconds(config.wait_time_secs as i32)
            .visibility_timeout(config.visibility_timeout_secs as i32)
            .send()
            .await;
        match received {
            Ok(out) => {
                failures = 0;
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    continue;
                }
                let n = messages.len();
                metrics::counter!("spate_sqs_messages_received_total").increment(n as u64);
                queue
                    .progress
                    .received
                    .fetch_add(n as u64, Ordering::Relaxed);
                queue.progress.outstanding.fetch_add(n, Ordering::AcqRel);
                if let Err(mpsc::error::SendError(messages)) = tx.send(messages).await {
                    let source = SqsSource {
                        queue: queue.clone(),
                    };
                    source.give_back(messages);
                    return;
                }
            }
            Err(e) => {
                metrics::counter!("spate_sqs_receive_errors_total").increment(1);
                queue
                    .progress
                    .receive_errors
                    .fetch_add(1, Ordering::Relaxed);
                let e = aws_sdk_sqs::error::DisplayErrorContext(e);
                tracing::warn!(queue = %queue.name, error = %e, "sqs receive failed");
                failures = failures.saturating_add(1);
                tokio::time::sleep(receive_backoff(failures)).await;
            }
        }
    }
}

/// Wait after `failures` consecutive failed receives: 100 ms doubling to 10 s.
fn receive_backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    Duration::from_millis(ms.min(10_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_backoff_grows_and_caps() {
        assert_eq!(receive_backoff(1), Duration::from_millis(100));
        assert_eq!(receive_backoff(2), Duration::from_millis(200));
        assert_eq!(receive_backoff(8), Duration::from_millis(10_000));
        assert_eq!(receive_backoff(100), Duration::from_millis(10_000));
    }

    #[tokio::test]
    async fn messages_become_chunks_with_stable_ids() {
        let sdk = crate::aws::AwsConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..Default::default()
        };
        let client = sdk.sqs_client(&sdk.load().await);
        let queue = SqsQueue::new(client, SqsConfig::new("http://127.0.0.1:1/123/logs")).unwrap();
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("r-1")
            .body("{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n")
            .build();
        let (chunk, receipt, id) = queue.chunk(message).unwrap();
        assert_eq!(&*chunk.source, "sqs:logs:m-1");
        assert_eq!(&*chunk.origin, "sqs:logs");
        assert_eq!(chunk.first_position, 0);
        assert_eq!(chunk.lines, 2);
        assert_eq!(chunk.format, ChunkFormat::Lines);
        assert_eq!((receipt.as_str(), id.as_str()), ("r-1", "m-1"));
        let no_receipt = Message::builder().message_id("m-2").body("x").build();
        assert!(queue.chunk(no_receipt).is_none());
    }

    #[test]
    fn queue_needs_a_runtime() {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_sqs::Client::from_conf(conf);
        let err = SqsQueue::new(client, SqsConfig::new("http://q/1/logs")).err();
        assert!(matches!(err, Some(SqsError::NoRuntime)));
    }
}
