//! Pipeline behaviour under a paused clock: backpressure, acks, supervision and
//! shutdown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use spate_engine::testkit::{CaptureSink, Forward, LeakCheck, ScriptedSource, SinkStep};
use spate_engine::{
    Actor, ActorError, ActorOptions, ActorResult, Batch, Ctx, ErrorClass, GraphBuilder, GraphError,
    NoOutput, Pipeline, PipelineError, SupervisorPolicy, Verdict,
};

fn batches(n: u64, size: u64) -> Vec<Vec<u64>> {
    (0..n)
        .map(|b| (b * size..(b + 1) * size).collect())
        .collect()
}

fn source_to_sink(
    source: &ScriptedSource<Vec<u64>>,
    sinks: &[(&str, CaptureSink<Vec<u64>>)],
    capacity: usize,
) -> Pipeline {
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor(
        "forward",
        Forward::<Vec<u64>>::new,
        ActorOptions::with_capacity(capacity),
    );
    g.connect("source", "forward");
    for (name, sink) in sinks {
        let sink = sink.clone();
        g.actor(
            name,
            move || sink.clone(),
            ActorOptions::with_capacity(capacity),
        );
        g.connect("forward", name);
    }
    g.build().unwrap().spawn()
}

#[tokio::test(start_paused = true)]
async fn backpressure_bounds_in_flight_batches_and_resumes() {
    let source = ScriptedSource::new(batches(100, 8));
    let sink = CaptureSink::gated();
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 2);
    let leaks = LeakCheck::new(&pipeline);
    let log = source.log();

    // Let everything run as far as it can with the sink stalled.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stalled_at = log.sent.load(Ordering::SeqCst);
    // forward: 2 queued + 1 in hand; sink: 2 queued + 1 waiting at the gate;
    // the source holds one more blocked in send.
    assert!(
        stalled_at <= 7,
        "source sent {stalled_at} batches into a stalled pipeline"
    );
    assert!(stalled_at >= 5, "pipeline did not fill up: {stalled_at}");
    assert_eq!(log.delivered(), 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        log.sent.load(Ordering::SeqCst),
        stalled_at,
        "source kept pulling"
    );

    // Speed the sink up: the producer resumes and everything is delivered.
    sink.open(usize::MAX >> 4);
    let report = pipeline.join().await.unwrap();
    drop(leaks);
    assert_eq!(log.delivered(), 100);
    assert!(log.max_in_flight.load(Ordering::SeqCst) <= 7);
    let source_stats = report.actor("source").unwrap();
    assert!(
        source_stats.blocked > Duration::ZERO,
        "no backpressure time recorded"
    );
    assert_eq!(sink.delivered().concat(), (0..800).collect::<Vec<u64>>());
}

#[tokio::test(start_paused = true)]
async fn delivered_only_after_every_sink_commits() {
    let source = ScriptedSource::new(batches(1, 4));
    let fast = CaptureSink::new();
    let slow = CaptureSink::slow(Duration::from_secs(10));
    let pipeline = source_to_sink(
        &source,
        &[("fast", fast.clone()), ("slow", slow.clone())],
        4,
    );
    let leaks = LeakCheck::new(&pipeline);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fast.delivered().len(), 1);
    assert!(
        source.log().verdicts().is_empty(),
        "verdict before the slow sink committed"
    );
    pipeline.join().await.unwrap();
    drop(leaks);
    assert_eq!(source.log().verdicts(), vec![Verdict::Delivered]);
}

#[tokio::test(start_paused = true)]
async fn failed_if_any_sink_fails() {
    let source = ScriptedSource::new(batches(2, 4));
    let ok = CaptureSink::new();
    let failing = CaptureSink::scripted([SinkStep::Fail]);
    let pipeline = source_to_sink(&source, &[("ok", ok.clone()), ("failing", failing)], 4);
    pipeline.join().await.unwrap();
    let verdicts = source.log().verdicts();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Failed("scripted failure".into()),
            Verdict::Delivered
        ]
    );
    assert_eq!(ok.delivered().len(), 2);
}

/// Drops every batch on the floor without settling it.
struct Forgetful;

