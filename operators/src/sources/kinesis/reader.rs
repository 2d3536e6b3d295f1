//! One shard's reader task: GetRecords in a loop, chunks to the source, the
//! checkpoint to the lease table as sinks deliver.
//!
//! # Backpressure
//!
//! Chunks go to the source over a small bounded channel; while the pipeline is
//! slow the send waits and no GetRecords is made.
//!
//! # Shutdown
//!
//! On [`Control::Stop`] the reader stops reading, waits until every batch it
//! sent has a verdict, writes the final checkpoint and releases the lease. On
//! [`Control::Lost`] (the lease was renewed by someone else) it stops at once
//! and writes nothing. A closed shard (no next iterator) is finished once all
//! its batches are delivered: its lease gets the `SHARD_END` checkpoint.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::ShardIteratorType;
use spate_engine::AckToken;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::lease::LeaseTable;
use super::ledger::{Ledger, backoff, jitter_sample, record_chunks};
use super::{KinesisConfig, KinesisError, StartAt};
use crate::sources::RawChunk;

/// What the coordinator tells a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep reading.
    Run,
    /// Stop reading, settle, checkpoint and release.
    Stop,
    /// The lease is gone: stop without writing.
    Lost,
}

/// Chunks for the source to send, sharing one token.
#[derive(Debug)]
pub struct Emit {
    /// The chunks, in sequence order.
    pub chunks: Vec<RawChunk>,
    /// The batch's token; the source sends a share with each chunk.
    pub token: AckToken,
}

/// How a reader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEnd {
    /// The shard is closed and fully delivered (`SHARD_END` written).
    Finished,
    /// Stopped on request; the lease was released.
    Released,
    /// The lease was lost.
    Lost,
}

/// Where a reader starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPosition {
    /// After this sequence number (the lease's checkpoint).
    After(String),
    /// The oldest record kept.
    TrimHorizon,
    /// Only records put from now on.
    Latest,
}

impl StartPosition {
    /// From a lease checkpoint, else the configured start (children of a
    /// reshard always start at the trim horizon: their parents were read).
    pub fn of(checkpoint: Option<String>, start_at: StartAt, has_parents: bool) -> Self {
        match checkpoint {
            Some(seq) => StartPosition::After(seq),
            None if has_parents => StartPosition::TrimHorizon,
            None => match start_at {
                StartAt::TrimHorizon => StartPosition::TrimHorizon,
                StartAt::Latest => StartPosition::Latest,
            },
        }
    }
}

/// A shard reader's settings and connections.
pub struct ShardReader {
    pub kinesis: aws_sdk_kinesis::Client,
    pub leases: LeaseTable,
    pub config: Arc<KinesisConfig>,
    pub shard_id: String,
    pub token: String,
    pub start: StartPosition,
    pub tx: mpsc::Sender<Emit>,
    pub control: watch::Receiver<Control>,
    /// The shard's last sequence number once it is known to be closed.
    pub ending: watch::Receiver<Option<String>>,
}

/// How long to wait between GetRecords when a call returned a full batch
/// (Kinesis allows 5 calls a second per shard).
const BUSY_POLL: Duration = Duration::from_millis(200);
/// How often a stopping reader looks at its verdicts.
const SETTLE_POLL: Duration = Duration::from_millis(100);

impl ShardReader {
    /// Runs until the shard is finished, the reader is stopped, or the lease is
    /// lost.
    pub async fn run(mut self) -> ReaderEnd {
        let checkpoint = match &self.start {
            StartPosition::After(seq) => Some(seq.clone()),
            _ => None,
        };
        let mut ledger = Ledger::new(checkpoint);
        let end = self.read(&mut ledger).await;
        match end {
            ReaderEnd::Lost => {
                metrics::counter!("spate_kinesis_leases_lost_total").increment(1);
                ReaderEnd::Lost
            }
            ReaderEnd::Finished => self.finish(&mut ledger).await,
            ReaderEnd::Released => self.stop(&mut ledger).await,
        }
    }

    fn control(&self) -> Control {
        *self.control.borrow()
    }

