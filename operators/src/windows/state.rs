//! Window state: pure counting and watermark logic, no clocks inside (time is
//! passed in), so every rule below is tested without I/O.
//!
//! # Semantics
//!
//! - Windows are tumbling, aligned to the epoch: the window of an event at `ts`
//!   is `[window_start(ts), window_start(ts) + size)` (UTC milliseconds).
//! - The **watermark** is the largest event time seen minus the allowed
//!   lateness. Event times ahead of processing time count only up to
//!   processing time (a clock-skew guard: one event stamped in the far future
//!   must not close every window). The watermark never moves backwards.
//! - Between [`WindowState::begin_batch`] and [`WindowState::end_batch`] the
//!   watermark stands still: every event of a batch is judged against the
//!   watermark as it was before the batch, and it moves once, at the end. The
//!   order of events inside a batch (which the journal's coalescing of pushes
//!   and the grouping of a batch by service decide) then cannot make one of
//!   them late.
//! - A window is **closed** once the watermark reaches its end
//!   (`watermark >= end`). An event whose window is closed is **late**: it is
//!   counted in [`WindowState::late_events`] and not added to any window (the
//!   lake still archives it).
//! - **Idle timeout**: when no event (late or not) has arrived for
//!   `idle_timeout` of processing time, the watermark moves to at least
//!   `processing now - allowed lateness`, so windows whose end is at or before
//!   that close even when traffic has stopped.
//! - [`WindowState::advance`] applies the idle rule and returns the windows that
//!   closed since the last call, ordered by window start, then service.

use std::collections::BTreeMap;

use crate::alerts::record::WindowRecord;
use crate::event::Severity;

/// Start of the tumbling window of `size_ms` containing `ts_ms` (floor, also
/// for negative times).
///
/// ```
/// use spate_operators::windows::window_start;
/// assert_eq!(window_start(299_999, 300_000), 0);
/// assert_eq!(window_start(300_000, 300_000), 300_000);
/// assert_eq!(window_start(-1, 300_000), -300_000);
/// ```
pub fn window_start(ts_ms: i64, size_ms: i64) -> i64 {
    let size = size_ms.max(1);
    ts_ms.div_euclid(size) * size
}

/// Counts of one (window, service).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    events: u64,
    severity: [u64; 4],
    tags: BTreeMap<String, u64>,
}

/// Open windows, the watermark and the late counter.
#[derive(Debug, Clone)]
pub struct WindowState {
    size_ms: i64,
    lateness_ms: i64,
    idle_timeout_ms: i64,
    /// Open windows by start, then service.
    open: BTreeMap<i64, BTreeMap<String, Counts>>,
    watermark_ms: Option<i64>,
    /// Inside a batch: the largest watermark its events ask for so far.
    batch: Option<Option<i64>>,
    last_event_at_ms: Option<i64>,
    late_events: u64,
}

impl WindowState {
    /// Empty state for windows of `size_ms`, with `lateness_ms` of allowed
    /// lateness and an idle timeout of `idle_timeout_ms` (processing time).
    pub fn new(size_ms: i64, lateness_ms: i64, idle_timeout_ms: i64) -> Self {
        WindowState {
            size_ms: size_ms.max(1),
            lateness_ms: lateness_ms.max(0),
            idle_timeout_ms: idle_timeout_ms.max(0),
            open: BTreeMap::new(),
            watermark_ms: None,
            batch: None,
            last_event_at_ms: None,
            late_events: 0,
        }
    }

