//! The lake: rows staged on local disk within a second, sealed into large
//! Parquet files in Hive partitions.
//!
//! Layout: `<lake>/logs/dt=YYYY-MM-DD/hour=HH/service=NAME/part-*.parquet`
//! (what DuckDB, pyarrow, Athena and `spate query` read), the staging area
//! `<lake>/staging/dt=…/hour=…/service=…/seg-*.arrows` (see [`staging`]), and
//! dead letters as NDJSON under `<data-dir>/deadletter/dt=YYYY-MM-DD/` (or,
//! with [`LakeTarget::S3`], under `s3://<bucket>/<prefix>deadletter/dt=…/`).
//!
//! # Stage, then seal
//!
//! A writer ([`LakeWriter`]) buffers the rows of each partition it owns for
//! at most `commit_interval` (1 s), then appends them to the partition's
//! staging segment (Arrow IPC) and, when the commit acknowledges them (a
//! local lake of `spate run`), fsyncs: the **staging commit**
//! ([`StagingDurability`]). From then
//! on `spate query` and `POST /v1/query` see the rows (they read staged
//! segments beside sealed files). A partition is **sealed** when the file it
//! would make reaches `max_file_size`, when its hour is over (`hour_grace`), when
//! its oldest staged row is `max_file_age` old, or when staging outgrows
//! `max_staged_size` ([`policy`]): its segments are read back in order and
//! written as one Parquet file with row groups of `row_group_rows`, the file
//! is published, and the segments are deleted ([`seal`]). External readers
//! only ever see sealed files, each row in exactly one of them.
//!
//! # Effectively once
//!
//! Redeliveries and replays carry the `event_id` of the first delivery, and
//! so does a push retried with its `Idempotency-Key` (its ids derive from
//! the key). A seal drops the staged rows whose `event_id` is already in the
//! partition, earlier in the same file or in a file sealed there before
//! ([`dedup`]), and counts them by source: exactly one row per `event_id`
//! per partition for everything sealed within `dedup_horizon` (event time)
//! of the partition's hour, by the writer that holds the partition's index.
//! With `[lake.s3]` a lost index is rebuilt from the bucket, and the
//! writer's own uploads whose answer was lost are added to it before the
//! next seal. Not covered: a redelivery to another task (each task writes
//! its own files and keeps its own index, built from the bucket only when it
//! was missing, so with several tasks an SQS message redelivered to another
//! task after its first copy was uploaded may land twice, in two files of
//! the partition), staged
//! rows not yet sealed (which `spate query` reads), and a client's retry
//! without a key (new ids).
//!
//! # Acknowledgements
//!
//! - **Local lake**: a batch is acknowledged at the staging commit that
//!   makes its rows durable (fsynced segment and directory). A crash after
//!   that loses nothing: the next start adopts the segments and seals them
//!   ([`recovery`]).
//! - **S3 lake** (`[lake.s3]`): the local disk of a container is not durable,
//!   so a batch is acknowledged only once every partition it has rows in was
//!   sealed and uploaded (and its dead letters uploaded). Staging there
//!   serves freshness and memory; `lake.s3.max_file_age` bounds how long a source
//!   waits. At start, staged leftovers are deleted: their sources redeliver.
//!
//! # Backpressure
//!
//! Staging and sealing happen in the writer: seals run as tasks beside it
//! (at most `seal_threads` at a time per writer, of distinct partitions), and while its staging appends or commits wait
//! on the disk the writer takes no batches, so the stages before it wait.
//! Memory is bounded by configuration: rows buffered before staging are at
//! most `max_buffered_size` per writer (past it every buffered partition is
//! staged at once), and each running seal holds one row group at a time. The number of
//! partitions costs an open file each, not memory.
//!
//! # Shutdown
//!
//! The final flush stages and commits every buffer, seals every staged
//! partition, publishes the dead letters, and delivers the acknowledgements.
//! If the drain deadline cuts it short, a local lake keeps its staged rows
//! for the next start; an S3 lake's sources redeliver what was not uploaded.

