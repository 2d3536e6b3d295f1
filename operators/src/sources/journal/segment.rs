//! The on-disk record format and segment files.
//!
//! A segment file `<start>.seg` (`start` zero-padded to 20 digits) holds the
//! records whose logical positions begin at `start`, back to back. Records are
//! written in format v1:
//!
//! ```text
//! offset  size  field
//!      0     4  magic F7 4A 52 31 ("\xF7JR1"; 0xF7 never occurs in UTF-8 text)
//!      4     4  payload length, u32 little-endian
//!      8     8  logical position, u64 LE (payload bytes of every earlier record)
//!     16     8  ingest time, UTC milliseconds, i64 LE
//!     24     4  number of lines, u32 LE
//!     28     1  format: 0 lines, 1 CloudWatch Logs payload
//!     29     2  id key length, u16 LE (0: none)
//!     31     1  zero
//!     32     4  CRC32 of the payload, u32 LE
//!     36     4  CRC32 of header bytes 0..36, u32 LE
//!     40     …  payload: the id key (that many bytes), then the record's bytes
//! ```
//!
//! The id key is the push's `Idempotency-Key` (see [`JournalRecord::key`]);
//! it counts in the payload length, so in the logical positions. Records
//! written before it existed have zeros there (no key). A process older than
//! the id key would read a keyed record's key as the start of its first line.
//!
//! The header has its own checksum, so a record whose payload is damaged
//! still tells where it ends and which positions it held, and the magic lets a
//! reader find the next record after bytes that are not one
//! ([`scan`](super::scan)).
//!
//! Segments written before v1 hold v0 records, which are still read (a
//! segment may hold v0 records followed by v1 ones: the first appends of an
//! upgraded process go to the segment that was active):
//!
//! ```text
//! offset  size  field
//!      0     4  payload length, u32 LE (never the v1 magic: that would be 827 MB)
//!      4     4  CRC32 of bytes 8.. of the header and of the payload, u32 LE
//!      8     8  logical position, u64 LE
//!     16     8  ingest time, UTC milliseconds, i64 LE
//!     24     4  number of lines, u32 LE
//!     28     1  format
//!     29     …  payload
//! ```
//!
//! A record is valid when its whole payload is present, its checksums check
//! and its position is the one expected after the record before it.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use bytes::Bytes;

use super::error::JournalError;
use crate::sources::ChunkFormat;

/// Bytes of a record header (format v1, the one written).
pub(super) const HEADER_LEN: usize = 40;

/// Bytes of a format v0 record header.
pub(super) const V0_HEADER_LEN: usize = 29;

/// The first bytes of every v1 record.
pub(super) const MAGIC: [u8; 4] = [0xF7, b'J', b'R', b'1'];

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
    /// The id key: the record's events get ids from it instead of from their
    /// journal positions (`http:<key>:<offset in the record>`), so the same
    /// record appended again (a client's retry after a lost answer, even
    /// after a restart) gets the same ids. At most 65,535 bytes.
    pub key: Option<Arc<str>>,
}

impl JournalRecord {
    /// A record of newline-delimited lines received now.
    pub fn lines(bytes: impl Into<Bytes>, lines: usize) -> Self {
        JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: crate::event::wall_clock_ms(),
            lines,
            bytes: bytes.into(),
            key: None,
        }
    }

    /// The record with the id key `key`.
    pub fn with_key(mut self, key: Option<Arc<str>>) -> Self {
        self.key = key;
        self
    }

    /// Bytes of the id key.
    pub(super) fn key_len(&self) -> usize {
        self.key.as_deref().map_or(0, str::len)
    }

    /// A record holding one CloudWatch Logs subscription payload received now.
    pub fn cloudwatch(bytes: impl Into<Bytes>, events: usize) -> Self {
        JournalRecord {
            format: ChunkFormat::CloudWatchPayload,
            ingest_ts_ms: crate::event::wall_clock_ms(),
            lines: events,
            bytes: bytes.into(),
            key: None,
        }
    }

    /// Payload bytes as stored: the id key, then the bytes; lines get a
    /// final `\n` if they lack one.
    pub(super) fn stored_len(&self) -> u64 {
        let missing_newline = self.format == ChunkFormat::Lines && !self.bytes.ends_with(b"\n");
        (self.key_len() + self.bytes.len()) as u64 + u64::from(missing_newline)
    }
}

