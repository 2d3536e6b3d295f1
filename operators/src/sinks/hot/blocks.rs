//! Packed hot events in the embedded store: the events of each service and
//! minute of one commit in one `event_blocks` row, in the block layout the
//! DynamoDB store writes ([`block`](crate::sinks::dynamo_hot::block)),
//! compressed at a fast zstd level.
//!
//! A commit of the hot writer turns its buffered rows into
//! [`BlockRow`]s ([`block_rows`], pure), then inserts them
//! ([`insert_blocks`]): one row, with three small index entries, per service
//! and minute instead of one row and three index entries per event. The
//! rows carry what the questions filter on without opening a block: the
//! span, the times of the oldest and newest event, their latest arrival,
//! the highest severity.
//!
//! Redelivery: one block never holds an event twice (the events of a
//! commit are deduplicated by `event_id`); a batch redelivered in a later
//! commit lands in another block, and
//! [`HotStore::recent`](super::HotStore::recent) keeps one event
//! per `event_id`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::{Transaction, params};

use super::event_view::EventView;
use super::rows::HotRows;
use super::{HotError, StoredEvent};
use crate::event::Severity;
use crate::sinks::dynamo_hot::block::{PackLimits, pack_within, span_start, unpack, unpack_where};

/// Compressed bytes of a block above which its events are split: a block
/// is read whole, so small blocks answer "the 100 newest" with little to
/// decode (a W1 block of 16 KiB holds a few hundred events).
pub const BLOCK_BYTES: usize = 16 * 1024;

/// Events of a block at most: "the 100 newest" decodes one or two blocks
/// whole, however well their events compress.
pub const BLOCK_EVENTS: usize = 256;

/// zstd level of the embedded store's blocks: its disk is cheap and its
/// CPU is the pipeline's, so a fast level (the DynamoDB store, billed by
/// the byte, packs at 15).
pub const ZSTD_LEVEL: i32 = 3;

const INSERT_BLOCK: &str = "INSERT INTO event_blocks (service, span_ms, first_ms, last_ms, \
     ingest_ms, events, top, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// One `event_blocks` row, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    /// The service of every event in the block.
    pub service: Arc<str>,
    /// Start of the minute (event time) of every event in the block.
    pub span_ms: i64,
    /// Time of the oldest event.
    pub first_ms: i64,
    /// Time of the newest event.
    pub last_ms: i64,
    /// The latest arrival (`ingest_ts`) of the events of its service and
    /// span in the commit: retention counts from it.
    pub ingest_ms: i64,
    /// Events in the block.
    pub events: usize,
    /// The highest severity in the block.
    pub top: Severity,
    /// The block, as [`unpack`] reads it.
    pub body: Vec<u8>,
}

impl BlockRow {
    /// The events of the block, oldest first.
    pub fn unpack(&self) -> Result<Vec<StoredEvent>, HotError> {
        unpack_body(&self.body)
    }
}

/// The events of a stored block body, oldest first.
pub fn unpack_body(body: &[u8]) -> Result<Vec<StoredEvent>, HotError> {
    unpack(body, None).map_err(|e| HotError::Data(e.to_string()))
}

/// The events of a stored block body that `select` picks by their times
/// and severities (see
/// [`unpack_where`](crate::sinks::dynamo_hot::block::unpack_where)), oldest
/// first.
pub fn unpack_body_where(
    body: &[u8],
    select: impl FnOnce(&[i64], &[Severity]) -> Vec<bool>,
) -> Result<Vec<StoredEvent>, HotError> {
    unpack_where(body, None, select).map_err(|e| HotError::Data(e.to_string()))
}

