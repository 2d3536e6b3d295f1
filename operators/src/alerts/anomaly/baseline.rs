//! The baseline of one anomaly series: a seasonal EWMA (additive
//! Holt–Winters without trend) with a per-slot deviation, robust updates and
//! a count-noise floor. Pure: the caller passes every window in order.
//!
//! For a window starting at `t`, in seasonal slot `h` (the UTC hour of day,
//! or of week, or the only slot):
//!
//! ```text
//! expected = level + season[h]
//! scale    = max(1.25 × dev[h], floor(expected))    1.25 × mean |error| ≈ σ
//! band     = expected ± k × scale                   (the lower edge at least 0)
//! ```
//!
//! then the error `e = value − expected`, clipped to `±k × scale` once the
//! baseline is ready, updates
//!
//! ```text
//! level   += α × e
//! season[h] += γ × (1 − α) × e
//! dev[h]  += γ × (|e| − dev[h])
//! ```
//!
//! with `α = 1 − exp(−window / τ_level)` (`τ_level` one day, six hours
//! without seasonality) and `γ` such that a slot's season and deviation have
//! a time constant of three periods (three days, or three weeks). The first
//! value seen in a slot initialises its season (`value − level`), so one
//! period is enough to learn the shape. `floor` is the noise a count or a
//! rate has anyway: `√expected` for counts (Poisson), `√(p(1 − p)/n)` for a
//! rate `p` over `n` events, so a quiet, regular series does not fire on one
//! event more.

use serde::{Deserialize, Serialize};

use super::{AnomalySpec, Direction, Noise, Seasonality};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// σ of a normal distribution over its mean absolute deviation (√(π/2)).
const SIGMA_PER_MEAN_ABS_DEV: f64 = 1.2533;

/// The learnt state of one series (one rule, one service). Serialized as
/// JSON into the hot store, so it survives a restart and is shared by the
/// processes of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// What the series measures (metric, tag, seasonality): a stored
    /// baseline of another series is not resumed.
    pub series: String,
    /// The level, without the seasonal part.
    pub level: f64,
    /// Seasonal offset per slot.
    pub season: Vec<f64>,
    /// Mean absolute error per slot.
    pub dev: Vec<f64>,
    /// Windows trained per slot.
    pub seen: Vec<u32>,
    /// Start of the first window trained, UTC ms.
    pub first_ms: Option<i64>,
    /// Every window starting before this has been trained, UTC ms.
    pub trained_until_ms: i64,
    /// Windows trained so far (what a conditional save compares).
    pub updates: u64,
}

/// What a baseline says about one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The value measured.
    pub value: f64,
    /// What the baseline expected; `None` before it is ready (too little
    /// history, or a slot never seen).
    pub expected: Option<f64>,
    /// Lower edge of the band (0 when not ready).
    pub lower: f64,
    /// Upper edge of the band (0 when not ready).
    pub upper: f64,
    /// The value is above the band (and `direction` watches spikes).
    pub spike: bool,
    /// The value is below the band (and `direction` watches drops).
    pub drop: bool,
}

impl Verdict {
    /// Whether the anomaly condition holds.
    pub fn holds(&self) -> bool {
        self.spike || self.drop
    }

    /// The band edge crossed (or, when none, the upper edge).
    pub fn edge(&self) -> f64 {
        if self.drop { self.lower } else { self.upper }
    }
}

/// The constants of one rule's baselines, derived from its spec and the
/// window size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    k: f64,
    min_history_ms: i64,
    seasonality: Seasonality,
    direction: Direction,
    window_ms: i64,
    alpha: f64,
    gamma: f64,
}

impl Params {
    /// The constants for `spec` over windows of `window_ms`.
    pub fn new(spec: &AnomalySpec, window_ms: i64) -> Self {
        let window_ms = window_ms.max(1);
        let w = window_ms as f64;
        let (level_tau_ms, gamma) = match spec.seasonality {
            Seasonality::None => (6 * HOUR_MS, 1.0 - (-w / DAY_MS as f64).exp()),
            Seasonality::Daily | Seasonality::Weekly => {
                // Observations of one slot per period: one per window of the
                // hour; three periods of them make the time constant.
                let per_period = (HOUR_MS as f64 / w).max(1.0);
                (DAY_MS, 1.0 - (-1.0 / (3.0 * per_period)).exp())
            }
        };
        Params {
            k: spec.k,
            min_history_ms: spec.min_history_ms,
            seasonality: spec.seasonality,
            direction: spec.direction,
            window_ms,
            alpha: 1.0 - (-w / level_tau_ms as f64).exp(),
            gamma,
        }
    }
}