    /// Reads until closed (`Finished`), stopped (`Released`) or lost.
    async fn read(&mut self, ledger: &mut Ledger) -> ReaderEnd {
        let mut iterator: Option<String> = None;
        let mut failures: u32 = 0;
        let mut last_read: Option<String> = ledger.checkpoint().map(str::to_string);
        loop {
            if let Some(end) = self.settle(ledger, true).await {
                return end;
            }
            match self.control() {
                Control::Run => {}
                Control::Stop => return ReaderEnd::Released,
                Control::Lost => return ReaderEnd::Lost,
            }
            let it = match iterator.take() {
                Some(it) => it,
                None => {
                    let start = match &last_read {
                        Some(seq) => StartPosition::After(seq.clone()),
                        None => self.start.clone(),
                    };
                    match self.iterator(&start).await {
                        Ok(Some(it)) => it,
                        // No iterator: the shard is closed and past its end.
                        Ok(None) => return ReaderEnd::Finished,
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(shard = %self.shard_id, error = %e, "kinesis get shard iterator failed");
                            if let Some(end) =
                                self.pause(ledger, backoff(failures, jitter_sample())).await
                            {
                                return end;
                            }
                            continue;
                        }
                    }
                }
            };
            let result = self
                .kinesis
                .get_records()
                .shard_iterator(&it)
                .limit(self.config.max_records as i32)
                .send()
                .await;
            let delay = match result {
                Ok(out) => {
                    failures = 0;
                    if let Some(behind) = out.millis_behind_latest() {
                        metrics::gauge!("spate_kinesis_behind_latest_seconds", "shard" => self.shard_id.clone())
                            .set(behind as f64 / 1000.0);
                    }
                    let records = out.records();
                    let full = records.len() >= self.config.max_records as usize;
                    if let Some(last) = records.last() {
                        metrics::counter!("spate_kinesis_records_total")
                            .increment(records.len() as u64);
                        let stream = &self.config.stream;
                        let chunks = records
                            .iter()
                            .flat_map(|r| record_chunks(stream, &self.shard_id, r))
                            .collect();
                        let last = last.sequence_number().to_string();
                        last_read = Some(last.clone());
                        let chunks: Vec<RawChunk> = chunks;
                        // Registered in the ledger first: a failed send is a
                        // failed batch, retried or left below the checkpoint.
                        let token = ledger.push(chunks.clone(), last);
                        if !self.send(Emit { chunks, token }).await {
                            return match self.control() {
                                Control::Lost => ReaderEnd::Lost,
                                _ => ReaderEnd::Released,
                            };
                        }
                    }
                    let caught_up = records.is_empty()
                        && (out.millis_behind_latest() == Some(0)
                            || self.past_end(last_read.as_deref()));
                    match out.next_shard_iterator {
                        // Kinesis ends a closed shard with a null iterator;
                        // some emulators keep returning empty batches, so a
                        // closed shard read to its end is finished too.
                        Some(_) if caught_up && self.ending.borrow().is_some() => {
                            return ReaderEnd::Finished;
                        }
                        Some(next) => iterator = Some(next),
                        None => return ReaderEnd::Finished,
                    }
                    if full {
                        BUSY_POLL
                    } else {
                        self.config.poll_interval()
                    }
                }
                Err(e) => {
                    failures += 1;
                    match e.code().unwrap_or_default() {
                        "ProvisionedThroughputExceededException"
                        | "ThrottlingException"
                        | "LimitExceededException"
                        | "KMSThrottlingException" => {
                            metrics::counter!("spate_kinesis_throttles_total").increment(1);
                            tracing::debug!(shard = %self.shard_id, "kinesis get records throttled");
                            iterator = Some(it);
                        }
                        // The next round asks for a fresh iterator after the
                        // last record read.
                        "ExpiredIteratorException" => {}
                        _ => {
                            let e = aws_sdk_kinesis::error::DisplayErrorContext(e);
                            tracing::warn!(shard = %self.shard_id, error = %e, "kinesis get records failed");
                            iterator = Some(it);
                        }
                    }
                    backoff(failures, jitter_sample())
                }
            };
            if let Some(end) = self.pause(ledger, delay).await {
                return end;
            }
        }
    }

    /// True when `last_read` is at or past the closed shard's last sequence
    /// number.
    fn past_end(&self, last_read: Option<&str>) -> bool {
        match (last_read, self.ending.borrow().as_deref()) {
            (Some(read), Some(end)) => sequence_at_or_after(read, end),
            _ => false,
        }
    }

    /// Sends a batch to the source, giving up when the reader is stopped or
    /// the source is gone; true when sent.
    async fn send(&mut self, emit: Emit) -> bool {
        let mut control = self.control.clone();
        tokio::select! {
            sent = self.tx.send(emit) => sent.is_ok(),
            _ = not_running(&mut control) => false,
        }
    }

    /// Waits `delay`, settling verdicts as they come; stops early on a control
    /// change.
    async fn pause(&mut self, ledger: &mut Ledger, delay: Duration) -> Option<ReaderEnd> {
        let deadline = Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let mut control = self.control.clone();
            tokio::select! {
                _ = ledger.changed(left) => {
                    if let Some(end) = self.settle(ledger, true).await {
                        return Some(end);
                    }
                }
                _ = not_running(&mut control) => return None,
            }
        }
    }

    /// Sends failed batches again (when `retry`) and writes the checkpoint if
    /// it moved; `Some(Lost)` when the lease is gone.
    async fn settle(&mut self, ledger: &mut Ledger, retry: bool) -> Option<ReaderEnd> {
        if retry {
            for (chunks, token) in ledger.retries() {
                metrics::counter!("spate_kinesis_batches_retried_total").increment(1);
                if !self.send(Emit { chunks, token }).await {
                    break;
                }
            }
        } else {
            // Stopping: failed batches stay below the checkpoint; the next
            // holder reads them again.
            drop(ledger.retries());
        }
        if let Some(seq) = ledger.advance() {
            match self
                .leases
                .checkpoint(&self.shard_id, &self.token, &seq)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Some(ReaderEnd::Lost),
                // Not fatal: the next advance writes a newer checkpoint.
                Err(e) => {
                    tracing::warn!(shard = %self.shard_id, error = %e, "kinesis checkpoint write failed");
                }
            }
        }
        None
    }

    /// Waits for every verdict of a closed shard, re-sending failures, then
    /// writes `SHARD_END`.
    async fn finish(&mut self, ledger: &mut Ledger) -> ReaderEnd {
        loop {
            if let Some(end) = self.settle(ledger, self.control() == Control::Run).await {
                return end;
            }
            match self.control() {
                Control::Lost => return ReaderEnd::Lost,
                Control::Stop if ledger.in_flight() == 0 && !ledger.is_drained() => {
                    return self.release().await;
                }
                _ => {}
            }
            if ledger.is_drained() {
                break;
            }
            ledger.changed(SETTLE_POLL).await;
        }
        let mut failures = 0;
        loop {
            match self.leases.finish(&self.shard_id, &self.token).await {
                Ok(true) => {
                    tracing::info!(shard = %self.shard_id, "kinesis shard finished");
                    return ReaderEnd::Finished;
                }
                Ok(false) => return ReaderEnd::Lost,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(shard = %self.shard_id, error = %e, "kinesis shard end write failed");
                    if failures >= 5 || self.control() != Control::Run {
                        return ReaderEnd::Lost;
                    }
                    tokio::time::sleep(backoff(failures, jitter_sample())).await;
                }
            }
        }
    }

    /// Waits until every sent batch has a verdict (or the lease is lost),
    /// writes the final checkpoint and releases the lease.
    async fn stop(&mut self, ledger: &mut Ledger) -> ReaderEnd {
        loop {
            if let Some(end) = self.settle(ledger, false).await {
                return end;
            }
            if self.control() == Control::Lost {
                return ReaderEnd::Lost;
            }
            if ledger.in_flight() == 0 {
                break;
            }
            ledger.changed(SETTLE_POLL).await;
        }
        self.release().await
    }

    async fn release(&mut self) -> ReaderEnd {
        match self.leases.release(&self.shard_id, &self.token).await {
            Ok(true) => ReaderEnd::Released,
            Ok(false) => ReaderEnd::Lost,
            Err(e) => {
                tracing::warn!(shard = %self.shard_id, error = %e, "kinesis lease release failed; it will expire");
                ReaderEnd::Released
            }
        }
    }

    /// A shard iterator at `start`; `None` when the shard has no more records
    /// to give (closed and read to its end).
    async fn iterator(&self, start: &StartPosition) -> Result<Option<String>, KinesisError> {
        let mut request = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.config.stream)
            .shard_id(&self.shard_id);
        request = match start {
            StartPosition::After(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            StartPosition::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            StartPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let out = request
            .send()
            .await
            .map_err(|e| KinesisError::kinesis("get shard iterator", e))?;
        Ok(out.shard_iterator)
    }
}

