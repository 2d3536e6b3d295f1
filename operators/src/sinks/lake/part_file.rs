//! One Parquet file being written: a hidden temporary file that becomes visible
//! only when committed (flushed, fsynced, renamed, directory fsynced).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use tokio::time::Instant;

use super::LakeError;
use super::schema::logs_file_schema;

/// Target size of a data or dictionary page.
const PAGE_BYTES: usize = 256 * 1024;

/// Parquet settings for lake files.
///
/// zstd everywhere; dictionaries only where values repeat (hosts, sources,
/// severities), not for messages, ids and event times, where they only cost
/// time; no statistics for the long text columns.
pub fn writer_properties(
    zstd_level: i32,
    row_group_rows: usize,
) -> Result<Arc<WriterProperties>, LakeError> {
    let level = ZstdLevel::try_new(zstd_level)
        .map_err(|e| LakeError::Config(format!("zstd level {zstd_level}: {e}")))?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        // Pages of 256 KiB: each open column buffers one page uncompressed, and
        // a writer holds dozens of partitions open at once.
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        .set_created_by(format!("spate {}", env!("CARGO_PKG_VERSION")));
    // Unique-per-row text: no dictionary (it only falls back after costing
    // time) and no statistics (nobody prunes on a message's min/max).
    for column in ["event_id", "message", "attrs"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    // Event times are near-sorted and near-unique: no dictionary.
    builder = builder.set_column_dictionary_enabled(ColumnPath::from("ts"), false);
    builder = builder.set_statistics_truncate_length(Some(64));
    Ok(Arc::new(builder.build()))
}

/// A Parquet file open for writing.
pub struct PartFile {
    tmp_path: PathBuf,
    final_path: PathBuf,
    writer: ArrowWriter<File>,
    sync: File,
    opened_at: Instant,
    rows: u64,
}

/// A file made visible in the lake.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedFile {
    /// Where it is.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
}

impl PartFile {
    /// Creates `dir/.name.tmp`, to become `dir/name` on commit.
    pub fn create(dir: &Path, name: &str, props: Arc<WriterProperties>) -> Result<Self, LakeError> {
        std::fs::create_dir_all(dir).map_err(|e| LakeError::io("create directory", dir, e))?;
        let final_path = dir.join(name);
        let tmp_path = dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp_path).map_err(|e| LakeError::io("create", &tmp_path, e))?;
        let sync = file
            .try_clone()
            .map_err(|e| LakeError::io("clone handle of", &tmp_path, e))?;
        let writer = ArrowWriter::try_new(file, logs_file_schema(), Some((*props).clone()))
            .map_err(|e| LakeError::Parquet(e.to_string()))?;
        Ok(PartFile {
            tmp_path,
            final_path,
            writer,
            sync,
            opened_at: Instant::now(),
            rows: 0,
        })
    }

    /// Appends rows (encoded into the current row group).
    pub fn write(&mut self, records: &RecordBatch) -> Result<(), LakeError> {
        self.writer
            .write(records)
            .map_err(|e| LakeError::Parquet(e.to_string()))?;
        self.rows += records.num_rows() as u64;
        Ok(())
    }

    /// Ends the current row group if it holds more than `max_bytes`, so memory
    /// stays bounded while the file stays open.
    pub fn limit_buffered(&mut self, max_bytes: usize) -> Result<(), LakeError> {
        if self.writer.in_progress_size() > max_bytes {
            self.writer
                .flush()
                .map_err(|e| LakeError::Parquet(e.to_string()))?;
        }
        Ok(())
    }

    /// Bytes written to disk plus the estimate of what is buffered.
    pub fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Bytes held in memory by the current row group.
    pub fn buffered(&self) -> usize {
        self.writer.memory_size()
    }

    /// When the file was opened.
    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer, fsyncs, renames into place and fsyncs the directory.
    /// On a failure before the rename the temporary is removed.
    pub fn commit(self) -> Result<CommittedFile, LakeError> {
        let PartFile {
            tmp_path,
            final_path,
            writer,
            sync,
            rows,
            ..
        } = self;
        let finished = (|| {
            writer
                .close()
                .map_err(|e| LakeError::Parquet(e.to_string()))?;
            sync.sync_all()
                .map_err(|e| LakeError::io("fsync", &tmp_path, e))?;
            let bytes = sync
                .metadata()
                .map_err(|e| LakeError::io("stat", &tmp_path, e))?
                .len();
            std::fs::rename(&tmp_path, &final_path)
                .map_err(|e| LakeError::io("rename", &tmp_path, e))?;
            Ok(bytes)
        })();
        let bytes = match finished {
            Ok(bytes) => bytes,
            Err(e) => {
                // A full disk and the like: the temporary is no use to anyone.
                let _ = std::fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        if let Some(dir) = final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(CommittedFile {
            path: final_path,
            rows,
            bytes,
        })
    }

    /// Abandons the file, removing the temporary.
    pub fn abort(self) {
        let PartFile {
            tmp_path, writer, ..
        } = self;
        drop(writer);
        let _ = std::fs::remove_file(tmp_path);
    }
}

/// Removes the temporaries (`.NAME.tmp`) a writer left below `dir` when the
/// process died or its disk filled; returns how many. Run at start, before
/// any writer opens a file. A missing `dir` has none.
pub fn remove_temporaries(dir: &Path) -> Result<u64, LakeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(LakeError::io("list", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| LakeError::io("list", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| LakeError::io("stat", &path, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            removed += remove_temporaries(&path)?;
        } else if kind.is_file() && name.starts_with('.') && name.ends_with(".tmp") {
            std::fs::remove_file(&path).map_err(|e| LakeError::io("remove", &path, e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), LakeError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LakeError::io("fsync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Arc<WriterProperties> {
        writer_properties(1, 1024).unwrap()
    }

    #[test]
    fn a_commit_that_fails_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // The final name is taken by a non-empty directory: the rename fails.
        std::fs::create_dir_all(dir.path().join("part-1.parquet/x")).unwrap();
        let file = PartFile::create(dir.path(), "part-1.parquet", props()).unwrap();
        assert!(dir.path().join(".part-1.parquet.tmp").exists());
        assert!(file.commit().is_err());
        assert!(!dir.path().join(".part-1.parquet.tmp").exists());
        // And one that succeeds leaves only the file.
        let file = PartFile::create(dir.path(), "part-2.parquet", props()).unwrap();
        let committed = file.commit().unwrap();
        assert_eq!(committed.path, dir.path().join("part-2.parquet"));
        assert!(!dir.path().join(".part-2.parquet.tmp").exists());
    }

    #[test]
    fn temporaries_left_by_an_earlier_run_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("dt=2026-01-01/hour=00/service=api");
        std::fs::create_dir_all(&deep).unwrap();
        for name in [
            ".part-1.parquet.tmp",
            "part-2.parquet",
            ".keep",
            "notes.tmp",
        ] {
            std::fs::write(deep.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(".part-3.ndjson.tmp"), b"x").unwrap();
        assert_eq!(remove_temporaries(dir.path()).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(&deep)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".keep", "notes.tmp", "part-2.parquet"]);
        assert!(!dir.path().join(".part-3.ndjson.tmp").exists());
        assert_eq!(remove_temporaries(&dir.path().join("missing")).unwrap(), 0);
    }
}