    /// Window size, milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The watermark, `None` before the first event.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.watermark_ms
    }

    /// End of the latest closed window: every window ending at or before it is
    /// closed. `None` before the first event.
    pub fn closed_until_ms(&self) -> Option<i64> {
        self.watermark_ms.map(|w| window_start(w, self.size_ms))
    }

    /// Late events seen so far.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Number of open (window, service) counters.
    pub fn open_windows(&self) -> usize {
        self.open.values().map(BTreeMap::len).sum()
    }

    fn raise_watermark(&mut self, candidate: i64) {
        if let Some(pending) = &mut self.batch {
            *pending = Some(pending.map_or(candidate, |p| p.max(candidate)));
            return;
        }
        let wm = self.watermark_ms.map_or(candidate, |w| w.max(candidate));
        self.watermark_ms = Some(wm);
    }

    /// Starts a batch: until [`WindowState::end_batch`] the watermark does
    /// not move, so no event of the batch is late because of another one.
    pub fn begin_batch(&mut self) {
        self.batch.get_or_insert(None);
    }

    /// Ends a batch: the watermark moves to what its events ask for.
    pub fn end_batch(&mut self) {
        if let Some(Some(candidate)) = self.batch.take() {
            self.raise_watermark(candidate);
        }
    }

    /// Counts one event at processing time `now_ms`; returns `false` when it
    /// is late (counted as late, not added to a window).
    pub fn observe<'a>(
        &mut self,
        now_ms: i64,
        ts_ms: i64,
        service: &str,
        severity: Severity,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        self.last_event_at_ms = Some(now_ms);
        let start = window_start(ts_ms, self.size_ms);
        let end = start.saturating_add(self.size_ms);
        if self.watermark_ms.is_some_and(|wm| wm >= end) {
            self.late_events += 1;
            return false;
        }
        let counts = self.open.entry(start).or_default();
        let counts = match counts.get_mut(service) {
            Some(c) => c,
            None => counts.entry(service.to_string()).or_default(),
        };
        counts.events += 1;
        counts.severity[severity.index()] += 1;
        for tag in tags {
            match counts.tags.get_mut(tag) {
                Some(n) => *n += 1,
                None => {
                    counts.tags.insert(tag.to_string(), 1);
                }
            }
        }
        self.raise_watermark(ts_ms.min(now_ms).saturating_sub(self.lateness_ms));
        true
    }

    /// Applies the idle timeout at processing time `now_ms`, then closes every
    /// window the watermark has reached, returning them ordered by start and
    /// service.
    pub fn advance(&mut self, now_ms: i64) -> Vec<WindowRecord> {
        if let Some(last) = self.last_event_at_ms
            && now_ms.saturating_sub(last) >= self.idle_timeout_ms
        {
            self.raise_watermark(now_ms.saturating_sub(self.lateness_ms));
        }
        let Some(wm) = self.watermark_ms else {
            return Vec::new();
        };
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            let start = *entry.key();
            let end = start.saturating_add(self.size_ms);
            if end > wm {
                break;
            }
            for (service, c) in entry.remove() {
                closed.push(WindowRecord {
                    window_start_ms: start,
                    window_end_ms: end,
                    service,
                    events: c.events,
                    severity: c.severity,
                    tags: c.tags,
                });
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const SIZE: i64 = 5 * MIN;

    fn state() -> WindowState {
        // 5 min windows, 1 min lateness, 30 s idle timeout.
        WindowState::new(SIZE, MIN, 30_000)
    }

    #[test]
    fn events_of_one_batch_are_judged_against_the_watermark_before_it() {
        let now = 100 * SIZE;
        let mut s = state();
        s.observe(now, 10 * SIZE, "api", Severity::Info, []);
        // One batch: an event 15 minutes later comes first (batches are
        // grouped by service), then one of the window still open.
        s.begin_batch();
        assert!(s.observe(now, 13 * SIZE, "web", Severity::Info, []));
        assert!(s.observe(now, 10 * SIZE + MIN, "api", Severity::Error, []));
        assert_eq!(s.watermark_ms(), Some(10 * SIZE - MIN));
        s.end_batch();
        assert_eq!(s.watermark_ms(), Some(13 * SIZE - MIN));
        assert_eq!(s.late_events(), 0);
        let closed = s.advance(now);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].service, "api");
        assert_eq!(closed[0].events, 2);
        // The next batch: now it is late.
        s.begin_batch();
        assert!(!s.observe(now, 10 * SIZE + 2 * MIN, "api", Severity::Error, []));
        s.end_batch();
        assert_eq!(s.late_events(), 1);
        // Without events an ended batch leaves the watermark alone.
        s.begin_batch();
        s.end_batch();
        assert_eq!(s.watermark_ms(), Some(13 * SIZE - MIN));
    }

    #[test]
    fn window_start_floors_including_negative_and_boundaries() {
        assert_eq!(window_start(0, SIZE), 0);
        assert_eq!(window_start(SIZE - 1, SIZE), 0);
        assert_eq!(window_start(SIZE, SIZE), SIZE);
        assert_eq!(window_start(SIZE + 1, SIZE), SIZE);
        assert_eq!(window_start(-1, SIZE), -SIZE);
        assert_eq!(window_start(-SIZE, SIZE), -SIZE);
        assert_eq!(window_start(-SIZE - 1, SIZE), -2 * SIZE);
        assert_eq!(window_start(1_763_892_123_456, SIZE), 1_763_892_000_000);
        // A zero size is treated as 1 ms rather than dividing by zero.
        assert_eq!(window_start(42, 0), 42);
    }

    #[test]
    fn counts_per_window_service_severity_and_tag() {
        let mut s = state();
        let now = 10 * SIZE;
        assert!(s.observe(now, SIZE + 1, "api", Severity::Error, ["http_5xx"]));
        assert!(s.observe(now, SIZE + 2, "api", Severity::Info, []));
        assert!(s.observe(now, SIZE + 3, "web", Severity::Critical, ["a", "b"]));
        assert!(s.observe(now, 2 * SIZE + MIN, "api", Severity::Warning, ["http_5xx"]));
        assert_eq!(s.open_windows(), 3);
        let closed = s.advance(now);
        // Idle timeout not reached (now == last event): watermark = 2*SIZE.
        assert_eq!(closed.len(), 2);
        assert_eq!(closed[0].service, "api");
        assert_eq!(closed[0].window_start_ms, SIZE);
        assert_eq!(closed[0].window_end_ms, 2 * SIZE);
        assert_eq!(closed[0].events, 2);
        assert_eq!(closed[0].severity, [1, 0, 1, 0]);
        assert_eq!(closed[0].tags.get("http_5xx"), Some(&1));
        assert_eq!(closed[1].service, "web");
        assert_eq!(closed[1].severity, [0, 0, 0, 1]);
        assert_eq!(closed[1].tags.len(), 2);
        assert_eq!(s.open_windows(), 1);
    }

    #[test]
    fn watermark_is_max_event_time_minus_lateness_and_never_goes_back() {
        let mut s = state();
        let now = 100 * SIZE;
        assert_eq!(s.watermark_ms(), None);
        s.observe(now, 10 * SIZE, "api", Severity::Info, []);
        assert_eq!(s.watermark_ms(), Some(10 * SIZE - MIN));
        s.observe(now, 9 * SIZE + 4 * MIN + 30_000, "api", Severity::Info, []);
        assert_eq!(s.watermark_ms(), Some(10 * SIZE - MIN));
        // The window [9*SIZE, 10*SIZE) ends after the watermark: still open.
        assert!(s.advance(now).is_empty());
        s.observe(now, 10 * SIZE + MIN, "api", Severity::Info, []);
        assert_eq!(s.watermark_ms(), Some(10 * SIZE));
        let closed = s.advance(now);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].window_start_ms, 9 * SIZE);
        assert_eq!(s.closed_until_ms(), Some(10 * SIZE));
    }

    #[test]
    fn late_events_are_counted_not_added() {
        let mut s = state();
        let now = 100 * SIZE;
        s.observe(now, SIZE, "api", Severity::Error, []);
        s.observe(now, 2 * SIZE + MIN, "api", Severity::Info, []);
        let closed = s.advance(now);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].events, 1);
        // An event for the closed window is late, also before advance runs.
        assert!(!s.observe(now, SIZE + 10, "api", Severity::Error, []));
        // Within the allowed lateness of the open window: accepted.
        assert!(s.observe(now, 2 * SIZE, "api", Severity::Error, []));
        assert_eq!(s.late_events(), 1);
        s.observe(now, 3 * SIZE + MIN, "api", Severity::Info, []);
        let closed = s.advance(now);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].window_start_ms, 2 * SIZE);
        assert_eq!(closed[0].events, 2);
        assert_eq!(closed[0].severity, [1, 0, 1, 0]);
    }

    #[test]
    fn idle_timeout_moves_the_watermark_with_processing_time() {
        let mut s = state();
        let t0 = 10 * SIZE + 10_000;
        s.observe(t0, 10 * SIZE, "api", Severity::Info, []);
        // Not idle yet.
        assert!(s.advance(t0 + 29_999).is_empty());
        // Idle, but now - lateness is still before the window's end.
        assert!(s.advance(t0 + 30_000).is_empty());
        assert_eq!(s.watermark_ms(), Some(t0 + 30_000 - MIN));
        // Processing time reaches end + lateness: the window closes.
        let closed = s.advance(11 * SIZE + MIN);
        assert_eq!(closed.len(), 1);
        assert_eq!(s.watermark_ms(), Some(11 * SIZE));
    }

    #[test]
    fn future_event_times_count_only_up_to_processing_time() {
        let mut s = state();
        let now = 10 * SIZE;
        s.observe(now, 1_000 * SIZE, "api", Severity::Info, []);
        assert_eq!(s.watermark_ms(), Some(now - MIN));
        // Events of the present are not late because of the skewed one.
        assert!(s.observe(now, now - 10, "api", Severity::Info, []));
    }
}
