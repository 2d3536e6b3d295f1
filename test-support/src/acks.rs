//! The acknowledgement compliance check every source with an upstream runs
//! (after Vector's shared component compliance tests): given a way to feed
//! the source's upstream and to see what the upstream has committed,
//! [`check_acknowledgements`] runs the source into a sink that holds every
//! batch with its ack, settles the acks itself, and checks that
//!
//! - nothing is committed upstream before every ack of it is in (one batch
//!   held back keeps everything fed from committing);
//! - batches acked `Delivered` commit upstream (a file's checkpoint
//!   advances, an SQS message is deleted, a Kinesis checkpoint moves, the
//!   HTTP journal's committed position reaches its end);
//! - batches acked `Failed`, or dropped without an ack, come back (read
//!   again, returned to the queue, sent again) and are not committed until
//!   they are delivered; delivered ones do not come back.
//!
//! Every input line holds a marker, `{"msg":"<marker>"}`; a batch is known by
//! the markers in its bytes. Waiting is polling of observable state with a
//! deadline.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use spate_engine::{
    ActorOptions, ActorResult, Batch, Ctx, GraphBuilder, NoOutput, Pipeline, Source,
};
use spate_operators::sources::RawChunk;
use tokio::sync::mpsc;

use crate::wait::wait_until;

/// A source under the check, and its upstream.
pub trait AckedUpstream {
    /// The source.
    type Source: Source<Out = RawChunk>;

    /// The source's factory (the engine calls it again after a restart).
    fn source(&self) -> impl FnMut() -> Self::Source + Send + 'static;

    /// Puts one input holding `line` (one JSON line, no newline) upstream.
    fn feed(&mut self, line: &str) -> impl Future<Output = ()>;

    /// Whether everything fed so far is committed upstream.
    fn committed(&mut self) -> impl Future<Output = bool>;
}

/// A sink that hands every batch, ack and all, to the check.
struct Hold(mpsc::UnboundedSender<Batch<RawChunk>>);

impl spate_engine::Actor for Hold {
    type In = RawChunk;
    type Out = NoOutput;

    async fn handle(&mut self, batch: Batch<RawChunk>, _: &mut Ctx<NoOutput>) -> ActorResult {
        // The check ended (and failed): the batch drops, unacked.
        let _ = self.0.send(batch);
        Ok(())
    }
}

/// The markers in a chunk's bytes.
fn markers_in(chunk: &RawChunk, all: &BTreeSet<String>) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(&chunk.bytes);
    all.iter()
        .filter(|m| text.contains(&format!("\"{m}\"")))
        .cloned()
        .collect()
}

/// What the check has seen of the source.
struct Held {
    rx: mpsc::UnboundedReceiver<Batch<RawChunk>>,
    /// Every marker fed.
    all: BTreeSet<String>,
    /// Markers whose batches were delivered (and so must not come back).
    delivered: BTreeSet<String>,
    limit: Duration,
}

impl Held {
    /// Receives batches until every marker of `want` was seen; the batches
    /// with their markers.
    async fn until_seen(
        &mut self,
        want: &BTreeSet<String>,
        what: &str,
    ) -> Vec<(Batch<RawChunk>, BTreeSet<String>)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + self.limit;
        while !want.is_subset(&seen) {
            let batch = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out after {:?} waiting for {what}: saw {seen:?} of {want:?}",
                        self.limit
                    )
                })
                .expect("the holding sink is running");
            let markers = markers_in(&batch.payload, &self.all);
            let again: Vec<_> = markers.intersection(&self.delivered).collect();
            assert!(
                again.is_empty(),
                "delivered batches came back: {again:?} (while waiting for {what})"
            );
            seen.extend(markers.iter().cloned());
            out.push((batch, markers));
        }
        out
    }
}

/// Feeds `markers` one line at a time, waiting for each one's batch (so each
/// batch holds one marker); the batches.
async fn feed_each<U: AckedUpstream>(
    upstream: &mut U,
    held: &mut Held,
    markers: &[String],
) -> Vec<(Batch<RawChunk>, BTreeSet<String>)> {
    let mut out = Vec::new();
    for m in markers {
        held.all.insert(m.clone());
        upstream.feed(&format!("{{\"msg\":\"{m}\"}}")).await;
        let want = BTreeSet::from([m.clone()]);
        out.extend(held.until_seen(&want, &format!("the batch of {m}")).await);
    }
    out
}

fn spawn<U: AckedUpstream>(upstream: &U, tx: mpsc::UnboundedSender<Batch<RawChunk>>) -> Pipeline {
    let mut graph = GraphBuilder::new();
    graph.source("source", upstream.source());
    graph.actor(
        "hold",
        move || Hold(tx.clone()),
        ActorOptions::with_capacity(64),
    );
    graph.connect("source", "hold");
    graph.build().expect("graph").spawn()
}