impl Baseline {
    /// A baseline that has seen nothing, for the series named `series`.
    pub fn new(series: impl Into<String>, seasonality: Seasonality) -> Self {
        let slots = seasonality.slots();
        Baseline {
            series: series.into(),
            level: 0.0,
            season: vec![0.0; slots],
            dev: vec![0.0; slots],
            seen: vec![0; slots],
            first_ms: None,
            trained_until_ms: i64::MIN,
            updates: 0,
        }
    }

    /// Whether this stored state can be resumed for `series` with
    /// `seasonality` (same series, same number of slots).
    pub fn fits(&self, series: &str, seasonality: Seasonality) -> bool {
        let slots = seasonality.slots();
        self.series == series
            && self.season.len() == slots
            && self.dev.len() == slots
            && self.seen.len() == slots
            && self.level.is_finite()
    }

    /// Whether the window starting at `window_start_ms` was trained already.
    pub fn trained(&self, window_start_ms: i64) -> bool {
        window_start_ms < self.trained_until_ms
    }

    /// Judges `value` of the window starting at `window_start_ms` against
    /// the band, without learning from it.
    pub fn judge(&self, p: &Params, window_start_ms: i64, value: f64, noise: Noise) -> Verdict {
        let slot = p.seasonality.slot(window_start_ms);
        let history = match self.first_ms {
            Some(first) => window_start_ms.saturating_sub(first),
            None => 0,
        };
        let mut verdict = Verdict {
            value,
            expected: None,
            lower: 0.0,
            upper: 0.0,
            spike: false,
            drop: false,
        };
        if self.seen[slot] == 0 || history < p.min_history_ms {
            return verdict;
        }
        let expected = (self.level + self.season[slot]).max(0.0);
        let scale = self.scale(slot, expected, noise);
        verdict.expected = Some(expected);
        verdict.lower = (expected - p.k * scale).max(0.0);
        verdict.upper = expected + p.k * scale;
        verdict.spike = p.direction.watches_spikes() && value > verdict.upper;
        verdict.drop = p.direction.watches_drops() && value < verdict.lower;
        verdict
    }

    fn scale(&self, slot: usize, expected: f64, noise: Noise) -> f64 {
        (SIGMA_PER_MEAN_ABS_DEV * self.dev[slot]).max(noise.floor(expected))
    }

