//! "The `limit` newest events": gathered block by block, newest blocks
//! first, building only the events that can be in the answer.
//!
//! A reader hands each block's times and severities to
//! [`NewestEvents::select`] before it builds any event of the block
//! ([`unpack_where`](crate::sinks::dynamo_hot::block::unpack_where)), and
//! stops at the first block [`NewestEvents::wants`] refuses. Both hot
//! stores read this way (SQLite's `event_blocks` rows, a DynamoDB service
//! partition's items) and answer in the order of [`newest_first`].

use std::cmp::Ordering;
use std::collections::HashSet;

use super::event::{HotEvent, StoredEvent};
use crate::event::Severity;

/// The newest events of a range found so far, at most `limit` of them once
/// done.
///
/// ```
/// use spate_operators::event::Severity;
/// use spate_operators::sinks::hot::newest::NewestEvents;
/// use spate_operators::sinks::hot::StoredEvent;
/// let event = |n: i64| StoredEvent {
///     event_id: format!("test:{n}"), ts_ms: n, severity: Severity::Error, host: None,
///     source: "test".into(), log_group: None, log_stream: None, tags: vec![],
///     status: None, client_ip: None, message: "boom".into(), attrs: None,
/// };
/// // The 2 newest before 100.
/// let mut newest = NewestEvents::new(0, 100, None, 2);
/// let times = [10, 20, 30, 120];
/// let picked = newest.select(&times, &[Severity::Error; 4]);
/// assert_eq!(picked, [false, true, true, false]);
/// newest.add("api", vec![event(20), event(30)]);
/// assert!(!newest.wants(15), "a block of events before 20 cannot be in the answer");
/// let answer = newest.finish();
/// assert_eq!(answer.iter().map(|e| e.event.ts_ms).collect::<Vec<_>>(), [30, 20]);
/// ```
#[derive(Debug)]
pub struct NewestEvents {
    since_ms: i64,
    until_ms: i64,
    min_severity: Option<Severity>,
    limit: usize,
    /// Events found, each with the index of its service in `services`.
    found: Vec<(usize, StoredEvent)>,
    services: Vec<String>,
    /// Once `limit` events are found, the time of the `limit`-th newest.
    floor_ms: Option<i64>,
}

impl NewestEvents {
    /// The `limit` newest events at or after `since_ms` and before
    /// `until_ms`, at or above `min_severity` (`None`: every severity).
    pub fn new(since_ms: i64, until_ms: i64, min_severity: Option<Severity>, limit: usize) -> Self {
        NewestEvents {
            since_ms,
            until_ms,
            min_severity,
            limit,
            found: Vec::new(),
            services: Vec::new(),
            floor_ms: (limit == 0).then_some(i64::MAX),
        }
    }

    /// Whether a block whose newest event is at `last_ms` can hold an event
    /// of the answer: not once `limit` newer ones are found. Blocks read in
    /// the order of their newest event need no reading after the first one
    /// refused.
    pub fn wants(&self, last_ms: i64) -> bool {
        self.floor_ms.is_none_or(|floor| last_ms >= floor)
    }

    /// Which events of a block (their times and severities, in block order)
    /// to build: those in the range and severe enough, none older than the
    /// `limit` newest found, and of those at most the `limit` newest (more
    /// when several share the time of the last).
    pub fn select(&self, times: &[i64], severities: &[Severity]) -> Vec<bool> {
        let mut picked: Vec<bool> = times
            .iter()
            .zip(severities)
            .map(|(&ts, &severity)| {
                ts >= self.since_ms
                    && ts < self.until_ms
                    && self.min_severity.is_none_or(|m| severity >= m)
                    && self.floor_ms.is_none_or(|floor| ts >= floor)
            })
            .collect();
        let mut kept: Vec<i64> = times
            .iter()
            .zip(&picked)
            .filter_map(|(&ts, &p)| p.then_some(ts))
            .collect();
        if kept.len() > self.limit && self.limit > 0 {
            let (_, &mut cut, _) = kept.select_nth_unstable_by(self.limit - 1, |a, b| b.cmp(a));
            for (p, &ts) in picked.iter_mut().zip(times) {
                *p = *p && ts >= cut;
            }
        }
        picked
    }

    /// Adds the events of a block of `service` built from [`select`]'s
    /// answer. An event whose id is already found (a batch redelivered into
    /// another block) is kept once.
    ///
    /// [`select`]: Self::select
    pub fn add(&mut self, service: &str, events: Vec<StoredEvent>) {
        if events.is_empty() {
            return;
        }
        if self.services.last().is_none_or(|s| s != service) {
            self.services.push(service.to_string());
        }
        let s = self.services.len() - 1;
        self.found.extend(events.into_iter().map(|e| (s, e)));
        if self.limit > 0 && self.found.len() >= self.limit {
            self.settle();
        }
    }

    /// Sorts what is found newest first, keeps one event per id (the
    /// newest), drops all but the `limit` newest (no later block can bring
    /// one of them back) and moves the floor up to the last kept.
    fn settle(&mut self) {
        self.found.sort_by(|(_, a), (_, b)| newer_first(a, b));
        let first_of_its_id: Vec<bool> = {
            let mut ids = HashSet::with_capacity(self.found.len());
            self.found
                .iter()
                .map(|(_, e)| ids.insert(e.event_id.as_str()))
                .collect()
        };
        let mut first = first_of_its_id.into_iter();
        self.found.retain(|_| first.next().unwrap_or(false));
        self.found.truncate(self.limit);
        if self.found.len() == self.limit {
            self.floor_ms = self.found.last().map(|(_, e)| e.ts_ms);
        }
    }

