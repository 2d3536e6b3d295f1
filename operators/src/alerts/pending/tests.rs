//! Unit tests of the decisions over a shared window store, with an in-memory
//! fake of the store several processes share.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use spate_engine::testkit::{LeakCheck, ScriptedSource};
use spate_engine::{Ack, AckToken, ActorOptions, ActorResult, Batch, Ctx, GraphBuilder};
use spate_engine::{Pipeline, Source};

use super::*;
use crate::alerts::outputs::AlertOutput;
use crate::alerts::outputs::file::FileOutput;
use crate::alerts::record::{AlertStore, AlertStoreError};
use crate::alerts::router::AlertRouter;

const W: i64 = 300_000;
const T0: i64 = 1_795_428_000_000; // 2026-11-23T10:00Z

/// The shared store of several fake processes: counts summed per
/// (service, window), claims held by the first process to ask.
#[derive(Default)]
struct Shared {
    windows: Mutex<BTreeMap<(String, i64), WindowRecord>>,
    claims: Mutex<HashMap<String, usize>>,
}

impl Shared {
    fn add(&self, windows: &[WindowRecord]) {
        let mut kept = self.windows.lock().unwrap();
        for w in windows {
            let key = (w.service.clone(), w.window_start_ms);
            let merged = match kept.remove(&key) {
                Some(k) => sum([k, w.clone()]).remove(0),
                None => w.clone(),
            };
            kept.insert(key, merged);
        }
    }
}

/// One process's view of [`Shared`], which can be made to fail.
struct Process {
    shared: Arc<Shared>,
    id: usize,
    adds: AtomicUsize,
    hot_records: AtomicUsize,
    fail_adds: bool,
    fail_claims: bool,
}

impl Process {
    fn new(shared: &Arc<Shared>, id: usize) -> Arc<Self> {
        Arc::new(Process {
            shared: shared.clone(),
            id,
            adds: AtomicUsize::new(0),
            hot_records: AtomicUsize::new(0),
            fail_adds: false,
            fail_claims: false,
        })
    }
}

