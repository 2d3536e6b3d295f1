//! File tail: follows application log files like Fluent Bit or Vector do, through
//! rotation, with offsets checkpointed only once the sinks have committed.
//!
//! Every `poll_interval` the source walks the `paths` globs (see
//! [`TailConfig`]), opens files it does not follow yet, and reads what was
//! appended: one [`RawChunk`] per read of up to `chunk_size`, cut after the last
//! complete line (a trailing partial line waits for its newline). Each chunk's
//! ack token comes from the file's
//! [`CommitTracker`](super::commit_tracker::CommitTracker) over its byte range.
//!
//! # Source names
//!
//! A file is identified by device, inode and a fingerprint (CRC-32 of its
//! first `fingerprint_size`). The first file identity seen at a path is named
//! `file:<path>`, like `spate ingest` names it; every later identity at the same
//! path (the new file after a rotation, or the content written after a
//! truncation) is `file:<path>@<n>`, n = 1, 2, ... A file keeps its name when it
//! is renamed, so a rotated-away file and its successor never produce the same
//! event ids (`<source>:<offset>`), and a line sent again after a restart has
//! the id it had before. The counts per path are part of the checkpoint.
//!
//! # Rotation
//!
//! - **rename** (logrotate `create`, most loggers): the old file, still open, is
//!   read to its end until it has not grown for `rotated_idle`; then its
//!   last partial line (if any) is sent as is, and it is closed once everything
//!   read from it is committed. The new file at the path is read from offset 0.
//!   A rename to a name the globs still match is just a new path for the same
//!   file. Counted in `spate_tail_rotations_total`.
//! - **deletion**: like a rename: the open file is read to its end, then closed.
//! - **copytruncate**: the file shrinks below our offset, or its first bytes
//!   change: it is read again from offset 0 under a new source name (counted in
//!   `spate_tail_truncations_total`). Lines written between our last read and
//!   the truncation are lost, by the nature of copytruncate (they are only in
//!   the copy, which the globs should exclude); if the rewritten file has the
//!   same first bytes and has grown past our offset before we look, the
//!   truncation goes unnoticed. Prefer rename rotation.
//! - A file renamed while Spate was not running is found next to its
//!   checkpointed path at start-up (same device, inode and fingerprint) and
//!   read from its checkpoint to its end.
//!
//! A line longer than `max_line` is split into pieces of that size, each
//! its own event (`spate_tail_long_lines_split_total`); nothing is dropped.
//!
//! # Guarantee
//!
//! At least once: `<checkpoint dir>/tail.json` holds, per file, an offset below
//! which every byte was durably committed by every sink, written atomically
//! every `checkpoint_interval` when it changed and by
//! [`TailCheckpoints::save_now`]. After a restart each file resumes at its
//! checkpoint: lines sent but not committed are sent again, with the same event
//! ids. A range whose verdict is `Failed` is read again and re-sent. Checkpoints
//! of files gone for `forget_after` are forgotten.
//!
//! # Backpressure
//!
//! Reading waits on the pipeline: each chunk is sent with a waiting send, so a
//! slow sink stops the reads, and the unread bytes simply stay in the files. At
//! most `mailbox capacity × chunk_size` is buffered per source.
//!
//! # Shutdown
//!
//! On a stop request the source stops reading (a poll's wait wakes at once) and
//! returns `Ok` after writing a checkpoint. Offsets committed during the drain
//! that follows are saved by [`TailCheckpoints::save_now`], which `spate run`
//! calls once the pipeline has drained. A restarted source (after an error)
//! shares the state of the one it replaces: open files and in-flight ranges
//! carry on.
//!
//! # Metrics
//!
//! `spate_tail_files` (gauge), `spate_tail_read_bytes_total`,
//! `spate_tail_resent_bytes_total`, `spate_tail_rotations_total`,
//! `spate_tail_truncations_total`, `spate_tail_long_lines_split_total`,
//! `spate_tail_checkpoint_writes_total`, `spate_tail_checkpoint_errors_total`,
//! `spate_tail_open_errors_total`, `spate_tail_read_errors_total`.
//!
//! Unix only (device and inode numbers identify files).

mod checkpoint;
mod config;
mod discover;
mod error;
mod kind;
mod state;
mod tailed;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use spate_engine::{Ack, ActorError, ActorResult, Batch, Ctx, Source};
use tokio::time::Instant;

pub use checkpoint::FileCheckpoint;
pub use config::{ReadFrom, TailConfig, ValidTail};
pub use error::TailError;
pub use kind::TailKind;

use super::RawChunk;
use discover::FileMatcher;
use state::TailState;

/// What the source and its checkpoint handle share.
#[derive(Debug)]
struct Shared {
    config: TailConfig,
    matcher: FileMatcher,
    checkpoint_path: PathBuf,
    state: Mutex<TailState>,
    /// The bytes last written to the checkpoint file; held while writing.
    written: Mutex<Option<Vec<u8>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, TailState> {
        // Every update under this lock leaves the state usable, so a panic
        // while holding it does not poison anything that matters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self) -> Result<bool, TailError> {
        let bytes = self.state().checkpoint().to_bytes();
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written.as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        checkpoint::write_atomically(&self.checkpoint_path, &bytes)?;
        metrics::counter!("spate_tail_checkpoint_writes_total").increment(1);
        *written = Some(bytes);
        Ok(true)
    }

