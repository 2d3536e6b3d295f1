//! Schema version 4: the `events` table (one row per event) becomes
//! `event_blocks` (packed, [`blocks`](super::blocks)).
//!
//! The migration reads the old rows in service and time order (the
//! `(service, ts)` index), packs each service's minute as it completes, and
//! drops the old table, all in the writer's schema transaction: a crash
//! midway leaves the file at version 3, migrated again at the next start.

use std::sync::Arc;

use rusqlite::{Row, Transaction};

use super::blocks::{block_rows, insert_blocks, viewed};
use super::event::stored_attrs;
use super::{HotError, StoredEvent};
use crate::event::Severity;
use crate::sinks::dynamo_hot::block::span_start;

/// The table version 4 adds.
pub const CREATE_V4: &str = "
CREATE TABLE event_blocks (
    service   TEXT    NOT NULL,
    span_ms   INTEGER NOT NULL,
    first_ms  INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    ingest_ms INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    top       INTEGER NOT NULL,
    body      BLOB    NOT NULL
);
CREATE INDEX event_blocks_service_last ON event_blocks (service, last_ms);
CREATE INDEX event_blocks_last ON event_blocks (last_ms);
CREATE INDEX event_blocks_ingest ON event_blocks (ingest_ms);
";

/// Creates `event_blocks`, moves every row of `events` into blocks and
/// drops `events`; returns the events moved.
pub fn events_to_blocks(tx: &Transaction<'_>) -> Result<u64, HotError> {
    tx.execute_batch(CREATE_V4)
        .map_err(HotError::sqlite("migrate to schema version 4"))?;
    let mut moved = 0u64;
    {
        let mut stmt = tx
            .prepare(
                "SELECT event_id, ts, service, severity, host, source, log_group, log_stream, \
                 tags, status, client_ip, message, attrs, ingest_ts FROM events \
                 ORDER BY service, ts",
            )
            .map_err(HotError::sqlite("read events to migrate"))?;
        let mut rows = stmt
            .query([])
            .map_err(HotError::sqlite("read events to migrate"))?;
        let mut group: Vec<(Arc<str>, StoredEvent, i64)> = Vec::new();
        let mut key: Option<(Arc<str>, i64)> = None;
        while let Some(row) = rows
            .next()
            .map_err(HotError::sqlite("read events to migrate"))?
        {
            let (service, event, ingest_ms) = legacy_event(row)?;
            let this = (service, span_start(event.ts_ms));
            if key.as_ref().is_some_and(|k| *k != this) {
                moved += insert_blocks(tx, &block_rows(viewed(&group))?)?;
                group.clear();
            }
            group.push((this.0.clone(), event, ingest_ms));
            key = Some(this);
        }
        moved += insert_blocks(tx, &block_rows(viewed(&group))?)?;
    }
    tx.execute_batch("DROP TABLE events")
        .map_err(HotError::sqlite("drop the events table"))?;
    Ok(moved)
}

/// One row of the version 3 `events` table: its service, event and arrival.
fn legacy_event(r: &Row<'_>) -> Result<(Arc<str>, StoredEvent, i64), HotError> {
    let get = |source| HotError::Sqlite {
        op: "read an event to migrate",
        source,
    };
    let event_id: String = r.get(0).map_err(get)?;
    let severity: String = r.get(3).map_err(get)?;
    let severity: Severity = severity
        .parse()
        .map_err(|e| HotError::Data(format!("stored severity of {event_id}: {e}")))?;
    let tags: String = r.get(8).map_err(get)?;
    let tags: Vec<String> = serde_json::from_str(&tags)
        .map_err(|e| HotError::Data(format!("stored tags of {event_id}: {e}")))?;
    let ts_ms: i64 = r.get(1).map_err(get)?;
    let service: String = r.get(2).map_err(get)?;
    let event = StoredEvent {
        ts_ms,
        severity,
        host: r.get(4).map_err(get)?,
        source: r.get(5).map_err(get)?,
        log_group: r.get(6).map_err(get)?,
        log_stream: r.get(7).map_err(get)?,
        tags,
        status: r
            .get::<_, Option<i64>>(9)
            .map_err(get)?
            .and_then(|s| u16::try_from(s).ok()),
        client_ip: r.get(10).map_err(get)?,
        message: r.get(11).map_err(get)?,
        attrs: r
            .get::<_, Option<String>>(12)
            .map_err(get)?
            .as_deref()
            .map(stored_attrs),
        event_id,
    };
    let ingest_ms: Option<i64> = r.get(13).map_err(get)?;
    Ok((Arc::from(service), event, ingest_ms.unwrap_or(ts_ms)))
}
