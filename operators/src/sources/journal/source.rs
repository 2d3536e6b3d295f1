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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use spate_engine::testkit::{CaptureSink, SinkStep};
    use spate_engine::{ActorOptions, GraphBuilder, Pipeline};

    use super::*;
    use crate::sources::journal::segment::JournalRecord;
    use crate::sources::journal::{Journal, JournalConfig};

    const LIMIT: Duration = Duration::from_secs(20);

    fn config(dir: &std::path::Path) -> JournalConfig {
        JournalConfig {
            dir: Some(dir.to_path_buf()),
            ..JournalConfig::default()
        }
    }

    /// A config whose chunks hold one 600-byte record each.
    fn one_record_chunks(dir: &std::path::Path) -> JournalConfig {
        JournalConfig {
            chunk_kib: 1,
            ..config(dir)
        }
    }

    fn record(n: usize) -> JournalRecord {
        let mut text = format!("{{\"n\":{n},\"pad\":\"");
        text.push_str(&"p".repeat(600 - text.len() - 3));
        text.push_str("\"}\n");
        assert_eq!(text.len(), 600);
        JournalRecord::lines(text.into_bytes(), 1)
    }

    fn spawn(journal: &Journal, sink: &CaptureSink<RawChunk>, capacity: usize) -> Pipeline {
        let mut graph = GraphBuilder::new();
        let j = journal.clone();
        graph.source("http", move || j.source());
        let s = sink.clone();
        graph.actor(
            "sink",
            move || s.clone(),
            ActorOptions::with_capacity(capacity),
        );
        graph.connect("http", "sink");
        graph.build().unwrap().spawn()
    }

    async fn stop(pipeline: Pipeline) {
        pipeline.stop();
        let report = tokio::time::timeout(LIMIT, pipeline.join()).await;
        report
            .expect("pipeline drains")
            .expect("pipeline ends cleanly");
    }

    /// (first_position, bytes) of every delivered chunk.
    fn delivered(sink: &CaptureSink<RawChunk>) -> Vec<(u64, Vec<u8>)> {
        sink.delivered()
            .iter()
            .map(|c| {
                assert_eq!(&*c.source, "http");
                (c.first_position, c.bytes.to_vec())
            })
            .collect()
    }

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
    async fn a_restart_replays_exactly_the_uncommitted_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = one_record_chunks(dir.path());
        let mut positions = Vec::new();
        {
            let journal = Journal::open(&cfg, dir.path()).unwrap();
            let writer = journal.writer();
            for n in 0..5 {
                let a = writer.append(vec![record(n)]).await.unwrap();
                positions.push(a.first_position);
            }
            let sink = CaptureSink::gated();
            sink.open(2);
            let pipeline = spawn(&journal, &sink, 16);
            journal
                .shared
                .wait_until("two commits", |s| s.committed_position == 1200)
                .await;
            // Crash: everything still in flight is lost.
            pipeline.kill_switch().trip("test", "crash".into());
            let _ = tokio::time::timeout(LIMIT, pipeline.join()).await.unwrap();
            assert_eq!(journal.checkpoint_now().await.unwrap(), 1200);
            journal.close();
        }
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        assert_eq!(journal.stats().committed_position, 1200);
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the replay to commit", |s| s.committed_position == 3000)
            .await;
        stop(pipeline).await;
        let replayed = delivered(&sink);
        let expected: Vec<_> = (2..5)
            .map(|n| (positions[n], record(n).bytes.to_vec()))
            .collect();
        assert_eq!(replayed, expected);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        {
            let journal = Journal::open(&cfg, dir.path()).unwrap();
            let writer = journal.writer();
            writer
                .append(vec![JournalRecord::lines(&b"kept\n"[..], 1)])
                .await
                .unwrap();
            journal.close();
        }
        // A crash in the middle of the next append: half a record.
        let segment = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&segment).unwrap();
        let good = bytes.len();
        let mut torn = Vec::new();
        crate::sources::journal::segment::encode(
            &mut torn,
            5,
            &JournalRecord::lines(&b"never acknowledged\n"[..], 1),
        )
        .unwrap();
        bytes.extend_from_slice(&torn[..torn.len() - 4]);
        std::fs::write(&segment, &bytes).unwrap();

        let journal = Journal::open(&cfg, dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), good as u64);
        assert_eq!(journal.stats().appended_position, 5);
        let next = journal
            .writer()
            .append(vec![JournalRecord::lines(&b"after\n"[..], 1)])
            .await
            .unwrap();
        assert_eq!(next.first_position, 5);
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the commit", |s| s.committed_position == 11)
            .await;
        stop(pipeline).await;
        let all: Vec<u8> = delivered(&sink).into_iter().flat_map(|c| c.1).collect();
        assert_eq!(all, b"kept\nafter\n");
    }

    #[tokio::test]
    async fn saturation_lifts_once_the_reader_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig {
            max_backlog_mib: 1,
            ..config(dir.path())
        };
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        let writer = journal.writer();
        let mut big = vec![b'x'; 1024 * 1024 - 1];
        big.push(b'\n');
        writer
            .append(vec![JournalRecord::lines(big, 1)])
            .await
            .unwrap();
        let refused = writer
            .append(vec![JournalRecord::lines(&b"no room\n"[..], 1)])
            .await;
        assert!(
            matches!(refused, Err(JournalError::Saturated { .. })),
            "{refused:?}"
        );

        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the reader to catch up", |s| s.backlog_bytes == 0)
            .await;
        let accepted = writer
            .append(vec![JournalRecord::lines(&b"room now\n"[..], 1)])
            .await
            .unwrap();
        assert_eq!(accepted.first_position, 1024 * 1024);
        journal
            .shared
            .wait_until("the commit", |s| {
                s.committed_position == accepted.end_position
            })
            .await;
        stop(pipeline).await;
    }

    #[tokio::test]
    async fn committed_segments_are_deleted_and_free_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig {
            segment_mib: 1,
            max_disk_mib: 3,
            ..config(dir.path())
        };
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        let writer = journal.writer();
        let chunk = || JournalRecord::lines(vec![b'q'; 400 * 1024], 1);
        let mut end = 0;
        let refused = loop {
            match writer.append(vec![chunk()]).await {
                Ok(a) => end = a.end_position,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(refused, JournalError::DiskLimit { .. }),
            "{refused}"
        );
        let before = journal.stats();
        assert_eq!(before.segments, 3);
        assert_eq!(end, 7 * (400 * 1024 + 1));

        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the commit", |s| s.committed_position == end)
            .await;
        stop(pipeline).await;
        assert_eq!(journal.checkpoint_now().await.unwrap(), end);
        let after = journal.stats();
        assert_eq!(after.segments, 1, "{after:?}");
        assert!(after.disk_bytes < before.disk_bytes / 2, "{after:?}");
        let seg_files = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count();
        assert_eq!(seg_files, 1);
        writer.append(vec![chunk()]).await.unwrap();
        // Every record arrived exactly once, in order, coalesced up to 1 MiB
        // within a segment.
        let mut next = 0;
        for (first, bytes) in delivered(&sink) {
            assert_eq!(first, next);
            assert!(bytes.len() <= 1024 * 1024);
            next += bytes.len() as u64;
        }
        assert_eq!(next, end);
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
