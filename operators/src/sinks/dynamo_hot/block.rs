//! Packed hot blocks: many hot events of one service and one minute in one
//! DynamoDB item, so that write units follow compressed bytes, not events.
//!
//! A block's body is its events column by column (ids, time deltas,
//! severities, hosts, ..., messages, attributes) in a compact binary form
//! (`columns.rs`, layout 2), compressed with zstd but for
//! its random ids: values of one column sit together, so the compressor
//! sees the repeats of services, sources, hosts and message templates.
//! Blocks of layout 1 (JSON columns, [`block_v1`](super::block_v1)) still
//! read. [`pack`] sorts the events by time, keeps one event per
//! `event_id` (a redelivered batch merged into the same block does not add
//! its events twice) and splits them into blocks of at most
//! [`MAX_BLOCK_BYTES`] compressed bytes; [`unpack`] reads one back. Every
//! function here is pure.

use std::collections::HashSet;

use foldhash::fast::RandomState;

use super::wire::{MAX_RAW_BYTES, Reader, put_varint};
use super::{DynamoHotError, block_v1, column_reader, columns};
use crate::event::Severity;
pub use crate::sinks::hot::StoredEvent;
use crate::sinks::hot::event_view::EventView;

/// Events of one block share the minute of their time: the span of a block.
pub const BLOCK_SPAN_MS: i64 = 60_000;

/// Compressed bytes of a block above which its events are split into two
/// blocks (a single event is never split). W1 blocks of a billion events a
/// day: 52.1 B per hot event split at 64 KB, 50.4 at 128 KB, 50.0 at 256 KB. DynamoDB items are at most
/// 400 KB; one event is at most two fields of
/// [`MAX_TEXT_BYTES`](super::items::MAX_TEXT_BYTES) plus its keys.
pub const MAX_BLOCK_BYTES: usize = 128 * 1024;

/// zstd level of block bodies: W1 blocks of a billion events a day come to
/// 54.0 B per hot event at level 3, 51.4 at 9, 49.2 at 15 and 49.1 at 19,
/// level 19 taking twice the time of 15 (docs/cost.md).
pub const ZSTD_LEVEL: i32 = 15;

/// One block ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The zstd-compressed body.
    pub bytes: Vec<u8>,
    /// Length of the body before compression.
    pub raw_len: usize,
    /// Events in the block.
    pub events: usize,
    /// Time of the oldest event.
    pub first_ms: i64,
    /// Time of the newest event.
    pub last_ms: i64,
    /// The highest severity in the block.
    pub top: Severity,
}

/// The start of the block span (minute) holding `ts_ms`.
pub fn span_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(BLOCK_SPAN_MS) * BLOCK_SPAN_MS
}

/// `events` with one event per `event_id` (the last one given wins), sorted
/// by time, then id.
pub fn dedup_sorted(events: Vec<EventView<'_>>) -> Vec<EventView<'_>> {
    // The last of each id, found on borrowed ids (no copies of them).
    let mut keep = vec![true; events.len()];
    let mut seen = HashSet::with_capacity_and_hasher(events.len(), RandomState::default());
    for (i, e) in events.iter().enumerate().rev() {
        keep[i] = seen.insert(e.event_id);
    }
    drop(seen);
    let mut out: Vec<EventView<'_>> = if keep.iter().all(|&k| k) {
        events
    } else {
        events
            .into_iter()
            .zip(keep)
            .filter_map(|(e, k)| k.then_some(e))
            .collect()
    };
    // Ids are unique now, so the order is total: unstable sorting is exact.
    out.sort_unstable_by(|a, b| (a.ts_ms, a.event_id).cmp(&(b.ts_ms, b.event_id)));
    out
}

/// Packs `events` into blocks of at most `cap` compressed bytes (a block of
/// one event may be larger): duplicates by `event_id` dropped, sorted by
/// time, split in halves until each half fits. Empty for no events.
pub fn pack(events: Vec<EventView<'_>>, cap: usize) -> Result<Vec<Packed>, DynamoHotError> {
    let limits = PackLimits {
        bytes: cap,
        events: usize::MAX,
        zstd_level: ZSTD_LEVEL,
    };
    pack_within(events, limits)
}

/// How [`pack_within`] sizes and compresses blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Compressed bytes of a block above which it is split in halves (a
    /// block of one event may be larger).
    pub bytes: usize,
    /// Events of a block at most: a reader decodes a block whole, so this
    /// bounds the work of reading a few events however well they compress.
    pub events: usize,
    /// zstd level of the bodies.
    pub zstd_level: i32,
}

