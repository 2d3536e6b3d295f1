//! The state the journal handle, its writer thread and its source share:
//! segment extents, positions, the commit tracker and the checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::watch;

use super::config::Limits;
use super::damage::{self, DamageKind};
use super::error::JournalError;
use super::scan::DamagedRange;
use super::{checkpoint, recovery};
use crate::sources::commit_tracker::CommitTracker;

/// What the reader may read of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Durable bytes of the file.
    pub len: u64,
    /// Start of the next segment, `None` for the active one.
    pub next_start: Option<u64>,
    /// The durable end position when `len` was read.
    pub durable: u64,
}

impl Extent {
    /// The position of whatever follows the segment's last durable byte.
    pub fn resume_at_end(&self) -> u64 {
        self.next_start.unwrap_or(self.durable)
    }
}

/// A snapshot of the journal's positions and sizes, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStats {
    /// Position after the last durably appended record.
    pub appended_position: u64,
    /// Position up to which the pipeline has taken the records.
    pub read_position: u64,
    /// Position below which the sinks have committed every record.
    pub committed_position: u64,
    /// The committed position last saved to the checkpoint file.
    pub checkpoint_position: u64,
    /// Bytes appended and not yet taken by the pipeline.
    pub backlog_bytes: u64,
    /// Bytes appended and not yet committed by the sinks.
    pub uncommitted_bytes: u64,
    /// Bytes of every segment file.
    pub disk_bytes: u64,
    /// Number of segment files.
    pub segments: usize,
    /// Group commits (fsyncs of segment data) since open.
    pub fsyncs: u64,
    /// The backlog limit in bytes (`max_backlog`).
    pub max_backlog_bytes: u64,
}

impl JournalStats {
    /// True when appends are refused as saturated.
    pub fn saturated(&self) -> bool {
        self.backlog_bytes >= self.max_backlog_bytes
    }
}

/// State shared by the journal handle, the writer thread and the source.
pub(crate) struct Shared {
    pub(super) dir: PathBuf,
    /// Where copies of damaged bytes go.
    pub(super) dead_dir: PathBuf,
    pub(super) limits: Limits,
    /// Start position → file bytes of every segment; the last is the active
    /// one. The writer publishes a new durable end while holding it, so the
    /// active segment's length and `durable` read under it agree.
    pub(super) segments: Mutex<BTreeMap<u64, u64>>,
    /// (segment start, file offset) of damaged ranges already reported.
    pub(super) damaged: Mutex<BTreeSet<(u64, u64)>>,
    /// Position after the last fsynced record.
    pub(super) durable: watch::Sender<u64>,
    /// Position up to which the pipeline has taken records.
    pub(super) read_position: AtomicU64,
    pub(super) disk_bytes: AtomicU64,
    pub(super) fsyncs: AtomicU64,
    /// Verdicts of the current source instance.
    pub(super) tracker: Mutex<CommitTracker>,
    /// Last saved checkpoint; held while saving.
    pub(super) checkpoint: Mutex<u64>,
    /// Copy of `checkpoint` readable without waiting for a save.
    pub(super) checkpointed: AtomicU64,
    /// Bumped whenever a position moves, for whoever waits on progress.
    pub(super) progress: watch::Sender<u64>,
    /// Set by [`JournalWriter::close`](super::JournalWriter::close).
    pub(super) closed: AtomicBool,
    /// Tests hold this to keep the writer from committing a group.
    #[cfg(test)]
    pub(super) pause: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(super) fn segments(&self) -> MutexGuard<'_, BTreeMap<u64, u64>> {
        // Every update is a single insert, remove or store: a panic while the
        // lock is held cannot leave the map inconsistent.
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The readable extent of the segment starting at `start`, `None` when
    /// it is gone.
    pub(super) fn extent(&self, start: u64) -> Option<Extent> {
        let segments = self.segments();
        let len = *segments.get(&start)?;
        let next_start = segments.range(start + 1..).next().map(|(&s, _)| s);
        Some(Extent {
            len,
            next_start,
            durable: self.durable(),
        })
    }

