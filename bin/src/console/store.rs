//! The console's own SQLite file, `<data-dir>/console.db`: the users
//! (see [`super::users`]), the audit trail (see [`super::audit`]) and the
//! alert subscriptions (see [`super::subscriptions`] and
//! [`super::sns_subscriptions`]).
//! `spate user add` writes it while `spate run` reads it (WAL mode, a busy
//! timeout), so a user added is able to sign in at once.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// Why the console store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (open, schema, read, write).
    #[error("console store {path}: {what}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A value in the store is not what the console wrote.
    #[error("console store: {0}")]
    Data(String),
}

/// File name of the store in the data dir.
pub const FILE_NAME: &str = "console.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    client TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms);
CREATE TABLE IF NOT EXISTS subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    services TEXT NOT NULL,
    severities TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sns_subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    protocol TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    services TEXT NOT NULL,
    severities TEXT NOT NULL,
    arn TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    subscription INTEGER NOT NULL,
    alert TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    delivered_ms INTEGER,
    last_error TEXT,
    PRIMARY KEY (subscription, alert)
);
";

/// The open store.
#[derive(Debug)]
pub struct ConsoleStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl ConsoleStore {
    /// Opens (creating) the store in `data_dir`.
    pub fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open(&data_dir.join(FILE_NAME))
    }

    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |what| {
            let path = path.display().to_string();
            move |source| StoreError::Sqlite { path, what, source }
        };
        let conn = Connection::open(path).map_err(err("open"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(err("busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("journal mode"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err("synchronous"))?;
        conn.execute_batch(SCHEMA).map_err(err("schema"))?;
        Ok(ConsoleStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// The connection (one user at a time).
    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error of `what` failing on this store.
    pub(super) fn error(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = self.path.display().to_string();
        move |source| StoreError::Sqlite { path, what, source }
    }
}
