//! Metrics are recorded through the `metrics` facade with the right names and labels.

use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use spate_engine::testkit::{CaptureSink, ForwardSlow, ScriptedSource, SinkStep};
use spate_engine::{ActorOptions, GraphBuilder, PrometheusExporter};

fn run_pipeline() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let source = ScriptedSource::new((0..10u64).map(|b| vec![b; 3]));
        let sink = CaptureSink::<Vec<u64>>::scripted([SinkStep::Deliver, SinkStep::Error]);
        let mut g = GraphBuilder::new();
        let s = source.clone();
        g.source("source", move || s.clone());
        g.actor(
            "slow",
            || ForwardSlow::<Vec<u64>>::new(Duration::from_millis(5)),
            ActorOptions::with_capacity(1),
        );
        let k = sink.clone();
        g.actor("sink", move || k.clone(), ActorOptions::with_capacity(1));
        g.connect("source", "slow").connect("slow", "sink");
        g.build().unwrap().spawn().join().await.unwrap();
    });
}

type Snapshot = [(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)];

fn value<'a>(
    snapshot: &'a Snapshot,
    kind: MetricKind,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, _, _, v)| {
        let k = key.key();
        let matches = key.kind() == kind
            && k.name() == name
            && labels
                .iter()
                .all(|(l, lv)| k.labels().any(|x| x.key() == *l && x.value() == *lv))
            && k.labels().count() == labels.len();
        matches.then_some(v)
    })
}

#[test]
fn per_actor_metrics_have_names_and_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, run_pipeline);
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, labels: &[(&str, &str)]| match value(
        &snapshot,
        MetricKind::Counter,
        name,
        labels,
    ) {
        Some(DebugValue::Counter(c)) => *c,
        other => panic!("counter {name} {labels:?}: {other:?}"),
    };
    assert_eq!(
        counter("spate_actor_batches_sent_total", &[("actor", "source")]),
        10
    );
    assert_eq!(
        counter("spate_actor_events_sent_total", &[("actor", "source")]),
        30
    );
    assert_eq!(
        counter("spate_actor_batches_received_total", &[("actor", "slow")]),
        10
    );
    assert_eq!(
        counter("spate_actor_events_received_total", &[("actor", "sink")]),
        30
    );
    assert_eq!(
        counter(
            "spate_actor_errors_total",
            &[("actor", "sink"), ("class", "external")]
        ),
        1
    );
    assert_eq!(
        counter(
            "spate_actor_errors_total",
            &[("actor", "sink"), ("class", "internal")]
        ),
        0
    );
    assert_eq!(
        counter("spate_actor_restarts_total", &[("actor", "sink")]),
        1
    );
    let gauge = |name: &str, labels: &[(&str, &str)]| match value(
        &snapshot,
        MetricKind::Gauge,
        name,
        labels,
    ) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("gauge {name} {labels:?}: {other:?}"),
    };
    let histogram = |name: &str, labels: &[(&str, &str)]| match value(
        &snapshot,
        MetricKind::Histogram,
        name,
        labels,
    ) {
        Some(DebugValue::Histogram(h)) => h.iter().map(|v| v.into_inner()).collect::<Vec<f64>>(),
        other => panic!("histogram {name} {labels:?}: {other:?}"),
    };
    // The slow stage (5 ms a batch, mailbox of 1) makes the source wait.
    let waits = histogram("spate_actor_backpressure_seconds", &[("actor", "source")]);
    assert!(
        !waits.is_empty() && waits.iter().sum::<f64>() > 0.0,
        "{waits:?}"
    );
    assert!(
        waits.iter().all(|w| *w > 0.0),
        "only waits are recorded: {waits:?}"
    );
    // One observation per handled batch, backpressure excluded.
    let handles = histogram("spate_actor_handle_latency_seconds", &[("actor", "slow")]);
    assert_eq!(handles.len(), 10);
    assert!(
        handles.iter().all(|h| (0.005..0.0052).contains(h)),
        "{handles:?}"
    );
    let _ = gauge("spate_actor_mailbox_depth", &[("actor", "sink")]);
    // The source's verdicts: the sink's error fails one batch.
    assert_eq!(
        counter(
            "spate_source_batches_settled_total",
            &[("source", "source"), ("verdict", "delivered")]
        ),
        9
    );
    assert_eq!(
        counter(
            "spate_source_batches_settled_total",
            &[("source", "source"), ("verdict", "failed")]
        ),
        1
    );
    let delivery = histogram("spate_source_delivery_seconds", &[("source", "source")]);
    assert_eq!(delivery.len(), 9);
    assert!(delivery.iter().all(|d| *d >= 0.005), "{delivery:?}");
}

#[test]
fn prometheus_exporter_renders_actor_metrics() {
    let exporter = PrometheusExporter::new_local();
    metrics::with_local_recorder(exporter.recorder(), run_pipeline);
    let text = exporter.render();
    assert!(
        text.contains(r#"spate_actor_events_received_total{actor="sink"} 30"#),
        "{text}"
    );
    assert!(
        text.contains(r#"spate_actor_restarts_total{actor="sink"} 1"#),
        "{text}"
    );
}
