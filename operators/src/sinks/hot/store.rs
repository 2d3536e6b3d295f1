//! [`HotStore`]: the SQLite connection, the writes and retention.
//!
//! One connection per store, behind a mutex; clones share it (the hot writer
//! and the alert router write through the same connection, so their
//! transactions never contend for SQLite's write lock). Every method blocks:
//! async callers run them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow_array::Array;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::rows::{EventColumns, HotRows, opt_str};
use super::{HotError, schema};
use crate::alerts::record::{AlertRecord, AlertStore, AlertStoreError, WindowRecord};

/// Rows deleted per statement by [`HotStore::expire`], so that a large backlog
/// never holds the write lock for long.
const EXPIRE_CHUNK_ROWS: i64 = 10_000;

const INSERT_EVENT: &str = "INSERT OR REPLACE INTO events (event_id, ts, service, severity, \
     host, source, log_group, log_stream, tags, status, client_ip, message, attrs, ingest_ts) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

const UPSERT_WINDOW: &str = "INSERT OR REPLACE INTO windows (window_start_ms, service, \
     window_end_ms, events, info, warning, error, critical, tags) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const UPSERT_ALERT: &str = "INSERT OR REPLACE INTO alerts (id, rule, service, state, severity, \
     window_start_ms, window_end_ms, raised_at_ms, value, threshold, message) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// How long rows are kept, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this (counted from `from`) are deleted.
    pub events_ms: i64,
    /// Windows (by start) and alerts (by `raised_at_ms`) older than this are
    /// deleted.
    pub alerts_ms: i64,
    /// What an event's age counts from.
    pub from: super::RetentionClock,
}

impl Default for Retention {
    /// The configuration defaults: 72 hours of events, 30 days of alerts.
    fn default() -> Self {
        super::HotConfig::default().retention()
    }
}

/// Events retention has deleted from a store so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Events deleted, in all.
    pub events: u64,
    /// When the last of them were deleted (wall clock, UTC ms).
    pub last_ms: i64,
}

/// What one [`HotStore::expire`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireStats {
    /// Events deleted.
    pub events: u64,
    /// Windows deleted.
    pub windows: u64,
    /// Alerts deleted.
    pub alerts: u64,
}

impl ExpireStats {
    /// Rows deleted in all tables.
    pub fn total(&self) -> u64 {
        self.events + self.windows + self.alerts
    }
}

/// The embedded hot store (see the [module docs](super)).
///
/// ```
/// use spate_operators::sinks::hot::{HotStore, RecentQuery};
/// let dir = tempfile::tempdir().unwrap();
/// let store = HotStore::open(&dir.path().join("hot.db")).unwrap();
/// let recent = store.recent(&RecentQuery::since(0)).unwrap();
/// assert!(recent.is_empty());
/// ```
#[derive(Clone)]
pub struct HotStore {
    conn: Arc<Mutex<Connection>>,
    path: Arc<Path>,
    retention: Retention,
}

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotStore")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .finish()
    }
}

impl HotStore {
    /// Opens (creating it and its directory if needed) the store at `path` for
    /// writing: WAL mode, `synchronous=FULL`, a busy timeout, the current schema.
    pub fn open(path: &Path) -> Result<Self, HotError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                HotError::Config(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(HotError::sqlite("open"))?;
        schema::prepare_writer(&mut conn, path)?;
        Ok(Self::with_connection(conn, path))
    }

