//! What a lake writer does at start with what an earlier run (or its own
//! failed incarnation) left on disk.
//!
//! - **Scratch segments** (a batch job's, never fsynced, so possibly torn
//!   anywhere after an operating-system crash) are deleted at the process's
//!   start whatever the lake: the job that wrote them did not end, and is run
//!   again. A writer restarted within the process that wrote them (a failed
//!   incarnation) takes them as segments: they are intact, and its commits
//!   acknowledged them.
//! - **Local lake**: staged rows were acknowledged once fsynced, so they are
//!   kept: segments a sealed file already covers (a crash between the rename
//!   and the deletion) are deleted, a torn last message is cut off, and the
//!   rest is adopted, to be sealed as usual. Unfinished Parquet temporaries
//!   are removed (their seal runs again). Dead-letter files still open
//!   (`.name.ndjson.tmp`) were acknowledged too: their whole lines are kept
//!   and the file is published under its name.
//! - **S3 lake**: nothing staged was acknowledged (acks wait for the upload),
//!   so the sources redeliver it: staged segments, temporaries and open
//!   dead-letter files are deleted.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::LakeError;
use super::part_file::sync_dir;
use super::staging::{
    ClosedSegment, Coverage, StagedPartition, complete_prefix_len, covered_up_to, sealed_names_in,
};

/// What recovery did to one partition's staging.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovered {
    /// Segments kept, oldest first.
    pub kept: Vec<ClosedSegment>,
    /// Segments deleted (covered by a sealed file, or not acknowledged).
    pub deleted: usize,
    /// Bytes of torn messages cut off.
    pub truncated_bytes: u64,
}

/// Recovers one staged partition of a local lake whose sealed files of that
/// partition are in `sealed_dir`.
pub fn recover_local(
    staged: &StagedPartition,
    sealed_dir: &Path,
    scratch: ScratchLeftovers,
) -> Result<Recovered, LakeError> {
    remove_temporaries(sealed_dir)?;
    let covered = covered_up_to(
        sealed_names_in(sealed_dir)?.iter().map(String::as_str),
        &Coverage::AnyStager,
    );
    let mut out = Recovered::default();
    let mut segments: Vec<&ClosedSegment> = staged.segments.iter().collect();
    match scratch {
        ScratchLeftovers::Delete => out.deleted += remove_scratch(staged)?,
        ScratchLeftovers::Adopt => {
            segments.extend(&staged.scratch);
            segments.sort_by_key(|s| s.seq);
        }
    }
    for segment in segments {
        if covered.is_some_and(|hi| segment.seq <= hi) {
            remove(&segment.path)?;
            out.deleted += 1;
            continue;
        }
        let mut file = File::options()
            .read(true)
            .write(true)
            .open(&segment.path)
            .map_err(|e| LakeError::io("open", &segment.path, e))?;
        let whole = complete_prefix_len(&mut file, segment.bytes)
            .map_err(|e| LakeError::io("read", &segment.path, e))?;
        if whole < segment.bytes {
            file.set_len(whole)
                .and_then(|_| file.sync_all())
                .map_err(|e| LakeError::io("truncate", &segment.path, e))?;
            out.truncated_bytes += segment.bytes - whole;
        }
        if whole == 0 {
            // Not even the schema: nothing in it.
            drop(file);
            remove(&segment.path)?;
            out.deleted += 1;
            continue;
        }
        out.kept.push(ClosedSegment {
            seq: segment.seq,
            path: segment.path.clone(),
            bytes: whole,
        });
    }
    if out.deleted > 0 {
        sync_dir(&staged.dir)?;
    }
    Ok(out)
}

/// Deletes one staged partition of an S3 lake (none of it was acknowledged).
pub fn discard(staged: &StagedPartition, sealed_dir: &Path) -> Result<Recovered, LakeError> {
    remove_temporaries(sealed_dir)?;
    for segment in &staged.segments {
        remove(&segment.path)?;
    }
    Ok(Recovered {
        deleted: staged.segments.len() + remove_scratch(staged)?,
        ..Recovered::default()
    })
}

/// What recovery does with scratch segments ([`StagingDurability::Scratch`](super::StagingDurability::Scratch)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchLeftovers {
    /// Delete them: a process starts, and the batch job that wrote them did
    /// not end (after an operating-system crash they may be torn anywhere).
    Delete,
    /// Take them as segments: a writer of the process that wrote them
    /// restarts, and its earlier incarnation's commits acknowledged them.
    Adopt,
}

