//! The alert evaluator: walks closed windows in order, evaluates every rule for
//! every service concerned, and turns the results into notices through
//! [`Dedup`]. Pure: time is passed in.
//!
//! Every closed window is evaluated, also those without any event (so silence
//! and resolutions are seen when traffic stops). For one window, the services
//! looked at are those with events in it, those with an alert firing, and (for
//! `silence`) every service seen before. A service not seen for
//! [`FORGET_AFTER_MS`] of event time is forgotten, with its firing alerts and
//! without a notice, which bounds memory when services come and go. When one
//! call covers many windows (the watermark jumped), cooldown reminders of an
//! alert already notified in that call are left out.
//!
//! Anomaly rules judge each window against the (rule, service) baseline
//! ([`super::anomaly`]) and teach it the window; like `silence`, they look
//! at every service seen in the last 24 hours, a window without events
//! counting 0. The caller loads the baselines before a call
//! ([`AlertEvaluator::baselines_to_load`], [`AlertEvaluator::put_baselines`])
//! and saves the ones that learnt after it
//! ([`AlertEvaluator::baselines_to_save`], [`AlertEvaluator::baselines_saved`]).

use std::collections::{BTreeMap, HashSet};

use super::anomaly::store::{BaselineKey, BaselineSave};
use super::anomaly::{Baseline, Params, measure};
use super::dedup::Dedup;
use super::record::{AlertRecord, AlertState, WindowRecord};
use super::rhythm::Activity;
use super::rules::{Rule, RuleKind};

/// A service silent for this long (event time) is forgotten: 24 hours.
pub const FORGET_AFTER_MS: i64 = 24 * 3_600_000;

/// Rules, their dedup state, and the services seen.
#[derive(Debug, Clone)]
pub struct AlertEvaluator {
    rules: Vec<Rule>,
    dedup: Dedup,
    size_ms: i64,
    /// Service → the windows it had events in lately.
    last_seen: BTreeMap<String, Activity>,
    /// Every window starting before this has been evaluated.
    evaluated_until: Option<i64>,
    /// Anomaly baselines in use.
    baselines: BTreeMap<BaselineKey, TrackedBaseline>,
}

/// A baseline, and the `updates` of its stored copy (`None`: none stored).
#[derive(Debug, Clone)]
struct TrackedBaseline {
    baseline: Baseline,
    stored_updates: Option<u64>,
}

/// Whether the rule looks at every service seen lately, also in windows
/// where it has no events.
fn watches_quiet_services(rule: &Rule) -> bool {
    matches!(rule.kind, RuleKind::Silence | RuleKind::Anomaly)
}

impl AlertEvaluator {
    /// An evaluator of `rules` over windows of `size_ms`, with reminders every
    /// `cooldown_ms` of event time.
    pub fn new(rules: Vec<Rule>, size_ms: i64, cooldown_ms: i64) -> Self {
        AlertEvaluator {
            rules,
            dedup: Dedup::new(cooldown_ms),
            size_ms: size_ms.max(1),
            last_seen: BTreeMap::new(),
            evaluated_until: None,
            baselines: BTreeMap::new(),
        }
    }

