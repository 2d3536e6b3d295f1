//! Closed windows pending their decision: the alert router's part between
//! the window aggregator's closed windows and the notices. For every
//! [`WindowOutput`] (the windows that closed, and the bound every window
//! before which is closed), the router:
//!
//! 1. adds this process's counts of the closed windows to the
//!    [`WindowStore`] ([`PendingWindows::add`]), and only then delivers the
//!    input batch's ack;
//! 2. once the settle delay has passed (processing time; zero unless the
//!    store is shared), reads the merged counts back
//!    ([`WindowStore::merged`]) and runs the rules ([`AlertEvaluator`]) on
//!    them ([`PendingWindows::decide_due`]);
//! 3. with a shared store, claims each notice, firing or resolved
//!    ([`WindowStore::claim`], a conditional write of the deterministic id
//!    `<rule>:<service>:<window start>:<state>`): only the process that wins
//!    the claim sends it. Losing a claim is the normal case for all processes
//!    but one, counted in `spate_alert_claims_lost_total` (wins in
//!    `spate_alert_claims_won_total`; `spate_alerts_total` counts only the
//!    notices sent).
//!
//! With the in-memory store ([`super::window_store::MemoryWindowStore`], one
//! process) the three steps happen at once, when the windows arrive: the
//! merged counts are this process's counts and no claim is made.
//!
//! # Which services, which windows
//!
//! A process evaluates, for each window, the services it counted events of
//! in that window and those its evaluator tracks: alerts firing, and (with a
//! `silence` rule) every service seen in the last 24 hours. The merged counts
//! of these services are read, one strongly consistent Query per service
//! covering every window the step closed (with a shared store). So a service
//! that a process saw before and that has events only in another process's
//! partial is not silent (its merged count is read), and every process that
//! saw a service decides on the same merged counts; the claim makes the
//! notice go out once. A service a process never saw is left to the
//! processes that did.
//!
//! # The settle delay: what it guarantees, and its limit
//!
//! A process closes a window once its watermark passes the window's end
//! (event time, at least `allowed_lateness` after the end in processing
//! time, since event times count only up to the clock) or, when its traffic
//! stops, after `idle_timeout` without events. With sources delivering
//! in near real time, the processes that had events of a window close it
//! within `idle_timeout` (plus a tick, the pipeline's lag and the clock
//! skew between hosts) of each other. A settle delay above that (the default
//! 45 s against the default 30 s idle timeout; it may not be below the idle
//! timeout) means the first process to read finds every partial already
//! added.
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
//! Steps pending their settle delay wait in memory (one entry per closed
//! step, `spate_alert_windows_pending`), and are decided on the router's
//! tick, so nothing blocks while they wait. The store calls run on the
//! blocking pool; while one runs, the router's mailbox fills and the window
//! aggregator waits to send (outputs are rare: one per closing window).
//!
//! # Shutdown
//!
//! When the router closes, steps still pending their settle delay are
//! decided at once ([`PendingWindows::decide_due`] with `all`), on whatever
//! the store holds by then: a process that stops right after closing a
//! window may decide on fewer partials than the others would have added (the
//! claim still keeps notices unique). A crash, or a restart of the router
//! after a failure, forgets the pending steps (with a shared store their
//! partial counts are already in it: the other processes that counted those
//! windows still evaluate them).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::evaluate::AlertEvaluator;
use super::record::{AlertRecord, WindowRecord};
use super::retry::blocking_with_retries;
use super::rules::Rule;
use super::window_store::{WindowStore, sum};
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
    /// This process's counts of the windows that closed.
    windows: Vec<WindowRecord>,
    /// Whether they reached the store.
    added: bool,
}

/// What [`PendingWindows::decide_due`] decided.
#[derive(Debug, Default, PartialEq)]
pub struct Decided {
    /// This process's counts of the windows decided (what it added).
    pub windows: Vec<WindowRecord>,
    /// The notices to send: all raised with an unshared store; with a shared
    /// one, the claims won and those whose claim failed.
    pub notices: Vec<AlertRecord>,
}