/// The record formats a segment may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// Written before the header had its own checksum (read only).
    V0,
    /// Magic, header checksum and payload checksum.
    V1,
}

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub version: Version,
    pub len: u32,
    pub position: u64,
    pub ingest_ts_ms: i64,
    pub lines: u32,
    pub format: ChunkFormat,
    /// Bytes of the id key at the start of the payload (v0: none).
    pub key_len: u16,
    /// The CRC32 the payload must have, continued from `checksum_seed`.
    pub checksum: u32,
    /// v0: the CRC32 of header bytes 8..29 (the v0 checksum covers them and
    /// the payload); v1: 0.
    pub checksum_seed: u32,
}

/// What the bytes at an offset hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderParse {
    /// A header: checked by its own CRC (v1), or merely well-formed (v0,
    /// whose checksum covers the payload too).
    Header(RecordHeader),
    /// Fewer bytes than a header.
    Short,
    /// Not a header.
    Invalid(&'static str),
}

fn u32_at(raw: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]])
}

fn u64_at(raw: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&raw[i..i + 8]);
    u64::from_le_bytes(b)
}

fn format_of(byte: u8) -> Option<ChunkFormat> {
    match byte {
        0 => Some(ChunkFormat::Lines),
        1 => Some(ChunkFormat::CloudWatchPayload),
        2 => Some(ChunkFormat::Compressed),
        _ => None,
    }
}

impl RecordHeader {
    /// Parses the header at the start of `raw` (which may hold more bytes).
    pub fn parse(raw: &[u8]) -> HeaderParse {
        if raw.len() >= MAGIC.len() && raw[..MAGIC.len()] == MAGIC {
            return Self::parse_v1(raw);
        }
        Self::parse_v0(raw)
    }

    /// Parses a v1 header: magic and header CRC.
    pub fn parse_v1(raw: &[u8]) -> HeaderParse {
        if raw.len() < HEADER_LEN {
            return HeaderParse::Short;
        }
        if raw[..MAGIC.len()] != MAGIC {
            return HeaderParse::Invalid("no record magic");
        }
        if crc32fast::hash(&raw[..36]) != u32_at(raw, 36) {
            return HeaderParse::Invalid("record header checksum mismatch");
        }
        let Some(format) = format_of(raw[28]) else {
            return HeaderParse::Invalid("unknown record format");
        };
        let len = u32_at(raw, 4);
        let key_len = u16::from_le_bytes([raw[29], raw[30]]);
        if u32::from(key_len) > len {
            return HeaderParse::Invalid("record id key longer than its payload");
        }
        HeaderParse::Header(RecordHeader {
            version: Version::V1,
            len,
            position: u64_at(raw, 8),
            ingest_ts_ms: u64_at(raw, 16) as i64,
            lines: u32_at(raw, 24),
            format,
            key_len,
            checksum: u32_at(raw, 32),
            checksum_seed: 0,
        })
    }

    /// Parses a v0 header: only its format byte and length can be checked
    /// before the payload is read.
    pub fn parse_v0(raw: &[u8]) -> HeaderParse {
        if raw.len() < V0_HEADER_LEN {
            return HeaderParse::Short;
        }
        let Some(format) = format_of(raw[28]) else {
            return HeaderParse::Invalid("unknown record format");
        };
        let len = u32_at(raw, 0);
        if len == 0 {
            // The writer never stores empty records.
            return HeaderParse::Invalid("empty record");
        }
        HeaderParse::Header(RecordHeader {
            version: Version::V0,
            len,
            position: u64_at(raw, 8),
            ingest_ts_ms: u64_at(raw, 16) as i64,
            lines: u32_at(raw, 24),
            format,
            key_len: 0,
            checksum: u32_at(raw, 4),
            checksum_seed: crc32fast::hash(&raw[8..V0_HEADER_LEN]),
        })
    }