pub mod compact;
pub mod dead_letters;
pub mod dedup;
pub mod dedup_s3;
mod error;
pub mod part_file;
pub mod partition;
pub mod policy;
pub mod recovery;
pub mod schema;
pub mod seal;
pub mod staging;
pub mod swaps;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

pub use self::error::LakeError;
use self::part_file::writer_properties;
use self::policy::SealPolicy;
use self::seal::{Publish, Sealed};
use self::staging::{Coverage, STAGING_DIR, SeqClock, stager_tag};
pub use self::staging::{StagingCompression, StagingDurability};
pub use self::writer::LakeWriter;
use crate::component::ConfigError;
use crate::component::units::{MiB, Millis, Seconds};
use crate::log_batch::EventCounts;
use crate::sinks::s3_lake::S3Target;

/// Seal threads a writer may have (`seal_threads`).
const MAX_SEAL_THREADS: usize = 64;
/// Seals a writer of a service runs at once unless configured.
const SERVICE_SEAL_THREADS: usize = 1;

/// A partition settles this long after its last staged rows before a closed
/// hour is sealed (late rows of a replay still arriving get into the file).
const CLOSED_HOUR_SETTLE: Duration = Duration::from_secs(2);

/// `[lake]`: where and how the Parquet lake is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// Directory of the lake (`logs/` and its `staging/` area). Default:
    /// `<data-dir>/lake`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Seal a partition once its Parquet file would be this large (Athena
    /// reads files of 128 MiB to 1 GiB best). Bare numbers are MiB.
    #[serde(
        rename = "max_file_size",
        alias = "max_file_mib",
        alias = "file_size",
        default = "default_file_size"
    )]
    pub file_size: MiB,
    /// Seal a partition at the latest this long after its oldest staged row:
    /// how long external readers (DuckDB, Athena) may wait for a row.
    /// `spate query` sees staged rows at once. Bare numbers are seconds.
    #[serde(
        rename = "max_file_age",
        alias = "max_file_age_secs",
        alias = "max_age",
        default = "default_max_age"
    )]
    pub max_age: Seconds,
    /// Seal a partition once its hour is over: the writer has seen events
    /// this long (event time) past the hour's end. Bare numbers are seconds.
    #[serde(default = "default_hour_grace", alias = "hour_grace_secs")]
    pub hour_grace: Seconds,
    /// Write buffered rows to staging this often (fsynced, in a local lake
    /// of `spate run`): the delay before `spate query` sees a row, and
    /// (local lake) before its source is acknowledged. Bare numbers are
    /// milliseconds.
    #[serde(default = "default_commit_interval", alias = "commit_interval_ms")]
    pub commit_interval: Millis,
    /// Rows buffered in memory per writer before staging; past it every
    /// buffered partition is staged early. Bare numbers are MiB.
    #[serde(
        rename = "max_buffered_size",
        alias = "max_buffered_mib",
        alias = "max_buffered",
        default = "default_max_buffered"
    )]
    pub max_buffered: MiB,
    /// Staged bytes on disk per writer above which its largest partition is
    /// sealed early. Bare numbers are MiB.
    #[serde(
        rename = "max_staged_size",
        alias = "max_staged_mib",
        alias = "max_staged",
        default = "default_max_staged"
    )]
    pub max_staged: MiB,
    /// Retired settings of the lake before stage-then-seal
    /// (`max_open_size`/`max_open_mib`, `max_row_group_size`/`max_row_group_mib`):
    /// accepted so older files still load, and ignored.
    #[serde(
        default,
        rename = "max_open_size",
        alias = "max_open_mib",
        skip_serializing
    )]
    #[schemars(skip)]
    pub retired_max_open: Option<serde::de::IgnoredAny>,
    /// See `retired_max_open`.
    #[serde(
        default,
        rename = "max_row_group_size",
        alias = "max_row_group_mib",
        skip_serializing
    )]
    #[schemars(skip)]
    pub retired_max_row_group: Option<serde::de::IgnoredAny>,
    /// Rows per Parquet row group (a file smaller than this is one row group).
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// zstd compression level (1 = fastest, 22 = smallest).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Lake writers staging and sealing in parallel; each owns a share of the
    /// partitions.
    #[serde(default = "default_writers")]
    pub writers: usize,
    /// Seals a writer runs at once, each on a thread of its own holding one
    /// row group. Default: 1 for `spate run`, where seals stay in the
    /// background of ingestion (two at once took a W4 spike's peak RSS from
    /// 222–229 MiB to 257 MiB); 2 for `spate ingest` (1 on
    /// one core), whose final flush seals every partition: two seals finish
    /// it in about half the time, for more memory (W2 20 M: 452 MiB peak
    /// RSS, 345 MiB with 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_threads: Option<usize>,
    /// How rows are compressed in staging: `lz4` or `none`. Default: `lz4`
    /// for `spate run`, whose staging holds up to `max_file_age` of rows;
    /// `none` for `spate ingest`, whose staging is sealed within the job
    /// (W1 20 M: about 14 % less CPU and 8 % more events/s, for a staging
    /// area of 2.5 GiB at its peak instead of 1.1). Segments staged either
    /// way read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_compression: Option<StagingCompression>,
    /// Drop a row when it is sealed if its `event_id` is already in its
    /// partition (a redelivery, a replay, or a push retried with its
    /// `Idempotency-Key`): exactly one row per event id
    /// per partition within `dedup_horizon`. The index of each partition
    /// (16 bytes per id) is kept under `<path>/dedup/`.
    #[serde(default = "default_dedup")]
    pub dedup: bool,
    /// How long after a partition's hour ends (in event time: the newest
    /// event a writer has seen) its dedup index is kept: rows sealed into it
    /// later are not checked, and the index is deleted. Bare numbers are
    /// seconds.
    #[serde(default = "default_dedup_horizon", alias = "dedup_horizon_secs")]
    pub dedup_horizon: Seconds,
    /// Upload sealed files to S3 (`[lake.s3] bucket = "..."`); `path` then
    /// only holds the staging area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<crate::sinks::s3_lake::S3LakeConfig>,
}

