//! What the tail source knows between polls: the followed files, the
//! checkpoints of files not open, and the generation count per path. It lives
//! behind a mutex shared by every incarnation of the source (a restarted source
//! continues where the failed one stopped) and the checkpoint handle.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::time::Instant;

use super::checkpoint::{CheckpointFile, FileCheckpoint};
use super::config::{ReadFrom, TailConfig};
use super::tailed::{
    Attachment, Check, FileKey, Fingerprint, ReadLimits, ReadyChunk, TailedFile, end_of_last_line,
    tail_origin,
};
use crate::sources::commit_tracker::CommitTracker;

/// The checkpoint of a file that is not open.
#[derive(Debug, Clone)]
pub(super) struct Remembered {
    pub fingerprint: Fingerprint,
    pub path: PathBuf,
    pub source: Arc<str>,
    pub offset: u64,
    /// When it was last open or loaded; forgotten `forget_after` later.
    pub since: Instant,
}

/// A followed file plus the failed ranges waiting to be sent again.
#[derive(Debug)]
pub(super) struct Followed {
    pub tailed: TailedFile,
    pub retry: VecDeque<(u64, u64)>,
}

/// The shared state of a tail source.
#[derive(Debug, Default)]
pub(super) struct TailState {
    pub files: BTreeMap<FileKey, Followed>,
    pub remembered: BTreeMap<FileKey, Remembered>,
    /// File identities seen per path (the next generation number).
    pub generations: BTreeMap<String, u64>,
    /// Set after the first scan: `read_from` applies to that scan only.
    pub scanned: bool,
    /// Paths whose open failed, warned about once.
    pub unreadable: BTreeSet<PathBuf>,
}

/// Source name of the next file identity at `path`: `file:<path>` for the
/// first, `file:<path>@<n>` for the n-th successor.
fn next_source(generations: &mut BTreeMap<String, u64>, path: &Path) -> Arc<str> {
    let key = path.display().to_string();
    let generation = generations.entry(key.clone()).or_insert(0);
    let name = match *generation {
        0 => format!("file:{key}"),
        n => format!("file:{key}@{n}"),
    };
    *generation += 1;
    Arc::from(name)
}

impl TailState {
    /// A state resuming from a loaded checkpoint file.
    pub(super) fn from_checkpoint(file: CheckpointFile, now: Instant) -> Self {
        let remembered = file
            .files
            .into_iter()
            .map(|c| {
                let key = FileKey {
                    dev: c.dev,
                    ino: c.ino,
                };
                let entry = Remembered {
                    fingerprint: Fingerprint {
                        len: c.fingerprint_len,
                        crc32: c.fingerprint_crc32,
                    },
                    path: c.path,
                    source: Arc::from(c.source),
                    offset: c.offset,
                    since: now,
                };
                (key, entry)
            })
            .collect();
        TailState {
            remembered,
            generations: file.generations,
            ..TailState::default()
        }
    }

    /// The checkpoint to write: committed offsets of open files and the
    /// remembered ones.
    pub(super) fn checkpoint(&self) -> CheckpointFile {
        let entry =
            |key: &FileKey, fp: Fingerprint, path: &Path, source: &str, offset| FileCheckpoint {
                dev: key.dev,
                ino: key.ino,
                fingerprint_len: fp.len,
                fingerprint_crc32: fp.crc32,
                path: path.to_path_buf(),
                source: source.to_string(),
                offset,
            };
        let mut files: Vec<FileCheckpoint> = self
            .files
            .iter()
            .map(|(key, f)| {
                let t = &f.tailed;
                entry(
                    key,
                    t.fingerprint,
                    &t.path,
                    &t.source,
                    t.tracker.committed(),
                )
            })
            .chain(
                self.remembered
                    .iter()
                    .map(|(key, r)| entry(key, r.fingerprint, &r.path, &r.source, r.offset)),
            )
            .collect();
        files.sort_by_key(|c| (c.dev, c.ino));
        CheckpointFile::new(files, self.generations.clone())
    }

    /// Brings the followed files in line with the paths the globs match now:
    /// notices renames and deletions, opens new files (resuming from their
    /// checkpoint), and forgets checkpoints of files gone for long.
    pub(super) fn reconcile(&mut self, paths: Vec<PathBuf>, config: &TailConfig, now: Instant) {
        let mut found: BTreeMap<FileKey, PathBuf> = BTreeMap::new();
        for path in paths {
            if let Ok(meta) = std::fs::metadata(&path) {
                found.entry(FileKey::of(&meta)).or_insert(path);
            }
        }
        for (key, followed) in &mut self.files {
            let t = &mut followed.tailed;
            match found.remove(key) {
                Some(path) => {
                    if path != t.path {
                        tracing::info!(from = %t.path.display(), to = %path.display(), "tailed file renamed");
                        metrics::counter!("spate_tail_rotations_total").increment(1);
                        t.path = path;
                    }
                    t.attachment = Attachment::Attached;
                }
                None if t.attachment == Attachment::Attached => {
                    tracing::info!(path = %t.path.display(), "tailed file rotated away or deleted; reading it to its end");
                    metrics::counter!("spate_tail_rotations_total").increment(1);
                    let size = t.file.metadata().map(|m| m.len()).unwrap_or(t.sent);
                    t.attachment = Attachment::Detached { size, grew_at: now };
                }
                None => {}
            }
        }
        for (key, path) in found {
            self.open(key, path, config, Attachment::Attached);
        }
        if !self.scanned {
            self.scanned = true;
            self.find_renamed_while_away(config, now);
        }
        let forget_after = config.forget_after();
        self.remembered
            .retain(|_, r| now.duration_since(r.since) < forget_after);
        metrics::gauge!("spate_tail_files").set(self.files.len() as f64);
        metrics::gauge!("spate_tail_behind_bytes").set(self.behind_bytes() as f64);
    }

