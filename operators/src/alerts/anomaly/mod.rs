//! Anomaly rules (`kind = "anomaly"`): a count or rate of a service compared
//! with what is normal for it at that time of day (or week), instead of a
//! fixed threshold. A "> 10 errors" rule is wrong both for a service that
//! always logs 500 and for one that logs 2; a baseline learns each.
//!
//! # The method, and why
//!
//! Each (rule, service) has a [`Baseline`]: a **seasonal EWMA**, i.e.
//! additive Holt–Winters without a trend term: a level, one seasonal offset
//! per slot (the UTC hour of the day with `seasonality = "daily"`, of the
//! week with `"weekly"`, one slot with `"none"`), and per slot the mean
//! absolute error. A window is anomalous when its value is outside
//! `expected ± k × scale`, where `scale` is the slot's error turned into a
//! standard deviation (× 1.25), but never below the noise every count has
//! anyway (`√expected`, Poisson; for rates the binomial `√(p(1 − p)/n)`).
//! See [`baseline`] for the exact updates.
//!
//! Why this and not a median/MAD of the same hour over the last days:
//!
//! - **Constant, small state.** 24 (or 168) slots of three numbers per
//!   series, whatever the window size; a median needs the raw values of
//!   every window of every slot (thousands per series with 5-minute windows,
//!   more with weekly seasonality). The state is stored after every step in
//!   the hot store (one SQLite row, one DynamoDB item well under its size
//!   limit) and read back by every process sharing the windows.
//! - **Level and season apart.** A service that doubles its traffic moves
//!   the level, which every hour shares: the baseline follows within about a
//!   day, where per-hour medians would each need days of their own hour.
//! - **Robust anyway.** Once ready, the error a window teaches is clipped to
//!   the band, so a spike or an outage barely moves the baseline (the
//!   robustness a median gives), and a lasting change is still learnt (the
//!   band widens a little each window until it covers the new normal).
//! - **One period to learn the shape.** The first value seen in a slot sets
//!   that slot's offset, so after one day the daily shape is there; the next
//!   ones refine it. `min_history` (default two periods: 2 days daily, 14
//!   days weekly, 1 day without seasonality) keeps it quiet until then.
//!
//! Both directions are watched by default (`direction = "both"`): a spike
//! above the band, and a drop below it, a service going quiet included (a
//! window without events counts 0 for a service seen in the last 24 hours).
//! A rate rule (`metric = "error_rate"`) skips windows with fewer than
//! `min_events` events (default 100): they neither fire nor teach.
//!
//! # State across restarts and processes
//!
//! Baselines live in the hot store ([`store::BaselineStore`]: the SQLite
//! `baselines` table, or DynamoDB items with `[hot_dynamodb]`). The router
//! loads a series' baseline when it first evaluates it, and saves the ones
//! that learnt after every decision step, conditionally on the number of
//! windows the stored one had learnt: with shared windows, the processes
//! decide on the same merged counts, the first to save a step's learning
//! wins, the others reload (each process reloads the baselines it evaluates
//! at every step in shared mode). A window some other process already learnt
//! is judged but not learnt twice.

pub mod baseline;
#[cfg(test)]
mod replay_tests;
pub mod store;

use serde::{Deserialize, Serialize};

pub use self::baseline::{Baseline, Params, Verdict};
use super::record::WindowRecord;
use crate::event::Severity;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The period an anomaly baseline learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    /// A level only.
    None,
    /// One offset per UTC hour of the day.
    Daily,
    /// One offset per UTC hour of the week.
    Weekly,
}

impl Seasonality {
    /// Slots of the season.
    pub fn slots(self) -> usize {
        match self {
            Seasonality::None => 1,
            Seasonality::Daily => 24,
            Seasonality::Weekly => 168,
        }
    }

    /// The slot of a window starting at `ts_ms` (UTC).
    pub fn slot(self, ts_ms: i64) -> usize {
        let hour = ts_ms.div_euclid(HOUR_MS);
        hour.rem_euclid(self.slots() as i64) as usize
    }

    /// `none`, `daily` or `weekly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Seasonality::None => "none",
            Seasonality::Daily => "daily",
            Seasonality::Weekly => "weekly",
        }
    }

    /// History needed before firing when `min_history` is not set: two
    /// periods (one day without seasonality).
    pub fn default_min_history_ms(self) -> i64 {
        match self {
            Seasonality::None => DAY_MS,
            Seasonality::Daily => 2 * DAY_MS,
            Seasonality::Weekly => 14 * DAY_MS,
        }
    }
}

/// Which side of the band fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Above the band: spikes.
    Up,
    /// Below the band: drops, silence.
    Down,
    /// Either side.
    Both,
}

impl Direction {
    /// Spikes fire.
    pub fn watches_spikes(self) -> bool {
        matches!(self, Direction::Up | Direction::Both)
    }

    /// Drops fire.
    pub fn watches_drops(self) -> bool {
        matches!(self, Direction::Down | Direction::Both)
    }
}

/// What an anomaly rule measures in each window of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Every event.
    Events,
    /// INFO events (DEBUG and TRACE included).
    Info,
    /// WARNING events.
    Warning,
    /// ERROR events.
    Error,
    /// CRITICAL events.
    Critical,
    /// ERROR and CRITICAL events.
    Errors,
    /// (ERROR + CRITICAL) / events.
    ErrorRate,
    /// Events carrying the rule's `tag`.
    Tag,
}