    /// The answer: at most `limit` events, newest first.
    pub fn finish(mut self) -> Vec<HotEvent> {
        self.settle();
        self.found
            .into_iter()
            .map(|(s, event)| HotEvent::new(self.services[s].clone(), event))
            .collect()
    }
}

/// Sorts newest first: time, then id, both descending (the order of both
/// hot stores' answers).
pub(crate) fn newest_first(events: &mut [HotEvent]) {
    events.sort_by(|a, b| newer_first(&a.event, &b.event));
}

/// The order of the answers: time, then id, both descending.
fn newer_first(a: &StoredEvent, b: &StoredEvent) -> Ordering {
    (b.ts_ms, &b.event_id).cmp(&(a.ts_ms, &a.event_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::event::tests::stored;

    fn ids(events: &[HotEvent]) -> Vec<(String, i64, String)> {
        events
            .iter()
            .map(|e| (e.service.clone(), e.event.ts_ms, e.event.event_id.clone()))
            .collect()
    }

    /// The answer of [`NewestEvents`] over `blocks` (newest block first,
    /// events oldest first in each), and the events it built.
    fn gather(
        blocks: &[(&str, Vec<StoredEvent>)],
        since_ms: i64,
        until_ms: i64,
        min: Option<Severity>,
        limit: usize,
    ) -> (Vec<HotEvent>, usize) {
        let mut newest = NewestEvents::new(since_ms, until_ms, min, limit);
        let mut built = 0;
        for (service, events) in blocks {
            if !newest.wants(events.last().unwrap().ts_ms) {
                break;
            }
            let times: Vec<i64> = events.iter().map(|e| e.ts_ms).collect();
            let severities: Vec<Severity> = events.iter().map(|e| e.severity).collect();
            let picked = newest.select(&times, &severities);
            let chosen: Vec<StoredEvent> = events
                .iter()
                .zip(picked)
                .filter(|&(_, p)| p)
                .map(|(e, _)| e.clone())
                .collect();
            built += chosen.len();
            newest.add(service, chosen);
        }
        (newest.finish(), built)
    }

    /// The answer by brute force: every event of every block, filtered,
    /// one per id, newest first.
    fn expected(
        blocks: &[(&str, Vec<StoredEvent>)],
        since_ms: i64,
        until_ms: i64,
        min: Option<Severity>,
        limit: usize,
    ) -> Vec<HotEvent> {
        let mut all: Vec<HotEvent> = Vec::new();
        let mut seen = HashSet::new();
        for (service, events) in blocks {
            for e in events {
                let keep = e.ts_ms >= since_ms
                    && e.ts_ms < until_ms
                    && min.is_none_or(|m| e.severity >= m)
                    && seen.insert(e.event_id.clone());
                if keep {
                    all.push(HotEvent::new(service.to_string(), e.clone()));
                }
            }
        }
        newest_first(&mut all);
        all.truncate(limit);
        all
    }

    #[test]
    fn the_answer_is_the_newest_of_all_blocks_and_few_events_are_built() {
        // Three services, blocks of 50 events 1 ms apart, interleaved in
        // time; blocks handed over by their newest event, newest first.
        let mut blocks: Vec<(&str, Vec<StoredEvent>)> = Vec::new();
        for b in 0..6u64 {
            for (s, service) in ["api", "db", "web"].into_iter().enumerate() {
                let events = (0..50u64)
                    .map(|i| {
                        let n = b * 150 + i * 3 + s as u64;
                        stored(n, 1_000 + n as i64)
                    })
                    .collect();
                blocks.push((service, events));
            }
        }
        blocks.sort_by_key(|(_, events)| std::cmp::Reverse(events.last().unwrap().ts_ms));
        for (since, until, min, limit) in [
            (0, i64::MAX, None, 10),
            (0, i64::MAX, None, 100),
            (0, i64::MAX, Some(Severity::Critical), 7),
            (1_300, 1_500, None, 40),
            (1_300, 1_500, None, 1_000),
            (0, i64::MAX, None, 0),
        ] {
            let (answer, built) = gather(&blocks, since, until, min, limit);
            assert_eq!(
                ids(&answer),
                ids(&expected(&blocks, since, until, min, limit)),
                "{since}..{until} {min:?} limit {limit}"
            );
            if limit == 10 {
                assert!(built <= 30, "built {built} of 900 for 10");
            }
        }
    }

    #[test]
    fn a_redelivered_block_adds_nothing_and_does_not_end_the_search_early() {
        let older: Vec<StoredEvent> = (0..5).map(|i| stored(i, 100 + i as i64)).collect();
        let newer: Vec<StoredEvent> = (5..10).map(|i| stored(i, 100 + i as i64)).collect();
        // The newer block twice (redelivered into another commit), then
        // the older one: the 8 newest span both.
        let blocks = [("api", newer.clone()), ("api", newer), ("api", older)];
        let (answer, _) = gather(&blocks, 0, i64::MAX, None, 8);
        assert_eq!(ids(&answer), ids(&expected(&blocks, 0, i64::MAX, None, 8)));
        assert_eq!(answer.len(), 8);
    }

    #[test]
    fn events_sharing_the_time_of_the_cut_are_all_kept() {
        let newest = NewestEvents::new(0, i64::MAX, None, 2);
        let picked = newest.select(&[5, 7, 7, 7], &[Severity::Error; 4]);
        assert_eq!(picked, [false, true, true, true]);
    }
}
