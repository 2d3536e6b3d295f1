//! Sources: where raw log bytes come from.
//!
//! Each kind `spate run` builds from its configuration is registered in
//! [`supported_sources`] with one line (see [`crate::component`]); the
//! journal behind HTTP push and the file reader of `spate ingest` are wired
//! by the program itself.

pub mod commit_tracker;
pub mod file;
pub mod journal;
pub mod kinesis;
pub mod sqs;
pub mod stdin;
pub mod tail;

use std::sync::Arc;

use spate_engine::Payload;

use crate::component::SourceRegistry;

/// Every source kind `spate run` can build from `[sources.<kind>]`.
pub fn supported_sources() -> SourceRegistry {
    let mut registry = SourceRegistry::default();
    registry.register::<tail::TailKind>();
    registry.register::<stdin::StdinKind>();
    registry.register::<sqs::SqsKind>();
    registry.register::<kinesis::KinesisKind>();
    registry
}

/// How the bytes of a [`RawChunk`] are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFormat {
    /// Newline-delimited lines, each detected on its own (JSON, access log, text).
    Lines,
    /// One CloudWatch Logs subscription payload (gzip, base64 of gzip, or JSON).
    CloudWatchPayload,
}

/// Raw input bytes from a source, cut at line boundaries.
#[derive(Debug, Clone)]
pub struct RawChunk {
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
    /// Source name, the prefix of event ids (`file:/var/log/app.log`, `stdin`).
    pub source: Arc<str>,
    /// Position (byte offset in the source) of the first byte.
    pub first_position: u64,
    /// When the bytes were received, UTC milliseconds.
    pub ingest_ts_ms: i64,
    /// How the bytes are framed.
    pub format: ChunkFormat,
    /// Number of lines (for metrics).
    pub lines: usize,
}

impl Payload for RawChunk {
    fn len(&self) -> usize {
        self.lines
    }
}
