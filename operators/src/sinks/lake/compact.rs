//! Compaction: the small sealed files of closed partitions merged into files
//! of about the lake's `file_size` (lakes written before stage-then-seal,
//! low-volume services, late rows). `spate lake compact` runs it.
//!
//! Which files merge is a pure function of their sizes
//! ([`plan_merges`]); a partition is compacted only once its hour is over
//! (closed: nothing will be sealed into it) and it has nothing staged.
//!
//! # Exactly once, locally
//!
//! The new contents of a partition directory are built beside the lake, in
//! `<lake>/.compact/<n>/`: the merged files, plus hard links to the files
//! left as they are. Then one `renameat2(RENAME_EXCHANGE)` swaps that
//! directory with the partition's: a reader resolving paths sees the old set
//! of files or the new one, never both, never neither. The old set, now in
//! `.compact/`, is deleted afterwards (what a crash leaves there is deleted
//! by the next run). A query that listed the old files and opens one after
//! the swap fails with "not found" instead of counting wrong, and one whose
//! listing the swap cut short runs again: the swaps are counted
//! (`swaps.rs`). `spate query` retries both.
//!
//! # S3
//!
//! A bucket has no atomic swap: the merged object is uploaded, then the
//! merged-away objects are deleted with one `DeleteObjects` call. Between
//! the two (well under a second) a reader listing the partition sees both.
//! Run it on partitions nobody queries at that moment, or accept the window.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;

use super::LakeError;
use super::dedup;
use super::part_file::{PartFile, sync_dir};
use super::partition::PartitionKey;
use super::schema::upgrade_file_batch;
use super::staging::{STAGING_DIR, list_staged, stager_tag, subdirs};
use crate::sinks::s3_lake::S3Target;

/// Where a compaction builds new partition directories, inside the lake.
pub const COMPACT_DIR: &str = ".compact";

/// A sealed file of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeFile {
    /// Its name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// Which files of one partition to merge, each group into one file: files
/// under `small_bytes`, in name order (oldest first), packed into groups of
/// at most `target_bytes`; a group of one file is left alone.
///
/// ```
/// use spate_operators::sinks::lake::compact::{plan_merges, LakeFile};
/// let f = |name: &str, bytes| LakeFile { name: name.into(), bytes };
/// let files = [f("a", 10), f("b", 500), f("c", 20), f("d", 30), f("e", 70)];
/// let groups = plan_merges(&files, 100, 50);
/// assert_eq!(groups, vec![vec!["a".to_string(), "c".into(), "d".into()]]);
/// ```
pub fn plan_merges(files: &[LakeFile], target_bytes: u64, small_bytes: u64) -> Vec<Vec<String>> {
    let mut small: Vec<&LakeFile> = files.iter().filter(|f| f.bytes < small_bytes).collect();
    small.sort_by(|a, b| a.name.cmp(&b.name));
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0u64;
    for file in small {
        if !current.is_empty() && size + file.bytes > target_bytes {
            groups.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(file.name.clone());
        size += file.bytes;
    }
    groups.push(current);
    groups.retain(|g| g.len() > 1);
    groups
}

/// Which partitions a compaction looks at.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only partitions whose hour starts at or after this (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only partitions whose hour ended before this (ms since the epoch):
    /// closed ones.
    pub closed_before_ms: i64,
    /// Size a merged file grows to at most.
    pub target_bytes: u64,
    /// Files under this size are merged.
    pub small_bytes: u64,
    /// Parquet settings of the merged files.
    pub props: Arc<WriterProperties>,
}

