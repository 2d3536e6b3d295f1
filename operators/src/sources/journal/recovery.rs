//! Opening the journal after a clean stop or a crash: validate the segments,
//! keep a copy of damaged bytes and skip them, cut off a torn tail, drop
//! segments the checkpoint has passed.
//!
//! Damage never makes recovery drop the records after it: the scan
//! resynchronises at the next valid record ([`scan`](super::scan)). Each
//! damaged range is copied to the dead-letter area before anything else
//! happens to it, then logged and counted ([`damage`](super::damage)). Only a
//! torn tail — damage running to the end of the newest segment — is cut off,
//! since appends continue there; damage elsewhere stays in its segment and is
//! skipped by every read until the checkpoint passes the segment.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::path::Path;

use super::checkpoint;
use super::damage::{self, Damage, DamageKind};
use super::error::JournalError;
use super::scan::{SegmentReader, scan_segment};
use super::segment::{parse_segment_name, segment_path};

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
    /// (segment start, file offset) of every damaged range found and kept
    /// in place (already copied and reported).
    pub damaged: BTreeSet<(u64, u64)>,
}

/// The start positions of the segment files in `dir`, in order.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, JournalError> {
    let mut starts = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        if let Some(start) = entry.file_name().to_str().and_then(parse_segment_name) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// Whether the segment is wholly below the checkpoint (the next one starts at
/// or below it), so it is deleted without being read.
pub(super) fn obsolete(next_start: Option<u64>, checkpoint: u64) -> bool {
    next_start.is_some_and(|next| next <= checkpoint)
}

/// What a damaged range most likely is: damage running to the end of the
/// newest segment is a torn tail.
pub(super) fn kind_of(last_segment: bool, next_position: Option<u64>) -> DamageKind {
    if last_segment && next_position.is_none() {
        DamageKind::TornTail
    } else {
        DamageKind::Middle
    }
}

