//! The lake writer actor: buffers, stages and seals the partitions the decode
//! stage routes to it (see the [module docs](super) for the protocol).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use arrow_array::RecordBatch;
use spate_engine::work_threads::WorkThreads;
use spate_engine::{Ack, Actor, ActorError, ActorResult, Batch, Ctx, NoOutput};
use tokio::time::Instant;

use super::dead_letters::{self, DeadLetterFile};
use super::dedup::{index_path, prune_expired, within_horizon};
use super::part_file::sync_dir;
use super::partition::{PartitionKey, sliced_bytes};
use super::policy::{SealReason, StagedStats, next_seal, to_stage};
use super::recovery::{ScratchLeftovers, discard, recover_dead_letters, recover_local};
use super::schema::logs_file_schema;
use super::seal::{DedupSpec, SealJob, Sealed};
use super::staging::{
    ClosedSegment, SegmentWriter, StagingDurability, list_staged, sealed_file_name, stager_tag,
};
use super::{LakeError, LakeSettings, SealTask};
use crate::event::wall_clock_ms;
use crate::log_batch::{EventCounts, LogBatch};
use crate::tap::{self, TapItem, TapStage};

/// Parquet bytes per Arrow byte assumed before the first seal measures it.
const INITIAL_RATIO: f64 = 0.2;
/// Arrow bytes per staged (LZ4) byte, for segments adopted at start
/// (uncompressed ones, left by an interrupted `spate ingest`, are thus
/// overestimated: they only seal sooner).
const ADOPTED_ARROW_PER_BYTE: u64 = 3;
/// Waits before retrying a failed seal of a local lake, doubling to the max.
const SEAL_RETRY: Duration = Duration::from_secs(1);
const SEAL_RETRY_MAX: Duration = Duration::from_secs(60);
/// How often writer 0 deletes the dedup indexes past the horizon.
const DEDUP_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// One partition this writer owns.
#[derive(Default)]
struct Part {
    /// Rows waiting for the next staging commit.
    buffer: Vec<RecordBatch>,
    buffer_bytes: usize,
    /// The segment being appended to.
    open: Option<SegmentWriter>,
    /// Finished segments, oldest first.
    closed: Vec<ClosedSegment>,
    closed_bytes: u64,
    /// Arrow size of everything staged (closed and open).
    arrow_bytes: u64,
    first_staged_at: Option<Instant>,
    last_staged_at: Option<Instant>,
    /// S3 lake: acks of the rows buffered or staged, delivered by their seal.
    acks: Ack,
}

impl Part {
    fn staged_bytes(&self) -> u64 {
        self.closed_bytes + self.open.as_ref().map_or(0, SegmentWriter::len)
    }

    fn is_idle(&self) -> bool {
        self.buffer.is_empty() && self.open.is_none() && self.closed.is_empty()
    }
}

/// A seal running beside the writer.
struct RunningSeal {
    key: PartitionKey,
    reason: SealReason,
    hi: u64,
    arrow_bytes: u64,
    acks: Ack,
    started: Instant,
    task: SealTask,
}

/// One lake writer: owns the partitions the decode stage routes to it.
pub struct LakeWriter {
    settings: LakeSettings,
    worker: usize,
    parts: HashMap<PartitionKey, Part>,
    buffered_bytes: usize,
    watermark_ms: i64,
    sealed_arrow_bytes: u64,
    sealed_file_bytes: u64,
    /// The seals running, of distinct partitions, at most `seal_threads`.
    seals: Vec<RunningSeal>,
    /// Where seals read and encode, started at the first seal.
    seal_threads: Option<WorkThreads>,
    /// When writer 0 last pruned the dedup indexes past the horizon.
    last_prune: Option<Instant>,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// Why the last seal failed, while its rows wait in staging.
    seal_error: Option<String>,
    /// New segment directories whose entries the next commit makes durable.
    dirs_to_sync: Vec<std::path::PathBuf>,
    /// Acks delivered by the next staging commit.
    pending_ack: Ack,
    pending_counts: EventCounts,
    dead: HashMap<String, DeadLetterFile>,
    dead_opened_at: Option<Instant>,
    /// S3 lake: acks of batches with dead letters, delivered by their upload.
    dead_acks: Ack,
    seq_names: u64,
}

