//! Taps: copies of the batches passing a stage of the pipeline, for
//! `spate tap` (`GET /v1/tap`) to show a running service's events.
//!
//! Each stage has one process-wide [`TapPoint`] ([`point`]). A stage calls
//! [`TapPoint::offer`] with what it handles; when nobody listens that is one
//! relaxed atomic load and nothing else. A listener [`subscribe`](TapPoint::subscribe)s
//! and gets a bounded channel of [`TapItem`]s (a [`LogBatch`] shares its
//! Arrow buffers, so a copy is a few reference counts).
//!
//! # Backpressure
//!
//! None: a tap never slows the pipeline. An offer to a listener whose
//! channel is full is dropped (`try_send`), and the events it held are
//! counted in `spate_tap_dropped_events_total{stage}`. What a listener sees
//! is therefore a sample when it reads slower than the stage runs.
//!
//! # Shutdown
//!
//! Dropping a [`TapSubscription`] (the HTTP response ends, the client went
//! away) removes its listener; when the last one goes, offers are free again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::alerts::record::AlertRecord;
use crate::log_batch::LogBatch;

/// A stage that can be tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TapStage {
    /// Events as the decoder emits them (decoded, classified, enriched).
    Decode,
    /// Events as the lake writers receive them.
    Lake,
    /// Events as the hot writer receives them (before its severity filter).
    Hot,
    /// Alert notices as the alert router decides them.
    Alerts,
}

impl TapStage {
    /// Every stage, in pipeline order.
    pub const ALL: [TapStage; 4] = [
        TapStage::Decode,
        TapStage::Lake,
        TapStage::Hot,
        TapStage::Alerts,
    ];

    /// The name in URLs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            TapStage::Decode => "decode",
            TapStage::Lake => "lake",
            TapStage::Hot => "hot",
            TapStage::Alerts => "alerts",
        }
    }

    /// The stage of a name ([`TapStage::as_str`]).
    ///
    /// ```
    /// use spate_operators::tap::TapStage;
    /// assert_eq!(TapStage::parse("lake"), Some(TapStage::Lake));
    /// assert_eq!(TapStage::parse("nope"), None);
    /// ```
    pub fn parse(name: &str) -> Option<TapStage> {
        TapStage::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a tap carries.
#[derive(Debug, Clone)]
pub enum TapItem {
    /// Events (decode, lake, hot).
    Events(LogBatch),
    /// Alert notices (alerts).
    Alerts(Arc<Vec<AlertRecord>>),
}

impl TapItem {
    /// Events or notices held.
    pub fn len(&self) -> usize {
        match self {
            TapItem::Events(batch) => spate_engine::Payload::len(batch),
            TapItem::Alerts(alerts) => alerts.len(),
        }
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The listeners of one stage.
#[derive(Debug)]
pub struct TapPoint {
    stage: TapStage,
    /// Listeners connected: the only thing the hot path reads.
    listeners: AtomicUsize,
    next_id: AtomicU64,
    senders: Mutex<Vec<(u64, mpsc::Sender<TapItem>)>>,
}

static POINTS: [TapPoint; 4] = [
    TapPoint::new(TapStage::Decode),
    TapPoint::new(TapStage::Lake),
    TapPoint::new(TapStage::Hot),
    TapPoint::new(TapStage::Alerts),
];

/// The process-wide tap point of `stage`.
pub fn point(stage: TapStage) -> &'static TapPoint {
    &POINTS[stage.index()]
}

impl TapPoint {
    /// A point without listeners (the process-wide ones are [`point`]).
    pub const fn new(stage: TapStage) -> Self {
        TapPoint {
            stage,
            listeners: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            senders: Mutex::new(Vec::new()),
        }
    }

    /// Somebody listens: the one check a stage makes before building an
    /// item (a relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) != 0
    }

    /// Offers the item `make` builds to every listener, when there is one;
    /// never waits. A full listener misses it (counted).
    #[inline]
    pub fn offer(&self, make: impl FnOnce() -> TapItem) {
        if self.active() {
            self.send(make());
        }
    }

    #[cold]
    fn send(&self, item: TapItem) {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for (_, sender) in senders.iter() {
            if sender.try_send(item.clone()).is_err() {
                metrics::counter!("spate_tap_dropped_events_total", "stage" => self.stage.as_str())
                    .increment(item.len() as u64);
            }
        }
    }

    /// Adds a listener whose channel holds `capacity` items at most.
    pub fn subscribe(&'static self, capacity: usize) -> TapSubscription {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.push((id, sender));
        self.listeners.store(senders.len(), Ordering::Relaxed);
        metrics::gauge!("spate_tap_listeners", "stage" => self.stage.as_str())
            .set(senders.len() as f64);
        TapSubscription {
            point: self,
            id,
            receiver,
        }
    }

    fn unsubscribe(&self, id: u64) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.retain(|(i, _)| *i != id);
        self.listeners.store(senders.len(), Ordering::Relaxed);
        metrics::gauge!("spate_tap_listeners", "stage" => self.stage.as_str())
            .set(senders.len() as f64);
    }
}

/// One listener of a [`TapPoint`]; dropping it stops the copies.
#[derive(Debug)]
pub struct TapSubscription {
    point: &'static TapPoint,
    id: u64,
    receiver: mpsc::Receiver<TapItem>,
}

impl TapSubscription {
    /// The next item; `None` never comes while the point lives (it is static).
    pub async fn recv(&mut self) -> Option<TapItem> {
        self.receiver.recv().await
    }
}

impl Drop for TapSubscription {
    fn drop(&mut self) {
        self.point.unsubscribe(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(n: usize) -> TapItem {
        let record = AlertRecord {
            id: "r:s:0:firing".into(),
            rule: "r".into(),
            service: "s".into(),
            state: crate::alerts::record::AlertState::Firing,
            severity: "ERROR".into(),
            window_start_ms: 0,
            window_end_ms: 1,
            raised_at_ms: 1,
            value: 1.0,
            threshold: 1.0,
            message: "m".into(),
        };
        TapItem::Alerts(Arc::new(vec![record; n]))
    }

    #[test]
    fn offers_cost_nothing_without_listeners() {
        static POINT: TapPoint = TapPoint::new(TapStage::Decode);
        let mut built = false;
        POINT.offer(|| {
            built = true;
            alerts(1)
        });
        assert!(!built, "nothing is built while nobody listens");
        assert!(!POINT.active());
    }

    #[tokio::test]
    async fn a_full_listener_misses_items_without_blocking() {
        static POINT: TapPoint = TapPoint::new(TapStage::Alerts);
        let mut listener = POINT.subscribe(2);
        assert!(POINT.active());
        // Far more offers than the channel holds: none of them waits, and
        // what does not fit is counted.
        let exporter = spate_engine::PrometheusExporter::new_local();
        metrics::with_local_recorder(exporter.recorder(), || {
            for _ in 0..1000 {
                POINT.offer(|| alerts(3));
            }
        });
        let mut received = 0;
        while let Ok(item) = listener.receiver.try_recv() {
            received += item.len();
        }
        assert_eq!(
            received, 6,
            "the channel kept its capacity, the rest dropped"
        );
        let text = exporter.render();
        assert!(
            text.contains("spate_tap_dropped_events_total{stage=\"alerts\"} 2994"),
            "{text}"
        );
        // Reading again makes room for new offers.
        POINT.offer(|| alerts(1));
        assert_eq!(listener.recv().await.unwrap().len(), 1);
        drop(listener);
        assert!(!POINT.active(), "the last listener gone, offers are free");
    }
}