/// Counts the calls: with a shared window store the router must not record
/// windows or notices a second time.
impl AlertStore for Process {
    fn record(&self, _: &[WindowRecord], _: &[AlertRecord]) -> Result<(), AlertStoreError> {
        self.hot_records.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl WindowStore for Process {
    fn is_shared(&self) -> bool {
        true
    }

    fn add(&self, windows: &[WindowRecord]) -> Result<(), AlertStoreError> {
        if self.fail_adds {
            return Err(AlertStoreError::External("throttled".into()));
        }
        self.shared.add(windows);
        self.adds.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn merged(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, AlertStoreError> {
        let kept = self.shared.windows.lock().unwrap();
        Ok(kept
            .iter()
            .filter(|((s, start), _)| services.contains(s) && (from_ms..until_ms).contains(start))
            .map(|(_, w)| w.clone())
            .collect())
    }

    fn claim(&self, alert: &AlertRecord) -> Result<bool, AlertStoreError> {
        if self.fail_claims {
            return Err(AlertStoreError::External("unavailable".into()));
        }
        let mut claims = self.shared.claims.lock().unwrap();
        Ok(*claims.entry(alert.id.clone()).or_insert(self.id) == self.id)
    }
}

fn window(start: i64, service: &str, severity: [u64; 4]) -> WindowRecord {
    WindowRecord {
        window_start_ms: start,
        window_end_ms: start + W,
        service: service.into(),
        events: severity.iter().sum(),
        severity,
        tags: BTreeMap::new(),
    }
}

fn output(windows: Vec<WindowRecord>, closed_until_ms: i64) -> WindowOutput {
    WindowOutput {
        windows,
        closed_until_ms: Some(closed_until_ms),
    }
}

/// Sends each output at its offset from the start, then waits for the
/// stop. Each ack records how many adds of `process` the store had.
#[derive(Clone)]
struct TimedSource {
    script: Vec<(u64, WindowOutput)>,
    process: Arc<Process>,
    acks: Arc<Mutex<Vec<(bool, usize)>>>,
}

impl Source for TimedSource {
    type Out = WindowOutput;

    async fn run(&mut self, ctx: &mut Ctx<WindowOutput>) -> ActorResult {
        let start = Instant::now();
        for (at, out) in std::mem::take(&mut self.script) {
            tokio::time::sleep_until(start + Duration::from_secs(at)).await;
            let (process, acks) = (self.process.clone(), self.acks.clone());
            let token = AckToken::new(move |v| {
                let adds = process.adds.load(Ordering::SeqCst);
                acks.lock().unwrap().push((v.is_delivered(), adds));
            });
            ctx.send(Batch::new(out, Ack::from(token))).await?;
        }
        ctx.stopped().await;
        Ok(())
    }
}

fn router(process: &Arc<Process>, file: &Path, stats: &Arc<ClaimStats>) -> AlertRouter {
    let outputs = vec![AlertOutput::File(FileOutput::open(file).unwrap())];
    // Like the DynamoDB table, the shared store is also the hot store.
    let store: Arc<dyn AlertStore> = process.clone();
    AlertRouter::with_outputs_and_rules(
        outputs,
        crate::alerts::rules::default_rules_eager_silence(),
        &WindowConfig::default(),
        Some(store),
        process.clone(),
    )
    .with_claim_stats(stats.clone())
}

/// A router fed by `source`, writing to `file`.
fn spawn(
    source: impl Source<Out = WindowOutput> + Clone,
    process: &Arc<Process>,
    file: &Path,
    stats: &Arc<ClaimStats>,
) -> Pipeline {
    let mut g = GraphBuilder::new();
    g.source("windows", move || source.clone());
    let (process, file, stats) = (process.clone(), file.to_path_buf(), stats.clone());
    g.actor(
        "router",
        move || router(&process, &file, &stats),
        ActorOptions::default(),
    );
    g.connect("windows", "router");
    g.build().unwrap().spawn()
}

fn notices(file: &Path) -> Vec<AlertRecord> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(notices: &[AlertRecord]) -> Vec<(String, &'static str, i64, f64)> {
    notices
        .iter()
        .map(|n| (n.rule.clone(), n.state.as_str(), n.window_start_ms, n.value))
        .collect()
}

struct Node {
    process: Arc<Process>,
    file: PathBuf,
    stats: Arc<ClaimStats>,
    acks: Arc<Mutex<Vec<(bool, usize)>>>,
    pipeline: Pipeline,
}

fn node(shared: &Arc<Shared>, id: usize, dir: &Path, script: Vec<(u64, WindowOutput)>) -> Node {
    let process = Process::new(shared, id);
    let file = dir.join(format!("{id}.ndjson"));
    let stats = Arc::new(ClaimStats::default());
    let acks = Arc::new(Mutex::new(Vec::new()));
    let source = TimedSource {
        script,
        process: process.clone(),
        acks: acks.clone(),
    };
    let pipeline = spawn(source, &process, &file, &stats);
    Node {
        process,
        file,
        stats,
        acks,
        pipeline,
    }
}

#[tokio::test(start_paused = true)]
async fn two_routers_fed_seven_and_seven_raise_one_burst_of_fourteen() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared::default());
    // Each process saw 7 of the 14 errors of window T0, then some INFO
    // in the next window; B closes its windows 10 s after A.
    let script = |lag: u64| {
        vec![
            (lag, output(vec![window(T0, "api", [0, 0, 7, 0])], T0 + W)),
            (
                60 + lag,
                output(vec![window(T0 + W, "api", [3, 0, 0, 0])], T0 + 2 * W),
            ),
        ]
    };
    let a = node(&shared, 1, dir.path(), script(0));
    let b = node(&shared, 2, dir.path(), script(10));
    let (la, lb) = (LeakCheck::new(&a.pipeline), LeakCheck::new(&b.pipeline));

    // Within the settle delay (45 s) nothing is decided, though both
    // partials are in the store.
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(
        shared.windows.lock().unwrap()[&("api".to_string(), T0)].severity[2],
        14
    );
    assert!(notices(&a.file).is_empty() && notices(&b.file).is_empty());
    // A decides at 45 s on the merged 14 and wins the claim.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        summary(&notices(&a.file)),
        [("error_burst".into(), "firing", T0, 14.0)]
    );
    // B decides at 55 s on the same 14 and loses: nothing sent.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(notices(&b.file).is_empty());
    assert_eq!((b.stats.won(), b.stats.lost()), (0, 1));
    // The next window (6 INFO, no error): one resolution, sent by A.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let sent: Vec<AlertRecord> = notices(&a.file)
        .into_iter()
        .chain(notices(&b.file))
        .collect();
    assert_eq!(
        summary(&sent),
        [
            ("error_burst".into(), "firing", T0, 14.0),
            ("error_burst".into(), "resolved", T0 + W, 0.0),
        ]
    );
    assert_eq!(sent[0].id, format!("error_burst:api:{T0}:firing"));
    assert_eq!((a.stats.won(), a.stats.lost()), (2, 0));
    assert_eq!((b.stats.won(), b.stats.lost()), (0, 2));
    // Every input was acknowledged after its partial counts were added.
    for node in [&a, &b] {
        assert_eq!(*node.acks.lock().unwrap(), [(true, 1), (true, 2)]);
        assert_eq!(node.process.adds.load(Ordering::SeqCst), 2);
        assert_eq!(node.process.hot_records.load(Ordering::SeqCst), 0);
    }

    for node in [a, b] {
        node.pipeline.stop();
        node.pipeline.join().await.unwrap();
    }
    drop((la, lb));
}

#[tokio::test(start_paused = true)]
async fn silence_is_decided_on_merged_counts() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared::default());
    // A sees api and web in T0, then only api; B sees web in T0 + W.
    // web is not silent in T0 + W (B counted it), and goes silent in
    // T0 + 2W: one notice.
    let a = node(
        &shared,
        1,
        dir.path(),
        vec![
            (
                0,
                output(
                    vec![
                        window(T0, "api", [5, 0, 0, 0]),
                        window(T0, "web", [5, 0, 0, 0]),
                    ],
                    T0 + W,
                ),
            ),
            (
                60,
                output(vec![window(T0 + W, "api", [5, 0, 0, 0])], T0 + 2 * W),
            ),
            (
                120,
                output(vec![window(T0 + 2 * W, "api", [5, 0, 0, 0])], T0 + 3 * W),
            ),
        ],
    );
    let b = node(
        &shared,
        2,
        dir.path(),
        vec![
            (
                60,
                output(vec![window(T0 + W, "web", [2, 0, 0, 0])], T0 + 2 * W),
            ),
            (120, output(Vec::new(), T0 + 3 * W)),
        ],
    );
    tokio::time::sleep(Duration::from_secs(200)).await;
    let sent: Vec<AlertRecord> = notices(&a.file)
        .into_iter()
        .chain(notices(&b.file))
        .collect();
    assert_eq!(
        summary(&sent),
        [("silence".into(), "firing", T0 + 2 * W, 0.0)]
    );
    assert_eq!(sent[0].service, "web");
    assert_eq!(a.stats.won() + b.stats.won(), 1);
    assert_eq!(a.stats.lost() + b.stats.lost(), 1, "both tracked web");
    for node in [a, b] {
        node.pipeline.stop();
        node.pipeline.join().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn store_failures_fall_back_to_local_counts_and_sending() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared::default());
    // Another process's 7 errors are in the store.
    shared.add(&[window(T0, "api", [0, 0, 7, 0])]);
    let process = Arc::new(Process {
        shared: shared.clone(),
        id: 1,
        adds: AtomicUsize::new(0),
        hot_records: AtomicUsize::new(0),
        fail_adds: true,
        fail_claims: true,
    });
    let file = dir.path().join("alerts.ndjson");
    let stats = Arc::new(ClaimStats::default());
    let source = ScriptedSource::new([output(vec![window(T0, "api", [0, 0, 7, 0])], T0 + W)])
        .until_stopped();
    let log = source.log();
    let pipeline = spawn(source, &process, &file, &stats);
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Our add failed: our 7 count on top of the store's 7; the claim
    // failed: sent anyway.
    assert_eq!(
        summary(&notices(&file)),
        [("error_burst".into(), "firing", T0, 14.0)]
    );
    assert_eq!((stats.won(), stats.lost(), stats.failed()), (0, 0, 1));
    assert_eq!(log.delivered(), 1);
    pipeline.stop();
    pipeline.join().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn windows_pending_their_settle_delay_are_evaluated_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared::default());
    let process = Process::new(&shared, 1);
    let file = dir.path().join("alerts.ndjson");
    let stats = Arc::new(ClaimStats::default());
    // The source ends at once: the graph drains and the router closes
    // long before the 45 s settle delay.
    let source = ScriptedSource::new([output(vec![window(T0, "api", [0, 0, 0, 1])], T0 + W)]);
    let started = Instant::now();
    let pipeline = spawn(source, &process, &file, &stats);
    pipeline.join().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(45));
    assert_eq!(
        summary(&notices(&file)),
        [("critical".into(), "firing", T0, 1.0)]
    );
    assert_eq!(stats.won(), 1);
}