/// Recovers the journal in `dir` (which must exist); copies of damaged bytes
/// go to `dead_dir`.
pub(super) fn recover(dir: &Path, dead_dir: &Path) -> Result<Recovered, JournalError> {
    let checkpoint = checkpoint::load(dir)?;
    let starts = list_segments(dir)?;
    let mut segments = BTreeMap::new();
    let mut damaged = BTreeSet::new();
    let mut next_position = checkpoint;
    let mut dir_changed = false;
    for (i, &start) in starts.iter().enumerate() {
        let path = segment_path(dir, start);
        let next_start = starts.get(i + 1).copied();
        if obsolete(next_start, checkpoint) {
            let len = fs::metadata(&path).map_or(0, |m| m.len());
            segments.insert(start, len);
            continue;
        }
        let last = next_start.is_none();
        let mut reader = SegmentReader::open(&path, 0, start, None)
            .map_err(|e| JournalError::io("read", &path, e))?;
        let mut cut_at = None;
        let scan = scan_segment(
            &mut reader,
            start,
            |e| JournalError::io("read", &path, e),
            |range| {
                let damage = Damage {
                    segment: &path,
                    segment_start: start,
                    range,
                    kind: kind_of(last, range.next_position),
                    resume_position: range.next_position.or(next_start),
                    checkpoint,
                };
                let copy = damage::preserve(dead_dir, &damage).map_err(|e| {
                    JournalError::Corrupt(format!(
                        "{} bytes at offset {} of {} are damaged and cannot be copied to the dead-letter area, so they are not skipped: {e}",
                        range.bytes,
                        range.offset,
                        path.display()
                    ))
                })?;
                damage::report(&damage, &copy);
                if damage.kind == DamageKind::TornTail {
                    cut_at = Some(range.offset);
                } else {
                    damaged.insert((start, range.offset));
                }
                Ok(())
            },
        )?;
        let mut len = scan.len;
        if let Some(cut) = cut_at {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| JournalError::io("open", &path, e))?;
            file.set_len(cut)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io("truncate", &path, e))?;
            len = cut;
        }
        if let Some(next) = next_start
            && next < scan.end_position
        {
            return Err(JournalError::Corrupt(format!(
                "segment {} ends at position {} past the start of the next segment {next}",
                path.display(),
                scan.end_position
            )));
        }
        segments.insert(start, len);
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
    damaged.retain(|(start, _)| segments.contains_key(start));
    Ok(Recovered {
        checkpoint,
        segments,
        next_position,
        damaged,
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

    /// Recovers with copies going to `<dir>/dead`.
    fn recover(dir: &Path) -> Result<Recovered, JournalError> {
        super::recover(dir, &dir.join("dead"))
    }

    /// The copies in `<dir>/dead`, parsed.
    fn copies(dir: &Path) -> Vec<serde_json::Value> {
        let Ok(entries) = fs::read_dir(dir.join("dead")) else {
            return Vec::new();
        };
        let mut names: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = fs::read_to_string(p).unwrap();
                assert_eq!(text.lines().count(), 1, "{}", p.display());
                serde_json::from_str(&text).unwrap()
            })
            .collect()
    }

    fn raw(copy: &serde_json::Value) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(copy["raw_base64"].as_str().unwrap())
            .unwrap()
    }

    /// File offsets of the records of a segment written by `write_segment`.
    fn offsets(texts: &[&str]) -> Vec<u64> {
        let mut at = 0;
        texts
            .iter()
            .map(|t| {
                let o = at;
                at += (HEADER_LEN + t.len()) as u64;
                o
            })
            .collect()
    }

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
    fn a_torn_tail_is_cut_off_after_a_copy() {
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
        assert!(r.damaged.is_empty());
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
        let copies = copies(dir.path());
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0]["kind"], "torn_tail");
        assert_eq!(copies[0]["segment"], "00000000000000000000.seg");
        assert_eq!(copies[0]["offset"], good);
        assert_eq!(copies[0]["bytes"], HEADER_LEN + 3);
        assert_eq!(copies[0]["position"], end);
        assert_eq!(raw(&copies[0]), vec![0xAB; HEADER_LEN + 3]);
    }

    #[test]
    fn damage_in_the_middle_is_copied_and_skipped_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["one\n", "two\n", "three\n", "four\n"];
        let end = write_segment(dir.path(), 0, &texts);
        let at = offsets(&texts);
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        bytes[at[1] as usize + HEADER_LEN + 1] = b'W';
        fs::write(&path, &bytes).unwrap();
        for _ in 0..2 {
            let r = recover(dir.path()).unwrap();
            // Nothing is cut: the records after the damage are kept.
            assert_eq!(r.next_position, end);
            assert_eq!(r.segments, BTreeMap::from([(0, len)]));
            assert_eq!(r.damaged, BTreeSet::from([(0, at[1])]));
            assert_eq!(fs::read(&path).unwrap(), bytes);
            // One copy, however often the damage is found.
            let copies = copies(dir.path());
            assert_eq!(copies.len(), 1);
            let copy = &copies[0];
            assert_eq!(copy["kind"], "middle");
            assert_eq!(copy["source"], "journal");
            assert_eq!(copy["reason"], "journal: record checksum mismatch");
            assert_eq!(copy["offset"], at[1]);
            assert_eq!(copy["bytes"], at[2] - at[1]);
            assert_eq!(copy["position"], 4);
            assert_eq!(copy["end_position"], 8);
            assert_eq!(copy["record"]["lines"], 1);
            assert_eq!(raw(copy), &bytes[at[1] as usize..at[2] as usize]);
        }
    }

    #[test]
    fn damage_at_the_end_of_an_older_segment_resumes_at_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["aa\n", "bb\n"];
        let a_end = write_segment(dir.path(), 0, &texts);
        let b_end = write_segment(dir.path(), a_end, &["cc\n"]);
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let at = offsets(&texts)[1] as usize;
        bytes[at + 5] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.next_position, b_end);
        // Not the newest segment: not a torn tail, nothing cut.
        assert_eq!(fs::metadata(&path).unwrap().len(), bytes.len() as u64);
        let copies = copies(dir.path());
        assert_eq!(copies[0]["kind"], "middle");
        assert_eq!(copies[0]["end_position"], a_end);
    }

    #[test]
    fn damage_that_cannot_be_copied_stops_the_open_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 0, &["one\n", "two\n"]);
        let path = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + 1] ^= 1;
        bytes.truncate(bytes.len() - 2);
        fs::write(&path, &bytes).unwrap();
        // The dead-letter directory cannot be created: a file is in the way.
        fs::write(dir.path().join("dead"), b"").unwrap();
        let err = recover(dir.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot be copied to the dead-letter area"),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn segments_wholly_below_the_checkpoint_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let a_end = write_segment(dir.path(), 0, &["one\n"]);
        let b_end = write_segment(dir.path(), a_end, &["two\n"]);
        // Damage in a segment the sinks have committed wholly.
        fs::write(segment_path(dir.path(), 0), b"garbage").unwrap();
        checkpoint::save(dir.path(), a_end).unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.next_position, b_end);
        assert!(copies(dir.path()).is_empty());
        assert!(!segment_path(dir.path(), 0).exists());
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
