//! Source lag: what a source has handed to the pipeline and not yet heard a
//! verdict for.
//!
//! Every batch a source sends with an ack is recorded in its [`SourceLag`] from
//! the moment it is sent (or the earlier instant the source says it accepted
//! the data, [`Ctx::send_accepted`](crate::Ctx::send_accepted)) until its
//! verdict, so every source gets, for free:
//!
//! | metric | kind | meaning |
//! | --- | --- | --- |
//! | `spate_source_oldest_unacked_age_seconds{source}` | gauge | age of the oldest batch sent and not yet delivered to every sink (0 when none) |
//! | `spate_source_inflight_events{source}` | gauge | events sent and awaiting their verdict |
//! | `spate_source_inflight_bytes{source}` | gauge | bytes of those events, as the source counts them |
//! | `spate_source_batches_settled_total{source,verdict}` | counter | verdicts heard, `delivered` or `failed` |
//! | `spate_source_delivery_seconds{source}` | histogram | acceptance to `Delivered` (every sink durable) |
//!
//! A failed batch leaves the ledger at its verdict: until the source sends it
//! again it counts in `spate_source_batches_settled_total{verdict="failed"}`,
//! not in the age.
//!
//! The gauges are computed when the metrics are rendered
//! ([`PrometheusExporter::render`](crate::PrometheusExporter::render) calls
//! [`publish_all`]), so the age is exact at scrape time without a timer.
//!
//! # Cost
//!
//! One short mutex section when a batch is sent and one at its verdict; the
//! age is a scan of the batches outstanding, once per scrape.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use tokio::time::Instant;

/// One batch awaiting its verdict.
#[derive(Debug)]
struct Entry {
    accepted: Instant,
    events: u64,
    bytes: u64,
    settled: bool,
}

/// The batches of one source awaiting a verdict, in send order.
#[derive(Debug, Default)]
struct Ledger {
    /// Sequence number of `entries[0]`.
    first: u64,
    entries: VecDeque<Entry>,
    events: u64,
    bytes: u64,
}

/// What a source has outstanding, at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LagSnapshot {
    /// Age of the oldest batch not yet settled (zero when none is).
    pub oldest_age: Duration,
    /// Batches awaiting their verdict.
    pub batches: usize,
    /// Events awaiting their verdict.
    pub events: u64,
    /// Bytes awaiting their verdict.
    pub bytes: u64,
    /// Batches delivered so far.
    pub delivered: u64,
    /// Batches failed so far.
    pub failed: u64,
}

#[derive(Debug)]
struct Handles {
    age: Gauge,
    events: Gauge,
    bytes: Gauge,
    delivered: Counter,
    failed: Counter,
    delivery: Histogram,
}

/// The outstanding batches of one source, and its lag metrics.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use spate_engine::lag::SourceLag;
/// use std::time::Duration;
///
/// let lag = SourceLag::new("sqs-0");
/// let first = lag.track(tokio::time::Instant::now(), 100, 4096);
/// tokio::time::advance(Duration::from_secs(3)).await;
/// let second = lag.track(tokio::time::Instant::now(), 10, 100);
/// assert_eq!(lag.snapshot().oldest_age, Duration::from_secs(3));
/// first.settle(true);
/// assert_eq!(lag.snapshot().oldest_age, Duration::ZERO);
/// assert_eq!(lag.snapshot().events, 10);
/// drop(second); // a batch dropped without a verdict fails
/// assert_eq!(lag.snapshot().failed, 1);
/// # });
/// ```
#[derive(Debug)]
pub struct SourceLag {
    ledger: Mutex<Ledger>,
    delivered: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    handles: Handles,
}

/// Every live [`SourceLag`], for [`publish_all`].
static LIVE: Mutex<Vec<Weak<SourceLag>>> = Mutex::new(Vec::new());

