//! [`JournalWriter`]: appends with group commit.
//!
//! One thread owns the active segment file. It takes every append queued
//! while it was busy, checks the limits, writes them with one `write` and one
//! `sync_data`, publishes the new durable end to the source, and answers each
//! caller. Concurrent callers therefore share fsyncs: the more requests wait,
//! the more each fsync carries.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::checkpoint::sync_dir;
use super::error::JournalError;
use super::segment::{HEADER_LEN, JournalRecord, encode, segment_path};
use super::shared::Shared;

/// Where an append landed: `[first_position, end_position)` in position space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Position of the first record.
    pub first_position: u64,
    /// Position after the last record.
    pub end_position: u64,
    /// Records written (empty CloudWatch payloads are skipped).
    pub records: usize,
}

type Reply = oneshot::Sender<Result<Appended, JournalError>>;

struct AppendRequest {
    records: Vec<JournalRecord>,
    reply: Reply,
}

enum Command {
    Append(AppendRequest),
    Close,
}

/// Appends records durably; cheap to clone, shared by every request handler.
#[derive(Clone)]
pub struct JournalWriter {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
}

impl JournalWriter {
    /// Appends `records` (committed together: all or none) and resolves once
    /// they are fsynced. The request is queued when this is called, before the
    /// returned future is first polled.
    ///
    /// Refusals: [`JournalError::Saturated`] while the backlog is at its limit,
    /// [`JournalError::DiskLimit`], [`JournalError::Io`],
    /// [`JournalError::RecordTooLarge`], and [`JournalError::Closed`] after
    /// [`JournalWriter::close`].
    pub fn append(
        &self,
        records: Vec<JournalRecord>,
    ) -> impl Future<Output = Result<Appended, JournalError>> + Send + 'static {
        let queued = if self.shared.closed.load(Ordering::Acquire) {
            Err(JournalError::Closed)
        } else {
            let (reply, answer) = oneshot::channel();
            self.commands
                .send(Command::Append(AppendRequest { records, reply }))
                .map(|()| answer)
                .map_err(|_| JournalError::Closed)
        };
        async move {
            let result = match queued {
                Ok(answer) => answer.await.unwrap_or(Err(JournalError::Closed)),
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                metrics::counter!("spate_journal_rejected_total", "reason" => e.reason())
                    .increment(1);
            }
            result
        }
    }

    /// Stops taking appends: later calls fail with [`JournalError::Closed`];
    /// the appends already queued are still committed, then the writer thread
    /// ends. Dropping every writer (and every [`Journal`](super::Journal)) does
    /// the same.
    pub fn close(&self) {
        if !self.shared.closed.swap(true, Ordering::AcqRel) {
            let _ = self.commands.send(Command::Close);
        }
    }

    /// Group commits (fsyncs of segment data) so far.
    pub fn fsyncs(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for JournalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalWriter")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

/// Starts the writer thread, appending to the segment at `active_start`.
pub(super) fn spawn(
    shared: Arc<Shared>,
    active_start: u64,
    active_len: u64,
    next_position: u64,
) -> Result<JournalWriter, JournalError> {
    let path = segment_path(&shared.dir, active_start);
    let file = open_append(&path)?;
    let (commands, inbox) = mpsc::unbounded_channel();
    let mut thread = SegmentWriter {
        shared: shared.clone(),
        file,
        path,
        active_start,
        active_len,
        next_position,
        broken: None,
    };
    std::thread::Builder::new()
        .name("spate-journal".into())
        .spawn(move || thread.run(inbox))
        .map_err(|e| JournalError::io("start the writer thread for", &shared.dir, e))?;
    Ok(JournalWriter { commands, shared })
}

fn open_append(path: &std::path::Path) -> Result<File, JournalError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| JournalError::io("open", path, e))
}

/// The writer thread's state.
struct SegmentWriter {
    shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    active_start: u64,
    /// Bytes of the active segment file.
    active_len: u64,
    /// Position of the next record.
    next_position: u64,
    /// Set after an fsync failed: what is on disk is unknown until the journal
    /// is reopened (and validated), so every append is refused.
    broken: Option<JournalError>,
}

