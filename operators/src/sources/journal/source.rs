//! [`JournalSource`]: feeds the pipeline from the journal.
//!
//! Reads durable records from the committed position on, coalesces adjacent
//! line records into chunks of up to `chunk_size`, and sends each with an ack
//! token over its position range. Waits for the writer's durable-end signal
//! when caught up; re-reads and re-sends ranges whose verdict was `Failed`;
//! saves the checkpoint every `checkpoint_interval` when it moved.
//!
//! # Backpressure
//!
//! Sends wait while the pipeline is full; the bytes not yet taken count as the
//! journal's backlog, which refuses appends at its limit.
//!
//! # Shutdown
//!
//! On a stop request the source reads on to the durable end as of that moment,
//! sends it, and returns. Failed ranges are not retried then: the checkpoint
//! stays below them and the next start replays them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use spate_engine::{Ack, ActorError, ActorResult, Batch, Ctx, Source};
use tokio::time::{Instant, sleep, sleep_until};

use super::error::JournalError;
use super::reader::{ChunkRead, Cursor, locate, read_chunk};
use super::{SOURCE_NAME, Shared};
use crate::sources::RawChunk;
use crate::sources::commit_tracker::CommitTracker;

/// First delay before re-sending failed ranges.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest delay between re-sends.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The journal as a pipeline source (source name `http`).
pub struct JournalSource {
    shared: Arc<Shared>,
    name: Arc<str>,
}

impl JournalSource {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        JournalSource {
            shared,
            name: Arc::from(SOURCE_NAME),
        }
    }

    /// Runs blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, ActorError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .map_err(|e| ActorError::internal(format!("journal read task failed: {e}")))?
            .map_err(ActorError::from)
    }

    /// Saves the checkpoint if the committed position moved; a failure is
    /// logged and retried at the next interval.
    async fn save_checkpoint(&self) {
        if self.shared.committed() <= self.shared.checkpointed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.blocking(Shared::save_checkpoint).await {
            metrics::counter!("spate_journal_checkpoint_errors_total").increment(1);
            tracing::warn!(error = %e, "journal: cannot save the checkpoint");
        }
    }

    /// Sends `chunk` under a token over its range, saving checkpoints while
    /// the send waits on backpressure.
    async fn send(
        &self,
        ctx: &mut Ctx<RawChunk>,
        tracker: &CommitTracker,
        chunk: ChunkRead,
        next_checkpoint: &mut Instant,
    ) -> ActorResult {
        let token = tracker.track(chunk.first_position, chunk.end_position);
        let raw = RawChunk {
            bytes: Arc::new(chunk.bytes),
            source: self.name.clone(),
            first_position: chunk.first_position,
            ingest_ts_ms: chunk.ingest_ts_ms,
            format: chunk.format,
            lines: chunk.lines,
        };
        let send = ctx.send(Batch::new(raw, Ack::from(token)));
        tokio::pin!(send);
        loop {
            tokio::select! {
                biased;
                sent = &mut send => return sent,
                _ = sleep_until(*next_checkpoint) => {
                    self.save_checkpoint().await;
                    *next_checkpoint = Instant::now() + self.shared.limits.checkpoint_interval;
                }
            }
        }
    }

    /// Reads the next chunk below `end` (or, with `exact`, everything in
    /// `[cursor, end)` as one chunk) and sends it; returns the new cursor.
    async fn forward(
        &self,
        ctx: &mut Ctx<RawChunk>,
        tracker: &CommitTracker,
        cursor: Cursor,
        end: u64,
        exact: bool,
        next_checkpoint: &mut Instant,
    ) -> Result<Cursor, ActorError> {
        let max_bytes = self.shared.limits.chunk_bytes;
        let (chunk, next) = self
            .blocking(move |shared| read_chunk(shared, cursor, end, max_bytes, exact))
            .await?;
        if let Some(chunk) = chunk {
            self.send(ctx, tracker, chunk, next_checkpoint).await?;
        }
        Ok(next)
    }

    /// Sends everything up to `end`, the durable end when the stop came.
    async fn drain(
        &self,
        ctx: &mut Ctx<RawChunk>,
        tracker: &CommitTracker,
        mut cursor: Cursor,
        end: u64,
        next_checkpoint: &mut Instant,
    ) -> ActorResult {
        tracing::info!(
            from = cursor.position,
            to = end,
            "journal: stop requested; sending the rest"
        );
        while cursor.position < end {
            cursor = self
                .forward(ctx, tracker, cursor, end, false, next_checkpoint)
                .await?;
            self.took(cursor.position);
        }
        Ok(())
    }

    /// Records that the pipeline has taken everything below `position`.
    fn took(&self, position: u64) {
        self.shared
            .read_position
            .fetch_max(position, Ordering::AcqRel);
        self.shared.progressed();
    }
}