    /// The baselines the next call may use for `services` (besides the
    /// tracked ones) that are not loaded yet; every one of them with
    /// `reload` (shared windows: other processes learn too).
    pub fn baselines_to_load(&self, services: &[String], reload: bool) -> Vec<BaselineKey> {
        let mut all: Vec<String> = self.tracked_services();
        all.extend(services.iter().cloned());
        all.sort();
        all.dedup();
        let mut keys = Vec::new();
        for rule in self.rules.iter().filter(|r| r.anomaly.is_some()) {
            for service in all.iter().filter(|s| rule.applies_to(s)) {
                let key = BaselineKey::new(&rule.name, service);
                if reload || !self.baselines.contains_key(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// Takes the baselines loaded for `requested`: a stored one is resumed
    /// when it measures the same series; a key without one starts afresh.
    pub fn put_baselines(
        &mut self,
        requested: &[BaselineKey],
        loaded: Vec<(BaselineKey, Baseline)>,
    ) {
        let mut loaded: BTreeMap<BaselineKey, Baseline> = loaded.into_iter().collect();
        for key in requested {
            let Some(rule) = self.rules.iter().find(|r| r.name == key.rule) else {
                continue;
            };
            let Some(spec) = &rule.anomaly else { continue };
            let series = spec.series(rule.tag.as_deref());
            let tracked = match loaded.remove(key) {
                Some(b) if b.fits(&series, spec.seasonality) => TrackedBaseline {
                    stored_updates: Some(b.updates),
                    baseline: b,
                },
                // Another series (the rule changed): start again, replacing it.
                Some(b) => TrackedBaseline {
                    stored_updates: Some(b.updates),
                    baseline: Baseline::new(series, spec.seasonality),
                },
                None => match self.baselines.remove(key) {
                    Some(kept) => kept,
                    None => TrackedBaseline {
                        stored_updates: None,
                        baseline: Baseline::new(series, spec.seasonality),
                    },
                },
            };
            self.baselines.insert(key.clone(), tracked);
        }
    }

    /// The baselines that learnt since they were loaded or saved.
    pub fn baselines_to_save(&self) -> Vec<BaselineSave> {
        self.baselines
            .iter()
            .filter(|(_, t)| Some(t.baseline.updates) != t.stored_updates && t.baseline.updates > 0)
            .map(|(key, t)| BaselineSave {
                key: key.clone(),
                baseline: t.baseline.clone(),
                previous_updates: t.stored_updates,
            })
            .collect()
    }

    /// Notes which of `saves` were stored; the others (another process
    /// learnt first) are dropped, to be loaded again.
    pub fn baselines_saved(&mut self, saves: &[BaselineSave], stored: &[bool]) {
        for (save, &ok) in saves.iter().zip(stored) {
            if ok {
                if let Some(t) = self.baselines.get_mut(&save.key) {
                    t.stored_updates = Some(save.baseline.updates);
                }
            } else {
                self.baselines.remove(&save.key);
            }
        }
    }

    /// The baseline of `rule` × `service`, if in use.
    pub fn baseline(&self, rule: &str, service: &str) -> Option<&Baseline> {
        self.baselines
            .get(&BaselineKey::new(rule, service))
            .map(|t| &t.baseline)
    }

    /// The rules evaluated.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every window starting before this has been evaluated; `None` before
    /// the first evaluation with records.
    pub fn evaluated_until(&self) -> Option<i64> {
        self.evaluated_until
    }

    /// The services the next windows are evaluated for besides those with
    /// events in them: those with an alert firing, and (with a `silence`
    /// rule) every service seen and not yet forgotten. Sorted.
    pub fn tracked_services(&self) -> Vec<String> {
        let mut services: Vec<String> = self
            .rules
            .iter()
            .flat_map(|r| self.dedup.firing_services(&r.name))
            .collect();
        if self.rules.iter().any(watches_quiet_services) {
            services.extend(self.last_seen.keys().cloned());
        }
        services.sort();
        services.dedup();
        services
    }

    /// Evaluates every window ending at or before `closed_until_ms` not yet
    /// evaluated; `windows` are the records of those windows (any order).
    /// `raised_at_ms` stamps the notices.
    pub fn evaluate(
        &mut self,
        windows: &[WindowRecord],
        closed_until_ms: i64,
        raised_at_ms: i64,
    ) -> Vec<AlertRecord> {
        let mut by_start: BTreeMap<i64, BTreeMap<&str, &WindowRecord>> = BTreeMap::new();
        for w in windows {
            by_start
                .entry(w.window_start_ms)
                .or_default()
                .insert(w.service.as_str(), w);
        }
        let first_record = by_start.keys().next().copied();
        let mut start = match (self.evaluated_until, first_record) {
            (Some(e), _) => e,
            (None, Some(r)) => r,
            (None, None) => {
                self.evaluated_until = Some(closed_until_ms);
                return Vec::new();
            }
        };
        let mut notices = Vec::new();
        let mut fired_in_call = HashSet::new();
        let empty = BTreeMap::new();
        while start.saturating_add(self.size_ms) <= closed_until_ms {
            if self.last_seen.is_empty() && self.dedup.firing() == 0 {
                // Nothing can happen until the next window with events.
                match by_start.range(start..).next() {
                    Some((&next, _)) if next > start => start = next,
                    Some(_) => {}
                    None => break,
                }
            }
            let records = by_start.get(&start).unwrap_or(&empty);
            let before = notices.len();
            self.evaluate_window(start, records, raised_at_ms, &mut notices);
            // Within one call (a jump over many windows), a reminder right
            // after a notice of the same alert says nothing new.
            let mut i = before;
            while i < notices.len() {
                let key = (notices[i].rule.clone(), notices[i].service.clone());
                let keep = match notices[i].state {
                    AlertState::Firing => fired_in_call.insert(key),
                    AlertState::Resolved => {
                        fired_in_call.remove(&key);
                        true
                    }
                };
                if keep {
                    i += 1;
                } else {
                    notices.remove(i);
                }
            }
            start = start.saturating_add(self.size_ms);
        }
        self.evaluated_until = Some(window_floor(closed_until_ms, self.size_ms).max(start));
        notices
    }

    fn evaluate_window(
        &mut self,
        start: i64,
        records: &BTreeMap<&str, &WindowRecord>,
        raised_at_ms: i64,
        notices: &mut Vec<AlertRecord>,
    ) {
        let end = start.saturating_add(self.size_ms);
        for rule in &self.rules {
            let mut services: Vec<String> = records.keys().map(|s| s.to_string()).collect();
            services.extend(self.dedup.firing_services(&rule.name));
            if watches_quiet_services(rule) {
                services.extend(self.last_seen.keys().cloned());
            }
            services.sort();
            services.dedup();
            for service in services.iter().filter(|s| rule.applies_to(s)) {
                let window = records.get(service.as_str()).copied();
                let seen_before = match (rule.rhythm, self.last_seen.get(service)) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    // A silence already firing holds until the service returns.
                    (Some(rhythm), Some(a)) => {
                        a.established(start, self.size_ms, rhythm)
                            || self.dedup.is_firing(&rule.name, service)
                    }
                };
                let (holds, value, threshold, anomaly) = match &rule.anomaly {
                    Some(spec) => {
                        let Some((value, noise)) =
                            measure(spec.metric, rule.tag.as_deref(), rule.min_events, window)
                        else {
                            // Too few events for a rate: nothing to judge.
                            continue;
                        };
                        let key = BaselineKey::new(&rule.name, service);
                        let tracked =
                            self.baselines
                                .entry(key)
                                .or_insert_with(|| TrackedBaseline {
                                    stored_updates: None,
                                    baseline: Baseline::new(
                                        spec.series(rule.tag.as_deref()),
                                        spec.seasonality,
                                    ),
                                });
                        let params = Params::new(spec, self.size_ms);
                        let verdict = tracked.baseline.observe(&params, start, value, noise);
                        (verdict.holds(), value, verdict.edge(), Some(verdict))
                    }
                    None => {
                        let eval = rule.evaluate(window, seen_before);
                        (eval.holds, eval.value, rule.threshold, None)
                    }
                };
                let Some(state) = self.dedup.step(&rule.name, service, start, holds) else {
                    continue;
                };
                let firing = state == AlertState::Firing;
                let message = match &anomaly {
                    Some(verdict) => rule.describe_anomaly(verdict, firing),
                    None => rule.describe(value, firing),
                };
                notices.push(AlertRecord {
                    id: format!("{}:{service}:{start}:{}", rule.name, state.as_str()),
                    rule: rule.name.clone(),
                    service: service.clone(),
                    state,
                    severity: rule.severity.as_str().to_string(),
                    window_start_ms: start,
                    window_end_ms: end,
                    raised_at_ms,
                    value,
                    threshold,
                    message,
                });
            }
        }
        for service in records.keys() {
            match self.last_seen.get_mut(*service) {
                Some(seen) => seen.record(start, self.size_ms),
                None => {
                    self.last_seen
                        .insert(service.to_string(), Activity::new(start));
                }
            }
        }
        let forget: Vec<String> = self
            .last_seen
            .iter()
            .filter(|(_, seen)| start.saturating_sub(seen.last_window()) >= FORGET_AFTER_MS)
            .map(|(s, _)| s.clone())
            .collect();
        for service in forget {
            self.last_seen.remove(&service);
            self.dedup.forget_service(&service);
            // Stored baselines stay; the service resumes them when it returns.
            self.baselines.retain(|k, t| {
                k.service != service || Some(t.baseline.updates) != t.stored_updates
            });
        }
    }
}

fn window_floor(ts_ms: i64, size_ms: i64) -> i64 {
    crate::windows::window_start(ts_ms, size_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{compile_rules, default_rules};

    const W: i64 = 300_000;

    fn record(start: i64, service: &str, severity: [u64; 4]) -> WindowRecord {
        WindowRecord {
            window_start_ms: start,
            window_end_ms: start + W,
            service: service.into(),
            events: severity.iter().sum(),
            severity,
            tags: BTreeMap::new(),
        }
    }

    fn evaluator() -> AlertEvaluator {
        AlertEvaluator::new(compile_rules(&default_rules()).unwrap(), W, 900_000)
    }

    fn summary(notices: &[AlertRecord]) -> Vec<(String, String, &'static str, i64)> {
        notices
            .iter()
            .map(|n| {
                (
                    n.rule.clone(),
                    n.service.clone(),
                    n.state.as_str(),
                    n.window_start_ms,
                )
            })
            .collect()
    }

    #[test]
    fn error_burst_fires_once_then_resolves_once() {
        let mut e = evaluator();
        let t0 = 100 * W;
        let n = e.evaluate(&[record(t0, "api", [5, 0, 14, 0])], t0 + W, 1);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].id, format!("error_burst:api:{t0}:firing"));
        assert_eq!(n[0].message, "14 errors > 10");
        assert_eq!(n[0].severity, "ERROR");
        assert_eq!(n[0].value, 14.0);
        assert_eq!(n[0].threshold, 10.0);
        // Still bursting: nothing new.
        let n = e.evaluate(&[record(t0 + W, "api", [5, 0, 12, 0])], t0 + 2 * W, 2);
        assert!(n.is_empty());
        // Clean window: exactly one resolution.
        let n = e.evaluate(&[record(t0 + 2 * W, "api", [9, 0, 0, 0])], t0 + 3 * W, 3);
        assert_eq!(
            summary(&n),
            [("error_burst".into(), "api".into(), "resolved", t0 + 2 * W)]
        );
        let n = e.evaluate(&[record(t0 + 3 * W, "api", [9, 0, 0, 0])], t0 + 4 * W, 4);
        assert!(n.is_empty());
    }

    #[test]
    fn silence_fires_when_a_service_stops_and_resolves_when_it_returns() {
        let mut e = evaluator();
        let t0 = 100 * W;
        // Both log in three windows: an established rhythm.
        for k in 0..3 {
            let n = e.evaluate(
                &[
                    record(t0 + k * W, "api", [5, 0, 0, 0]),
                    record(t0 + k * W, "web", [5, 0, 0, 0]),
                ],
                t0 + (k + 1) * W,
                0,
            );
            assert!(n.is_empty(), "{n:?}");
        }
        let t3 = t0 + 3 * W;
        // web goes quiet.
        let n = e.evaluate(&[record(t3, "api", [5, 0, 0, 0])], t3 + W, 0);
        assert_eq!(
            summary(&n),
            [("silence".into(), "web".into(), "firing", t3)]
        );
        // Nothing at all for two windows (closed by the idle timeout): api
        // goes silent too, web stays silent without a new notice.
        let n = e.evaluate(&[], t3 + 3 * W, 0);
        assert_eq!(
            summary(&n),
            [("silence".into(), "api".into(), "firing", t3 + W)]
        );
        let n = e.evaluate(&[record(t3 + 3 * W, "web", [1, 0, 0, 0])], t3 + 4 * W, 0);
        assert_eq!(
            summary(&n),
            [("silence".into(), "web".into(), "resolved", t3 + 3 * W)]
        );
        assert_eq!(n[0].id, format!("silence:web:{}:resolved", t3 + 3 * W));
    }

    #[test]
    fn services_seen_once_raise_no_silence() {
        // A sample file: a dozen services, each logging once in one window.
        let mut e = evaluator();
        let t0 = 100 * W;
        let records: Vec<WindowRecord> = (0..12)
            .map(|i| record(t0, &format!("svc{i}"), [1, 0, 0, 0]))
            .collect();
        assert!(e.evaluate(&records, t0 + W, 0).is_empty());
        let n = e.evaluate(&[], t0 + 20 * W, 0);
        assert!(n.is_empty(), "{:?}", summary(&n));
        // Two windows are not a rhythm either (the default needs three).
        let mut e = evaluator();
        e.evaluate(&[record(t0, "api", [1, 0, 0, 0])], t0 + W, 0);
        e.evaluate(&[record(t0 + W, "api", [1, 0, 0, 0])], t0 + 2 * W, 0);
        assert!(e.evaluate(&[], t0 + 10 * W, 0).is_empty());
    }

    #[test]
    fn firing_alert_resolves_in_an_empty_window() {
        let mut e = evaluator();
        let t0 = 100 * W;
        let n = e.evaluate(&[record(t0, "api", [0, 0, 0, 2])], t0 + W, 0);
        assert_eq!(summary(&n)[0].0, "critical");
        let n = e.evaluate(&[], t0 + 2 * W, 0);
        let s = summary(&n);
        assert_eq!(s, [("critical".into(), "api".into(), "resolved", t0 + W)]);
    }

    #[test]
    fn cooldown_reminder_follows_window_starts() {
        let mut e = evaluator();
        let t0 = 100 * W;
        let mut fired = Vec::new();
        for i in 0..5 {
            let start = t0 + i * W;
            let n = e.evaluate(&[record(start, "api", [0, 0, 0, 1])], start + W, 0);
            fired.extend(summary(&n));
        }
        let starts: Vec<i64> = fired.iter().map(|f| f.3).collect();
        assert_eq!(starts, [t0, t0 + 3 * W]);
    }

    #[test]
    fn long_gaps_forget_services_without_walking_every_window() {
        let mut e = evaluator();
        for k in 0..3 {
            e.evaluate(&[record(k * W, "api", [1, 0, 0, 0])], (k + 1) * W, 0);
        }
        // A year later: api was silent (one notice), then forgotten.
        let year = 365 * 24 * 3_600_000;
        let n = e.evaluate(&[record(year, "web", [1, 0, 0, 0])], year + W, 0);
        assert_eq!(
            summary(&n),
            [("silence".into(), "api".into(), "firing", 3 * W)]
        );
        assert!(e.last_seen.contains_key("web"));
        assert!(!e.last_seen.contains_key("api"));
        assert_eq!(e.dedup.firing(), 0);
    }

    #[test]
    fn tracked_services_are_the_firing_and_with_silence_the_seen() {
        let mut e = evaluator();
        assert_eq!(e.evaluated_until(), None);
        assert!(e.tracked_services().is_empty());
        e.evaluate(
            &[
                record(0, "api", [0, 0, 11, 0]),
                record(0, "web", [1, 0, 0, 0]),
            ],
            W,
            0,
        );
        assert_eq!(e.evaluated_until(), Some(W));
        assert_eq!(e.tracked_services(), ["api", "web"]);
        // Without a silence rule, only the firing ones.
        let rules: Vec<Rule> = compile_rules(&default_rules())
            .unwrap()
            .into_iter()
            .filter(|r| r.kind != RuleKind::Silence)
            .collect();
        let mut e = AlertEvaluator::new(rules, W, 900_000);
        e.evaluate(
            &[
                record(0, "api", [0, 0, 11, 0]),
                record(0, "web", [1, 0, 0, 0]),
            ],
            W,
            0,
        );
        assert_eq!(e.tracked_services(), ["api"]);
    }
}