    /// Bytes of this header on disk.
    pub fn header_len(&self) -> u64 {
        match self.version {
            Version::V0 => V0_HEADER_LEN as u64,
            Version::V1 => HEADER_LEN as u64,
        }
    }

    /// Bytes of the whole record on disk.
    pub fn record_len(&self) -> u64 {
        self.header_len() + u64::from(self.len)
    }

    /// True when the header checked by its own CRC, so its length and
    /// position can be trusted even when the payload is damaged.
    pub fn trusted(&self) -> bool {
        self.version == Version::V1
    }

    /// A checksum over the payload, to feed and then [`PayloadCheck::ok`].
    pub fn payload_check(&self) -> PayloadCheck {
        PayloadCheck {
            hasher: crc32fast::Hasher::new_with_initial(self.checksum_seed),
            expected: self.checksum,
        }
    }

    /// Splits a loaded payload into the id key and the record's bytes.
    pub fn split_key<'a>(&self, payload: &'a [u8]) -> (Option<&'a [u8]>, &'a [u8]) {
        match self.key_len {
            0 => (None, payload),
            n => {
                let (key, rest) = payload.split_at((n as usize).min(payload.len()));
                (Some(key), rest)
            }
        }
    }

    /// Position after this record.
    pub fn end(&self) -> u64 {
        self.position + u64::from(self.len)
    }
}

/// A payload checksum being computed.
pub(super) struct PayloadCheck {
    hasher: crc32fast::Hasher,
    expected: u32,
}

impl PayloadCheck {
    /// Feeds the next payload bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// True when the payload fed matches the header's checksum.
    pub fn ok(self) -> bool {
        self.hasher.finalize() == self.expected
    }
}

/// Appends the framed `record` at logical `position` to `out` (format v1);
/// returns the payload length stored.
pub(super) fn encode(
    out: &mut Vec<u8>,
    position: u64,
    record: &JournalRecord,
) -> Result<u64, JournalError> {
    let stored = record.stored_len();
    let len = u32::try_from(stored).map_err(|_| JournalError::RecordTooLarge {
        bytes: record.bytes.len(),
    })?;
    let key = record.key.as_deref().unwrap_or("");
    let key_len = u16::try_from(key.len()).map_err(|_| JournalError::RecordTooLarge {
        bytes: record.bytes.len(),
    })?;
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&record.ingest_ts_ms.to_le_bytes());
    let lines = u32::try_from(record.lines).unwrap_or(u32::MAX);
    out.extend_from_slice(&lines.to_le_bytes());
    out.push(format_byte(record.format));
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&[0; 1 + 4 + 4]);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&record.bytes);
    if stored > (key.len() + record.bytes.len()) as u64 {
        out.push(b'\n');
    }
    let payload_crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start + 32..start + 36].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[start..start + 36]);
    out[start + 36..start + 40].copy_from_slice(&header_crc.to_le_bytes());
    Ok(stored)
}

fn format_byte(format: ChunkFormat) -> u8 {
    match format {
        ChunkFormat::Lines => 0,
        ChunkFormat::CloudWatchPayload => 1,
        // Never journaled (SQS and Kinesis messages only); kept distinct.
        ChunkFormat::Compressed => 2,
    }
}

/// Appends `record` at `position` in format v0, as versions before v1 wrote
/// it (tests of reading old segments).
#[cfg(test)]
pub(super) fn encode_v0(out: &mut Vec<u8>, position: u64, record: &JournalRecord) -> u64 {
    let stored = record.stored_len();
    let start = out.len();
    out.extend_from_slice(&(stored as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&record.ingest_ts_ms.to_le_bytes());
    out.extend_from_slice(&(record.lines as u32).to_le_bytes());
    out.push(format_byte(record.format));
    out.extend_from_slice(&record.bytes);
    if stored > record.bytes.len() as u64 {
        out.push(b'\n');
    }
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    stored
}

/// Path of the segment starting at `start`.
pub(super) fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(segment_name(start))
}

/// File name of the segment starting at `start`.
pub(super) fn segment_name(start: u64) -> String {
    format!("{start:020}{SEGMENT_SUFFIX}")
}