fn default_file_size() -> MiB {
    MiB::units(256)
}
fn default_max_age() -> Seconds {
    Seconds::units(3600)
}
fn default_hour_grace() -> Seconds {
    Seconds::units(300)
}
fn default_commit_interval() -> Millis {
    Millis::units(1000)
}
fn default_max_buffered() -> MiB {
    MiB::units(4)
}
fn default_max_staged() -> MiB {
    MiB::units(4096)
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
fn default_dedup() -> bool {
    true
}
fn default_dedup_horizon() -> Seconds {
    Seconds::units(24 * 3600)
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            path: None,
            file_size: default_file_size(),
            max_age: default_max_age(),
            hour_grace: default_hour_grace(),
            commit_interval: default_commit_interval(),
            max_buffered: default_max_buffered(),
            max_staged: default_max_staged(),
            row_group_rows: default_row_group_rows(),
            zstd_level: default_zstd_level(),
            writers: default_writers(),
            seal_threads: None,
            staging_compression: None,
            dedup: default_dedup(),
            dedup_horizon: default_dedup_horizon(),
            retired_max_open: None,
            retired_max_row_group: None,
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
        for (key, value, least) in [
            ("max_file_size", self.file_size.bytes(), 1 << 20),
            ("max_buffered_size", self.max_buffered.bytes(), 1 << 20),
            ("max_staged_size", self.max_staged.bytes(), 1 << 20),
        ] {
            if value < least {
                return Err(ConfigError::new(key, "must be at least 1MiB"));
            }
        }
        if self.max_age.is_zero() {
            return Err(ConfigError::new("max_file_age", "must be more than 0s"));
        }
        let interval = self.commit_interval.get();
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&interval) {
            return Err(ConfigError::new(
                "commit_interval",
                format!("must be between 10ms and 60s, got {}", self.commit_interval),
            ));
        }
        if self.writers == 0 {
            return Err(ConfigError::new("writers", "must be at least 1"));
        }
        if let Some(n) = self.seal_threads
            && !(1..=MAX_SEAL_THREADS).contains(&n)
        {
            return Err(ConfigError::new(
                "seal_threads",
                format!("must be between 1 and {MAX_SEAL_THREADS}, got {n}"),
            ));
        }
        if self.row_group_rows < 1024 {
            return Err(ConfigError::new("row_group_rows", "must be at least 1024"));
        }
        if let Some(s3) = &self.s3 {
            s3.validate().map_err(|e| e.within("s3"))?;
        }
        Ok(())
    }

    /// The seal policy these settings describe; with `[lake.s3]` the age is
    /// the shorter of `max_file_age` and `lake.s3.max_file_age` (acknowledgements wait
    /// for the seal there).
    pub fn seal_policy(&self) -> SealPolicy {
        let max_age = match &self.s3 {
            Some(s3) => self.max_age.get().min(s3.max_age.get()),
            None => self.max_age.get(),
        };
        SealPolicy {
            target_file_bytes: self.file_size.bytes(),
            max_age,
            hour_grace_ms: i64::try_from(self.hour_grace.as_millis()).unwrap_or(i64::MAX),
            settle: CLOSED_HOUR_SETTLE.min(max_age),
            max_staged_bytes: self.max_staged.bytes(),
        }
    }
}