impl SegmentWriter {
    fn run(&mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = inbox.blocking_recv() {
            let mut group = Vec::new();
            let mut closing = false;
            match command {
                Command::Append(request) => group.push(request),
                Command::Close => closing = true,
            }
            #[cfg(test)]
            let paused = self.shared.pause.blocking_lock();
            while !closing {
                match inbox.try_recv() {
                    Ok(Command::Append(request)) => group.push(request),
                    Ok(Command::Close) => closing = true,
                    Err(_) => break,
                }
            }
            #[cfg(test)]
            drop(paused);
            self.commit(group);
            if closing {
                break;
            }
        }
        inbox.close();
        while let Ok(command) = inbox.try_recv() {
            if let Command::Append(request) = command {
                let _ = request.reply.send(Err(JournalError::Closed));
            }
        }
        tracing::debug!(dir = %self.shared.dir.display(), "journal writer stopped");
    }

    /// Writes and fsyncs every acceptable request of `group`, then answers all.
    fn commit(&mut self, group: Vec<AppendRequest>) {
        if group.is_empty() {
            return;
        }
        if let Some(e) = &self.broken {
            for request in group {
                let _ = request.reply.send(Err(e.clone()));
            }
            return;
        }
        let limits = self.shared.limits;
        if self.active_len >= limits.segment_bytes
            && let Err(e) = self.roll()
        {
            for request in group {
                let _ = request.reply.send(Err(e.clone()));
            }
            return;
        }
        let read = self.shared.read_position.load(Ordering::Acquire);
        let disk = self.shared.disk_bytes.load(Ordering::Acquire);
        let mut buf = Vec::new();
        let mut position = self.next_position;
        let mut accepted = Vec::with_capacity(group.len());
        let mut records_written = 0u64;
        for request in group {
            match self.frame(&request.records, &mut buf, position, read, disk) {
                Ok(appended) => {
                    position = appended.end_position;
                    records_written += appended.records as u64;
                    accepted.push((request.reply, appended));
                }
                Err(e) => {
                    let _ = request.reply.send(Err(e));
                }
            }
        }
        if buf.is_empty() {
            for (reply, appended) in accepted {
                let _ = reply.send(Ok(appended));
            }
            return;
        }
        if let Err(e) = self.file.write_all(&buf) {
            let error = JournalError::io("write", &self.path, e);
            tracing::error!(error = %error, "journal: append failed");
            if let Err(e) = self.file.set_len(self.active_len) {
                self.broken = Some(JournalError::io("truncate", &self.path, e));
            }
            for (reply, _) in accepted {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
        let synced = self.file.sync_data();
        self.shared.fsyncs.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("spate_journal_fsyncs_total").increment(1);
        if let Err(e) = synced {
            let error = JournalError::io("sync", &self.path, e);
            tracing::error!(error = %error, "journal: fsync failed; refusing appends until restart");
            let _ = self.file.set_len(self.active_len);
            self.broken = Some(error.clone());
            for (reply, _) in accepted {
                let _ = reply.send(Err(error.clone()));
            }
            return;
        }
        let written = buf.len() as u64;
        self.active_len += written;
        let payload = position - self.next_position;
        self.next_position = position;
        self.shared.disk_bytes.fetch_add(written, Ordering::AcqRel);
        {
            // Length and durable end together: a reader sees both or neither.
            let mut segments = self.shared.segments();
            segments.insert(self.active_start, self.active_len);
            self.shared.durable.send_replace(position);
        }
        metrics::counter!("spate_journal_appended_bytes_total").increment(payload);
        metrics::counter!("spate_journal_records_total").increment(records_written);
        self.shared.progressed();
        for (reply, appended) in accepted {
            let _ = reply.send(Ok(appended));
        }
    }

    /// Checks one request against the limits and frames its records into
    /// `buf` at `position`; leaves `buf` as it was when refusing.
    fn frame(
        &self,
        records: &[JournalRecord],
        buf: &mut Vec<u8>,
        position: u64,
        read: u64,
        disk: u64,
    ) -> Result<Appended, JournalError> {
        let limits = self.shared.limits;
        let stored: Vec<u64> = records.iter().map(JournalRecord::stored_len).collect();
        let payload: u64 = stored.iter().sum();
        let framed = payload + HEADER_LEN as u64 * stored.iter().filter(|&&n| n > 0).count() as u64;
        if payload > 0 {
            let backlog = position.saturating_sub(read);
            if backlog >= limits.max_backlog_bytes {
                return Err(JournalError::Saturated {
                    backlog_bytes: backlog,
                    limit_bytes: limits.max_backlog_bytes,
                });
            }
            let on_disk = disk + buf.len() as u64;
            if on_disk + framed > limits.max_disk_bytes {
                return Err(JournalError::DiskLimit {
                    disk_bytes: on_disk,
                    limit_bytes: limits.max_disk_bytes,
                });
            }
        }
        let mark = buf.len();
        let mut end = position;
        let mut written = 0;
        for (record, &len) in records.iter().zip(&stored) {
            if len == 0 {
                // An empty CloudWatch payload holds no events.
                metrics::counter!("spate_journal_empty_records_total").increment(1);
                continue;
            }
            match encode(buf, end, record) {
                Ok(n) => end += n,
                Err(e) => {
                    buf.truncate(mark);
                    return Err(e);
                }
            }
            written += 1;
        }
        Ok(Appended {
            first_position: position,
            end_position: end,
            records: written,
        })
    }

    /// Starts a new segment at the next position.
    fn roll(&mut self) -> Result<(), JournalError> {
        let start = self.next_position;
        let path = segment_path(&self.shared.dir, start);
        let file = open_append(&path)?;
        sync_dir(&self.shared.dir)?;
        tracing::debug!(path = %path.display(), "journal: new segment");
        self.file = file;
        self.path = path;
        self.active_start = start;
        self.active_len = 0;
        self.shared.segments().insert(start, 0);
        self.shared.progressed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ChunkFormat;
    use crate::sources::journal::fixtures::config;
    use crate::sources::journal::{Journal, JournalConfig};

    fn line(text: &str) -> JournalRecord {
        JournalRecord::lines(text.as_bytes().to_vec(), 1)
    }

    #[tokio::test]
    async fn concurrent_appends_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        const CALLERS: usize = 32;
        // Hold the writer while every caller queues, as a slow fsync would.
        let pause = journal.shared.pause.lock().await;
        let pending: Vec<_> = (0..CALLERS)
            .map(|i| writer.append(vec![line(&format!("request {i:02}\n"))]))
            .collect();
        drop(pause);
        let mut ranges = Vec::new();
        for p in pending {
            let a = p.await.unwrap();
            ranges.push((a.first_position, a.end_position));
        }
        let fsyncs = writer.fsyncs();
        assert!(
            fsyncs < CALLERS as u64,
            "{fsyncs} fsyncs for {CALLERS} appends"
        );
        assert_eq!(fsyncs, 1);
        // Every request got its own contiguous range, in queue order.
        let expected: Vec<_> = (0..CALLERS as u64).map(|i| (i * 11, i * 11 + 11)).collect();
        assert_eq!(ranges, expected);
        assert_eq!(journal.stats().appended_position, CALLERS as u64 * 11);
    }

    #[tokio::test]
    async fn records_of_one_call_are_contiguous_and_lines_end_with_a_newline() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        let empty_cw = JournalRecord {
            format: ChunkFormat::CloudWatchPayload,
            ingest_ts_ms: 1,
            lines: 0,
            bytes: bytes::Bytes::new(),
            key: None,
        };
        let a = writer
            .append(vec![line("a"), empty_cw, line("bb\n")])
            .await
            .unwrap();
        assert_eq!(
            a,
            Appended {
                first_position: 0,
                end_position: 5,
                records: 2
            }
        );
        let nothing = writer.append(Vec::new()).await.unwrap();
        assert_eq!((nothing.first_position, nothing.end_position), (5, 5));
        assert_eq!(writer.fsyncs(), 1);
        let stats = journal.stats();
        assert_eq!(stats.backlog_bytes, 5);
        assert_eq!(stats.disk_bytes, 5 + 2 * HEADER_LEN as u64);
    }

    #[tokio::test]
    async fn backlog_at_the_limit_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig {
            max_backlog_mib: 1,
            ..config(dir.path())
        };
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        let writer = journal.writer();
        let mut big = vec![b'x'; 1024 * 1024 - 1];
        big.push(b'\n');
        // Below the limit: accepted, even though it reaches it.
        writer.append(vec![line("first\n")]).await.unwrap();
        writer
            .append(vec![JournalRecord::lines(big, 1)])
            .await
            .unwrap();
        let refused = writer.append(vec![line("one more\n")]).await.unwrap_err();
        match refused {
            JournalError::Saturated {
                backlog_bytes,
                limit_bytes,
            } => {
                assert_eq!(backlog_bytes, 1024 * 1024 + 6);
                assert_eq!(limit_bytes, 1024 * 1024);
            }
            other => panic!("expected saturation, got {other}"),
        }
        assert!(journal.stats().saturated());
        // The pipeline catching up (the source moves the read position) lifts it.
        journal
            .shared
            .read_position
            .store(1024 * 1024 + 6, Ordering::Release);
        writer.append(vec![line("one more\n")]).await.unwrap();
    }

