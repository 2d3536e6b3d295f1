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
const WINDOW: usize = 256 * 1024;

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

/// The corruption matrix: every kind of damage loses at most the records it
/// touches; every other record is read back, checked by content.
#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::check::{DecodedSegment, decode_segment};
    use super::super::segment::{JournalRecord, encode, encode_v0};
    use super::*;

    /// A record's place in an image.
    #[derive(Debug, Clone)]
    struct Placed {
        offset: usize,
        len: usize,
        position: u64,
        payload: Vec<u8>,
    }

    fn payload(i: usize, lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|l| format!("{{\"record\":{i},\"line\":{l},\"msg\":\"hello\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    /// An image of `n` records starting at position `start`; record i has
    /// `1 + i % 5` lines; `v0` picks the records written in the old format.
    fn image_with(n: usize, start: u64, v0: impl Fn(usize) -> bool) -> (Vec<u8>, Vec<Placed>) {
        let mut buf = Vec::new();
        let mut placed = Vec::new();
        let mut position = start;
        for i in 0..n {
            let bytes = payload(i, 1 + i % 5);
            let record = JournalRecord {
                format: ChunkFormat::Lines,
                ingest_ts_ms: 1_700_000_000_000 + i as i64,
                lines: 1 + i % 5,
                bytes: Bytes::from(bytes.clone()),
            };
            let offset = buf.len();
            let stored = if v0(i) {
                encode_v0(&mut buf, position, &record)
            } else {
                encode(&mut buf, position, &record).unwrap()
            };
            placed.push(Placed {
                offset,
                len: buf.len() - offset,
                position,
                payload: bytes,
            });
            position += stored;
        }
        (buf, placed)
    }

    fn image(n: usize) -> (Vec<u8>, Vec<Placed>) {
        image_with(n, 1000, |_| false)
    }

    /// Asserts that exactly the records `lost` are missing from `decoded` and
    /// that every other one came back with its position and payload.
    fn assert_lost(decoded: &DecodedSegment, placed: &[Placed], lost: &[usize]) {
        let expected: Vec<(u64, &[u8])> = placed
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost.contains(i))
            .map(|(_, p)| (p.position, p.payload.as_slice()))
            .collect();
        let got: Vec<(u64, &[u8])> = decoded
            .records
            .iter()
            .map(|r| (r.position, r.payload.as_slice()))
            .collect();
        assert_eq!(got, expected, "damage: {:?}", decoded.damaged);
    }

    /// Asserts one damaged range covering exactly records `first..=last`.
    fn assert_range(range: &DamagedRange, placed: &[Placed], first: usize, last: usize) {
        let end = placed[last].offset + placed[last].len;
        assert_eq!(range.offset, placed[first].offset as u64, "{range:?}");
        assert_eq!(
            range.bytes,
            (end - placed[first].offset) as u64,
            "{range:?}"
        );
        assert_eq!(range.position, placed[first].position);
        assert_eq!(
            range.next_position,
            placed.get(last + 1).map(|p| p.position)
        );
    }

    #[test]
    fn a_clean_image_reads_back_whole() {
        let (img, placed) = image(20);
        let decoded = decode_segment(&img, 1000);
        assert!(decoded.damaged.is_empty());
        assert_lost(&decoded, &placed, &[]);
        let last = placed.last().unwrap();
        assert_eq!(
            decoded.end_position,
            last.position + last.payload.len() as u64
        );
    }

    #[test]
    fn four_bytes_overwritten_in_record_124_of_249_lose_only_it() {
        let (mut img, placed) = image(249);
        let at = placed[124].offset + HEADER_LEN + 10;
        img[at..at + 4].copy_from_slice(b"\0\xff\0\xff");
        let decoded = decode_segment(&img, 1000);
        assert_lost(&decoded, &placed, &[124]);
        assert_eq!(decoded.damaged.len(), 1);
        let range = &decoded.damaged[0];
        assert_range(range, &placed, 124, 124);
        assert_eq!(range.reason, "record checksum mismatch");
        // The intact header says what was lost.
        let record = range.record.unwrap();
        assert_eq!(record.lines, (1 + 124 % 5) as u32);
        assert_eq!(record.position, placed[124].position);
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_record_loses_only_that_record() {
        let (img, placed) = image(12);
        let k = 5;
        let record = &placed[k];
        // Every header byte (magic, length, position, time, lines, format,
        // reserved, payload CRC, header CRC), the first, middle and last
        // payload bytes.
        let offsets: Vec<usize> = (0..HEADER_LEN)
            .chain([HEADER_LEN, record.len / 2, record.len - 1])
            .collect();
        for at in offsets {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = img.clone();
                bad[record.offset + at] ^= flip;
                let decoded = decode_segment(&bad, 1000);
                assert_lost(&decoded, &placed, &[k]);
                assert_eq!(decoded.damaged.len(), 1, "byte {at} ^ {flip:#x}");
                assert_range(&decoded.damaged[0], &placed, k, k);
            }
        }
    }

    #[test]
    fn a_damaged_first_record_loses_only_it() {
        let (mut img, placed) = image(6);
        img[0] = b'X';
        let decoded = decode_segment(&img, 1000);
        assert_lost(&decoded, &placed, &[0]);
        assert_range(&decoded.damaged[0], &placed, 0, 0);
    }

    #[test]
    fn two_damaged_records_are_two_ranges() {
        let (mut img, placed) = image(10);
        img[placed[2].offset + HEADER_LEN + 3] ^= 0x20;
        img[placed[7].offset + 9] ^= 0x20;
        let decoded = decode_segment(&img, 1000);
        assert_lost(&decoded, &placed, &[2, 7]);
        assert_eq!(decoded.damaged.len(), 2);
        assert_range(&decoded.damaged[0], &placed, 2, 2);
        assert_range(&decoded.damaged[1], &placed, 7, 7);
        // Adjacent damaged records are one range.
        let (mut img, placed) = image(10);
        img[placed[3].offset + 4] ^= 1;
        img[placed[4].offset + 4] ^= 1;
        let decoded = decode_segment(&img, 1000);
        assert_lost(&decoded, &placed, &[3, 4]);
        assert_eq!(decoded.damaged.len(), 1);
        assert_range(&decoded.damaged[0], &placed, 3, 4);
    }

    #[test]
    fn a_zeroed_page_loses_only_the_records_it_touches() {
        let (img, placed) = image(120);
        assert!(img.len() > 3 * 4096);
        for page in [4096, 8192 + 100] {
            let mut bad = img.clone();
            bad[page..page + 4096].fill(0);
            let touched: Vec<usize> = placed
                .iter()
                .enumerate()
                .filter(|(_, p)| p.offset < page + 4096 && p.offset + p.len > page)
                .map(|(i, _)| i)
                .collect();
            let decoded = decode_segment(&bad, 1000);
            assert_lost(&decoded, &placed, &touched);
            assert_eq!(decoded.damaged.len(), 1);
            assert_range(
                &decoded.damaged[0],
                &placed,
                touched[0],
                *touched.last().unwrap(),
            );
        }
    }

    #[test]
    fn a_torn_tail_loses_only_the_last_record() {
        let (img, placed) = image(8);
        let last = placed.last().unwrap();
        // Cut inside the payload, and inside the header.
        for cut in [
            last.offset + last.len - 3,
            last.offset + 20,
            last.offset + 1,
        ] {
            let decoded = decode_segment(&img[..cut], 1000);
            assert_lost(&decoded, &placed, &[7]);
            assert_eq!(decoded.damaged.len(), 1);
            let range = &decoded.damaged[0];
            assert_eq!(range.offset, last.offset as u64);
            assert_eq!(range.bytes, (cut - last.offset) as u64);
            assert_eq!(range.next_position, None);
            assert_eq!(range.position, last.position);
        }
        let cut = last.offset + last.len - 3;
        let decoded = decode_segment(&img[..cut], 1000);
        assert_eq!(decoded.damaged[0].reason, "partial record payload");
        assert_eq!(decoded.end_position, last.position);
        let decoded = decode_segment(&img[..last.offset + 20], 1000);
        assert_eq!(decoded.damaged[0].reason, "partial record header");
        // A torn tail after damage in the middle: both reported.
        let mut bad = img[..cut].to_vec();
        bad[placed[1].offset + HEADER_LEN] ^= 4;
        let decoded = decode_segment(&bad, 1000);
        assert_lost(&decoded, &placed, &[1, 7]);
        assert_eq!(decoded.damaged.len(), 2);
    }

    #[test]
    fn garbage_between_records_is_skipped() {
        let (img, placed) = image(4);
        let split = placed[2].offset;
        let mut bad = img[..split].to_vec();
        bad.extend_from_slice(&[0xF7, b'J', b'R', b'1', 1, 2, 3]);
        bad.extend_from_slice(&[0xAB; 500]);
        bad.extend_from_slice(&img[split..]);
        let decoded = decode_segment(&bad, 1000);
        assert_lost(&decoded, &placed, &[]);
        assert_eq!(decoded.damaged.len(), 1);
        assert_eq!(decoded.damaged[0].bytes, 507);
        // The record after the garbage carries the position expected: nothing lost.
        assert_eq!(decoded.damaged[0].next_position, Some(placed[2].position));
    }

    #[test]
    fn old_v0_segments_read_and_resync_too() {
        let (img, placed) = image_with(10, 0, |_| true);
        let decoded = decode_segment(&img, 0);
        assert_lost(&decoded, &placed, &[]);
        for at in [
            placed[4].offset + 2,
            placed[4].offset + 29 + 5,
            placed[4].offset + 12,
        ] {
            let mut bad = img.clone();
            bad[at] ^= 0x41;
            let decoded = decode_segment(&bad, 0);
            assert_lost(&decoded, &placed, &[4]);
            assert_range(&decoded.damaged[0], &placed, 4, 4);
            // A v0 header has no checksum of its own: nothing to tell.
            assert_eq!(decoded.damaged[0].record, None);
        }
        // A segment an upgraded process continued: v0 records, then v1 ones.
        let (img, placed) = image_with(10, 0, |i| i < 5);
        let decoded = decode_segment(&img, 0);
        assert_lost(&decoded, &placed, &[]);
        let mut bad = img.clone();
        bad[placed[4].offset + 30] ^= 1;
        bad[placed[7].offset + 30] ^= 1;
        let decoded = decode_segment(&bad, 0);
        assert_lost(&decoded, &placed, &[4, 7]);
    }

    #[test]
    fn a_payload_that_holds_a_record_does_not_fool_the_resync() {
        // A CloudWatch payload may hold any bytes, even a whole valid record
        // (with a position that could follow damage starting at the carrier).
        let (img, placed) = image(3);
        let mut inner = Vec::new();
        let fake = JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: 0,
            lines: 1,
            bytes: Bytes::from_static(b"forged\n"),
        };
        let carrier_position = placed[2].position + placed[2].payload.len() as u64;
        let fake_position = carrier_position + 10;
        encode(&mut inner, fake_position, &fake).unwrap();
        let mut carrier_payload = vec![b'x'; 40];
        carrier_payload.extend_from_slice(&inner);
        let carrier = JournalRecord {
            format: ChunkFormat::CloudWatchPayload,
            ingest_ts_ms: 0,
            lines: 1,
            bytes: Bytes::from(carrier_payload),
        };
        let mut bad = img.clone();
        let carrier_at = bad.len();
        let stored = encode(&mut bad, carrier_position, &carrier).unwrap();
        let mut after = Vec::new();
        encode(&mut after, carrier_position + stored, &fake).unwrap();
        bad.extend_from_slice(&after);
        // Damage the carrier's payload: its header is intact, so the search
        // starts after it, not at the forged record inside.
        bad[carrier_at + HEADER_LEN + 3] ^= 1;
        let decoded = decode_segment(&bad, 1000);
        assert_eq!(decoded.records.len(), 4, "{:?}", decoded.damaged);
        assert_eq!(decoded.records[3].position, carrier_position + stored);
        assert_eq!(decoded.damaged.len(), 1);
        assert_eq!(decoded.damaged[0].bytes, HEADER_LEN as u64 + stored);
    }

    #[test]
    fn reads_through_windows_and_large_payloads() {
        // Records larger than a window, and damage found across windows.
        let big = |c: u8, n: usize| JournalRecord {
            format: ChunkFormat::Lines,
            ingest_ts_ms: 0,
            lines: 1,
            bytes: Bytes::from(vec![c; n]),
        };
        let mut img = Vec::new();
        let mut position = 0;
        let mut offsets = Vec::new();
        for (c, n) in [
            (b'a', WINDOW + 100),
            (b'b', 10),
            (b'c', 2 * WINDOW),
            (b'd', 5),
        ] {
            offsets.push(img.len());
            position += encode(&mut img, position, &big(c, n)).unwrap();
        }
        let decoded = decode_segment(&img, 0);
        assert_eq!(decoded.records.len(), 4);
        assert_eq!(decoded.records[2].payload.len(), 2 * WINDOW + 1);
        // A damaged header before a record more than a window away.
        let mut bad = img.clone();
        bad[offsets[1] + 1] ^= 1;
        bad[offsets[2] + 1] ^= 1;
        let decoded = decode_segment(&bad, 0);
        let firsts: Vec<u8> = decoded.records.iter().map(|r| r.payload[0]).collect();
        assert_eq!(firsts, b"ad");
        assert_eq!(decoded.damaged.len(), 1);
        assert_eq!(decoded.damaged[0].offset, offsets[1] as u64);
        assert_eq!(decoded.damaged[0].bytes, (offsets[3] - offsets[1]) as u64);
    }

    #[test]
    fn seeking_stops_at_the_first_record_at_or_after_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let (img, placed) = image(6);
        let path = dir.path().join("seg");
        std::fs::write(&path, &img).unwrap();
        let (reader, crossed) = seek_position(&path, 1000, placed[3].position, None).unwrap();
        assert_eq!(reader.position(), placed[3].position);
        assert_eq!(reader.offset(), placed[3].offset as u64);
        assert!(crossed.is_empty());
        // Damage below the target is not reported; damage swallowing it is.
        let mut bad = img.clone();
        bad[placed[1].offset + 2] ^= 1;
        bad[placed[3].offset + 2] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        // Seeking stops at the record at the target without reading it.
        let (reader, crossed) = seek_position(&path, 1000, placed[3].position, None).unwrap();
        assert_eq!(reader.position(), placed[3].position);
        assert!(crossed.is_empty());
        let (reader, crossed) = seek_position(&path, 1000, placed[3].position + 1, None).unwrap();
        assert_eq!(reader.position(), placed[4].position);
        assert_eq!(crossed.len(), 1);
        assert_eq!(crossed[0].offset, placed[3].offset as u64);
        // A limit hides the bytes past it.
        let (reader, _) =
            seek_position(&path, 1000, u64::MAX, Some(placed[1].offset as u64)).unwrap();
        assert_eq!(reader.position(), placed[1].position);
    }
}
