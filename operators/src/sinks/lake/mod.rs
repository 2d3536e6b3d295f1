//! The lake writer: Parquet files in Hive partitions, committed atomically.
//!
//! Layout: `<lake>/logs/dt=YYYY-MM-DD/hour=HH/service=NAME/part-*.parquet`, plus
//! dead letters as NDJSON under `<data-dir>/deadletter/dt=YYYY-MM-DD/` (or, with
//! [`LakeTarget::S3`], under `s3://<bucket>/<prefix>deadletter/dt=YYYY-MM-DD/`).
//!
//! Each writer keeps one open file per partition it has rows for. Files are
//! written under a hidden temporary name and renamed into place when committed,
//! so readers never see a partial file. All open files commit together, when
//! [`should_roll`](rolling::should_roll) says so (size, total open bytes, age), on
//! a flush request, and at shutdown; only then are the acks of every batch they
//! hold delivered.
//!
//! With [`LakeTarget::S3`] the directory is a staging area: each committed file
//! is uploaded to S3 (see [`crate::sinks::s3_lake`]) and removed locally before
//! the acks are delivered. Dead-letter files follow the same rule: a batch that
//! carried a dead letter is acknowledged only once its dead-letter object is in
//! S3, and a failed upload fails the batch.
//!
//! # Backpressure
//!
//! Encoding happens in `handle`, so a writer that cannot keep up stops taking
//! batches and the stages before it wait. Memory is bounded: a partition's row
//! group is flushed to its file once it buffers `max_row_group_size`, and row
//! groups are flushed largest-first when all files together buffer more than
//! `max_buffered_size`.
//!
//! # Shutdown
//!
//! The final flush commits every open file. If a commit fails, the files not yet
//! committed are removed, the held batches fail (their sources redeliver them)
//! and the actor restarts.

pub mod dead_letters;
pub mod part_file;
pub mod partition;
pub mod rolling;
pub mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use spate_engine::{Ack, Actor, ActorError, ActorResult, Batch, Ctx, ErrorClass, NoOutput};
use tokio::time::Instant;

use self::dead_letters::DeadLetterFile;
use self::part_file::{PartFile, writer_properties};
use self::partition::PartitionKey;
use self::rolling::{OpenFilesStats, RollPolicy, should_roll};
use crate::component::ConfigError;
use crate::event::wall_clock_ms;
use crate::log_batch::{EventCounts, LogBatch};
use crate::sinks::s3_lake::{S3Target, S3UploadError};

const MIB: u64 = 1024 * 1024;

/// Failures of the lake writer.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// A file system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Parquet encoding failed.
    #[error("parquet: {0}")]
    Parquet(String),
    /// The configuration is unusable.
    #[error("lake config: {0}")]
    Config(String),
    /// Uploading a committed file to S3 failed.
    #[error("lake upload: {0}")]
    Upload(#[from] S3UploadError),
}

impl LakeError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        LakeError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whose fault it is: the disk is external, encoding errors are bugs, a bad
    /// config is bad input that retrying will not fix.
    pub fn class(&self) -> ErrorClass {
        match self {
            LakeError::Io { .. } => ErrorClass::External,
            LakeError::Parquet(_) => ErrorClass::Internal,
            LakeError::Config(_) => ErrorClass::BadInput,
            LakeError::Upload(e) => e.class(),
        }
    }
}

impl From<LakeError> for ActorError {
    fn from(e: LakeError) -> Self {
        ActorError::classified(e.class(), e.to_string())
    }
}

/// `[lake]`: where and how the Parquet lake is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// Directory of the lake. Default: `<data-dir>/lake`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Commit when any open file reaches this size (MiB). Athena prefers
    /// files of 128 MiB and more.
    #[serde(
        rename = "max_file_size",
        alias = "max_file_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_file_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_file_mib: u64,
    /// Commit when the oldest open file is this old (seconds): the longest a
    /// row waits before it is visible and its source is acknowledged.
    #[serde(
        rename = "max_file_age",
        alias = "max_file_age_secs",
        with = "crate::component::units::with::secs",
        default = "default_max_file_age_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub max_file_age_secs: u64,
    /// Commit when all open files together reach this size (MiB). Open files
    /// hold memory (about 4 MiB each plus what grows with their size), so this
    /// bounds memory as much as latency; raise it for bigger files.
    #[serde(
        rename = "max_open_size",
        alias = "max_open_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_open_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_open_mib: u64,
    /// Flush a partition's row group to its file once it buffers this much (MiB).
    #[serde(
        rename = "max_row_group_size",
        alias = "max_row_group_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_row_group_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_row_group_mib: u64,
    /// Flush row groups, largest first, when all files buffer more than this (MiB).
    #[serde(
        rename = "max_buffered_size",
        alias = "max_buffered_mib",
        with = "crate::component::units::with::mib",
        default = "default_max_buffered_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub max_buffered_mib: u64,
    /// Rows per Parquet row group at most.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// zstd compression level (1 = fastest, 22 = smallest).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Lake writers encoding in parallel; each owns a share of the partitions.
    #[serde(default = "default_writers")]
    pub writers: usize,
    /// Upload committed files to S3 (`[lake.s3] bucket = "..."`); `path` is then
    /// the local staging directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<crate::sinks::s3_lake::S3LakeConfig>,
}

