//! Inspecting a journal without changing it (`spate journal check`), and
//! decoding a segment image in memory (tools, fuzzing).
//!
//! ```
//! use spate_operators::sources::journal::{Journal, JournalConfig, JournalRecord, check};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let data = tempfile::tempdir().unwrap();
//! let dir = data.path().join("journal");
//! let journal = Journal::open(&JournalConfig::default(), &dir).unwrap();
//! journal.writer().append(vec![JournalRecord::lines(&b"one\ntwo\n"[..], 2)]).await.unwrap();
//! journal.close();
//! let report = check(&dir, &data.path().join("deadletter/journal")).unwrap();
//! assert!(report.is_clean());
//! assert_eq!((report.records, report.end_position), (1, 8));
//! # }
//! ```

use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::checkpoint;
use super::damage::{self, Damage, DamageKind};
use super::error::JournalError;
use super::recovery::{kind_of, list_segments, obsolete};
use super::scan::{DamagedRange, NextRecord, Payload, SegmentBytes, SegmentReader, scan_segment};
use super::segment::{segment_name, segment_path};
use crate::sources::ChunkFormat;

/// Damaged ranges listed per segment; more are counted, not listed.
const MAX_LISTED: usize = 1000;

/// What [`check`] found in a journal directory.
#[derive(Debug, Clone, Serialize)]
pub struct JournalCheck {
    /// The journal directory.
    pub dir: PathBuf,
    /// Where recovery copies damaged bytes.
    pub dead_letter_dir: PathBuf,
    /// The saved checkpoint: every position below it is committed.
    pub checkpoint: u64,
    /// Position after the last valid record.
    pub end_position: u64,
    /// Valid records in the segments read.
    pub records: u64,
    /// Damaged ranges.
    pub damaged_ranges: u64,
    /// Damaged bytes.
    pub damaged_bytes: u64,
    /// Damaged ranges holding positions the checkpoint has not passed: their
    /// events were not all committed by the sinks before the damage.
    pub uncommitted_ranges: u64,
    /// Every segment, oldest first.
    pub segments: Vec<SegmentCheck>,
}

impl JournalCheck {
    /// True when no segment has damaged bytes.
    pub fn is_clean(&self) -> bool {
        self.damaged_ranges == 0
    }

    /// True when some damaged range holds positions not yet committed (what
    /// `spate journal check` exits non-zero for): the next start copies and
    /// skips them, and their events are lost unless recovered from the copy.
    /// Damage the checkpoint has passed was handled (or never mattered).
    pub fn needs_attention(&self) -> bool {
        self.uncommitted_ranges > 0
    }
}

/// One segment file.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentCheck {
    /// File name.
    pub name: String,
    /// Position of its first record (from the name).
    pub start: u64,
    /// File size.
    pub bytes: u64,
    /// Wholly below the checkpoint: not read; deleted at the next start.
    pub obsolete: bool,
    /// Valid records.
    pub records: u64,
    /// Of which in the pre-v1 format.
    pub v0_records: u64,
    /// Position after its last valid record.
    pub end_position: u64,
    /// Damaged ranges.
    pub damaged_ranges: u64,
    /// Damaged bytes.
    pub damaged_bytes: u64,
    /// The damaged ranges (the first 1,000).
    pub damaged: Vec<DamageCheck>,
}

/// One damaged range and what recovery makes of it.
#[derive(Debug, Clone, Serialize)]
pub struct DamageCheck {
    /// Where and why.
    #[serde(flatten)]
    pub range: DamagedRange,
    /// Torn tail (cut at the next start) or damage in the middle (skipped).
    pub kind: DamageKind,
    /// Position where valid records resume, when known.
    pub resume_position: Option<u64>,
    /// True when the checkpoint is past every position it held (nothing lost).
    pub committed: bool,
    /// The copy in the dead-letter area, when one is there already.
    pub copy: Option<PathBuf>,
}

