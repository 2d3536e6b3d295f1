//! Reading a segment's records in order, and finding the next valid record
//! after bytes that are not one.
//!
//! [`SegmentReader`] reads records from a file offset on (any `Read + Seek`:
//! a segment file, or bytes in memory in tests). When the bytes at the
//! cursor are not the valid record expected there (a flipped bit, a zeroed
//! page, a torn write), it does not stop: it *resynchronises*. If the damaged
//! record's v1 header checked, its length is trusted and the search starts
//! after it; otherwise it starts at the next byte. The first offset holding a
//! record whose header and payload checksums check, whose position is not
//! below the one expected and is at most the damaged bytes further (positions
//! count payload bytes, which never outnumber file bytes), ends the damage.
//! The reader reports the damaged byte range as [`NextRecord::Damaged`] and
//! goes on from that record; without one, the damage runs to the end.
//!
//! Allocation is bounded by the segment: a payload is read into memory only
//! after its length was checked against the bytes left, and checksums of
//! candidates are computed in window-sized pieces.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use super::segment::{HEADER_LEN, HeaderParse, RecordHeader, V0_HEADER_LEN, Version};
use crate::sources::ChunkFormat;

/// Bytes read from the file at a time.
pub(super) const WINDOW: usize = 256 * 1024;

/// A segment's bytes up to a limit, read through a window.
pub(super) struct SegmentBytes<R> {
    inner: R,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
}

impl<R: Read + Seek> SegmentBytes<R> {
    /// The first `len` bytes of `inner`.
    pub fn new(inner: R, len: u64) -> Self {
        SegmentBytes {
            inner,
            len,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Bytes readable.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Up to `n` (at most [`WINDOW`]) bytes at `offset`; fewer at the end.
    pub fn peek(&mut self, offset: u64, n: usize) -> io::Result<&[u8]> {
        if offset >= self.len {
            return Ok(&[]);
        }
        let n = (n.min(WINDOW) as u64).min(self.len - offset) as usize;
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || offset + n as u64 > buf_end {
            let want = (WINDOW as u64).min(self.len - offset) as usize;
            self.buf.resize(want, 0);
            self.inner.seek(SeekFrom::Start(offset))?;
            self.inner.read_exact(&mut self.buf)?;
            self.buf_start = offset;
        }
        let at = (offset - self.buf_start) as usize;
        Ok(&self.buf[at..at + n])
    }

    /// Exactly `n` bytes at `offset`, which the caller checked are below the
    /// limit.
    pub fn read_vec(&mut self, offset: u64, n: usize) -> io::Result<Vec<u8>> {
        if n <= WINDOW {
            let bytes = self.peek(offset, n)?;
            if bytes.len() < n {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            return Ok(bytes.to_vec());
        }
        let mut out = vec![0u8; n];
        self.inner.seek(SeekFrom::Start(offset))?;
        self.inner.read_exact(&mut out)?;
        Ok(out)
    }

    /// Feeds the `n` bytes at `offset` to `f`, a window at a time.
    pub fn each_piece(&mut self, offset: u64, n: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        let mut done = 0;
        while done < n {
            let piece = self.peek(offset + done, (n - done).min(WINDOW as u64) as usize)?;
            if piece.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += piece.len() as u64;
            f(piece);
        }
        Ok(())
    }
}

/// Bytes of a segment that are not valid records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedRange {
    /// File offset of the first damaged byte.
    pub offset: u64,
    /// Damaged bytes.
    pub bytes: u64,
    /// The logical position the record at `offset` should have had: the first
    /// position lost.
    pub position: u64,
    /// Position of the valid record after the damage (so positions
    /// `position..next_position` are lost); `None` when the damage runs to the
    /// end of what was read.
    pub next_position: Option<u64>,
    /// Why the bytes at `offset` are not the record expected.
    pub reason: &'static str,
    /// The damaged record as its header described it, when the header itself
    /// checked (v1).
    pub record: Option<LostRecord>,
}

impl DamagedRange {
    /// File offset after the damage.
    pub fn end_offset(&self) -> u64 {
        self.offset + self.bytes
    }
}

/// What a damaged record held, from its intact header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostRecord {
    /// Its first position.
    pub position: u64,
    /// Payload bytes.
    pub payload_bytes: u32,
    /// Lines (events) in it.
    pub lines: u32,
    /// `lines` or `cloudwatch`.
    pub format: &'static str,
    /// When it was received, UTC milliseconds.
    pub ingest_ts_ms: i64,
}

impl LostRecord {
    fn of(h: &RecordHeader) -> Self {
        LostRecord {
            position: h.position,
            payload_bytes: h.len,
            lines: h.lines,
            format: match h.format {
                ChunkFormat::Lines => "lines",
                ChunkFormat::CloudWatchPayload => "cloudwatch",
                ChunkFormat::Compressed => "compressed",
            },
            ingest_ts_ms: h.ingest_ts_ms,
        }
    }
}

/// How much of a record's payload to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    /// Read it, check it and return it.
    Load,
    /// Check it without keeping it.
    Verify,
    /// Do not read it (v1 headers are still checked; seeking).
    Skip,
}

