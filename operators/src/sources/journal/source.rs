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

use spate_engine::work_threads::WorkThreads;
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

/// What [`JournalSource::forward`] reads next.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Where.
    from: Cursor,
    /// Only records below this position.
    end: u64,
    /// Everything below `end` as one chunk (up to damaged bytes), rather
    /// than a chunk of up to `chunk_size`.
    exact: bool,
    /// The first token starts here when it is below the chunk's first
    /// position (`u64::MAX`: at the chunk).
    track_from: u64,
}

impl Span {
    /// The next chunk below `end`.
    fn next(from: Cursor, end: u64) -> Self {
        Span {
            from,
            end,
            exact: false,
            track_from: u64::MAX,
        }
    }
}

/// The journal as a pipeline source (source name `http`).
pub struct JournalSource {
    shared: Arc<Shared>,
    name: Arc<str>,
    /// Where segments are read: one thread, so the chunks' memory comes from
    /// one allocator heap (see [`WorkThreads`]); tokio's blocking pool if
    /// it could not start.
    reader: Option<WorkThreads>,
}

impl JournalSource {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let reader = WorkThreads::spawn("journal-read", 1)
            .inspect_err(|e| tracing::warn!(error = %e, "journal reads use the blocking pool"))
            .ok();
        JournalSource {
            shared,
            name: Arc::from(SOURCE_NAME),
            reader,
        }
    }

    /// Runs blocking file work off the async threads, on the reader thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, ActorError> {
        let shared = self.shared.clone();
        let done = match &self.reader {
            Some(reader) => reader
                .run(move || work(&shared))
                .await
                .map_err(|e| e.to_string()),
            None => tokio::task::spawn_blocking(move || work(&shared))
                .await
                .map_err(|e| e.to_string()),
        };
        done.map_err(|e| ActorError::internal(format!("journal read task failed: {e}")))?
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
        track_from: u64,
        next_checkpoint: &mut Instant,
    ) -> ActorResult {
        let token = tracker.track(track_from.min(chunk.first_position), chunk.end_position);
        // The source's lag counts from the push (its first record's append).
        let waited = crate::event::wall_clock_ms().saturating_sub(chunk.ingest_ts_ms);
        let now = Instant::now();
        let accepted = now
            .checked_sub(Duration::from_millis(waited.max(0) as u64))
            .unwrap_or(now);
        // A keyed record's events take their ids from its key and their
        // offset in it: `http:<key>:<offset>`.
        let (source, first_position) = match &chunk.key {
            Some(key) => (Arc::from(format!("{}:{key}", self.name)), 0),
            None => (self.name.clone(), chunk.first_position),
        };
        let raw = RawChunk {
            bytes: Arc::new(chunk.bytes),
            source,
            origin: self.name.clone(),
            first_position,
            ingest_ts_ms: chunk.ingest_ts_ms,
            format: chunk.format,
            lines: chunk.lines,
        };
        let send = ctx.send_accepted(Batch::new(raw, Ack::from(token)), accepted);
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

    /// Reads the next chunk `span` asks for and sends it under a token from
    /// `span.track_from` (the start of a failed range being re-sent) or its
    /// first position; returns the new cursor and whether a range was sent
    /// (or, when only damaged bytes were skipped, settled).
    async fn forward(
        &self,
        ctx: &mut Ctx<RawChunk>,
        tracker: &CommitTracker,
        span: Span,
        next_checkpoint: &mut Instant,
    ) -> Result<(Cursor, bool), ActorError> {
        let Span {
            from: cursor,
            end,
            exact,
            track_from,
        } = span;
        let max_bytes = self.shared.limits.chunk_bytes;
        let (chunk, next) = self
            .blocking(move |shared| read_chunk(shared, cursor, end, max_bytes, exact))
            .await?;
        let sent = chunk.is_some();
        if let Some(chunk) = chunk {
            self.send(ctx, tracker, chunk, track_from, next_checkpoint)
                .await?;
        } else if next.position > cursor.position {
            // Only damaged bytes (copied to the dead-letter area) were
            // skipped: settle them so the checkpoint can pass.
            tracker
                .track(track_from.min(cursor.position), next.position)
                .deliver();
            return Ok((next, true));
        }
        Ok((next, sent))
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
                .forward(ctx, tracker, Span::next(cursor, end), next_checkpoint)
                .await?
                .0;
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
                    let mut at = self
                        .blocking(move |shared| locate(shared, range.start))
                        .await?;
                    // One chunk, unless damaged bytes appeared in the range
                    // since it was first read: then a chunk per side. The
                    // first token starts at the range, replacing the failed
                    // one.
                    let mut track_from = range.start;
                    while at.position < range.end {
                        let (next, sent) = self
                            .forward(
                                ctx,
                                &tracker,
                                Span {
                                    from: at,
                                    end: range.end,
                                    exact: true,
                                    track_from,
                                },
                                &mut next_checkpoint,
                            )
                            .await?;
                        if sent {
                            track_from = u64::MAX;
                        }
                        if next == at {
                            break;
                        }
                        at = next;
                    }
                    if track_from == range.start {
                        // Nothing of it is readable any more (its bytes are
                        // in the dead-letter area): settle the failed range
                        // so the checkpoint can pass it.
                        tracker.track(range.start, range.end).deliver();
                    }
                }
                continue;
            }
            let end = *durable.borrow_and_update();
            if cursor.position < end {
                cursor = self
                    .forward(ctx, &tracker, Span::next(cursor, end), &mut next_checkpoint)
                    .await?
                    .0;
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
    async fn a_keyed_record_takes_its_ids_from_its_key_also_when_re_sent() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let keyed = JournalRecord::lines(&b"b\n"[..], 1).with_key(Some("client-1/7".into()));
        let appended = journal
            .writer()
            .append(vec![JournalRecord::lines(&b"a\n"[..], 1), keyed])
            .await
            .unwrap();
        let sink = CaptureSink::scripted([SinkStep::Deliver, SinkStep::Fail]);
        let pipeline = spawn(&journal, &sink, 16);
        let end = appended.end_position;
        journal
            .shared
            .wait_until("the commit after the re-send", |s| {
                s.committed_position == end
            })
            .await;
        stop(pipeline).await;
        let chunks: Vec<(String, u64, Vec<u8>)> = sink
            .delivered()
            .iter()
            .map(|c| (c.source.to_string(), c.first_position, c.bytes.to_vec()))
            .collect();
        // Event ids `http:0` and `http:client-1/7:0`; the keyed chunk failed
        // once and came again the same.
        assert_eq!(sink.state().seen.load(Ordering::SeqCst), 3);
        assert_eq!(
            chunks,
            vec![
                ("http".to_string(), 0, b"a\n".to_vec()),
                ("http:client-1/7".to_string(), 0, b"b\n".to_vec())
            ]
        );
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
