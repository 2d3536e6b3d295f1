//! One followed file: its identity, its open descriptor, and cutting its new
//! bytes into chunks of complete lines.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::super::commit_tracker::CommitTracker;
use super::super::{ChunkFormat, RawChunk};
use crate::event::wall_clock_ms;
use spate_engine::AckToken;

/// Device and inode: which file a descriptor or path refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(super) struct FileKey {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

impl FileKey {
    pub(super) fn of(meta: &std::fs::Metadata) -> Self {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// CRC-32 of the first `len` bytes of a file: tells a file from another that
/// got the same inode, or from its own content rewritten after a truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Fingerprint {
    /// Bytes covered (fewer than configured while the file is that short).
    pub len: u64,
    /// CRC-32 of those bytes.
    pub crc32: u32,
}

impl Fingerprint {
    /// The fingerprint of the first `min(size, max)` bytes.
    pub(super) fn read(file: &File, size: u64, max: u64) -> io::Result<Fingerprint> {
        let len = size.min(max);
        let mut buf = vec![0; len as usize];
        file.read_exact_at(&mut buf, 0)?;
        Ok(Fingerprint {
            len,
            crc32: crc32fast::hash(&buf),
        })
    }

    /// True when the file (of `size` bytes) still starts with these bytes.
    pub(super) fn matches(&self, file: &File, size: u64) -> io::Result<bool> {
        if size < self.len {
            return Ok(false);
        }
        Ok(Fingerprint::read(file, self.len, self.len)?.crc32 == self.crc32)
    }
}

/// Where a followed file stands relative to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attachment {
    /// Still at a path the globs match.
    Attached,
    /// Renamed away or deleted: read to its end until it has not grown for
    /// `rotated_idle`, then closed.
    Detached {
        /// Size last seen.
        size: u64,
        /// When it last grew (or was detached).
        grew_at: Instant,
    },
}

/// Limits of one read.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadLimits {
    /// Bytes per chunk.
    pub chunk: u64,
    /// Longest line sent whole.
    pub max_line: u64,
}

/// A chunk ready to send, with its ack token.
#[derive(Debug)]
pub(super) struct ReadyChunk {
    pub chunk: RawChunk,
    pub token: AckToken,
    /// A line longer than `max_line` was cut to make this chunk.
    pub split_line: bool,
}

/// The origin (`source` column) of a tailed file's events: its event id
/// prefix without the generation suffix, so every generation of
/// `/var/log/app.log` (`file:/var/log/app.log`, `...@1`, `...@2`) counts as one
/// source. (A path that itself ends in `@<digits>` loses that suffix too.)
pub(super) fn tail_origin(source: &str) -> Arc<str> {
    match source.rsplit_once('@') {
        Some((path, generation))
            if !generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Arc::from(path)
        }
        _ => Arc::from(source),
    }
}

/// A followed file.
#[derive(Debug)]
pub(super) struct TailedFile {
    /// Where it was last seen.
    pub path: PathBuf,
    /// Source name: event id prefix, unique per file identity and generation.
    pub source: Arc<str>,
    /// The `source` column of its events: `file:<path>` without the generation.
    pub origin: Arc<str>,
    pub file: File,
    pub fingerprint: Fingerprint,
    /// Next byte to send.
    pub sent: u64,
    /// Verdicts of the ranges sent since this generation began.
    pub tracker: CommitTracker,
    pub attachment: Attachment,
}

/// What [`TailedFile::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Size in bytes; the content we sent is still there.
    Same(u64),
    /// The file was truncated or rewritten from its start (copytruncate).
    Truncated,
}

