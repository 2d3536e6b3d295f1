//! Per-actor instruments: in-process counters plus the `metrics` facade.
//!
//! Every actor gets an [`ActorStats`] (atomics readable in-process, for summaries
//! and tests) and a set of `metrics` handles labelled `actor="<name>"`:
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | `spate_actor_mailbox_depth` | gauge | batches queued when the last one was taken |
//! | `spate_actor_batches_received_total` | counter | batches handled |
//! | `spate_actor_events_received_total` | counter | events handled |
//! | `spate_actor_batches_sent_total` | counter | batches sent downstream (per copy) |
//! | `spate_actor_events_sent_total` | counter | events sent downstream (per copy) |
//! | `spate_actor_errors_total{class}` | counter | failures by class |
//! | `spate_actor_restarts_total` | counter | supervisor restarts |
//! | `spate_actor_backpressure_seconds` | histogram | each wait sending into a full mailbox; `_sum` is the time blocked |
//! | `spate_actor_handle_latency_seconds` | histogram | handle time per batch, backpressure excluded |
//!
//! Every series is registered when the graph is spawned, so it reads 0 from the
//! start. In-process, handle times also go to an hdrhistogram for
//! [`StatsSnapshot`]'s quantiles.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use metrics::{Counter, Gauge, Histogram as MetricHistogram};
use tokio::time::Instant;

use crate::error::ErrorClass;

/// How often latency quantiles are published to the metrics facade.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// The mailbox depth is sampled on every this many batches.
const DEPTH_SAMPLE_EVERY: u64 = 8;

/// Counters of one actor, shared between its task and whoever inspects it.
#[derive(Debug)]
pub struct ActorStats {
    name: String,
    batches_in: AtomicU64,
    events_in: AtomicU64,
    batches_out: AtomicU64,
    events_out: AtomicU64,
    errors: [AtomicU64; 3],
    restarts: AtomicU64,
    blocked_nanos: AtomicU64,
    mailbox_depth: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

/// A point-in-time copy of an actor's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Actor name.
    pub name: String,
    /// Batches handled.
    pub batches_in: u64,
    /// Events handled.
    pub events_in: u64,
    /// Batches sent downstream, counting each fan-out copy.
    pub batches_out: u64,
    /// Events sent downstream, counting each fan-out copy.
    pub events_out: u64,
    /// Failures classified as bad input.
    pub errors_bad_input: u64,
    /// Failures of external services.
    pub errors_external: u64,
    /// Internal failures, panics included.
    pub errors_internal: u64,
    /// Supervisor restarts.
    pub restarts: u64,
    /// Time spent blocked sending into full mailboxes.
    pub blocked: Duration,
    /// Mailbox depth when the last batch was taken.
    pub mailbox_depth: u64,
    /// Median handle time.
    pub latency_p50: Duration,
    /// 99th percentile handle time.
    pub latency_p99: Duration,
    /// Longest handle time.
    pub latency_max: Duration,
}

impl ActorStats {
    /// Fresh counters for the actor `name`.
    pub fn new(name: &str) -> Self {
        ActorStats {
            name: name.to_string(),
            batches_in: AtomicU64::new(0),
            events_in: AtomicU64::new(0),
            batches_out: AtomicU64::new(0),
            events_out: AtomicU64::new(0),
            errors: Default::default(),
            restarts: AtomicU64::new(0),
            blocked_nanos: AtomicU64::new(0),
            mailbox_depth: AtomicU64::new(0),
            // 1 µs to 1 h at 2 significant digits (1 % error): small to allocate and merge.
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid histogram bounds"),
            ),
        }
    }

    /// The actor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let q = |v: u64| Duration::from_micros(v);
        StatsSnapshot {
            name: self.name.clone(),
            batches_in: self.batches_in.load(Ordering::Relaxed),
            events_in: self.events_in.load(Ordering::Relaxed),
            batches_out: self.batches_out.load(Ordering::Relaxed),
            events_out: self.events_out.load(Ordering::Relaxed),
            errors_bad_input: self.errors[0].load(Ordering::Relaxed),
            errors_external: self.errors[1].load(Ordering::Relaxed),
            errors_internal: self.errors[2].load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            blocked: Duration::from_nanos(self.blocked_nanos.load(Ordering::Relaxed)),
            mailbox_depth: self.mailbox_depth.load(Ordering::Relaxed),
            latency_p50: q(h.value_at_quantile(0.5)),
            latency_p99: q(h.value_at_quantile(0.99)),
            latency_max: q(h.max()),
        }
    }
}

fn class_index(class: ErrorClass) -> usize {
    match class {
        ErrorClass::BadInput => 0,
        ErrorClass::External => 1,
        ErrorClass::Internal => 2,
    }
}

/// The recording side used by an actor's task: shared stats plus metric handles.
pub(crate) struct Instruments {
    pub(crate) stats: Arc<ActorStats>,
    mailbox_depth: Gauge,
    batches_in: Counter,
    events_in: Counter,
    batches_out: Counter,
    events_out: Counter,
    errors: [Counter; 3],
    restarts: Counter,
    blocked_seconds: MetricHistogram,
    latency: MetricHistogram,
    local_latency: Histogram<u64>,
    last_publish: Instant,
    /// Backpressure time since the last `handled`, excluded from handle latency.
    blocked_since_handled: Duration,
}