/// Sets the lag gauges of every live source from its ledger (called before each
/// render of the metrics).
pub fn publish_all() {
    let live: Vec<Arc<SourceLag>> = {
        let mut all = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    for lag in live {
        lag.publish();
    }
}

impl SourceLag {
    /// A ledger for the source `name`, its series registered at zero with the
    /// recorder current now.
    pub fn new(name: &str) -> Arc<Self> {
        let source = name.to_string();
        let verdict = |v: &'static str| metrics::counter!("spate_source_batches_settled_total", "source" => source.clone(), "verdict" => v);
        let lag = Arc::new(SourceLag {
            ledger: Mutex::new(Ledger::default()),
            delivered: Default::default(),
            failed: Default::default(),
            handles: Handles {
                age: metrics::gauge!("spate_source_oldest_unacked_age_seconds", "source" => source.clone()),
                events: metrics::gauge!("spate_source_inflight_events", "source" => source.clone()),
                bytes: metrics::gauge!("spate_source_inflight_bytes", "source" => source.clone()),
                delivered: verdict("delivered"),
                failed: verdict("failed"),
                delivery: metrics::histogram!("spate_source_delivery_seconds", "source" => source.clone()),
            },
        });
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&lag));
        lag
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a batch of `events` events (`bytes` bytes) accepted at
    /// `accepted`; the returned entry settles it (dropped unsettled, it fails).
    pub fn track(self: &Arc<Self>, accepted: Instant, events: u64, bytes: u64) -> LagEntry {
        let mut ledger = self.lock();
        let seq = ledger.first + ledger.entries.len() as u64;
        ledger.entries.push_back(Entry {
            accepted,
            events,
            bytes,
            settled: false,
        });
        ledger.events += events;
        ledger.bytes += bytes;
        LagEntry {
            lag: self.clone(),
            seq,
            accepted,
            done: false,
        }
    }

    fn settle(&self, seq: u64, delivered: bool) {
        {
            let mut ledger = self.lock();
            let Some(i) = seq.checked_sub(ledger.first) else {
                return;
            };
            let Some(entry) = ledger.entries.get_mut(i as usize) else {
                return;
            };
            if entry.settled {
                return;
            }
            entry.settled = true;
            let (events, bytes) = (entry.events, entry.bytes);
            ledger.events -= events;
            ledger.bytes -= bytes;
            while ledger.entries.front().is_some_and(|e| e.settled) {
                ledger.entries.pop_front();
                ledger.first += 1;
            }
        }
        use std::sync::atomic::Ordering::Relaxed;
        if delivered {
            self.delivered.fetch_add(1, Relaxed);
            self.handles.delivered.increment(1);
        } else {
            self.failed.fetch_add(1, Relaxed);
            self.handles.failed.increment(1);
        }
    }

    /// What is outstanding now.
    pub fn snapshot(&self) -> LagSnapshot {
        let now = Instant::now();
        let ledger = self.lock();
        let oldest = ledger
            .entries
            .iter()
            .filter(|e| !e.settled)
            .map(|e| e.accepted)
            .min();
        use std::sync::atomic::Ordering::Relaxed;
        LagSnapshot {
            oldest_age: oldest.map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
            batches: ledger.entries.iter().filter(|e| !e.settled).count(),
            events: ledger.events,
            bytes: ledger.bytes,
            delivered: self.delivered.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }

    /// Sets the gauges from the ledger.
    pub fn publish(&self) {
        let s = self.snapshot();
        self.handles.age.set(s.oldest_age.as_secs_f64());
        self.handles.events.set(s.events as f64);
        self.handles.bytes.set(s.bytes as f64);
    }
}

/// One tracked batch; settles its ledger entry once.
#[derive(Debug)]
pub struct LagEntry {
    lag: Arc<SourceLag>,
    seq: u64,
    accepted: Instant,
    done: bool,
}

impl LagEntry {
    /// Settles the batch: `delivered` records its delivery time too.
    pub fn settle(mut self, delivered: bool) {
        self.finish(delivered);
    }

    fn finish(&mut self, delivered: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if delivered {
            let took = Instant::now().saturating_duration_since(self.accepted);
            self.lag.handles.delivery.record(took.as_secs_f64());
        }
        self.lag.settle(self.seq, delivered);
    }
}

impl Drop for LagEntry {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Where an ack keeps the lag entry of the batch it belongs to.
pub(crate) type LagSlot = OnceLock<LagEntry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn out_of_order_verdicts_keep_the_oldest_unsettled() {
        let lag = SourceLag::new("t");
        let t0 = Instant::now();
        let a = lag.track(t0, 1, 10);
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = lag.track(Instant::now(), 2, 20);
        tokio::time::advance(Duration::from_secs(1)).await;
        let c = lag.track(Instant::now(), 3, 30);
        tokio::time::advance(Duration::from_secs(1)).await;
        b.settle(true);
        let s = lag.snapshot();
        assert_eq!(
            (s.oldest_age, s.batches, s.events, s.bytes),
            (Duration::from_secs(3), 2, 4, 40)
        );
        a.settle(false);
        let s = lag.snapshot();
        assert_eq!(
            (s.oldest_age, s.batches, s.events),
            (Duration::from_secs(1), 1, 3)
        );
        assert_eq!((s.delivered, s.failed), (1, 1));
        c.settle(true);
        let s = lag.snapshot();
        assert_eq!(
            (s.oldest_age, s.batches, s.events, s.bytes),
            (Duration::ZERO, 0, 0, 0)
        );
        assert!(lag.lock().entries.is_empty(), "settled prefix popped");
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_acceptance_counts_even_when_sent_later() {
        let lag = SourceLag::new("t");
        let _a = lag.track(Instant::now(), 1, 0);
        let _b = lag.track(Instant::now() - Duration::from_secs(5), 1, 0);
        assert_eq!(lag.snapshot().oldest_age, Duration::from_secs(5));
    }

    #[test]
    fn gauges_are_published_at_render() {
        let exporter = crate::PrometheusExporter::new_local();
        let lag = metrics::with_local_recorder(exporter.recorder(), || SourceLag::new("lagged"));
        let text = exporter.render();
        assert!(
            text.contains("spate_source_oldest_unacked_age_seconds{source=\"lagged\"} 0"),
            "{text}"
        );
        let _entry = lag.track(Instant::now(), 7, 70);
        let text = exporter.render();
        assert!(
            text.contains("spate_source_inflight_events{source=\"lagged\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("spate_source_inflight_bytes{source=\"lagged\"} 70"),
            "{text}"
        );
    }
}
