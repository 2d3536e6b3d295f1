//! The ingest journal: durable acceptance for HTTP push.
//!
//! `POST /v1/logs` appends a request's records through a [`JournalWriter`] and
//! answers 2xx only once the write is fsynced. A [`JournalSource`] feeds the
//! pipeline from the journal; its checkpoint advances only when the sinks have
//! durably committed what it sent, and segment files wholly below the
//! checkpoint are deleted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), spate_operators::sources::journal::JournalError> {
//! use spate_operators::sources::journal::{Journal, JournalConfig, JournalRecord};
//!
//! let journal = Journal::open(&JournalConfig::default(), "/var/lib/spate/journal".as_ref())?;
//! let writer = journal.writer();
//! let appended = writer
//!     .append(vec![JournalRecord::lines(&b"{\"msg\":\"hello\"}\n"[..], 1)])
//!     .await?; // durable now: answer 200
//! assert_eq!(appended.end_position - appended.first_position, 16);
//! // The pipeline reads it through `journal.source()`; at shutdown, after the
//! // pipeline drained:
//! journal.checkpoint_now().await?;
//! # Ok(()) }
//! ```
//!
//! # On disk
//!
//! The directory holds segment files `<start>.seg`, named by the logical
//! position of their first record (20 digits), and `checkpoint.json`.
//! A record's *logical position* is the number of payload bytes of every
//! record before it (headers excluded), so adjacent line records are contiguous
//! in position space. Each record is a 40-byte header (magic, payload length,
//! position, ingest time, line count, format, payload CRC32, header CRC32) and
//! its payload; see the `segment` module (which also reads the 29-byte
//! headers of segments written before this format). Segments roll at the first
//! group commit after they reach `segment_size`.
//!
//! On [`Journal::open`] every segment not yet passed by the checkpoint is
//! validated. Bytes that are not valid records (a flipped bit, a zeroed page,
//! a torn write) never make it drop the records after them: they are copied
//! to `<data-dir>/deadletter/journal/`, logged with what was damaged, how
//! many bytes and where the copy is, counted in
//! `spate_journal_damaged_records_total{kind}` and
//! `spate_journal_damaged_bytes_total{kind}`, and skipped; reading resumes at
//! the next valid record. Damage at the end of the newest segment is a torn
//! tail (most likely an append cut by a crash before its fsync, never
//! acknowledged) and is cut off; damage anywhere else held records that may
//! have been acknowledged and is reported as an error. Segments below the
//! checkpoint are deleted. `spate journal check` ([`check()`]) reports the
//! same without changing anything.
//!
//! # Delivery
//!
//! At-least-once. The source sends chunks with event ids `http:<position>`
//! (the decoder adds each line's offset); coalescing adjacent records
//! differently does not change any id, so a replay after a restart or a crash
//! produces the same ids and the sinks' writes stay idempotent. A record with
//! an id key ([`JournalRecord::key`], a push's `Idempotency-Key`) is a chunk
//! alone with the id prefix `http:<key>` (origin `http`) and its own offsets, so its ids are
//! `http:<key>:<offset>` whatever its position: the same record appended
//! again gets the same ids. A chunk whose
//! verdict is `Failed` is read again and re-sent (with capped backoff); the
//! checkpoint stays below it until it is delivered.
//!
//! # Backpressure
//!
//! The source sends with a waiting send, so it reads only as fast as the
//! pipeline takes chunks. Bytes appended but not yet taken (the backlog) are
//! bounded by `max_backlog`: at or above it appends fail with
//! [`JournalError::Saturated`] (the HTTP layer answers 429 with
//! `Retry-After`) until the pipeline catches up. Total disk use is bounded by
//! `max_disk` ([`JournalError::DiskLimit`], 503): space comes back only as
//! the sinks commit and the checkpoint passes whole segments.
//!
//! # Shutdown
//!
//! Stop the HTTP listener first, then the pipeline: when asked to stop, the
//! source reads on to the durable end as of that moment (everything accepted),
//! sends it and returns. After the pipeline drained (the sinks committed),
//! call [`Journal::checkpoint_now`] so the next start does not replay it, and
//! [`Journal::close`] to stop the writer after the appends already queued.
//! Anything not committed is replayed on the next start.

mod check;
mod checkpoint;
mod config;
mod damage;
mod error;
mod reader;
mod recovery;
mod scan;
mod segment;
mod shared;
mod source;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use self::check::{
    DamageCheck, DecodedRecord, DecodedSegment, JournalCheck, SegmentCheck, check, decode_segment,
};
pub use self::config::JournalConfig;
pub use self::damage::DamageKind;
pub use self::error::JournalError;
pub use self::scan::{DamagedRange, LostRecord};
pub use self::segment::JournalRecord;
pub use self::shared::JournalStats;
use self::shared::Shared;
pub use self::source::JournalSource;
pub use self::writer::{Appended, JournalWriter};

use super::commit_tracker::CommitTracker;

/// Source name of journal chunks: event ids are `http:<position>`.
pub const SOURCE_NAME: &str = "http";

/// Where copies of damaged journal bytes go, for a journal whose default
/// directory is `default_dir` (`<data-dir>/journal`):
/// `<data-dir>/deadletter/journal`.
pub fn dead_letter_dir(default_dir: &Path) -> PathBuf {
    default_dir
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(crate::sinks::lake::dead_letters::DEAD_LETTER_DIR)
        .join("journal")
}