impl Instruments {
    /// Registers the metric handles with the recorder current at call time.
    pub(crate) fn new(stats: Arc<ActorStats>) -> Self {
        let actor = stats.name.clone();
        let label = |class: ErrorClass| metrics::counter!("spate_actor_errors_total", "actor" => actor.clone(), "class" => class.as_str());
        Instruments {
            mailbox_depth: metrics::gauge!("spate_actor_mailbox_depth", "actor" => actor.clone()),
            batches_in: metrics::counter!("spate_actor_batches_received_total", "actor" => actor.clone()),
            events_in: metrics::counter!("spate_actor_events_received_total", "actor" => actor.clone()),
            batches_out: metrics::counter!("spate_actor_batches_sent_total", "actor" => actor.clone()),
            events_out: metrics::counter!("spate_actor_events_sent_total", "actor" => actor.clone()),
            errors: [
                label(ErrorClass::BadInput),
                label(ErrorClass::External),
                label(ErrorClass::Internal),
            ],
            restarts: metrics::counter!("spate_actor_restarts_total", "actor" => actor.clone()),
            blocked_seconds: metrics::histogram!("spate_actor_backpressure_seconds", "actor" => actor.clone()),
            latency: metrics::histogram!("spate_actor_handle_latency_seconds", "actor" => actor.clone()),
            local_latency: Histogram::new_with_bounds(1, 3_600_000_000, 2)
                .expect("valid histogram bounds"),
            last_publish: Instant::now(),
            blocked_since_handled: Duration::ZERO,
            stats,
        }
    }

    /// Counts a received batch; samples the mailbox depth every few batches
    /// (reading it takes the channel's lock).
    #[inline]
    pub(crate) fn received(&mut self, events: usize, depth: impl FnOnce() -> usize) {
        let n = self.stats.batches_in.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events_in
            .fetch_add(events as u64, Ordering::Relaxed);
        self.batches_in.increment(1);
        self.events_in.increment(events as u64);
        if n.is_multiple_of(DEPTH_SAMPLE_EVERY) {
            let depth = depth();
            self.stats
                .mailbox_depth
                .store(depth as u64, Ordering::Relaxed);
            self.mailbox_depth.set(depth as f64);
        }
    }

    #[inline]
    pub(crate) fn sent(&mut self, events: usize, blocked: Duration) {
        self.stats.batches_out.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events_out
            .fetch_add(events as u64, Ordering::Relaxed);
        self.batches_out.increment(1);
        self.events_out.increment(events as u64);
        if !blocked.is_zero() {
            self.blocked_since_handled += blocked;
            self.stats
                .blocked_nanos
                .fetch_add(blocked.as_nanos() as u64, Ordering::Relaxed);
            self.blocked_seconds.record(blocked.as_secs_f64());
        }
    }

    pub(crate) fn error(&mut self, class: ErrorClass) {
        let i = class_index(class);
        self.stats.errors[i].fetch_add(1, Ordering::Relaxed);
        self.errors[i].increment(1);
    }

    pub(crate) fn restarted(&mut self) {
        self.stats.restarts.fetch_add(1, Ordering::Relaxed);
        self.restarts.increment(1);
    }

    /// Records the handle that started at `started`, less the time it spent
    /// blocked on backpressure (measured separately); moves the in-process
    /// histogram into the shared one at most once a second.
    #[inline]
    pub(crate) fn handled(&mut self, started: Instant) -> Instant {
        let now = Instant::now();
        let took = now
            .saturating_duration_since(started)
            .saturating_sub(std::mem::take(&mut self.blocked_since_handled));
        self.latency.record(took.as_secs_f64());
        let micros = (took.as_micros() as u64).clamp(1, 3_600_000_000);
        let _ = self.local_latency.record(micros);
        if now.saturating_duration_since(self.last_publish) >= PUBLISH_EVERY {
            self.publish();
        }
        now
    }

    /// Moves locally recorded latencies into the shared histogram read by
    /// [`ActorStats::snapshot`].
    pub(crate) fn publish(&mut self) {
        self.last_publish = Instant::now();
        if self.local_latency.is_empty() {
            return;
        }
        let mut shared = self.stats.latency.lock().unwrap_or_else(|p| p.into_inner());
        let _ = shared.add(&self.local_latency);
        self.local_latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reflects_recorded_values() {
        let stats = Arc::new(ActorStats::new("decode"));
        let mut ins = Instruments::new(stats.clone());
        ins.received(10, || 3);
        ins.sent(10, Duration::from_millis(5));
        ins.error(ErrorClass::External);
        ins.restarted();
        // 5 ms of the first handle were spent blocked: excluded from latency.
        let now = Instant::now();
        ins.handled(now - Duration::from_micros(5_100));
        let now = Instant::now();
        ins.handled(now - Duration::from_micros(300));
        ins.publish();
        let s = stats.snapshot();
        assert_eq!((s.batches_in, s.events_in, s.mailbox_depth), (1, 10, 3));
        assert_eq!((s.batches_out, s.events_out), (1, 10));
        assert_eq!(
            (s.errors_external, s.errors_internal, s.restarts),
            (1, 0, 1)
        );
        assert_eq!(s.blocked, Duration::from_millis(5));
        // Two significant digits: quantiles are exact to within 1 %.
        assert!((297..=303).contains(&s.latency_max.as_micros()), "{s:?}");
        assert!((99..=101).contains(&s.latency_p50.as_micros()), "{s:?}");
    }
}
