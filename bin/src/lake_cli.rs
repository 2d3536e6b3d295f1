//! `spate lake compact`: merges the small sealed files of closed partitions
//! (see `spate_operators::sinks::lake::compact`).
//!
//! The local lake is compacted under the data dir's lock (stop `spate run`
//! first); partitions with staged rows are skipped (the next `spate run`
//! seals them). A lake in S3 (`--lake s3://…` or the config's `[lake.s3]`)
//! is compacted in place while writers run: only partitions closed for
//! `lake.max_file_age` + `lake.hour_grace` are touched.

use std::path::PathBuf;

use anyhow::{Context, Result};
use spate_operators::sinks::lake::compact::{
    CompactOptions, CompactReport, compact_local, compact_s3,
};
use spate_operators::sinks::lake::part_file::writer_properties;
use spate_operators::sinks::s3_lake::S3Target;

use crate::config::SpateConfig;
use crate::data_dir_lock::DataDirLock;
use crate::query::filters::TimeBound;
use crate::query::lake::S3Url;

/// Arguments of `spate lake compact`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompactArgs {
    /// Configuration file (TOML), for `lake.path`, `[lake]` sizes, `[lake.s3]`
    /// and `[aws]`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory of the lake (`<data-dir>/lake` unless `lake.path`).
    #[arg(long, default_value = "./spate-data")]
    pub data_dir: PathBuf,
    /// Compact the lake in S3 at this prefix instead.
    #[arg(long, value_name = "s3://BUCKET/PREFIX", value_parser = S3Url::parse)]
    pub lake: Option<S3Url>,
    /// Only partitions whose hour starts at or after this: a duration ago
    /// (2d, 12h) or RFC 3339.
    #[arg(long, value_parser = TimeBound::parse)]
    pub since: Option<TimeBound>,
    /// Report format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::output::Format,
    /// Same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    pub json: bool,
}

/// Runs `spate lake compact`.
pub async fn compact(args: &CompactArgs, config: &SpateConfig) -> Result<CompactReport> {
    let lake = &config.lake;
    let now = spate_operators::event::wall_clock_ms();
    let settle = lake.max_age.get() + lake.hour_grace.get();
    let options = CompactOptions {
        since_ms: args.since.map(|s| s.resolve(now)),
        closed_before_ms: now - i64::try_from(settle.as_millis()).unwrap_or(i64::MAX),
        target_bytes: lake.file_size.bytes(),
        small_bytes: lake.file_size.bytes() / 2,
        props: writer_properties(lake.zstd_level, lake.row_group_rows)?,
    };
    let lake_dir = lake
        .path
        .clone()
        .unwrap_or_else(|| args.data_dir.join("lake"));
    let s3 = match (&args.lake, &lake.s3) {
        (Some(url), s3) => Some((
            url.clone(),
            s3.clone()
                .unwrap_or_else(|| spate_operators::sinks::s3_lake::S3LakeConfig::new("")),
        )),
        (None, Some(s3)) => Some((
            S3Url::new(&s3.bucket, &s3.prefix).map_err(anyhow::Error::msg)?,
            s3.clone(),
        )),
        (None, None) => None,
    };
    match s3 {
        Some((url, s3_config)) => {
            let sdk = config.aws.load().await;
            let target_config = spate_operators::sinks::s3_lake::S3LakeConfig {
                bucket: url.bucket.clone(),
                prefix: url.prefix.clone(),
                glue: None,
                ..s3_config
            };
            let target =
                S3Target::new(config.aws.s3_client(&sdk), &target_config).context("lake.s3")?;
            let work = tempfile_dir()?;
            let report = compact_s3(&target, work.path(), &options).await;
            Ok(report.with_context(|| format!("compacting {url}"))?)
        }
        None => {
            let _lock = DataDirLock::acquire_all(&args.data_dir, &lake_dir, "spate lake compact")?;
            let dir = lake_dir.clone();
            let report = tokio::task::spawn_blocking(move || compact_local(&dir, &options))
                .await
                .context("compaction task")?;
            Ok(report.with_context(|| format!("compacting {}", lake_dir.display()))?)
        }
    }
}

/// A scratch directory for merged files before their upload.
fn tempfile_dir() -> Result<TempDir> {
    let path = std::env::temp_dir().join(format!(
        "spate-compact-{}-{}",
        std::process::id(),
        spate_operators::event::wall_clock_ms()
    ));
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(TempDir(path))
}

/// Removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.as_path());
    }
}

/// The human-readable report.
pub fn render(report: &CompactReport) -> String {
    format!(
        "compacted {} of {} closed partitions: {} files ({:.1} MiB) merged into {} ({:.1} MiB), {} rows{}\n",
        report.compacted,
        report.partitions,
        report.files_merged,
        report.bytes_merged as f64 / (1 << 20) as f64,
        report.files_written,
        report.bytes_written as f64 / (1 << 20) as f64,
        report.rows,
        match report.skipped_staged {
            0 => String::new(),
            n => format!("; {n} partitions skipped (rows staged: the next `spate run` seals them)"),
        }
    )
}