/// The blocks of `events` (each with its service and arrival time): one
/// group per service and span
/// ([`BLOCK_SPAN_MS`](crate::sinks::dynamo_hot::block::BLOCK_SPAN_MS)), each packed into blocks
/// of at most [`BLOCK_BYTES`] compressed bytes and [`BLOCK_EVENTS`] events, one event per `event_id` a
/// group. Ordered by service, then span.
///
/// ```
/// use std::sync::Arc;
/// use spate_operators::event::Severity;
/// use spate_operators::sinks::hot::StoredEvent;
/// use spate_operators::sinks::hot::blocks::block_rows;
/// let event = |id: &str, ts_ms: i64| StoredEvent {
///     event_id: id.into(), ts_ms, severity: Severity::Error, host: None,
///     source: "test".into(), log_group: None, log_stream: None, tags: vec![],
///     status: None, client_ip: None, message: "boom".into(), attrs: None,
/// };
/// let api: Arc<str> = Arc::from("api");
/// let (a, b, c) = (event("a", 60_000), event("b", 119_999), event("c", 120_000));
/// let blocks = block_rows(vec![
///     (api.clone(), a.view(), 61_000),
///     (api.clone(), b.view(), 120_500),
///     (api.clone(), c.view(), 121_000),
/// ]).unwrap();
/// assert_eq!(blocks.len(), 2, "one block per minute");
/// assert_eq!((blocks[0].span_ms, blocks[0].events, blocks[0].ingest_ms), (60_000, 2, 120_500));
/// assert_eq!(blocks[1].unpack().unwrap()[0].event_id, "c");
/// ```
pub fn block_rows<'a>(
    events: impl IntoIterator<Item = (Arc<str>, EventView<'a>, i64)>,
) -> Result<Vec<BlockRow>, HotError> {
    let mut groups: BTreeMap<(Arc<str>, i64), (Vec<EventView<'a>>, i64)> = BTreeMap::new();
    for (service, event, ingest_ms) in events {
        let group = groups
            .entry((service, span_start(event.ts_ms)))
            .or_insert_with(|| (Vec::new(), i64::MIN));
        group.1 = group.1.max(ingest_ms);
        group.0.push(event);
    }
    let mut out = Vec::new();
    for ((service, span_ms), (events, ingest_ms)) in groups {
        let limits = PackLimits {
            bytes: BLOCK_BYTES,
            events: BLOCK_EVENTS,
            zstd_level: ZSTD_LEVEL,
        };
        let packed = pack_within(events, limits).map_err(|e| HotError::Data(e.to_string()))?;
        for p in packed {
            out.push(BlockRow {
                service: service.clone(),
                span_ms,
                first_ms: p.first_ms,
                last_ms: p.last_ms,
                ingest_ms,
                events: p.events,
                top: p.top,
                body: p.bytes,
            });
        }
    }
    Ok(out)
}

/// Owned `(service, event, arrival)` triples, borrowed as [`block_rows`]
/// takes them.
pub(super) fn viewed(
    events: &[(Arc<str>, StoredEvent, i64)],
) -> impl Iterator<Item = (Arc<str>, EventView<'_>, i64)> {
    events.iter().map(|(s, e, t)| (s.clone(), e.view(), *t))
}

/// The blocks of the hot rows of a commit.
pub fn hot_block_rows(rows: &[HotRows]) -> Result<Vec<BlockRow>, HotError> {
    let mut events = Vec::with_capacity(rows.iter().map(HotRows::len).sum());
    for r in rows {
        for (event, ingest_ms) in EventView::of_rows(r)? {
            events.push((r.service.clone(), event, ingest_ms));
        }
    }
    block_rows(events)
}

/// Inserts `blocks` in `tx`; returns the events they hold.
pub(super) fn insert_blocks(tx: &Transaction<'_>, blocks: &[BlockRow]) -> Result<u64, HotError> {
    let mut stmt = tx
        .prepare_cached(INSERT_BLOCK)
        .map_err(HotError::sqlite("prepare block insert"))?;
    let mut events = 0u64;
    for b in blocks {
        stmt.execute(params![
            &*b.service,
            b.span_ms,
            b.first_ms,
            b.last_ms,
            b.ingest_ms,
            i64::try_from(b.events).unwrap_or(i64::MAX),
            b.top.index() as i64,
            b.body,
        ])
        .map_err(HotError::sqlite("insert block"))?;
        events += b.events as u64;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::event::tests::stored;

    #[test]
    fn groups_by_service_and_minute_and_drops_repeated_ids() {
        let api: Arc<str> = Arc::from("api");
        let web: Arc<str> = Arc::from("web");
        let t0 = 1_763_892_000_000; // a minute's start
        let given = [
            (api.clone(), stored(1, t0 + 5), t0 + 10),
            (web.clone(), stored(2, t0 + 6), t0 + 11),
            (api.clone(), stored(3, t0 + 60_000), t0 + 60_001),
            // Redelivered within the same commit: kept once.
            (api.clone(), stored(1, t0 + 5), t0 + 20),
        ];
        let blocks = block_rows(viewed(&given)).unwrap();
        let keys: Vec<(&str, i64, usize)> = blocks
            .iter()
            .map(|b| (&*b.service, b.span_ms, b.events))
            .collect();
        assert_eq!(
            keys,
            [("api", t0, 1), ("api", t0 + 60_000, 1), ("web", t0, 1)]
        );
        // The latest arrival of the group, even of a dropped copy.
        assert_eq!(blocks[0].ingest_ms, t0 + 20);
        assert_eq!(blocks[0].unpack().unwrap(), [stored(1, t0 + 5)]);
        assert_eq!(blocks[0].top, stored(1, 0).severity);
        assert!(block_rows(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn large_groups_split_into_blocks_of_bounded_size() {
        let api: Arc<str> = Arc::from("api");
        let t0 = 1_763_892_000_000;
        let events: Vec<_> = (0..20_000)
            .map(|i| (api.clone(), stored(i, t0 + (i as i64 % 60_000)), t0))
            .collect();
        let blocks = block_rows(viewed(&events)).unwrap();
        assert!(blocks.len() > 1, "{} blocks", blocks.len());
        assert!(blocks.iter().all(|b| b.body.len() <= BLOCK_BYTES));
        assert!(blocks.iter().all(|b| b.events <= BLOCK_EVENTS));
        let total: usize = blocks.iter().map(|b| b.events).sum();
        assert_eq!(total, 20_000);
        let mut ids = std::collections::HashSet::new();
        for b in &blocks {
            let events = b.unpack().unwrap();
            assert_eq!(events.first().unwrap().ts_ms, b.first_ms);
            assert_eq!(events.last().unwrap().ts_ms, b.last_ms);
            ids.extend(events.into_iter().map(|e| e.event_id));
        }
        assert_eq!(ids.len(), 20_000);
    }
}
