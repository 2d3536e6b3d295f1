//! [`HotStore`]: the SQLite connection, the writes and retention.
//!
//! One connection per store, behind a mutex; clones share it (the hot writer
//! and the alert router write through the same connection, so their
//! transactions never contend for SQLite's write lock). Every method blocks:
//! async callers run them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::blocks::{BlockRow, hot_block_rows, insert_blocks};
use super::rows::HotRows;
use super::{HotError, schema};
use crate::alerts::record::{AlertRecord, AlertStore, AlertStoreError, WindowRecord};

/// Rows deleted per statement by [`HotStore::expire`], so that a large backlog
/// never holds the write lock for long.
const EXPIRE_CHUNK_ROWS: i64 = 10_000;

/// Blocks deleted per transaction by [`HotStore::expire`].
const EXPIRE_CHUNK_BLOCKS: i64 = 500;

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

    /// Packs the rows of `batches` into blocks ([`blocks`](super::blocks))
    /// and inserts them in one durable transaction; returns the events
    /// written (one per `event_id` of the commit).
    pub fn insert_events(&self, batches: &[HotRows]) -> Result<u64, HotError> {
        // Packing runs before the lock: the alert router's writes and the
        // readers of a shared store do not wait for the compressor.
        let blocks = hot_block_rows(batches)?;
        self.insert_blocks(&blocks)
    }

    /// Inserts packed blocks in one durable transaction; returns the events
    /// they hold.
    pub fn insert_blocks(&self, blocks: &[BlockRow]) -> Result<u64, HotError> {
        if blocks.is_empty() {
            return Ok(0);
        }
        self.write("insert events", |tx| insert_blocks(tx, blocks))
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
        let events = self.expire_blocks(events_before)?;
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

    /// Deletes the blocks whose events are all past retention: every arrival
    /// (or, by event time, every event) before `before`. A block goes whole,
    /// so an event stays until the newest event of its block is old enough.
    /// Returns the events deleted.
    fn expire_blocks(&self, before: i64) -> Result<u64, HotError> {
        let select = match self.retention.from {
            super::RetentionClock::Ingest => {
                "SELECT rowid, events FROM event_blocks WHERE ingest_ms < ?1 LIMIT ?2"
            }
            super::RetentionClock::Event => {
                "SELECT rowid, events FROM event_blocks WHERE last_ms < ?1 LIMIT ?2"
            }
        };
        let mut deleted = 0u64;
        loop {
            let (blocks, events) = self.write("expire", |tx| {
                let old: Vec<(i64, i64)> = tx
                    .prepare_cached(select)
                    .and_then(|mut stmt| {
                        stmt.query_map(params![before, EXPIRE_CHUNK_BLOCKS], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })?
                        .collect()
                    })
                    .map_err(HotError::sqlite("expire"))?;
                let mut delete = tx
                    .prepare_cached("DELETE FROM event_blocks WHERE rowid = ?1")
                    .map_err(HotError::sqlite("expire"))?;
                for (rowid, _) in &old {
                    delete
                        .execute(params![rowid])
                        .map_err(HotError::sqlite("expire"))?;
                }
                let events: i64 = old.iter().map(|&(_, n)| n.max(0)).sum();
                Ok((old.len() as i64, events as u64))
            })?;
            deleted += events;
            if blocks < EXPIRE_CHUNK_BLOCKS {
                return Ok(deleted);
            }
        }
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

    fn count_blocks(store: &HotStore) -> i64 {
        store
            .lock()
            .query_row("SELECT count(*) FROM event_blocks", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn redelivered_rows_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("sub/hot.db")).unwrap();
        let rows = hot_rows(&[
            event("e1", T0, "api", Severity::Error),
            event("e2", T0 + 1, "web", Severity::Warning),
            event("e3", T0 + 2, "api", Severity::Error),
        ]);
        // One block per service and minute.
        assert_eq!(store.insert_events(&rows).unwrap(), 3);
        assert_eq!(count_blocks(&store), 2);
        // The same batch redelivered in another commit lands in other
        // blocks; readers keep one event per id.
        assert_eq!(store.insert_events(&rows).unwrap(), 3);
        assert_eq!(count_blocks(&store), 4);
        let ids: Vec<String> = store
            .recent(&RecentQuery::since(0))
            .unwrap()
            .into_iter()
            .map(|e| e.event.event_id)
            .collect();
        assert_eq!(ids, ["e3", "e2", "e1"]);
        assert_eq!(store.insert_events(&[]).unwrap(), 0);
        assert_eq!(count_blocks(&store), 4, "no empty blocks");
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
        let bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len())
            + std::fs::metadata(store.path().with_extension("db-wal")).map_or(0, |m| m.len());
        println!(
            "hot store: {ROWS} rows in {} commits of {PER_BATCH}: {secs:.3} s, {:.0} rows/s, \
             {:.1} B/event on disk",
            ROWS / PER_BATCH,
            ROWS as f64 / secs,
            bytes as f64 / ROWS as f64
        );
        // `spate hot recent` latencies: the 100 newest of one service, of
        // every service, and of a range in the middle.
        let mid = T0 + ROWS as i64 / 2;
        let questions = [
            ("one service", Some("api"), T0, None),
            ("every service", None, T0, None),
            ("a range", None, mid, Some(mid + 1_000)),
        ];
        for (name, service, since_ms, until_ms) in questions {
            let q = RecentQuery {
                service: service.map(str::to_string),
                until_ms,
                ..RecentQuery::since(since_ms)
            };
            let runs = 50;
            let started = std::time::Instant::now();
            for _ in 0..runs {
                assert_eq!(store.recent(&q).unwrap().len(), 100);
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / runs as f64;
            println!("hot store: recent of {name}: {ms:.2} ms");
        }
    }
}