impl Metric {
    /// The name used in messages (`errors`, `events tagged http_5xx`).
    pub fn describe(self, tag: Option<&str>) -> String {
        match self {
            Metric::Events => "events".into(),
            Metric::Info => "info events".into(),
            Metric::Warning => "warnings".into(),
            Metric::Error => "ERROR events".into(),
            Metric::Critical => "critical events".into(),
            Metric::Errors => "errors".into(),
            Metric::ErrorRate => "error rate".into(),
            Metric::Tag => format!("events tagged {}", tag.unwrap_or_default()),
        }
    }
}

/// A validated anomaly rule's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySpec {
    /// What is measured.
    pub metric: Metric,
    /// Width of the band, in standard deviations.
    pub k: f64,
    /// History (event time) before the rule may fire, ms.
    pub min_history_ms: i64,
    /// The period learnt.
    pub seasonality: Seasonality,
    /// Which side fires.
    pub direction: Direction,
}

impl AnomalySpec {
    /// The name of the series a baseline of this spec learns (stored with
    /// it: a baseline of another series is not resumed).
    pub fn series(&self, tag: Option<&str>) -> String {
        let metric = serde_json::to_value(self.metric)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match tag {
            Some(tag) if self.metric == Metric::Tag => {
                format!("{metric}:{tag}:{}", self.seasonality.as_str())
            }
            _ => format!("{metric}:{}", self.seasonality.as_str()),
        }
    }
}

/// What kind of number a series holds, for its noise floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Noise {
    /// A count: Poisson noise, `√expected` (at least 1).
    Count,
    /// A rate over this many events: binomial noise.
    Rate {
        /// Events the rate is over.
        events: u64,
    },
}

impl Noise {
    pub(super) fn floor(self, expected: f64) -> f64 {
        match self {
            Noise::Count => expected.max(1.0).sqrt(),
            Noise::Rate { events } => {
                let p = expected.clamp(0.01, 0.99);
                (p * (1.0 - p) / events.max(1) as f64).sqrt()
            }
        }
    }
}

/// The value of `metric` in `window` (`None`: the service had no events in
/// it, which counts 0), and its kind of noise; `None` for a rate over fewer
/// than `min_events` events (neither judged nor learnt).
///
/// ```
/// use spate_operators::alerts::anomaly::{Metric, Noise, measure};
/// assert_eq!(measure(Metric::Errors, None, 100, None), Some((0.0, Noise::Count)));
/// assert_eq!(measure(Metric::ErrorRate, None, 100, None), None);
/// ```
pub fn measure(
    metric: Metric,
    tag: Option<&str>,
    min_events: u64,
    window: Option<&WindowRecord>,
) -> Option<(f64, Noise)> {
    let severity = |s: Severity| window.map_or(0, |w| w.severity[s.index()]) as f64;
    let count = |v: f64| Some((v, Noise::Count));
    match metric {
        Metric::Events => count(window.map_or(0, |w| w.events) as f64),
        Metric::Info => count(severity(Severity::Info)),
        Metric::Warning => count(severity(Severity::Warning)),
        Metric::Error => count(severity(Severity::Error)),
        Metric::Critical => count(severity(Severity::Critical)),
        Metric::Errors => count(severity(Severity::Error) + severity(Severity::Critical)),
        Metric::Tag => count(
            window
                .zip(tag)
                .and_then(|(w, t)| w.tags.get(t))
                .copied()
                .unwrap_or(0) as f64,
        ),
        Metric::ErrorRate => {
            let events = window.map_or(0, |w| w.events);
            if events < min_events.max(1) {
                return None;
            }
            let bad = severity(Severity::Error) + severity(Severity::Critical);
            Some((bad / events as f64, Noise::Rate { events }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_utc_hours() {
        assert_eq!(Seasonality::Daily.slot(3 * HOUR_MS + 59_000), 3);
        assert_eq!(Seasonality::Daily.slot(DAY_MS + HOUR_MS), 1);
        assert_eq!(Seasonality::Weekly.slot(DAY_MS + HOUR_MS), 25);
        assert_eq!(Seasonality::None.slot(12345), 0);
        assert_eq!(Seasonality::Daily.slot(-HOUR_MS), 23);
    }

    #[test]
    fn measures_counts_tags_and_rates() {
        let w = WindowRecord {
            window_start_ms: 0,
            window_end_ms: 300_000,
            service: "api".into(),
            events: 200,
            severity: [150, 20, 25, 5],
            tags: [("http_5xx".to_string(), 7)].into(),
        };
        assert_eq!(measure(Metric::Errors, None, 0, Some(&w)).unwrap().0, 30.0);
        assert_eq!(measure(Metric::Warning, None, 0, Some(&w)).unwrap().0, 20.0);
        assert_eq!(
            measure(Metric::Tag, Some("http_5xx"), 0, Some(&w))
                .unwrap()
                .0,
            7.0
        );
        let (rate, noise) = measure(Metric::ErrorRate, None, 100, Some(&w)).unwrap();
        assert_eq!((rate, noise), (0.15, Noise::Rate { events: 200 }));
        assert_eq!(measure(Metric::ErrorRate, None, 201, Some(&w)), None);
        let spec = AnomalySpec {
            metric: Metric::Tag,
            k: 4.0,
            min_history_ms: 0,
            seasonality: Seasonality::Weekly,
            direction: Direction::Both,
        };
        assert_eq!(spec.series(Some("http_5xx")), "tag:http_5xx:weekly");
    }
}
