//! Sealing one partition: its staged segments read back in order and written
//! as one Parquet file with large row groups, published, then removed from
//! staging.
//!
//! Publishing is the commit point for readers of the tree:
//!
//! - **local**: the file is written as `logs/<partition>/.<name>.tmp`,
//!   fsynced, renamed to `<name>` and its directory fsynced; only then are
//!   the segments deleted;
//! - **S3**: the partition is registered in the Glue catalog if the lake has
//!   one (an empty partition is harmless, and a failed registration leaves
//!   nothing to clean up), the file is uploaded (PutObject or a multipart
//!   upload: the object appears whole or not at all), and only then are the
//!   segments deleted.
//!
//! The name carries the newest segment number ([`sealed_file_name`]), so a
//! reader that sees both the file and the segments knows which to skip, and
//! recovery after a crash between publishing and deleting removes the
//! covered segments instead of sealing them twice.
//!
//! [`sealed_file_name`]: super::staging::sealed_file_name

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::file::properties::WriterProperties;

use spate_engine::work_threads::WorkThreads;

use super::LakeError;
use super::dedup::{SealDedup, load_index, write_index};
use super::dedup_s3::catch_up_from_s3;
use super::part_file::{PartFile, sync_dir};
use super::partition::PartitionKey;
use super::schema::upgrade_file_batch;
use super::staging::{ClosedSegment, complete_prefix_len, read_segment};
use crate::sinks::s3_lake::S3Target;

/// Where sealed files go.
#[derive(Clone)]
pub enum Publish {
    /// Renamed into the local `logs/` tree.
    Local,
    /// Uploaded to S3 (the lake directory only holds the temporary file),
    /// with the partition registered first in the target's Glue catalog, if
    /// it has one.
    S3 {
        /// The bucket and prefix.
        target: Arc<S3Target>,
    },
}

/// One seal to run.
pub struct SealJob {
    /// The partition.
    pub key: PartitionKey,
    /// Its segments, oldest first: all it had when the seal began.
    pub segments: Vec<ClosedSegment>,
    /// The `logs` table directory (the local lake, or where the temporary
    /// file of an upload is written).
    pub table_dir: PathBuf,
    /// The name of the sealed file.
    pub name: String,
    /// Parquet settings.
    pub props: Arc<WriterProperties>,
    /// Where the file goes.
    pub publish: Publish,
    /// Drop rows whose `event_id` the partition already has (see
    /// [`super::dedup`]); `None` past the horizon or when dedup is off.
    pub dedup: Option<DedupSpec>,
}

/// The dedup of one seal.
#[derive(Debug, Clone)]
pub struct DedupSpec {
    /// The partition's index file.
    pub index: PathBuf,
    /// Whether the index is checked against the partition's sealed files in
    /// the local lake (an S3 lake's index is checked against the bucket
    /// instead, by [`catch_up_from_s3`]).
    pub check_files: bool,
}

/// A sealed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    /// The partition.
    pub key: PartitionKey,
    /// Rows in the file.
    pub rows: u64,
    /// Its size.
    pub bytes: u64,
    /// Row groups in it.
    pub row_groups: usize,
    /// Where it is: a local path, or `s3://bucket/key`.
    pub location: String,
    /// The staged bytes it replaced.
    pub staged_bytes: u64,
    /// Staged rows dropped because their `event_id` was already sealed in
    /// the partition (or earlier in this file).
    pub duplicates: u64,
    /// The duplicates by the `source` label of their counter (see
    /// [`super::dedup::source_label`]).
    pub duplicates_by_source: Vec<(String, u64)>,
}