/// What came next in a segment.
#[derive(Debug)]
pub(super) enum NextRecord {
    /// A valid record (the payload is empty unless [`Payload::Load`]).
    Record(RecordHeader, Vec<u8>),
    /// The end of the readable bytes, exactly at a record boundary.
    End,
    /// Bytes that are not valid records; the reader is past them.
    Damaged(DamagedRange),
}

/// Why the bytes at the cursor are not the record expected.
struct Bad {
    reason: &'static str,
    /// The record's header, when it checked by its own CRC (v1) and carries
    /// the position expected: it tells what was lost.
    header: Option<RecordHeader>,
    /// Whether the record's extent is known (a trusted header whose payload
    /// is within the limit): the search for the next record starts after it.
    extent_known: bool,
}

impl Bad {
    fn of(reason: &'static str) -> Self {
        Bad {
            reason,
            header: None,
            extent_known: false,
        }
    }
}

/// Sequential reader of a segment's records from a given file offset.
pub(super) struct SegmentReader<R = File> {
    bytes: SegmentBytes<R>,
    /// File offset of the next record.
    offset: u64,
    /// Position the next record must carry.
    expected: u64,
    /// Whether a valid record was read.
    read_any: bool,
    /// Whether a valid v0 record was read.
    read_v0: bool,
}

impl SegmentReader<File> {
    /// Opens `path` at file `offset`, where the record at `position` begins,
    /// reading at most `limit` bytes of the file (all when `None`).
    pub fn open(path: &Path, offset: u64, position: u64, limit: Option<u64>) -> io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let len = limit.map_or(file_len, |l| l.min(file_len));
        Ok(SegmentReader::new(
            SegmentBytes::new(file, len),
            offset,
            position,
        ))
    }
}

impl<R: Read + Seek> SegmentReader<R> {
    /// A reader of `bytes` at `offset`, where the record at `position` begins.
    pub fn new(bytes: SegmentBytes<R>, offset: u64, position: u64) -> Self {
        SegmentReader {
            offset: offset.min(bytes.len()),
            bytes,
            expected: position,
            read_any: false,
            read_v0: false,
        }
    }

    /// File offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Position of the next record.
    pub fn position(&self) -> u64 {
        self.expected
    }

    /// Bytes readable.
    pub fn len(&self) -> u64 {
        self.bytes.len()
    }

    /// The next record's header when it looks valid (its payload is not
    /// checked); `None` at the end or before damage (which
    /// [`SegmentReader::next`] then reports).
    pub fn peek_header(&mut self) -> io::Result<Option<RecordHeader>> {
        if self.offset >= self.bytes.len() {
            return Ok(None);
        }
        let remaining = self.bytes.len() - self.offset;
        let raw = self.bytes.peek(self.offset, HEADER_LEN)?;
        Ok(match RecordHeader::parse(raw) {
            HeaderParse::Header(h)
                if h.position == self.expected && h.record_len() <= remaining =>
            {
                Some(h)
            }
            _ => None,
        })
    }