/// What the lake writers have committed, shared with whoever reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LakeTotals {
    /// Counts of the committed events and dead letters.
    pub counts: EventCounts,
    /// Parquet files sealed.
    pub files_written: u64,
    /// Bytes of those files.
    pub bytes_written: u64,
    /// Row groups in those files.
    pub row_groups_written: u64,
    /// Dead-letter files committed.
    pub dead_letter_files: u64,
    /// Staged rows dropped at seal as duplicates of sealed event ids.
    pub duplicates_dropped: u64,
}

/// Where sealed lake files end up.
#[derive(Debug, Clone, Default)]
pub enum LakeTarget {
    /// In the lake directory.
    #[default]
    Local,
    /// Uploaded to S3, under the same relative path (dead letters under
    /// `deadletter/`), with the partitions registered in the target's Glue
    /// catalog if it has one.
    S3(Arc<S3Target>),
}

/// A seal task of a writer, kept where a restarted writer finds it.
pub(crate) type SealTask = tokio::task::JoinHandle<Result<Sealed, LakeError>>;

/// Everything a lake writer needs, shared by all the writers.
#[derive(Clone)]
pub struct LakeSettings {
    target: LakeTarget,
    lake_dir: PathBuf,
    table_dir: PathBuf,
    staging_dir: PathBuf,
    dead_letter_dir: PathBuf,
    policy: SealPolicy,
    commit_interval: Duration,
    max_buffered_bytes: usize,
    writers: usize,
    seal_threads: usize,
    staging_compression: StagingCompression,
    /// A batch job's: staging is scratch space ([`StagingDurability::Scratch`]).
    scratch_staging: bool,
    /// The dedup horizon in milliseconds; `None`: dedup is off.
    dedup_horizon_ms: Option<i64>,
    props: Arc<WriterProperties>,
    totals: Arc<Mutex<LakeTotals>>,
    seq: Arc<SeqClock>,
    /// Seal tasks still running when their writer was dropped, by worker.
    orphaned_seals: Arc<Mutex<HashMap<usize, Vec<SealTask>>>>,
    /// Workers whose first incarnation started (a later one is a restart
    /// within the process: it adopts the scratch segments it finds).
    started_workers: Arc<Mutex<HashSet<usize>>>,
}