/// The start position a segment file name encodes, `None` for other files.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> JournalRecord {
        JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: 7,
            lines: 1,
            bytes: Bytes::copy_from_slice(text.as_bytes()),
            key: None,
        }
    }

    fn header(raw: &[u8]) -> RecordHeader {
        match RecordHeader::parse(raw) {
            HeaderParse::Header(h) => h,
            other => panic!("not a header: {other:?}"),
        }
    }

    fn payload_ok(h: &RecordHeader, payload: &[u8]) -> bool {
        let mut check = h.payload_check();
        check.update(payload);
        check.ok()
    }

    #[test]
    fn v1_records_round_trip_with_both_checksums() {
        let mut buf = Vec::new();
        assert_eq!(encode(&mut buf, 100, &rec("bc")).unwrap(), 3);
        assert_eq!(buf.len(), HEADER_LEN + 3);
        assert_eq!(buf[..4], MAGIC);
        let h = header(&buf);
        assert_eq!(
            (h.version, h.len, h.position, h.ingest_ts_ms, h.lines),
            (Version::V1, 3, 100, 7, 1)
        );
        assert!(h.trusted());
        assert_eq!((h.record_len(), h.end()), (43, 103));
        assert!(payload_ok(&h, b"bc\n"));
        assert!(!payload_ok(&h, b"bd\n"));
        // Any flipped header byte fails the header checksum.
        for i in 0..HEADER_LEN {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(
                !matches!(RecordHeader::parse_v1(&bad), HeaderParse::Header(_)),
                "byte {i}"
            );
        }
        assert_eq!(RecordHeader::parse(&buf[..39]), HeaderParse::Short);
    }

    #[test]
    fn a_keyed_record_holds_its_key_before_its_bytes() {
        let mut buf = Vec::new();
        let keyed = rec("bc").with_key(Some(Arc::from("k-1")));
        assert_eq!(encode(&mut buf, 100, &keyed).unwrap(), 6);
        let h = header(&buf);
        assert_eq!((h.len, h.key_len, h.end()), (6, 3, 106));
        let payload = &buf[HEADER_LEN..];
        assert!(payload_ok(&h, payload));
        assert_eq!(h.split_key(payload), (Some(&b"k-1"[..]), &b"bc\n"[..]));
        // Without a key: the bytes alone, as before keys existed.
        let mut plain = Vec::new();
        encode(&mut plain, 0, &rec("bc")).unwrap();
        assert_eq!(plain[29..32], [0, 0, 0]);
        let h = header(&plain);
        assert_eq!(h.split_key(&plain[HEADER_LEN..]), (None, &b"bc\n"[..]));
        // A key length beyond the payload is not a header.
        let mut bad = buf.clone();
        bad[29] = 200;
        let crc = crc32fast::hash(&bad[..36]);
        bad[36..40].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            RecordHeader::parse(&bad),
            HeaderParse::Invalid("record id key longer than its payload")
        );
    }

    #[test]
    fn v0_records_still_parse_and_check() {
        let mut buf = Vec::new();
        let mut cw = rec("gzip");
        cw.format = ChunkFormat::CloudWatchPayload;
        assert_eq!(encode_v0(&mut buf, 5, &cw), 4);
        let h = header(&buf);
        assert_eq!(
            (h.version, h.len, h.position, h.format),
            (Version::V0, 4, 5, ChunkFormat::CloudWatchPayload)
        );
        assert!(!h.trusted());
        assert_eq!(h.record_len(), 33);
        assert!(payload_ok(&h, b"gzip"));
        assert!(!payload_ok(&h, b"gzap"));
        // The v0 checksum covers the header fields after the CRC too.
        let mut moved = buf.clone();
        moved[8] ^= 1;
        assert!(!payload_ok(&header(&moved), b"gzip"));
        assert_eq!(
            RecordHeader::parse(&[0u8; 29]),
            HeaderParse::Invalid("empty record")
        );
    }

    #[test]
    fn the_magic_is_not_a_plausible_v0_length() {
        assert!(u32::from_le_bytes(MAGIC) > 800_000_000);
        assert!(String::from_utf8(MAGIC.to_vec()).is_err());
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