impl CompactOptions {
    fn wants(&self, key: &PartitionKey) -> bool {
        key.hour_end_ms() <= self.closed_before_ms
            && self.since_ms.is_none_or(|since| key.hour_start_ms >= since)
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    /// Closed partitions looked at.
    pub partitions: u64,
    /// Partitions rewritten.
    pub compacted: u64,
    /// Partitions skipped because rows of them are staged.
    pub skipped_staged: u64,
    /// Files merged away.
    pub files_merged: u64,
    /// Files written in their place.
    pub files_written: u64,
    /// Bytes merged away.
    pub bytes_merged: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Rows rewritten.
    pub rows: u64,
}

/// A merged file's name: `part-c<µs><stager>.parquet`, which covers no
/// staged segment (see [`super::staging::parse_sealed_file_name`]).
fn merged_name() -> String {
    let micros = (crate::event::wall_clock_ms().max(0) as u64).saturating_mul(1000);
    format!("part-c{micros:016x}{}.parquet", stager_tag())
}

/// Compacts the local lake at `lake_dir` (the caller holds its lock).
pub fn compact_local(
    lake_dir: &Path,
    options: &CompactOptions,
) -> Result<CompactReport, LakeError> {
    let work = lake_dir.join(COMPACT_DIR);
    super::swaps::settle(lake_dir)?;
    // What an interrupted run left: never part of the table.
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| LakeError::io("remove", &work, e))?;
    }
    let staged: Vec<PartitionKey> = list_staged(&lake_dir.join(STAGING_DIR))?
        .into_iter()
        .map(|p| p.key)
        .collect();
    let table = lake_dir.join("logs");
    let mut report = CompactReport::default();
    let mut n = 0usize;
    for (key, dir) in partitions(&table)? {
        if !options.wants(&key) {
            continue;
        }
        report.partitions += 1;
        if staged.contains(&key) {
            report.skipped_staged += 1;
            continue;
        }
        let files = visible_files(&dir)?;
        let groups = plan_merges(&files, options.target_bytes, options.small_bytes);
        if groups.is_empty() {
            continue;
        }
        n += 1;
        let next = work.join(n.to_string());
        std::fs::create_dir_all(&next).map_err(|e| LakeError::io("create directory", &next, e))?;
        let merged: Vec<&String> = groups.iter().flatten().collect();
        for file in &files {
            if !merged.contains(&&file.name) {
                let (from, to) = (dir.join(&file.name), next.join(&file.name));
                std::fs::hard_link(&from, &to).map_err(|e| LakeError::io("link", &from, e))?;
            }
        }
        for group in &groups {
            let inputs: Vec<PathBuf> = group.iter().map(|name| dir.join(name)).collect();
            let mut out = PartFile::create(&next, &merged_name(), options.props.clone())?;
            for input in &inputs {
                let file = File::open(input).map_err(|e| LakeError::io("open", input, e))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                    .and_then(|b| b.build())
                    .map_err(|e| LakeError::Parquet(format!("{}: {e}", input.display())))?;
                for batch in reader {
                    let batch = batch
                        .and_then(upgrade_file_batch)
                        .map_err(|e| LakeError::Parquet(format!("{}: {e}", input.display())))?;
                    out.write(&batch)?;
                }
            }
            let written = out.commit()?;
            report.files_written += 1;
            report.bytes_written += written.bytes;
            report.rows += written.rows;
        }
        report.files_merged += merged.len() as u64;
        report.bytes_merged += files
            .iter()
            .filter(|f| merged.contains(&&f.name))
            .map(|f| f.bytes)
            .sum::<u64>();
        sync_dir(&next)?;
        // Queries running across the swap see the count change and rerun
        // (`swaps.rs`): their listing may have missed files.
        super::swaps::bump(lake_dir)?;
        let swapped = rustix::fs::renameat_with(
            rustix::fs::CWD,
            &next,
            rustix::fs::CWD,
            &dir,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| LakeError::io("swap", &dir, e.into()));
        super::swaps::bump(lake_dir)?;
        swapped?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        std::fs::remove_dir_all(&next).map_err(|e| LakeError::io("remove", &next, e))?;
        let before: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        rename_in_dedup_index(lake_dir, &key, before, &dir)?;
        report.compacted += 1;
    }
    if work.exists() {
        let _ = std::fs::remove_dir(&work);
    }
    Ok(report)
}

/// Keeps a partition's dedup index valid after compaction: the ids are the
/// same, in other files. An index that covered exactly the files before
/// (`before`) now covers the files in `dir`; any other is left to be
/// rebuilt from the files at the partition's next seal (a crash before this
/// rewrite leaves the same). See [`super::dedup`].
fn rename_in_dedup_index(
    lake_dir: &Path,
    key: &PartitionKey,
    mut before: Vec<String>,
    dir: &Path,
) -> Result<(), LakeError> {
    let path = dedup::index_path(&lake_dir.join(dedup::DEDUP_DIR), key);
    let Some(mut index) = dedup::read_index(&path)? else {
        return Ok(());
    };
    before.sort();
    if dedup::catchup(Some(&index), &before) != dedup::Catchup::Current {
        return Ok(());
    }
    index.files = dedup::sealed_files(dir)?;
    dedup::write_index(&path, &index)
}

/// The partition directories under `table`, with their keys.
fn partitions(table: &Path) -> Result<Vec<(PartitionKey, PathBuf)>, LakeError> {
    let mut out = Vec::new();
    for dt in subdirs(table)? {
        for hour in subdirs(&dt)? {
            for service in subdirs(&hour)? {
                let relative = service.strip_prefix(table).unwrap_or(&service);
                if let Some(key) = PartitionKey::parse_path(&relative.to_string_lossy()) {
                    out.push((key, service));
                }
            }
        }
    }
    Ok(out)
}

/// The visible Parquet files of a partition directory.
fn visible_files(dir: &Path) -> Result<Vec<LakeFile>, LakeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LakeError::io("list", dir, e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        let bytes = entry
            .metadata()
            .map_err(|e| LakeError::io("stat", &entry.path(), e))?
            .len();
        out.push(LakeFile { name, bytes });
    }
    Ok(out)
}

