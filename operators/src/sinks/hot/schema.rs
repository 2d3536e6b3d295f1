//! The hot store's tables, their version, and the connection settings.
//!
//! The schema is versioned with `PRAGMA user_version`: a new file is created at
//! [`SCHEMA_VERSION`]; a file of version 1 or 2 is migrated (version 2 added
//! the `baselines` and `silences` tables of the alert router, version 3 the
//! events' `ingest_ts`, which retention counts from, and the `expired`
//! tally); a file at another version is refused rather than misread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::HotError;

/// The schema version this build creates and reads.
pub const SCHEMA_VERSION: i64 = 3;

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
            for (sql, op) in &steps[usize::try_from(found).unwrap_or(0)..] {
                tx.execute_batch(sql).map_err(HotError::sqlite(op))?;
            }
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
        // A version 1 or 2 file (before a writer of this build migrated it)
        // has every table the readers of events, windows and alerts use.
        1..=SCHEMA_VERSION => Ok(()),
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

        // Version 1 and 2 files are migrated; old events count as arrived
        // at their event time.
        let back_to_v2 = "DROP TABLE expired; DROP INDEX events_ingest_ts; \
                          ALTER TABLE events DROP COLUMN ingest_ts;";
        for (version, undo) in [
            (2, back_to_v2.to_string()),
            (
                1,
                format!("{back_to_v2} DROP TABLE baselines; DROP TABLE silences;"),
            ),
        ] {
            conn.execute_batch(&undo).unwrap();
            conn.execute(
                "INSERT OR REPLACE INTO events (event_id, ts, service, severity, source, tags, message) \
                 VALUES ('e', 42, 'api', 'ERROR', 'test', '[]', 'm')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
            prepare_writer(&mut conn, &path).unwrap();
            assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
            let ingest: i64 = conn
                .query_row(
                    "SELECT ingest_ts FROM events WHERE event_id = 'e'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(ingest, 42, "version {version}");
            conn.execute("SELECT count(*) FROM silences", []).ok();
            conn.execute("SELECT count(*) FROM expired", []).ok();
        }

        conn.pragma_update(None, "user_version", 7).unwrap();
        let err = prepare_writer(&mut conn, &path).unwrap_err();
        assert!(
            matches!(err, HotError::SchemaVersion { found: 7, .. }),
            "{err}"
        );
        assert!(prepare_reader(&conn, &path).is_err());
    }
}