    /// Keeps a copy of damaged bytes met while reading, reports them and lets
    /// the reader skip them; once per range. An error (no copy could be made)
    /// stops the reader before it skips anything.
    pub(super) fn damage_found(
        &self,
        segment_start: u64,
        path: &Path,
        range: &DamagedRange,
        resume_position: Option<u64>,
    ) -> Result<(), JournalError> {
        let key = (segment_start, range.offset);
        let mut damaged = self.damaged.lock().unwrap_or_else(|p| p.into_inner());
        if damaged.contains(&key) {
            tracing::debug!(path = %path.display(), offset = range.offset,
                "journal: skipping damaged bytes already reported");
            return Ok(());
        }
        let damage = damage::Damage {
            segment: path,
            segment_start,
            range,
            kind: DamageKind::Middle,
            resume_position,
            checkpoint: self.checkpointed.load(Ordering::Acquire),
        };
        let copy = damage::preserve(&self.dead_dir, &damage)?;
        damage::report(&damage, &copy);
        damaged.insert(key);
        Ok(())
    }

    pub(super) fn tracker(&self) -> CommitTracker {
        self.tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A tracker for a new source instance, starting at the committed position
    /// of the last one (whose pending ranges the new instance sends again).
    pub(super) fn fresh_tracker(&self) -> (CommitTracker, u64) {
        let mut current = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        let committed = current.committed();
        *current = CommitTracker::new(committed);
        (current.clone(), committed)
    }

    pub(super) fn committed(&self) -> u64 {
        self.tracker().committed()
    }

    pub(super) fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    pub(super) fn stats(&self) -> JournalStats {
        let appended = self.durable();
        let read = self.read_position.load(Ordering::Acquire);
        let committed = self.committed();
        JournalStats {
            appended_position: appended,
            read_position: read,
            committed_position: committed,
            checkpoint_position: self.checkpointed.load(Ordering::Acquire),
            backlog_bytes: appended.saturating_sub(read),
            uncommitted_bytes: appended.saturating_sub(committed),
            disk_bytes: self.disk_bytes.load(Ordering::Acquire),
            segments: self.segments().len(),
            fsyncs: self.fsyncs.load(Ordering::Acquire),
            max_backlog_bytes: self.limits.max_backlog_bytes,
        }
    }

    /// Updates the gauges and wakes whoever waits on progress.
    pub(super) fn progressed(&self) {
        let stats = self.stats();
        metrics::gauge!("spate_journal_backlog_bytes").set(stats.backlog_bytes as f64);
        metrics::gauge!("spate_journal_uncommitted_bytes").set(stats.uncommitted_bytes as f64);
        metrics::gauge!("spate_journal_disk_bytes").set(stats.disk_bytes as f64);
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Saves the committed position if it moved and deletes the segments it
    /// passed. Blocking; returns the saved checkpoint.
    pub(super) fn save_checkpoint(&self) -> Result<u64, JournalError> {
        let mut saved = self.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
        let committed = self.committed();
        if committed <= *saved {
            return Ok(*saved);
        }
        checkpoint::save(&self.dir, committed)?;
        *saved = committed;
        self.checkpointed.store(committed, Ordering::Release);
        let (deleted, bytes) = {
            let mut segments = self.segments();
            recovery::delete_below(&self.dir, &mut segments, committed)?
        };
        if deleted > 0 {
            self.disk_bytes.fetch_sub(bytes, Ordering::AcqRel);
            checkpoint::sync_dir(&self.dir)?;
            tracing::debug!(
                deleted,
                bytes,
                checkpoint = committed,
                "journal: segments deleted"
            );
        }
        self.progressed();
        Ok(committed)
    }

    /// Resolves once `cond` holds for the stats, checking after every change.
    #[cfg(test)]
    pub(super) async fn wait_until(&self, what: &str, cond: impl Fn(&JournalStats) -> bool) {
        let mut progress = self.progress.subscribe();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while !cond(&self.stats()) {
                let _ = progress.changed().await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "timed out waiting for {what}: {:?}",
            self.stats()
        );
    }
}