/// [`pack`] within `limits`: the embedded store, which pays for CPU rather
/// than for bytes and reads more often than DynamoDB is read, packs small
/// blocks at a fast level.
///
/// ```
/// use spate_operators::event::Severity;
/// use spate_operators::sinks::dynamo_hot::block::{PackLimits, pack_within};
/// use spate_operators::sinks::hot::StoredEvent;
/// let event = |n: i64| StoredEvent {
///     event_id: format!("test:{n}"), ts_ms: n, severity: Severity::Error, host: None,
///     source: "test".into(), log_group: None, log_stream: None, tags: vec![],
///     status: None, client_ip: None, message: "boom".into(), attrs: None,
/// };
/// let limits = PackLimits { bytes: 16 * 1024, events: 100, zstd_level: 3 };
/// let events: Vec<StoredEvent> = (0..250).map(event).collect();
/// let blocks = pack_within(events.iter().map(StoredEvent::view).collect(), limits).unwrap();
/// let sizes: Vec<usize> = blocks.iter().map(|b| b.events).collect();
/// assert_eq!(sizes, [100, 100, 50]);
/// ```
pub fn pack_within(
    events: Vec<EventView<'_>>,
    limits: PackLimits,
) -> Result<Vec<Packed>, DynamoHotError> {
    let events = dedup_sorted(events);
    let mut out = Vec::new();
    // Runs of at most RAW_RUNS_PER_CAP × cap bytes before compression (zstd
    // rarely does better than that on logs), so a large commit is not
    // compressed whole again at every halving; and of at most
    // `limits.events` events.
    let run_limit = limits.bytes.saturating_mul(RAW_RUNS_PER_CAP);
    let max_events = limits.events.max(1);
    let (cap, level) = (limits.bytes, limits.zstd_level);
    let mut start = 0;
    let mut raw = 0usize;
    for (i, e) in events.iter().enumerate() {
        let size = raw_estimate(e);
        if i > start && (raw + size > run_limit || i - start == max_events) {
            pack_into(&events[start..i], cap, level, &mut out)?;
            (start, raw) = (i, 0);
        }
        raw += size;
    }
    if start < events.len() {
        pack_into(&events[start..], cap, level, &mut out)?;
    }
    Ok(out)
}

/// Compression ratio [`pack`] plans for when it cuts events into runs.
const RAW_RUNS_PER_CAP: usize = 8;

/// Bytes `e` adds to a block body before compression, roughly.
fn raw_estimate(e: &EventView<'_>) -> usize {
    let opt = |v: Option<&str>| v.map_or(4, str::len);
    32 + e.event_id.len()
        + opt(e.host)
        + e.source.len()
        + opt(e.log_group)
        + opt(e.log_stream)
        + e.tags.iter().map(|t| t.len() + 3).sum::<usize>()
        + opt(e.client_ip)
        + e.message.len()
        + e.attrs.json_len()
}

fn pack_into(
    events: &[EventView<'_>],
    cap: usize,
    level: i32,
    out: &mut Vec<Packed>,
) -> Result<(), DynamoHotError> {
    let packed = encode(events, level)?;
    if packed.bytes.len() <= cap || events.len() == 1 {
        out.push(packed);
        return Ok(());
    }
    let (older, newer) = events.split_at(events.len() / 2);
    pack_into(older, cap, level, out)?;
    pack_into(newer, cap, level, out)
}

/// The first byte of a block in layout 2 (layout 1 is a bare zstd frame,
/// which starts with 0x28).
const LAYOUT_2: u8 = 2;

/// One block of `events` (sorted by time, not empty), in layout 2:
/// `[2][text length][frame length][zstd frame of the text][bin]` (see
/// `columns.rs`).
fn encode(events: &[EventView<'_>], level: i32) -> Result<Packed, DynamoHotError> {
    let body = columns::encode(events);
    let frame = compressed(&body.text, level)?;
    let mut bytes = Vec::with_capacity(frame.len() + body.bin.len() + 12);
    bytes.push(LAYOUT_2);
    put_varint(&mut bytes, body.text.len() as u64);
    put_varint(&mut bytes, frame.len() as u64);
    bytes.extend_from_slice(&frame);
    bytes.extend_from_slice(&body.bin);
    Ok(Packed {
        bytes,
        raw_len: body.text.len() + body.bin.len(),
        events: events.len(),
        first_ms: events.first().map_or(0, |e| e.ts_ms),
        last_ms: events.last().map_or(0, |e| e.ts_ms),
        top: events
            .iter()
            .map(|e| e.severity)
            .max()
            .unwrap_or(Severity::Info),
    })
}

/// `text` as one zstd frame at `level`, by a compression context each thread
/// keeps, since a writer compresses block after block: setting up a fresh
/// context (`ZSTD_createCCtx`) was 4.5 % of the hot-store thread's samples
/// in `spate run` at 300 k events/s. The frame is the same as a fresh
/// context's.
fn compressed(text: &[u8], level: i32) -> Result<Vec<u8>, DynamoHotError> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let failed = |e: std::io::Error| DynamoHotError::Data(format!("block compression: {e}"));
    CONTEXT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let context = match cell.as_mut() {
            Some(context) => context,
            None => cell.insert(zstd::bulk::Compressor::new(level).map_err(failed)?),
        };
        context.set_compression_level(level).map_err(failed)?;
        context.compress(text).map_err(failed)
    })
}