    /// Opens an existing store for reading only (the CLI, while `spate run`
    /// writes). A missing file is [`HotError::Missing`].
    pub fn open_read_only(path: &Path) -> Result<Self, HotError> {
        let missing = || HotError::Missing {
            path: path.to_path_buf(),
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            _ => return Err(missing()),
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::CannotOpen) => missing(),
                _ => HotError::Sqlite {
                    op: "open",
                    source: e,
                },
            })?;
        schema::prepare_reader(&conn, path)?;
        Ok(Self::with_connection(conn, path))
    }

    fn with_connection(conn: Connection, path: &Path) -> Self {
        HotStore {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::from(path),
            retention: Retention::default(),
        }
    }

    /// The same store with another retention for [`HotStore::expire`].
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The retention [`HotStore::expire`] applies.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolled its transaction back (the
        // Transaction guard drops); the connection itself is fine.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, HotError>,
    ) -> Result<T, HotError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(HotError::sqlite(op))?;
        let out = f(&tx)?;
        tx.commit().map_err(HotError::sqlite(op))?;
        Ok(out)
    }

    /// Inserts (or overwrites, by `event_id`) every row of `batches` in one
    /// durable transaction; returns the number of rows written.
    pub fn insert_events(&self, batches: &[HotRows]) -> Result<u64, HotError> {
        self.write("insert events", |tx| {
            let mut stmt = tx
                .prepare_cached(INSERT_EVENT)
                .map_err(HotError::sqlite("prepare insert"))?;
            let mut tags = Vec::with_capacity(64);
            let mut written = 0u64;
            for batch in batches {
                let cols = EventColumns::of(&batch.records)?;
                let service: &str = &batch.service;
                for i in 0..batch.records.num_rows() {
                    cols.tags_json(i, &mut tags);
                    // Only valid UTF-8 goes in: JSON of &str.
                    let tags = std::str::from_utf8(&tags).unwrap_or("[]");
                    let status = cols.status.is_valid(i).then(|| cols.status.value(i));
                    stmt.execute(params![
                        cols.event_id.value(i),
                        cols.ts.value(i),
                        service,
                        cols.severity.value(i),
                        opt_str(cols.host, i),
                        cols.source.value(i),
                        opt_str(cols.log_group, i),
                        opt_str(cols.log_stream, i),
                        tags,
                        status,
                        opt_str(cols.client_ip, i),
                        cols.message.value(i),
                        opt_str(cols.attrs, i),
                        cols.ingest_ts.value(i),
                    ])
                    .map_err(HotError::sqlite("insert event"))?;
                    written += 1;
                }
            }
            Ok(written)
        })
    }

    /// Upserts closed windows and alert notices in one durable transaction.
    pub fn upsert(&self, windows: &[WindowRecord], alerts: &[AlertRecord]) -> Result<(), HotError> {
        if windows.is_empty() && alerts.is_empty() {
            return Ok(());
        }
        self.write("upsert windows and alerts", |tx| {
            let mut stmt = tx
                .prepare_cached(UPSERT_WINDOW)
                .map_err(HotError::sqlite("prepare window upsert"))?;
            for w in windows {
                let tags = serde_json::to_string(&w.tags)
                    .map_err(|e| HotError::Data(format!("window tags: {e}")))?;
                let [info, warning, error, critical] = w.severity.map(count);
                stmt.execute(params![
                    w.window_start_ms,
                    w.service,
                    w.window_end_ms,
                    count(w.events),
                    info,
                    warning,
                    error,
                    critical,
                    tags,
                ])
                .map_err(HotError::sqlite("upsert window"))?;
            }
            let mut stmt = tx
                .prepare_cached(UPSERT_ALERT)
                .map_err(HotError::sqlite("prepare alert upsert"))?;
            for a in alerts {
                stmt.execute(params![
                    a.id,
                    a.rule,
                    a.service,
                    a.state.as_str(),
                    a.severity,
                    a.window_start_ms,
                    a.window_end_ms,
                    a.raised_at_ms,
                    a.value,
                    a.threshold,
                    a.message,
                ])
                .map_err(HotError::sqlite("upsert alert"))?;
            }
            Ok(())
        })
    }

    /// Deletes events, windows and alerts older than the retention as of
    /// `now_ms`, in chunks of bounded size, and adds the events deleted to
    /// the tally [`HotStore::expired`] reads.
    pub fn expire(&self, now_ms: i64) -> Result<ExpireStats, HotError> {
        let events_before = now_ms.saturating_sub(self.retention.events_ms);
        let alerts_before = now_ms.saturating_sub(self.retention.alerts_ms);
        let events = self.delete_chunked(
            match self.retention.from {
                super::RetentionClock::Ingest => {
                    "DELETE FROM events WHERE rowid IN \
                     (SELECT rowid FROM events WHERE ingest_ts < ?1 LIMIT ?2)"
                }
                super::RetentionClock::Event => {
                    "DELETE FROM events WHERE rowid IN \
                     (SELECT rowid FROM events WHERE ts < ?1 LIMIT ?2)"
                }
            },
            events_before,
        )?;
        if events > 0 {
            self.write("count expired", |tx| {
                tx.execute(
                    "INSERT INTO expired (tbl, rows, last_ms) VALUES ('events', ?1, ?2) \
                     ON CONFLICT (tbl) DO UPDATE SET rows = rows + excluded.rows, \
                     last_ms = excluded.last_ms",
                    params![count(events), now_ms],
                )
                .map_err(HotError::sqlite("count expired"))
            })?;
        }
        Ok(ExpireStats {
            events,
            windows: self.delete_chunked(
                "DELETE FROM windows WHERE (window_start_ms, service) IN \
                 (SELECT window_start_ms, service FROM windows WHERE window_start_ms < ?1 LIMIT ?2)",
                alerts_before,
            )?,
            alerts: self.delete_chunked(
                "DELETE FROM alerts WHERE rowid IN \
                 (SELECT rowid FROM alerts WHERE raised_at_ms < ?1 LIMIT ?2)",
                alerts_before,
            )?,
        })
    }

    /// The events retention has deleted so far; `None` when it has deleted
    /// none (or the file predates the tally).
    pub fn expired(&self) -> Result<Option<Expired>, HotError> {
        let conn = self.lock();
        if schema::user_version(&conn)? < 3 {
            return Ok(None);
        }
        conn.query_row(
            "SELECT rows, last_ms FROM expired WHERE tbl = 'events'",
            [],
            |row| {
                Ok(Expired {
                    events: row.get::<_, i64>(0)?.max(0) as u64,
                    last_ms: row.get(1)?,
                })
            },
        )
        .optional()
        .map_err(HotError::sqlite("read expired"))
    }

    /// Runs a `DELETE ... LIMIT ?2` until it deletes fewer than a chunk, one
    /// transaction (and one lock hold) per chunk.
    fn delete_chunked(&self, sql: &'static str, before: i64) -> Result<u64, HotError> {
        let mut deleted = 0u64;
        loop {
            let n = self.write("expire", |tx| {
                tx.prepare_cached(sql)
                    .and_then(|mut stmt| stmt.execute(params![before, EXPIRE_CHUNK_ROWS]))
                    .map_err(HotError::sqlite("expire"))
            })?;
            deleted += n as u64;
            if (n as i64) < EXPIRE_CHUNK_ROWS {
                return Ok(deleted);
            }
        }
    }
}