/// The decision state of one alert router: the window store, the rules'
/// evaluator, and the steps pending their settle delay.
pub struct PendingWindows {
    store: Arc<dyn WindowStore>,
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

impl std::fmt::Debug for PendingWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWindows")
            .field("shared", &self.store.is_shared())
            .field("settle", &self.settle)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl PendingWindows {
    /// Decisions over `store`, with the window settings of `windows` (size,
    /// tick, and the settle delay when the store is shared) and already
    /// validated `rules`, reminding every `cooldown_ms` of event time.
    pub fn new(
        store: Arc<dyn WindowStore>,
        windows: &WindowConfig,
        rules: Vec<Rule>,
        cooldown_ms: i64,
    ) -> Self {
        let settle = if store.is_shared() {
            windows.shared_settle()
        } else {
            Duration::ZERO
        };
        PendingWindows {
            store,
            evaluator: AlertEvaluator::new(rules, windows.size_ms(), cooldown_ms),
            settle,
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

    /// Stamps notices as if the processing clock read `wall_base_ms` now
    /// (tests replaying old event times).
    pub fn with_wall_base(mut self, wall_base_ms: i64) -> Self {
        self.wall_base_ms = wall_base_ms;
        self.clock_base = Instant::now();
        self
    }

    /// The claim counters.
    pub fn stats(&self) -> Arc<ClaimStats> {
        self.stats.clone()
    }

    /// Whether the store is shared by several processes (see
    /// [`WindowStore::is_shared`]).
    pub fn is_shared(&self) -> bool {
        self.store.is_shared()
    }

    /// How often the router looks for steps whose settle delay is over;
    /// `None` without a settle delay (decided as they arrive).
    pub fn tick_interval(&self) -> Option<Duration> {
        (!self.settle.is_zero()).then_some(self.tick)
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

    /// Adds the counts of `out` to the store (retrying; a failure is logged
    /// and counted) and queues the step for a decision after the settle
    /// delay. The caller delivers the input's ack after this returns.
    pub async fn add(&mut self, out: &WindowOutput) {
        let added = out.windows.is_empty() || {
            let (store, windows) = (self.store.clone(), Arc::new(out.windows.clone()));
            blocking_with_retries("add windows", move || store.add(&windows))
                .await
                .is_ok()
        };
        let until = out.closed_until_ms.or_else(|| {
            // Windows without a closed bound: decide up to their end.
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

    /// Decides the steps whose settle delay is over (every step with `all`,
    /// at shutdown) on the merged counts, claims their notices when the
    /// store is shared, and returns the windows decided and the notices to
    /// send.
    pub async fn decide_due(&mut self, all: bool) -> Decided {
        let now = Instant::now();
        let mut decided = Decided::default();
        while let Some(step) = self.pending.front() {
            if !all && step.due > now {
                break;
            }
            let step = self.pending.pop_front().expect("front exists");
            let merged = self.merged(&step).await;
            let raised = self
                .evaluator
                .evaluate(&merged, step.closed_until_ms, self.now_ms());
            decided.notices.extend(self.claim(raised).await);
            decided.windows.extend(step.windows);
        }
        metrics::gauge!("spate_alert_windows_pending").set(self.pending.len() as f64);
        decided
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
            store.merged(&services, from, until)
        })
        .await
        {
            Ok(merged) if step.added => merged,
            // Our partials are missing from the store: count them on top.
            Ok(merged) => sum(merged.into_iter().chain(step.windows.iter().cloned())),
            Err(_) => step.windows.clone(),
        }
    }

    /// With a shared store, claims each of `alerts`; returns those to send.
    async fn claim(&self, alerts: Vec<AlertRecord>) -> Vec<AlertRecord> {
        if !self.store.is_shared() {
            return alerts;
        }
        let mut send = Vec::new();
        for alert in alerts {
            let (store, a) = (self.store.clone(), Arc::new(alert.clone()));
            match blocking_with_retries("claim alert", move || store.claim(&a)).await {
                Ok(true) => {
                    self.stats.won.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("spate_alert_claims_won_total").increment(1);
                    send.push(alert);
                }
                Ok(false) => {
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("spate_alert_claims_lost_total").increment(1);
                    tracing::debug!(id = %alert.id, "alert claimed by another process");
                }
                Err(_) => {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    send.push(alert);
                }
            }
        }
        send
    }
}

#[cfg(test)]
mod tests;