impl LakeWriter {
    /// Writer number `worker` of a pool.
    pub fn new(settings: LakeSettings, worker: usize) -> Self {
        LakeWriter {
            settings,
            worker,
            parts: HashMap::new(),
            buffered_bytes: 0,
            watermark_ms: i64::MIN,
            sealed_arrow_bytes: 0,
            sealed_file_bytes: 0,
            seals: Vec::new(),
            seal_threads: None,
            last_prune: None,
            retry_at: None,
            retry_delay: SEAL_RETRY,
            seal_error: None,
            dirs_to_sync: Vec::new(),
            pending_ack: Ack::none(),
            pending_counts: EventCounts::default(),
            dead: HashMap::new(),
            dead_opened_at: None,
            dead_acks: Ack::none(),
            seq_names: 0,
        }
    }

    fn owns(&self, key: &PartitionKey) -> bool {
        key.shard(self.settings.writers) == self.worker
    }

    /// Takes over what an earlier run left in this writer's partitions.
    async fn recover(&mut self) -> Result<(), LakeError> {
        let orphans = self
            .settings
            .orphaned_seals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.worker);
        for task in orphans.into_iter().flatten() {
            // A seal of this writer's previous incarnation: let it finish
            // before looking at the staging area it changes.
            let _ = task.await;
        }
        let settings = self.settings.clone();
        let worker = self.worker;
        let keep = !settings.acks_wait_for_seal();
        let restart = !settings
            .started_workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(worker);
        let scratch = if restart {
            ScratchLeftovers::Adopt
        } else {
            ScratchLeftovers::Delete
        };
        let recovered = tokio::task::spawn_blocking(move || {
            let mut adopted = Vec::new();
            for staged in list_staged(&settings.staging_dir)? {
                if staged.key.shard(settings.writers) != worker {
                    continue;
                }
                let sealed_dir = settings.table_dir.join(staged.key.path());
                if keep {
                    let recovered = recover_local(&staged, &sealed_dir, scratch)?;
                    if !recovered.kept.is_empty() {
                        adopted.push((staged.key, recovered.kept));
                    }
                } else {
                    discard(&staged, &sealed_dir)?;
                }
            }
            if worker == 0 {
                recover_dead_letters(&settings.dead_letter_dir, keep)?;
            }
            Ok::<_, LakeError>(adopted)
        })
        .await
        .map_err(|e| LakeError::Parquet(format!("recovery task failed: {e}")))??;
        let now = Instant::now();
        for (key, segments) in recovered {
            if !self.owns(&key) {
                continue;
            }
            let part = self.parts.entry(key).or_default();
            for segment in segments {
                self.settings.seq.raise_to(segment.seq);
                part.closed_bytes += segment.bytes;
                part.arrow_bytes += segment.bytes * ADOPTED_ARROW_PER_BYTE;
                part.closed.push(segment);
            }
            part.first_staged_at.get_or_insert(now);
            part.last_staged_at = Some(now);
        }
        Ok(())
    }

    fn add(&mut self, payload: &LogBatch, ack: Ack) -> Result<(), LakeError> {
        let now_ms = wall_clock_ms();
        let horizon = now_ms.saturating_add(self.settings.policy.hour_grace_ms);
        // A local lake delivers every ack at the next staging commit; an S3
        // lake gives a share to each partition and to the dead letters, each
        // delivered by its upload.
        let waiting = payload.parts.len() + usize::from(!payload.dead_letters.is_empty());
        let mut shares = if self.settings.acks_wait_for_seal() && waiting > 0 {
            ack_shares(ack, waiting)
        } else {
            self.pending_ack.merge(ack);
            Vec::new()
        };
        for part in &payload.parts {
            if let Some(max) = max_ts(&part.records) {
                // An event far in the future does not close every hour.
                self.watermark_ms = self.watermark_ms.max(max.min(horizon));
            }
            let bytes = sliced_bytes(&part.records);
            let state = self.parts.entry(part.key.clone()).or_default();
            state.buffer.push(part.records.clone());
            state.buffer_bytes += bytes;
            if let Some(share) = shares.pop() {
                state.acks.merge(share);
            }
            self.buffered_bytes += bytes;
        }
        if !payload.dead_letters.is_empty() {
            if let Some(share) = shares.pop() {
                self.dead_acks.merge(share);
            }
            // Dead letters are filed by the day they were rejected.
            let date = PartitionKey::of(now_ms, "").date();
            if !self.dead.contains_key(&date) {
                let dir = self.settings.dead_letter_dir.join(format!("dt={date}"));
                let name = self.file_name("ndjson");
                self.dead
                    .insert(date.clone(), DeadLetterFile::create(&dir, &name)?);
                self.dead_opened_at.get_or_insert_with(Instant::now);
            }
            let file = self.dead.get_mut(&date).expect("inserted above");
            file.append(&payload.dead_letters)?;
        }
        let keys: Vec<PartitionKey> = self.parts.keys().cloned().collect();
        let sizes: Vec<usize> = keys.iter().map(|k| self.parts[k].buffer_bytes).collect();
        for i in to_stage(&sizes, self.settings.max_buffered_bytes) {
            self.stage(&keys[i])?;
        }
        Ok(())
    }

    /// `part-<ms>-<stager>-<worker>-<seq>.<ext>` for dead-letter files.
    fn file_name(&mut self, ext: &str) -> String {
        self.seq_names += 1;
        format!(
            "part-{}-{}-{}-{:06}.{ext}",
            wall_clock_ms(),
            stager_tag(),
            self.worker,
            self.seq_names
        )
    }

    /// Appends `key`'s buffered rows to its segment (one message).
    fn stage(&mut self, key: &PartitionKey) -> Result<(), LakeError> {
        let Some(part) = self.parts.get_mut(key) else {
            return Ok(());
        };
        if part.buffer.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut part.buffer);
        self.buffered_bytes -= std::mem::take(&mut part.buffer_bytes);
        let records = if batches.len() == 1 {
            batches.into_iter().next().expect("one batch")
        } else {
            arrow_select::concat::concat_batches(&logs_file_schema(), &batches)
                .map_err(|e| LakeError::Parquet(format!("staging {key}: {e}")))?
        };
        if part.open.is_none() {
            let dir = self.settings.staging_dir.join(key.path());
            let durability = self.settings.staging_durability();
            let synced = durability == StagingDurability::EachCommit;
            if synced && !dir.exists() {
                // Its new entries and those of new parents.
                self.dirs_to_sync
                    .extend(dir.ancestors().skip(1).take(3).map(Into::into));
            }
            let segment = SegmentWriter::create(
                &dir,
                self.settings.seq.next(),
                self.settings.staging_compression,
                durability,
            )?;
            if synced {
                self.dirs_to_sync.push(dir);
            }
            part.open = Some(segment);
        }
        let segment = part.open.as_mut().expect("opened above");
        part.arrow_bytes += segment.append(&records)? as u64;
        let now = Instant::now();
        part.first_staged_at.get_or_insert(now);
        part.last_staged_at = Some(now);
        Ok(())
    }

    /// The staging commit: everything buffered is staged (and fsynced, when
    /// its acks mean it is on disk: [`LakeSettings::staging_durability`]),
    /// then the acks it was holding are delivered (local lake).
    fn commit(&mut self) -> Result<(), LakeError> {
        let started = Instant::now();
        let keys: Vec<PartitionKey> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.buffer.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.stage(key)?;
        }
        for part in self.parts.values_mut() {
            if let Some(segment) = part.open.as_mut() {
                segment.commit()?;
            }
        }
        self.dirs_to_sync.sort();
        self.dirs_to_sync.dedup();
        for dir in std::mem::take(&mut self.dirs_to_sync) {
            if dir.exists() {
                sync_dir(&dir)?;
            }
        }
        for file in self.dead.values_mut() {
            file.sync()?;
        }
        let counts = std::mem::take(&mut self.pending_counts);
        metrics::counter!("spate_dead_letters_total").increment(counts.dead_letters);
        self.settings
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .add(&counts);
        metrics::histogram!("spate_lake_commit_seconds").record(started.elapsed().as_secs_f64());
        std::mem::take(&mut self.pending_ack).deliver();
        let staged: u64 = self.parts.values().map(Part::staged_bytes).sum();
        metrics::gauge!("spate_lake_staged_bytes", "writer" => self.worker.to_string())
            .set(staged as f64);
        Ok(())
    }

    fn ratio(&self) -> f64 {
        if self.sealed_arrow_bytes == 0 {
            INITIAL_RATIO
        } else {
            self.sealed_file_bytes as f64 / self.sealed_arrow_bytes as f64
        }
    }

    /// Starts the seals the policy asks for, while fewer than
    /// `seal_threads` run.
    fn seal_if_due(&mut self) -> Result<(), LakeError> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        while self.seals.len() < self.settings.seal_threads {
            let Some((key, reason)) = self.due_seal() else {
                break;
            };
            if !self.start_seal(&key, reason)? {
                break;
            }
        }
        Ok(())
    }

    /// The partition the policy would seal next, of those not sealing.
    fn due_seal(&self) -> Option<(PartitionKey, SealReason)> {
        let now = Instant::now();
        let (keys, stats): (Vec<&PartitionKey>, Vec<StagedStats>) = self
            .parts
            .iter()
            .filter(|(key, _)| !self.seals.iter().any(|s| &s.key == *key))
            .filter_map(|(key, part)| {
                let first = part.first_staged_at?;
                Some((
                    key,
                    StagedStats {
                        hour_start_ms: key.hour_start_ms,
                        staged_bytes: part.staged_bytes(),
                        arrow_bytes: part.arrow_bytes,
                        first_staged_at: first,
                        last_staged_at: part.last_staged_at.unwrap_or(first),
                    },
                ))
            })
            .unzip();
        let (i, reason) = next_seal(
            &stats,
            now,
            self.watermark_ms,
            self.ratio(),
            &self.settings.policy,
        )?;
        Some((keys[i].clone(), reason))
    }

    /// Closes `key`'s segment and hands all its segments to a seal task;
    /// false if it had none. `key` must not be sealing already.
    fn start_seal(&mut self, key: &PartitionKey, reason: SealReason) -> Result<bool, LakeError> {
        self.stage(key)?;
        let dedup = self.dedup_spec(key);
        let part = self.parts.get_mut(key).expect("a staged partition");
        if let Some(open) = part.open.take() {
            let closed = open.finish()?;
            part.closed_bytes += closed.bytes;
            part.closed.push(closed);
        }
        let Some(hi) = part.closed.last().map(|s| s.seq) else {
            return Ok(false);
        };
        let thread = match &self.seal_threads {
            Some(threads) => threads.clone(),
            None => {
                let name = format!("lake-seal-{}", self.worker);
                let threads = WorkThreads::spawn(&name, self.settings.seal_threads)?;
                self.seal_threads.insert(threads).clone()
            }
        };
        let job = SealJob {
            key: key.clone(),
            segments: part.closed.clone(),
            table_dir: self.settings.table_dir.clone(),
            name: sealed_file_name(stager_tag(), hi),
            props: self.settings.props.clone(),
            publish: self.settings.publish(),
            dedup,
        };
        self.seals.push(RunningSeal {
            key: key.clone(),
            reason,
            hi,
            arrow_bytes: part.arrow_bytes,
            acks: std::mem::take(&mut part.acks),
            started: Instant::now(),
            task: tokio::spawn(job.run(thread)),
        });
        // What the partition stages from now on is its own.
        part.arrow_bytes = 0;
        part.first_staged_at = None;
        part.last_staged_at = None;
        Ok(true)
    }

    /// Settles the running seals that finished (`wait`: waits for all).
    async fn settle_seals(&mut self, wait: bool) -> Result<(), LakeError> {
        while wait && !self.seals.is_empty() || self.seals.iter().any(|s| s.task.is_finished()) {
            self.settle_next_seal().await?;
        }
        Ok(())
    }

    /// Waits for whichever running seal ends first (none: returns at once)
    /// and settles it.
    async fn settle_next_seal(&mut self) -> Result<(), LakeError> {
        if self.seals.is_empty() {
            return Ok(());
        }
        let (i, joined) = std::future::poll_fn(|cx| {
            for (i, seal) in self.seals.iter_mut().enumerate() {
                if let Poll::Ready(joined) = Pin::new(&mut seal.task).poll(cx) {
                    return Poll::Ready((i, joined));
                }
            }
            Poll::Pending
        })
        .await;
        let RunningSeal {
            key,
            reason,
            hi,
            arrow_bytes,
            acks,
            started,
            task: _,
        } = self.seals.swap_remove(i);
        let result = joined
            .map_err(|e| LakeError::Parquet(format!("seal task failed: {e}")))
            .and_then(|r| r);
        let part = self.parts.entry(key.clone()).or_default();
        match result {
            Ok(sealed) => {
                let removed: u64 = part
                    .closed
                    .iter()
                    .filter(|s| s.seq <= hi)
                    .map(|s| s.bytes)
                    .sum();
                part.closed.retain(|s| s.seq > hi);
                part.closed_bytes -= removed;
                if part.is_idle() && part.acks.is_empty() {
                    self.parts.remove(&key);
                    let dir = self.settings.staging_dir.join(key.path());
                    let _ = std::fs::remove_dir(&dir);
                }
                self.sealed_arrow_bytes += arrow_bytes;
                self.sealed_file_bytes += sealed.bytes;
                self.record(&sealed, reason, started);
                acks.deliver();
                self.retry_delay = SEAL_RETRY;
                self.retry_at = None;
                self.seal_error = None;
                Ok(())
            }
            Err(e) if !self.settings.acks_wait_for_seal() => {
                // The rows are safe in staging (and acknowledged): retry later.
                part.arrow_bytes += arrow_bytes;
                part.first_staged_at.get_or_insert(started);
                part.last_staged_at.get_or_insert(started);
                part.acks.merge(acks);
                metrics::counter!("spate_lake_seal_failures_total").increment(1);
                tracing::error!(partition = %key, error = %e, retry_in = ?self.retry_delay, "seal failed; the rows stay staged");
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(SEAL_RETRY_MAX);
                self.seal_error = Some(e.to_string());
                Ok(())
            }
            Err(e) => {
                metrics::counter!("spate_lake_seal_failures_total").increment(1);
                acks.fail(e.to_string());
                Err(e)
            }
        }
    }

    /// The dedup of a seal of `key`: none when dedup is off or the
    /// partition is past the horizon. Writer 0 also prunes expired indexes
    /// now and then.
    fn dedup_spec(&mut self, key: &PartitionKey) -> Option<DedupSpec> {
        let horizon_ms = self.settings.dedup_horizon_ms?;
        // The horizon runs on event time: the newest the writer has seen
        // (kept from running ahead of the clock), so a replay of old data is
        // checked as it was the first time.
        let now_ms = self.watermark_ms;
        if self.worker == 0
            && now_ms > i64::MIN
            && self
                .last_prune
                .is_none_or(|at| at.elapsed() >= DEDUP_PRUNE_EVERY)
        {
            self.last_prune = Some(Instant::now());
            let root = self.settings.dedup_dir();
            tokio::task::spawn_blocking(move || prune_expired(&root, now_ms, horizon_ms));
        }
        within_horizon(key, now_ms, horizon_ms).then(|| DedupSpec {
            index: index_path(&self.settings.dedup_dir(), key),
            check_files: !self.settings.acks_wait_for_seal(),
        })
    }

    fn record(&self, sealed: &Sealed, reason: SealReason, started: Instant) {
        metrics::counter!("spate_lake_files_written_total").increment(1);
        metrics::counter!("spate_lake_bytes_written_total").increment(sealed.bytes);
        metrics::counter!("spate_lake_rows_written_total").increment(sealed.rows);
        for (source, n) in &sealed.duplicates_by_source {
            metrics::counter!("spate_lake_duplicates_dropped_total", "source" => source.clone())
                .increment(*n);
        }
        metrics::counter!("spate_lake_seals_total", "reason" => reason.as_str()).increment(1);
        metrics::histogram!("spate_lake_seal_seconds").record(started.elapsed().as_secs_f64());
        tracing::debug!(location = %sealed.location, rows = sealed.rows, bytes = sealed.bytes, reason = reason.as_str(), "sealed");
        let mut totals = self
            .settings
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        totals.files_written += 1;
        totals.bytes_written += sealed.bytes;
        totals.row_groups_written += sealed.row_groups as u64;
        totals.duplicates_dropped += sealed.duplicates;
    }

    /// Publishes the dead-letter files (renamed into place or uploaded) and
    /// delivers the acks that waited for them.
    async fn publish_dead_letters(&mut self) -> Result<(), LakeError> {
        if self.dead.is_empty() {
            std::mem::take(&mut self.dead_acks).deliver();
            return Ok(());
        }
        let files: Vec<DeadLetterFile> = self.dead.drain().map(|(_, f)| f).collect();
        self.dead_opened_at = None;
        let acks = std::mem::take(&mut self.dead_acks);
        match dead_letters::commit_all(files, &self.settings.target, &self.settings.dead_letter_dir)
            .await
        {
            Ok(published) => {
                self.settings
                    .totals
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .dead_letter_files += published;
                acks.deliver();
                Ok(())
            }
            Err(e) => {
                acks.fail(e.to_string());
                Err(e)
            }
        }
    }

    /// The periodic work: settle a finished seal, commit, publish old dead
    /// letters, start the next seal.
    async fn step(&mut self) -> Result<(), LakeError> {
        self.settle_seals(false).await?;
        self.commit()?;
        if self
            .dead_opened_at
            .is_some_and(|at| at.elapsed() >= self.settings.policy.max_age)
        {
            self.publish_dead_letters().await?;
        }
        self.seal_if_due()
    }

    /// Seals everything (the final flush).
    async fn seal_all(&mut self) -> Result<(), LakeError> {
        self.settle_seals(true).await?;
        self.commit()?;
        self.retry_at = None;
        let keys: Vec<PartitionKey> = self.parts.keys().cloned().collect();
        for key in keys {
            let staged = self
                .parts
                .get(&key)
                .is_some_and(|p| p.open.is_some() || !p.closed.is_empty());
            if staged {
                while self.seals.len() >= self.settings.seal_threads {
                    self.settle_next_seal().await?;
                }
                self.start_seal(&key, SealReason::Flush)?;
            }
        }
        self.settle_seals(true).await?;
        let failed = self.parts.values().filter(|p| !p.closed.is_empty()).count();
        self.publish_dead_letters().await?;
        if failed > 0 {
            return Err(LakeError::Unsealed {
                partitions: failed,
                reason: self.seal_error.clone().unwrap_or_default(),
                scratch: self.settings.staging_durability() == StagingDurability::Scratch,
            });
        }
        // Acks of partitions without rows left (a batch of dead letters only).
        for part in self.parts.values_mut() {
            std::mem::take(&mut part.acks).deliver();
        }
        Ok(())
    }

    /// Fails every held batch with the error's reason (so sources learn why),
    /// and returns the error for the supervisor.
    fn fail_pending(&mut self, error: LakeError) -> ActorError {
        let reason = error.to_string();
        std::mem::take(&mut self.pending_ack).fail(reason.clone());
        std::mem::take(&mut self.dead_acks).fail(reason.clone());
        for part in self.parts.values_mut() {
            std::mem::take(&mut part.acks).fail(reason.clone());
        }
        self.pending_counts = EventCounts::default();
        error.into()
    }
}