impl TailedFile {
    /// Compares the file with what was read of it, and extends the fingerprint
    /// while the file is shorter than `fingerprint_size`.
    pub(super) fn check(&mut self, fingerprint_bytes: u64, now: Instant) -> io::Result<Check> {
        let size = self.file.metadata()?.len();
        if size < self.sent || !self.fingerprint.matches(&self.file, size)? {
            return Ok(Check::Truncated);
        }
        if self.fingerprint.len < fingerprint_bytes && size > self.fingerprint.len {
            self.fingerprint = Fingerprint::read(&self.file, size, fingerprint_bytes)?;
        }
        if let Attachment::Detached {
            size: seen,
            grew_at,
        } = &mut self.attachment
            && size != *seen
        {
            *seen = size;
            *grew_at = now;
        }
        Ok(Check::Same(size))
    }

    /// Starts over from offset 0 under a new source name, after a truncation.
    pub(super) fn restart(&mut self, source: Arc<str>, fingerprint_bytes: u64) -> io::Result<()> {
        let size = self.file.metadata()?.len();
        self.fingerprint = Fingerprint::read(&self.file, size, fingerprint_bytes)?;
        self.origin = tail_origin(&source);
        self.source = source;
        self.sent = 0;
        self.tracker = CommitTracker::new(0);
        Ok(())
    }

    /// True when a detached file has been idle long enough to finish it.
    pub(super) fn idle_detached(&self, now: Instant, idle: std::time::Duration) -> bool {
        matches!(self.attachment, Attachment::Detached { grew_at, .. } if now.duration_since(grew_at) >= idle)
    }

    /// True when everything sent is committed: the file may be closed.
    pub(super) fn settled(&self) -> bool {
        self.tracker.pending() == 0 && self.tracker.committed() >= self.sent
    }

    /// Reads the next chunk of complete lines from `sent` (the file being
    /// `size` bytes long). With `last`, a trailing partial line is sent too.
    pub(super) fn next_chunk(
        &mut self,
        size: u64,
        limits: ReadLimits,
        last: bool,
    ) -> io::Result<Option<ReadyChunk>> {
        let available = size.saturating_sub(self.sent);
        if available == 0 {
            return Ok(None);
        }
        let mut want = available.min(limits.chunk);
        let mut buf = read_at(&self.file, self.sent, want)?;
        let mut cut = memchr::memrchr(b'\n', &buf).map(|i| i + 1);
        if cut.is_none() && want < available && want < limits.max_line {
            // One line longer than a chunk: read on up to the line limit.
            want = available.min(limits.max_line);
            buf = read_at(&self.file, self.sent, want)?;
            cut = memchr::memrchr(b'\n', &buf).map(|i| i + 1);
        }
        let whole = buf.len() as u64 == available;
        let mut split_line = false;
        let cut = match cut {
            _ if last && whole => buf.len(),
            Some(cut) => cut,
            None if buf.len() as u64 >= limits.max_line => {
                split_line = true;
                limits.max_line as usize
            }
            None => return Ok(None),
        };
        buf.truncate(cut);
        Ok(Some(self.make_chunk(self.sent, buf, split_line)))
    }

    /// Reads `[start, end)` again, for a range whose verdict was `Failed`;
    /// `None` when the file no longer holds the whole range.
    pub(super) fn reread(&mut self, start: u64, end: u64) -> io::Result<Option<ReadyChunk>> {
        let buf = read_at(&self.file, start, end - start)?;
        if (buf.len() as u64) < end - start {
            return Ok(None);
        }
        Ok(Some(self.make_chunk(start, buf, false)))
    }

