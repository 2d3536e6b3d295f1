//! `spate ingest`: run the pipeline over files or stdin to completion.
//!
//! ```text
//! read ─► decode (one worker per core) ─► lake (Parquet + dead letters)
//! ```

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use spate_engine::{ActorOptions, GraphBuilder, SupervisorPolicy};
use spate_operators::aws::AwsClients;
use spate_operators::event::Severity;
use spate_operators::log_batch::LogBatch;
use spate_operators::sinks::lake::{LakeSettings, LakeWriter, StagingCompression};
use spate_operators::sources::file::{FileSource, Input, ReadProgress};
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage};

use crate::config::ValidConfig;
use crate::data_dir_lock::DataDirLock;

/// Seals at once per lake writer unless `[lake] seal_threads` says (fewer on
/// fewer cores): W1 1 M took 2.10–2.49 s with two, 2.82–3.20 s with one.
const INGEST_SEAL_THREADS: usize = 2;

/// The summary printed at the end (`--json` prints it as one object).
#[derive(Debug, Serialize)]
pub struct IngestSummary {
    /// Events archived.
    pub events: u64,
    /// Events per severity.
    pub severity: BTreeMap<&'static str, u64>,
    /// Events per tag.
    pub tags: BTreeMap<String, u64>,
    /// Inputs dead-lettered.
    pub dead_letters: u64,
    /// CloudWatch Logs control messages skipped.
    pub control_messages: u64,
    /// Parquet files sealed.
    pub files_written: u64,
    /// Bytes of Parquet sealed.
    pub bytes_written: u64,
    /// Row groups in those files.
    pub row_groups_written: u64,
    /// Bytes of input read.
    pub input_bytes: u64,
    /// Batches that could not be archived.
    pub failed_batches: u64,
    /// True when a signal stopped the run before the inputs ended (what was
    /// read is archived).
    pub interrupted: bool,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Events per second.
    pub events_per_s: f64,
    /// The lake table directory.
    pub lake: PathBuf,
    /// The dead-letter directory.
    pub dead_letter_dir: PathBuf,
}

