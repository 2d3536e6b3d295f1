//! Maintenance windows: a service silenced until a time
//! (`spate alerts silence SERVICE --for 2h`). The silence is written into
//! the hot store ([`SilenceStore`]: SQLite, or DynamoDB with
//! `[hot_dynamodb]`), where every running router reads it (at most
//! [`REFRESH`] old), so the CLI and the service need not talk to each other.
//!
//! While a service is silenced, its firing notices go to no output (they
//! are still recorded in the hot store) and count in
//! `spate_alerts_silenced_total`; the resolution of an alert whose firing
//! was held back is held back too, while the resolution of one that fired
//! before the silence still goes out (a pager incident gets closed). Silences
//! are compared with the time a notice is raised (processing time).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::{AlertRecord, AlertState, AlertStoreError};

/// How often a router reads the silences again.
pub const REFRESH: Duration = Duration::from_secs(10);

/// One maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// The service silenced.
    pub service: String,
    /// When it was set, UTC ms.
    pub created_ms: i64,
    /// Until when, UTC ms (exclusive).
    pub until_ms: i64,
    /// Why (free text; may be empty).
    pub reason: String,
}

impl Silence {
    /// Whether it silences `service` at `now_ms`.
    pub fn covers(&self, service: &str, now_ms: i64) -> bool {
        self.service == service && self.created_ms <= now_ms && now_ms < self.until_ms
    }
}

/// Where silences are kept: one per service (a new one replaces it).
pub trait SilenceStore: Send + Sync + 'static {
    /// Sets (or replaces) the silence of `silence.service`.
    fn put_silence(&self, silence: &Silence) -> Result<(), AlertStoreError>;
    /// The silences still in force at `now_ms`, by service.
    fn active_silences(&self, now_ms: i64) -> Result<Vec<Silence>, AlertStoreError>;
    /// Ends the silence of `service` now; false when there was none.
    fn remove_silence(&self, service: &str) -> Result<bool, AlertStoreError>;
}

/// Silences in memory (tests).
#[derive(Debug, Default)]
pub struct MemorySilenceStore {
    kept: Mutex<BTreeMap<String, Silence>>,
}

impl SilenceStore for MemorySilenceStore {
    fn put_silence(&self, silence: &Silence) -> Result<(), AlertStoreError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.insert(silence.service.clone(), silence.clone());
        Ok(())
    }

    fn active_silences(&self, now_ms: i64) -> Result<Vec<Silence>, AlertStoreError> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        Ok(kept
            .values()
            .filter(|s| s.until_ms > now_ms)
            .cloned()
            .collect())
    }

    fn remove_silence(&self, service: &str) -> Result<bool, AlertStoreError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        Ok(kept.remove(service).is_some())
    }
}

/// The silences a router knows, and the alerts whose firing they held back.
#[derive(Debug, Clone, Default)]
pub struct SilenceFilter {
    silences: Vec<Silence>,
    held_back: HashSet<(String, String)>,
}

impl SilenceFilter {
    /// Replaces the known silences.
    pub fn set(&mut self, silences: Vec<Silence>) {
        self.silences = silences;
    }

    /// The known silences.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Whether `alert` may go out (see the [module docs](self)); a notice
    /// held back is counted.
    ///
    /// ```
    /// use spate_operators::alerts::silence::{Silence, SilenceFilter};
    /// # use spate_operators::alerts::record::{AlertRecord, AlertState};
    /// # let alert = |state| AlertRecord { id: "x".into(), rule: "r".into(),
    /// #     service: "api".into(), state, severity: "ERROR".into(), window_start_ms: 0,
    /// #     window_end_ms: 1, raised_at_ms: 5_000, value: 1.0, threshold: 0.0,
    /// #     message: String::new() };
    /// let mut f = SilenceFilter::default();
    /// f.set(vec![Silence { service: "api".into(), created_ms: 0, until_ms: 10_000, reason: String::new() }]);
    /// assert!(!f.passes(&alert(AlertState::Firing)));
    /// assert!(!f.passes(&alert(AlertState::Resolved)));
    /// ```
    pub fn passes(&mut self, alert: &AlertRecord) -> bool {
        let key = (alert.rule.clone(), alert.service.clone());
        let silenced = self
            .silences
            .iter()
            .any(|s| s.covers(&alert.service, alert.raised_at_ms));
        let pass = match alert.state {
            AlertState::Firing if silenced => {
                self.held_back.insert(key);
                false
            }
            AlertState::Firing => {
                self.held_back.remove(&key);
                true
            }
            AlertState::Resolved => !self.held_back.remove(&key),
        };
        if !pass {
            metrics::counter!("spate_alerts_silenced_total").increment(1);
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::outputs::tests::sample_alert;

    fn at(state: AlertState, raised_at_ms: i64) -> AlertRecord {
        AlertRecord {
            raised_at_ms,
            ..sample_alert(state)
        }
    }

    #[test]
    fn a_silence_holds_back_firing_and_its_resolution_only() {
        let t0 = sample_alert(AlertState::Firing).raised_at_ms;
        let mut f = SilenceFilter::default();
        // Fired before the silence: its resolution during it goes out.
        assert!(f.passes(&at(AlertState::Firing, t0)));
        f.set(vec![Silence {
            service: "api".into(),
            created_ms: t0 + 1,
            until_ms: t0 + 7_200_000,
            reason: "deploy".into(),
        }]);
        assert!(f.passes(&at(AlertState::Resolved, t0 + 10)));
        // Fired during: held back, and so is its resolution, even after.
        assert!(!f.passes(&at(AlertState::Firing, t0 + 20)));
        assert!(!f.passes(&at(AlertState::Resolved, t0 + 8_000_000)));
        // After the silence, firing goes out again.
        assert!(f.passes(&at(AlertState::Firing, t0 + 8_000_001)));
        // Other services are not silenced.
        let mut web = at(AlertState::Firing, t0 + 20);
        web.service = "web".into();
        assert!(f.passes(&web));
    }

    #[test]
    fn memory_store_keeps_one_per_service_and_forgets_expired() {
        let store = MemorySilenceStore::default();
        let s = |service: &str, until_ms| Silence {
            service: service.into(),
            created_ms: 0,
            until_ms,
            reason: String::new(),
        };
        store.put_silence(&s("api", 100)).unwrap();
        store.put_silence(&s("api", 200)).unwrap();
        store.put_silence(&s("web", 50)).unwrap();
        assert_eq!(store.active_silences(60).unwrap(), [s("api", 200)]);
        assert!(store.remove_silence("api").unwrap());
        assert!(!store.remove_silence("api").unwrap());
        assert!(store.active_silences(0).unwrap().len() == 1);
    }
}
