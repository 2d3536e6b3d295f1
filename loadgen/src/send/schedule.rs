//! Open-loop schedules: when each batch of a run is due, from a rate profile.
//!
//! A profile is a rate function `r(t)` (events per second) over the run's duration `D`; its
//! integral `N(t)` is the number of events offered by time `t`. The run offers
//! `⌊N(D)⌋` events in batches of `batch_events` (the last one may be smaller), and batch `k`
//! (events `k·B ..`) is due at `N⁻¹(k·B)`: the instant its first event is due. Batch 0 is due
//! at `t = 0`. Due times never depend on how fast the target answers (open loop).
//!
//! | profile | rate `r(t)` | events |
//! | --- | --- | --- |
//! | `steady` | `R` | `R·D` |
//! | `ramp` | `R·t/D` (0 → R) | `R·D/2` |
//! | `spike` (W4) | `R` for 60 s, `10·R` for 30 s, `R` for 60 s | `420·R` |
//! | `sine` | `R·(1 + A·sin(2πt/P))` | about `R·D` |
//!
//! `spike` runs 150 s; a `--duration` given with it scales all three phases by `D / 150 s`
//! (so `--duration 15s` is 6 s, 3 s, 6 s).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Phases of the W4 spike: (rate multiple, seconds).
pub const SPIKE_PHASES: [(f64, f64); 3] = [(1.0, 60.0), (10.0, 30.0), (1.0, 60.0)];

/// Length of the unscaled W4 spike, seconds.
pub const SPIKE_SECONDS: f64 = 150.0;

/// Default amplitude of the sine profile, as a fraction of the rate.
pub const DEFAULT_SINE_AMPLITUDE: f64 = 0.5;

/// Default period of the sine profile.
pub const DEFAULT_SINE_PERIOD: Duration = Duration::from_secs(60);

/// The shape of the offered rate over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// A constant rate.
    Steady,
    /// From 0 up to the rate, linearly over the duration.
    Ramp,
    /// W4: the rate, ten times the rate, the rate again (60 s, 30 s, 60 s, scaled).
    Spike,
    /// Oscillates around the rate.
    Sine {
        /// Swing as a fraction of the rate, in `[0, 1]`.
        amplitude: f64,
        /// Length of one oscillation.
        period: Duration,
    },
}

impl Profile {
    /// The command-line name: `steady`, `ramp`, `spike` or `sine`.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Steady => "steady",
            Profile::Ramp => "ramp",
            Profile::Spike => "spike",
            Profile::Sine { .. } => "sine",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = String;

    /// Parses a name; `sine` gets the default amplitude and period.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "steady" => Ok(Profile::Steady),
            "ramp" => Ok(Profile::Ramp),
            "spike" => Ok(Profile::Spike),
            "sine" => Ok(Profile::Sine {
                amplitude: DEFAULT_SINE_AMPLITUDE,
                period: DEFAULT_SINE_PERIOD,
            }),
            _ => Err(format!(
                "unknown profile {s:?}: expected steady, ramp, spike or sine"
            )),
        }
    }
}

/// Why a schedule cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The rate is zero, negative or not a number.
    #[error("rate must be a positive number of events per second, got {0}")]
    Rate(f64),
    /// No duration for a profile that needs one, or a zero duration.
    #[error("profile {0} needs a positive --duration")]
    Duration(&'static str),
    /// A batch of zero events.
    #[error("batch size must be at least 1 event")]
    BatchSize,
    /// A sine amplitude outside `[0, 1]` or a zero period.
    #[error("sine needs an amplitude between 0 and 1 and a positive period")]
    Sine,
}

/// One batch of the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedBatch {
    /// Position of the batch in the run, from 0.
    pub index: u64,
    /// Position of its first event among all offered events.
    pub first_event: u64,
    /// Events in the batch.
    pub events: u64,
    /// When it is due, from the start of the run.
    pub due: Duration,
}