    /// Bytes written to the followed files and not yet read.
    pub(super) fn behind_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|f| {
                let t = &f.tailed;
                t.file
                    .metadata()
                    .map_or(0, |m| m.len().saturating_sub(t.sent))
            })
            .sum()
    }

    /// Opens a file found at `path` and starts following it.
    fn open(&mut self, key: FileKey, path: PathBuf, config: &TailConfig, attachment: Attachment) {
        let opened = File::open(&path).and_then(|file| {
            let meta = file.metadata()?;
            Ok((file, meta))
        });
        let (file, meta) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                metrics::counter!("spate_tail_open_errors_total").increment(1);
                if self.unreadable.insert(path.clone()) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open file to tail; retrying every poll");
                }
                return;
            }
        };
        self.unreadable.remove(&path);
        if FileKey::of(&meta) != key {
            return; // replaced between the scan and the open: the next scan sees it
        }
        let size = meta.len();
        let fingerprint_bytes = config.fingerprint_bytes as u64;
        let resumed = match self.remembered.remove(&key) {
            Some(r) if r.offset <= size && r.fingerprint.matches(&file, size).unwrap_or(false) => {
                Some((r.source, r.offset))
            }
            _ => None,
        };
        let (source, start) = match resumed {
            Some(resumed) => resumed,
            None => {
                let start = if !self.scanned && config.read_from == ReadFrom::End {
                    end_of_last_line(&file, size, config.max_line_bytes()).unwrap_or(size)
                } else {
                    0
                };
                (next_source(&mut self.generations, &path), start)
            }
        };
        let Ok(fingerprint) = Fingerprint::read(&file, size, fingerprint_bytes) else {
            metrics::counter!("spate_tail_read_errors_total").increment(1);
            return;
        };
        tracing::info!(path = %path.display(), %source, offset = start, "tailing file");
        self.files.insert(
            key,
            Followed {
                tailed: TailedFile {
                    path,
                    origin: tail_origin(&source),
                    source,
                    file,
                    fingerprint,
                    sent: start,
                    tracker: CommitTracker::new(start),
                    attachment,
                },
                retry: VecDeque::new(),
            },
        );
    }

    /// At start-up, looks next to each checkpointed path for a file renamed
    /// while Spate was not running (`app.log` → `app.log.1`), and reads what
    /// it has beyond its checkpoint before closing it.
    fn find_renamed_while_away(&mut self, config: &TailConfig, now: Instant) {
        let mut dirs: BTreeMap<PathBuf, Vec<FileKey>> = BTreeMap::new();
        for (key, r) in &self.remembered {
            if let Some(dir) = r.path.parent() {
                dirs.entry(dir.to_path_buf()).or_default().push(*key);
            }
        }
        for (dir, keys) in dirs {
            let io_dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &dir
            };
            let Ok(entries) = std::fs::read_dir(io_dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = dir.join(entry.file_name());
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                let key = FileKey::of(&meta);
                if !meta.is_file() || !keys.contains(&key) {
                    continue;
                }
                // The same file (not an inode reused by another) with more to read.
                let unread = self.remembered.get(&key).is_some_and(|r| {
                    r.offset < meta.len()
                        && File::open(&path).is_ok_and(|file| {
                            r.fingerprint.matches(&file, meta.len()).unwrap_or(false)
                        })
                });
                if unread {
                    let attachment = Attachment::Detached {
                        size: meta.len(),
                        grew_at: now,
                    };
                    self.open(key, path, config, attachment);
                }
            }
        }
    }

    /// The next chunk to send from the file `key`: a failed range first, then
    /// new complete lines (a detached file idle for `rotated_idle` sends its
    /// partial last line too).
    pub(super) fn next_chunk(
        &mut self,
        key: FileKey,
        config: &TailConfig,
        now: Instant,
    ) -> Option<ReadyChunk> {
        let followed = self.files.get_mut(&key)?;
        let fingerprint_bytes = config.fingerprint_bytes as u64;
        let size = match followed.tailed.check(fingerprint_bytes, now) {
            Ok(Check::Same(size)) => size,
            Ok(Check::Truncated) => {
                let t = &mut followed.tailed;
                let source = next_source(&mut self.generations, &t.path);
                tracing::warn!(path = %t.path.display(), %source, "tailed file truncated (copytruncate?); reading it again from the start");
                metrics::counter!("spate_tail_truncations_total").increment(1);
                followed.retry.clear();
                if let Err(e) = t.restart(source, fingerprint_bytes) {
                    return read_failed(&t.path, e);
                }
                t.file.metadata().map(|m| m.len()).unwrap_or(0)
            }
            Err(e) => return read_failed(&followed.tailed.path, e),
        };
        let t = &mut followed.tailed;
        followed.retry.extend(
            t.tracker
                .take_failed()
                .into_iter()
                .map(|f| (f.start, f.end)),
        );
        if let Some((start, end)) = followed.retry.pop_front() {
            match t.reread(start, end) {
                Ok(Some(ready)) => {
                    metrics::counter!("spate_tail_resent_bytes_total").increment(end - start);
                    return Some(ready);
                }
                Ok(None) => {
                    // Shorter than the range: truncated since `check`; the next
                    // check restarts the file.
                    followed.retry.push_front((start, end));
                    return None;
                }
                Err(e) => {
                    followed.retry.push_front((start, end));
                    return read_failed(&t.path, e);
                }
            }
        }
        let limits = ReadLimits {
            chunk: config.chunk_bytes(),
            max_line: config.max_line_bytes(),
        };
        let last = t.idle_detached(now, config.rotated_idle());
        match t.next_chunk(size, limits, last) {
            Ok(Some(ready)) => {
                metrics::counter!("spate_tail_read_bytes_total")
                    .increment(ready.chunk.bytes.len() as u64);
                if ready.split_line {
                    metrics::counter!("spate_tail_long_lines_split_total").increment(1);
                }
                Some(ready)
            }
            Ok(None) => None,
            Err(e) => read_failed(&t.path, e),
        }
    }

    /// Closes detached files that are idle, read to their end and fully
    /// committed; their checkpoint is remembered.
    pub(super) fn close_finished(&mut self, config: &TailConfig, now: Instant) {
        let idle = config.rotated_idle();
        let done: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, f)| {
                let t = &f.tailed;
                t.idle_detached(now, idle)
                    && f.retry.is_empty()
                    && t.settled()
                    && t.file.metadata().is_ok_and(|m| m.len() <= t.sent)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in done {
            if let Some(f) = self.files.remove(&key) {
                let t = f.tailed;
                tracing::info!(path = %t.path.display(), source = %t.source, "finished rotated file; closing it");
                self.remembered.insert(
                    key,
                    Remembered {
                        fingerprint: t.fingerprint,
                        path: t.path,
                        source: t.source,
                        offset: t.tracker.committed(),
                        since: now,
                    },
                );
            }
        }
        metrics::gauge!("spate_tail_files").set(self.files.len() as f64);
    }
}

