//! The on-disk record format and segment files.
//!
//! A segment file `<start>.seg` (`start` zero-padded to 20 digits) holds the
//! records whose logical positions begin at `start`, back to back:
//!
//! ```text
//! offset  size  field
//!      0     4  payload length, u32 little-endian
//!      4     4  CRC32 of bytes 8.. of the header and of the payload, u32 LE
//!      8     8  logical position, u64 LE (payload bytes of every earlier record)
//!     16     8  ingest time, UTC milliseconds, i64 LE
//!     24     4  number of lines, u32 LE
//!     28     1  format: 0 lines, 1 CloudWatch Logs payload
//!     29     …  payload
//! ```
//!
//! A record is valid when its whole payload is present, its CRC checks and its
//! position is the one expected after the record before it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::JournalError;
use crate::sources::ChunkFormat;

/// Bytes of a record header.
pub(super) const HEADER_LEN: usize = 29;

/// File name suffix of segments.
const SEGMENT_SUFFIX: &str = ".seg";

/// One appended unit: a request's lines, or one CloudWatch Logs payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRecord {
    /// How the payload is framed. [`ChunkFormat::Lines`] records are coalesced
    /// with their neighbours into pipeline chunks; CloudWatch payloads never are.
    pub format: ChunkFormat,
    /// When the request was received, UTC milliseconds.
    pub ingest_ts_ms: i64,
    /// Number of lines (events, for metrics).
    pub lines: usize,
    /// The payload. Lines must end with `\n`; the writer adds one if missing.
    pub bytes: Bytes,
}

impl JournalRecord {
    /// A record of newline-delimited lines received now.
    pub fn lines(bytes: impl Into<Bytes>, lines: usize) -> Self {
        JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: crate::event::wall_clock_ms(),
            lines,
            bytes: bytes.into(),
        }
    }

    /// A record holding one CloudWatch Logs subscription payload received now.
    pub fn cloudwatch(bytes: impl Into<Bytes>, events: usize) -> Self {
        JournalRecord {
            format: ChunkFormat::CloudWatchPayload,
            ingest_ts_ms: crate::event::wall_clock_ms(),
            lines: events,
            bytes: bytes.into(),
        }
    }

    /// Payload bytes as stored: lines get a final `\n` if they lack one.
    pub(super) fn stored_len(&self) -> u64 {
        let missing_newline = self.format == ChunkFormat::Lines && !self.bytes.ends_with(b"\n");
        self.bytes.len() as u64 + u64::from(missing_newline)
    }
}

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub position: u64,
    pub ingest_ts_ms: i64,
    pub lines: u32,
    pub format: ChunkFormat,
}

impl RecordHeader {
    /// Parses a header; `None` when the format byte is unknown.
    fn parse(raw: &[u8; HEADER_LEN]) -> Option<Self> {
        let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or_default());
        let format = match raw[28] {
            0 => ChunkFormat::Lines,
            1 => ChunkFormat::CloudWatchPayload,
            _ => return None,
        };
        Some(RecordHeader {
            len: u32_at(0),
            crc: u32_at(4),
            position: u64_at(8),
            ingest_ts_ms: u64_at(16) as i64,
            lines: u32_at(24),
            format,
        })
    }

    /// Position after this record.
    pub fn end(&self) -> u64 {
        self.position + u64::from(self.len)
    }
}

/// Appends the framed `record` at logical `position` to `out`; returns the
/// payload length stored.
pub(super) fn encode(
    out: &mut Vec<u8>,
    position: u64,
    record: &JournalRecord,
) -> Result<u64, JournalError> {
    let stored = record.stored_len();
    let len = u32::try_from(stored).map_err(|_| JournalError::RecordTooLarge {
        bytes: record.bytes.len(),
    })?;
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&record.ingest_ts_ms.to_le_bytes());
    let lines = u32::try_from(record.lines).unwrap_or(u32::MAX);
    out.extend_from_slice(&lines.to_le_bytes());
    out.push(match record.format {
        ChunkFormat::Lines => 0,
        ChunkFormat::CloudWatchPayload => 1,
    });
    out.extend_from_slice(&record.bytes);
    if stored > record.bytes.len() as u64 {
        out.push(b'\n');
    }
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(stored)
}

