//! Event-time tumbling windows over classified events, and the aggregator
//! actor that counts them and raises alerts.
//!
//! - [`state`]: the pure window logic ([`window_start`], [`WindowState`]):
//!   counts per (window, service) × severity × tag, the watermark, lateness and
//!   the idle timeout. Its module docs state the exact semantics.
//! - [`aggregator`]: the [`WindowAggregator`] actor (`LogBatch` in,
//!   [`WindowOutput`] out), which runs the alert rules on every closed window.

pub mod aggregator;
pub mod state;

use serde::{Deserialize, Serialize};

pub use self::aggregator::{WindowAggregator, WindowOutput};
pub use self::state::{WindowState, window_start};

/// `[windows]`: event-time tumbling windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Length of a window (seconds); windows are aligned to the epoch (UTC).
    #[serde(default = "default_size_secs")]
    pub size_secs: u64,
    /// How far behind the newest event time an event may be and still count
    /// (seconds): a window closes once the newest event time passes its end by
    /// this much.
    #[serde(default = "default_allowed_lateness_secs")]
    pub allowed_lateness_secs: u64,
    /// With no event for this long (processing time, seconds), windows close by
    /// the clock instead: those ending before now minus the allowed lateness.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// How often the aggregator checks for windows to close (milliseconds).
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
}

fn default_size_secs() -> u64 {
    300
}
fn default_allowed_lateness_secs() -> u64 {
    60
}
fn default_idle_timeout_secs() -> u64 {
    30
}
fn default_tick_ms() -> u64 {
    1_000
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            size_secs: default_size_secs(),
            allowed_lateness_secs: default_allowed_lateness_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            tick_ms: default_tick_ms(),
        }
    }
}

impl WindowConfig {
    /// Checks that the window and the tick are not zero.
    pub fn validate(&self) -> Result<(), crate::alerts::AlertError> {
        if self.size_secs == 0 || self.tick_ms == 0 {
            return Err(crate::alerts::AlertError::Config(
                "windows: size_secs and tick_ms must be above 0".into(),
            ));
        }
        Ok(())
    }

    /// Window size in milliseconds.
    pub fn size_ms(&self) -> i64 {
        secs_to_ms(self.size_secs)
    }

    /// Allowed lateness in milliseconds.
    pub fn lateness_ms(&self) -> i64 {
        secs_to_ms(self.allowed_lateness_secs)
    }

    /// Idle timeout in milliseconds.
    pub fn idle_timeout_ms(&self) -> i64 {
        secs_to_ms(self.idle_timeout_secs)
    }
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_defaults_equal_default() {
        let parsed: WindowConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, WindowConfig::default());
        assert_eq!(parsed.size_ms(), 300_000);
        assert_eq!(parsed.lateness_ms(), 60_000);
        assert!(parsed.validate().is_ok());
        assert!(serde_json::from_str::<WindowConfig>(r#"{"size": 1}"#).is_err());
        let zero: WindowConfig = serde_json::from_str(r#"{"size_secs": 0}"#).unwrap();
        assert!(zero.validate().is_err());
    }
}