/// The journal: open it once, then take writers (for the HTTP handlers) and
/// sources (one per pipeline start; a restarted source resumes from the
/// committed position). Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    shared: Arc<Shared>,
    writer: JournalWriter,
}

impl Journal {
    /// Opens (creating if needed) the journal in `config.dir`, or in
    /// `default_dir` (normally `<data-dir>/journal`) when that is unset;
    /// recovers from a crash (see the module docs) and starts the writer
    /// thread. Copies of damaged bytes go to [`dead_letter_dir`] of
    /// `default_dir` (`<data-dir>/deadletter/journal`). Blocking (it reads
    /// every segment): call it at startup, before serving.
    pub fn open(config: &JournalConfig, default_dir: &Path) -> Result<Journal, JournalError> {
        let limits = config.limits()?;
        let dir = config
            .dir
            .clone()
            .unwrap_or_else(|| default_dir.to_path_buf());
        let dead_dir = dead_letter_dir(default_dir);
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("create", &dir, e))?;
        let recovered = recovery::recover(&dir, &dead_dir)?;
        let disk_bytes = recovered.segments.values().sum();
        let (active_start, active_len) = recovered
            .segments
            .last_key_value()
            .map(|(&s, &l)| (s, l))
            .ok_or_else(|| JournalError::Corrupt("no active segment after recovery".into()))?;
        tracing::info!(
            dir = %dir.display(),
            checkpoint = recovered.checkpoint,
            end = recovered.next_position,
            segments = recovered.segments.len(),
            "journal opened"
        );
        let shared = Arc::new(Shared {
            dir,
            dead_dir,
            limits,
            segments: Mutex::new(recovered.segments),
            damaged: Mutex::new(recovered.damaged),
            durable: watch::Sender::new(recovered.next_position),
            read_position: AtomicU64::new(recovered.checkpoint),
            disk_bytes: AtomicU64::new(disk_bytes),
            fsyncs: AtomicU64::new(0),
            tracker: Mutex::new(CommitTracker::new(recovered.checkpoint)),
            checkpoint: Mutex::new(recovered.checkpoint),
            checkpointed: AtomicU64::new(recovered.checkpoint),
            progress: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            #[cfg(test)]
            pause: tokio::sync::Mutex::new(()),
        });
        let writer = writer::spawn(
            shared.clone(),
            active_start,
            active_len,
            recovered.next_position,
        )?;
        shared.progressed();
        Ok(Journal { shared, writer })
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A writer for request handlers.
    pub fn writer(&self) -> JournalWriter {
        self.writer.clone()
    }

    /// A source feeding the pipeline from the committed position; the graph's
    /// source factory calls this again after every restart.
    pub fn source(&self) -> JournalSource {
        JournalSource::new(self.shared.clone())
    }

    /// Positions and sizes now.
    pub fn stats(&self) -> JournalStats {
        self.shared.stats()
    }

    /// Saves the committed position now (if it moved) and deletes the segments
    /// below it; returns the checkpoint. `spate run` calls this after the
    /// pipeline has drained at shutdown.
    pub async fn checkpoint_now(&self) -> Result<u64, JournalError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.save_checkpoint())
            .await
            .map_err(|e| JournalError::Corrupt(format!("checkpoint task failed: {e}")))?
    }

    /// Stops taking appends; the writer thread finishes the appends already
    /// queued, then ends. Same as [`JournalWriter::close`].
    pub fn close(&self) {
        self.writer.close();
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.shared.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod corruption_tests;
#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use spate_engine::testkit::CaptureSink;

    use super::fixtures::{LIMIT, config, delivered, one_record_chunks, record, spawn, stop};
    use super::segment::segment_path;
    use super::*;

    #[test]
    fn handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Journal>();
        assert_send_sync::<JournalWriter>();
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
    async fn a_new_source_resumes_from_the_committed_position() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&one_record_chunks(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        for n in 0..4 {
            writer.append(vec![record(n)]).await.unwrap();
        }
        let held = CaptureSink::gated();
        held.open(1);
        let pipeline = spawn(&journal, &held, 16);
        journal
            .shared
            .wait_until("one commit", |s| s.committed_position == 600)
            .await;
        pipeline.kill_switch().trip("test", "sink lost".into());
        let _ = tokio::time::timeout(LIMIT, pipeline.join()).await.unwrap();
        // Nothing saved to disk yet: the new source starts from the committed
        // position in memory, as a supervisor restart does.
        assert_eq!(journal.stats().checkpoint_position, 0);
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the rest to commit", |s| s.committed_position == 2400)
            .await;
        stop(pipeline).await;
        let firsts: Vec<_> = delivered(&sink).iter().map(|c| c.0).collect();
        assert_eq!(firsts, vec![600, 1200, 1800]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_and_appends_continue_after_it() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("journal");
        let cfg = JournalConfig::default();
        {
            let journal = Journal::open(&cfg, &dir).unwrap();
            let writer = journal.writer();
            writer
                .append(vec![JournalRecord::lines(&b"kept\n"[..], 1)])
                .await
                .unwrap();
            journal.close();
        }
        // A crash in the middle of the next append: half a record.
        let segment = segment_path(&dir, 0);
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

        let journal = Journal::open(&cfg, &dir).unwrap();
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), good as u64);
        // The cut bytes are kept.
        let copies: Vec<_> = std::fs::read_dir(data.path().join("deadletter/journal"))
            .unwrap()
            .collect();
        assert_eq!(copies.len(), 1);
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
}