    fn make_chunk(&mut self, start: u64, bytes: Vec<u8>, split_line: bool) -> ReadyChunk {
        let end = start + bytes.len() as u64;
        let token = self.tracker.track(start, end);
        self.sent = self.sent.max(end);
        ReadyChunk {
            chunk: RawChunk {
                lines: memchr::memchr_iter(b'\n', &bytes).count().max(1),
                bytes: Arc::new(bytes),
                source: self.source.clone(),
                origin: self.origin.clone(),
                first_position: start,
                ingest_ts_ms: wall_clock_ms(),
                format: ChunkFormat::Lines,
            },
            token,
            split_line,
        }
    }
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file).
fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The offset just after the last complete line of a file of `size` bytes
/// (looking back at most `window` bytes; `size` if no newline is there), where
/// `read_from = end` starts.
pub(super) fn end_of_last_line(file: &File, size: u64, window: u64) -> io::Result<u64> {
    let from = size.saturating_sub(window);
    let buf = read_at(file, from, size - from)?;
    Ok(match memchr::memrchr(b'\n', &buf) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tailed(path: &std::path::Path) -> TailedFile {
        let file = File::open(path).unwrap();
        let meta = file.metadata().unwrap();
        TailedFile {
            path: path.to_path_buf(),
            source: Arc::from("file:test"),
            origin: Arc::from("file:test"),
            fingerprint: Fingerprint::read(&file, meta.len(), 8).unwrap(),
            file,
            sent: 0,
            tracker: CommitTracker::new(0),
            attachment: Attachment::Attached,
        }
    }

    const LIMITS: ReadLimits = ReadLimits {
        chunk: 8,
        max_line: 16,
    };

    fn text(c: &ReadyChunk) -> &str {
        std::str::from_utf8(&c.chunk.bytes).unwrap()
    }

    #[test]
    fn chunks_end_at_line_boundaries_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"ab\ncd\nefgh").unwrap();
        let mut f = tailed(&path);
        let a = f.next_chunk(10, LIMITS, false).unwrap().unwrap();
        assert_eq!((text(&a), a.chunk.first_position), ("ab\ncd\n", 0));
        assert_eq!(a.chunk.lines, 2);
        assert!(f.next_chunk(10, LIMITS, false).unwrap().is_none());
        // The last read of a rotated file sends the partial line.
        let b = f.next_chunk(10, LIMITS, true).unwrap().unwrap();
        assert_eq!((text(&b), b.chunk.first_position), ("efgh", 6));
        assert_eq!(f.sent, 10);
        a.token.deliver();
        b.token.deliver();
        assert!(f.settled());
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_read_whole_and_one_over_the_limit_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"0123456789ab\n").unwrap(); // 13 bytes: > chunk, < max_line
        w.write_all(b"0123456789abcdefXYZ\n").unwrap(); // 20 bytes: > max_line
        let mut f = tailed(&path);
        let a = f.next_chunk(33, LIMITS, false).unwrap().unwrap();
        assert_eq!(text(&a), "0123456789ab\n");
        assert!(!a.split_line);
        let b = f.next_chunk(33, LIMITS, false).unwrap().unwrap();
        assert_eq!(text(&b), "0123456789abcdef");
        assert!(b.split_line);
        let c = f.next_chunk(33, LIMITS, false).unwrap().unwrap();
        assert_eq!((text(&c), c.chunk.first_position), ("XYZ\n", 29));
    }

    #[test]
    fn truncation_and_rewrite_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"first line\n").unwrap();
        let mut f = tailed(&path);
        let now = Instant::now();
        assert_eq!(f.check(8, now).unwrap(), Check::Same(11));
        let _ = f.next_chunk(11, LIMITS, false).unwrap().unwrap();
        // Truncated to zero.
        File::create(&path).unwrap();
        assert_eq!(f.check(8, now).unwrap(), Check::Truncated);
        // Truncated and rewritten past our offset before we looked.
        f.restart(Arc::from("file:test@1"), 8).unwrap();
        std::fs::write(&path, b"x\n").unwrap();
        assert_eq!(f.check(8, now).unwrap(), Check::Same(2));
        let _ = f.next_chunk(2, LIMITS, false).unwrap().unwrap();
        std::fs::write(&path, b"other content\n").unwrap();
        assert_eq!(f.check(8, now).unwrap(), Check::Truncated);
    }

    #[test]
    fn end_of_last_line_skips_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"one\ntwo\nthr").unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(end_of_last_line(&file, 11, 1024).unwrap(), 8);
        assert_eq!(end_of_last_line(&file, 11, 2).unwrap(), 11);
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(end_of_last_line(&file, 3, 1024).unwrap(), 0);
    }
}
