//! What an SQS source did with its messages, shared by the source, the task
//! that settles messages and the depth watcher.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts of what the source did with messages (also exported as metrics).
#[derive(Debug, Default)]
pub struct SqsProgress {
    /// Messages received.
    pub received: AtomicU64,
    /// Messages deleted after delivery.
    pub deleted: AtomicU64,
    /// Messages made visible again after a failure or at shutdown.
    pub returned: AtomicU64,
    /// Failed receive calls.
    pub receive_errors: AtomicU64,
    /// Messages whose delete failed: the queue delivers them again after
    /// their visibility timeout.
    pub delete_errors: AtomicU64,
    pub(super) outstanding: AtomicUsize,
    pub(super) settled: Notify,
}

impl SqsProgress {
    /// Messages received whose delete or return has not completed.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    pub(super) fn settled(&self, n: usize) {
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |o| {
                Some(o.saturating_sub(n))
            });
        self.settled.notify_waiters();
    }
}
