//! A source kind added the way a new one is: this one file and one
//! registration line, then run end to end through `spate run`'s own path
//! (configuration text → registry → validation → build → pipeline → lake).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spate_engine::{Ack, AckToken, ActorResult, Batch, Ctx, Source};
use spate_operators::component::{BuildContext, BuildError, ConfigError, SourceKind};
use spate_operators::sources::{ChunkFormat, RawChunk};

use super::{RunOptions, run};
use crate::config::SpateConfig;

/// `[sources.toy]`: counts to `events`, one JSON line an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ToyConfig {
    /// Events to emit (at least 1).
    events: u64,
}

/// What the toy source saw of its acknowledgements.
#[derive(Debug, Default)]
struct Verdicts {
    sent: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

static VERDICTS: Verdicts = Verdicts {
    sent: AtomicU64::new(0),
    delivered: AtomicU64::new(0),
    failed: AtomicU64::new(0),
};

struct ToyKind;

impl SourceKind for ToyKind {
    const KIND: &'static str = "toy";
    const MULTIPLE: bool = false;
    type Config = ToyConfig;
    type Validated = u64;

    fn validate(config: &ToyConfig) -> Result<Option<u64>, ConfigError> {
        match config.events {
            0 => Err(ConfigError::new("events", "must be at least 1")),
            n => Ok(Some(n)),
        }
    }

    fn describe(events: &u64) -> String {
        format!("counting to {events}")
    }

    fn build(events: &u64, name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        let events = *events;
        ctx.add_source(name, move || Toy {
            events,
            next: 0,
            position: 0,
        });
        Ok(())
    }
}

struct Toy {
    events: u64,
    next: u64,
    /// Byte offset of the next line: event ids are `<source>:<offset>`.
    position: u64,
}

impl Source for Toy {
    type Out = RawChunk;

    async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
        while self.next < self.events && !ctx.stop_requested() {
            let end = (self.next + 100).min(self.events);
            let mut bytes = Vec::new();
            for n in self.next..end {
                bytes.extend_from_slice(
                    format!(
                        "{{\"ts\":\"2026-12-01T10:00:00Z\",\"service\":\"toy\",\"level\":\"error\",\"msg\":\"toy {n}\"}}\n"
                    )
                    .as_bytes(),
                );
            }
            let lines = (end - self.next) as usize;
            let first_position = self.position;
            self.position += bytes.len() as u64;
            let chunk = RawChunk {
                bytes: Arc::new(bytes),
                source: Arc::from("toy"),
                origin: Arc::from("toy"),
                first_position,
                ingest_ts_ms: spate_operators::event::wall_clock_ms(),
                format: ChunkFormat::Lines,
                lines,
            };
            let token = AckToken::new(move |verdict| {
                let counter = if verdict.is_delivered() {
                    &VERDICTS.delivered
                } else {
                    &VERDICTS.failed
                };
                counter.fetch_add(lines as u64, Ordering::SeqCst);
            });
            ctx.send(Batch::new(chunk, Ack::from(token))).await?;
            VERDICTS.sent.fetch_add(lines as u64, Ordering::SeqCst);
            self.next = end;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_source_registered_with_one_line_runs_end_to_end() {
    let mut registry = spate_operators::sources::supported_sources();
    registry.register::<ToyKind>();

    // Its settings are checked like every kind's.
    let bad = SpateConfig::read("[sources.toy]\nevents = 0\n", "toy.toml", &registry)
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "toy.toml (line 2): sources.toy.events: must be at least 1"
    );

    let data = tempfile::tempdir().unwrap();
    let text = "[sources.toy]\nevents = 1000\n\n[http]\nlisten = \"127.0.0.1:0\"\n";
    let valid = SpateConfig::read(text, "toy.toml", &registry)
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(valid.sources[0].name, "toy");
    assert_eq!(valid.sources[0].source.describe(), "counting to 1000");

    let (stop, signals) = tokio::sync::mpsc::channel(2);
    let service = tokio::spawn(run(
        valid,
        RunOptions {
            data_dir: data.path().to_path_buf(),
            signals: Some(signals),
        },
    ));
    // Wait until every event was handed to the pipeline, then drain.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while VERDICTS.sent.load(Ordering::SeqCst) < 1000 {
        assert!(tokio::time::Instant::now() < deadline, "toy source stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).await.unwrap();
    service.await.unwrap().unwrap();

    // Every batch was acknowledged once the sinks committed it...
    assert_eq!(VERDICTS.delivered.load(Ordering::SeqCst), 1000);
    assert_eq!(VERDICTS.failed.load(Ordering::SeqCst), 0);
    // ...and every event is in the lake, once, with the toy source's ids.
    let lake = crate::query::lake::LakeLocation::local(data.path().join("lake"));
    let history = Arc::new(crate::query::history::HotHistory::new(
        data.path().join("hot.db"),
    ));
    let ctx = crate::query::QueryContext::new(lake, history, &Default::default()).unwrap();
    let out = crate::query::execute(
        &ctx,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, min(source) AS source \
         FROM logs WHERE service = 'toy'",
        10,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_eq!(out.rows[0][0], 1000, "{:?}", out.rows);
    assert_eq!(out.rows[0][1], 1000, "{:?}", out.rows);
    assert_eq!(out.rows[0][2], "toy", "{:?}", out.rows);
}
