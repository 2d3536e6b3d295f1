//! `[windows]`: the window settings.

use serde::{Deserialize, Serialize};

/// `[windows]`: event-time tumbling windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Length of a window (seconds); windows are aligned to the epoch (UTC).
    #[serde(
        rename = "size",
        alias = "size_secs",
        with = "crate::component::units::with::secs",
        default = "default_size_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub size_secs: u64,
    /// How far behind the newest event time an event may be and still count
    /// (seconds): a window closes once the newest event time passes its end by
    /// this much.
    #[serde(
        rename = "allowed_lateness",
        alias = "allowed_lateness_secs",
        with = "crate::component::units::with::secs",
        default = "default_allowed_lateness_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub allowed_lateness_secs: u64,
    /// With no event for this long (processing time, seconds), windows close by
    /// the clock instead: those ending before now minus the allowed lateness.
    #[serde(
        rename = "idle_timeout",
        alias = "idle_timeout_secs",
        with = "crate::component::units::with::secs",
        default = "default_idle_timeout_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub idle_timeout_secs: u64,
    /// How often the aggregator checks for windows to close (milliseconds).
    #[serde(
        rename = "tick",
        alias = "tick_ms",
        with = "crate::component::units::with::millis",
        default = "default_tick_ms"
    )]
    #[schemars(with = "crate::component::units::Millis")]
    pub tick_ms: u64,
    /// Shared-window mode, for several processes consuming one stream: each
    /// process adds its partial counts to the shared store, the rules run on
    /// the merged counts after `shared_settle`, and only the process
    /// that wins a notice's claim sends it. Unset (the default): on when the
    /// alert store is shared (`[hot_dynamodb]`), off otherwise; `true`
    /// without `[hot_dynamodb]` is an error; `false` evaluates each process's
    /// own counts (for a single process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    /// Shared-window mode: how long after adding its partial counts of a
    /// closed window a process waits before reading the merged counts back
    /// and evaluating the rules (seconds), so the other processes' partials
    /// have landed. At least `idle_timeout`: a process whose traffic
    /// stopped closes its windows up to that much later than a busy one.
    #[serde(
        rename = "shared_settle",
        alias = "shared_settle_secs",
        with = "crate::component::units::with::secs",
        default = "default_shared_settle_secs"
    )]
    #[schemars(with = "crate::component::units::Seconds")]
    pub shared_settle_secs: u64,
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
fn default_shared_settle_secs() -> u64 {
    45
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            size_secs: default_size_secs(),
            allowed_lateness_secs: default_allowed_lateness_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            tick_ms: default_tick_ms(),
            shared: None,
            shared_settle_secs: default_shared_settle_secs(),
        }
    }
}

impl WindowConfig {
    /// Checks that the window and the tick are not zero.
    pub fn validate(&self) -> Result<(), crate::alerts::AlertError> {
        for (key, value) in [("size", self.size_secs), ("tick", self.tick_ms)] {
            if value == 0 {
                return Err(crate::alerts::AlertError::Config(format!(
                    "windows: {key}: must be at least 1"
                )));
            }
        }
        Ok(())
    }

    /// Whether shared-window mode is on, given whether the alert store is
    /// shared by several processes (see [`WindowConfig::shared`]); checks the
    /// settle delay when it is.
    pub fn shared_mode(&self, store_is_shared: bool) -> Result<bool, crate::alerts::AlertError> {
        let bad = |msg: &str| Err(crate::alerts::AlertError::Config(msg.to_string()));
        let on = match self.shared {
            Some(true) if !store_is_shared => {
                return bad("windows: shared = true needs a shared alert store ([hot_dynamodb])");
            }
            Some(on) => on,
            None => store_is_shared,
        };
        if on && self.shared_settle_secs < self.idle_timeout_secs {
            return bad("windows: shared_settle must be at least idle_timeout");
        }
        Ok(on)
    }

    /// The shared-mode settle delay.
    pub fn shared_settle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shared_settle_secs)
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
        assert!(serde_json::from_str::<WindowConfig>(r#"{"width": 1}"#).is_err());
        let zero: WindowConfig = serde_json::from_str(r#"{"size": 0}"#).unwrap();
        assert!(zero.validate().is_err());
        // The old integer key is still read, in seconds.
        let old: WindowConfig = serde_json::from_str(r#"{"size_secs": 60}"#).unwrap();
        assert_eq!(old.size_ms(), 60_000);
    }

    #[test]
    fn shared_mode_follows_the_store_unless_set() {
        let auto = WindowConfig::default();
        assert!(auto.shared_mode(true).unwrap());
        assert!(!auto.shared_mode(false).unwrap());
        let off = WindowConfig {
            shared: Some(false),
            ..WindowConfig::default()
        };
        assert!(!off.shared_mode(true).unwrap());
        let on = WindowConfig {
            shared: Some(true),
            ..WindowConfig::default()
        };
        let err = on.shared_mode(false).unwrap_err();
        assert!(
            err.to_string().contains("needs a shared alert store"),
            "{err}"
        );
        let hasty = WindowConfig {
            shared_settle_secs: 10,
            ..WindowConfig::default()
        };
        assert!(hasty.shared_mode(true).is_err());
        // The settle delay only matters in shared mode.
        assert!(!hasty.shared_mode(false).unwrap());
    }
}