fn default_max_file_mib() -> u64 {
    128
}
fn default_max_file_age_secs() -> u64 {
    300
}
fn default_max_open_mib() -> u64 {
    128
}
fn default_max_row_group_mib() -> u64 {
    16
}
fn default_max_buffered_mib() -> u64 {
    16
}
fn default_row_group_rows() -> usize {
    256 * 1024
}
fn default_zstd_level() -> i32 {
    1
}
fn default_writers() -> usize {
    1
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            path: None,
            max_file_mib: default_max_file_mib(),
            max_file_age_secs: default_max_file_age_secs(),
            max_open_mib: default_max_open_mib(),
            max_row_group_mib: default_max_row_group_mib(),
            max_buffered_mib: default_max_buffered_mib(),
            row_group_rows: default_row_group_rows(),
            zstd_level: default_zstd_level(),
            writers: default_writers(),
            s3: None,
        }
    }
}

impl LakeConfig {
    /// Checks the settings (and `[lake.s3]`'s) without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=22).contains(&self.zstd_level) {
            return Err(ConfigError::new(
                "zstd_level",
                format!("must be between 1 and 22, got {}", self.zstd_level),
            ));
        }
        for (key, value) in [
            ("max_file_size", self.max_file_mib),
            ("max_open_size", self.max_open_mib),
            ("max_file_age", self.max_file_age_secs),
            ("max_row_group_size", self.max_row_group_mib),
            ("max_buffered_size", self.max_buffered_mib),
            ("writers", self.writers as u64),
            ("row_group_rows", self.row_group_rows as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if let Some(s3) = &self.s3 {
            s3.validate().map_err(|e| e.within("s3"))?;
        }
        Ok(())
    }

    /// The roll policy these settings describe.
    pub fn roll_policy(&self) -> RollPolicy {
        RollPolicy {
            max_file_bytes: self.max_file_mib * MIB,
            max_age: Duration::from_secs(self.max_file_age_secs),
            max_open_bytes: self.max_open_mib * MIB,
        }
    }
}

/// What the lake writers have committed, shared with whoever reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LakeTotals {
    /// Counts of the committed events and dead letters.
    pub counts: EventCounts,
    /// Parquet files committed.
    pub files_written: u64,
    /// Bytes of those files.
    pub bytes_written: u64,
    /// Dead-letter files committed.
    pub dead_letter_files: u64,
}

/// Where committed lake files end up.
#[derive(Debug, Clone, Default)]
pub enum LakeTarget {
    /// In the lake directory.
    #[default]
    Local,
    /// Uploaded to S3, under the same relative path, then removed locally
    /// (dead letters under `deadletter/`).
    S3(Arc<S3Target>),
}

/// Everything a lake writer needs, shared by all the writers.
#[derive(Clone)]
pub struct LakeSettings {
    target: LakeTarget,
    lake_dir: PathBuf,
    table_dir: PathBuf,
    dead_letter_dir: PathBuf,
    policy: RollPolicy,
    props: Arc<WriterProperties>,
    max_row_group_bytes: usize,
    max_buffered_bytes: usize,
    totals: Arc<Mutex<LakeTotals>>,
}

impl LakeSettings {
    /// Settings for a lake at `lake_dir` (table `logs` inside it) with dead
    /// letters under `dead_letter_dir`.
    pub fn new(
        config: &LakeConfig,
        lake_dir: &Path,
        dead_letter_dir: &Path,
    ) -> Result<Self, LakeError> {
        Ok(LakeSettings {
            target: LakeTarget::Local,
            lake_dir: lake_dir.to_path_buf(),
            table_dir: lake_dir.join("logs"),
            dead_letter_dir: dead_letter_dir.to_path_buf(),
            policy: config.roll_policy(),
            props: writer_properties(config.zstd_level, config.row_group_rows)?,
            max_row_group_bytes: (config.max_row_group_mib * MIB) as usize,
            max_buffered_bytes: (config.max_buffered_mib * MIB) as usize,
            totals: Arc::default(),
        })
    }