/// A count as SQLite's signed integer.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AlertStore for HotStore {
    fn record(
        &self,
        windows: &[WindowRecord],
        alerts: &[AlertRecord],
    ) -> Result<(), AlertStoreError> {
        Ok(self.upsert(windows, alerts)?)
    }
}

/// Where a data directory keeps its hot store.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hot.db")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;
    use crate::sinks::hot::RecentQuery;
    use crate::sinks::hot::rows::tests::{TestEvent, event, log_batch};

    const T0: i64 = 1_763_892_000_000;

    fn hot_rows(events: &[TestEvent]) -> Vec<HotRows> {
        log_batch(events)
            .parts
            .iter()
            .filter_map(|p| HotRows::select(p, Severity::Info).unwrap())
            .collect()
    }

    fn count_events(store: &HotStore) -> i64 {
        store
            .lock()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn redelivered_rows_overwrite_instead_of_duplicating() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("sub/hot.db")).unwrap();
        let rows = hot_rows(&[
            event("e1", T0, "api", Severity::Error),
            event("e2", T0 + 1, "web", Severity::Warning),
        ]);
        assert_eq!(store.insert_events(&rows).unwrap(), 2);
        assert_eq!(store.insert_events(&rows).unwrap(), 2);
        assert_eq!(count_events(&store), 2);
    }

    #[test]
    fn reader_sees_committed_rows_while_the_writer_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let writer = HotStore::open(&path).unwrap();
        let reader = HotStore::open_read_only(&path).unwrap();
        assert!(reader.recent(&RecentQuery::since(0)).unwrap().is_empty());
        writer
            .insert_events(&hot_rows(&[event("e1", T0, "api", Severity::Error)]))
            .unwrap();
        let seen = reader.recent(&RecentQuery::since(0)).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].event.event_id, "e1");
        // The reader cannot write.
        let err = reader
            .insert_events(&hot_rows(&[event("e2", T0, "api", Severity::Error)]))
            .unwrap_err();
        assert_eq!(err.class(), spate_engine::ErrorClass::External);
        // After the writer closes (checkpointing the WAL away) a new reader
        // still opens and sees the rows.
        drop(writer);
        drop(reader);
        let later = HotStore::open_read_only(&path).unwrap();
        assert_eq!(later.recent(&RecentQuery::since(0)).unwrap().len(), 1);
    }

    #[test]
    fn read_only_open_of_a_missing_file_says_what_to_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let err = HotStore::open_read_only(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no hot store at {}; is `spate run` using this data dir?",
                path.display()
            )
        );
        assert!(!path.exists(), "a read-only open must not create the file");
    }

    #[test]
    fn read_only_open_of_a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = HotStore::open_read_only(&path).unwrap_err();
        assert!(
            matches!(err, HotError::SchemaVersion { found: 0, .. }),
            "{err}"
        );
    }

    /// Insert throughput: `cargo test -p spate-operators --lib
    /// sinks::hot::store::tests::insert_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "measures throughput; run by hand"]
    fn insert_throughput() {
        const ROWS: usize = 200_000;
        const PER_BATCH: usize = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("hot.db")).unwrap();
        let services = ["api", "web", "db", "auth"];
        let batches: Vec<Vec<HotRows>> = (0..ROWS / PER_BATCH)
            .map(|b| {
                let events: Vec<TestEvent> = (0..PER_BATCH)
                    .map(|i| {
                        let n = b * PER_BATCH + i;
                        let mut e = event(
                            &format!("file:/var/log/app.log:{}", n * 173),
                            T0 + n as i64,
                            services[n % services.len()],
                            Severity::Error,
                        );
                        e.tags = &["http_5xx"];
                        e.message = format!(
                            "GET /api/v1/orders/{n} upstream timed out after 30000 ms \
                             (connection reset by peer) request_id={n:016x}"
                        );
                        e
                    })
                    .collect();
                hot_rows(&events)
            })
            .collect();
        let started = std::time::Instant::now();
        let mut written = 0;
        for rows in &batches {
            written += store.insert_events(rows).unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(written as usize, ROWS);
        println!(
            "hot store: {ROWS} rows in {} commits of {PER_BATCH}: {secs:.3} s, {:.0} rows/s",
            ROWS / PER_BATCH,
            ROWS as f64 / secs
        );
    }
}
