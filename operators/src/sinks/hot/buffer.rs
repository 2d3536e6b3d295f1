//! [`HotBuffer`]: the hot rows a hot-store writer holds until its next commit,
//! with the acks of the batches they came from. Both hot writers (the
//! embedded [`HotWriter`](super::HotWriter) and the DynamoDB one) buffer the
//! same way and differ only in where a commit goes.

use spate_engine::{Ack, ActorError, Batch};

use super::rows::HotRows;
use crate::event::Severity;
use crate::log_batch::LogBatch;

/// Rows at or above a severity, buffered with their batches' acks.
///
/// Dropped with acks still held (a restart, a forced stop), it fails them
/// with its `stopped` reason, so their sources redeliver.
pub struct HotBuffer {
    rows: Vec<HotRows>,
    row_count: usize,
    ack: Ack,
    min_severity: Severity,
    max_rows: usize,
    gauge: &'static str,
    stopped: &'static str,
}

impl HotBuffer {
    /// A buffer keeping rows at or above `min_severity`, full at `max_rows`;
    /// its row count is published on the gauge `gauge`.
    pub fn new(
        min_severity: Severity,
        max_rows: usize,
        gauge: &'static str,
        stopped: &'static str,
    ) -> Self {
        HotBuffer {
            rows: Vec::new(),
            row_count: 0,
            ack: Ack::none(),
            min_severity,
            max_rows,
            gauge,
            stopped,
        }
    }

    /// Takes a batch: its hot rows are held with its ack, and a batch without
    /// any is delivered at once. True when the buffer is full (commit now).
    /// An unreadable batch fails alone (what is buffered is fine) and is a
    /// bad-input error.
    pub fn add(&mut self, batch: Batch<LogBatch>) -> Result<bool, ActorError> {
        let (payload, ack, _in_flight) = batch.into_parts();
        let hot = match HotRows::select_all(&payload, self.min_severity) {
            Ok(hot) => hot,
            Err(e) => {
                ack.fail(e.to_string());
                return Err(ActorError::bad_input(e.to_string()));
            }
        };
        if hot.is_empty() {
            ack.deliver();
            return Ok(false);
        }
        self.push(hot, ack);
        Ok(self.row_count >= self.max_rows)
    }

    /// Holds `rows` with `ack`.
    pub fn push(&mut self, rows: Vec<HotRows>, ack: Ack) {
        self.row_count += rows.iter().map(HotRows::len).sum::<usize>();
        self.rows.extend(rows);
        self.ack.merge(ack);
        metrics::gauge!(self.gauge).set(self.row_count as f64);
    }

    /// Rows waiting for the next commit.
    pub fn len(&self) -> usize {
        self.row_count
    }

    /// True when no row is waiting.
    pub fn is_empty(&self) -> bool {
        self.row_count == 0
    }

    /// Everything held, to commit: the rows and the acks to settle once the
    /// commit is done; `None` when nothing is held.
    pub fn take(&mut self) -> Option<(Vec<HotRows>, Ack)> {
        if self.rows.is_empty() && self.ack.is_empty() {
            return None;
        }
        self.row_count = 0;
        metrics::gauge!(self.gauge).set(0.0);
        Some((
            std::mem::take(&mut self.rows),
            std::mem::take(&mut self.ack),
        ))
    }
}

impl Drop for HotBuffer {
    fn drop(&mut self) {
        if let Some((_, ack)) = self.take() {
            ack.fail(self.stopped);
        }
    }
}
