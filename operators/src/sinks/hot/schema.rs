//! The hot store's tables, their version, and the connection settings.
//!
//! The schema is versioned with `PRAGMA user_version`: a new file is created at
//! [`SCHEMA_VERSION`]; a file of version 1 to 3 is migrated by the writer
//! (version 2 added the `baselines` and `silences` tables of the alert
//! router, version 3 the events' `ingest_ts`, which retention counts from,
//! and the `expired` tally, version 4 packed the events into blocks,
//! [`migrate`](super::migrate)); a file at another version is refused rather
//! than misread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{HotError, migrate};

/// The schema version this build creates and reads.
pub const SCHEMA_VERSION: i64 = 4;

/// How long a statement waits for a lock held by another connection (a reader
/// checkpointing, the CLI) before failing with `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The WAL file is truncated back to this size after a checkpoint.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Page cache of the writing connection (KiB). Pages it drops stay in the
/// operating system's file cache, so a smaller one costs copies, not disk
/// reads: in the W4 spike run 16 MiB peaked 60–75 MiB lower than 64 MiB at the
/// same CPU, and 4 MiB no lower than 16 (`docs/BENCHMARKS.md`).
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Tables and indexes of version 1.
const CREATE_V1: &str = "
CREATE TABLE events (
    event_id   TEXT    NOT NULL PRIMARY KEY,
    ts         INTEGER NOT NULL,
    service    TEXT    NOT NULL,
    severity   TEXT    NOT NULL,
    host       TEXT,
    source     TEXT    NOT NULL,
    log_group  TEXT,
    log_stream TEXT,
    tags       TEXT    NOT NULL,
    status     INTEGER,
    client_ip  TEXT,
    message    TEXT    NOT NULL,
    attrs      TEXT
);
CREATE INDEX events_service_ts ON events (service, ts);
CREATE INDEX events_ts ON events (ts);

CREATE TABLE windows (
    window_start_ms INTEGER NOT NULL,
    service         TEXT    NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    info            INTEGER NOT NULL,
    warning         INTEGER NOT NULL,
    error           INTEGER NOT NULL,
    critical        INTEGER NOT NULL,
    tags            TEXT    NOT NULL,
    PRIMARY KEY (window_start_ms, service)
) WITHOUT ROWID;
CREATE INDEX windows_service_start ON windows (service, window_start_ms);

CREATE TABLE alerts (
    id              TEXT    NOT NULL PRIMARY KEY,
    rule            TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    raised_at_ms    INTEGER NOT NULL,
    value           REAL    NOT NULL,
    threshold       REAL    NOT NULL,
    message         TEXT    NOT NULL
);
CREATE INDEX alerts_raised_at ON alerts (raised_at_ms);
";

/// Tables version 2 adds: anomaly baselines and silences.
const CREATE_V2: &str = "
CREATE TABLE baselines (
    rule       TEXT    NOT NULL,
    service    TEXT    NOT NULL,
    updates    INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    PRIMARY KEY (rule, service)
) WITHOUT ROWID;

CREATE TABLE silences (
    service    TEXT    NOT NULL PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    until_ms   INTEGER NOT NULL,
    reason     TEXT    NOT NULL
);
";

/// What version 3 adds: when each event arrived (events of older versions
/// count as arrived at their event time), and how many rows retention
/// deleted, per table.
const CREATE_V3: &str = "
ALTER TABLE events ADD COLUMN ingest_ts INTEGER;
UPDATE events SET ingest_ts = ts;
CREATE INDEX events_ingest_ts ON events (ingest_ts);

CREATE TABLE expired (
    tbl     TEXT    NOT NULL PRIMARY KEY,
    rows    INTEGER NOT NULL,
    last_ms INTEGER NOT NULL
);
";

