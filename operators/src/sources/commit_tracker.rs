//! [`CommitTracker`]: which positions of a replayable source the sinks have
//! durably committed, so that a checkpoint never runs ahead of the data.
//!
//! A source (the HTTP journal, a tailed file) hands out one ack token per range
//! of positions it sends, in increasing order. The checkpoint is the start of the
//! first range not yet delivered, or the end of the last range when everything is
//! delivered. Gaps between ranges (bytes that carry no events) are allowed.
//!
//! A range whose verdict is `Failed` stays pending (so the checkpoint stays below
//! it) and is reported by [`CommitTracker::take_failed`], so the source can read
//! it again and send it once more under a fresh token.
//!
//! ```
//! use spate_operators::sources::commit_tracker::CommitTracker;
//!
//! let tracker = CommitTracker::new(0);
//! let first = tracker.track(0, 100);
//! let second = tracker.track(100, 250);
//! second.deliver();
//! assert_eq!(tracker.committed(), 0); // the first range is still in flight
//! first.deliver();
//! assert_eq!(tracker.committed(), 250);
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use spate_engine::{AckToken, Verdict};
use tokio::sync::Notify;

/// A range whose verdict was `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRange {
    /// First position.
    pub start: u64,
    /// One past the last position.
    pub end: u64,
    /// The first failure's reason.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeState {
    InFlight,
    Delivered,
    Failed,
}

#[derive(Debug, Default)]
struct TrackerState {
    /// Start of the longest delivered prefix's end.
    committed: u64,
    /// Highest end tracked so far.
    high: u64,
    /// start → (end, state) for every range not folded into `committed`.
    ranges: BTreeMap<u64, (u64, RangeState)>,
    failed: Vec<FailedRange>,
}

impl TrackerState {
    fn advance(&mut self) {
        while let Some((&start, &(end, state))) = self.ranges.first_key_value() {
            if state != RangeState::Delivered {
                self.committed = self.committed.max(start);
                return;
            }
            self.ranges.remove(&start);
            self.committed = self.committed.max(end);
        }
        self.committed = self.committed.max(self.high);
    }
}

/// Tracks the verdicts of a source's ranges; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct CommitTracker {
    state: Arc<Mutex<TrackerState>>,
    changed: Arc<Notify>,
}

impl CommitTracker {
    /// A tracker whose checkpoint starts at `committed` (the last saved
    /// checkpoint, or 0).
    pub fn new(committed: u64) -> Self {
        CommitTracker {
            state: Arc::new(Mutex::new(TrackerState {
                committed,
                high: committed,
                ..TrackerState::default()
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Registers `[start, end)` as in flight and returns the token to send with
    /// it. Tracking a range again (a retry of a failed one) replaces its state.
    pub fn track(&self, start: u64, end: u64) -> AckToken {
        {
            let mut s = self.lock();
            s.ranges.insert(start, (end, RangeState::InFlight));
            s.high = s.high.max(end);
        }
        let state = self.state.clone();
        let changed = self.changed.clone();
        AckToken::new(move |verdict| {
            if let Ok(mut s) = state.lock() {
                match verdict {
                    Verdict::Delivered => {
                        if let Some(entry) = s.ranges.get_mut(&start) {
                            entry.1 = RangeState::Delivered;
                        }
                        s.advance();
                    }
                    Verdict::Failed(reason) => {
                        if let Some(entry) = s.ranges.get_mut(&start) {
                            entry.1 = RangeState::Failed;
                        }
                        s.failed.push(FailedRange { start, end, reason });
                    }
                }
            }
            changed.notify_one();
        })
    }

    /// The checkpoint: every position below it is durably committed.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Ranges still waiting for a verdict (or failed and not yet retried).
    pub fn pending(&self) -> usize {
        self.lock()
            .ranges
            .values()
            .filter(|(_, state)| *state != RangeState::Delivered)
            .count()
    }

    /// Takes the ranges that failed since the last call, oldest first.
    pub fn take_failed(&self) -> Vec<FailedRange> {
        let mut failed = std::mem::take(&mut self.lock().failed);
        failed.sort_by_key(|f| f.start);
        failed
    }

    /// Waits until a verdict arrives (one waiter, the source; a verdict that
    /// arrived while nobody waited wakes the next call at once).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        // A panic while holding this lock cannot leave the state inconsistent
        // (every update is a single insert or field write), so poisoning is
        // ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_waits_for_the_oldest_range() {
        let t = CommitTracker::new(10);
        assert_eq!(t.committed(), 10);
        let a = t.track(10, 20);
        let b = t.track(20, 30);
        let c = t.track(35, 40); // a gap of bytes without events
        c.deliver();
        b.deliver();
        assert_eq!(t.committed(), 10);
        assert_eq!(t.pending(), 1);
        a.deliver();
        assert_eq!(t.committed(), 40);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn a_failed_range_holds_the_checkpoint_until_retried() {
        let t = CommitTracker::new(0);
        let a = t.track(0, 10);
        let b = t.track(10, 20);
        a.fail("disk full");
        b.deliver();
        assert_eq!(t.committed(), 0);
        let failed = t.take_failed();
        assert_eq!(
            failed,
            vec![FailedRange {
                start: 0,
                end: 10,
                reason: "disk full".into()
            }]
        );
        assert!(t.take_failed().is_empty());
        let retry = t.track(0, 10);
        assert_eq!(t.committed(), 0);
        retry.deliver();
        assert_eq!(t.committed(), 20);
    }

    #[test]
    fn a_dropped_token_counts_as_failed() {
        let t = CommitTracker::new(0);
        drop(t.track(0, 5));
        assert_eq!(t.committed(), 0);
        assert_eq!(t.take_failed().len(), 1);
    }

    #[tokio::test]
    async fn changed_wakes_on_a_verdict() {
        let t = CommitTracker::new(0);
        let token = t.track(0, 1);
        let waiter = {
            let t = t.clone();
            tokio::spawn(async move {
                t.changed().await;
                t.committed()
            })
        };
        tokio::task::yield_now().await;
        token.deliver();
        assert_eq!(waiter.await.unwrap(), 1);
    }
}
