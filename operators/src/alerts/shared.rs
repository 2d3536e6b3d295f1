//! Shared-window mode: several processes consume one stream (each reading
//! some of its shards), so each sees only part of every window. The alert
//! router ([`super::router`]) then:
//!
//! 1. adds this process's partial counts of every closed window to the
//!    shared store ([`SharedWindowStore::add_windows`], an atomic add), and
//!    only then delivers the input batch's ack;
//! 2. waits `shared_settle_secs` (processing time) after that add, then reads
//!    the merged counts back ([`SharedWindowStore::merged_windows`]) and runs
//!    the rules ([`AlertEvaluator`]) on them;
//! 3. claims each notice, firing or resolved
//!    ([`SharedWindowStore::claim_alert`], a conditional write of the
//!    deterministic id `<rule>:<service>:<window start>:<state>`): only the
//!    process that wins the claim sends it to the outputs. Losing a claim is
//!    the normal case for all processes but one, counted in
//!    `spate_alert_claims_lost_total` (wins in `spate_alert_claims_won_total`;
//!    `spate_alerts_total` counts only the notices sent).
//!
//! The window aggregator runs no rules in this mode
//! ([`crate::windows::WindowAggregator::shared`]).
//!
//! # Which services, which windows
//!
//! A process evaluates, for each window, the services it counted events of
//! in that window and those its evaluator tracks: alerts firing, and (with a
//! `silence` rule) every service seen in the last 24 hours. The merged counts
//! of these services are read, one strongly consistent Query per service
//! covering every window the step closed. So a service that a process saw
//! before and that has events only in another process's partial is not
//! silent (its merged count is read), and every process that saw a service
//! decides on the same merged counts; the claim makes the notice go out once.
//! A service a process never saw is left to the processes that did.
//!
//! # The settle delay: what it guarantees, and its limit
//!
//! A process closes a window once its watermark passes the window's end
//! (event time, at least `allowed_lateness_secs` after the end in processing
//! time, since event times count only up to the clock) or, when its traffic
//! stops, after `idle_timeout_secs` without events. With sources delivering
//! in near real time, the processes that had events of a window close it
//! within `idle_timeout_secs` (plus a tick, the pipeline's lag and the
//! clock skew between hosts) of each other. A settle delay above that (the default 45 s against the default
//! 30 s idle timeout; it may not be below the idle timeout) means the first
//! process to read finds every partial already added.
//!
//! The limit: a partial added after a process's settle delay (a process
//! behind on a backlog, replaying after a restart, or a store retry that
//! took longer) is in the store's merged counts, but that process's decision
//! was already made. Another process that reads later sees it and may raise
//! what the first did not; a notice still goes out at most once per id. A
//! partial whose add failed after retries is added to this process's own
//! reading of the merged counts (it is missing from the store); when the read
//! itself fails, the process decides on its own partial counts. When a claim
//! fails after retries, the notice is sent anyway (a possible duplicate
//! rather than a lost alert). Each failure counts in
//! `spate_alert_store_failures_total`.
//!
//! # Backpressure
//!
//! Windows pending their settle delay wait in memory (one entry per closed
//! step, `spate_alert_windows_pending`), and are evaluated on the router's
//! tick, so nothing blocks while they wait. The store calls run on the
//! blocking pool; while one runs, the router's mailbox fills and the window
//! aggregator waits to send (outputs are rare: one per closing window).
//!
//! # Shutdown
//!
//! When the router closes, windows still pending their settle delay are
//! evaluated at once, on whatever the store holds by then: a process that
//! stops right after closing a window may decide on fewer partials than the
//! others would have added (the claim still keeps notices unique). A crash,
//! or a restart of the router after a failure, forgets the pending windows
//! (their partial counts are already in the store): the other processes that
//! counted those windows still evaluate them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::evaluate::AlertEvaluator;
use super::record::{AlertRecord, SharedWindowStore, WindowRecord};
use super::router::blocking_with_retries;
use super::rules::Rule;
use crate::event::wall_clock_ms;
use crate::windows::{WindowConfig, WindowOutput};

/// What the claims came to, readable by tests and the binary (the same
/// figures as the metrics).
#[derive(Debug, Default)]
pub struct ClaimStats {
    /// Claims this process won (notices it sent).
    pub won: AtomicU64,
    /// Claims another process held (notices not sent here).
    pub lost: AtomicU64,
    /// Claims that failed after retries (notices sent anyway).
    pub failed: AtomicU64,
}

