//! Counting a send run while it goes, and the report at its end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::SeqRanges;

/// Counters shared by the scheduler and the senders while a run goes.
#[derive(Debug)]
pub(crate) struct Tally {
    pub sent: AtomicU64,
    pub acknowledged: AtomicU64,
    pub rejected: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
    pub failed: AtomicU64,
    pub dropped_by_generator: AtomicU64,
    /// Batches waiting for a sender.
    pub queued: AtomicU64,
    /// Scheduled-send → accepted, microseconds, one value per batch.
    latency_us: Mutex<Histogram<u64>>,
    acknowledged_per_second: Mutex<Vec<u64>>,
    acknowledged_seqs: Mutex<SeqRanges>,
    last_error: Mutex<Option<String>>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped_by_generator: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            latency_us: Mutex::new(new_histogram()),
            acknowledged_per_second: Mutex::new(Vec::new()),
            acknowledged_seqs: Mutex::default(),
            last_error: Mutex::new(None),
        }
    }
}

/// A histogram that grows to any value (3 significant digits).
pub(crate) fn new_histogram() -> Histogram<u64> {
    let mut histogram = Histogram::new(3).expect("3 significant digits are valid");
    histogram.auto(true);
    histogram
}

/// Records `value`, growing the histogram as needed (clamped only past what it can hold).
pub(crate) fn record(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Tally {
    /// Counts a batch of `events` from sequence number `first_seq`, accepted `at` after the
    /// start, `latency` after it was due.
    pub fn acknowledge(&self, first_seq: u64, events: u64, at: Duration, latency: Duration) {
        add(&self.acknowledged, events);
        if let Ok(mut seqs) = self.acknowledged_seqs.lock() {
            seqs.insert(first_seq, first_seq + events);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut histogram) = self.latency_us.lock() {
            record(&mut histogram, micros);
        }
        if let Ok(mut seconds) = self.acknowledged_per_second.lock() {
            let slot = at.as_secs() as usize;
            if seconds.len() <= slot {
                seconds.resize(slot + 1, 0);
            }
            seconds[slot] += events;
        }
    }

    /// Remembers the latest error text for the report.
    pub fn note_error(&self, error: &dyn std::fmt::Display) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error.to_string());
        }
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn latency(&self) -> LatencySummary {
        self.latency_us
            .lock()
            .map(|h| LatencySummary::from_micros(&h))
            .unwrap_or_default()
    }

    pub(crate) fn acknowledged_per_second(&self) -> Vec<u64> {
        self.acknowledged_per_second
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub(crate) fn acknowledged_seqs(&self) -> SeqRanges {
        self.acknowledged_seqs
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

/// Percentiles of a latency histogram, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values recorded (batches for `send`, events for `verify`).
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl LatencySummary {
    /// From a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Self {
        Self::scaled(histogram, 1e-3)
    }

    /// From a histogram of milliseconds.
    pub fn from_millis(histogram: &Histogram<u64>) -> Self {
        Self::scaled(histogram, 1.0)
    }

    fn scaled(histogram: &Histogram<u64>, to_ms: f64) -> Self {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: histogram.len(),
            p50_ms: histogram.value_at_quantile(0.50) as f64 * to_ms,
            p99_ms: histogram.value_at_quantile(0.99) as f64 * to_ms,
            max_ms: histogram.max() as f64 * to_ms,
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Seconds from the start.
    pub second: u64,
    /// Events the schedule made due in this second (dropped ones included).
    pub offered: u64,
    /// Events whose batch was accepted in this second.
    pub acknowledged: u64,
}

/// What a `loadgen send` run did; `--json` prints it as one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The run id stamped on every event (`lg_run`).
    pub run_id: String,
    /// Workload short name (`w1`).
    pub workload: String,
    /// Profile name.
    pub profile: String,
    /// The target as it was addressed.
    pub target: String,
    /// Nominal rate R, events per second.
    pub rate: f64,
    /// Length of the schedule, seconds.
    pub duration_s: f64,
    /// Events per batch.
    pub batch_events: u64,
    /// Concurrent senders.
    pub concurrency: usize,
    /// Events the schedule offered.
    pub scheduled: u64,
    /// Events handed to the target at least once.
    pub sent: u64,
    /// Events the target accepted.
    pub acknowledged: u64,
    /// Saturation answers (HTTP 429/503), each followed by a retry after `Retry-After`.
    pub rejected: u64,
    /// Deliveries repeated after a rejection or an error.
    pub retries: u64,
    /// Failed deliveries other than rejections (status, connection, write errors).
    pub errors: u64,
    /// Events given up on: refused by the target, or still failing after the retries.
    pub failed: u64,
    /// Events never sent because more batches than allowed were already overdue.
    pub dropped_by_generator: u64,
    /// Whether the run was interrupted (Ctrl-C) before the schedule ended.
    pub interrupted: bool,
    /// Seconds from the start until the last batch was settled.
    pub elapsed_s: f64,
    /// `acknowledged` / max(`duration_s`, `elapsed_s`).
    pub achieved_rate_per_s: f64,
    /// Scheduled send time → acceptance, per batch: queueing in loadgen counts, so a slow
    /// target shows (no coordinated omission).
    pub latency: LatencySummary,
    /// Offered and acknowledged events per second of the run.
    pub per_second: Vec<Second>,
    /// The sequence numbers (`lg_seq`) of the events the target accepted, as `[start, end)`
    /// ranges: `loadgen verify --send-report` counts only these as lost when missing.
    pub acknowledged_seqs: SeqRanges,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

/// Zips the offered and acknowledged series into one list of seconds.
pub(crate) fn per_second(offered: &[u64], acknowledged: &[u64]) -> Vec<Second> {
    let len = offered.len().max(acknowledged.len());
    (0..len)
        .map(|i| Second {
            second: i as u64,
            offered: offered.get(i).copied().unwrap_or(0),
            acknowledged: acknowledged.get(i).copied().unwrap_or(0),
        })
        .collect()
}

/// Acknowledged events per second over the longer of the schedule and the run.
pub(crate) fn achieved_rate(acknowledged: u64, duration_s: f64, elapsed_s: f64) -> f64 {
    let seconds = duration_s.max(elapsed_s);
    if seconds > 0.0 {
        acknowledged as f64 / seconds
    } else {
        0.0
    }
}

impl Report {
    /// The report as a few human-readable lines.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "run {} ({} {} at {} ev/s for {:.1} s to {}){}\n\
             scheduled {}  sent {}  acknowledged {}  failed {}  dropped_by_generator {}\n\
             rejected {}  errors {}  retries {}\n\
             achieved {:.0} ev/s over {:.1} s; latency scheduled->accepted p50 {:.1} ms  \
             p99 {:.1} ms  max {:.1} ms ({} batches)",
            self.run_id,
            self.workload,
            self.profile,
            self.rate,
            self.duration_s,
            self.target,
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            },
            self.scheduled,
            self.sent,
            self.acknowledged,
            self.failed,
            self.dropped_by_generator,
            self.rejected,
            self.errors,
            self.retries,
            self.achieved_rate_per_s,
            self.elapsed_s,
            self.latency.p50_ms,
            self.latency.p99_ms,
            self.latency.max_ms,
            self.latency.count,
        );
        if self.dropped_by_generator > 0 {
            text.push_str(
                "\nnote: the target fell behind: batches overdue beyond --max-overdue were \
                 dropped by loadgen, not sent",
            );
        }
        if let Some(error) = &self.last_error {
            text.push_str("\nlast error: ");
            text.push_str(error);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_in_milliseconds() {
        let tally = Tally::default();
        for ms in 1..=100u64 {
            tally.acknowledge(
                ms * 10,
                10,
                Duration::from_millis(ms * 10),
                Duration::from_millis(ms),
            );
        }
        let latency = tally.latency();
        assert_eq!(latency.count, 100);
        assert!((latency.p50_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_ms - 99.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 100.0).abs() < 0.1, "{latency:?}");
        assert_eq!(Tally::get(&tally.acknowledged), 1_000);
        assert_eq!(tally.acknowledged_seqs().ranges(), &[[10, 1_010]]);
        // 100 acks spread over 0.01 s .. 1.0 s: 99 in second 0, one in second 1.
        assert_eq!(tally.acknowledged_per_second(), vec![990, 10]);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        assert_eq!(
            LatencySummary::from_millis(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn series_and_rate() {
        let seconds = per_second(&[100, 100, 100], &[0, 150, 100, 50]);
        assert_eq!(seconds.len(), 4);
        assert_eq!(
            seconds[3],
            Second {
                second: 3,
                offered: 0,
                acknowledged: 50
            }
        );
        // The schedule is the floor of the divisor: finishing early does not inflate the rate.
        assert_eq!(achieved_rate(300, 3.0, 2.5), 100.0);
        assert_eq!(achieved_rate(300, 3.0, 6.0), 50.0);
        assert_eq!(achieved_rate(0, 0.0, 0.0), 0.0);
    }
}
