//! Where anomaly baselines are kept between decision steps, restarts and
//! processes: the hot store (SQLite `baselines` table, or DynamoDB items),
//! or memory for tests and single runs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Baseline;
use crate::alerts::record::AlertStoreError;

/// A baseline's identity: the rule and the service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BaselineKey {
    /// The rule's name.
    pub rule: String,
    /// The service.
    pub service: String,
}

impl BaselineKey {
    /// The key of `rule` × `service`.
    pub fn new(rule: &str, service: &str) -> Self {
        BaselineKey {
            rule: rule.to_string(),
            service: service.to_string(),
        }
    }
}

/// One baseline to save, and what the stored one must still be.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineSave {
    /// Whose baseline.
    pub key: BaselineKey,
    /// The state to store.
    pub baseline: Baseline,
    /// The `updates` of the stored baseline this one was learnt from
    /// (`None`: there was none). The save is refused when the stored one
    /// has changed since: another process learnt first.
    pub previous_updates: Option<u64>,
}

/// Anomaly baselines by (rule, service). Calls are synchronous (run on the
/// blocking pool by the router).
pub trait BaselineStore: Send + Sync + 'static {
    /// The stored baselines of `keys` (absent ones are left out).
    fn load_baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, AlertStoreError>;

    /// Saves each baseline whose stored version is still its
    /// `previous_updates`; returns, per entry, whether it was saved.
    fn save_baselines(&self, saves: &[BaselineSave]) -> Result<Vec<bool>, AlertStoreError>;
}

/// Baselines in memory (lost at exit).
///
/// ```
/// use spate_operators::alerts::anomaly::{Baseline, Seasonality};
/// use spate_operators::alerts::anomaly::store::*;
/// let store = MemoryBaselineStore::default();
/// let key = BaselineKey::new("errors_anomaly", "api");
/// let save = BaselineSave {
///     key: key.clone(),
///     baseline: Baseline::new("errors:daily", Seasonality::Daily),
///     previous_updates: None,
/// };
/// assert_eq!(store.save_baselines(&[save.clone()]).unwrap(), [true]);
/// // A second "first" save lost the race.
/// assert_eq!(store.save_baselines(&[save]).unwrap(), [false]);
/// assert_eq!(store.load_baselines(&[key]).unwrap().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MemoryBaselineStore {
    kept: Mutex<BTreeMap<BaselineKey, Baseline>>,
}

impl BaselineStore for MemoryBaselineStore {
    fn load_baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, AlertStoreError> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .iter()
            .filter_map(|k| kept.get(k).map(|b| (k.clone(), b.clone())))
            .collect())
    }

    fn save_baselines(&self, saves: &[BaselineSave]) -> Result<Vec<bool>, AlertStoreError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        Ok(saves
            .iter()
            .map(|s| {
                let stored = kept.get(&s.key).map(|b| b.updates);
                let fresh = stored == s.previous_updates;
                if fresh {
                    kept.insert(s.key.clone(), s.baseline.clone());
                }
                fresh
            })
            .collect())
    }
}