/// Counts and logs a read error of an open file; it is tried again next poll.
fn read_failed(path: &Path, e: std::io::Error) -> Option<ReadyChunk> {
    metrics::counter!("spate_tail_read_errors_total").increment(1);
    tracing::warn!(path = %path.display(), error = %e, "cannot read tailed file; retrying next poll");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_unique_per_generation() {
        let mut generations = BTreeMap::new();
        let p = Path::new("/var/log/a.log");
        assert_eq!(&*next_source(&mut generations, p), "file:/var/log/a.log");
        assert_eq!(&*next_source(&mut generations, p), "file:/var/log/a.log@1");
        assert_eq!(&*next_source(&mut generations, Path::new("/b")), "file:/b");
        assert_eq!(&*next_source(&mut generations, p), "file:/var/log/a.log@2");
        assert_eq!(
            &*tail_origin("file:/var/log/a.log@2"),
            "file:/var/log/a.log"
        );
        assert_eq!(&*tail_origin("file:/var/log/a.log"), "file:/var/log/a.log");
        assert_eq!(&*tail_origin("file:/x/me@host.log"), "file:/x/me@host.log");
        assert_eq!(&*tail_origin("file:/x/a@"), "file:/x/a@");
    }

    #[test]
    fn remembered_checkpoints_are_forgotten_after_a_while() {
        let dir = tempfile::tempdir().unwrap();
        let config = TailConfig {
            paths: vec![format!("{}/*.log", dir.path().display())],
            forget_after_secs: 60,
            ..TailConfig::default()
        };
        let now = Instant::now();
        let mut state = TailState::default();
        state.remembered.insert(
            FileKey { dev: 1, ino: 1 },
            Remembered {
                fingerprint: Fingerprint { len: 0, crc32: 0 },
                path: dir.path().join("gone.log"),
                source: Arc::from("file:gone"),
                offset: 10,
                since: now,
            },
        );
        state.reconcile(
            Vec::new(),
            &config,
            now + std::time::Duration::from_secs(59),
        );
        assert_eq!(state.checkpoint().files.len(), 1);
        state.reconcile(
            Vec::new(),
            &config,
            now + std::time::Duration::from_secs(60),
        );
        assert!(state.checkpoint().files.is_empty());
    }
}