/// The events of a stored block, oldest first: layout 2, or layout 1 (a
/// zstd frame of JSON columns, `raw_len` bytes uncompressed, as stored in
/// its item's `raw`).
pub fn unpack(bytes: &[u8], raw_len: Option<usize>) -> Result<Vec<StoredEvent>, DynamoHotError> {
    unpack_where(bytes, raw_len, column_reader::every_event)
}

/// The events of a stored block that `select` picks by their times and
/// severities (oldest first, as stored; see
/// [`decode_where`](super::column_reader::decode_where)), oldest first:
/// only those are built.
pub fn unpack_where(
    bytes: &[u8],
    raw_len: Option<usize>,
    select: impl FnOnce(&[i64], &[Severity]) -> Vec<bool>,
) -> Result<Vec<StoredEvent>, DynamoHotError> {
    if bytes.first() != Some(&LAYOUT_2) {
        let raw_len = raw_len.ok_or_else(|| {
            DynamoHotError::Data("block of layout 1 without its raw length".into())
        })?;
        let events = block_v1::unpack(bytes, raw_len)?;
        let times: Vec<i64> = events.iter().map(|e| e.ts_ms).collect();
        let severities: Vec<Severity> = events.iter().map(|e| e.severity).collect();
        let picked = select(&times, &severities);
        return Ok(events
            .into_iter()
            .zip(picked)
            .filter_map(|(e, keep)| keep.then_some(e))
            .collect());
    }
    let mut r = Reader::new(&bytes[1..]);
    let text_len = r.len()?;
    let frame_len = r.len()?;
    if text_len > MAX_RAW_BYTES {
        return Err(DynamoHotError::Data(format!(
            "block body of {text_len} bytes is above the {MAX_RAW_BYTES} bytes a reader accepts"
        )));
    }
    let frame = r.take(frame_len)?;
    let bin = r.take(r.remaining())?;
    with_decompressed(frame, text_len, |text| {
        column_reader::decode_where(text, bin, select)
    })
}

/// Bytes of decompression buffer a thread keeps between blocks.
const KEPT_BUFFER_BYTES: usize = 1 << 20;