impl SealJob {
    /// Writes, publishes and removes the segments. On failure the segments
    /// are left as they were (and any temporary file removed), so the seal
    /// can run again. The reading and encoding run on `thread` (see
    /// [`WorkThreads`]).
    pub async fn run(self, thread: WorkThreads) -> Result<Sealed, LakeError> {
        let SealJob {
            key,
            segments,
            table_dir,
            name,
            props,
            publish,
            dedup,
        } = self;
        let dir = table_dir.join(key.path());
        let staged_bytes = segments.iter().map(|s| s.bytes).sum();
        if let (Some(spec), Publish::S3 { target }) = (&dedup, &publish) {
            // The index is caught up with the bucket (or rebuilt from it); a
            // failure to do so fails the seal (retried), rather than seal
            // unchecked.
            let already = catch_up_from_s3(target, &key, &spec.index, &name, &thread).await?;
            if let Some(already) = already {
                // An earlier run of this seal (the same segments) uploaded
                // its file, and its answer was lost: done but for the
                // segments. Writing it again would overwrite it with the
                // rows the index now drops.
                let object = object_key(target, &key, &name);
                tracing::info!(object = %object, "the file of this seal is already in the bucket; removing its segments");
                let removed = segments.clone();
                thread.run(move || remove_segments(&removed)).await??;
                return Ok(Sealed {
                    key,
                    rows: already.rows,
                    bytes: already.bytes,
                    row_groups: 0,
                    location: format!("s3://{}/{object}", target.bucket()),
                    staged_bytes,
                    duplicates: 0,
                    duplicates_by_source: Vec::new(),
                });
            }
        }
        let local = matches!(publish, Publish::Local);
        let (written_dir, written_name, written_segments, spec) =
            (dir.clone(), name.clone(), segments.clone(), dedup.clone());
        let (written, dedup_state) = thread
            .run(move || {
            let mut state = spec.and_then(|spec| {
                let checked = spec.check_files.then_some(written_dir.as_path());
                match load_index(&spec.index, checked) {
                    Ok(index) => Some((index.files.clone(), SealDedup::new(index))),
                    Err(e) => {
                        tracing::error!(index = %spec.index.display(), error = %e, "cannot load the dedup index; sealing without dedup");
                        None
                    }
                }
            });
            let written = write_parquet(
                &written_dir,
                &written_name,
                &written_segments,
                props,
                local,
                state.as_mut().map(|(_, d)| d),
            )?;
                Ok::<_, LakeError>((written, state))
            })
            .await??;
        let location = match publish {
            Publish::Local => written.path.display().to_string(),
            Publish::S3 { target } => {
                let uploaded = async {
                    if let Some(glue) = target.catalog() {
                        glue.ensure_partition(&key).await?;
                    }
                    let object = object_key(&target, &key, &name);
                    target.upload_and_remove(&written.path, &object).await?;
                    Ok::<_, LakeError>(format!("s3://{}/{object}", target.bucket()))
                }
                .await;
                match uploaded {
                    Ok(location) => location,
                    Err(e) => {
                        let _ = std::fs::remove_file(&written.path);
                        return Err(e);
                    }
                }
            }
        };
        // The file is published: only now may the index claim its ids. A
        // failure leaves the index behind, caught up at its next load.
        let mut duplicates = 0;
        let mut duplicates_by_source = Vec::new();
        if let (Some(spec), Some((files, mut state))) = (dedup, dedup_state) {
            duplicates = state.dropped;
            duplicates_by_source = std::mem::take(&mut state.dropped_by_source)
                .into_iter()
                .collect();
            let index = state.into_index(files, &name);
            let written = thread.run(move || write_index(&spec.index, &index)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot update the dedup index; it is caught up at the next seal");
                }
                Err(e) => tracing::warn!(error = %e, "dedup index task failed"),
            }
        }
        let removed = segments.clone();
        thread.run(move || remove_segments(&removed)).await??;
        Ok(Sealed {
            key,
            rows: written.rows,
            bytes: written.bytes,
            row_groups: written.row_groups,
            location,
            staged_bytes,
            duplicates,
            duplicates_by_source,
        })
    }
}

/// The object key of the sealed file `name` of partition `key` in `target`.
fn object_key(target: &S3Target, key: &PartitionKey, name: &str) -> String {
    target.key_for(&format!("logs/{}/{name}", key.path()))
}

/// What [`write_parquet`] wrote.
struct Written {
    path: PathBuf,
    rows: u64,
    bytes: u64,
    row_groups: usize,
}

