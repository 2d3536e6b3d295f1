//! The corruption matrix, on segment images in memory: every kind of damage
//! (a torn tail, flipped bytes in every header field, the payload and the
//! checksums, a zeroed page, a cut header, a damaged first record, two
//! damaged records, garbage between records, old v0 segments) loses at most
//! the records it touches; every other record is read back, checked by
//! content.

use bytes::Bytes;

use super::check::{DecodedSegment, decode_segment};
use super::scan::{DamagedRange, WINDOW, seek_position};
use super::segment::{HEADER_LEN, JournalRecord, encode, encode_v0};
use crate::sources::ChunkFormat;

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
            key: None,
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
        key: None,
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
        key: None,
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
        key: None,
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
    let (reader, _) = seek_position(&path, 1000, u64::MAX, Some(placed[1].offset as u64)).unwrap();
    assert_eq!(reader.position(), placed[1].position);
}

#[test]
fn a_v0_length_off_by_one_loses_only_its_record() {
    // The pre-v1 header has no checksum of its own: a length one byte too
    // long (or short) must not hide the record after it, whose bytes then
    // start inside the search window.
    let (img, placed) = image_with(8, 0, |_| true);
    for k in [0, 3, 7] {
        for delta in [1u8, 0xff] {
            let mut bad = img.clone();
            bad[placed[k].offset] = bad[placed[k].offset].wrapping_add(delta);
            let decoded = decode_segment(&bad, 0);
            assert_lost(&decoded, &placed, &[k]);
            assert_eq!(decoded.damaged.len(), 1, "record {k} length + {delta:#x}");
        }
    }
}

/// One row of the recovery matrix: what is done to the segment file, and
/// which records (of [`RECORDS`], 640 bytes each on disk) it may lose.
struct Row {
    name: &'static str,
    damage: fn(&mut Vec<u8>),
    lost: &'static [usize],
}

/// Records written for the recovery matrix.
const RECORDS: usize = 20;

/// Bytes of a [`super::fixtures::record`] on disk.
const ON_DISK: usize = HEADER_LEN + 600;

fn flip(at: usize) -> impl Fn(&mut Vec<u8>) {
    move |b: &mut Vec<u8>| b[at] ^= 0x10
}

/// The recovery matrix end to end: a journal of [`RECORDS`] acknowledged
/// records is damaged on disk, opened again and replayed into a sink. Every
/// record the damage did not touch is delivered, in order, exactly once; the
/// damaged bytes are in the dead-letter area.
#[tokio::test]
async fn recovery_replays_every_record_the_damage_did_not_touch() {
    use spate_engine::testkit::CaptureSink;

    use super::fixtures::{delivered, record, spawn, stop};
    use super::segment::segment_path;
    use super::{Journal, JournalConfig};

    let rows = [
        Row {
            name: "torn tail in the payload",
            damage: |b| b.truncate(b.len() - 7),
            lost: &[RECORDS - 1],
        },
        Row {
            name: "truncated header",
            damage: |b| b.truncate((RECORDS - 1) * ON_DISK + 17),
            lost: &[RECORDS - 1],
        },
        Row {
            name: "flipped magic",
            damage: |b| flip(7 * ON_DISK)(b),
            lost: &[7],
        },
        Row {
            name: "flipped length",
            damage: |b| flip(7 * ON_DISK + 5)(b),
            lost: &[7],
        },
        Row {
            name: "flipped position",
            damage: |b| flip(7 * ON_DISK + 9)(b),
            lost: &[7],
        },
        Row {
            name: "flipped header checksum",
            damage: |b| flip(7 * ON_DISK + 38)(b),
            lost: &[7],
        },
        Row {
            name: "flipped payload byte",
            damage: |b| flip(7 * ON_DISK + HEADER_LEN + 300)(b),
            lost: &[7],
        },
        Row {
            name: "flipped first byte of the segment",
            damage: |b| flip(0)(b),
            lost: &[0],
        },
        Row {
            name: "flipped last byte of the segment",
            damage: |b| {
                let last = b.len() - 1;
                flip(last)(b)
            },
            lost: &[RECORDS - 1],
        },
        Row {
            // Bytes 4096..8192: records 6 (3840..4480) to 12 (7680..8320).
            name: "zeroed page",
            damage: |b| b[4096..8192].fill(0),
            lost: &[6, 7, 8, 9, 10, 11, 12],
        },
    ];
    for row in rows {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("journal");
        let cfg = JournalConfig::default();
        {
            let journal = Journal::open(&cfg, &dir).unwrap();
            let writer = journal.writer();
            for n in 0..RECORDS {
                writer.append(vec![record(n)]).await.unwrap();
            }
            journal.close();
        }
        let segment = segment_path(&dir, 0);
        let mut bytes = std::fs::read(&segment).unwrap();
        assert_eq!(bytes.len(), RECORDS * ON_DISK);
        (row.damage)(&mut bytes);
        std::fs::write(&segment, &bytes).unwrap();

        let journal = Journal::open(&cfg, &dir).unwrap();
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        // Damage running to the end of the newest segment is a torn tail,
        // cut off: the journal ends before the last record.
        let end = if row.lost.contains(&(RECORDS - 1)) {
            (RECORDS as u64 - 1) * 600
        } else {
            RECORDS as u64 * 600
        };
        assert_eq!(journal.stats().appended_position, end, "{}", row.name);
        journal
            .shared
            .wait_until("the replay to commit", |s| s.committed_position == end)
            .await;
        stop(pipeline).await;
        let got: Vec<u8> = delivered(&sink).into_iter().flat_map(|c| c.1).collect();
        let expected: Vec<u8> = (0..RECORDS)
            .filter(|n| !row.lost.contains(n))
            .flat_map(|n| record(n).bytes.to_vec())
            .collect();
        assert!(got == expected, "{}: wrong records replayed", row.name);
        // One copy of the damaged bytes, with their place.
        let copies: Vec<serde_json::Value> =
            std::fs::read_dir(data.path().join("deadletter/journal"))
                .unwrap()
                .map(|e| {
                    let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
                    serde_json::from_str(&text).unwrap()
                })
                .collect();
        assert_eq!(copies.len(), 1, "{}: {copies:?}", row.name);
        let first = row.lost[0];
        assert_eq!(copies[0]["offset"], first * ON_DISK, "{}", row.name);
        assert_eq!(copies[0]["position"], first * 600, "{}", row.name);
        journal.close();
    }
}
