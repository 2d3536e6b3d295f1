//! Sources: where raw log bytes come from.
//!
//! Each kind `spate run` builds from its configuration is registered in
//! [`supported_sources`] with one line (see [`crate::component`]); the
//! journal behind HTTP push and the file reader of `spate ingest` are wired
//! by the program itself.

mod chunk;
pub mod commit_tracker;
pub mod file;
pub mod journal;
pub mod kinesis;
pub mod sqs;
pub mod stdin;
pub mod tail;

pub use self::chunk::{ChunkFormat, RawChunk};
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