    /// Judges the window starting at `window_start_ms`, then learns from it
    /// (robustly: once the baseline is ready the error is clipped to the
    /// band, so a spike or an outage moves it little). A window already
    /// trained is only judged.
    pub fn observe(
        &mut self,
        p: &Params,
        window_start_ms: i64,
        value: f64,
        noise: Noise,
    ) -> Verdict {
        let verdict = self.judge(p, window_start_ms, value, noise);
        if self.trained(window_start_ms) || !value.is_finite() {
            return verdict;
        }
        let slot = p.seasonality.slot(window_start_ms);
        if self.first_ms.is_none() {
            self.first_ms = Some(window_start_ms);
            self.level = value;
        }
        if self.seen[slot] == 0 {
            // One period teaches the shape: the slot starts where it is.
            self.season[slot] = value - self.level;
        } else {
            let expected = self.level + self.season[slot];
            let mut error = value - expected;
            if verdict.expected.is_some() {
                let limit = p.k * self.scale(slot, expected.max(0.0), noise);
                error = error.clamp(-limit, limit);
            }
            self.level += p.alpha * error;
            self.season[slot] += p.gamma * (1.0 - p.alpha) * error;
            self.dev[slot] += p.gamma * (error.abs() - self.dev[slot]);
        }
        self.seen[slot] = self.seen[slot].saturating_add(1);
        self.trained_until_ms = window_start_ms.saturating_add(p.window_ms);
        self.updates += 1;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::anomaly::Metric;

    const W: i64 = 300_000;

    fn spec(seasonality: Seasonality, direction: Direction) -> AnomalySpec {
        AnomalySpec {
            metric: Metric::Events,
            k: 4.0,
            min_history_ms: 2 * DAY_MS,
            seasonality,
            direction,
        }
    }

    /// A deterministic noise sample in [-1, 1).
    fn jitter(i: i64) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    /// Events per window at `t`: 200 at 03:00 UTC, 2 000 at 15:00, with
    /// noise of about √mean.
    fn daily(t: i64) -> f64 {
        let hours = (t.rem_euclid(DAY_MS)) as f64 / HOUR_MS as f64;
        let mean = 1100.0 - 900.0 * ((hours - 3.0) / 24.0 * std::f64::consts::TAU).cos();
        (mean + mean.sqrt() * 1.7 * jitter(t / W)).round()
    }

    fn trained_week(direction: Direction) -> (Baseline, Params) {
        let s = spec(Seasonality::Daily, direction);
        let p = Params::new(&s, W);
        let mut b = Baseline::new("events", Seasonality::Daily);
        for i in 0..(7 * DAY_MS / W) {
            let t = i * W;
            let v = b.observe(&p, t, daily(t), Noise::Count);
            assert!(!v.holds(), "normal window at {t} fired: {v:?}");
        }
        (b, p)
    }

    #[test]
    fn learns_the_daily_shape_and_flags_a_night_spike_not_the_peak() {
        let (b, p) = trained_week(Direction::Both);
        let day8 = 7 * DAY_MS;
        let night = day8 + 3 * HOUR_MS;
        let peak = day8 + 15 * HOUR_MS;
        let normal_night = b.judge(&p, night, daily(night), Noise::Count);
        assert!(!normal_night.holds(), "{normal_night:?}");
        let expected = normal_night.expected.unwrap();
        assert!((expected - 200.0).abs() < 40.0, "expected {expected}");
        // Five times the night's level is still half the daily peak.
        let spike = b.judge(&p, night, 1000.0, Noise::Count);
        assert!(spike.spike && !spike.drop, "{spike:?}");
        assert!(spike.upper < 1000.0 && spike.upper > 200.0);
        let normal_peak = b.judge(&p, peak, daily(peak), Noise::Count);
        assert!(!normal_peak.holds(), "{normal_peak:?}");
        let zero = b.judge(&p, peak, 0.0, Noise::Count);
        assert!(zero.drop && !zero.spike, "{zero:?}");
        assert_eq!(zero.edge(), zero.lower);
    }

    #[test]
    fn direction_limits_what_fires() {
        let (b, p) = trained_week(Direction::Up);
        let peak = 7 * DAY_MS + 15 * HOUR_MS;
        assert!(!b.judge(&p, peak, 0.0, Noise::Count).holds());
        let (b, p) = trained_week(Direction::Down);
        assert!(!b.judge(&p, peak, 1.0e6, Noise::Count).holds());
        assert!(b.judge(&p, peak, 0.0, Noise::Count).holds());
    }

    #[test]
    fn nothing_fires_before_the_minimum_history() {
        let s = spec(Seasonality::None, Direction::Both);
        let p = Params::new(&s, W);
        let mut b = Baseline::new("events", Seasonality::None);
        for i in 0..(2 * DAY_MS / W) {
            let v = b.observe(
                &p,
                i * W,
                if i % 2 == 0 { 10.0 } else { 1000.0 },
                Noise::Count,
            );
            assert!(v.expected.is_none() && !v.holds());
        }
        // Ready now: a flat series of 100 flags 10 000.
        let mut b = Baseline::new("events", Seasonality::None);
        for i in 0..(2 * DAY_MS / W) {
            b.observe(&p, i * W, 100.0, Noise::Count);
        }
        let v = b.observe(&p, 2 * DAY_MS, 10_000.0, Noise::Count);
        assert!(v.spike);
        // The clipped update barely moved it.
        let expected = b
            .judge(&p, 2 * DAY_MS + W, 100.0, Noise::Count)
            .expected
            .unwrap();
        assert!((expected - 100.0).abs() < 1.0, "{expected}");
    }

    #[test]
    fn a_trained_window_is_not_learnt_twice_and_the_series_must_fit() {
        let s = spec(Seasonality::Weekly, Direction::Both);
        let p = Params::new(&s, W);
        let mut b = Baseline::new("errors", Seasonality::Weekly);
        b.observe(&p, 0, 5.0, Noise::Count);
        b.observe(&p, W, 7.0, Noise::Count);
        let before = b.clone();
        b.observe(&p, 0, 500.0, Noise::Count);
        assert_eq!(b, before);
        assert_eq!(b.updates, 2);
        assert_eq!(b.trained_until_ms, 2 * W);
        assert!(b.fits("errors", Seasonality::Weekly));
        assert!(!b.fits("errors", Seasonality::Daily));
        assert!(!b.fits("events", Seasonality::Weekly));
    }

    #[test]
    fn rate_noise_is_binomial() {
        let floor = Noise::Rate { events: 10_000 }.floor(0.01);
        assert!((floor - 0.000_995).abs() < 1e-5, "{floor}");
        assert_eq!(Noise::Count.floor(0.0), 1.0);
        assert_eq!(Noise::Count.floor(400.0), 20.0);
    }
}