impl ClaimStats {
    /// Claims won so far.
    pub fn won(&self) -> u64 {
        self.won.load(Ordering::Relaxed)
    }

    /// Claims lost so far.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Claims failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// One closed step waiting for its settle delay.
#[derive(Debug)]
struct Pending {
    due: Instant,
    closed_until_ms: i64,
    /// This process's partial counts of the windows that closed.
    windows: Vec<WindowRecord>,
    /// Whether they reached the store.
    added: bool,
}

/// The shared-window state of one alert router: the store, the rules'
/// evaluator over merged counts, and the steps pending their settle delay.
pub struct SharedWindows {
    store: Arc<dyn SharedWindowStore>,
    evaluator: AlertEvaluator,
    settle: Duration,
    tick: Duration,
    pending: VecDeque<Pending>,
    /// The last `closed_until_ms` queued.
    queued_until: Option<i64>,
    stats: Arc<ClaimStats>,
    wall_base_ms: i64,
    clock_base: Instant,
}

impl std::fmt::Debug for SharedWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWindows")
            .field("settle", &self.settle)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl SharedWindows {
    /// Shared-window mode over `store`, with the window settings of
    /// `windows` (size, tick, settle delay) and already validated `rules`.
    pub fn new(
        store: Arc<dyn SharedWindowStore>,
        windows: &WindowConfig,
        rules: Vec<Rule>,
        cooldown_ms: i64,
    ) -> Self {
        SharedWindows {
            store,
            evaluator: AlertEvaluator::new(rules, windows.size_ms(), cooldown_ms),
            settle: windows.shared_settle(),
            tick: Duration::from_millis(windows.tick_ms.max(1)),
            pending: VecDeque::new(),
            queued_until: None,
            stats: Arc::default(),
            wall_base_ms: wall_clock_ms(),
            clock_base: Instant::now(),
        }
    }

    /// Counts claims in `stats` (kept across restarts of the router).
    pub fn with_stats(mut self, stats: Arc<ClaimStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The claim counters.
    pub fn stats(&self) -> Arc<ClaimStats> {
        self.stats.clone()
    }

    /// How often the router looks for steps whose settle delay is over.
    pub fn tick_interval(&self) -> Duration {
        self.tick
    }

    /// Steps waiting for their settle delay.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Processing time, wall-clock milliseconds, advancing with tokio's clock.
    fn now_ms(&self) -> i64 {
        let elapsed = Instant::now().saturating_duration_since(self.clock_base);
        self.wall_base_ms
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }

    /// Adds the partial counts of `out` to the store (retrying; a failure is
    /// logged and counted) and queues the step for evaluation after the
    /// settle delay. The caller delivers the input's ack after this returns.
    pub async fn add(&mut self, out: &WindowOutput) {
        let added = out.windows.is_empty() || {
            let (store, windows) = (self.store.clone(), Arc::new(out.windows.clone()));
            blocking_with_retries("add windows", move || store.add_windows(&windows))
                .await
                .is_ok()
        };
        let until = out.closed_until_ms.or_else(|| {
            // Windows without a closed bound (not sent so by the aggregator):
            // evaluate up to their end.
            out.windows.iter().map(|w| w.window_end_ms).max()
        });
        let Some(until) = until else { return };
        if out.windows.is_empty() && Some(until) <= self.queued_until {
            return;
        }
        self.queued_until = self.queued_until.max(Some(until));
        self.pending.push_back(Pending {
            due: Instant::now() + self.settle,
            closed_until_ms: until,
            windows: out.windows.clone(),
            added,
        });
        metrics::gauge!("spate_alert_windows_pending").set(self.pending.len() as f64);
    }

    /// Evaluates the steps whose settle delay is over (every step with
    /// `all`, at shutdown) on the merged counts, claims their notices, and
    /// returns those to send: the claims won, and those that failed.
    pub async fn evaluate_due(&mut self, all: bool) -> Vec<AlertRecord> {
        let now = Instant::now();
        let mut notices = Vec::new();
        while let Some(step) = self.pending.front() {
            if !all && step.due > now {
                break;
            }
            let step = self.pending.pop_front().expect("front exists");
            let merged = self.merged(&step).await;
            let raised = self
                .evaluator
                .evaluate(&merged, step.closed_until_ms, self.now_ms());
            notices.extend(self.claim(&raised).await);
        }
        metrics::gauge!("spate_alert_windows_pending").set(self.pending.len() as f64);
        notices
    }

    /// The merged counts a step is decided on.
    async fn merged(&self, step: &Pending) -> Vec<WindowRecord> {
        let mut services: BTreeSet<String> =
            self.evaluator.tracked_services().into_iter().collect();
        services.extend(step.windows.iter().map(|w| w.service.clone()));
        let from = self
            .evaluator
            .evaluated_until()
            .or_else(|| step.windows.iter().map(|w| w.window_start_ms).min());
        let until = step.closed_until_ms;
        let Some(from) = from.filter(|&f| f < until && !services.is_empty()) else {
            return step.windows.clone();
        };
        let services: Vec<String> = services.into_iter().collect();
        let store = self.store.clone();
        match blocking_with_retries("read merged windows", move || {
            store.merged_windows(&services, from, until)
        })
        .await
        {
            Ok(merged) if step.added => merged,
            // Our partials are missing from the store: count them on top.
            Ok(merged) => sum(merged.into_iter().chain(step.windows.iter().cloned())),
            Err(_) => step.windows.clone(),
        }
    }

    /// Claims each of `alerts`; returns those to send.
    pub async fn claim(&self, alerts: &[AlertRecord]) -> Vec<AlertRecord> {
        let mut send = Vec::new();
        for alert in alerts {
            let (store, a) = (self.store.clone(), Arc::new(alert.clone()));
            match blocking_with_retries("claim alert", move || store.claim_alert(&a)).await {
                Ok(true) => {
                    self.stats.won.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("spate_alert_claims_won_total").increment(1);
                    send.push(alert.clone());
                }
                Ok(false) => {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("spate_alert_claims_lost_total").increment(1);
                    tracing::debug!(id = %alert.id, "alert claimed by another process");
                }
                Err(_) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    send.push(alert.clone());
                }
            }
        }
        send
    }
}

/// Sums records of the same (window, service).
fn sum(records: impl IntoIterator<Item = WindowRecord>) -> Vec<WindowRecord> {
    let mut merged: BTreeMap<(i64, String), WindowRecord> = BTreeMap::new();
    for r in records {
        match merged.get_mut(&(r.window_start_ms, r.service.clone())) {
            Some(m) => {
                m.events += r.events;
                for (a, b) in m.severity.iter_mut().zip(r.severity) {
                    *a += b;
                }
                for (tag, n) in r.tags {
                    *m.tags.entry(tag).or_default() += n;
                }
            }
            None => {
                merged.insert((r.window_start_ms, r.service.clone()), r);
            }
        }
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use spate_engine::testkit::{LeakCheck, ScriptedSource};
    use spate_engine::{Ack, AckToken, ActorOptions, ActorResult, Batch, Ctx, GraphBuilder};
    use spate_engine::{Pipeline, Source};

    use super::*;
    use crate::alerts::outputs::AlertOutput;
    use crate::alerts::outputs::file::FileOutput;
    use crate::alerts::router::AlertRouter;
    use crate::alerts::rules::{compile_rules, default_rules};

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
        fail_adds: bool,
        fail_claims: bool,
    }

    impl Process {
        fn new(shared: &Arc<Shared>, id: usize) -> Arc<Self> {
            Arc::new(Process {
                shared: shared.clone(),
                id,
                adds: AtomicUsize::new(0),
                fail_adds: false,
                fail_claims: false,
            })
        }
    }

    impl SharedWindowStore for Process {
        fn add_windows(&self, windows: &[WindowRecord]) -> Result<(), String> {
            if self.fail_adds {
                return Err("throttled".into());
            }
            self.shared.add(windows);
            self.adds.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        fn merged_windows(
            &self,
            services: &[String],
            from_ms: i64,
            until_ms: i64,
        ) -> Result<Vec<WindowRecord>, String> {
            let kept = self.shared.windows.lock().unwrap();
            Ok(kept
                .iter()
                .filter(|((s, start), _)| {
                    services.contains(s) && (from_ms..until_ms).contains(start)
                })
                .map(|(_, w)| w.clone())
                .collect())
        }

        fn claim_alert(&self, alert: &AlertRecord) -> Result<bool, String> {
            if self.fail_claims {
                return Err("unavailable".into());
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
            alerts: Vec::new(),
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
        let rules = compile_rules(&default_rules()).unwrap();
        let store: Arc<dyn SharedWindowStore> = process.clone();
        let shared = SharedWindows::new(store, &WindowConfig::default(), rules, 900_000)
            .with_stats(stats.clone());
        let outputs = vec![AlertOutput::File(FileOutput::open(file).unwrap())];
        AlertRouter::with_outputs(outputs, None).with_shared(shared)
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
}