impl Actor for Forgetful {
    type In = Vec<u64>;
    type Out = NoOutput;
    async fn handle(&mut self, batch: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
        drop(batch);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn failed_when_dropped_without_verdict() {
    let source = ScriptedSource::new(batches(3, 2));
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor("forgetful", || Forgetful, ActorOptions::default());
    g.connect("source", "forgetful");
    g.build().unwrap().spawn().join().await.unwrap();
    let verdicts = source.log().verdicts();
    assert_eq!(verdicts.len(), 3);
    assert!(
        verdicts
            .iter()
            .all(|v| *v == Verdict::Failed("batch dropped without a verdict".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn panic_fails_the_batch_and_restarts_with_backoff() {
    let source = ScriptedSource::new(batches(4, 2));
    let sink = CaptureSink::scripted([SinkStep::Deliver, SinkStep::Panic, SinkStep::Error]);
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 8);
    let started = tokio::time::Instant::now();
    let report = pipeline.join().await.unwrap();
    let elapsed = started.elapsed();
    let log = source.log();
    assert_eq!(log.delivered(), 2);
    assert_eq!(log.failed(), 2);
    let stats = report.actor("sink").unwrap();
    assert_eq!(stats.restarts, 2);
    assert_eq!(stats.errors_internal, 1, "the panic");
    assert_eq!(stats.errors_external, 1, "the scripted error");
    assert_eq!(sink.state().starts.load(Ordering::SeqCst), 3);
    // Two restarts: 100 ms then 200 ms, each ±20 % jitter.
    assert!(
        elapsed >= Duration::from_millis(240),
        "restarted too early: {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_millis(360),
        "restarted too late: {elapsed:?}"
    );
}

/// Fails every batch with an unrecoverable error.
struct Doomed;

impl Actor for Doomed {
    type In = Vec<u64>;
    type Out = NoOutput;
    async fn handle(&mut self, _: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
        Err(ActorError::fatal(ErrorClass::Internal, "disk is gone"))
    }
}

#[tokio::test(start_paused = true)]
async fn unrecoverable_error_trips_the_kill_switch() {
    let source = ScriptedSource::new(batches(1000, 1)).until_stopped();
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor("doomed", || Doomed, ActorOptions::default());
    g.connect("source", "doomed");
    let pipeline = g.build().unwrap().spawn();
    let leaks = LeakCheck::new(&pipeline);
    let err = pipeline.join().await.unwrap_err();
    drop(leaks);
    assert_eq!(
        err,
        PipelineError::Killed {
            actor: "doomed".into(),
            reason: "handle failed: internal error: disk is gone".into()
        }
    );
    let log = source.log();
    assert_eq!(log.delivered(), 0);
    assert_eq!(
        log.failed(),
        log.sent.load(Ordering::SeqCst),
        "every batch sent got a verdict"
    );
}

#[tokio::test(start_paused = true)]
async fn restart_limit_trips_the_kill_switch() {
    let source = ScriptedSource::new(batches(10, 1));
    let sink = CaptureSink::<Vec<u64>>::scripted([SinkStep::Error; 10]);
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    let policy = SupervisorPolicy {
        max_consecutive_restarts: Some(3),
        ..SupervisorPolicy::default()
    };
    let k = sink.clone();
    g.actor(
        "sink",
        move || k.clone(),
        ActorOptions {
            mailbox_capacity: 4,
            supervisor: policy,
        },
    );
    g.connect("source", "sink");
    let err = g.build().unwrap().spawn().join().await.unwrap_err();
    assert!(
        matches!(err, PipelineError::Killed { ref actor, .. } if actor == "sink"),
        "{err}"
    );
    assert_eq!(sink.state().starts.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_everything_in_flight() {
    let source = ScriptedSource::new(batches(50, 10)).until_stopped();
    let sink = CaptureSink::slow(Duration::from_millis(10));
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 4);
    let leaks = LeakCheck::new(&pipeline);
    tokio::time::sleep(Duration::from_millis(55)).await;
    assert!(
        sink.delivered().len() < 50,
        "test needs batches still in flight"
    );
    let report = pipeline.shutdown(Duration::from_secs(30)).await.unwrap();
    drop(leaks);
    let log = source.log();
    let sent = log.sent.load(Ordering::SeqCst);
    assert_eq!(
        log.delivered(),
        sent,
        "everything the source sent was delivered"
    );
    assert_eq!(log.failed(), 0);
    assert_eq!(sink.delivered().len(), sent);
    assert_eq!(sink.state().flushes.load(Ordering::SeqCst), 1);
    assert_eq!(sink.state().closes.load(Ordering::SeqCst), 1);
    assert_eq!(report.actor("sink").unwrap().batches_in as usize, sent);
}

#[tokio::test(start_paused = true)]
async fn deadline_forces_exit_and_fails_what_was_cut_off() {
    let source = ScriptedSource::new(batches(20, 1)).until_stopped();
    let sink = CaptureSink::slow(Duration::from_secs(10));
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 4);
    let leaks = LeakCheck::new(&pipeline);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let started = tokio::time::Instant::now();
    let err = pipeline
        .shutdown(Duration::from_secs(15))
        .await
        .unwrap_err();
    drop(leaks);
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    match err {
        PipelineError::DeadlineExceeded { still_running, .. } => {
            assert!(
                still_running.contains(&"sink".to_string()),
                "{still_running:?}"
            )
        }
        other => panic!("expected deadline, got {other}"),
    }
    let log = source.log();
    let sent = log.sent.load(Ordering::SeqCst);
    assert_eq!(log.delivered(), 1, "one batch finished inside the deadline");
    assert_eq!(
        log.delivered() + log.failed(),
        sent,
        "every cut-off batch failed"
    );
}

#[tokio::test(start_paused = true)]
async fn first_signal_drains_second_aborts() {
    let (signals_tx, mut signals) = tokio::sync::mpsc::channel(4);
    let source = ScriptedSource::new(batches(5, 1)).until_stopped();
    let sink = CaptureSink::slow(Duration::from_secs(1));
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 8);
    let run = tokio::spawn(async move {
        pipeline
            .run_until_signal(&mut signals, Duration::from_secs(60))
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signals_tx.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    signals_tx.send(()).await.unwrap();
    let err = run.await.unwrap().unwrap_err();
    assert!(matches!(err, PipelineError::Interrupted { .. }), "{err}");
    let log = source.log();
    assert_eq!(
        log.delivered(),
        2,
        "drained two batches before the second signal"
    );
    assert_eq!(log.failed(), 3);
}

#[tokio::test(start_paused = true)]
async fn signal_drain_completes_cleanly() {
    let (signals_tx, mut signals) = tokio::sync::mpsc::channel(4);
    let source = ScriptedSource::new(batches(5, 1)).until_stopped();
    let sink = CaptureSink::slow(Duration::from_millis(100));
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 8);
    tokio::time::sleep(Duration::from_millis(1)).await;
    signals_tx.send(()).await.unwrap();
    let report = pipeline
        .run_until_signal(&mut signals, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(report.actor("sink").unwrap().batches_in, 5);
    assert_eq!(source.log().delivered(), 5);
}

/// Counts ticks and flushes; delivers on flush what it buffered.
#[derive(Default)]
struct Buffering {
    held: Vec<Batch<Vec<u64>>>,
    ticks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Actor for Buffering {
    type In = Vec<u64>;
    type Out = NoOutput;
    async fn handle(&mut self, batch: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
        self.held.push(batch);
        Ok(())
    }
    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
    async fn tick(&mut self, ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.ticks.fetch_add(1, Ordering::SeqCst);
        self.flush(ctx).await
    }
    async fn flush(&mut self, _: &mut Ctx<NoOutput>) -> ActorResult {
        for b in self.held.drain(..) {
            b.deliver();
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn ticks_fire_on_tokio_time_and_buffered_acks_wait_for_them() {
    let source = ScriptedSource::new(batches(3, 1)).until_stopped();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    let t = ticks.clone();
    g.actor(
        "buffer",
        move || Buffering {
            held: Vec::new(),
            ticks: t.clone(),
        },
        ActorOptions::default(),
    );
    g.connect("source", "buffer");
    let pipeline = g.build().unwrap().spawn();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(source.log().delivered(), 0, "delivered before the tick");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), 1);
    assert_eq!(source.log().delivered(), 3);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(ticks.load(Ordering::SeqCst), 4);
    pipeline.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn flush_request_is_served_before_queued_data() {
    let source = ScriptedSource::new(batches(6, 1)).until_stopped();
    let sink = CaptureSink::gated();
    let pipeline = source_to_sink(&source, &[("sink", sink.clone())], 8);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The sink holds one batch at the gate and has five more queued.
    assert_eq!(pipeline.stats()[2].batches_in, 1);
    {
        let flush = pipeline.flush_actor("sink");
        tokio::pin!(flush);
        let queued = tokio::time::timeout(Duration::from_millis(1), &mut flush).await;
        assert!(
            queued.is_err(),
            "flush cannot finish while the sink is mid-batch"
        );
        sink.open(1);
        // The flush is served after the batch in hand, before the queued ones.
        assert!(flush.await);
    }
    assert_eq!(sink.state().flushes.load(Ordering::SeqCst), 1);
    assert_eq!(sink.state().seen.load(Ordering::SeqCst), 1);
    sink.open(100);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(source.log().delivered(), 6);
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "actors left running at the end of the test")]
async fn leak_check_catches_actors_left_running() {
    let source = ScriptedSource::new(batches(1, 1)).until_stopped();
    let sink = CaptureSink::<Vec<u64>>::new();
    let pipeline = source_to_sink(&source, &[("sink", sink)], 2);
    let leaks = LeakCheck::new(&pipeline);
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(leaks);
    drop(pipeline);
}

#[tokio::test(start_paused = true)]
async fn pool_workers_share_one_mailbox_and_each_batch_goes_to_one() {
    let source = ScriptedSource::new(batches(40, 5));
    let sink = CaptureSink::<Vec<u64>>::new();
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor_pool(
        "workers",
        3,
        |_| spate_engine::testkit::ForwardSlow::<Vec<u64>>::new(Duration::from_millis(10)),
        ActorOptions::with_capacity(4),
    );
    let k = sink.clone();
    g.actor("sink", move || k.clone(), ActorOptions::default());
    g.connect("source", "workers").connect("workers", "sink");
    let pipeline = g.build().unwrap().spawn();
    assert_eq!(
        pipeline.running_actors(),
        vec!["sink", "source", "workers[0]", "workers[1]", "workers[2]"]
    );
    let started = tokio::time::Instant::now();
    let report = pipeline.join().await.unwrap();
    // 40 batches at 10 ms each across three workers: about 140 ms, not 400.
    assert!(
        started.elapsed() <= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.actor("workers").unwrap().batches_in, 40);
    let mut got = sink.delivered().concat();
    got.sort_unstable();
    assert_eq!(got, (0..200).collect::<Vec<u64>>());
    assert_eq!(source.log().delivered(), 40);
}

/// Odd numbers to the group's first actor, even ones to its second.
fn by_parity(numbers: Vec<u64>, actors: usize) -> Vec<(usize, Vec<u64>)> {
    assert_eq!(actors, 2);
    let (odd, even): (Vec<u64>, Vec<u64>) = numbers.into_iter().partition(|x| x % 2 == 1);
    vec![(0, odd), (1, even)]
}

#[tokio::test(start_paused = true)]
async fn keyed_edge_splits_output_and_the_ack_waits_for_every_part() {
    let source = ScriptedSource::new(batches(4, 4));
    let odd = CaptureSink::<Vec<u64>>::new();
    let even = CaptureSink::<Vec<u64>>::slow(Duration::from_secs(1));
    let whole = CaptureSink::<Vec<u64>>::new();
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor("pass", Forward::<Vec<u64>>::new, ActorOptions::default());
    let (o, e, w) = (odd.clone(), even.clone(), whole.clone());
    g.actor("odd", move || o.clone(), ActorOptions::default());
    g.actor("even", move || e.clone(), ActorOptions::default());
    g.actor("whole", move || w.clone(), ActorOptions::default());
    g.connect("source", "pass")
        .connect_keyed("pass", &["odd", "even"], by_parity)
        .connect("pass", "whole");
    let pipeline = g.build().unwrap().spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(odd.delivered().len(), 4);
    assert_eq!(whole.delivered().concat().len(), 16);
    assert_eq!(
        source.log().delivered(),
        0,
        "even part has not committed yet"
    );
    pipeline.join().await.unwrap();
    assert_eq!(source.log().delivered(), 4);
    assert!(odd.delivered().concat().iter().all(|x| x % 2 == 1));
    assert!(even.delivered().concat().iter().all(|x| x % 2 == 0));
    assert_eq!(even.delivered().concat().len(), 8);
}

#[tokio::test(start_paused = true)]
async fn a_splitter_naming_an_actor_outside_its_group_fails_the_batch() {
    let source = ScriptedSource::new(batches(1, 4));
    let sink = CaptureSink::<Vec<u64>>::new();
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor("pass", Forward::<Vec<u64>>::new, ActorOptions::default());
    let k = sink.clone();
    g.actor("only", move || k.clone(), ActorOptions::default());
    g.connect("source", "pass")
        .connect_keyed("pass", &["only"], |numbers: Vec<u64>, _| vec![(3, numbers)]);
    let pipeline = g.build().unwrap().spawn();
    let _ = pipeline.join().await;
    assert_eq!(source.log().delivered(), 0);
    assert!(sink.delivered().is_empty());
}

#[test]
fn keyed_edges_are_checked_like_plain_ones() {
    let mut g = GraphBuilder::new();
    g.source("source", || ScriptedSource::<Vec<u64>>::new(Vec::new()));
    g.connect_keyed("source", &[], |n: Vec<u64>, _| vec![(0, n)]);
    assert!(matches!(g.build(), Err(GraphError::EmptyGroup(_))));

    let mut g = GraphBuilder::new();
    g.source("source", || ScriptedSource::<Vec<u64>>::new(Vec::new()));
    g.actor(
        "sink",
        CaptureSink::<Vec<u64>>::new,
        ActorOptions::default(),
    );
    // The splitter takes strings, the source sends numbers.
    g.connect_keyed("source", &["sink"], |s: Vec<String>, _| vec![(0, s)]);
    assert!(matches!(g.build(), Err(GraphError::TypeMismatch { .. })));
}
