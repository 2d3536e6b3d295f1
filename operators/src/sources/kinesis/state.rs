//! What a stream's coordinator, its readers and the [`KinesisStream`]
//! handle share: the clients, the settings, the lease table and the
//! bookkeeping of running tasks.
//!
//! [`KinesisStream`]: super::KinesisStream

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::config::KinesisConfig;
use super::error::KinesisError;
use super::lease::{LeaseTable, ShardInfo};

/// State shared by the coordinator, its readers and the handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(super) owned: Mutex<BTreeSet<String>>,
    pub(super) running: AtomicUsize,
    pub(super) settled: Notify,
    pub(super) aborted: AtomicBool,
    pub(super) tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    pub(super) fn set_owned(&self, owned: impl IntoIterator<Item = String>) {
        if let Ok(mut o) = self.owned.lock() {
            *o = owned.into_iter().collect();
        }
    }

    pub(super) fn track(&self, task: AbortHandle) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
        }
    }
}

/// A stream's clients, settings and leases.
pub(crate) struct StreamState {
    pub(super) kinesis: aws_sdk_kinesis::Client,
    pub(super) leases: LeaseTable,
    pub(super) config: Arc<KinesisConfig>,
    pub(super) worker_id: String,
    pub(super) shared: Shared,
}

impl StreamState {
    /// Every shard of the stream, with its parents.
    pub(super) async fn list_shards(&self) -> Result<Vec<ShardInfo>, KinesisError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = self.kinesis.list_shards();
            let request = match &next {
                Some(token) => request.next_token(token),
                None => request.stream_name(&self.config.stream),
            };
            let page = request
                .send()
                .await
                .map_err(|e| KinesisError::kinesis("list shards", e))?;
            for shard in page.shards() {
                let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                out.push(ShardInfo {
                    shard_id: shard.shard_id().to_string(),
                    parents,
                    ending_sequence: shard
                        .sequence_number_range()
                        .and_then(|r| r.ending_sequence_number())
                        .map(str::to_string),
                });
            }
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(out),
            }
        }
    }
}