/// Reads every segment of the journal in `dir` that recovery would read and
/// reports records and damaged ranges; changes nothing. `dead_letter_dir` is
/// where copies would be (see [`dead_letter_dir`](super::dead_letter_dir)).
pub fn check(dir: &Path, dead_letter_dir: &Path) -> Result<JournalCheck, JournalError> {
    if !dir.is_dir() {
        return Err(JournalError::io(
            "read",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no journal directory"),
        ));
    }
    let checkpoint = checkpoint::peek(dir)?;
    let starts = list_segments(dir)?;
    let mut report = JournalCheck {
        dir: dir.to_path_buf(),
        dead_letter_dir: dead_letter_dir.to_path_buf(),
        checkpoint,
        end_position: checkpoint,
        records: 0,
        damaged_ranges: 0,
        damaged_bytes: 0,
        uncommitted_ranges: 0,
        segments: Vec::with_capacity(starts.len()),
    };
    for (i, &start) in starts.iter().enumerate() {
        let path = segment_path(dir, start);
        let next_start = starts.get(i + 1).copied();
        let io = |e| JournalError::io("read", &path, e);
        let bytes = std::fs::metadata(&path).map_err(io)?.len();
        let mut segment = SegmentCheck {
            name: segment_name(start),
            start,
            bytes,
            obsolete: obsolete(next_start, checkpoint),
            records: 0,
            v0_records: 0,
            end_position: start,
            damaged_ranges: 0,
            damaged_bytes: 0,
            damaged: Vec::new(),
        };
        if !segment.obsolete {
            let mut reader = SegmentReader::open(&path, 0, start, None).map_err(io)?;
            let mut listed = Vec::new();
            let mut uncommitted = 0;
            let scan = scan_segment(&mut reader, start, io, |range| {
                let damage = Damage {
                    segment: &path,
                    segment_start: start,
                    range,
                    kind: kind_of(next_start.is_none(), range.next_position),
                    resume_position: range.next_position.or(next_start),
                    checkpoint,
                };
                uncommitted += u64::from(!damage.committed());
                if listed.len() < MAX_LISTED {
                    let copy = damage::copy_path(dead_letter_dir, &damage)?;
                    listed.push(DamageCheck {
                        range: range.clone(),
                        kind: damage.kind,
                        resume_position: damage.resume_position,
                        committed: damage.committed(),
                        copy: copy.exists().then_some(copy),
                    });
                }
                Ok(())
            })?;
            segment.records = scan.records;
            segment.v0_records = scan.v0_records;
            segment.end_position = scan.end_position;
            segment.damaged_ranges = scan.damaged;
            segment.damaged_bytes = scan.damaged_bytes;
            segment.damaged = listed;
            report.records += scan.records;
            report.damaged_ranges += scan.damaged;
            report.damaged_bytes += scan.damaged_bytes;
            report.uncommitted_ranges += uncommitted;
            report.end_position = scan.end_position.max(checkpoint);
        }
        report.segments.push(segment);
    }
    Ok(report)
}

/// A segment image decoded in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedSegment {
    /// The valid records, in order.
    pub records: Vec<DecodedRecord>,
    /// The damaged ranges, in order.
    pub damaged: Vec<DamagedRange>,
    /// Position after the last valid record.
    pub end_position: u64,
}

/// One valid record of a [`DecodedSegment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// File offset of its header.
    pub offset: u64,
    /// Bytes it takes in the file (header and payload).
    pub record_bytes: u64,
    /// Its logical position.
    pub position: u64,
    /// Lines or a CloudWatch payload.
    pub format: ChunkFormat,
    /// Lines (events) it holds.
    pub lines: u32,
    /// The payload as stored (starting with the id key, if any).
    pub payload: Vec<u8>,
    /// The id key (see [`super::JournalRecord::key`]).
    pub key: Option<String>,
}

/// Decodes the image of a segment whose first record is at position `start`,
/// as recovery reads it: every valid record, and the damaged ranges between.
/// Memory stays within the image's size plus one read window.
///
/// ```
/// let decoded = spate_operators::sources::journal::decode_segment(b"not a segment", 0);
/// assert!(decoded.records.is_empty());
/// assert_eq!(decoded.damaged[0].bytes, 13);
/// ```
pub fn decode_segment(image: &[u8], start: u64) -> DecodedSegment {
    let bytes = SegmentBytes::new(Cursor::new(image), image.len() as u64);
    let mut reader = SegmentReader::new(bytes, 0, start);
    let mut decoded = DecodedSegment {
        end_position: start,
        ..DecodedSegment::default()
    };
    loop {
        let offset = reader.offset();
        // Reading from memory cannot fail.
        match reader.next(Payload::Load) {
            Ok(NextRecord::Record(h, payload)) => {
                decoded.end_position = h.end();
                let key = h
                    .split_key(&payload)
                    .0
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                decoded.records.push(DecodedRecord {
                    offset,
                    record_bytes: h.record_len(),
                    position: h.position,
                    format: h.format,
                    lines: h.lines,
                    payload,
                    key,
                });
            }
            Ok(NextRecord::Damaged(range)) => decoded.damaged.push(range),
            Ok(NextRecord::End) | Err(_) => return decoded,
        }
    }
}
