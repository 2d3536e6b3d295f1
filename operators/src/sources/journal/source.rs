//! [`JournalSource`]: feeds the pipeline from the journal.
//!
//! Reads durable records from the committed position on, coalesces adjacent
//! line records into chunks of up to `chunk_kib`, and sends each with an ack
//! token over its position range. Waits for the writer's durable-end signal
//! when caught up; re-reads and re-sends ranges whose verdict was `Failed`;
//! saves the checkpoint every `checkpoint_interval_ms` when it moved.
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
use super::segment::{NextRecord, SegmentReader, seek_position, segment_path};
use super::{SOURCE_NAME, Shared};
use crate::sources::commit_tracker::CommitTracker;
use crate::sources::{ChunkFormat, RawChunk};

/// First delay before re-sending failed ranges.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest delay between re-sends.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Where the next record is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Start position of the segment.
    segment: u64,
    /// File offset in the segment.
    offset: u64,
    /// Logical position.
    position: u64,
}

/// Records read for one chunk.
#[derive(Debug)]
struct ChunkRead {
    first_position: u64,
    end_position: u64,
    format: ChunkFormat,
    ingest_ts_ms: i64,
    lines: usize,
    bytes: Vec<u8>,
}

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

/// The cursor at the first record at or after `position`.
fn locate(shared: &Shared, position: u64) -> Result<Cursor, JournalError> {
    let segment = {
        let segments = shared.segments();
        segments
            .range(..=position)
            .next_back()
            .or_else(|| segments.first_key_value())
            .map(|(&start, _)| start)
            .ok_or_else(|| JournalError::Corrupt("the journal has no segment".into()))?
    };
    let path = segment_path(&shared.dir, segment);
    let reader = seek_position(&path, segment, position)
        .map_err(|e| JournalError::io("read", &path, e))?
        .map_err(|why| JournalError::Corrupt(format!("{}: {why}", path.display())))?;
    Ok(Cursor {
        segment,
        offset: reader.offset(),
        position: reader.position(),
    })
}

/// Reads from `cursor` the records below `end` that form one chunk: adjacent
/// line records up to `max_bytes` (at least one record), or one CloudWatch
/// payload; with `exact`, every record below `end`. Moves to the next segment
/// at the end of one. Returns the chunk (none when nothing is below `end`)
/// and the cursor after it.
fn read_chunk(
    shared: &Shared,
    mut cursor: Cursor,
    end: u64,
    max_bytes: u64,
    exact: bool,
) -> Result<(Option<ChunkRead>, Cursor), JournalError> {
    loop {
        if cursor.position >= end {
            return Ok((None, cursor));
        }
        let path = segment_path(&shared.dir, cursor.segment);
        let io = |e| JournalError::io("read", &path, e);
        let mut reader = SegmentReader::open(&path, cursor.offset, cursor.position).map_err(io)?;
        let mut chunk: Option<ChunkRead> = None;
        let mut invalid = None;
        while reader.position() < end {
            let header = match reader.peek_header().map_err(io)? {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(why) => {
                    invalid = Some(why);
                    break;
                }
            };
            if let Some(c) = &chunk {
                let fits = exact
                    || (c.format == ChunkFormat::Lines
                        && header.format == ChunkFormat::Lines
                        && c.bytes.len() as u64 + u64::from(header.len) <= max_bytes);
                if !fits {
                    break;
                }
            }
            match reader.next(true).map_err(io)? {
                NextRecord::Record(header, payload) => {
                    let c = chunk.get_or_insert_with(|| ChunkRead {
                        first_position: header.position,
                        end_position: header.position,
                        format: header.format,
                        ingest_ts_ms: header.ingest_ts_ms,
                        lines: 0,
                        bytes: Vec::with_capacity(
                            (max_bytes as usize).max(payload.len()).min(16 << 20),
                        ),
                    });
                    c.end_position = header.end();
                    c.lines += header.lines as usize;
                    c.bytes.extend_from_slice(&payload);
                    if header.format == ChunkFormat::CloudWatchPayload && !exact {
                        break;
                    }
                }
                NextRecord::End => break,
                NextRecord::Invalid(why) => {
                    invalid = Some(why);
                    break;
                }
            }
        }
        let after = Cursor {
            segment: cursor.segment,
            offset: reader.offset(),
            position: reader.position(),
        };
        if chunk.is_some() {
            return Ok((chunk, after));
        }
        // Nothing readable here: the segment ended (or is damaged); go on with
        // the next one.
        let next = shared
            .segments()
            .range(cursor.segment + 1..)
            .next()
            .map(|(&start, _)| start);
        let Some(next) = next else {
            let why = invalid.unwrap_or("durable records missing");
            return Err(JournalError::Corrupt(format!(
                "{} at position {}: {why}",
                path.display(),
                after.position
            )));
        };
        if let Some(why) = invalid {
            metrics::counter!("spate_journal_torn_records_total").increment(1);
            tracing::error!(path = %path.display(), position = after.position, why,
                "journal: unreadable records skipped up to the next segment");
        }
        cursor = Cursor {
            segment: next,
            offset: 0,
            position: after.position.max(next),
        };
    }
}
