//! [`DynamoHotWriter`]: the actor that keeps the important events hot in
//! DynamoDB.
//!
//! For each [`LogBatch`] it picks the rows at or above the configured
//! severity, buffers them with the batch's ack, and writes them every
//! `commit_interval` (on `tick`) or as soon as `max_buffered_rows` are
//! buffered, packed: one item per service and minute of the buffered events
//! ([`block_items`]), so a commit of many events costs write units by its
//! compressed bytes. The first block of a service and day also lists the
//! service in the day's registry (rewritten by a writer only when its blocks
//! would outlive the entry by an hour). Only once every item is
//! applied are the held acks delivered. A batch without hot rows is delivered
//! at once.
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use spate_engine::{Actor, ActorResult, Batch, Ctx, NoOutput};
use tokio::time::Instant;

use super::batch_write::{BatchWrite, RetryPolicy, put, write_all};
use super::block::MAX_BLOCK_BYTES;
use super::items::{block_items, registry_item, write_units};
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
    /// Unique per writer instance: part of every block key.
    id: String,
    /// Blocks written so far (the last part of block keys).
    seq: u64,
    /// (day, service) pairs listed in the registry, with the `expires_at`
    /// written there.
    registered: HashMap<(String, Arc<str>), i64>,
}

/// What one commit writes.
struct Commit {
    requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    /// Registry entries to remember once written.
    registered: Vec<((String, Arc<str>), i64)>,
    events: u64,
    blocks: u64,
    write_units: u64,
}

/// A registry entry is written again when blocks need it to live this much
/// longer than it was written for.
const REGISTRY_SLACK_SECS: i64 = 3600;

/// A random id of 12 hex digits (the standard library's randomly keyed
/// hasher), for block keys.
fn writer_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i64(crate::event::wall_clock_ms());
    format!("{:012x}", h.finish() >> 16)
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
            id: writer_id(),
            seq: 0,
            registered: HashMap::new(),
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

    /// The put requests of the buffered rows: their blocks (a redelivered
    /// event within one commit is packed once), then the registry entries
    /// not written yet.
    fn requests(&mut self, rows: &[HotRows]) -> Result<Commit, DynamoHotError> {
        let blocks = block_items(
            rows,
            self.ttl_secs,
            &self.id,
            &mut self.seq,
            MAX_BLOCK_BYTES,
        )?;
        let mut commit = Commit {
            requests: Vec::with_capacity(blocks.items.len() + blocks.days.len()),
            registered: Vec::new(),
            events: blocks.events,
            blocks: blocks.items.len() as u64,
            write_units: 0,
        };
        for item in blocks.items {
            commit.write_units += write_units(&item);
            commit.requests.push(put(item)?);
        }
        for (key, expires_at) in blocks.days {
            let written = self.registered.get(&key).copied();
            if written.is_some_and(|w| w + REGISTRY_SLACK_SECS >= expires_at) {
                continue;
            }
            let expires_at = expires_at + REGISTRY_SLACK_SECS;
            let item = registry_item(&key.0, &key.1, expires_at);
            commit.write_units += write_units(&item);
            commit.requests.push(put(item)?);
            commit.registered.push((key, expires_at));
        }
        Ok(commit)
    }

    /// Writes the buffered rows, then delivers the held acks; on failure
    /// fails them with the reason and returns the classified error.
    async fn commit(&mut self) -> ActorResult {
        let Some((rows, ack)) = self.buffer.take() else {
            return Ok(());
        };
        let started = Instant::now();
        let result = match self.requests(&rows) {
            Ok(mut commit) => {
                let requests = std::mem::take(&mut commit.requests);
                write_all(&self.writer, requests, &self.policy)
                    .await
                    .map(|written| (written, commit))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((written, commit)) => {
                metrics::histogram!("spate_dynamo_hot_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                metrics::counter!("spate_dynamo_hot_items_written_total").increment(written);
                metrics::counter!("spate_dynamo_hot_blocks_written_total").increment(commit.blocks);
                metrics::counter!("spate_dynamo_hot_events_written_total").increment(commit.events);
                metrics::counter!("spate_dynamo_hot_write_units_total")
                    .increment(commit.write_units);
                let now_secs = crate::event::wall_clock_ms().div_euclid(1000);
                self.registered.retain(|_, expires| *expires > now_secs);
                self.registered.extend(commit.registered);
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
    use crate::sinks::dynamo_hot::items::item_events;
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
                if let Some(service) = pk.strip_prefix("svc#") {
                    for e in item_events(item, service).unwrap() {
                        keys.push(format!("{}#{}", e.event.ts_ms, e.event.event_id));
                    }
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
        assert_eq!(*recorder.keys.lock().unwrap(), ["1000#a"]);
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
    fn a_redelivered_batch_in_one_commit_is_packed_once() {
        let a = log_batch(&[
            event("a", 1_000, "api", Severity::Error),
            event("b", 1_001, "web", Severity::Error),
        ]);
        let rows: Vec<HotRows> = [&a, &a]
            .iter()
            .flat_map(|b| b.parts.iter())
            .filter_map(|p| HotRows::select(p, Severity::Warning).unwrap())
            .collect();
        let mut writer = DynamoHotWriter::new(Recorder::default(), &config());
        let commit = writer.requests(&rows).unwrap();
        assert_eq!((commit.blocks, commit.events), (2, 2));
        assert_eq!(
            commit.requests.len(),
            4,
            "a block and a registry entry a service"
        );
        assert_eq!(commit.write_units, 4);
        let events: Vec<String> = commit
            .requests
            .iter()
            .map(|r| r.put_request().unwrap().item())
            .filter_map(|item| {
                let service = item["pk"].as_s().unwrap().strip_prefix("svc#")?;
                Some(item_events(item, service).unwrap())
            })
            .flatten()
            .map(|e| e.event.event_id)
            .collect();
        assert_eq!(events, ["a", "b"]);
        // Once written, the registry entries are not written again.
        writer.registered.extend(commit.registered);
        let again = writer.requests(&rows).unwrap();
        assert_eq!(again.requests.len(), 2);
        // Block keys never repeat.
        assert_ne!(
            again.requests[0].put_request().unwrap().item()["sk"],
            commit.requests[0].put_request().unwrap().item()["sk"]
        );
    }
}
