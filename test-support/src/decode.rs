//! A source → decode → capture pipeline, as the source tests run it, and
//! the columns of what it captured.

use arrow_array::{Array, StringArray};
use spate_engine::testkit::CaptureSink;
use spate_engine::{ActorOptions, GraphBuilder, Pipeline, Source};
use spate_operators::classify::ClassifierConfig;
use spate_operators::decode::DecoderConfig;
use spate_operators::enrich::EnrichConfig;
use spate_operators::log_batch::{LakePart, LogBatch};
use spate_operators::sources::RawChunk;
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage, DecodeStageConfig};

/// `source` -> decode (`workers` competing workers, default settings) ->
/// `sink`, spawned.
pub fn decode_pipeline<S, F>(source: F, workers: usize, sink: &CaptureSink<LogBatch>) -> Pipeline
where
    S: Source<Out = RawChunk>,
    F: FnMut() -> S + Send + 'static,
{
    let settings = DecodeSettings::new(
        &DecoderConfig::default(),
        &ClassifierConfig::default(),
        &EnrichConfig::default(),
        &DecodeStageConfig::default(),
    )
    .expect("decode settings");
    let mut graph = GraphBuilder::new();
    graph.source("source", source);
    graph.actor_pool(
        "decode",
        workers,
        move |_| DecodeStage::new(&settings),
        ActorOptions::with_capacity(8),
    );
    let sink = sink.clone();
    graph.actor("sink", move || sink.clone(), ActorOptions::with_capacity(8));
    graph.connect("source", "decode").connect("decode", "sink");
    graph.build().expect("graph").spawn()
}

/// Every non-null string of `column` in the delivered batches, in order.
pub fn column(sink: &CaptureSink<LogBatch>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in sink.delivered() {
        for part in &batch.parts {
            let strings = strings(part, name);
            out.extend(strings.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// The non-null strings of `column` in the delivered batches, in order, once
/// per event id: a source that delivers at least once (SQS may hand a
/// message out twice) decodes a redelivered message to the same event ids,
/// and this checks that each copy carries the same value as the first.
pub fn column_once(sink: &CaptureSink<LogBatch>, name: &str) -> Vec<String> {
    use std::collections::hash_map::{Entry, HashMap};
    let mut first: HashMap<String, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    for batch in sink.delivered() {
        for part in &batch.parts {
            let ids = strings(part, "event_id");
            let values = strings(part, name);
            for (id, value) in ids.iter().zip(values.iter()) {
                let id = id.expect("every event has an id").to_string();
                let value = value.map(str::to_string);
                match first.entry(id) {
                    Entry::Occupied(seen) => assert_eq!(
                        seen.get(),
                        &value,
                        "{name} of the redelivered event {}",
                        seen.key()
                    ),
                    Entry::Vacant(new) => {
                        new.insert(value.clone());
                        out.extend(value);
                    }
                }
            }
        }
    }
    out
}

/// Column `name` of one partition's rows, as strings.
fn strings(part: &LakePart, name: &str) -> StringArray {
    let idx = part.records.schema().index_of(name).expect("column");
    part.records
        .column(idx)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("strings")
        .clone()
}
