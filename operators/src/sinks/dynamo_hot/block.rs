//! Packed hot blocks: many hot events of one service and one minute in one
//! DynamoDB item, so that write units follow compressed bytes, not events.
//!
//! A block's body is its events column by column (ids, time deltas,
//! severities, hosts, ..., messages, attributes), JSON-encoded and
//! compressed with zstd: values of one column sit together, so the
//! compressor sees the repeats of services, sources, hosts and message
//! templates. [`pack`] sorts the events by time, keeps one event per
//! `event_id` (a redelivered batch merged into the same block does not add
//! its events twice) and splits them into blocks of at most
//! [`MAX_BLOCK_BYTES`] compressed bytes; [`unpack`] reads one back. Every
//! function here is pure.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::DynamoHotError;
use crate::event::Severity;
use crate::sinks::hot::HotEvent;
use crate::sinks::hot::query::rfc3339_ms;

/// Events of one block share the minute of their time: the span of a block.
pub const BLOCK_SPAN_MS: i64 = 60_000;

/// Compressed bytes of a block above which its events are split into two
/// blocks (a single event is never split). DynamoDB items are at most
/// 400 KB; one event is at most two fields of
/// [`MAX_TEXT_BYTES`](super::items::MAX_TEXT_BYTES) plus its keys.
pub const MAX_BLOCK_BYTES: usize = 64 * 1024;

/// Largest body [`unpack`] decompresses (a corrupt or hostile item cannot make
/// a reader allocate more).
pub const MAX_RAW_BYTES: usize = 64 << 20;

/// zstd level of block bodies.
const ZSTD_LEVEL: i32 = 9;

/// Version of the body layout (`v`).
const BODY_VERSION: u32 = 1;

/// One hot event as a block keeps it (the service is the block's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Stable id from the source position.
    pub event_id: String,
    /// Event time, UTC milliseconds.
    pub ts_ms: i64,
    /// Its severity.
    pub severity: Severity,
    /// Host name or address.
    pub host: Option<String>,
    /// Where the event came from.
    pub source: String,
    /// CloudWatch Logs group.
    pub log_group: Option<String>,
    /// CloudWatch Logs stream.
    pub log_stream: Option<String>,
    /// Tags set by the classifier.
    pub tags: Vec<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Client IP address.
    pub client_ip: Option<String>,
    /// The message (already bounded).
    pub message: String,
    /// Remaining fields as a JSON object (already bounded).
    pub attrs: Option<String>,
}

impl StoredEvent {
    /// The event as `spate hot recent` shows it, of `service`.
    pub fn into_hot_event(self, service: &str) -> Result<HotEvent, DynamoHotError> {
        let attrs = match self.attrs {
            Some(a) => Some(serde_json::from_str(&a).map_err(|e| {
                DynamoHotError::Data(format!(
                    "stored attrs of {} are not JSON: {e}",
                    self.event_id
                ))
            })?),
            None => None,
        };
        Ok(HotEvent {
            time: rfc3339_ms(self.ts_ms),
            ts_ms: self.ts_ms,
            service: service.to_string(),
            severity: self.severity.as_str().to_string(),
            host: self.host,
            source: self.source,
            log_group: self.log_group,
            log_stream: self.log_stream,
            tags: self.tags,
            status: self.status,
            client_ip: self.client_ip,
            message: self.message,
            attrs,
            event_id: self.event_id,
        })
    }
}

/// The body of a block: one vector per field, `ts` as differences from the
/// previous event (the first from 0).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    v: u32,
    id: Vec<String>,
    ts: Vec<i64>,
    sev: Vec<u8>,
    host: Vec<Option<String>>,
    src: Vec<String>,
    lg: Vec<Option<String>>,
    ls: Vec<Option<String>>,
    tags: Vec<Vec<String>>,
    st: Vec<Option<u16>>,
    ip: Vec<Option<String>>,
    msg: Vec<String>,
    attrs: Vec<Option<String>>,
}

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
pub fn dedup_sorted(events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    let mut seen = HashSet::with_capacity(events.len());
    let mut out: Vec<StoredEvent> = Vec::with_capacity(events.len());
    for e in events.into_iter().rev() {
        if seen.insert(e.event_id.clone()) {
            out.push(e);
        }
    }
    out.sort_by(|a, b| (a.ts_ms, &a.event_id).cmp(&(b.ts_ms, &b.event_id)));
    out
}