/// Deletes a partition's scratch segments; returns how many.
fn remove_scratch(staged: &StagedPartition) -> Result<usize, LakeError> {
    for segment in &staged.scratch {
        remove(&segment.path)?;
    }
    Ok(staged.scratch.len())
}

/// Removes unfinished Parquet temporaries (`.name.parquet.tmp`) in `dir`.
fn remove_temporaries(dir: &Path) -> Result<(), LakeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LakeError::io("list", dir, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".parquet.tmp") {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), LakeError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LakeError::io("remove", path, e)),
    }
}

/// Dead-letter files left open under `dead_letter_dir/dt=…/`: published
/// (whole lines kept) when `keep`, else deleted. Returns the published paths.
pub fn recover_dead_letters(dead_letter_dir: &Path, keep: bool) -> Result<Vec<PathBuf>, LakeError> {
    let mut published = Vec::new();
    let days = match std::fs::read_dir(dead_letter_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(published),
        Err(e) => return Err(LakeError::io("list", dead_letter_dir, e)),
    };
    for day in days.flatten().filter(|e| e.path().is_dir()) {
        let dir = day.path();
        let entries = std::fs::read_dir(&dir).map_err(|e| LakeError::io("list", &dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(final_name) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".tmp"))
                .filter(|n| n.ends_with(".ndjson"))
            else {
                continue;
            };
            let path = entry.path();
            if !keep {
                remove(&path)?;
                continue;
            }
            let whole = whole_lines_len(&path)?;
            if whole == 0 {
                remove(&path)?;
                continue;
            }
            let file = File::options()
                .write(true)
                .open(&path)
                .map_err(|e| LakeError::io("open", &path, e))?;
            file.set_len(whole)
                .and_then(|_| file.sync_all())
                .map_err(|e| LakeError::io("truncate", &path, e))?;
            let target = dir.join(final_name);
            std::fs::rename(&path, &target).map_err(|e| LakeError::io("rename", &path, e))?;
            sync_dir(&dir)?;
            published.push(target);
        }
    }
    Ok(published)
}

