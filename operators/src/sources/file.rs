//! Reads files (or stdin, as `-`) to the end, in chunks cut at line boundaries.
//!
//! Used by `spate ingest`. Positions are byte offsets in each input, so event ids
//! (`file:<path>:<offset>`) are stable across runs over the same file.
//!
//! # Backpressure
//!
//! The reader sends each chunk with a waiting send: when decoding or the lake
//! falls behind, reading pauses. At most `mailbox capacity × chunk_bytes` of
//! input is buffered.
//!
//! # Shutdown
//!
//! The source stops between chunks when the pipeline asks it to, and ends on its
//! own after the last input. A restarted source resumes after the last chunk it
//! sent.

use crate::event::wall_clock_ms;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BufMut;
use serde::{Deserialize, Serialize};
use spate_engine::{
    Ack, AckToken, ActorError, ActorResult, Batch, Ctx, ErrorClass, RetryHint, Source,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{ChunkFormat, RawChunk};

/// `[ingest]`: how `spate ingest` reads its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReadConfig {
    /// Bytes read per chunk (one batch through the pipeline).
    #[serde(
        rename = "chunk_size",
        alias = "chunk_kib",
        with = "crate::component::units::with::kib",
        default = "default_chunk_kib"
    )]
    #[schemars(with = "crate::component::units::KiB")]
    pub chunk_kib: usize,
}

fn default_chunk_kib() -> usize {
    1024
}

impl Default for FileReadConfig {
    fn default() -> Self {
        FileReadConfig {
            chunk_kib: default_chunk_kib(),
        }
    }
}

/// One input: a path, or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file.
    Path(PathBuf),
    /// Standard input.
    Stdin,
}

impl Input {
    /// `-` is stdin; anything else a path.
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(arg))
        }
    }

    /// The source name used in event ids.
    pub fn source_name(&self) -> String {
        match self {
            Input::Path(p) => format!("file:{}", p.display()),
            Input::Stdin => "stdin".to_string(),
        }
    }
}

/// Progress and outcome of a read, shared with the caller.
#[derive(Debug, Default)]
pub struct ReadProgress {
    /// Bytes read so far.
    pub bytes: AtomicU64,
    /// Chunks whose every sink committed.
    pub delivered: AtomicU64,
    /// Chunks that failed somewhere.
    pub failed: AtomicU64,
    /// The first failure reason.
    pub first_failure: Mutex<Option<String>>,
    /// Where a restarted reader resumes: (input index, byte offset).
    resume: Mutex<(usize, u64)>,
    /// Set when a stop request ended the read before the inputs did.
    stopped_early: std::sync::atomic::AtomicBool,
}

impl ReadProgress {
    /// True when a stop request ended the read before the inputs ended.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early.load(Ordering::Relaxed)
    }
}

/// Reads every input to the end.
pub struct FileSource {
    inputs: Arc<Vec<Input>>,
    chunk_bytes: usize,
    progress: Arc<ReadProgress>,
}

impl FileSource {
    /// A reader of `inputs` in order.
    pub fn new(
        inputs: Arc<Vec<Input>>,
        config: &FileReadConfig,
        progress: Arc<ReadProgress>,
    ) -> Self {
        FileSource {
            inputs,
            chunk_bytes: config.chunk_kib.max(1) * 1024,
            progress,
        }
    }

    fn ack(&self) -> Ack {
        let progress = self.progress.clone();
        Ack::from(AckToken::new(move |verdict| match verdict {
            spate_engine::Verdict::Delivered => {
                progress.delivered.fetch_add(1, Ordering::Relaxed);
            }
            spate_engine::Verdict::Failed(reason) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = progress
                    .first_failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(reason);
            }
        }))
    }

    async fn read_one(
        &self,
        index: usize,
        mut reader: impl AsyncRead + Unpin,
        skip: u64,
        ctx: &mut Ctx<RawChunk>,
    ) -> ActorResult {
        let source: Arc<str> = Arc::from(self.inputs[index].source_name());
        let read_error = |e: std::io::Error| {
            ActorError::new(
                ErrorClass::External,
                RetryHint::Never,
                format!("cannot read {source}: {e}"),
            )
        };
        if skip > 0 {
            let mut sink = tokio::io::sink();
            tokio::io::copy(&mut (&mut reader).take(skip), &mut sink)
                .await
                .map_err(read_error)?;
        }
        let mut position = skip;
        let mut buf: Vec<u8> = Vec::with_capacity(self.chunk_bytes * 2);
        let mut eof = false;
        let mut stopping = false;
        while !eof && !stopping {
            if ctx.stop_requested() {
                self.progress.stopped_early.store(true, Ordering::Relaxed);
                return Ok(());
            }
            // Fill up to one chunk beyond what is carried over.
            let target = buf.len() + self.chunk_bytes;
            buf.reserve(target - buf.len());
            while buf.len() < target {
                // `read_buf` fills spare capacity: no zeroing of the buffer first.
                let room = target - buf.len();
                let mut window = (&mut buf).limit(room);
                // A stop request interrupts a read that waits (stdin with no
                // data); the complete lines already read are still sent.
                let n = tokio::select! {
                    read = reader.read_buf(&mut window) => read.map_err(read_error)?,
                    _ = ctx.stopped() => {
                        self.progress.stopped_early.store(true, Ordering::Relaxed);
                        stopping = true;
                        break;
                    }
                };
                if n == 0 {
                    eof = true;
                    break;
                }
                self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            // Cut after the last newline; a line longer than a chunk grows the
            // buffer until it ends (the decoder dead-letters over-long lines).
            let cut = if eof {
                buf.len()
            } else {
                match memchr::memrchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    None if stopping => break,
                    None => continue,
                }
            };
            if cut == 0 {
                continue;
            }
            let rest = buf.split_off(cut);
            let bytes = std::mem::replace(&mut buf, rest);
            let len = bytes.len() as u64;
            let chunk = RawChunk {
                lines: memchr::memchr_iter(b'\n', &bytes).count().max(1),
                bytes: Arc::new(bytes),
                source: source.clone(),
                origin: source.clone(),
                first_position: position,
                ingest_ts_ms: wall_clock_ms(),
                format: ChunkFormat::Lines,
            };
            ctx.send(Batch::new(chunk, self.ack())).await?;
            position += len;
            *self
                .progress
                .resume
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = (index, position);
        }
        Ok(())
    }
}

impl Source for FileSource {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        let (first, skip) = *self
            .progress
            .resume
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for index in first..self.inputs.len() {
            let skip = if index == first { skip } else { 0 };
            match &self.inputs[index] {
                Input::Stdin => self.read_one(index, tokio::io::stdin(), skip, ctx).await?,
                Input::Path(path) => {
                    let file = tokio::fs::File::open(path).await.map_err(|e| {
                        ActorError::new(
                            ErrorClass::BadInput,
                            RetryHint::Never,
                            format!("cannot open {}: {e}", path.display()),
                        )
                    })?;
                    self.read_one(index, file, skip, ctx).await?;
                }
            }
            *self
                .progress
                .resume
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = (index + 1, 0);
        }
        Ok(())
    }
}