    /// Reads the next record, or reports the damaged bytes before the next
    /// valid one and moves past them.
    pub fn next(&mut self, payload: Payload) -> io::Result<NextRecord> {
        if self.offset >= self.bytes.len() {
            return Ok(NextRecord::End);
        }
        match self.record_at(self.offset, self.expected, payload)? {
            Ok((header, body)) => {
                self.offset += header.record_len();
                self.expected = header.end();
                self.read_any = true;
                self.read_v0 |= header.version == Version::V0;
                Ok(NextRecord::Record(header, body))
            }
            Err(bad) => self.resync(bad).map(NextRecord::Damaged),
        }
    }

    /// Checks the record at `offset`, which must carry `expected`.
    fn record_at(
        &mut self,
        offset: u64,
        expected: u64,
        payload: Payload,
    ) -> io::Result<Result<(RecordHeader, Vec<u8>), Bad>> {
        let remaining = self.bytes.len() - offset;
        let header = match RecordHeader::parse(self.bytes.peek(offset, HEADER_LEN)?) {
            HeaderParse::Header(h) => h,
            HeaderParse::Short => return Ok(Err(Bad::of("partial record header"))),
            HeaderParse::Invalid(reason) => return Ok(Err(Bad::of(reason))),
        };
        if header.position != expected {
            return Ok(Err(Bad::of("record position out of sequence")));
        }
        let described = header.trusted().then_some(header);
        if header.record_len() > remaining {
            return Ok(Err(Bad {
                header: described,
                ..Bad::of("partial record payload")
            }));
        }
        let mismatch = Bad {
            reason: "record checksum mismatch",
            header: described,
            extent_known: described.is_some(),
        };
        let at = offset + header.header_len();
        match payload {
            // A v1 header checked by its own CRC is enough to step over the
            // record; a v0 one is not.
            Payload::Skip if header.trusted() => Ok(Ok((header, Vec::new()))),
            Payload::Skip | Payload::Verify => {
                if self.payload_checks(offset, &header)? {
                    Ok(Ok((header, Vec::new())))
                } else {
                    Ok(Err(mismatch))
                }
            }
            Payload::Load => {
                let body = self.bytes.read_vec(at, header.len as usize)?;
                let mut check = header.payload_check();
                check.update(&body);
                if check.ok() {
                    Ok(Ok((header, body)))
                } else {
                    Ok(Err(mismatch))
                }
            }
        }
    }

    /// True when the payload of the record whose header is at `offset` checks.
    fn payload_checks(&mut self, offset: u64, header: &RecordHeader) -> io::Result<bool> {
        let mut check = header.payload_check();
        self.bytes.each_piece(
            offset + header.header_len(),
            u64::from(header.len),
            |piece| check.update(piece),
        )?;
        Ok(check.ok())
    }

    /// Skips the damaged bytes at the cursor: up to the next valid record, or
    /// to the end.
    fn resync(&mut self, bad: Bad) -> io::Result<DamagedRange> {
        let start = self.offset;
        let expected = self.expected;
        let from = match bad.header {
            Some(h) if bad.extent_known => start + h.record_len(),
            _ => start + 1,
        };
        let found = self.find_record(start, from, expected)?;
        let end = found.map_or(self.bytes.len(), |(at, _)| at);
        self.offset = end;
        if let Some((_, position)) = found {
            self.expected = position;
        }
        Ok(DamagedRange {
            offset: start,
            bytes: end - start,
            position: expected,
            next_position: found.map(|(_, position)| position),
            reason: bad.reason,
            record: bad.header.as_ref().map(LostRecord::of),
        })
    }

    /// The first offset at or after `from` holding a valid record that can
    /// follow damage starting at `damage_start` where `expected` was due,
    /// with its position.
    fn find_record(
        &mut self,
        damage_start: u64,
        from: u64,
        expected: u64,
    ) -> io::Result<Option<(u64, u64)>> {
        let allow_v0 = self.read_v0 || !self.read_any;
        let min_header = if allow_v0 { V0_HEADER_LEN } else { HEADER_LEN };
        let len = self.bytes.len();
        let mut at = from;
        while at < len {
            let window = self.bytes.peek(at, WINDOW)?;
            let reaches_end = at + window.len() as u64 >= len;
            // Offsets whose header is wholly in this window (at the end: any
            // that could still hold the smallest header).
            let count = if reaches_end {
                (window.len() + 1).saturating_sub(min_header)
            } else {
                window.len() + 1 - HEADER_LEN
            };
            let candidate = (0..count).find_map(|i| {
                let c = at + i as u64;
                plausible(&window[i..], c - damage_start, expected, len - c, allow_v0)
                    .map(|h| (c, h))
            });
            match candidate {
                Some((c, header)) => {
                    if self.payload_checks(c, &header)? {
                        return Ok(Some((c, header.position)));
                    }
                    at = c + 1;
                }
                None if reaches_end => return Ok(None),
                None => at += count as u64,
            }
        }
        Ok(None)
    }
}

