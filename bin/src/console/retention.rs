//! Audit retention (`console.audit_retention_days`): records older than the
//! retention are deleted when `spate run` starts and every
//! [`PRUNE_INTERVAL`] after, on a blocking thread.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use super::store::{ConsoleStore, StoreError};

/// How often the audit table is pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 24 * 3_600_000;

/// The oldest time kept at `now_ms` with `days` of retention; `None` keeps
/// everything (`days` 0).
pub fn cutoff_ms(now_ms: i64, days: u32) -> Option<i64> {
    (days > 0).then(|| now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS)))
}

impl ConsoleStore {
    /// Deletes the audit records older than `before_ms`; how many.
    pub fn prune_audit(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.lock()
            .execute("DELETE FROM audit WHERE ts_ms < ?1", params![before_ms])
            .map_err(self.error("prune audit"))
    }
}

/// Prunes once at `now_ms`; the number deleted. Failures are logged.
pub async fn prune_once(store: Arc<ConsoleStore>, days: u32, now_ms: i64) -> usize {
    let Some(before) = cutoff_ms(now_ms, days) else {
        return 0;
    };
    let pruned = tokio::task::spawn_blocking(move || store.prune_audit(before)).await;
    match pruned {
        Ok(Ok(n)) => {
            metrics::counter!("spate_console_audit_pruned_total").increment(n as u64);
            if n > 0 {
                tracing::info!("console: {n} audit records older than {days} days deleted");
            }
            n
        }
        Ok(Err(e)) => {
            tracing::warn!("console: audit retention: {e}");
            0
        }
        Err(e) => {
            tracing::warn!("console: audit retention task: {e}");
            0
        }
    }
}

/// Prunes now and every `every` until `closing` turns true, reading the
/// time from `clock` (UTC milliseconds).
pub async fn run(
    store: Arc<ConsoleStore>,
    days: u32,
    every: Duration,
    clock: impl Fn() -> i64,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    if days == 0 {
        return;
    }
    loop {
        prune_once(store.clone(), days, clock()).await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = closing.changed() => {
                if changed.is_err() || *closing.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::console::audit::AuditRecord;

    fn record(ts_ms: i64) -> AuditRecord {
        AuditRecord {
            ts_ms,
            actor: "ann".into(),
            client: "-".into(),
            action: "query".into(),
            outcome: "ok".into(),
            detail: format!("at {ts_ms}"),
        }
    }

    fn kept(store: &ConsoleStore) -> Vec<i64> {
        let mut ts: Vec<i64> = store
            .audit_records(None, 100)
            .unwrap()
            .iter()
            .map(|r| r.ts_ms)
            .collect();
        ts.sort();
        ts
    }

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        assert_eq!(cutoff_ms(10 * DAY_MS, 3), Some(7 * DAY_MS));
        assert_eq!(cutoff_ms(DAY_MS, 0), None);
        assert_eq!(
            cutoff_ms(0, u32::MAX),
            Some(-(i64::from(u32::MAX) * DAY_MS))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn old_records_go_at_start_and_every_interval() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ConsoleStore::open_in(dir.path()).unwrap());
        // Days 1..=5 (at noon); the clock says day 6, retention 3 days.
        for day in 1..=5 {
            store.audit(&record(day * DAY_MS + DAY_MS / 2)).unwrap();
        }
        let now = Arc::new(AtomicI64::new(6 * DAY_MS));
        let clock = {
            let now = now.clone();
            move || now.load(Ordering::SeqCst)
        };
        let (close, closing) = tokio::sync::watch::channel(false);
        let every = Duration::from_secs(3600);
        let task = tokio::spawn(run(store.clone(), 3, every, clock, closing));
        // The pruning at start: records before day 3 go (day 3 at noon stays).
        wait_until(|| kept(&store).len() == 3).await;
        assert_eq!(
            kept(&store),
            [
                3 * DAY_MS + DAY_MS / 2,
                4 * DAY_MS + DAY_MS / 2,
                5 * DAY_MS + DAY_MS / 2
            ]
        );
        // A day later, nothing happens before the interval...
        now.store(7 * DAY_MS, Ordering::SeqCst);
        tokio::time::advance(every - Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(kept(&store).len(), 3);
        // ...and at it, day 3 goes too.
        tokio::time::advance(Duration::from_secs(1)).await;
        wait_until(|| kept(&store).len() == 2).await;
        assert_eq!(kept(&store)[0], 4 * DAY_MS + DAY_MS / 2);
        close.send(true).unwrap();
        task.await.unwrap();
        // Retention 0 keeps everything.
        assert_eq!(prune_once(store.clone(), 0, i64::MAX).await, 0);
        assert_eq!(kept(&store).len(), 2);
    }

    /// Lets the spawned blocking work finish (real threads) while the
    /// tokio clock stays paused.
    async fn wait_until(done: impl Fn() -> bool) {
        for _ in 0..1000 {
            if done() {
                // Let the pruning task reach its next wait.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
            tokio::task::yield_now().await;
        }
        panic!("condition not reached");
    }
}