/// Path of the segment starting at `start`.
pub(super) fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}{SEGMENT_SUFFIX}"))
}

/// The start position a segment file name encodes, `None` for other files.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why reading a record stopped.
#[derive(Debug)]
pub(super) enum NextRecord {
    /// A valid record.
    Record(RecordHeader, Vec<u8>),
    /// The end of the file, exactly at a record boundary.
    End,
    /// Bytes that are not a valid record (torn write or corruption).
    Invalid(&'static str),
}

/// Sequential reader of a segment's records from a given file offset.
pub(super) struct SegmentReader {
    file: BufReader<File>,
    /// File offset of the next record.
    offset: u64,
    /// File length when opened.
    file_len: u64,
    /// Position the next record must carry.
    expected: u64,
}

impl SegmentReader {
    /// Opens `path` at file `offset`, where the record at `position` begins.
    pub fn open(path: &Path, offset: u64, position: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let mut file = BufReader::with_capacity(256 * 1024, file);
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentReader {
            file,
            offset,
            file_len,
            expected: position,
        })
    }

    /// File offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Position of the next record.
    pub fn position(&self) -> u64 {
        self.expected
    }

    /// Reads the next header without consuming it.
    pub fn peek_header(&mut self) -> io::Result<Result<Option<RecordHeader>, &'static str>> {
        let remaining = self.file_len.saturating_sub(self.offset);
        if remaining == 0 {
            return Ok(Ok(None));
        }
        if remaining < HEADER_LEN as u64 {
            return Ok(Err("partial record header"));
        }
        let mut raw = [0u8; HEADER_LEN];
        self.file.read_exact(&mut raw)?;
        self.file.seek_relative(-(HEADER_LEN as i64))?;
        let Some(header) = RecordHeader::parse(&raw) else {
            return Ok(Err("unknown record format"));
        };
        if header.position != self.expected {
            return Ok(Err("record position out of sequence"));
        }
        if u64::from(header.len) > remaining - HEADER_LEN as u64 {
            return Ok(Err("partial record payload"));
        }
        Ok(Ok(Some(header)))
    }

    /// Reads the next record (`load_payload` false skips the payload and its
    /// CRC check, for seeking).
    pub fn next(&mut self, load_payload: bool) -> io::Result<NextRecord> {
        let header = match self.peek_header()? {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(NextRecord::End),
            Err(why) => return Ok(NextRecord::Invalid(why)),
        };
        let mut raw = [0u8; HEADER_LEN];
        let payload = if load_payload {
            self.file.read_exact(&mut raw)?;
            let mut payload = vec![0u8; header.len as usize];
            self.file.read_exact(&mut payload)?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&raw[8..]);
            crc.update(&payload);
            if crc.finalize() != header.crc {
                self.file.seek(SeekFrom::Start(self.offset))?;
                return Ok(NextRecord::Invalid("record checksum mismatch"));
            }
            payload
        } else {
            self.file
                .seek_relative(HEADER_LEN as i64 + i64::from(header.len))?;
            Vec::new()
        };
        self.offset += HEADER_LEN as u64 + u64::from(header.len);
        self.expected = header.end();
        Ok(NextRecord::Record(header, payload))
    }
}

/// What a full scan of a segment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentScan {
    /// File offset after the last valid record.
    pub valid_len: u64,
    /// Position after the last valid record.
    pub end_position: u64,
    /// The file length (more than `valid_len` when the tail is invalid).
    pub file_len: u64,
    /// Why the bytes after `valid_len` are invalid, if there are any.
    pub invalid: Option<&'static str>,
}

/// Validates every record of the segment at `path` that starts at `start`.
pub(super) fn scan_segment(path: &Path, start: u64) -> io::Result<SegmentScan> {
    let mut reader = SegmentReader::open(path, 0, start)?;
    loop {
        match reader.next(true)? {
            NextRecord::Record(..) => {}
            NextRecord::End => {
                return Ok(SegmentScan {
                    valid_len: reader.offset(),
                    end_position: reader.position(),
                    file_len: reader.file_len,
                    invalid: None,
                });
            }
            NextRecord::Invalid(why) => {
                return Ok(SegmentScan {
                    valid_len: reader.offset(),
                    end_position: reader.position(),
                    file_len: reader.file_len,
                    invalid: Some(why),
                });
            }
        }
    }
}