/// Settings of the writing connection: WAL, durable commits, a busy timeout;
/// then creates the tables of a new file, or checks the version of an old one.
pub fn prepare_writer(conn: &mut Connection, path: &Path) -> Result<(), HotError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(HotError::sqlite("set busy timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(HotError::sqlite("enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(HotError::Data(format!(
            "{} refused WAL mode (journal mode {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(HotError::sqlite("set synchronous"))?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)
        .map_err(HotError::sqlite("set journal size limit"))?;
    // A negative cache_size is in KiB.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(HotError::sqlite("set cache size"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(HotError::sqlite("begin schema"))?;
    match user_version(&tx)? {
        found @ 0..SCHEMA_VERSION => {
            let steps = [
                (CREATE_V1, "create tables"),
                (CREATE_V2, "migrate to schema version 2"),
                (CREATE_V3, "migrate to schema version 3"),
            ];
            for (sql, op) in steps.iter().skip(usize::try_from(found).unwrap_or(0)) {
                tx.execute_batch(sql).map_err(HotError::sqlite(op))?;
            }
            migrate::events_to_blocks(&tx)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(HotError::sqlite("set schema version"))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(HotError::SchemaVersion {
                path: path.to_path_buf(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(HotError::sqlite("commit schema"))
}

/// Settings of a reading connection, and the version check.
pub fn prepare_reader(conn: &Connection, path: &Path) -> Result<(), HotError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(HotError::sqlite("set busy timeout"))?;
    match user_version(conn)? {
        SCHEMA_VERSION => Ok(()),
        found @ 1..SCHEMA_VERSION => Err(HotError::Outdated {
            path: path.to_path_buf(),
            found,
        }),
        found => Err(HotError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        }),
    }
}

/// The schema version of the file `conn` reads.
pub fn user_version(conn: &Connection) -> Result<i64, HotError> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(HotError::sqlite("read schema version"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let mut conn = Connection::open(&path).unwrap();
        prepare_writer(&mut conn, &path).unwrap();
        // Opening again keeps the tables.
        prepare_writer(&mut conn, &path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");

        let blocks: i64 = conn
            .query_row("SELECT count(*) FROM event_blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blocks, 0);

        conn.pragma_update(None, "user_version", 7).unwrap();
        let err = prepare_writer(&mut conn, &path).unwrap_err();
        assert!(
            matches!(err, HotError::SchemaVersion { found: 7, .. }),
            "{err}"
        );
        assert!(prepare_reader(&conn, &path).is_err());
    }

    /// A file of `version` (1 to 3) with `rows` events of service `api`, one
    /// millisecond apart from `t0`, as builds of that version wrote it.
    fn legacy_file(path: &Path, version: i64, t0: i64, rows: i64) {
        let conn = Connection::open(path).unwrap();
        let steps = [CREATE_V1, CREATE_V2, CREATE_V3];
        for sql in &steps[..usize::try_from(version).unwrap()] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..rows {
            conn.execute(
                "INSERT INTO events (event_id, ts, service, severity, source, tags, message, \
                 status, attrs) VALUES (?1, ?2, 'api', ?3, 'test', '[\"http_5xx\"]', 'm', 503, ?4)",
                rusqlite::params![
                    format!("e{i}"),
                    t0 + i,
                    if i % 2 == 0 { "ERROR" } else { "WARNING" },
                    if i == 0 { "{\"k\":1}" } else { "not json" },
                ],
            )
            .unwrap();
        }
        if version >= 3 {
            conn.execute("UPDATE events SET ingest_ts = ts + 5", [])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        conn.pragma_update(None, "user_version", version).unwrap();
    }

    #[test]
    fn events_of_older_versions_move_into_blocks() {
        use crate::event::Severity;
        use crate::sinks::hot::{HotStore, RecentQuery};
        let t0 = 1_763_892_000_000; // a minute's start
        for version in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hot.db");
            // Two minutes of events.
            legacy_file(&path, version, t0, 70_000);
            // A reader of this build asks for the writer's migration.
            let err = HotStore::open_read_only(&path).unwrap_err();
            assert!(
                err.to_string()
                    .contains("start `spate run` on it once to migrate it"),
                "{err}"
            );
            let store = HotStore::open(&path).unwrap();
            let conn = store.lock();
            assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
            let (blocks, events, ingest): (i64, i64, i64) = conn
                .query_row(
                    "SELECT count(*), sum(events), max(ingest_ms) FROM event_blocks",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!(events, 70_000, "version {version}");
            // Full blocks but the last of each minute (and a split by size).
            let fewest = 70_000usize.div_ceil(crate::sinks::hot::blocks::BLOCK_EVENTS);
            assert!(
                (fewest..fewest + 4).contains(&(blocks as usize)),
                "{blocks} blocks"
            );
            // Version 3 kept arrivals; older files count from event time.
            let late = if version == 3 { 5 } else { 0 };
            assert_eq!(ingest, t0 + 69_999 + late, "version {version}");
            let legacy: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(legacy, 0, "the old table is dropped");
            drop(conn);
            let newest = store
                .recent(&RecentQuery {
                    limit: 3,
                    ..RecentQuery::since(0)
                })
                .unwrap();
            let ids: Vec<&str> = newest.iter().map(|e| e.event.event_id.as_str()).collect();
            assert_eq!(ids, ["e69999", "e69998", "e69997"]);
            let first = store
                .recent(&RecentQuery {
                    until_ms: Some(t0 + 1),
                    ..RecentQuery::since(0)
                })
                .unwrap();
            let e = &first[0].event;
            assert_eq!(
                (e.severity, e.status, e.tags.clone()),
                (Severity::Error, Some(503), vec!["http_5xx".to_string()])
            );
            assert_eq!(e.attrs, Some(serde_json::json!({"k": 1})));
            let second = store
                .recent(&RecentQuery {
                    until_ms: Some(t0 + 2),
                    ..RecentQuery::since(t0 + 1)
                })
                .unwrap();
            assert_eq!(second[0].event.attrs, Some(serde_json::json!("not json")));
            assert_eq!(HotStore::open_read_only(&path).unwrap().path(), path);
        }
    }
}
