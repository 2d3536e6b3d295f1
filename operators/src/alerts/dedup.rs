//! Alert deduplication: a pure state machine per (rule, service), stepped once
//! per closed window in window order.
//!
//! - The first window where the condition holds gives one `Firing` notice.
//! - While it keeps holding, nothing more until `cooldown` (event time, measured
//!   between window starts) has passed since the last notice; then a reminder
//!   `Firing`.
//! - The first window where it no longer holds gives one `Resolved` notice, and
//!   the pair is forgotten.

use std::collections::HashMap;

use super::record::AlertState;

/// An alert currently firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    /// Start of the window of the last `Firing` notice.
    last_notice_ms: i64,
}

/// Firing alerts per (rule, service).
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    cooldown_ms: i64,
    active: HashMap<(String, String), Active>,
}

impl Dedup {
    /// No alert firing; reminders every `cooldown_ms` of event time.
    pub fn new(cooldown_ms: i64) -> Self {
        Dedup {
            cooldown_ms: cooldown_ms.max(0),
            active: HashMap::new(),
        }
    }

    /// Steps (rule, service) to the window starting at `window_start_ms`,
    /// where the condition `holds` or not; returns the notice to raise, if any.
    ///
    /// ```
    /// use spate_operators::alerts::dedup::Dedup;
    /// use spate_operators::alerts::record::AlertState;
    /// let mut d = Dedup::new(900_000);
    /// assert_eq!(d.step("error_burst", "api", 0, true), Some(AlertState::Firing));
    /// assert_eq!(d.step("error_burst", "api", 300_000, true), None);
    /// assert_eq!(d.step("error_burst", "api", 600_000, false), Some(AlertState::Resolved));
    /// assert_eq!(d.step("error_burst", "api", 900_000, false), None);
    /// ```
    pub fn step(
        &mut self,
        rule: &str,
        service: &str,
        window_start_ms: i64,
        holds: bool,
    ) -> Option<AlertState> {
        let key = (rule.to_string(), service.to_string());
        match (self.active.get_mut(&key), holds) {
            (None, false) => None,
            (None, true) => {
                self.active.insert(
                    key,
                    Active {
                        last_notice_ms: window_start_ms,
                    },
                );
                Some(AlertState::Firing)
            }
            (Some(active), true) => {
                if window_start_ms.saturating_sub(active.last_notice_ms) >= self.cooldown_ms {
                    active.last_notice_ms = window_start_ms;
                    Some(AlertState::Firing)
                } else {
                    None
                }
            }
            (Some(_), false) => {
                self.active.remove(&key);
                Some(AlertState::Resolved)
            }
        }
    }

    /// Whether (rule, service) is firing.
    pub fn is_firing(&self, rule: &str, service: &str) -> bool {
        self.active
            .contains_key(&(rule.to_string(), service.to_string()))
    }

    /// Services firing for `rule`, sorted.
    pub fn firing_services(&self, rule: &str) -> Vec<String> {
        let mut services: Vec<String> = self
            .active
            .keys()
            .filter(|(r, _)| r == rule)
            .map(|(_, s)| s.clone())
            .collect();
        services.sort();
        services
    }

    /// Drops every alert of `service` without a notice.
    pub fn forget_service(&mut self, service: &str) {
        self.active.retain(|(_, s), _| s != service);
    }

    /// Number of firing (rule, service) pairs.
    pub fn firing(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 300_000;

    #[test]
    fn burst_fires_once_and_resolves_once() {
        let mut d = Dedup::new(3 * W);
        let notices: Vec<_> = [false, true, true, false, false]
            .iter()
            .enumerate()
            .filter_map(|(i, &holds)| d.step("error_burst", "api", i as i64 * W, holds))
            .collect();
        assert_eq!(notices, [AlertState::Firing, AlertState::Resolved]);
        assert_eq!(d.firing(), 0);
    }

    #[test]
    fn cooldown_gives_reminders() {
        let mut d = Dedup::new(3 * W);
        let notices: Vec<_> = (0..7)
            .map(|i| d.step("critical", "api", i * W, true))
            .collect();
        let f = Some(AlertState::Firing);
        assert_eq!(notices, [f, None, None, f, None, None, f]);
        assert!(d.is_firing("critical", "api"));
    }

    #[test]
    fn pairs_are_independent() {
        let mut d = Dedup::new(3 * W);
        assert_eq!(d.step("r", "api", 0, true), Some(AlertState::Firing));
        assert_eq!(d.step("r", "web", 0, true), Some(AlertState::Firing));
        assert_eq!(d.step("q", "api", 0, true), Some(AlertState::Firing));
        assert_eq!(d.firing_services("r"), ["api", "web"]);
        d.forget_service("api");
        assert_eq!(d.firing(), 1);
        assert_eq!(d.step("r", "web", W, false), Some(AlertState::Resolved));
    }
}