/// Compacts the lake in S3 behind `target`, building merged files in
/// `work_dir` before their upload.
pub async fn compact_s3(
    target: &S3Target,
    work_dir: &Path,
    options: &CompactOptions,
) -> Result<CompactReport, LakeError> {
    let prefix = target.key_for("logs/");
    let mut by_partition: std::collections::BTreeMap<String, Vec<LakeFile>> = Default::default();
    for (key, bytes) in target.list(&prefix).await? {
        let Some(relative) = key.strip_prefix(&prefix) else {
            continue;
        };
        let Some((partition, name)) = relative.rsplit_once('/') else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        by_partition
            .entry(partition.to_string())
            .or_default()
            .push(LakeFile {
                name: name.to_string(),
                bytes,
            });
    }
    std::fs::create_dir_all(work_dir)
        .map_err(|e| LakeError::io("create directory", work_dir, e))?;
    let mut report = CompactReport::default();
    for (partition, files) in by_partition {
        let Some(key) = PartitionKey::parse_path(&partition) else {
            continue;
        };
        if !options.wants(&key) {
            continue;
        }
        report.partitions += 1;
        let groups = plan_merges(&files, options.target_bytes, options.small_bytes);
        for group in &groups {
            let name = merged_name();
            let mut out = PartFile::create(work_dir, &name, options.props.clone())?;
            for input in group {
                let object = format!("{prefix}{partition}/{input}");
                let body = match target.get(&object).await {
                    Ok(body) => body,
                    Err(e) => {
                        out.abort();
                        return Err(e.into());
                    }
                };
                let reader = ParquetRecordBatchReaderBuilder::try_new(body)
                    .and_then(|b| b.build())
                    .map_err(|e| LakeError::Parquet(format!("{object}: {e}")))?;
                for batch in reader {
                    let batch = batch
                        .and_then(upgrade_file_batch)
                        .map_err(|e| LakeError::Parquet(format!("{object}: {e}")))?;
                    out.write(&batch)?;
                }
            }
            let written = out.close_unpublished()?;
            let object = format!("{prefix}{partition}/{name}");
            target.upload_and_remove(&written.path, &object).await?;
            let inputs: Vec<String> = group
                .iter()
                .map(|input| format!("{prefix}{partition}/{input}"))
                .collect();
            target.delete(&inputs).await?;
            report.files_written += 1;
            report.bytes_written += written.bytes;
            report.rows += written.rows;
            report.files_merged += group.len() as u64;
            report.bytes_merged += files
                .iter()
                .filter(|f| group.contains(&f.name))
                .map(|f| f.bytes)
                .sum::<u64>();
        }
        if !groups.is_empty() {
            report.compacted += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, bytes: u64) -> LakeFile {
        LakeFile {
            name: name.into(),
            bytes,
        }
    }

    #[test]
    fn small_files_pack_into_groups_up_to_the_target() {
        let files = [f("1", 40), f("2", 40), f("3", 40), f("4", 40), f("5", 200)];
        assert_eq!(
            plan_merges(&files, 100, 100),
            vec![
                vec!["1".to_string(), "2".into()],
                vec!["3".into(), "4".into()]
            ]
        );
        // One small file alone is not rewritten.
        assert!(plan_merges(&[f("1", 10), f("2", 500)], 100, 100).is_empty());
        assert!(plan_merges(&[], 100, 100).is_empty());
    }

    #[tokio::test]
    async fn compaction_keeps_the_dedup_index_valid() {
        use crate::sinks::lake::part_file::writer_properties;
        use crate::sinks::lake::seal::tests::seal_with_dedup;
        let lake = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(1_763_892_000_000, "api");
        let index = dedup::index_path(&lake.path().join(dedup::DEDUP_DIR), &key);
        seal_with_dedup(lake.path(), &key, 1, &[(0, 100)], &index).await;
        seal_with_dedup(lake.path(), &key, 2, &[(100, 100)], &index).await;
        let before = dedup::read_index(&index).unwrap().unwrap();
        assert_eq!(before.files.len(), 2);
        let options = CompactOptions {
            since_ms: None,
            closed_before_ms: i64::MAX,
            target_bytes: 1 << 30,
            small_bytes: 1 << 30,
            props: writer_properties(1, 4_096).unwrap(),
        };
        let report = compact_local(lake.path(), &options).unwrap();
        assert_eq!(report.files_merged, 2);
        let dir = lake.path().join("logs").join(key.path());
        let after = dedup::read_index(&index).unwrap().unwrap();
        assert_eq!(after.files, dedup::sealed_files(&dir).unwrap());
        assert_eq!(after.files.len(), 1);
        assert_eq!(after.fingerprints, before.fingerprints);
        // The index is current: a replay is dropped without a rebuild.
        let replay = seal_with_dedup(lake.path(), &key, 3, &[(150, 100)], &index).await;
        assert_eq!((replay.rows, replay.duplicates), (50, 50));
    }

    #[test]
    fn merged_names_cover_no_segment() {
        let name = merged_name();
        assert!(name.starts_with("part-c") && name.ends_with(".parquet"));
        assert_eq!(super::super::staging::parse_sealed_file_name(&name), None);
    }
}