/// Resolves once the reader is told to stop (or its coordinator is gone).
async fn not_running(control: &mut watch::Receiver<Control>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = control.wait_for(|c| *c != Control::Run).await.map(|_| ());
}

/// Compares two sequence numbers (decimal strings of up to 128 bits).
fn sequence_at_or_after(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) >= (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_at_or_after("10", "9"));
        assert!(sequence_at_or_after("9", "9"));
        assert!(!sequence_at_or_after("9", "10"));
        assert!(sequence_at_or_after(
            "49590338271490256608559692540925702759324208523137515618",
            "49590338271490256608559692538361571095921575989136588898"
        ));
        assert!(sequence_at_or_after("007", "7"));
    }

    #[test]
    fn start_positions_follow_checkpoint_then_config() {
        assert_eq!(
            StartPosition::of(Some("5".into()), StartAt::Latest, false),
            StartPosition::After("5".into())
        );
        assert_eq!(
            StartPosition::of(None, StartAt::Latest, true),
            StartPosition::TrimHorizon
        );
        assert_eq!(
            StartPosition::of(None, StartAt::Latest, false),
            StartPosition::Latest
        );
        assert_eq!(
            StartPosition::of(None, StartAt::TrimHorizon, false),
            StartPosition::TrimHorizon
        );
    }
}
