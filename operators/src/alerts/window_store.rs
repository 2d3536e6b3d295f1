//! The window store: where the alert router keeps the counts of closed
//! windows until the rules have run on them, and where it claims the notices
//! they raise. Two implementations:
//!
//! - [`MemoryWindowStore`] (one process, the default): this process's closed
//!   windows are the whole counts; they are read back at once and every
//!   notice is this process's to send.
//! - the DynamoDB hot table
//!   ([`DynamoHotStore`](crate::sinks::dynamo_hot::DynamoHotStore)), shared
//!   by several processes consuming one stream: each adds its partial counts
//!   (an atomic add), the merged counts are read back after the settle delay,
//!   and a notice is claimed with a conditional write so that one process
//!   sends it. See [`super::pending`] for how the router uses it.
//!
//! Calls are synchronous and made on the blocking pool, with retries (see
//! [`super::router`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::record::{AlertRecord, AlertStoreError, WindowRecord};

/// Closed-window counts and notice claims, for the alert router.
pub trait WindowStore: Send + Sync + 'static {
    /// Whether other processes add their partial counts to the same windows
    /// (the shared DynamoDB table). The router then waits the settle delay
    /// (`[windows] shared_settle`) before reading the merged counts
    /// back, claims every notice before sending it, and records nothing in
    /// its [`AlertStore`](super::record::AlertStore): the shared store itself
    /// holds the merged windows ([`WindowStore::add`]) and the notices won
    /// ([`WindowStore::claim`]).
    fn is_shared(&self) -> bool;

    /// Durably adds this process's counts of closed windows to the merged
    /// counts (per window and service). The router calls it before it
    /// acknowledges the input.
    fn add(&self, windows: &[WindowRecord]) -> Result<(), AlertStoreError>;

    /// The merged counts of `services` for every window starting in
    /// `[from_ms, until_ms)`, any order, read so that every completed
    /// [`WindowStore::add`] is seen. A (window, service) nobody counted is
    /// absent. Windows starting before `from_ms` have been decided: a store
    /// may forget them.
    fn merged(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, AlertStoreError>;

    /// Claims `alert` (deterministic id): true when this process is to send
    /// it, also when an earlier attempt of this process won but its answer
    /// was lost; false when another process holds the claim.
    fn claim(&self, alert: &AlertRecord) -> Result<bool, AlertStoreError>;
}

/// The window store of a single process: closed windows kept in memory from
/// their [`WindowStore::add`] until a [`WindowStore::merged`] read starting
/// after them; every claim is won.
///
/// ```
/// use spate_operators::alerts::record::WindowRecord;
/// use spate_operators::alerts::window_store::{MemoryWindowStore, WindowStore};
/// let store = MemoryWindowStore::default();
/// let window = |start: i64, errors: u64| WindowRecord {
///     window_start_ms: start,
///     window_end_ms: start + 300_000,
///     service: "api".into(),
///     events: errors,
///     severity: [0, 0, errors, 0],
///     tags: Default::default(),
/// };
/// store.add(&[window(0, 7)]).unwrap();
/// store.add(&[window(0, 7), window(300_000, 1)]).unwrap();
/// let merged = store.merged(&["api".into()], 0, 300_000).unwrap();
/// assert_eq!(merged, [window(0, 14)]);
/// // A read from 300_000 on forgets the window before it.
/// assert_eq!(store.merged(&["api".into()], 300_000, 600_000).unwrap().len(), 1);
/// assert_eq!(store.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MemoryWindowStore {
    /// Counts by (window start, service).
    windows: Mutex<BTreeMap<(i64, String), WindowRecord>>,
}

