//! The Kinesis source: reads every shard of a stream, with shard leases and
//! checkpoints in a DynamoDB table so that several processes split the shards
//! and a dead process's shards are taken over.
//!
//! Each record becomes one [`RawChunk`] named
//! `kinesis:<stream>:<shard id>:<sequence number>` (the decoder appends the
//! offset of each line, so a record read twice produces the same event ids).
//! Its data is a CloudWatch Logs subscription payload (gzip, as a
//! subscription filter delivers it) or lines (one JSON event, NDJSON, text).
//! KPL-aggregated records are not unpacked.
//!
//! All records of one GetRecords call share one ack. A shard's checkpoint
//! (the last sequence number of the delivered prefix, see [`ledger`]) is
//! written to its lease only on `Delivered`; a failed batch is sent again.
//! After a restart or a takeover, reading resumes after the checkpoint:
//! at-least-once, duplicates carry the same event ids.
//!
//! Leases ([`lease`]): each process takes free or expired leases up to its
//! fair share (`ceil(shards / live workers)`, live workers counted from the
//! holders of unexpired leases) and steals at most one a round from a worker
//! above its share; held leases are renewed every `renew_every` and
//! expire after `lease_duration` without renewal.
//!
//! Resharding: a closed shard is read to its end; once all its records are
//! delivered its lease is marked `SHARD_END`, and only then are its children
//! read (from their start).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use spate_operators::aws::AwsConfig;
//! use spate_operators::sources::kinesis::{KinesisConfig, KinesisStream};
//! let aws = AwsConfig::default();
//! let sdk = aws.load().await;
//! let config = KinesisConfig::new("logs", "spate-leases");
//! let stream = KinesisStream::new(aws.kinesis_client(&sdk), aws.dynamodb_client(&sdk), config)?;
//! let mut graph = spate_engine::GraphBuilder::new();
//! let s = stream.clone();
//! graph.source("kinesis", move || s.source());
//! // ... decode and sinks; after the pipeline ends:
//! stream.settled(std::time::Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```
//!
//! # Backpressure
//!
//! Readers hand batches to the source over a channel with room for two; the
//! source sends each chunk downstream with a waiting send. When the pipeline
//! is slow the channel fills and the readers stop calling GetRecords (their
//! leases are still renewed).
//!
//! # Shutdown
//!
//! On a stop request the source returns at once; the readers stop reading,
//! wait until every batch they sent has a verdict (the pipeline drains
//! meanwhile), write their final checkpoints and release their leases, so
//! another process takes over without waiting for expiry.
//! [`KinesisStream::settled`] waits for that.

mod config;
mod coordinator;
mod error;
mod kind;
pub mod kpl;
pub mod lease;
pub mod ledger;
mod reader;
mod state;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use spate_engine::{Ack, ActorResult, Batch, Ctx, Source};
use tokio::sync::{mpsc, oneshot, watch};

pub use self::config::{KinesisConfig, StartAt, default_worker_id};
use self::coordinator::Coordinator;
pub use self::error::KinesisError;
pub use self::kind::KinesisKind;
use self::lease::{Lease, LeaseTable};
use self::reader::Emit;
use self::state::{Shared, StreamState};
use super::RawChunk;

/// Counts a running coordinator until dropped (also when aborted).
struct Running(Arc<StreamState>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.shared.running.fetch_sub(1, Ordering::AcqRel);
        self.0.shared.settled.notify_waiters();
    }
}

/// A stream as Spate consumes it: clients, settings and the lease state,
/// shared by every (re)start of its [`KinesisSource`].
pub struct KinesisStream {
    state: Arc<StreamState>,
}

impl KinesisStream {
    /// A stream whose settings passed [`KinesisKind`]'s validation; must be
    /// called inside a Tokio runtime.
    pub fn new(
        kinesis: aws_sdk_kinesis::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        config: KinesisConfig,
    ) -> Result<Arc<Self>, KinesisError> {
        tokio::runtime::Handle::try_current().map_err(|_| KinesisError::NoRuntime)?;
        Ok(Arc::new(KinesisStream {
            state: Arc::new(StreamState {
                kinesis,
                leases: LeaseTable::new(dynamodb, &config.lease_table, &config.stream),
                worker_id: config.worker_id.clone(),
                config: Arc::new(config),
                shared: Shared::default(),
            }),
        }))
    }

    /// A source reading this stream (one per pipeline).
    pub fn source(self: &Arc<Self>) -> KinesisSource {
        KinesisSource {
            stream: self.clone(),
        }
    }

