//! Source lag: the age of the oldest batch a source sent and not yet
//! delivered to every sink rises while a sink is stalled and falls back once it
//! commits (tokio's paused clock).

use std::time::Duration;

use spate_engine::testkit::{CaptureSink, ScriptedSource};
use spate_engine::{ActorOptions, Batch, GraphBuilder, Pipeline};

/// `source` → `pass` → `sink` (gated), and `pass` → `fast` (delivers at once).
fn pipeline(batches: u64) -> (Pipeline, CaptureSink<Vec<u64>>) {
    let source = ScriptedSource::new((0..batches).map(|b| vec![b; 4])).until_stopped();
    let gated = CaptureSink::<Vec<u64>>::gated();
    let mut g = GraphBuilder::new();
    g.source("source", move || source.clone());
    g.actor(
        "pass",
        spate_engine::testkit::Forward::<Vec<u64>>::new,
        ActorOptions::with_capacity(4),
    );
    let sink = gated.clone();
    g.actor("sink", move || sink.clone(), ActorOptions::with_capacity(4));
    g.actor(
        "fast",
        CaptureSink::<Vec<u64>>::new,
        ActorOptions::with_capacity(4),
    );
    g.connect("source", "pass")
        .connect("pass", "sink")
        .connect("pass", "fast");
    (g.build().unwrap().spawn(), gated)
}

#[tokio::test(start_paused = true)]
async fn lag_age_rises_while_a_sink_is_stalled_and_returns_to_zero_after() {
    let (pipeline, sink) = pipeline(3);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let lag = pipeline.source_lag("source").unwrap();
    assert_eq!((lag.batches, lag.events), (3, 12), "{lag:?}");
    assert!(lag.oldest_age <= Duration::from_millis(10), "{lag:?}");

    // The stalled sink holds every batch: the age grows with the clock.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let lag = pipeline.source_lag("source").unwrap();
    assert!(lag.oldest_age >= Duration::from_secs(30), "{lag:?}");
    assert_eq!(lag.events, 12, "the fast sink alone does not deliver");

    // The first batch commits: the oldest is now the second (sent at the same
    // instant); all of them commit: the age is back to zero.
    sink.open(1);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let lag = pipeline.source_lag("source").unwrap();
    assert_eq!(
        (lag.batches, lag.events, lag.delivered),
        (2, 8, 1),
        "{lag:?}"
    );
    sink.open(2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let lag = pipeline.source_lag("source").unwrap();
    assert_eq!(lag.oldest_age, Duration::ZERO, "{lag:?}");
    assert_eq!(
        (lag.batches, lag.events, lag.delivered),
        (0, 0, 3),
        "{lag:?}"
    );

    pipeline.stop();
    pipeline.join().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn lag_gauges_reach_the_prometheus_rendering() {
    let exporter = spate_engine::PrometheusExporter::new_local();
    let (pipeline, sink) = metrics::with_local_recorder(exporter.recorder(), || pipeline(2));
    // Present at 0 before anything was sent.
    let text = exporter.render();
    assert!(
        text.contains("spate_source_batches_settled_total{source=\"source\",verdict=\"failed\"} 0"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_secs(90)).await;
    let text = exporter.render();
    let age = text
        .lines()
        .find_map(|l| l.strip_prefix("spate_source_oldest_unacked_age_seconds{source=\"source\"} "))
        .unwrap_or_else(|| panic!("{text}"));
    let age: f64 = age.parse().unwrap();
    assert!((90.0..91.0).contains(&age), "{age}");
    assert!(
        text.contains("spate_source_inflight_events{source=\"source\"} 8"),
        "{text}"
    );
    sink.open(2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let text = exporter.render();
    assert!(
        text.contains("spate_source_oldest_unacked_age_seconds{source=\"source\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("spate_source_delivery_seconds_bucket{source=\"source\",le=\"120\"} 2"),
        "{text}"
    );
    pipeline.stop();
    pipeline.join().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn unacked_batches_are_not_tracked() {
    struct Plain;
    impl spate_engine::Source for Plain {
        type Out = Vec<u64>;
        async fn run(
            &mut self,
            ctx: &mut spate_engine::Ctx<Vec<u64>>,
        ) -> spate_engine::ActorResult {
            ctx.send(Batch::unacked(vec![1, 2])).await
        }
    }
    let gated = CaptureSink::<Vec<u64>>::gated();
    let mut g = GraphBuilder::new();
    g.source("plain", || Plain);
    let sink = gated.clone();
    g.actor("sink", move || sink.clone(), ActorOptions::default());
    g.connect("plain", "sink");
    let pipeline = g.build().unwrap().spawn();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let lag = pipeline.source_lag("plain").unwrap();
    assert_eq!((lag.batches, lag.oldest_age), (0, Duration::ZERO));
    gated.open(1);
    pipeline.join().await.unwrap();
}
