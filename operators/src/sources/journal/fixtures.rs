//! Test fixtures: journal configs, records and a journal → capture-sink pipeline.

use std::time::Duration;

use spate_engine::testkit::CaptureSink;
use spate_engine::{ActorOptions, GraphBuilder, Pipeline};

use super::{Journal, JournalConfig, JournalRecord};
use crate::sources::RawChunk;

/// Longest a test waits for the pipeline.
pub(super) const LIMIT: Duration = Duration::from_secs(20);

/// The default config, in `dir`.
pub(super) fn config(dir: &std::path::Path) -> JournalConfig {
    JournalConfig {
        dir: Some(dir.to_path_buf()),
        ..JournalConfig::default()
    }
}

/// A config whose chunks hold one 600-byte record each.
pub(super) fn one_record_chunks(dir: &std::path::Path) -> JournalConfig {
    JournalConfig {
        chunk_kib: 1,
        ..config(dir)
    }
}

/// A 600-byte JSON line numbered `n`.
pub(super) fn record(n: usize) -> JournalRecord {
    let mut text = format!("{{\"n\":{n},\"pad\":\"");
    text.push_str(&"p".repeat(600 - text.len() - 3));
    text.push_str("\"}\n");
    assert_eq!(text.len(), 600);
    JournalRecord::lines(text.into_bytes(), 1)
}

/// Runs `journal`'s source into `sink` (mailbox of `capacity` batches).
pub(super) fn spawn(journal: &Journal, sink: &CaptureSink<RawChunk>, capacity: usize) -> Pipeline {
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

/// Stops the pipeline and waits for a clean drain.
pub(super) async fn stop(pipeline: Pipeline) {
    pipeline.stop();
    let report = tokio::time::timeout(LIMIT, pipeline.join()).await;
    report
        .expect("pipeline drains")
        .expect("pipeline ends cleanly");
}

/// (first_position, bytes) of every delivered chunk.
pub(super) fn delivered(sink: &CaptureSink<RawChunk>) -> Vec<(u64, Vec<u8>)> {
    sink.delivered()
        .iter()
        .map(|c| {
            assert_eq!(&*c.source, "http");
            (c.first_position, c.bytes.to_vec())
        })
        .collect()
}
