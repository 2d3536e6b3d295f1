//! The alert router's own state in the embedded hot store: anomaly
//! baselines ([`BaselineStore`]) and silences ([`SilenceStore`]), written by
//! `spate run` and by `spate alerts silence` (another process: SQLite's WAL
//! and busy timeout serialise the two writers).

use rusqlite::{OptionalExtension, params};

use super::{HotError, HotStore};
use crate::alerts::anomaly::Baseline;
use crate::alerts::anomaly::store::{BaselineKey, BaselineSave, BaselineStore};
use crate::alerts::record::AlertStoreError;
use crate::alerts::silence::{Silence, SilenceStore};
use crate::event::wall_clock_ms;

impl HotStore {
    /// The stored baselines of `keys`.
    pub fn baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, HotError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT state FROM baselines WHERE rule = ?1 AND service = ?2")
            .map_err(HotError::sqlite("prepare baseline read"))?;
        let mut out = Vec::new();
        for key in keys {
            let state: Option<String> = stmt
                .query_row(params![key.rule, key.service], |r| r.get(0))
                .optional()
                .map_err(HotError::sqlite("read baseline"))?;
            if let Some(state) = state {
                let baseline = serde_json::from_str(&state).map_err(|e| {
                    HotError::Data(format!("baseline of {} / {}: {e}", key.rule, key.service))
                })?;
                out.push((key.clone(), baseline));
            }
        }
        Ok(out)
    }

    /// Saves each baseline whose stored version is its `previous_updates`,
    /// in one transaction; returns which were saved.
    pub fn save_baselines_now(&self, saves: &[BaselineSave]) -> Result<Vec<bool>, HotError> {
        let now = wall_clock_ms();
        self.write("save baselines", |tx| {
            let mut out = Vec::with_capacity(saves.len());
            for save in saves {
                let state = serde_json::to_string(&save.baseline)
                    .map_err(|e| HotError::Data(format!("baseline: {e}")))?;
                let updates = i64::try_from(save.baseline.updates).unwrap_or(i64::MAX);
                let changed = match save.previous_updates {
                    None => tx.execute(
                        "INSERT OR IGNORE INTO baselines (rule, service, updates, updated_ms, state) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![save.key.rule, save.key.service, updates, now, state],
                    ),
                    Some(previous) => tx.execute(
                        "UPDATE baselines SET updates = ?3, updated_ms = ?4, state = ?5 \
                         WHERE rule = ?1 AND service = ?2 AND updates = ?6",
                        params![
                            save.key.rule,
                            save.key.service,
                            updates,
                            now,
                            state,
                            i64::try_from(previous).unwrap_or(i64::MAX)
                        ],
                    ),
                }
                .map_err(HotError::sqlite("save baseline"))?;
                out.push(changed == 1);
            }
            Ok(out)
        })
    }

    /// Sets the silence of `silence.service` (replacing one), dropping the
    /// silences that have ended.
    pub fn set_silence(&self, silence: &Silence) -> Result<(), HotError> {
        self.write("set silence", |tx| {
            tx.execute(
                "DELETE FROM silences WHERE until_ms <= ?1",
                params![wall_clock_ms()],
            )
            .map_err(HotError::sqlite("drop ended silences"))?;
            tx.execute(
                "INSERT OR REPLACE INTO silences (service, created_ms, until_ms, reason) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    silence.service,
                    silence.created_ms,
                    silence.until_ms,
                    silence.reason
                ],
            )
            .map_err(HotError::sqlite("set silence"))?;
            Ok(())
        })
    }

    /// Silences still in force at `now_ms`, by service.
    pub fn silences(&self, now_ms: i64) -> Result<Vec<Silence>, HotError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT service, created_ms, until_ms, reason FROM silences \
                 WHERE until_ms > ?1 ORDER BY service",
            )
            .map_err(HotError::sqlite("prepare silences"))?;
        let rows = stmt
            .query_map(params![now_ms], |r| {
                Ok(Silence {
                    service: r.get(0)?,
                    created_ms: r.get(1)?,
                    until_ms: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .map_err(HotError::sqlite("read silences"))?;
        rows.collect::<Result<_, _>>()
            .map_err(HotError::sqlite("read silences"))
    }

    /// Ends the silence of `service`; false when there was none in force.
    pub fn end_silence(&self, service: &str) -> Result<bool, HotError> {
        self.write("end silence", |tx| {
            tx.execute(
                "DELETE FROM silences WHERE service = ?1 AND until_ms > ?2",
                params![service, wall_clock_ms()],
            )
            .map(|n| n > 0)
            .map_err(HotError::sqlite("end silence"))
        })
    }
}

impl BaselineStore for HotStore {
    fn load_baselines(
        &self,
        keys: &[BaselineKey],
    ) -> Result<Vec<(BaselineKey, Baseline)>, AlertStoreError> {
        Ok(self.baselines(keys)?)
    }

    fn save_baselines(&self, saves: &[BaselineSave]) -> Result<Vec<bool>, AlertStoreError> {
        Ok(self.save_baselines_now(saves)?)
    }
}

impl SilenceStore for HotStore {
    fn put_silence(&self, silence: &Silence) -> Result<(), AlertStoreError> {
        Ok(self.set_silence(silence)?)
    }

    fn active_silences(&self, now_ms: i64) -> Result<Vec<Silence>, AlertStoreError> {
        Ok(self.silences(now_ms)?)
    }

    fn remove_silence(&self, service: &str) -> Result<bool, AlertStoreError> {
        Ok(self.end_silence(service)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::anomaly::Seasonality;

    #[test]
    fn baselines_round_trip_with_conditional_saves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hot.db");
        let store = HotStore::open(&path).unwrap();
        let key = BaselineKey::new("errors_anomaly", "api");
        let mut baseline = Baseline::new("errors:daily", Seasonality::Daily);
        baseline.level = 12.5;
        baseline.updates = 3;
        let first = BaselineSave {
            key: key.clone(),
            baseline: baseline.clone(),
            previous_updates: None,
        };
        assert_eq!(
            store.save_baselines(std::slice::from_ref(&first)).unwrap(),
            [true]
        );
        // Someone else's "first" save loses; so does a save from a stale copy.
        assert_eq!(store.save_baselines(&[first]).unwrap(), [false]);
        let mut next = baseline.clone();
        next.updates = 4;
        let stale = BaselineSave {
            key: key.clone(),
            baseline: next.clone(),
            previous_updates: Some(2),
        };
        assert_eq!(store.save_baselines(&[stale]).unwrap(), [false]);
        let fresh = BaselineSave {
            key: key.clone(),
            baseline: next.clone(),
            previous_updates: Some(3),
        };
        assert_eq!(store.save_baselines(&[fresh]).unwrap(), [true]);
        drop(store);
        // A new process (a restart) reads it back.
        let reopened = HotStore::open(&path).unwrap();
        let other = BaselineKey::new("errors_anomaly", "web");
        let loaded = reopened.load_baselines(&[key.clone(), other]).unwrap();
        assert_eq!(loaded, [(key, next)]);
    }

    #[test]
    fn silences_are_set_listed_replaced_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("hot.db")).unwrap();
        let now = wall_clock_ms();
        let silence = |service: &str, until_ms: i64| Silence {
            service: service.into(),
            created_ms: now,
            until_ms,
            reason: "deploy".into(),
        };
        store.put_silence(&silence("api", now + 3_600_000)).unwrap();
        store.put_silence(&silence("web", now + 60_000)).unwrap();
        store.put_silence(&silence("api", now + 7_200_000)).unwrap();
        let active = store.active_silences(now).unwrap();
        assert_eq!(
            active,
            [
                silence("api", now + 7_200_000),
                silence("web", now + 60_000)
            ]
        );
        assert_eq!(store.active_silences(now + 120_000).unwrap().len(), 1);
        assert!(store.remove_silence("web").unwrap());
        assert!(!store.remove_silence("web").unwrap());
        assert_eq!(store.active_silences(now).unwrap().len(), 1);
    }
}