    #[tokio::test]
    async fn disk_limit_refuses_appends_that_do_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig {
            max_disk_mib: 1,
            ..config(dir.path())
        };
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        let writer = journal.writer();
        let half = || JournalRecord::lines(vec![b'y'; 600 * 1024], 1);
        writer.append(vec![half()]).await.unwrap();
        let refused = writer.append(vec![half()]).await.unwrap_err();
        assert!(
            matches!(refused, JournalError::DiskLimit { limit_bytes, .. } if limit_bytes == 1024 * 1024),
            "{refused}"
        );
        assert_eq!(
            refused.retry_after(),
            Some(std::time::Duration::from_secs(30))
        );
        // A small one still fits.
        writer.append(vec![line("small\n")]).await.unwrap();
    }

    #[tokio::test]
    async fn close_finishes_queued_appends_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&config(dir.path()), dir.path()).unwrap();
        let writer = journal.writer();
        let pause = journal.shared.pause.lock().await;
        let queued = writer.append(vec![line("queued\n")]);
        journal.close();
        let late = writer.append(vec![line("late\n")]);
        drop(pause);
        assert_eq!(queued.await.unwrap().end_position, 7);
        assert!(matches!(late.await, Err(JournalError::Closed)));
        assert!(matches!(
            writer.append(vec![line("later\n")]).await,
            Err(JournalError::Closed)
        ));
        // What was acknowledged is on disk for the next open.
        drop(writer);
        drop(journal);
        let reopened = Journal::open(&config(dir.path()), dir.path()).unwrap();
        assert_eq!(reopened.stats().appended_position, 7);
    }

    #[tokio::test]
    async fn segments_roll_at_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig {
            segment_mib: 1,
            ..config(dir.path())
        };
        let journal = Journal::open(&cfg, dir.path()).unwrap();
        let writer = journal.writer();
        for _ in 0..5 {
            writer
                .append(vec![JournalRecord::lines(vec![b'z'; 400 * 1024], 1)])
                .await
                .unwrap();
        }
        // 3 records fill the first segment past 1 MiB; the next group rolls.
        let stats = journal.stats();
        assert_eq!(stats.segments, 2);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".seg"))
            .collect();
        names.sort();
        let second = format!("{:020}.seg", 3 * (400 * 1024 + 1));
        assert_eq!(names, vec![format!("{:020}.seg", 0), second]);
    }
}