impl LakeSettings {
    /// Settings for a lake at `lake_dir` (table `logs` and the staging area
    /// inside it) with dead letters under `dead_letter_dir`.
    pub fn new(
        config: &LakeConfig,
        lake_dir: &Path,
        dead_letter_dir: &Path,
    ) -> Result<Self, LakeError> {
        Ok(LakeSettings {
            target: LakeTarget::Local,
            lake_dir: lake_dir.to_path_buf(),
            table_dir: lake_dir.join("logs"),
            staging_dir: lake_dir.join(STAGING_DIR),
            dead_letter_dir: dead_letter_dir.to_path_buf(),
            policy: config.seal_policy(),
            commit_interval: config.commit_interval.get(),
            max_buffered_bytes: config.max_buffered.bytes_usize(),
            writers: config.writers.max(1),
            seal_threads: config.seal_threads.unwrap_or(SERVICE_SEAL_THREADS),
            staging_compression: config.staging_compression.unwrap_or_default(),
            scratch_staging: false,
            dedup_horizon_ms: config
                .dedup
                .then(|| i64::try_from(config.dedup_horizon.as_millis()).unwrap_or(i64::MAX)),
            props: writer_properties(config.zstd_level, config.row_group_rows)?,
            totals: Arc::default(),
            seq: Arc::default(),
            orphaned_seals: Arc::default(),
            started_workers: Arc::default(),
        })
    }

    /// Runs `n` seals at once per writer unless the configuration sets
    /// `seal_threads` (a batch job, whose final flush seals every partition
    /// and competes with nothing).
    pub fn with_default_seal_threads(mut self, config: &LakeConfig, n: usize) -> Self {
        self.seal_threads = config.seal_threads.unwrap_or(n).max(1);
        self
    }

    /// Stages rows compressed as `compression` unless the configuration
    /// sets `staging_compression` (a batch job, whose staging lives only
    /// until its final flush, stages them uncompressed).
    pub fn with_default_staging_compression(
        mut self,
        config: &LakeConfig,
        compression: StagingCompression,
    ) -> Self {
        self.staging_compression = config.staging_compression.unwrap_or(compression);
        self
    }

    /// Stages into scratch segments, never fsynced (a batch job, which ends
    /// only once every partition is sealed, and is run again if it does
    /// not): see [`StagingDurability::Scratch`].
    pub fn with_scratch_staging(mut self) -> Self {
        self.scratch_staging = true;
        self
    }

    /// When staged rows are fsynced: at each staging commit when they are
    /// acknowledged by it (a local lake), never when the acks wait for the
    /// upload (an S3 lake) or staging is a batch job's scratch space.
    ///
    /// ```
    /// use spate_operators::sinks::lake::{LakeConfig, LakeSettings, StagingDurability};
    /// let dir = std::path::Path::new("/tmp/lake");
    /// let local = LakeSettings::new(&LakeConfig::default(), dir, dir).unwrap();
    /// assert_eq!(local.staging_durability(), StagingDurability::EachCommit);
    /// let batch = local.with_scratch_staging();
    /// assert_eq!(batch.staging_durability(), StagingDurability::Scratch);
    /// ```
    pub fn staging_durability(&self) -> StagingDurability {
        if self.scratch_staging {
            StagingDurability::Scratch
        } else if self.acks_wait_for_seal() {
            StagingDurability::Never
        } else {
            StagingDurability::EachCommit
        }
    }

    /// Sends sealed files to `target` (the lake directory then only stages
    /// them).
    pub fn with_target(mut self, target: LakeTarget) -> Self {
        self.target = target;
        self
    }

    /// The running totals of every writer built from these settings.
    pub fn totals(&self) -> Arc<Mutex<LakeTotals>> {
        self.totals.clone()
    }

    /// Creates the `logs` table directory, so that readers find a (maybe
    /// empty) lake as soon as the service runs, before its first seal.
    pub fn create_table_dir(&self) -> Result<(), LakeError> {
        std::fs::create_dir_all(&self.table_dir)
            .map_err(|e| LakeError::io("create directory", &self.table_dir, e))
    }

