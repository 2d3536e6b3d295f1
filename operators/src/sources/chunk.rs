//! The unit every source sends: raw bytes cut at line boundaries, with
//! where they came from.

use std::sync::Arc;

use spate_engine::Payload;

/// How the bytes of a [`RawChunk`] are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFormat {
    /// Newline-delimited lines, each detected on its own (JSON, access log, text).
    Lines,
    /// One CloudWatch Logs subscription payload (gzip, base64 of gzip, or JSON).
    CloudWatchPayload,
    /// One whole queue message or stream record compressed by its producer
    /// (gzip or zstd, raw or base64): a CloudWatch Logs payload or lines once
    /// unpacked (`decode/packed.rs`). Its lines' positions are offsets in the
    /// decompressed bytes, so only a chunk whose `source` names the message
    /// and whose `first_position` is 0 may have this format.
    Compressed,
}

/// Raw input bytes from a source, cut at line boundaries.
#[derive(Debug, Clone)]
pub struct RawChunk {
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
    /// The prefix of this chunk's event ids: the origin plus, where one
    /// origin delivers many chunks, the chunk's own position
    /// (`sqs:orders:<message id>`, `kinesis:app:<shard>:<sequence>`,
    /// `file:/var/log/app.log@1` for a rotated file's next generation).
    pub source: Arc<str>,
    /// Where the chunk came from, as `kind:name` (`http`, `stdin`,
    /// `file:/var/log/app.log`, `sqs:orders`, `kinesis:app`): the lake's and
    /// the hot store's `source` column, the same for every chunk of one source.
    pub origin: Arc<str>,
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

    fn bytes(&self) -> usize {
        self.bytes.len()
    }
}