/// Packs `events` into blocks of at most `cap` compressed bytes (a block of
/// one event may be larger): duplicates by `event_id` dropped, sorted by
/// time, split in halves until each half fits. Empty for no events.
pub fn pack(events: Vec<StoredEvent>, cap: usize) -> Result<Vec<Packed>, DynamoHotError> {
    let events = dedup_sorted(events);
    let mut out = Vec::new();
    // Runs of at most RAW_RUNS_PER_CAP × cap bytes before compression (zstd
    // rarely does better than that on logs), so a large commit is not
    // compressed whole again at every halving.
    let run_limit = cap.saturating_mul(RAW_RUNS_PER_CAP);
    let mut start = 0;
    let mut raw = 0usize;
    for (i, e) in events.iter().enumerate() {
        let size = raw_estimate(e);
        if i > start && raw + size > run_limit {
            pack_into(&events[start..i], cap, &mut out)?;
            (start, raw) = (i, 0);
        }
        raw += size;
    }
    if start < events.len() {
        pack_into(&events[start..], cap, &mut out)?;
    }
    Ok(out)
}

/// Compression ratio [`pack`] plans for when it cuts events into runs.
const RAW_RUNS_PER_CAP: usize = 8;

/// Bytes `e` adds to a block body before compression, roughly.
fn raw_estimate(e: &StoredEvent) -> usize {
    let opt = |v: &Option<String>| v.as_ref().map_or(4, String::len);
    32 + e.event_id.len()
        + opt(&e.host)
        + e.source.len()
        + opt(&e.log_group)
        + opt(&e.log_stream)
        + e.tags.iter().map(|t| t.len() + 3).sum::<usize>()
        + opt(&e.client_ip)
        + e.message.len()
        + opt(&e.attrs)
}

fn pack_into(
    events: &[StoredEvent],
    cap: usize,
    out: &mut Vec<Packed>,
) -> Result<(), DynamoHotError> {
    let packed = encode(events)?;
    if packed.bytes.len() <= cap || events.len() == 1 {
        out.push(packed);
        return Ok(());
    }
    let (older, newer) = events.split_at(events.len() / 2);
    pack_into(older, cap, out)?;
    pack_into(newer, cap, out)
}

/// One block of `events` (sorted by time, not empty).
fn encode(events: &[StoredEvent]) -> Result<Packed, DynamoHotError> {
    let mut body = Body {
        v: BODY_VERSION,
        ..Body::default()
    };
    let mut previous = 0i64;
    let mut top = Severity::Info;
    for e in events {
        body.id.push(e.event_id.clone());
        body.ts.push(e.ts_ms.wrapping_sub(previous));
        previous = e.ts_ms;
        body.sev.push(e.severity.index() as u8);
        top = top.max(e.severity);
        body.host.push(e.host.clone());
        body.src.push(e.source.clone());
        body.lg.push(e.log_group.clone());
        body.ls.push(e.log_stream.clone());
        body.tags.push(e.tags.clone());
        body.st.push(e.status);
        body.ip.push(e.client_ip.clone());
        body.msg.push(e.message.clone());
        body.attrs.push(e.attrs.clone());
    }
    let raw =
        serde_json::to_vec(&body).map_err(|e| DynamoHotError::Data(format!("block body: {e}")))?;
    let bytes = zstd::bulk::compress(&raw, ZSTD_LEVEL)
        .map_err(|e| DynamoHotError::Data(format!("block compression: {e}")))?;
    Ok(Packed {
        bytes,
        raw_len: raw.len(),
        events: events.len(),
        first_ms: events.first().map_or(0, |e| e.ts_ms),
        last_ms: events.last().map_or(0, |e| e.ts_ms),
        top,
    })
}