impl MemoryWindowStore {
    /// (window, service) counts kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no counts are kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(i64, String), WindowRecord>> {
        // The map stays consistent whatever panicked while it was held.
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl WindowStore for MemoryWindowStore {
    fn is_shared(&self) -> bool {
        false
    }

    fn add(&self, windows: &[WindowRecord]) -> Result<(), AlertStoreError> {
        let mut kept = self.lock();
        for w in windows {
            match kept.get_mut(&(w.window_start_ms, w.service.clone())) {
                Some(k) => add_counts(k, w),
                None => {
                    kept.insert((w.window_start_ms, w.service.clone()), w.clone());
                }
            }
        }
        Ok(())
    }

    fn merged(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, AlertStoreError> {
        let mut kept = self.lock();
        kept.retain(|(start, _), _| *start >= from_ms);
        Ok(kept
            .range((from_ms, String::new())..)
            .take_while(|((start, _), _)| *start < until_ms)
            .filter(|((_, service), _)| services.contains(service))
            .map(|(_, w)| w.clone())
            .collect())
    }

    fn claim(&self, _alert: &AlertRecord) -> Result<bool, AlertStoreError> {
        Ok(true)
    }
}

/// Adds the counts of `w` to `into` (same window and service).
pub(crate) fn add_counts(into: &mut WindowRecord, w: &WindowRecord) {
    into.events += w.events;
    for (a, b) in into.severity.iter_mut().zip(w.severity) {
        *a += b;
    }
    for (tag, n) in &w.tags {
        *into.tags.entry(tag.clone()).or_default() += n;
    }
}

/// Sums records of the same (window, service); ordered by window start, then
/// service.
pub(crate) fn sum(records: impl IntoIterator<Item = WindowRecord>) -> Vec<WindowRecord> {
    let mut merged: BTreeMap<(i64, String), WindowRecord> = BTreeMap::new();
    for r in records {
        match merged.get_mut(&(r.window_start_ms, r.service.clone())) {
            Some(m) => add_counts(m, &r),
            None => {
                merged.insert((r.window_start_ms, r.service.clone()), r);
            }
        }
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 300_000;

    fn window(start: i64, service: &str, severity: [u64; 4], tags: &[(&str, u64)]) -> WindowRecord {
        WindowRecord {
            window_start_ms: start,
            window_end_ms: start + W,
            service: service.into(),
            events: severity.iter().sum(),
            severity,
            tags: tags.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn adds_sum_per_window_and_service_with_tags() {
        let store = MemoryWindowStore::default();
        store
            .add(&[
                window(0, "api", [1, 0, 2, 0], &[("http_5xx", 2)]),
                window(0, "web", [3, 0, 0, 0], &[]),
            ])
            .unwrap();
        store
            .add(&[window(0, "api", [0, 1, 1, 1], &[("http_5xx", 1), ("x", 1)])])
            .unwrap();
        let merged = store.merged(&["api".into(), "web".into()], 0, W).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].service, "api");
        assert_eq!((merged[0].events, merged[0].severity), (6, [1, 1, 3, 1]));
        assert_eq!(merged[0].tags["http_5xx"], 3);
        assert_eq!(merged[0].tags["x"], 1);
        assert_eq!(merged[1].events, 3);
    }

    #[test]
    fn reads_filter_services_and_the_range_and_forget_what_is_decided() {
        let store = MemoryWindowStore::default();
        store
            .add(&[
                window(0, "api", [1, 0, 0, 0], &[]),
                window(W, "api", [2, 0, 0, 0], &[]),
                window(W, "web", [3, 0, 0, 0], &[]),
                window(2 * W, "api", [4, 0, 0, 0], &[]),
            ])
            .unwrap();
        // Only web, only [W, 2W): the end is exclusive.
        let merged = store.merged(&["web".into()], W, 2 * W).unwrap();
        assert_eq!(merged, [window(W, "web", [3, 0, 0, 0], &[])]);
        // The window before W was forgotten; the others are kept.
        assert_eq!(store.len(), 3);
        assert!(store.merged(&["api".into()], 0, W).unwrap().is_empty());
        assert!(
            store
                .claim(&crate::alerts::outputs::tests::sample_alert(
                    crate::alerts::record::AlertState::Firing
                ))
                .unwrap()
        );
        assert!(!store.is_shared());
    }

    #[test]
    fn sum_merges_equal_keys_in_order() {
        let merged = sum([
            window(W, "api", [1, 0, 0, 0], &[]),
            window(0, "web", [1, 0, 0, 0], &[]),
            window(W, "api", [0, 0, 1, 0], &[("t", 1)]),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].service, "web");
        assert_eq!(merged[1].severity, [1, 0, 1, 0]);
        assert_eq!(merged[1].tags["t"], 1);
    }
}