/// Bytes up to and including the last newline of a file.
fn whole_lines_len(path: &Path) -> Result<u64, LakeError> {
    let mut file = File::open(path).map_err(|e| LakeError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| LakeError::io("stat", path, e))?
        .len();
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(chunk))
            .map_err(|e| LakeError::io("read", path, e))?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::lake::partition::PartitionKey;
    use crate::sinks::lake::schema::test_rows;
    use crate::sinks::lake::staging::{
        SegmentWriter, StagingCompression, StagingDurability, list_staged, sealed_file_name,
    };

    fn one_row() -> arrow_array::RecordBatch {
        test_rows(["e:1".to_string()], 0, "s")
    }

    /// Segment `seq` in `dir` with one committed row.
    fn one_row_segment(dir: &Path, seq: u64, durability: StagingDurability) -> SegmentWriter {
        let mut seg = SegmentWriter::create(dir, seq, StagingCompression::Lz4, durability).unwrap();
        seg.append(&one_row()).unwrap();
        seg.commit().unwrap();
        seg
    }

    #[test]
    fn covered_segments_go_torn_tails_are_cut_and_the_rest_stays() {
        let lake = tempfile::tempdir().unwrap();
        let key = PartitionKey::of(0, "api");
        let staging = lake.path().join("staging");
        let dir = staging.join(key.path());
        for seq in [3u64, 5, 8] {
            let mut seg = one_row_segment(&dir, seq, StagingDurability::EachCommit);
            if seq == 8 {
                // Half a message after the synced part.
                let whole = seg.len();
                seg.append(&one_row()).unwrap();
                let torn = whole + (seg.len() - whole) / 2;
                drop(seg);
                let file = File::options()
                    .write(true)
                    .open(dir.join(crate::sinks::lake::staging::segment_name(8)))
                    .unwrap();
                file.set_len(torn).unwrap();
            }
        }
        let sealed = lake.path().join("logs").join(key.path());
        std::fs::create_dir_all(&sealed).unwrap();
        std::fs::write(sealed.join(sealed_file_name("0000beef", 5)), b"PAR1").unwrap();
        std::fs::write(sealed.join(".part-x.parquet.tmp"), b"half").unwrap();
        let staged = list_staged(&staging).unwrap();
        let recovered = recover_local(&staged[0], &sealed, ScratchLeftovers::Delete).unwrap();
        assert_eq!(recovered.deleted, 2, "3 and 5 are in the sealed file");
        assert_eq!(recovered.kept.len(), 1);
        assert_eq!(recovered.kept[0].seq, 8);
        assert!(recovered.truncated_bytes > 0);
        assert!(!sealed.join(".part-x.parquet.tmp").exists());
        let again = list_staged(&staging).unwrap();
        assert_eq!(again[0].segments.len(), 1);
        assert_eq!(again[0].segments[0].bytes, recovered.kept[0].bytes);
    }

    #[test]
    fn scratch_segments_of_a_batch_job_are_deleted_by_either_lake() {
        let lake = tempfile::tempdir().unwrap();
        let staging = lake.path().join("staging");
        let sealed = lake.path().join("logs");
        let (kept, scratch_only) = (PartitionKey::of(0, "api"), PartitionKey::of(0, "web"));
        one_row_segment(&staging.join(kept.path()), 1, StagingDurability::EachCommit);
        for (key, seq) in [(&kept, 2), (&scratch_only, 3)] {
            one_row_segment(&staging.join(key.path()), seq, StagingDurability::Scratch);
        }
        let staged = list_staged(&staging).unwrap();
        assert_eq!(staged.len(), 2, "a partition of scratch alone is listed");
        let recovered = recover_local(
            &staged[0],
            &sealed.join(kept.path()),
            ScratchLeftovers::Delete,
        )
        .unwrap();
        assert_eq!((recovered.deleted, recovered.kept.len()), (1, 1));
        assert_eq!(recovered.kept[0].seq, 1, "the fsynced segment stays");
        let discarded = discard(&staged[1], &sealed.join(scratch_only.path())).unwrap();
        assert_eq!(discarded.deleted, 1);
        let again = list_staged(&staging).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].key, kept);
        assert!(again[0].scratch.is_empty());
    }

    #[test]
    fn a_restarted_writer_adopts_its_own_scratch_segments_in_order() {
        let lake = tempfile::tempdir().unwrap();
        let staging = lake.path().join("staging");
        let key = PartitionKey::of(0, "api");
        let dir = staging.join(key.path());
        for (seq, durability) in [
            (4u64, StagingDurability::Scratch),
            (2, StagingDurability::EachCommit),
            (7, StagingDurability::Scratch),
        ] {
            let mut seg = one_row_segment(&dir, seq, durability);
            if seq == 7 {
                // Appended after the last commit: its batch failed.
                seg.append(&one_row()).unwrap();
                seg.abort();
            }
        }
        let staged = list_staged(&staging).unwrap();
        let sealed = lake.path().join("logs").join(key.path());
        let recovered = recover_local(&staged[0], &sealed, ScratchLeftovers::Adopt).unwrap();
        let seqs: Vec<u64> = recovered.kept.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [2, 4, 7]);
        assert_eq!(recovered.deleted, 0);
        let rows: usize = recovered
            .kept
            .iter()
            .map(|s| {
                let file = File::open(&s.path).unwrap();
                crate::sinks::lake::staging::read_segment(file, s.bytes, None, &s.path)
                    .unwrap()
                    .map(|b| b.unwrap().num_rows())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(rows, 3, "one committed row a segment, the aborted one cut");
    }

    #[test]
    fn open_dead_letter_files_keep_their_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("dt=2026-01-01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(
            day.join(".part-1.ndjson.tmp"),
            b"{\"a\":1}\n{\"b\":2}\n{\"c\"",
        )
        .unwrap();
        std::fs::write(day.join(".part-2.ndjson.tmp"), b"{\"torn").unwrap();
        std::fs::write(day.join("part-0.ndjson"), b"{}\n").unwrap();
        let published = recover_dead_letters(dir.path(), true).unwrap();
        assert_eq!(published, [day.join("part-1.ndjson")]);
        assert_eq!(
            std::fs::read_to_string(day.join("part-1.ndjson")).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        assert!(!day.join(".part-2.ndjson.tmp").exists());
        std::fs::write(day.join(".part-3.ndjson.tmp"), b"{}\n").unwrap();
        assert!(recover_dead_letters(dir.path(), false).unwrap().is_empty());
        assert!(!day.join(".part-3.ndjson.tmp").exists());
    }
}
