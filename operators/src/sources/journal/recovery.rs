//! Opening the journal after a clean stop or a crash: validate the segments,
//! cut off a torn tail, drop segments the checkpoint has passed.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::Path;

use super::checkpoint;
use super::error::JournalError;
use super::segment::{parse_segment_name, scan_segment, segment_path};

/// The state of the journal directory after recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovered {
    /// The saved checkpoint.
    pub checkpoint: u64,
    /// Start position → file bytes of every segment kept; the last one is
    /// where appends continue.
    pub segments: BTreeMap<u64, u64>,
    /// Position of the next record appended.
    pub next_position: u64,
}

/// Recovers the journal in `dir` (which must exist).
pub(super) fn recover(dir: &Path) -> Result<Recovered, JournalError> {
    let checkpoint = checkpoint::load(dir)?;
    let mut starts = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_segment_name) {
            starts.push(start);
        }
    }
    starts.sort_unstable();

    let mut segments = BTreeMap::new();
    let mut next_position = checkpoint;
    let mut dir_changed = false;
    for (i, &start) in starts.iter().enumerate() {
        let path = segment_path(dir, start);
        let scan = scan_segment(&path, start).map_err(|e| JournalError::io("read", &path, e))?;
        if let Some(why) = scan.invalid {
            let last = i + 1 == starts.len();
            let cut = scan.file_len - scan.valid_len;
            if last {
                tracing::warn!(path = %path.display(), offset = scan.valid_len, bytes = cut, why,
                    "journal: cutting off a torn tail (a crash during an append that was never acknowledged)");
            } else {
                tracing::error!(path = %path.display(), offset = scan.valid_len, bytes = cut, why,
                    "journal: corrupt records inside an older segment are lost");
            }
            metrics::counter!("spate_journal_torn_records_total").increment(1);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| JournalError::io("open", &path, e))?;
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io("truncate", &path, e))?;
        }
        if let Some(&next) = starts.get(i + 1)
            && next < scan.end_position
        {
            return Err(JournalError::Corrupt(format!(
                "segment {} ends at position {} past the start of the next segment {next}",
                path.display(),
                scan.end_position
            )));
        }
        segments.insert(start, scan.valid_len);
        next_position = scan.end_position;
    }

    if segments.is_empty() || next_position < checkpoint {
        if !segments.is_empty() {
            tracing::warn!(
                end = next_position,
                checkpoint,
                "journal: the checkpoint is past the end of the journal; continuing at the checkpoint"
            );
        }
        let path = segment_path(dir, checkpoint);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::io("create", &path, e))?;
        segments.insert(checkpoint, 0);
        next_position = checkpoint;
        dir_changed = true;
    }

    dir_changed |= delete_below(dir, &mut segments, checkpoint)?.0 > 0;
    if dir_changed {
        checkpoint::sync_dir(dir)?;
    }
    Ok(Recovered {
        checkpoint,
        segments,
        next_position,
    })
}

/// Deletes every segment wholly below `checkpoint` (a later segment starts at
/// or below it); the last segment always stays. Returns the number of segments
/// and bytes deleted.
pub(super) fn delete_below(
    dir: &Path,
    segments: &mut BTreeMap<u64, u64>,
    checkpoint: u64,
) -> Result<(usize, u64), JournalError> {
    let starts: Vec<u64> = segments.keys().copied().collect();
    let mut deleted = (0, 0);
    for pair in starts.windows(2) {
        let (start, next) = (pair[0], pair[1]);
        if next > checkpoint {
            break;
        }
        let path = segment_path(dir, start);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(JournalError::io("remove", &path, e)),
        }
        deleted.0 += 1;
        deleted.1 += segments.remove(&start).unwrap_or(0);
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::journal::segment::{HEADER_LEN, JournalRecord, encode};

    fn write_segment(dir: &Path, start: u64, texts: &[&str]) -> u64 {
        let mut buf = Vec::new();
        let mut position = start;
        for t in texts {
            let record = JournalRecord::lines(t.as_bytes().to_vec(), 1);
            position += encode(&mut buf, position, &record).unwrap();
        }
        fs::write(segment_path(dir, start), &buf).unwrap();
        position
    }

    #[test]
    fn an_empty_directory_starts_a_segment_at_zero() {
        let dir = tempfile::tempdir().unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.checkpoint, 0);
        assert_eq!(r.next_position, 0);
        assert_eq!(r.segments, BTreeMap::from([(0, 0)]));
        assert!(segment_path(dir.path(), 0).exists());
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let end = write_segment(dir.path(), 0, &["a\n", "b\n"]);
        let path = segment_path(dir.path(), 0);
        let good = fs::metadata(&path).unwrap().len();
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0xAB; HEADER_LEN + 3]);
        fs::write(&path, &bytes).unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.next_position, end);
        assert_eq!(r.segments, BTreeMap::from([(0, good)]));
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
    }

    #[test]
    fn segments_below_the_checkpoint_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let a_end = write_segment(dir.path(), 0, &["one\n", "two\n"]);
        let b_end = write_segment(dir.path(), a_end, &["three\n"]);
        let c_end = write_segment(dir.path(), b_end, &["four\n"]);
        // The checkpoint is inside the third segment: the first two go.
        checkpoint::save(dir.path(), b_end + 1).unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.segments.keys().copied().collect::<Vec<_>>(), vec![b_end]);
        assert_eq!(r.next_position, c_end);
        assert!(!segment_path(dir.path(), 0).exists());
        assert!(!segment_path(dir.path(), a_end).exists());
    }

    #[test]
    fn a_checkpoint_past_the_end_continues_there() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 0, &["one\n"]);
        checkpoint::save(dir.path(), 100).unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.next_position, 100);
        assert_eq!(r.segments, BTreeMap::from([(100, 0)]));
    }

    #[test]
    fn overlapping_segments_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 0, &["one\n", "two\n"]);
        write_segment(dir.path(), 4, &["three\n"]);
        let err = recover(dir.path()).unwrap_err();
        assert!(matches!(err, JournalError::Corrupt(_)), "{err}");
    }
}
