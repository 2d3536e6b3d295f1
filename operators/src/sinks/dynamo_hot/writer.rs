//! [`DynamoHotWriter`]: the actor that keeps the important events hot in
//! DynamoDB.
//!
//! For each [`LogBatch`] it picks the rows at or above the configured
//! severity, buffers them with the batch's ack, and writes them every
//! `commit_interval` (on `tick`) or as soon as `max_buffered_rows` are
//! buffered; only once every item is applied are the held acks delivered. A
//! batch without hot rows is delivered at once.
//!
//! # Backpressure
//!
//! The write (with its retries) runs while `handle`/`tick` awaits it, so the
//! writer takes no new batch until DynamoDB has the previous ones.
//!
//! # Shutdown
//!
//! `flush` writes what is buffered and delivers its acks. A write that fails
//! after its retries fails every held batch with the reason and returns an
//! external error (the actor restarts with backoff; sources redeliver). A
//! writer dropped with rows buffered fails their batches.

use std::collections::HashSet;
use std::time::Duration;

use spate_engine::{Actor, ActorResult, Batch, Ctx, NoOutput};
use tokio::time::Instant;

use super::batch_write::{BatchWrite, RetryPolicy, put, write_all};
use super::items::{Item, event_items};
use super::{DynamoHotConfig, DynamoHotError};
use crate::log_batch::LogBatch;
use crate::sinks::hot::{HotBuffer, HotRows};
use crate::tap::{self, TapItem, TapStage};

/// The DynamoDB hot writer actor (see the [module docs](self)).
pub struct DynamoHotWriter<W: BatchWrite> {
    writer: W,
    policy: RetryPolicy,
    ttl_secs: i64,
    commit_interval: Duration,
    buffer: HotBuffer,
}

impl<W: BatchWrite> DynamoHotWriter<W> {
    /// A writer through `writer` (a
    /// [`DynamoBatchWriter`](super::DynamoBatchWriter) on `config.table`)
    /// with `config`'s threshold and commit policy; `config` passed
    /// [`DynamoHotConfig::validate`].
    pub fn new(writer: W, config: &DynamoHotConfig) -> Self {
        DynamoHotWriter {
            writer,
            policy: RetryPolicy::default(),
            ttl_secs: config.ttl_secs(),
            commit_interval: Duration::from_millis(config.commit_interval_ms),
            buffer: HotBuffer::new(
                config.min_severity,
                config.max_buffered_rows,
                "spate_dynamo_hot_buffered_rows",
                "dynamodb hot writer stopped before writing the batch",
            ),
        }
    }

    /// Replaces the retry policy of BatchWriteItem.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Rows waiting for the next write.
    pub fn buffered_rows(&self) -> usize {
        self.buffer.len()
    }

    /// The put requests of the buffered rows, one per key (the last wins: a
    /// redelivered event within one commit is written once).
    fn requests(
        rows: &[HotRows],
        ttl_secs: i64,
    ) -> Result<Vec<aws_sdk_dynamodb::types::WriteRequest>, DynamoHotError> {
        let mut items: Vec<Item> = Vec::new();
        for r in rows {
            items.extend(event_items(r, ttl_secs)?);
        }
        let mut seen = HashSet::with_capacity(items.len());
        let mut unique = Vec::with_capacity(items.len());
        for item in items.into_iter().rev() {
            let key = (
                item.get("pk").and_then(|v| v.as_s().ok()).cloned(),
                item.get("sk").and_then(|v| v.as_s().ok()).cloned(),
            );
            if seen.insert(key) {
                unique.push(put(item)?);
            }
        }
        unique.reverse();
        Ok(unique)
    }

    /// Writes the buffered rows, then delivers the held acks; on failure
    /// fails them with the reason and returns the classified error.
    async fn commit(&mut self) -> ActorResult {
        let Some((rows, ack)) = self.buffer.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let result = match Self::requests(&rows, self.ttl_secs) {
            Ok(requests) => write_all(&self.writer, requests, &self.policy).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(written) => {
                metrics::histogram!("spate_dynamo_hot_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("spate_dynamo_hot_items_written_total").increment(written);
                ack.deliver();
                Ok(())
            }
            Err(e) => {
                metrics::counter!("spate_dynamo_hot_commit_failures_total").increment(1);
                tracing::warn!(error = %e, "dynamodb hot write failed; failing held batches");
                ack.fail(e.to_string());
                Err(e.into())
            }
        }
    }
}

impl<W: BatchWrite> Actor for DynamoHotWriter<W> {
    type In = LogBatch;
    type Out = NoOutput;