    /// Sends committed files to `target` (the lake directory then only stages
    /// them).
    pub fn with_target(mut self, target: LakeTarget) -> Self {
        self.target = target;
        self
    }

    /// The running totals of every writer built from these settings.
    pub fn totals(&self) -> Arc<Mutex<LakeTotals>> {
        self.totals.clone()
    }

    /// Directory of the `logs` table.
    pub fn table_dir(&self) -> &Path {
        &self.table_dir
    }

    /// Removes the temporary files an earlier run left in the table and
    /// dead-letter directories (a crash, a full disk); returns how many.
    /// Call before the writers start.
    pub fn remove_temporaries(&self) -> Result<u64, LakeError> {
        Ok(part_file::remove_temporaries(&self.table_dir)?
            + part_file::remove_temporaries(&self.dead_letter_dir)?)
    }
}

/// One lake writer: owns the partitions the decode stage routes to it.
pub struct LakeWriter {
    settings: LakeSettings,
    worker: usize,
    seq: u64,
    open: HashMap<PartitionKey, PartFile>,
    dead: HashMap<String, DeadLetterFile>,
    pending_ack: Ack,
    pending_counts: EventCounts,
}

impl LakeWriter {
    /// Writer number `worker` of a pool.
    pub fn new(settings: LakeSettings, worker: usize) -> Self {
        LakeWriter {
            settings,
            worker,
            seq: 0,
            open: HashMap::new(),
            dead: HashMap::new(),
            pending_ack: Ack::none(),
            pending_counts: EventCounts::default(),
        }
    }

    /// `part-<ms>-<process tag>-<worker>-<seq>.<ext>`: unique across writers
    /// of one process (worker, seq) and across processes writing one bucket
    /// (the tag: the pid, which is 1 in every container, plus random bits).
    fn file_name(&mut self, ext: &str) -> String {
        self.seq += 1;
        let millis = wall_clock_ms();
        format!(
            "part-{millis}-{}-{}-{:06}.{ext}",
            process_tag(),
            self.worker,
            self.seq
        )
    }

    fn stats(&self) -> OpenFilesStats {
        let mut stats = OpenFilesStats {
            files: self.open.len(),
            ..OpenFilesStats::default()
        };
        for f in self.open.values() {
            let size = f.size();
            stats.largest_file_bytes = stats.largest_file_bytes.max(size);
            stats.total_bytes += size;
            let at = f.opened_at();
            stats.oldest_opened_at = Some(stats.oldest_opened_at.map_or(at, |o| o.min(at)));
        }
        stats
    }

    fn write(&mut self, batch: &LogBatch) -> Result<(), LakeError> {
        for part in &batch.parts {
            if !self.open.contains_key(&part.key) {
                let dir = self.settings.table_dir.join(part.key.path());
                let name = self.file_name("parquet");
                let file = PartFile::create(&dir, &name, self.settings.props.clone())?;
                self.open.insert(part.key.clone(), file);
            }
            let file = self.open.get_mut(&part.key).expect("inserted above");
            file.write(&part.records)?;
            file.limit_buffered(self.settings.max_row_group_bytes)?;
        }
        if !batch.dead_letters.is_empty() {
            // Dead letters are filed by the day they were rejected.
            let date = PartitionKey::of(wall_clock_ms(), "").date();
            if !self.dead.contains_key(&date) {
                let dir = self.settings.dead_letter_dir.join(format!("dt={date}"));
                let name = self.file_name("ndjson");
                self.dead
                    .insert(date.clone(), DeadLetterFile::create(&dir, &name)?);
            }
            let file = self.dead.get_mut(&date).expect("inserted above");
            file.append(&batch.dead_letters)?;
        }
        self.bound_memory()
    }

    /// Flushes row groups, largest first, while buffers exceed the budget.
    fn bound_memory(&mut self) -> Result<(), LakeError> {
        let mut buffered: usize = self.open.values().map(PartFile::buffered).sum();
        if buffered <= self.settings.max_buffered_bytes {
            return Ok(());
        }
        let mut by_size: Vec<(usize, PartitionKey)> = self
            .open
            .iter()
            .map(|(k, f)| (f.buffered(), k.clone()))
            .collect();
        by_size.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
        for (size, key) in by_size {
            if buffered <= self.settings.max_buffered_bytes / 2 {
                break;
            }
            if let Some(f) = self.open.get_mut(&key) {
                f.limit_buffered(0)?;
            }
            buffered = buffered.saturating_sub(size);
        }
        Ok(())
    }

