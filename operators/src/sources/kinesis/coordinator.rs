//! The lease coordinator of one source run: lists shards, keeps the lease
//! table in step, renews held leases, takes a fair share, and runs one
//! [`ShardReader`] per held lease.
//!
//! # Shutdown
//!
//! On stop every reader is told to stop; the coordinator keeps renewing their
//! leases while they wait for their verdicts and write final checkpoints, and
//! ends when the last reader has released its lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use spate_engine::ErrorClass;
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::error::KinesisError;
use super::lease::{Claim, ShardInfo, plan};
use super::reader::{Control, Emit, ReaderEnd, ShardReader, StartPosition};
use super::state::{Shared, StreamState};
use crate::event::wall_clock_ms;

struct ReaderHandle {
    token: String,
    control: watch::Sender<Control>,
    /// The shard's last sequence number once ListShards shows it closed.
    ending: watch::Sender<Option<String>>,
}

/// See the module docs.
pub struct Coordinator {
    stream: Arc<StreamState>,
    tx: mpsc::Sender<Emit>,
    stop: watch::Receiver<bool>,
    readers: HashMap<String, ReaderHandle>,
    done_tx: mpsc::UnboundedSender<(String, ReaderEnd)>,
    done_rx: mpsc::UnboundedReceiver<(String, ReaderEnd)>,
    shards: Vec<ShardInfo>,
}

impl Coordinator {
    /// A coordinator sending chunks on `tx` until `stop` turns true.
    pub fn new(
        stream: Arc<StreamState>,
        tx: mpsc::Sender<Emit>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Coordinator {
            stream,
            tx,
            stop,
            readers: HashMap::new(),
            done_tx,
            done_rx,
            shards: Vec::new(),
        }
    }

    fn shared(&self) -> &Shared {
        &self.stream.shared
    }

    /// Runs until stopped and every reader ended; an error only for a
    /// configuration problem (a missing stream or table).
    pub async fn run(mut self) -> Result<(), KinesisError> {
        let config = self.stream.config.clone();
        let mut ticks = tokio::time::interval(config.renew_every());
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stop = self.stop.clone();
        let mut result = Ok(());
        loop {
            tokio::select! {
                biased;
                _ = async { let _ = stop.wait_for(|s| *s).await.map(|_| ()); } => break,
                Some((shard, end)) = self.done_rx.recv() => {
                    if self.ended(&shard, end) {
                        // A parent finished: its children may be ready now.
                        ticks.reset_immediately();
                    }
                }
                _ = ticks.tick() => {
                    if let Err(e) = self.round().await {
                        if e.class() == ErrorClass::BadInput {
                            result = Err(e);
                            break;
                        }
                        tracing::warn!(stream = %config.stream, error = %e, "kinesis lease round failed; retrying");
                    }
                }
            }
        }
        for reader in self.readers.values() {
            let _ = reader.control.send(Control::Stop);
        }
        while !self.readers.is_empty() {
            tokio::select! {
                Some((shard, end)) = self.done_rx.recv() => {
                    self.ended(&shard, end);
                }
                _ = ticks.tick() => self.renew().await,
            }
        }
        self.publish_owned();
        result
    }

    /// Forgets a reader that ended; true when its shard finished.
    fn ended(&mut self, shard: &str, end: ReaderEnd) -> bool {
        self.readers.remove(shard);
        self.publish_owned();
        tracing::debug!(shard, ?end, "kinesis shard reader ended");
        end == ReaderEnd::Finished
    }

    fn publish_owned(&self) {
        let owned: Vec<String> = self.readers.keys().cloned().collect();
        metrics::gauge!("spate_kinesis_leases_owned").set(owned.len() as f64);
        self.shared().set_owned(owned);
    }

    /// One round: shards, leases, renewals, claims.
    async fn round(&mut self) -> Result<(), KinesisError> {
        match self.stream.list_shards().await {
            Ok(shards) => {
                for shard in &shards {
                    if let (Some(reader), Some(end)) =
                        (self.readers.get(&shard.shard_id), &shard.ending_sequence)
                    {
                        reader.ending.send_replace(Some(end.clone()));
                    }
                }
                self.shards = shards;
            }
            Err(e) if self.shards.is_empty() || e.class() == ErrorClass::BadInput => {
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(error = %e, "kinesis list shards failed; using the last list");
            }
        }
        let stream = self.stream.clone();
        let leases = &stream.leases;
        let mut known = leases.scan().await?;
        let mut created = false;
        for shard in &self.shards {
            if !known.iter().any(|l| l.shard_id == shard.shard_id) {
                created |= leases.create(shard).await?;
            }
        }
        if created {
            known = leases.scan().await?;
        }
        self.renew().await;
        let config = &stream.config;
        let me = &stream.worker_id;
        let now = wall_clock_ms();
        for claim in plan(&known, &self.shards, me, now) {
            let shard_id = match &claim {
                Claim::Free(s) => s.clone(),
                Claim::Steal { shard_id, .. } => shard_id.clone(),
            };
            if self.readers.contains_key(&shard_id) {
                continue;
            }
            let token = next_token(me);
            let expiry = now + config.lease_duration_ms();
            let Some(lease) = leases.acquire(&claim, me, &token, now, expiry).await? else {
                continue;
            };
            if matches!(claim, Claim::Steal { .. }) {
                tracing::info!(shard = %shard_id, "kinesis lease taken over for balance");
                metrics::counter!("spate_kinesis_leases_stolen_total").increment(1);
            }
            let start =
                StartPosition::of(lease.checkpoint, config.start_at, !lease.parents.is_empty());
            tracing::info!(shard = %shard_id, ?start, "kinesis lease acquired");
            self.spawn_reader(shard_id, token, start);
        }
        self.publish_owned();
        Ok(())
    }

    /// Renews every held lease; tells the reader of a lost one.
    async fn renew(&self) {
        let expiry = wall_clock_ms() + self.stream.config.lease_duration_ms();
        for (shard, reader) in &self.readers {
            match self.stream.leases.renew(shard, &reader.token, expiry).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(shard = %shard, "kinesis lease lost");
                    let _ = reader.control.send(Control::Lost);
                }
                Err(e) => {
                    tracing::warn!(shard = %shard, error = %e, "kinesis lease renewal failed");
                }
            }
        }
    }

    fn spawn_reader(&mut self, shard_id: String, token: String, start: StartPosition) {
        let (control, control_rx) = watch::channel(Control::Run);
        let ending_sequence = self
            .shards
            .iter()
            .find(|s| s.shard_id == shard_id)
            .and_then(|s| s.ending_sequence.clone());
        let (ending, ending_rx) = watch::channel(ending_sequence);
        let reader = ShardReader {
            kinesis: self.stream.kinesis.clone(),
            leases: self.stream.leases.clone(),
            config: self.stream.config.clone(),
            shard_id: shard_id.clone(),
            token: token.clone(),
            start,
            tx: self.tx.clone(),
            control: control_rx,
            ending: ending_rx,
        };
        let done = self.done_tx.clone();
        let shard = shard_id.clone();
        let task = tokio::spawn(async move {
            let end = reader.run().await;
            let _ = done.send((shard, end));
        });
        self.shared().track(task.abort_handle());
        self.readers.insert(
            shard_id,
            ReaderHandle {
                token,
                control,
                ending,
            },
        );
    }
}

/// A token unique to one acquisition.
fn next_token(worker_id: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{worker_id}:{}:{}",
        wall_clock_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