/// The header at the start of `raw` when it could be the next valid record:
/// `skipped` bytes after the damage began, where `expected` was due, with
/// `remaining` bytes left in the segment. Its payload is not checked.
fn plausible(
    raw: &[u8],
    skipped: u64,
    expected: u64,
    remaining: u64,
    allow_v0: bool,
) -> Option<RecordHeader> {
    let position_ok = |position: u64| position >= expected && position - expected <= skipped;
    let header = if raw.starts_with(&super::segment::MAGIC) {
        match RecordHeader::parse_v1(raw) {
            HeaderParse::Header(h) => h,
            _ => return None,
        }
    } else if allow_v0 && raw.len() >= V0_HEADER_LEN {
        // Cheap tests first: this runs at every offset of damaged v0 bytes.
        let position = u64::from_le_bytes(raw[8..16].try_into().ok()?);
        if raw[28] > 1 || !position_ok(position) {
            return None;
        }
        match RecordHeader::parse_v0(raw) {
            HeaderParse::Header(h) => h,
            _ => return None,
        }
    } else {
        return None;
    };
    (position_ok(header.position) && header.record_len() <= remaining).then_some(header)
}

/// What a full scan of a segment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SegmentScan {
    /// Valid records.
    pub records: u64,
    /// Of which in format v0.
    pub v0_records: u64,
    /// Position of the first valid record.
    pub first_position: Option<u64>,
    /// Position after the last valid record.
    pub end_position: u64,
    /// File offset after the last valid record.
    pub valid_len: u64,
    /// Bytes read.
    pub len: u64,
    /// Damaged ranges found.
    pub damaged: u64,
    /// Damaged bytes.
    pub damaged_bytes: u64,
}

/// Checks every record of a segment that starts at position `start`, calling
/// `on_damage` for each damaged range (in order); `io_error` converts read
/// failures.
pub(super) fn scan_segment<R: Read + Seek, E>(
    reader: &mut SegmentReader<R>,
    start: u64,
    io_error: impl Fn(io::Error) -> E,
    mut on_damage: impl FnMut(&DamagedRange) -> Result<(), E>,
) -> Result<SegmentScan, E> {
    let mut scan = SegmentScan {
        end_position: start,
        len: reader.len(),
        ..SegmentScan::default()
    };
    loop {
        match reader.next(Payload::Verify).map_err(&io_error)? {
            NextRecord::Record(h, _) => {
                scan.records += 1;
                scan.v0_records += u64::from(h.version == Version::V0);
                scan.first_position.get_or_insert(h.position);
                scan.end_position = h.end();
                scan.valid_len = reader.offset();
            }
            NextRecord::End => return Ok(scan),
            NextRecord::Damaged(d) => {
                scan.damaged += 1;
                scan.damaged_bytes += d.bytes;
                on_damage(&d)?;
            }
        }
    }
}

/// Opens a reader at the first record of the segment at `path` (starting at
/// `start`, read up to `limit`) whose position is at least `position`, or at
/// its end. Damage crossed on the way that swallowed positions at or above
/// `position` is returned with it.
pub(super) fn seek_position(
    path: &Path,
    start: u64,
    position: u64,
    limit: Option<u64>,
) -> io::Result<(SegmentReader, Vec<DamagedRange>)> {
    let mut reader = SegmentReader::open(path, 0, start, limit)?;
    let mut crossed = Vec::new();
    while reader.position() < position {
        match reader.next(Payload::Skip)? {
            NextRecord::Record(..) => {}
            NextRecord::End => break,
            NextRecord::Damaged(d) => {
                if d.next_position.is_none_or(|next| next > position) {
                    crossed.push(d);
                }
            }
        }
    }
    Ok((reader, crossed))
}