/// Runs the check (see the module docs) on `upstream`, whose state changes
/// are waited for up to `limit` each. `name` tells the markers apart from
/// other runs against the same upstream service.
pub async fn check_acknowledgements<U: AckedUpstream>(
    upstream: &mut U,
    name: &str,
    limit: Duration,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let pipeline = spawn(upstream, tx);
    let mut held = Held {
        rx,
        all: BTreeSet::new(),
        delivered: BTreeSet::new(),
        limit,
    };
    let marker = |round: &str, i: usize| format!("{name}-{round}-{i}");

    // Delivered batches commit, and only once every ack is in: the first
    // batch is held back while the others are delivered.
    let round: Vec<String> = (0..4).map(|i| marker("delivered", i)).collect();
    let mut batches = feed_each(upstream, &mut held, &round).await;
    assert!(
        !upstream.committed().await,
        "{name}: committed before any ack"
    );
    let (first, first_markers) = batches.remove(0);
    for (batch, markers) in batches {
        held.delivered.extend(markers);
        batch.ack.deliver();
    }
    assert!(
        !upstream.committed().await,
        "{name}: committed while the first batch's ack is outstanding"
    );
    held.delivered.extend(first_markers);
    first.ack.deliver();
    wait_until(
        limit,
        &format!("{name}: delivered batches committed"),
        async || upstream.committed().await,
    )
    .await;

    // Failed and dropped batches come back and stay uncommitted.
    let failed: Vec<String> = (0..2).map(|i| marker("failed", i)).collect();
    let dropped: Vec<String> = (0..2).map(|i| marker("dropped", i)).collect();
    let mut batches = feed_each(upstream, &mut held, &failed).await;
    batches.extend(feed_each(upstream, &mut held, &dropped).await);
    for (batch, markers) in batches {
        if markers.iter().any(|m| failed.contains(m)) {
            batch.ack.fail("acknowledgement compliance check");
        } else {
            drop(batch);
        }
    }
    let back: BTreeSet<String> = failed.iter().chain(&dropped).cloned().collect();
    let again = held
        .until_seen(&back, &format!("{name}: failed and dropped batches again"))
        .await;
    assert!(
        !upstream.committed().await,
        "{name}: failed or dropped batches committed"
    );
    for (batch, markers) in again {
        held.delivered.extend(markers);
        batch.ack.deliver();
    }
    wait_until(
        limit,
        &format!("{name}: redelivered batches committed"),
        async || upstream.committed().await,
    )
    .await;
    // Whatever arrived meanwhile holds nothing delivered.
    while let Ok(batch) = held.rx.try_recv() {
        let markers = markers_in(&batch.payload, &held.all);
        assert!(
            markers.is_disjoint(&held.delivered),
            "{name}: delivered batches came back: {markers:?}"
        );
        batch.ack.deliver();
    }
    drop(held);
    pipeline
        .shutdown(limit)
        .await
        .unwrap_or_else(|e| panic!("{name}: pipeline shutdown: {e:?}"));
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use spate_engine::{Ack, AckToken};
    use spate_operators::sources::ChunkFormat;

    use super::*;

    /// How a [`Memory`] queue gets acknowledgements wrong, if it does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Flaw {
        None,
        /// Commits a line as soon as it is sent.
        CommitsOnSend,
        /// Forgets a line whose batch failed.
        ForgetsFailures,
    }

    #[derive(Default)]
    struct Lines {
        pending: VecDeque<String>,
        fed: usize,
        committed: usize,
    }

    /// An in-memory queue of lines and a source reading it.
    #[derive(Clone)]
    struct Memory {
        lines: Arc<Mutex<Lines>>,
        flaw: Flaw,
    }

    impl Memory {
        fn new(flaw: Flaw) -> Self {
            Memory {
                lines: Arc::default(),
                flaw,
            }
        }
    }

    impl Source for Memory {
        type Out = RawChunk;

        async fn run(&mut self, ctx: &mut Ctx<RawChunk>) -> ActorResult {
            while !ctx.stop_requested() {
                let next = self.lines.lock().unwrap().pending.pop_front();
                let Some(line) = next else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let chunk = RawChunk {
                    bytes: Arc::new(format!("{line}\n").into_bytes()),
                    source: Arc::from("memory"),
                    origin: Arc::from("memory"),
                    first_position: 0,
                    ingest_ts_ms: 0,
                    format: ChunkFormat::Lines,
                    lines: 1,
                };
                let lines = self.lines.clone();
                let flaw = self.flaw;
                if flaw == Flaw::CommitsOnSend {
                    lines.lock().unwrap().committed += 1;
                }
                let token = AckToken::new(move |verdict| {
                    let mut lines = lines.lock().unwrap();
                    match (verdict.is_delivered(), flaw) {
                        (_, Flaw::CommitsOnSend) => {}
                        (true, _) => lines.committed += 1,
                        (false, Flaw::ForgetsFailures) => {}
                        (false, _) => lines.pending.push_back(line),
                    }
                });
                ctx.send(Batch::new(chunk, Ack::from(token))).await?;
            }
            Ok(())
        }
    }

    impl AckedUpstream for Memory {
        type Source = Memory;

        fn source(&self) -> impl FnMut() -> Memory + Send + 'static {
            let me = self.clone();
            move || me.clone()
        }

        async fn feed(&mut self, line: &str) {
            let mut lines = self.lines.lock().unwrap();
            lines.pending.push_back(line.to_string());
            lines.fed += 1;
        }

        async fn committed(&mut self) -> bool {
            let lines = self.lines.lock().unwrap();
            lines.committed == lines.fed
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_that_commits_on_delivery_and_returns_failures_passes() {
        check_acknowledgements(
            &mut Memory::new(Flaw::None),
            "memory",
            Duration::from_secs(10),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "committed before any ack")]
    async fn a_source_that_commits_on_send_fails() {
        check_acknowledgements(
            &mut Memory::new(Flaw::CommitsOnSend),
            "memory",
            Duration::from_secs(10),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[should_panic(expected = "failed and dropped batches again")]
    async fn a_source_that_forgets_failed_batches_fails() {
        check_acknowledgements(
            &mut Memory::new(Flaw::ForgetsFailures),
            "memory",
            Duration::from_millis(500),
        )
        .await;
    }
}