/// `read` of `frame` decompressed, which must come to `len` bytes: one zstd
/// context and one buffer a thread, reused (a reader decompresses block
/// after block).
fn with_decompressed<T>(
    frame: &[u8],
    len: usize,
    read: impl FnOnce(&[u8]) -> Result<T, DynamoHotError>,
) -> Result<T, DynamoHotError> {
    type Reused = Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>;
    thread_local! {
        static REUSED: std::cell::RefCell<Reused> = const { std::cell::RefCell::new(None) };
    }
    let failed =
        |e: std::io::Error| DynamoHotError::Data(format!("block body does not decompress: {e}"));
    REUSED.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (context, buffer) = match cell.as_mut() {
            Some(reused) => reused,
            None => cell.insert((zstd::bulk::Decompressor::new().map_err(failed)?, Vec::new())),
        };
        buffer.clear();
        buffer.reserve(len);
        let result = match context.decompress_to_buffer(frame, buffer) {
            Ok(n) if n == len => read(buffer),
            Ok(n) => Err(DynamoHotError::Data(format!(
                "block body is {n} bytes, not {len}"
            ))),
            Err(e) => Err(failed(e)),
        };
        if buffer.capacity() > KEPT_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::event::tests::stored;

    fn views(events: &[StoredEvent]) -> Vec<EventView<'_>> {
        events.iter().map(StoredEvent::view).collect()
    }

    #[test]
    fn blocks_round_trip() {
        let events: Vec<StoredEvent> = (0..200).map(|i| stored(i, 1_000 + i as i64 * 3)).collect();
        let blocks = pack(views(&events), MAX_BLOCK_BYTES).unwrap();
        assert_eq!(blocks.len(), 1);
        let b = &blocks[0];
        assert_eq!((b.events, b.first_ms, b.last_ms), (200, 1_000, 1_597));
        assert_eq!(b.top, Severity::Critical);
        assert!(
            b.bytes.len() < b.raw_len / 4,
            "{} of {}",
            b.bytes.len(),
            b.raw_len
        );
        assert_eq!(unpack(&b.bytes, None).unwrap(), events);
    }

    #[test]
    fn duplicates_are_kept_once_and_the_order_is_by_time() {
        let a = stored(1, 50);
        let b = stored(2, 10);
        let mut again = a.clone();
        again.message = "the redelivered copy".into();
        let given = [a, b.clone(), again.clone()];
        let blocks = pack(views(&given), MAX_BLOCK_BYTES).unwrap();
        let back = unpack(&blocks[0].bytes, None).unwrap();
        assert_eq!(back, [b, again]);
        assert!(pack(Vec::new(), MAX_BLOCK_BYTES).unwrap().is_empty());
    }

    #[test]
    fn big_batches_split_under_the_cap_and_keep_every_event() {
        // Incompressible messages: about 1 KB an event compressed.
        let events: Vec<StoredEvent> = (0..300)
            .map(|i| {
                let mut e = stored(i, i as i64);
                e.message = (0..64)
                    .map(|k| format!("{:016x}", (i * 64 + k).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                    .collect();
                e
            })
            .collect();
        let cap = 32 * 1024;
        let blocks = pack(views(&events), cap).unwrap();
        assert!(blocks.len() >= 4, "{}", blocks.len());
        assert!(blocks.iter().all(|b| b.bytes.len() <= cap));
        let back: Vec<StoredEvent> = blocks
            .iter()
            .flat_map(|b| unpack(&b.bytes, None).unwrap())
            .collect();
        assert_eq!(back, events);
        assert!(blocks.windows(2).all(|w| w[0].last_ms <= w[1].first_ms));
        // One event larger than the cap is a block of its own.
        let one = pack(views(&events[..1]), 16).unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn broken_bodies_are_errors() {
        let b = &pack(views(&[stored(1, 1)]), MAX_BLOCK_BYTES).unwrap()[0];
        for cut in [1, 2, b.bytes.len() / 2, b.bytes.len() - 1] {
            assert!(unpack(&b.bytes[..cut], None).is_err(), "cut at {cut}");
        }
        assert!(unpack(&[], None).is_err());
        assert!(unpack(b"not zstd", Some(100)).is_err());
        assert!(
            unpack(b"not zstd", None).is_err(),
            "layout 1 needs its length"
        );
        let mut huge = vec![LAYOUT_2];
        put_varint(&mut huge, MAX_RAW_BYTES as u64 + 1);
        huge.extend_from_slice(&b.bytes[2..]);
        assert!(unpack(&huge, None).is_err());
        let mut wrong_length = b.bytes.clone();
        wrong_length[1] -= 1;
        assert!(unpack(&wrong_length, None).is_err());
    }

    #[test]
    fn blocks_of_layout_1_still_read() {
        let events: Vec<StoredEvent> = (0..20).map(|i| stored(i, 1_000 + i as i64)).collect();
        let (bytes, raw_len) = block_v1::encode(&events).unwrap();
        assert_eq!(unpack(&bytes, Some(raw_len)).unwrap(), events);
    }

    #[test]
    fn the_kept_context_compresses_as_a_fresh_one_at_each_level() {
        let text: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("event {} of service-{}\n", i * 7919 % 1000, i % 13).into_bytes())
            .collect();
        for level in [3, 19, 1, 3, -5] {
            let kept = compressed(&text, level).unwrap();
            assert_eq!(
                kept,
                zstd::bulk::compress(&text, level).unwrap(),
                "level {level}"
            );
        }
        assert_ne!(
            compressed(&text, 19).unwrap(),
            compressed(&text, 1).unwrap()
        );
    }

    #[test]
    fn spans_are_minutes() {
        assert_eq!(span_start(1_763_892_059_999), 1_763_892_000_000);
        assert_eq!(span_start(1_763_892_060_000), 1_763_892_060_000);
        assert_eq!(span_start(-1), -60_000);
    }
}