/// Runs the ingest pipeline over `paths`.
pub async fn run(valid: ValidConfig, data_dir: &Path, paths: &[String]) -> Result<IngestSummary> {
    let ValidConfig {
        config, classifier, ..
    } = valid;
    if paths.is_empty() {
        bail!("no input: give one or more paths, or - for stdin");
    }
    let inputs: Vec<Input> = paths.iter().map(|p| Input::parse(p)).collect();
    for input in &inputs {
        if let Input::Path(p) = input {
            let meta =
                std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
            if meta.is_dir() {
                bail!("{} is a directory, not a file", p.display());
            }
        }
    }
    let lake_dir = config
        .lake
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("lake"));
    // One process per data dir, held until the summary is printed.
    let _lock = DataDirLock::acquire_all(data_dir, &lake_dir, "spate ingest")?;
    let dead_dir = data_dir.join("deadletter");
    // Nothing competes with the final flush, which seals every partition,
    // and staging lives only until then: not worth compressing, nor
    // fsyncing. The inputs are the durable copy: a run that does not end is
    // run again (dedup at seal drops what it had sealed), and what it staged
    // is deleted at the next start.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lake = LakeSettings::new(&config.lake, &lake_dir, &dead_dir)?
        .with_default_seal_threads(&config.lake, cores.min(INGEST_SEAL_THREADS))
        .with_default_staging_compression(&config.lake, StagingCompression::None)
        .with_scratch_staging();
    lake.create_table_dir()?;
    // A reference table in S3 is read with the `[aws]` settings.
    let s3 = match config.enrich.table_on_s3() {
        true => Some(AwsClients::load(&config.aws).await.s3()),
        false => None,
    };
    let decode = DecodeSettings::load(
        &config.decode,
        classifier,
        &config.enrich,
        &config.pipeline,
        s3,
    )
    .await?;
    let progress = Arc::new(ReadProgress::default());
    let started = Instant::now();

    let mut graph = GraphBuilder::new();
    let (inputs, read_config, p) = (Arc::new(inputs), config.ingest.clone(), progress.clone());
    graph.source("read", move || {
        FileSource::new(inputs.clone(), &read_config, p.clone())
    });
    let workers = config.pipeline.workers();
    graph.actor_pool(
        "decode",
        workers,
        move |_| DecodeStage::new(&decode),
        ActorOptions::with_capacity(workers * 2),
    );
    graph.connect("read", "decode");
    // A one-shot run gives up on a sink that keeps failing (a full or read-only
    // disk) instead of retrying for ever: a few quick retries, then the kill
    // switch ends the run with the sink's error.
    let sink_policy = SupervisorPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        max_consecutive_restarts: Some(4),
        ..SupervisorPolicy::default()
    };
    add_lake_writers(
        &mut graph,
        &lake,
        config.lake.writers,
        ActorOptions {
            mailbox_capacity: workers * 2,
            supervisor: sink_policy,
        },
    );
    let pipeline = graph.build()?.spawn();

    let reporter = std::io::stderr().is_terminal().then(|| {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let mib = progress.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0);
                let secs = started.elapsed().as_secs_f64();
                eprint!(
                    "\rread {mib:.1} MiB in {secs:.0}s ({:.1} MiB/s)   ",
                    mib / secs
                );
            }
        })
    });
    // SIGTERM/SIGINT: stop reading, archive what was read, then exit; a second
    // signal aborts at once.
    let mut signals = spate_engine::signals::listen()?;
    let drain_deadline = Duration::from_secs(30);
    let result = pipeline
        .run_until_signal(&mut signals, drain_deadline)
        .await;
    if let Some(r) = reporter {
        r.abort();
        eprintln!();
    }
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let interrupted = progress.stopped_early();

    let elapsed = started.elapsed().as_secs_f64();
    let totals = lake.totals().lock().map(|t| t.clone()).unwrap_or_default();
    let counts = &totals.counts;
    let severity = Severity::ALL
        .iter()
        .rev()
        .map(|s| (s.as_str(), counts.severity(*s)))
        .collect();
    let failed_batches = progress.failed.load(Ordering::Relaxed);
    if failed_batches > 0 {
        let reason = progress
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        bail!("{failed_batches} batches could not be archived; first failure: {reason}");
    }
    Ok(IngestSummary {
        events: counts.events,
        severity,
        tags: counts.tags.clone(),
        dead_letters: counts.dead_letters,
        control_messages: counts.control_messages,
        files_written: totals.files_written,
        bytes_written: totals.bytes_written,
        row_groups_written: totals.row_groups_written,
        input_bytes: progress.bytes.load(Ordering::Relaxed),
        failed_batches,
        interrupted,
        elapsed_s: elapsed,
        events_per_s: counts.events as f64 / elapsed.max(1e-9),
        lake: lake.table_dir().to_path_buf(),
        dead_letter_dir: dead_dir,
    })
}

/// Adds `writers` lake writers after `decode` (`lake`, or `lake-0..N`),
/// connected by key: each partition goes to the one writer that owns it.
pub fn add_lake_writers(
    graph: &mut GraphBuilder,
    lake: &LakeSettings,
    writers: usize,
    options: ActorOptions,
) {
    let names: Vec<String> = if writers == 1 {
        vec!["lake".to_string()]
    } else {
        (0..writers).map(|w| format!("lake-{w}")).collect()
    };
    for (worker, name) in names.iter().enumerate() {
        let settings = lake.clone();
        graph.actor(
            name,
            move || LakeWriter::new(settings.clone(), worker),
            options.clone(),
        );
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    graph.connect_keyed("decode", &names, LogBatch::split_by_partition);
}

impl IngestSummary {
    /// The human-readable form.
    pub fn render(&self) -> String {
        let mut out = format!(
            "ingested {} events in {:.2}s ({:.0} events/s) from {:.1} MiB\n",
            self.events,
            self.elapsed_s,
            self.events_per_s,
            self.input_bytes as f64 / (1024.0 * 1024.0)
        );
        let sev: Vec<String> = self
            .severity
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out += &format!("  severity: {}\n", sev.join(", "));
        if !self.tags.is_empty() {
            let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out += &format!("  tags: {}\n", tags.join(", "));
        }
        out += &format!(
            "  lake: {} files ({} row groups), {:.1} MiB in {}\n",
            self.files_written,
            self.row_groups_written,
            self.bytes_written as f64 / (1024.0 * 1024.0),
            self.lake.display()
        );
        out += &format!(
            "  dead letters: {} (in {})\n",
            self.dead_letters,
            self.dead_letter_dir.display()
        );
        if self.interrupted {
            out += "  interrupted: inputs not read to the end; what was read is archived\n";
        }
        if self.control_messages > 0 {
            out += &format!(
                "  cloudwatch control messages skipped: {}\n",
                self.control_messages
            );
        }
        out
    }
}