/// Opens a reader at the first record of the segment (starting at `start`)
/// whose position is at least `position`, or at its end.
pub(super) fn seek_position(
    path: &Path,
    start: u64,
    position: u64,
) -> io::Result<Result<SegmentReader, &'static str>> {
    let mut reader = SegmentReader::open(path, 0, start)?;
    while reader.position() < position {
        match reader.next(false)? {
            NextRecord::Record(..) => {}
            NextRecord::End => break,
            NextRecord::Invalid(why) => return Ok(Err(why)),
        }
    }
    let (offset, at) = (reader.offset(), reader.position());
    Ok(Ok(SegmentReader::open(path, offset, at)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_segment(path: &Path, start: u64, records: &[JournalRecord]) -> u64 {
        let mut buf = Vec::new();
        let mut position = start;
        for r in records {
            position += encode(&mut buf, position, r).unwrap();
        }
        std::fs::write(path, &buf).unwrap();
        position
    }

    fn rec(text: &str) -> JournalRecord {
        JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: 7,
            lines: 1,
            bytes: Bytes::copy_from_slice(text.as_bytes()),
        }
    }

    #[test]
    fn records_round_trip_and_lines_get_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 100);
        let mut cw = rec("gzip");
        cw.format = ChunkFormat::CloudWatchPayload;
        let end = write_segment(&path, 100, &[rec("a\n"), rec("bc"), cw]);
        assert_eq!(end, 100 + 2 + 3 + 4);
        let mut reader = SegmentReader::open(&path, 0, 100).unwrap();
        let mut seen = Vec::new();
        while let NextRecord::Record(h, payload) = reader.next(true).unwrap() {
            seen.push((h.position, h.format, h.ingest_ts_ms, payload));
        }
        assert_eq!(
            seen,
            vec![
                (100, ChunkFormat::Lines, 7, b"a\n".to_vec()),
                (102, ChunkFormat::Lines, 7, b"bc\n".to_vec()),
                (105, ChunkFormat::CloudWatchPayload, 7, b"gzip".to_vec()),
            ]
        );
        assert!(matches!(reader.next(true).unwrap(), NextRecord::End));
    }

    #[test]
    fn scan_finds_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let end = write_segment(&path, 0, &[rec("one\n"), rec("two\n")]);
        let good = std::fs::metadata(&path).unwrap().len();
        // Half a record: a header promising more payload than there is.
        let mut half = Vec::new();
        encode(&mut half, end, &rec("three\n")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&half[..HEADER_LEN + 2]).unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(scan.valid_len, good);
        assert_eq!(scan.end_position, end);
        assert_eq!(scan.invalid, Some("partial record payload"));
    }

    #[test]
    fn scan_detects_flipped_bits_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        write_segment(&path, 0, &[rec("one\n"), rec("two\n")]);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(scan.valid_len, (HEADER_LEN + 4) as u64);
        assert_eq!(scan.end_position, 4);
        assert_eq!(scan.invalid, Some("record checksum mismatch"));

        std::fs::write(&path, b"garbage that is not a record at all").unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(scan.valid_len, 0);
        assert!(scan.invalid.is_some());
    }

    #[test]
    fn seek_skips_to_the_first_record_at_or_after_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 10);
        write_segment(&path, 10, &[rec("aa\n"), rec("bbb\n"), rec("c\n")]);
        let mut reader = seek_position(&path, 10, 13).unwrap().unwrap();
        assert_eq!(reader.position(), 13);
        match reader.next(true).unwrap() {
            NextRecord::Record(h, payload) => {
                assert_eq!(h.position, 13);
                assert_eq!(payload, b"bbb\n");
            }
            other => panic!("unexpected {other:?}"),
        }
        let at_end = seek_position(&path, 10, 19).unwrap().unwrap();
        assert_eq!(at_end.position(), 19);
    }

    #[test]
    fn segment_names_round_trip() {
        let path = segment_path(Path::new("/j"), 42);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000000042.seg");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("checkpoint"), None);
        assert_eq!(parse_segment_name("42.seg"), None);
    }
}