    async fn handle(&mut self, batch: Batch<LogBatch>, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        tap::point(TapStage::Hot).offer(|| TapItem::Events(batch.payload.clone()));
        if self.buffer.add(batch)? {
            self.commit().await?;
        }
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.commit_interval)
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.commit().await
    }

    async fn flush(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.commit().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::types::WriteRequest;
    use spate_engine::testkit::ScriptedSource;
    use spate_engine::{Ack, ActorOptions, GraphBuilder, Verdict};

    use super::*;
    use crate::event::Severity;
    use crate::sinks::hot::rows::tests::{event, log_batch};

    /// Records every item written; fails every call while `down`.
    #[derive(Clone, Default)]
    struct Recorder {
        keys: Arc<Mutex<Vec<String>>>,
        down: Arc<Mutex<bool>>,
    }

    impl BatchWrite for Recorder {
        async fn batch_write(
            &self,
            requests: Vec<WriteRequest>,
        ) -> Result<Vec<WriteRequest>, DynamoHotError> {
            if *self.down.lock().unwrap() {
                return Err(DynamoHotError::Dynamo {
                    op: "batch write",
                    code: Some("InternalServerError".into()),
                    message: "down".into(),
                });
            }
            let mut keys = self.keys.lock().unwrap();
            for r in &requests {
                let item = r.put_request().unwrap().item();
                let pk = item["pk"].as_s().unwrap();
                if pk.starts_with("svc#") {
                    keys.push(item["sk"].as_s().unwrap().clone());
                }
            }
            Ok(Vec::new())
        }
    }

    fn config() -> DynamoHotConfig {
        DynamoHotConfig {
            commit_interval_ms: 50,
            ..DynamoHotConfig::new("hot")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn acks_wait_for_the_write_and_cold_batches_pass() {
        let recorder = Recorder::default();
        let hot = log_batch(&[
            event("a", 1_000, "api", Severity::Error),
            event("b", 1_001, "api", Severity::Info),
        ]);
        let cold = log_batch(&[event("c", 1_002, "api", Severity::Info)]);
        let source = ScriptedSource::new([hot, cold]).until_stopped();
        let log = source.log();
        let mut graph = GraphBuilder::new();
        graph.source("src", move || source.clone());
        let r = recorder.clone();
        graph.actor(
            "hot",
            move || DynamoHotWriter::new(r.clone(), &config()),
            ActorOptions::default(),
        );
        graph.connect("src", "hot");
        let pipeline = graph.build().unwrap().spawn();
        // The paused clock stands still while this task keeps yielding: the
        // cold batch is delivered before any commit tick.
        for _ in 0..10_000 {
            if !log.verdicts().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(log.verdicts(), [Verdict::Delivered]);
        assert!(recorder.keys.lock().unwrap().is_empty(), "not yet written");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(log.delivered(), 2);
        assert_eq!(*recorder.keys.lock().unwrap(), ["0000000001000#a"]);
        pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_fails_the_held_batches() {
        let recorder = Recorder::default();
        *recorder.down.lock().unwrap() = true;
        let mut writer =
            DynamoHotWriter::new(recorder.clone(), &config()).with_retry_policy(RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            });
        let (token, mut verdict) = spate_engine::AckToken::channel();
        let batch = log_batch(&[event("a", 1_000, "api", Severity::Critical)]);
        writer.buffer.push(
            batch
                .parts
                .iter()
                .filter_map(|p| HotRows::select(p, Severity::Warning).unwrap())
                .collect(),
            Ack::from(token),
        );
        let err = writer.commit().await.unwrap_err();
        assert_eq!(err.class(), spate_engine::ErrorClass::External);
        assert!(matches!(verdict.try_recv().unwrap(), Verdict::Failed(r) if r.contains("down")));
        assert_eq!(writer.buffered_rows(), 0);
    }

    #[test]
    fn duplicate_keys_in_one_commit_are_written_once() {
        let a = log_batch(&[event("a", 1_000, "api", Severity::Error)]);
        let rows: Vec<HotRows> = [&a, &a]
            .iter()
            .flat_map(|b| b.parts.iter())
            .filter_map(|p| HotRows::select(p, Severity::Warning).unwrap())
            .collect();
        let requests = DynamoHotWriter::<Recorder>::requests(&rows, 60).unwrap();
        assert_eq!(requests.len(), 2, "one service item and one day item");
    }
}