/// `n` (at least one) shares of `ack`, the last being the original.
fn ack_shares(ack: Ack, n: usize) -> Vec<Ack> {
    let mut out: Vec<Ack> = (1..n.max(1)).map(|_| ack.share()).collect();
    out.push(ack);
    out
}

/// The latest event time of a record batch.
fn max_ts(records: &RecordBatch) -> Option<i64> {
    records
        .column_by_name("ts")?
        .as_any()
        .downcast_ref::<arrow_array::TimestampMillisecondArray>()?
        .values()
        .iter()
        .copied()
        .max()
}

impl Drop for LakeWriter {
    /// A writer dropped (a failure, a restart) cuts what it appended since
    /// the last commit off its segments (those batches fail and are
    /// redelivered), removes the open dead-letter files of an S3 lake, and
    /// leaves its running seals to the next incarnation.
    fn drop(&mut self) {
        for part in self.parts.values_mut() {
            if let Some(segment) = part.open.take() {
                segment.abort();
            }
        }
        for (_, f) in self.dead.drain() {
            // A local lake's dead letters were acknowledged at the commits
            // that fsynced them: the next start publishes them.
            if self.settings.acks_wait_for_seal() {
                f.abort();
            }
        }
        if !self.seals.is_empty() {
            let tasks: Vec<SealTask> = self.seals.drain(..).map(|running| running.task).collect();
            self.settings
                .orphaned_seals
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(self.worker)
                .or_default()
                .extend(tasks);
        }
    }
}

