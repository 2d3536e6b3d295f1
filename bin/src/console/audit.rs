//! The audit trail: every sign-in (success and failure), sign-out, query
//! (with its SQL text) and user or admin action, with who, when, from where
//! and what, appended to the `audit` table of the console store (fsynced:
//! `synchronous = FULL`). Admins read it on `/ui/audit`; queries read it as
//! the `audit` table.

use rusqlite::params;

use super::store::{ConsoleStore, StoreError};
pub use crate::query::audit_table::AuditRecord;
use crate::query::audit_table::AuditSource;

impl ConsoleStore {
    /// Appends `record`.
    pub fn audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO audit (ts_ms, actor, client, action, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    record.ts_ms,
                    record.actor,
                    record.client,
                    record.action,
                    record.outcome,
                    record.detail
                ],
            )
            .map_err(self.error("append audit record"))?;
        Ok(())
    }

    /// The newest `limit` records (of `action` only, when given), newest
    /// first.
    pub fn audit_records(
        &self,
        action: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts_ms, actor, client, action, outcome, detail FROM audit \
                 WHERE (?1 IS NULL OR action = ?1) ORDER BY id DESC LIMIT ?2",
            )
            .map_err(self.error("read audit"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![action, limit], |r| {
                Ok(AuditRecord {
                    ts_ms: r.get(0)?,
                    actor: r.get(1)?,
                    client: r.get(2)?,
                    action: r.get(3)?,
                    outcome: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(self.error("read audit"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.error("read audit"))
    }
}

/// The `audit` table of the query engine: the newest million records.
impl AuditSource for ConsoleStore {
    fn audit_rows(&self) -> Result<Vec<AuditRecord>, String> {
        self.audit_records(None, 1_000_000)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ts_ms: i64, action: &str) -> AuditRecord {
        AuditRecord {
            ts_ms,
            actor: "ann".into(),
            client: "127.0.0.1:5000".into(),
            action: action.into(),
            outcome: "ok".into(),
            detail: "SELECT 1".into(),
        }
    }

    #[test]
    fn records_survive_reopening_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConsoleStore::open_in(dir.path()).unwrap();
        store.audit(&record(1, "signin")).unwrap();
        store.audit(&record(2, "query")).unwrap();
        store.audit(&record(3, "signout")).unwrap();
        drop(store);
        let store = ConsoleStore::open_in(dir.path()).unwrap();
        let all = store.audit_records(None, 10).unwrap();
        let actions: Vec<&str> = all.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(actions, ["signout", "query", "signin"]);
        assert_eq!(store.audit_records(None, 1).unwrap().len(), 1);
        let queries = store.audit_records(Some("query"), 10).unwrap();
        assert_eq!(queries, vec![record(2, "query")]);
    }
}