impl Source for JournalSource {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let (tracker, start) = self.shared.fresh_tracker();
        self.shared.read_position.store(start, Ordering::Release);
        let mut cursor = self.blocking(move |shared| locate(shared, start)).await?;
        self.shared.progressed();
        let mut durable = self.shared.durable.subscribe();
        let interval = self.shared.limits.checkpoint_interval;
        let mut next_checkpoint = Instant::now() + interval;
        let mut retry_delay = RETRY_MIN;
        let mut last_committed = start;
        loop {
            if ctx.stop_requested() {
                let end = *durable.borrow();
                return self
                    .drain(ctx, &tracker, cursor, end, &mut next_checkpoint)
                    .await;
            }
            if Instant::now() >= next_checkpoint {
                self.save_checkpoint().await;
                next_checkpoint = Instant::now() + interval;
            }
            let committed = tracker.committed();
            if committed > last_committed {
                last_committed = committed;
                retry_delay = RETRY_MIN;
                self.shared.progressed();
            }
            let failed = tracker.take_failed();
            if let Some(first) = failed.first() {
                metrics::counter!("spate_journal_resent_ranges_total")
                    .increment(failed.len() as u64);
                tracing::warn!(ranges = failed.len(), from = first.start, reason = %first.reason,
                    delay_ms = retry_delay.as_millis() as u64,
                    "journal: re-sending ranges the pipeline failed");
                tokio::select! {
                    _ = sleep(retry_delay) => {}
                    // Unsent ranges stay failed: the checkpoint holds below them.
                    _ = ctx.stopped() => continue,
                }
                retry_delay = (retry_delay * 2).min(RETRY_MAX);
                for range in failed {
                    let at = self
                        .blocking(move |shared| locate(shared, range.start))
                        .await?;
                    self.forward(ctx, &tracker, at, range.end, true, &mut next_checkpoint)
                        .await?;
                }
                continue;
            }
            let end = *durable.borrow_and_update();
            if cursor.position < end {
                cursor = self
                    .forward(ctx, &tracker, cursor, end, false, &mut next_checkpoint)
                    .await?;
                self.took(cursor.position);
                continue;
            }
            tokio::select! {
                _ = durable.changed() => {}
                _ = tracker.changed() => {}
                _ = ctx.stopped() => {}
                _ = sleep_until(next_checkpoint) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use spate_engine::testkit::{CaptureSink, SinkStep};

    use super::*;
    use crate::sources::ChunkFormat;
    use crate::sources::journal::fixtures::{
        LIMIT, config, delivered, one_record_chunks, record, spawn, stop,
    };
    use crate::sources::journal::{Journal, JournalRecord};
    #[tokio::test]
    async fn round_trip_commits_only_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        let cw = JournalRecord::cloudwatch(&b"H4sIcloudwatch"[..], 2);
        let appended = writer
            .append(vec![
                JournalRecord::lines(&b"a\nb\n"[..], 2),
                cw,
                JournalRecord::lines(&b"c"[..], 1),
                JournalRecord::lines(&b"d\n"[..], 1),
            ])
            .await
            .unwrap();
        assert_eq!(appended.end_position, 4 + 14 + 2 + 2);

        let sink = CaptureSink::gated();
        let pipeline = spawn(&journal, &sink, 16);
        let end = appended.end_position;
        journal
            .shared
            .wait_until("the source to take everything", |s| s.read_position == end)
            .await;
        assert_eq!(journal.stats().committed_position, 0);
        assert_eq!(journal.checkpoint_now().await.unwrap(), 0);

        sink.open(100);
        journal
            .shared
            .wait_until("the commit", |s| s.committed_position == end)
            .await;
        // Line records coalesce; the CloudWatch payload is a chunk of its own.
        assert_eq!(
            delivered(&sink),
            vec![
                (0, b"a\nb\n".to_vec()),
                (4, b"H4sIcloudwatch".to_vec()),
                (18, b"c\nd\n".to_vec()),
            ]
        );
        let formats: Vec<_> = sink.delivered().iter().map(|c| c.format).collect();
        assert_eq!(
            formats,
            vec![
                ChunkFormat::Lines,
                ChunkFormat::CloudWatchPayload,
                ChunkFormat::Lines
            ]
        );
        assert_eq!(sink.delivered()[1].lines, 2);

        // Appends while running reach the pipeline too.
        let more = writer
            .append(vec![JournalRecord::lines(&b"e\n"[..], 1)])
            .await
            .unwrap();
        journal
            .shared
            .wait_until("the second commit", |s| {
                s.committed_position == more.end_position
            })
            .await;
        stop(pipeline).await;
        assert_eq!(journal.checkpoint_now().await.unwrap(), more.end_position);
        assert_eq!(journal.stats().checkpoint_position, more.end_position);
        assert_eq!(journal.stats().uncommitted_bytes, 0);
    }

    #[tokio::test]
    async fn a_failed_verdict_is_re_sent() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&one_record_chunks(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        for n in 0..3 {
            writer.append(vec![record(n)]).await.unwrap();
        }
        let sink = CaptureSink::scripted([SinkStep::Deliver, SinkStep::Fail]);
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the commit after the re-send", |s| {
                s.committed_position == 1800
            })
            .await;
        stop(pipeline).await;
        assert_eq!(sink.state().seen.load(Ordering::SeqCst), 4);
        let firsts: Vec<_> = delivered(&sink).iter().map(|c| c.0).collect();
        // The failed chunk at 600 came again, with the same position.
        assert_eq!(firsts, vec![0, 1200, 600]);
        assert_eq!(delivered(&sink)[2].1, record(1).bytes.to_vec());
    }

    #[tokio::test]
    async fn stop_drains_to_the_durable_end() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&one_record_chunks(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        let sink = CaptureSink::gated();
        // A mailbox of one: the source blocks after a couple of chunks.
        let pipeline = spawn(&journal, &sink, 1);
        for n in 0..10 {
            writer.append(vec![record(n)]).await.unwrap();
        }
        journal
            .shared
            .wait_until("the source to start", |s| s.read_position > 0)
            .await;
        assert!(journal.stats().read_position < 6000);
        pipeline.stop();
        sink.open(1000);
        tokio::time::timeout(LIMIT, pipeline.join())
            .await
            .expect("pipeline drains")
            .expect("pipeline ends cleanly");
        let stats = journal.stats();
        assert_eq!(stats.read_position, 6000);
        assert_eq!(stats.committed_position, 6000);
        let firsts: Vec<_> = delivered(&sink).iter().map(|c| c.0).collect();
        assert_eq!(firsts, (0..10).map(|i| i * 600).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn the_checkpoint_is_saved_periodically() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        let a = journal
            .writer()
            .append(vec![JournalRecord::lines(&b"tick\n"[..], 1)])
            .await
            .unwrap();
        journal
            .shared
            .wait_until("the saved checkpoint", |s| {
                s.checkpoint_position == a.end_position
            })
            .await;
        assert_eq!(
            crate::sources::journal::checkpoint::load(dir.path()).unwrap(),
            a.end_position
        );
        stop(pipeline).await;
    }
}