    /// This process's worker id in the lease table.
    pub fn worker_id(&self) -> &str {
        &self.state.worker_id
    }

    /// Shards this process is reading now.
    pub fn owned_shards(&self) -> Vec<String> {
        self.state
            .shared
            .owned
            .lock()
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The lease table's items (for operators and tests).
    pub async fn leases(&self) -> Result<Vec<Lease>, KinesisError> {
        self.state.leases.scan().await
    }

    /// Waits until every reader has settled its batches, written its final
    /// checkpoint and released its lease, or `limit` passes; true when all
    /// did.
    pub async fn settled(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.state.shared.settled.notified();
                if self.state.shared.running.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Stops every task of this stream at once, writing nothing: no final
    /// checkpoint, no release. Leases expire after `lease_duration` and
    /// other processes take them over, as after a crash.
    pub fn abort(&self) {
        self.state.shared.aborted.store(true, Ordering::Release);
        if let Ok(mut tasks) = self.state.shared.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        self.state.shared.set_owned([]);
    }

    /// Starts the coordinator of one source run.
    fn start(
        &self,
        tx: mpsc::Sender<Emit>,
        stop: watch::Receiver<bool>,
    ) -> oneshot::Receiver<Result<(), KinesisError>> {
        let (done, result) = oneshot::channel();
        self.state.shared.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.state.clone());
        let coordinator = Coordinator::new(self.state.clone(), tx, stop);
        let task = tokio::spawn(async move {
            let _running = running;
            let _ = done.send(coordinator.run().await);
        });
        self.state.shared.track(task.abort_handle());
        result
    }
}

/// The source: see the module docs.
pub struct KinesisSource {
    stream: Arc<KinesisStream>,
}

impl KinesisSource {
    /// Sends each chunk of a batch downstream with a share of its token.
    async fn emit(&self, emit: Emit, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let Emit { chunks, token } = emit;
        let mut shares: Vec<_> = (1..chunks.len()).map(|_| token.clone()).collect();
        shares.push(token);
        for (chunk, share) in chunks.into_iter().zip(shares) {
            ctx.send(Batch::new(chunk, Ack::from(share))).await?;
        }
        Ok(())
    }
}

impl Source for KinesisSource {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let (tx, mut rx) = mpsc::channel::<Emit>(2);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut result_rx = self.stream.start(tx, stop_rx);
        let mut coordinator_done = false;
        let result = loop {
            tokio::select! {
                biased;
                _ = ctx.stopped() => break Ok(()),
                emit = rx.recv() => match emit {
                    Some(emit) => {
                        if let Err(e) = self.emit(emit, ctx).await {
                            break Err(e);
                        }
                    }
                    None => {
                        if self.stream.state.shared.aborted.load(Ordering::Acquire) {
                            ctx.stopped().await;
                            break Ok(());
                        }
                        break match result_rx.try_recv() {
                            Ok(Err(e)) => Err(e.into()),
                            _ => Err(KinesisError::CoordinatorEnded(self.stream.state.config.stream.clone()).into()),
                        };
                    }
                },
                // The coordinator failed while its readers still hold
                // senders.
                result = &mut result_rx, if !coordinator_done => {
                    coordinator_done = true;
                    if let Ok(Err(e)) = result {
                        break Err(e.into());
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        result
    }
}

#[cfg(test)]
mod tests {
    use spate_engine::ErrorClass;

    use super::*;

    #[test]
    fn missing_resources_are_bad_input_and_the_rest_external() {
        let missing = KinesisError::Kinesis {
            op: "list shards",
            code: Some("ResourceNotFoundException".into()),
            message: "stream logs not found".into(),
        };
        assert_eq!(missing.class(), ErrorClass::BadInput);
        let throttled = KinesisError::Dynamo {
            op: "scan leases",
            code: Some("ProvisionedThroughputExceededException".into()),
            message: "slow down".into(),
        };
        assert_eq!(throttled.class(), ErrorClass::External);
        assert_eq!(
            throttled.to_string(),
            "kinesis lease table scan leases: slow down"
        );
    }

    #[test]
    fn stream_needs_a_runtime() {
        let kinesis = aws_sdk_kinesis::Client::from_conf(
            aws_sdk_kinesis::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .build(),
        );
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .build(),
        );
        let err = KinesisStream::new(kinesis, dynamodb, KinesisConfig::new("s", "t")).err();
        assert!(matches!(err, Some(KinesisError::NoRuntime)));
    }
}
