//! Restart policy: exponential backoff, capped, with jitter.
//!
//! The delay computation is a pure function ([`backoff_delay`]) so it is tested
//! without a clock; the actor runtime applies it under tokio's clock.

use std::time::Duration;

/// How an actor is restarted after it fails or panics.
///
/// ```
/// use spate_engine::SupervisorPolicy;
/// use std::time::Duration;
/// let p = SupervisorPolicy::default();
/// assert_eq!(p.initial_backoff, Duration::from_millis(100));
/// assert_eq!(p.max_backoff, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorPolicy {
    /// Delay before the first restart.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// Growth factor per consecutive failure.
    pub multiplier: f64,
    /// Fraction of the delay randomised (0.2 = ±20 %).
    pub jitter: f64,
    /// A run this long without failure resets the backoff.
    pub reset_after: Duration,
    /// Consecutive restarts after which the pipeline's kill switch trips;
    /// `None` restarts forever (the default: a sink outage stalls, it does not kill).
    pub max_consecutive_restarts: Option<u32>,
}

impl Default for SupervisorPolicy {
    fn default() -> Self {
        SupervisorPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            reset_after: Duration::from_secs(60),
            max_consecutive_restarts: None,
        }
    }
}

/// The delay before restart number `attempt` (0 for the first), given a uniform
/// random sample in `[0, 1)` for the jitter.
///
/// ```
/// use spate_engine::{backoff_delay, SupervisorPolicy};
/// use std::time::Duration;
/// let p = SupervisorPolicy { jitter: 0.0, ..SupervisorPolicy::default() };
/// assert_eq!(backoff_delay(&p, 0, 0.5), Duration::from_millis(100));
/// assert_eq!(backoff_delay(&p, 3, 0.5), Duration::from_millis(800));
/// assert_eq!(backoff_delay(&p, 20, 0.5), Duration::from_secs(30));
/// ```
pub fn backoff_delay(policy: &SupervisorPolicy, attempt: u32, sample: f64) -> Duration {
    let base = policy.initial_backoff.as_secs_f64();
    let cap = policy.max_backoff.as_secs_f64();
    let grown = base * policy.multiplier.max(1.0).powi(attempt.min(64) as i32);
    let capped = grown.min(cap);
    let jitter = policy.jitter.clamp(0.0, 1.0);
    let factor = 1.0 - jitter + 2.0 * jitter * sample.clamp(0.0, 1.0);
    Duration::from_secs_f64((capped * factor).min(cap).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_then_caps() {
        let p = SupervisorPolicy {
            jitter: 0.0,
            ..SupervisorPolicy::default()
        };
        let delays: Vec<_> = (0..4).map(|a| backoff_delay(&p, a, 0.0)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(Duration::from_millis).to_vec()
        );
        assert_eq!(backoff_delay(&p, 1000, 0.0), p.max_backoff);
    }

    #[test]
    fn jitter_stays_within_bounds_and_under_cap() {
        let p = SupervisorPolicy::default();
        let low = backoff_delay(&p, 1, 0.0);
        let high = backoff_delay(&p, 1, 0.999_999);
        assert_eq!(low, Duration::from_millis(160));
        assert!(high > Duration::from_millis(239) && high <= Duration::from_millis(240));
        assert!(backoff_delay(&p, 30, 0.999) <= p.max_backoff);
    }
}