    /// Commits every open file, then delivers the acks they were holding.
    async fn commit(&mut self) -> Result<(), LakeError> {
        let started = Instant::now();
        let mut files: Vec<(PartitionKey, PartFile)> = self.open.drain().collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut written = (0u64, 0u64);
        let mut committed = Vec::with_capacity(files.len());
        let mut iter = files.into_iter();
        while let Some((_, file)) = iter.next() {
            match file.commit() {
                Ok(c) => committed.push(c),
                Err(e) => {
                    iter.for_each(|(_, f)| f.abort());
                    self.abort_dead_letters();
                    remove_staged(&self.settings.target, &committed);
                    return Err(e);
                }
            }
        }
        if let LakeTarget::S3(s3) = &self.settings.target {
            for (i, c) in committed.iter().enumerate() {
                let relative = c.path.strip_prefix(&self.settings.lake_dir).map_err(|_| {
                    LakeError::Config(format!("{} is outside the lake", c.path.display()))
                });
                let uploaded = match relative {
                    Ok(relative) => {
                        let key = s3.key_for(&relative.to_string_lossy().replace('\\', "/"));
                        s3.upload_and_remove(&c.path, &key)
                            .await
                            .map_err(LakeError::from)
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = uploaded {
                    self.abort_dead_letters();
                    remove_staged(&self.settings.target, &committed[i..]);
                    return Err(e);
                }
            }
        }
        for c in &committed {
            written.0 += 1;
            written.1 += c.bytes;
            metrics::counter!("spate_lake_rows_written_total").increment(c.rows);
        }
        let dead: Vec<DeadLetterFile> = self.dead.drain().map(|(_, f)| f).collect();
        let dead_files =
            dead_letters::commit_all(dead, &self.settings.target, &self.settings.dead_letter_dir)
                .await?;
        let counts = std::mem::take(&mut self.pending_counts);
        metrics::counter!("spate_lake_files_written_total").increment(written.0);
        metrics::counter!("spate_lake_bytes_written_total").increment(written.1);
        metrics::counter!("spate_dead_letters_total").increment(counts.dead_letters);
        {
            let mut totals = self
                .settings
                .totals
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            totals.counts.add(&counts);
            totals.files_written += written.0;
            totals.bytes_written += written.1;
            totals.dead_letter_files += dead_files;
        }
        std::mem::take(&mut self.pending_ack).deliver();
        metrics::histogram!("spate_lake_commit_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn commit_if_due(&mut self) -> ActorResult {
        if should_roll(&self.stats(), Instant::now(), &self.settings.policy).is_some() {
            self.commit().await.map_err(|e| self.fail_pending(e))?;
        }
        Ok(())
    }

    /// Fails every held batch with the error's reason (so sources learn why),
    /// drops the open files, and returns the error for the supervisor.
    fn fail_pending(&mut self, error: LakeError) -> ActorError {
        let reason = error.to_string();
        std::mem::take(&mut self.pending_ack).fail(reason);
        self.pending_counts = EventCounts::default();
        for (_, f) in self.open.drain() {
            f.abort();
        }
        self.abort_dead_letters();
        error.into()
    }

    fn abort_dead_letters(&mut self) {
        for (_, f) in self.dead.drain() {
            f.abort();
        }
    }
}

/// Removes files committed to a staging directory whose upload will not happen
/// (their batches fail and are redelivered).
fn remove_staged(target: &LakeTarget, files: &[part_file::CommittedFile]) {
    if matches!(target, LakeTarget::S3(_)) {
        for f in files {
            let _ = std::fs::remove_file(&f.path);
        }
    }
}

impl Drop for LakeWriter {
    /// A writer dropped with open files (a failure, a restart) removes their
    /// temporaries; the held acks fail as they drop.
    fn drop(&mut self) {
        for (_, f) in self.open.drain() {
            f.abort();
        }
        self.abort_dead_letters();
    }
}

impl Actor for LakeWriter {
    type In = LogBatch;
    type Out = NoOutput;

    async fn handle(&mut self, batch: Batch<LogBatch>, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        let (payload, ack, in_flight) = batch.into_parts();
        self.pending_ack.merge(ack);
        self.pending_counts.add(&payload.counts);
        let written = self.write(&payload);
        // The rows are encoded; the source's bytes are no longer held here.
        drop(in_flight);
        written.map_err(|e| self.fail_pending(e))?;
        self.commit_if_due().await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1).min(self.settings.policy.max_age))
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.commit_if_due().await
    }

    async fn flush(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        if !self.open.is_empty() || !self.dead.is_empty() || !self.pending_ack.is_empty() {
            self.commit().await.map_err(|e| self.fail_pending(e))?;
        }
        Ok(())
    }
}

/// This process's part of file names: its pid and 32 random bits, fixed for
/// the life of the process.
fn process_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("{}x{:08x}", std::process::id(), random as u32)
    })
}