impl Actor for LakeWriter {
    type In = LogBatch;
    type Out = NoOutput;

    async fn start(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.recover().await.map_err(ActorError::from)
    }

    async fn handle(&mut self, batch: Batch<LogBatch>, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        let (payload, ack, in_flight) = batch.into_parts();
        tap::point(TapStage::Lake).offer(|| TapItem::Events(payload.clone()));
        self.pending_counts.add(&payload.counts);
        let added = self.add(&payload, ack);
        drop(payload);
        // The rows are buffered or staged; the source's bytes are not held.
        drop(in_flight);
        added.map_err(|e| self.fail_pending(e))?;
        let step = async {
            self.settle_seals(false).await?;
            self.seal_if_due()
        };
        step.await.map_err(|e| self.fail_pending(e))
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.settings.commit_interval)
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.step().await.map_err(|e| self.fail_pending(e))
    }

    async fn flush(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.seal_all().await.map_err(|e| self.fail_pending(e))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::component::units::Seconds;
    use crate::log_batch::LakePart;
    use crate::sinks::lake::LakeConfig;
    use crate::sinks::lake::schema::test_rows;

    const HOUR_MS: i64 = 1_763_892_000_000;

    /// A writer of `seal_threads` whose partitions of `services` are staged
    /// and due for sealing by age.
    async fn staged_writer(dir: &Path, seal_threads: usize, services: &[&str]) -> LakeWriter {
        let config = LakeConfig {
            seal_threads: Some(seal_threads),
            max_age: Seconds::units(1),
            ..LakeConfig::default()
        };
        let settings = LakeSettings::new(&config, dir, &dir.join("deadletter")).unwrap();
        let mut writer = LakeWriter::new(settings, 0);
        let parts = services
            .iter()
            .map(|service| LakePart {
                key: PartitionKey::of(HOUR_MS, service),
                records: test_rows((0..100).map(|i| format!("{service}:{i}")), HOUR_MS, service),
            })
            .collect();
        let batch = LogBatch {
            parts,
            dead_letters: Arc::default(),
            counts: Arc::default(),
        };
        writer.add(&batch, Ack::none()).unwrap();
        writer.commit().unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        writer
    }

    fn sealing(writer: &LakeWriter) -> Vec<String> {
        let mut keys: Vec<String> = writer.seals.iter().map(|s| s.key.to_string()).collect();
        keys.sort();
        keys
    }

    fn sealed_files(dir: &Path) -> usize {
        spate_test_support::lake::parquet_files(&dir.join("logs")).len()
    }

    #[tokio::test(start_paused = true)]
    async fn seals_of_distinct_partitions_run_side_by_side_up_to_the_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = staged_writer(dir.path(), 2, &["a", "b", "c"]).await;
        writer.seal_if_due().unwrap();
        let first = sealing(&writer);
        assert_eq!(first.len(), 2, "{first:?}");
        assert_ne!(first[0], first[1]);
        // Full: asking again starts nothing, and never a second seal of a
        // partition already sealing.
        writer.seal_if_due().unwrap();
        assert_eq!(sealing(&writer), first);
        writer.settle_seals(true).await.unwrap();
        assert!(writer.seals.is_empty());
        assert_eq!(sealed_files(dir.path()), 2);
        writer.seal_if_due().unwrap();
        assert_eq!(sealing(&writer).len(), 1);
        writer.settle_seals(true).await.unwrap();
        assert_eq!(sealed_files(dir.path()), 3);
        assert!(writer.parts.is_empty(), "every partition sealed and let go");
    }

    fn parquet_rows(dir: &Path) -> usize {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        spate_test_support::lake::parquet_files(&dir.join("logs"))
            .iter()
            .map(|path| {
                let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap());
                reader.unwrap().metadata().file_metadata().num_rows() as usize
            })
            .sum()
    }

    fn staged_files(dir: &Path) -> usize {
        spate_test_support::lake::walk(&dir.join(crate::sinks::lake::staging::STAGING_DIR)).len()
    }

    #[tokio::test(start_paused = true)]
    async fn scratch_staging_survives_a_restart_in_process_and_not_a_new_process() {
        let dir = tempfile::tempdir().unwrap();
        let config = LakeConfig::default();
        let scratch = || {
            LakeSettings::new(&config, dir.path(), &dir.path().join("deadletter"))
                .unwrap()
                .with_scratch_staging()
        };
        let batch = |service: &str, n: usize| LogBatch {
            parts: vec![LakePart {
                key: PartitionKey::of(HOUR_MS, service),
                records: test_rows((0..n).map(|i| format!("{service}:{i}")), HOUR_MS, service),
            }],
            dead_letters: Arc::default(),
            counts: Arc::default(),
        };
        // A batch job's writer commits (its acks go) without fsyncing, and
        // then fails: a writer of the same settings takes the rows over.
        let settings = scratch();
        let mut first = LakeWriter::new(settings.clone(), 0);
        first.recover().await.unwrap();
        first.add(&batch("a", 30), Ack::none()).unwrap();
        first.commit().unwrap();
        first.add(&batch("a", 5), Ack::none()).unwrap();
        drop(first);
        let mut again = LakeWriter::new(settings, 0);
        again.recover().await.unwrap();
        again.seal_all().await.unwrap();
        assert_eq!(parquet_rows(dir.path()), 30, "committed rows only, once");
        assert_eq!(staged_files(dir.path()), 0);

        // A new process finds the scratch of a job that did not end: gone.
        let mut crashed = LakeWriter::new(scratch(), 0);
        crashed.recover().await.unwrap();
        crashed.add(&batch("b", 10), Ack::none()).unwrap();
        crashed.commit().unwrap();
        // A crash: no drop, nothing cut or cleaned up.
        std::mem::forget(crashed);
        assert_eq!(staged_files(dir.path()), 1);
        let mut next = LakeWriter::new(scratch(), 0);
        next.recover().await.unwrap();
        assert_eq!(staged_files(dir.path()), 0);
        next.seal_all().await.unwrap();
        assert_eq!(parquet_rows(dir.path()), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn one_seal_thread_seals_one_partition_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = staged_writer(dir.path(), 1, &["a", "b"]).await;
        writer.seal_if_due().unwrap();
        assert_eq!(sealing(&writer).len(), 1);
        writer.seal_if_due().unwrap();
        assert_eq!(sealing(&writer).len(), 1);
        writer.settle_seals(true).await.unwrap();
        assert_eq!(sealed_files(dir.path()), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_final_flush_seals_every_partition_through_the_threads() {
        let dir = tempfile::tempdir().unwrap();
        let services = ["a", "b", "c", "d", "e"];
        let mut writer = staged_writer(dir.path(), 2, &services).await;
        writer.seal_all().await.unwrap();
        assert!(writer.seals.is_empty());
        assert_eq!(sealed_files(dir.path()), services.len());
        let totals = writer.settings.totals.lock().unwrap().clone();
        assert_eq!(totals.files_written, 5);
    }
}
