//! The journal as the HTTP layer's [`LogAcceptor`], and its readiness: `/readyz`
//! answers 503 whenever a push would be refused.
//!
//! A push is refused when the journal's backlog is full (429), when the
//! journal is at its disk limit (`[journal] max_disk_mib`) or the disk under
//! it is full (503), and after an I/O failure of the journal (503). The first
//! three are read from the journal's counters and the file system when
//! `/readyz` is asked; the last from the outcome of the latest append, for
//! that refusal's `Retry-After` (an append that succeeds clears it).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use spate_operators::sources::journal::{
    Journal, JournalError, JournalRecord, JournalStats, JournalWriter,
};

use super::body::BodyRecord;
use super::http::{LogAcceptor, Refusal};

/// Space a push needs to be likely to fit: below this much room (in the
/// journal's disk limit, or free on its disk), `/readyz` says not ready.
pub const HEADROOM_BYTES: u64 = 1 << 20;

/// The journal behind `POST /v1/logs`.
pub struct JournalAcceptor {
    writer: JournalWriter,
    journal: Arc<Journal>,
    /// The journal's directory (for free space).
    dir: PathBuf,
    max_disk_bytes: u64,
    /// The latest refusal that is not about the backlog, until its
    /// `Retry-After` passes or an append succeeds.
    failure: Arc<Mutex<Option<(Instant, String)>>>,
}

impl JournalAcceptor {
    /// Accepts into `journal`, whose segments are in `dir` and may take
    /// `max_disk_bytes`.
    pub fn new(journal: Arc<Journal>, dir: PathBuf, max_disk_bytes: u64) -> Self {
        JournalAcceptor {
            writer: journal.writer(),
            journal,
            dir,
            max_disk_bytes,
            failure: Arc::default(),
        }
    }
}

impl LogAcceptor for JournalAcceptor {
    fn accept(
        &self,
        records: Vec<BodyRecord>,
        key: Option<&str>,
    ) -> BoxFuture<'static, Result<(), Refusal>> {
        let writer = self.writer.clone();
        let failure = self.failure.clone();
        let ingest_ts_ms = spate_operators::event::wall_clock_ms();
        let keys = record_keys(key, records.len());
        let records: Vec<JournalRecord> = records
            .into_iter()
            .zip(keys)
            .map(|(r, key)| JournalRecord {
                format: r.format,
                ingest_ts_ms,
                lines: r.lines,
                bytes: r.bytes.into(),
                key,
            })
            .collect();
        Box::pin(async move {
            let result = writer.append(records).await;
            let mut last = failure.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(_) => {
                    *last = None;
                    Ok(())
                }
                Err(e @ JournalError::Saturated { .. }) => Err(Refusal::Saturated {
                    reason: format!("pipeline behind: {e}; retry later"),
                }),
                Err(e) => {
                    let until = Instant::now() + e.retry_after().unwrap_or(Duration::from_secs(5));
                    *last = Some((until, e.to_string()));
                    Err(Refusal::Unavailable {
                        reason: e.to_string(),
                    })
                }
            }
        })
    }

    fn ready(&self) -> Result<(), String> {
        let free = rustix::fs::statvfs(&self.dir)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        readiness(
            &self.journal.stats(),
            self.max_disk_bytes,
            free,
            failure
                .filter(|(until, _)| Instant::now() < *until)
                .map(|f| f.1),
        )
    }
}

/// The id keys of the `n` journal records of a push with `Idempotency-Key`
/// `key`: the key itself for the first, `<key> <i>` for the `i`-th after it
/// (a key never holds a space, so no two pushes' record keys are the same).
/// A record's events get ids `http:<record key>:<offset in the record>`: a
/// retry of the same body under the same key gets the same ids, which the
/// lake's dedup drops when sealed, even after a restart.
pub fn record_keys(key: Option<&str>, n: usize) -> Vec<Option<Arc<str>>> {
    (0..n)
        .map(|i| {
            key.map(|key| match i {
                0 => Arc::from(key),
                i => Arc::from(format!("{key} {i}")),
            })
        })
        .collect()
}

/// Whether a push would be accepted, from the journal's counters, the free
/// space of its disk (when known) and a recent failure.
pub fn readiness(
    stats: &JournalStats,
    max_disk_bytes: u64,
    free_bytes: Option<u64>,
    recent_failure: Option<String>,
) -> Result<(), String> {
    if stats.saturated() {
        return Err(format!(
            "journal backlog full ({} of {} bytes unread by the pipeline)",
            stats.backlog_bytes, stats.max_backlog_bytes
        ));
    }
    if stats.disk_bytes.saturating_add(HEADROOM_BYTES) > max_disk_bytes {
        return Err(format!(
            "journal at its disk limit ({} of {} bytes; space returns as the sinks commit)",
            stats.disk_bytes, max_disk_bytes
        ));
    }
    if let Some(free) = free_bytes
        && free < HEADROOM_BYTES
    {
        return Err(format!(
            "data disk full ({free} bytes free under the journal)"
        ));
    }
    if let Some(reason) = recent_failure {
        return Err(format!("journal refused the last push: {reason}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(backlog: u64, disk: u64) -> JournalStats {
        JournalStats {
            appended_position: 0,
            read_position: 0,
            committed_position: 0,
            checkpoint_position: 0,
            backlog_bytes: backlog,
            uncommitted_bytes: 0,
            disk_bytes: disk,
            segments: 1,
            fsyncs: 0,
            max_backlog_bytes: 100 << 20,
        }
    }

    #[test]
    fn each_record_of_a_keyed_push_has_its_own_key() {
        assert_eq!(record_keys(None, 2), [None, None]);
        let keys: Vec<String> = record_keys(Some("b-1"), 3)
            .into_iter()
            .map(|k| k.unwrap().to_string())
            .collect();
        assert_eq!(keys, ["b-1", "b-1 1", "b-1 2"]);
    }

    #[test]
    fn not_ready_whenever_a_push_would_be_refused() {
        const GIB: u64 = 1 << 30;
        assert!(readiness(&stats(0, 0), GIB, Some(GIB), None).is_ok());
        let backlog = readiness(&stats(100 << 20, 0), GIB, Some(GIB), None).unwrap_err();
        assert!(backlog.contains("backlog full"), "{backlog}");
        let limit = readiness(&stats(0, GIB - 1000), GIB, Some(GIB), None).unwrap_err();
        assert!(limit.contains("disk limit"), "{limit}");
        let full = readiness(&stats(0, 0), GIB, Some(4096), None).unwrap_err();
        assert!(full.contains("data disk full"), "{full}");
        // Free space unknown: not a reason by itself.
        assert!(readiness(&stats(0, 0), GIB, None, None).is_ok());
        let io = readiness(&stats(0, 0), GIB, Some(GIB), Some("no space left".into())).unwrap_err();
        assert!(io.contains("no space left"), "{io}");
    }
}