/// Reads `segments` in order into `dir/name` (`publish`: renamed into place
/// and fsynced; otherwise left as the hidden temporary file for an upload).
fn write_parquet(
    dir: &Path,
    name: &str,
    segments: &[ClosedSegment],
    props: Arc<WriterProperties>,
    publish: bool,
    mut dedup: Option<&mut SealDedup>,
) -> Result<Written, LakeError> {
    let created = !dir.exists();
    let mut file = PartFile::create(dir, name, props)?;
    let result = (|| {
        for segment in segments {
            let mut handle =
                File::open(&segment.path).map_err(|e| LakeError::io("open", &segment.path, e))?;
            let size = handle
                .metadata()
                .map_err(|e| LakeError::io("stat", &segment.path, e))?
                .len();
            let len = complete_prefix_len(&mut handle, size)
                .map_err(|e| LakeError::io("read", &segment.path, e))?;
            for batch in read_segment(handle, len, None, &segment.path)? {
                // Segments staged by an older version lack `position`.
                let batch = batch.and_then(upgrade_file_batch).map_err(|e| {
                    LakeError::Parquet(format!("staging {}: {e}", segment.path.display()))
                })?;
                let batch = match dedup.as_deref_mut() {
                    Some(dedup) => dedup.filter(&batch)?.unwrap_or(batch),
                    None => batch,
                };
                if batch.num_rows() > 0 {
                    file.write(&batch)?;
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        file.abort();
        return Err(e);
    }
    let committed = if publish {
        let committed = file.commit()?;
        if created {
            // The partition directory is new: make its entry durable too.
            for ancestor in dir.ancestors().skip(1).take(3) {
                sync_dir(ancestor)?;
            }
        }
        committed
    } else {
        file.close_unpublished()?
    };
    Ok(Written {
        row_groups: committed.row_groups,
        path: committed.path,
        rows: committed.rows,
        bytes: committed.bytes,
    })
}

/// Deletes sealed segments and makes the deletion durable.
fn remove_segments(segments: &[ClosedSegment]) -> Result<(), LakeError> {
    let mut dirs: Vec<&Path> = Vec::new();
    for segment in segments {
        match std::fs::remove_file(&segment.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LakeError::io("remove", &segment.path, e)),
        }
        if let Some(dir) = segment.path.parent()
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sinks::lake::part_file::writer_properties;
    use crate::sinks::lake::schema::test_rows;
    use crate::sinks::lake::staging::{
        SegmentWriter, StagingCompression, StagingDurability, sealed_file_name,
    };
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn rows(from: usize, n: usize) -> arrow_array::RecordBatch {
        let ids = (from..from + n).map(|i| format!("e:{i}"));
        test_rows(ids, 1_763_892_000_000 + from as i64, "api")
    }

    /// Segments staged either way (`staging_compression`) seal into one
    /// file.
    #[tokio::test]
    async fn segments_become_one_file_with_large_row_groups() {
        let lake = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(1_763_892_000_000, "api");
        let staging = lake.path().join("staging").join(key.path());
        let mut segments = Vec::new();
        for (seq, from, compression) in [
            (1u64, 0usize, StagingCompression::Lz4),
            (2, 3_000, StagingCompression::None),
        ] {
            let mut seg =
                SegmentWriter::create(&staging, seq, compression, StagingDurability::EachCommit)
                    .unwrap();
            for chunk in 0..3 {
                seg.append(&rows(from + chunk * 1_000, 1_000)).unwrap();
            }
            segments.push(seg.finish().unwrap());
        }
        let table_dir = lake.path().join("logs");
        let sealed = SealJob {
            key: key.clone(),
            segments: segments.clone(),
            table_dir: table_dir.clone(),
            name: sealed_file_name("0000abcd", 2),
            props: writer_properties(1, 4_096).unwrap(),
            publish: Publish::Local,
            dedup: None,
        }
        .run(WorkThreads::spawn("lake-seal-test", 1).unwrap())
        .await
        .unwrap();
        assert_eq!(sealed.rows, 6_000);
        assert_eq!(sealed.row_groups, 2, "4,096 + 1,904 rows");
        let path = table_dir
            .join(key.path())
            .join("part-0000abcd-0000000000000002.parquet");
        assert_eq!(sealed.location, path.display().to_string());
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 6_000);
        assert!(
            segments.iter().all(|s| !s.path.exists()),
            "segments removed"
        );
        // Nothing hidden left behind.
        let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["part-0000abcd-0000000000000002.parquet"]);
        let mut ids = sealed_ids(path.parent().unwrap());
        ids.sort_by_key(|id| id[2..].parse::<usize>().unwrap());
        let expected: Vec<String> = (0..6_000).map(|i| format!("e:{i}")).collect();
        assert_eq!(ids, expected);
    }

    /// Seals rows `ranges` (one segment each) of partition `key` as file
    /// number `seq`, with dedup against the index at `index`.
    pub(crate) async fn seal_with_dedup(
        lake: &Path,
        key: &PartitionKey,
        seq: u64,
        ranges: &[(usize, usize)],
        index: &Path,
    ) -> Sealed {
        let staging = lake.join("staging").join(key.path());
        let mut segments = Vec::new();
        for (i, (from, n)) in ranges.iter().enumerate() {
            let mut seg = SegmentWriter::create(
                &staging,
                seq * 100 + i as u64,
                StagingCompression::Lz4,
                StagingDurability::EachCommit,
            )
            .unwrap();
            seg.append(&rows(*from, *n)).unwrap();
            segments.push(seg.finish().unwrap());
        }
        SealJob {
            key: key.clone(),
            segments,
            table_dir: lake.join("logs"),
            name: sealed_file_name("0000abcd", seq * 100 + ranges.len() as u64),
            props: writer_properties(1, 4_096).unwrap(),
            publish: Publish::Local,
            dedup: Some(DedupSpec {
                index: index.to_path_buf(),
                check_files: true,
            }),
        }
        .run(WorkThreads::spawn("lake-seal-test", 1).unwrap())
        .await
        .unwrap()
    }

    fn sealed_ids(dir: &Path) -> Vec<String> {
        use arrow_array::Array;
        let mut ids = Vec::new();
        for name in crate::sinks::lake::dedup::sealed_files(dir).unwrap() {
            let file = File::open(dir.join(name)).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let col = crate::sinks::lake::dedup::event_ids(&batch).unwrap();
                ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
            }
        }
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn a_seal_drops_ids_already_in_its_partition_and_rebuilds_a_lost_index() {
        use crate::sinks::lake::dedup::{index_path, read_index};
        let lake = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(1_763_892_000_000, "api");
        let index = index_path(&lake.path().join("dedup"), &key);
        let dir = lake.path().join("logs").join(key.path());

        // Repeats inside one seal: the second segment replays ids 50..60.
        let first = seal_with_dedup(lake.path(), &key, 1, &[(0, 100), (50, 10)], &index).await;
        assert_eq!((first.rows, first.duplicates), (100, 10));
        assert_eq!(read_index(&index).unwrap().unwrap().fingerprints.len(), 100);

        // Against the sealed file: 90..100 are there already.
        let second = seal_with_dedup(lake.path(), &key, 2, &[(90, 20)], &index).await;
        assert_eq!((second.rows, second.duplicates), (10, 10));

        // The index is lost: rebuilt from the sealed files' event_id column.
        std::fs::remove_file(&index).unwrap();
        let third = seal_with_dedup(lake.path(), &key, 3, &[(105, 10)], &index).await;
        assert_eq!((third.rows, third.duplicates), (5, 5));

        // A crash after publishing and before the index write: the index is
        // behind (it lacks the third file), and is caught up from the file.
        let stale = read_index(&index).unwrap().unwrap();
        let mut behind = stale.clone();
        assert_eq!(behind.files.len(), 3);
        behind.files.pop(); // the third, newest by name
        behind.fingerprints = Vec::new();
        crate::sinks::lake::dedup::write_index(&index, &behind).unwrap();
        let fourth = seal_with_dedup(lake.path(), &key, 4, &[(0, 3), (112, 4)], &index).await;
        // 0..3 were in the first file, which the doctored index no longer
        // claims (it is trusted for the files it lists), 112..115 in the third.
        assert_eq!(fourth.duplicates, 3);

        // A seal that is all duplicates still publishes its (empty) file, whose
        // name recovery relies on.
        let fifth = seal_with_dedup(lake.path(), &key, 5, &[(110, 6)], &index).await;
        assert_eq!((fifth.rows, fifth.duplicates), (0, 6));

        let ids = sealed_ids(&dir);
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(
            ids.len(),
            116 + 3,
            "0..115, plus the three the doctored index forgot"
        );
        assert_eq!(unique.len(), 116);
    }

    #[tokio::test]
    async fn a_failed_seal_keeps_its_segments() {
        let lake = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(0, "api");
        let index = crate::sinks::lake::dedup::index_path(&lake.path().join("dedup"), &key);
        let staging = lake.path().join("staging").join(key.path());
        let mut seg = SegmentWriter::create(
            &staging,
            1,
            StagingCompression::Lz4,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&rows(0, 10)).unwrap();
        let closed = seg.finish().unwrap();
        let missing = ClosedSegment {
            seq: 2,
            path: staging.join("gone.arrows"),
            bytes: 0,
        };
        let result = SealJob {
            key: key.clone(),
            segments: vec![closed.clone(), missing],
            table_dir: lake.path().join("logs"),
            name: sealed_file_name("0000abcd", 2),
            props: writer_properties(1, 4_096).unwrap(),
            publish: Publish::Local,
            dedup: Some(DedupSpec {
                index: index.clone(),
                check_files: true,
            }),
        }
        .run(WorkThreads::spawn("lake-seal-test", 1).unwrap())
        .await;
        assert!(result.is_err());
        assert!(closed.path.exists());
        assert!(
            !index.exists(),
            "the index claims no id of an unpublished file"
        );
        let dir = lake.path().join("logs").join(key.path());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "temporary removed"
        );
    }
}