    /// Saves, logging and counting a failure (the next interval tries again).
    fn save_quietly(&self) {
        if let Err(e) = self.save() {
            metrics::counter!("spate_tail_checkpoint_errors_total").increment(1);
            tracing::warn!(error = %e, "tail checkpoint not written");
        }
    }
}

/// Handle to the tail checkpoints, for `spate run` to save them after the
/// pipeline drained, and to inspect them.
#[derive(Debug, Clone)]
pub struct TailCheckpoints {
    shared: Arc<Shared>,
}

impl TailCheckpoints {
    /// Writes the committed offsets now if they changed since the last write;
    /// true when the file was written.
    pub fn save_now(&self) -> Result<bool, TailError> {
        self.shared.save()
    }

    /// Path of the checkpoint file.
    pub fn path(&self) -> &Path {
        &self.shared.checkpoint_path
    }

    /// The committed offsets as they stand (what `save_now` would write), one
    /// per file identity, ordered by device and inode.
    pub fn files(&self) -> Vec<FileCheckpoint> {
        self.shared.state().checkpoint().files
    }
}

/// The file tail source; cheap to clone, and clones share everything, so the
/// graph's factory can hand out a clone per (re)start.
///
/// ```no_run
/// use spate_engine::{ActorOptions, GraphBuilder};
/// use spate_operators::sources::tail::{TailConfig, TailSource};
///
/// let config = TailConfig { paths: vec!["/var/log/app/*.log".into()], ..TailConfig::default() };
/// let tail = TailSource::new(config, "/var/lib/spate/checkpoints").unwrap();
/// let checkpoints = tail.checkpoints();
/// let mut graph = GraphBuilder::new();
/// graph.source("tail", move || tail.clone());
/// // ... connect decode and sinks, run, and after the drain:
/// checkpoints.save_now().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct TailSource {
    shared: Arc<Shared>,
}

impl TailSource {
    /// A source following `config.paths`, resuming from
    /// `<checkpoint_dir>/tail.json` when it exists. Fails on a bad glob or an
    /// unreadable checkpoint file.
    pub fn new(config: TailConfig, checkpoint_dir: impl AsRef<Path>) -> Result<Self, TailError> {
        let matcher = FileMatcher::new(&config.paths, &config.exclude)?;
        Self::with_matcher(config, matcher, checkpoint_dir.as_ref())
    }

    /// A source from settings [`TailKind`] validated (globs compiled).
    pub fn from_valid(valid: &ValidTail, checkpoint_dir: &Path) -> Result<Self, TailError> {
        Self::with_matcher(valid.config.clone(), valid.matcher.clone(), checkpoint_dir)
    }

    fn with_matcher(
        config: TailConfig,
        matcher: FileMatcher,
        checkpoint_dir: &Path,
    ) -> Result<Self, TailError> {
        let checkpoint_path = checkpoint_dir.join(checkpoint::FILE_NAME);
        let state = match checkpoint::load(&checkpoint_path)? {
            Some(file) => TailState::from_checkpoint(file, Instant::now()),
            None => TailState::default(),
        };
        Ok(TailSource {
            shared: Arc::new(Shared {
                config,
                matcher,
                checkpoint_path,
                state: Mutex::new(state),
                written: Mutex::new(None),
            }),
        })
    }

    /// The handle that saves and shows the checkpoints.
    pub fn checkpoints(&self) -> TailCheckpoints {
        TailCheckpoints {
            shared: self.shared.clone(),
        }
    }

    /// One poll: rescan, then send chunks round-robin across files until none
    /// has anything complete left, a stop is requested, or `poll_interval` has
    /// passed (under a backlog, so that checkpoints and rescans keep coming).
    /// True when it stopped with data left to read.
    async fn poll(&self, ctx: &mut Ctx<RawChunk>) -> Result<bool, ActorError> {
        let shared = &self.shared;
        let now = Instant::now();
        let budget_end = now + shared.config.poll_interval();
        let keys: Vec<_> = {
            let paths = shared.matcher.scan();
            let mut state = shared.state();
            state.reconcile(paths, &shared.config, now);
            state.files.keys().copied().collect()
        };
        let mut more = false;
        loop {
            let mut sent = false;
            for key in &keys {
                if ctx.stop_requested() {
                    return Ok(false);
                }
                let ready = shared.state().next_chunk(*key, &shared.config, now);
                if let Some(ready) = ready {
                    ctx.send(Batch::new(ready.chunk, Ack::from(ready.token)))
                        .await?;
                    sent = true;
                }
            }
            if !sent {
                break;
            }
            if Instant::now() >= budget_end {
                more = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        shared.state().close_finished(&shared.config, now);
        Ok(more)
    }
}

impl Source for TailSource {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let config = &self.shared.config;
        let mut next_checkpoint = Instant::now() + config.checkpoint_interval();
        while !ctx.stop_requested() {
            let more = self.poll(ctx).await?;
            let now = Instant::now();
            if now >= next_checkpoint {
                self.shared.save_quietly();
                next_checkpoint = now + config.checkpoint_interval();
            }
            if more {
                continue;
            }
            let wake = (now + config.poll_interval()).min(next_checkpoint);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = ctx.stopped() => break,
            }
        }
        self.shared.save_quietly();
        Ok(())
    }
}