/// The events of a block body (`raw_len` as stored with it), oldest first.
pub fn unpack(bytes: &[u8], raw_len: usize) -> Result<Vec<StoredEvent>, DynamoHotError> {
    if raw_len > MAX_RAW_BYTES {
        return Err(DynamoHotError::Data(format!(
            "block body of {raw_len} bytes is above the {MAX_RAW_BYTES} bytes a reader accepts"
        )));
    }
    let raw = zstd::bulk::decompress(bytes, raw_len)
        .map_err(|e| DynamoHotError::Data(format!("block body does not decompress: {e}")))?;
    let body: Body = serde_json::from_slice(&raw)
        .map_err(|e| DynamoHotError::Data(format!("block body is not readable: {e}")))?;
    if body.v != BODY_VERSION {
        return Err(DynamoHotError::Data(format!(
            "block body version {} (this build reads {BODY_VERSION})",
            body.v
        )));
    }
    let n = body.id.len();
    let lengths = [
        body.ts.len(),
        body.sev.len(),
        body.host.len(),
        body.src.len(),
        body.lg.len(),
        body.ls.len(),
        body.tags.len(),
        body.st.len(),
        body.ip.len(),
        body.msg.len(),
        body.attrs.len(),
    ];
    if lengths.iter().any(|&l| l != n) {
        return Err(DynamoHotError::Data(
            "block body columns differ in length".into(),
        ));
    }
    let mut out = Vec::with_capacity(n);
    let mut ts = 0i64;
    let columns = body
        .id
        .into_iter()
        .zip(body.ts)
        .zip(body.sev)
        .zip(body.host)
        .zip(body.src)
        .zip(body.lg)
        .zip(body.ls)
        .zip(body.tags)
        .zip(body.st)
        .zip(body.ip)
        .zip(body.msg)
        .zip(body.attrs);
    for (((((((((((id, dt), sev), host), src), lg), ls), tags), st), ip), msg), attrs) in columns {
        ts = ts.wrapping_add(dt);
        let severity = *Severity::ALL.get(usize::from(sev)).ok_or_else(|| {
            DynamoHotError::Data(format!("block event {id} has severity index {sev}"))
        })?;
        out.push(StoredEvent {
            event_id: id,
            ts_ms: ts,
            severity,
            host,
            source: src,
            log_group: lg,
            log_stream: ls,
            tags,
            status: st,
            client_ip: ip,
            message: msg,
            attrs,
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A W1-like hot event: `i` decides the id, time, host and message.
    pub(crate) fn stored(i: u64, ts_ms: i64) -> StoredEvent {
        StoredEvent {
            event_id: format!("sqs:queue:{i}"),
            ts_ms,
            severity: if i.is_multiple_of(7) {
                Severity::Critical
            } else {
                Severity::Error
            },
            host: Some(format!("ip-10-0-{}-{}", i % 3, i % 11)),
            source: "sqs:queue".into(),
            log_group: i.is_multiple_of(2).then(|| "/app/api".to_string()),
            log_stream: None,
            tags: if i.is_multiple_of(5) {
                vec!["http_5xx".into()]
            } else {
                Vec::new()
            },
            status: i.is_multiple_of(5).then_some(503),
            client_ip: None,
            message: format!(
                "upstream timeout after {} ms talking to db-{}",
                1000 + i,
                i % 4
            ),
            attrs: Some(format!(
                "{{\"span_id\":\"{:016x}\",\"env\":\"prod\"}}",
                i * 7919
            )),
        }
    }

    #[test]
    fn blocks_round_trip() {
        let events: Vec<StoredEvent> = (0..200).map(|i| stored(i, 1_000 + i as i64 * 3)).collect();
        let blocks = pack(events.clone(), MAX_BLOCK_BYTES).unwrap();
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
        assert_eq!(unpack(&b.bytes, b.raw_len).unwrap(), events);
    }

    #[test]
    fn duplicates_are_kept_once_and_the_order_is_by_time() {
        let a = stored(1, 50);
        let b = stored(2, 10);
        let mut again = a.clone();
        again.message = "the redelivered copy".into();
        let blocks = pack(vec![a, b.clone(), again.clone()], MAX_BLOCK_BYTES).unwrap();
        let back = unpack(&blocks[0].bytes, blocks[0].raw_len).unwrap();
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
        let blocks = pack(events.clone(), cap).unwrap();
        assert!(blocks.len() >= 4, "{}", blocks.len());
        assert!(blocks.iter().all(|b| b.bytes.len() <= cap));
        let back: Vec<StoredEvent> = blocks
            .iter()
            .flat_map(|b| unpack(&b.bytes, b.raw_len).unwrap())
            .collect();
        assert_eq!(back, events);
        assert!(blocks.windows(2).all(|w| w[0].last_ms <= w[1].first_ms));
        // One event larger than the cap is a block of its own.
        let one = pack(events[..1].to_vec(), 16).unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn broken_bodies_are_errors() {
        let b = &pack(vec![stored(1, 1)], MAX_BLOCK_BYTES).unwrap()[0];
        assert!(unpack(&b.bytes[..b.bytes.len() / 2], b.raw_len).is_err());
        assert!(unpack(b"not zstd", 100).is_err());
        assert!(unpack(&b.bytes, MAX_RAW_BYTES + 1).is_err());
        let bad = zstd::bulk::compress(br#"{"v":1,"id":["a"]}"#, 1).unwrap();
        assert!(unpack(&bad, 100).is_err(), "columns of different lengths");
    }

    #[test]
    fn spans_are_minutes() {
        assert_eq!(span_start(1_763_892_059_999), 1_763_892_000_000);
        assert_eq!(span_start(1_763_892_060_000), 1_763_892_060_000);
        assert_eq!(span_start(-1), -60_000);
    }

    #[test]
    fn stored_events_read_back_as_hot_events() {
        let e = stored(10, 1_763_892_000_123).into_hot_event("api").unwrap();
        assert_eq!(e.service, "api");
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.time, "2025-11-23T10:00:00.123Z");
        assert_eq!(e.status, Some(503));
        assert_eq!(e.attrs.unwrap()["env"], "prod");
        let mut broken = stored(1, 1);
        broken.attrs = Some("{".into());
        assert!(broken.into_hot_event("api").is_err());
    }
}