/// The open-loop plan of a run: which batches are due when.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    profile: Profile,
    rate: f64,
    seconds: f64,
    batch_events: u64,
    total_events: u64,
}

impl Schedule {
    /// A plan offering `rate` events per second shaped by `profile` over `duration`
    /// (optional for `spike` only), in batches of `batch_events`.
    pub fn new(
        profile: Profile,
        rate: f64,
        duration: Option<Duration>,
        batch_events: u64,
    ) -> Result<Self, ScheduleError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ScheduleError::Rate(rate));
        }
        if batch_events == 0 {
            return Err(ScheduleError::BatchSize);
        }
        if let Profile::Sine { amplitude, period } = profile
            && (!(0.0..=1.0).contains(&amplitude) || period.is_zero())
        {
            return Err(ScheduleError::Sine);
        }
        let seconds = match (profile, duration) {
            (_, Some(d)) if d.is_zero() => return Err(ScheduleError::Duration(profile.name())),
            (Profile::Spike, None) => SPIKE_SECONDS,
            (_, Some(d)) => d.as_secs_f64(),
            (_, None) => return Err(ScheduleError::Duration(profile.name())),
        };
        let mut schedule = Schedule {
            profile,
            rate,
            seconds,
            batch_events,
            total_events: 0,
        };
        schedule.total_events = (schedule.offered_by(seconds) + 1e-6).floor() as u64;
        Ok(schedule)
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The nominal rate `R`, events per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// How long the plan offers events.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.seconds)
    }

    /// Events per batch (the last batch may hold fewer).
    pub fn batch_events(&self) -> u64 {
        self.batch_events
    }

    /// Events offered over the whole run.
    pub fn total_events(&self) -> u64 {
        self.total_events
    }

    /// Number of batches.
    pub fn batch_count(&self) -> u64 {
        self.total_events.div_ceil(self.batch_events)
    }

    /// Spike phases scaled to the run: (rate multiple, seconds).
    fn spike_phases(&self) -> [(f64, f64); 3] {
        let scale = self.seconds / SPIKE_SECONDS;
        SPIKE_PHASES.map(|(multiple, secs)| (multiple, secs * scale))
    }

    /// The offered rate at `t` seconds, events per second.
    pub fn rate_at(&self, t: f64) -> f64 {
        if !(0.0..self.seconds).contains(&t) {
            return 0.0;
        }
        let r = self.rate;
        match self.profile {
            Profile::Steady => r,
            Profile::Ramp => r * t / self.seconds,
            Profile::Spike => {
                let mut start = 0.0;
                for (multiple, secs) in self.spike_phases() {
                    if t < start + secs {
                        return r * multiple;
                    }
                    start += secs;
                }
                r
            }
            Profile::Sine { amplitude, period } => {
                r * (1.0 + amplitude * (std::f64::consts::TAU * t / period.as_secs_f64()).sin())
            }
        }
    }

    /// `N(t)`: events offered from the start up to `t` seconds (not rounded).
    pub fn offered_by(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.seconds);
        let r = self.rate;
        match self.profile {
            Profile::Steady => r * t,
            Profile::Ramp => r * t * t / (2.0 * self.seconds),
            Profile::Spike => {
                let (mut start, mut events) = (0.0, 0.0);
                for (multiple, secs) in self.spike_phases() {
                    let within = (t - start).clamp(0.0, secs);
                    events += r * multiple * within;
                    start += secs;
                }
                events
            }
            Profile::Sine { amplitude, period } => {
                let p = period.as_secs_f64();
                let w = std::f64::consts::TAU / p;
                r * t + r * amplitude * (1.0 - (w * t).cos()) / w
            }
        }
    }

    /// `N⁻¹(n)`: the instant (seconds from the start) event `n` is due.
    pub fn due_of_event(&self, n: u64) -> f64 {
        let n = n as f64;
        let r = self.rate;
        let t = match self.profile {
            Profile::Steady => n / r,
            Profile::Ramp => (2.0 * self.seconds * n / r).sqrt(),
            Profile::Spike => {
                let (mut start, mut before) = (0.0, 0.0);
                let mut due = self.seconds;
                for (multiple, secs) in self.spike_phases() {
                    let in_phase = r * multiple * secs;
                    if n < before + in_phase {
                        due = start + (n - before) / (r * multiple);
                        break;
                    }
                    before += in_phase;
                    start += secs;
                }
                due
            }
            // N is continuous and non-decreasing: bisect.
            Profile::Sine { .. } => {
                let (mut lo, mut hi) = (0.0, self.seconds);
                for _ in 0..64 {
                    let mid = (lo + hi) / 2.0;
                    if self.offered_by(mid) < n {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                hi
            }
        };
        t.clamp(0.0, self.seconds)
    }

    /// Batch `index`, or `None` past the last one.
    pub fn batch(&self, index: u64) -> Option<PlannedBatch> {
        let first_event = index.checked_mul(self.batch_events)?;
        if first_event >= self.total_events {
            return None;
        }
        Some(PlannedBatch {
            index,
            first_event,
            events: self.batch_events.min(self.total_events - first_event),
            due: Duration::from_secs_f64(self.due_of_event(first_event)),
        })
    }

    /// Every batch, in due order.
    pub fn batches(&self) -> impl Iterator<Item = PlannedBatch> + '_ {
        (0..self.batch_count()).filter_map(|i| self.batch(i))
    }

    /// Events offered in each whole second of the run (by due time of their batch).
    pub fn offered_per_second(&self) -> Vec<u64> {
        let mut seconds = vec![0u64; self.seconds.ceil().max(1.0) as usize];
        for batch in self.batches() {
            // Nudged so that a due time computed as 74.999999999 s counts in second 75.
            let slot = ((batch.due.as_secs_f64() + 1e-6).floor() as usize).min(seconds.len() - 1);
            seconds[slot] += batch.events;
        }
        seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn steady_batches_are_evenly_spaced_from_zero() {
        let s = Schedule::new(Profile::Steady, 1000.0, Some(Duration::from_secs(10)), 500).unwrap();
        assert_eq!(s.total_events(), 10_000);
        let batches: Vec<_> = s.batches().collect();
        assert_eq!(batches.len(), 20);
        for (k, b) in batches.iter().enumerate() {
            assert_eq!(b.index, k as u64);
            assert_eq!(b.events, 500);
            assert!(close(secs(b.due), k as f64 * 0.5), "{b:?}");
        }
        assert_eq!(s.offered_per_second(), vec![1000; 10]);
    }

    #[test]
    fn the_last_batch_takes_the_remainder() {
        let s = Schedule::new(
            Profile::Steady,
            100.0,
            Some(Duration::from_millis(2_500)),
            60,
        )
        .unwrap();
        assert_eq!(s.total_events(), 250);
        let sizes: Vec<u64> = s.batches().map(|b| b.events).collect();
        assert_eq!(sizes, vec![60, 60, 60, 60, 10]);
        assert!(close(secs(s.batch(4).unwrap().due), 2.4));
        assert_eq!(s.batch(5), None);
    }

    #[test]
    fn ramp_offers_half_and_speeds_up() {
        let s = Schedule::new(Profile::Ramp, 1000.0, Some(Duration::from_secs(100)), 1000).unwrap();
        assert_eq!(s.total_events(), 50_000);
        // N(t) = R t² / 2D, so event n is due at sqrt(2 D n / R).
        assert!(close(secs(s.batch(1).unwrap().due), (200.0f64).sqrt()));
        assert!(close(s.due_of_event(50_000), 100.0));
        let gaps: Vec<f64> = s
            .batches()
            .collect::<Vec<_>>()
            .windows(2)
            .map(|w| secs(w[1].due) - secs(w[0].due))
            .collect();
        assert!(
            gaps.windows(2).all(|g| g[1] < g[0]),
            "gaps shrink as the rate grows"
        );
        assert!(close(s.rate_at(50.0), 500.0));
    }

    #[test]
    fn spike_phases_are_w4() {
        let s = Schedule::new(Profile::Spike, 100.0, None, 100).unwrap();
        assert_eq!(s.duration(), Duration::from_secs(150));
        assert_eq!(s.total_events(), 42_000);
        assert!(close(s.rate_at(59.9), 100.0));
        assert!(close(s.rate_at(60.0), 1000.0));
        assert!(close(s.rate_at(89.9), 1000.0));
        assert!(close(s.rate_at(90.0), 100.0));
        // 6000 events in the first phase, batch 60 opens the spike, 30000 more in it.
        assert!(close(secs(s.batch(59).unwrap().due), 59.0));
        assert!(close(secs(s.batch(60).unwrap().due), 60.0));
        assert!(close(secs(s.batch(61).unwrap().due), 60.1));
        assert!(close(secs(s.batch(360).unwrap().due), 90.0));
        assert!(close(secs(s.batch(361).unwrap().due), 91.0));
        let per_second = s.offered_per_second();
        assert_eq!(per_second.len(), 150);
        assert_eq!(per_second[0], 100);
        assert_eq!(per_second[75], 1000);
        assert_eq!(per_second[149], 100);
    }

    #[test]
    fn spike_duration_scales_the_phases() {
        let s = Schedule::new(Profile::Spike, 100.0, Some(Duration::from_secs(15)), 10).unwrap();
        assert_eq!(s.total_events(), 4_200);
        assert!(close(s.rate_at(5.9), 100.0));
        assert!(close(s.rate_at(6.0), 1000.0));
        assert!(close(s.rate_at(9.0), 100.0));
        assert!(close(s.due_of_event(600), 6.0));
        assert!(close(s.due_of_event(3_600), 9.0));
    }

    #[test]
    fn sine_oscillates_around_the_rate() {
        let profile = Profile::Sine {
            amplitude: 0.5,
            period: Duration::from_secs(60),
        };
        let s = Schedule::new(profile, 1000.0, Some(Duration::from_secs(120)), 100).unwrap();
        // Whole periods: the sine part integrates to zero.
        assert_eq!(s.total_events(), 120_000);
        assert!(close(s.rate_at(15.0), 1500.0));
        assert!(close(s.rate_at(45.0), 500.0));
        for n in [0u64, 1, 777, 30_000, 64_321, 119_999] {
            let t = s.due_of_event(n);
            assert!(
                (s.offered_by(t) - n as f64).abs() < 1e-3,
                "event {n} at {t}"
            );
        }
        let per_second = s.offered_per_second();
        assert!(per_second[15] > per_second[45] * 2, "{per_second:?}");
    }

    #[test]
    fn bad_plans_are_refused() {
        let d = Some(Duration::from_secs(1));
        assert_eq!(
            Schedule::new(Profile::Steady, 0.0, d, 1),
            Err(ScheduleError::Rate(0.0))
        );
        assert!(Schedule::new(Profile::Steady, f64::NAN, d, 1).is_err());
        assert_eq!(
            Schedule::new(Profile::Ramp, 1.0, None, 1),
            Err(ScheduleError::Duration("ramp"))
        );
        assert_eq!(
            Schedule::new(Profile::Steady, 1.0, Some(Duration::ZERO), 1),
            Err(ScheduleError::Duration("steady"))
        );
        assert_eq!(
            Schedule::new(Profile::Steady, 1.0, d, 0),
            Err(ScheduleError::BatchSize)
        );
        let sine = Profile::Sine {
            amplitude: 2.0,
            period: Duration::from_secs(1),
        };
        assert_eq!(Schedule::new(sine, 1.0, d, 1), Err(ScheduleError::Sine));
        assert_eq!("SPIKE".parse::<Profile>(), Ok(Profile::Spike));
        assert!("burst".parse::<Profile>().is_err());
    }
}