    /// Directory of the `logs` table.
    pub fn table_dir(&self) -> &Path {
        &self.table_dir
    }

    /// Directory of the partitions' dedup indexes.
    pub fn dedup_dir(&self) -> PathBuf {
        self.lake_dir.join(dedup::DEDUP_DIR)
    }

    /// Directory of the staging area.
    pub fn staging_dir(&self) -> &Path {
        &self.staging_dir
    }

    /// The lake directory.
    pub fn lake_dir(&self) -> &Path {
        &self.lake_dir
    }

    /// Which sealed files cover this lake's staged segments: any, for a local
    /// lake; this process's stager's, for a shared bucket.
    pub fn coverage(&self) -> Coverage {
        match self.target {
            LakeTarget::Local => Coverage::AnyStager,
            LakeTarget::S3(_) => Coverage::Stager(stager_tag().to_string()),
        }
    }

    fn publish(&self) -> Publish {
        match &self.target {
            LakeTarget::Local => Publish::Local,
            LakeTarget::S3(target) => Publish::S3 {
                target: target.clone(),
            },
        }
    }

    fn acks_wait_for_seal(&self) -> bool {
        matches!(self.target, LakeTarget::S3(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_keys_still_read_in_their_units() {
        let config: LakeConfig = serde_json::from_value(serde_json::json!({
            "max_file_mib": 64,
            "max_file_age_secs": 60,
            "max_buffered_mib": 8,
        }))
        .unwrap();
        assert_eq!(config.file_size.bytes(), 64 << 20);
        assert_eq!(config.max_age.as_secs(), 60);
        assert_eq!(config.max_buffered.bytes(), 8 << 20);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn settings_are_checked() {
        let bad = |config: LakeConfig| config.validate().unwrap_err().key().to_string();
        let ok = LakeConfig::default();
        assert!(ok.validate().is_ok());
        assert_eq!(
            bad(LakeConfig {
                commit_interval: Millis::units(0),
                ..ok.clone()
            }),
            "commit_interval"
        );
        assert_eq!(
            bad(LakeConfig {
                file_size: MiB::from_bytes(1000),
                ..ok.clone()
            }),
            "max_file_size"
        );
        assert_eq!(
            bad(LakeConfig {
                row_group_rows: 10,
                ..ok.clone()
            }),
            "row_group_rows"
        );
        assert_eq!(
            bad(LakeConfig {
                seal_threads: Some(0),
                ..ok.clone()
            }),
            "seal_threads"
        );
    }

    #[test]
    fn the_s3_lake_seals_within_its_own_age() {
        let mut config = LakeConfig::default();
        assert_eq!(config.seal_policy().max_age, Duration::from_secs(3600));
        config.s3 = Some(crate::sinks::s3_lake::S3LakeConfig::new("b"));
        assert_eq!(config.seal_policy().max_age, Duration::from_secs(300));
    }

    #[test]
    fn staging_compression_defaults_per_command_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let settings = |config: &LakeConfig| {
            LakeSettings::new(config, &dir.path().join("lake"), &dir.path().join("dead")).unwrap()
        };
        let mut config = LakeConfig::default();
        assert_eq!(
            settings(&config).staging_compression,
            StagingCompression::Lz4
        );
        let batch =
            settings(&config).with_default_staging_compression(&config, StagingCompression::None);
        assert_eq!(batch.staging_compression, StagingCompression::None);
        config = serde_json::from_value(serde_json::json!({"staging_compression": "lz4"})).unwrap();
        let batch =
            settings(&config).with_default_staging_compression(&config, StagingCompression::None);
        assert_eq!(batch.staging_compression, StagingCompression::Lz4);
        let bad = serde_json::from_value::<LakeConfig>(
            serde_json::json!({"staging_compression": "zstd"}),
        );
        assert!(bad.is_err());
    }
}
