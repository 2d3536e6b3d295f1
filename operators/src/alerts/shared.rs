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
mod tests;
