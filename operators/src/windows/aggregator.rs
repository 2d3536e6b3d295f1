//! The window aggregator actor: counts every event of each [`LogBatch`] in its
//! event-time window ([`WindowState`]), closes windows as the watermark passes
//! them, and sends a [`WindowOutput`] (the closed windows, and the bound every
//! window before which is closed) downstream, unacked. It knows nothing of
//! alert rules: the alert router ([`crate::alerts::router`]) decides on the
//! closed windows.
//!
//! An output is sent when windows close, and then at every later move of the
//! closed bound ([`WindowOutput::closed_until_ms`]), also without a window,
//! so that the router sees silence and resolutions when traffic stops.
//!
//! # Acknowledgement and durability
//!
//! Window state lives in memory. The input batch's ack is delivered right after
//! its events are counted (the lake archives the events themselves). A crash
//! loses the counts of the open windows; when the source replays the
//! unacknowledged batches, their events for windows that had already closed
//! count as late, so nothing is counted twice.
//!
//! # Processing time
//!
//! Processing time comes from tokio's clock, mapped to wall-clock milliseconds
//! through the pair (`wall_clock_ms()`, `Instant::now()`) captured at
//! construction, so it runs deterministically under a paused clock.
//!
//! # Backpressure
//!
//! Sending a [`WindowOutput`] waits while the alert router's mailbox is full;
//! outputs are small and rare (one per closing window).
//!
//! # Shutdown
//!
//! `flush` and `close` do not close open windows early (their counts would be
//! wrong, and an early `resolved` or `silence` misleading): the counts of open
//! windows are lost at shutdown, like at a crash.
//!
//! Metrics: `spate_window_late_events_total`, `spate_windows_closed_total`,
//! `spate_window_watermark_lag_seconds` (processing now − watermark),
//! `spate_window_open` (open (window, service) counters).

use std::time::Duration;

use arrow_array::{Array, ListArray, RecordBatch, StringArray, TimestampMillisecondArray};
use spate_engine::{Actor, ActorError, ActorResult, Batch, Ctx, Payload};
use tokio::time::Instant;

use super::config::WindowConfig;
use super::state::WindowState;
use crate::alerts::record::WindowRecord;
use crate::event::{Severity, wall_clock_ms};
use crate::log_batch::LogBatch;

/// What the aggregator sends: the windows that closed, and how far windows
/// are closed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowOutput {
    /// Closed windows, by start then service.
    pub windows: Vec<WindowRecord>,
    /// Every window ending at or before this is closed (UTC milliseconds);
    /// `None` before the first event.
    pub closed_until_ms: Option<i64>,
}

impl Payload for WindowOutput {
    /// Closed windows (an output only moving `closed_until_ms` is empty).
    fn len(&self) -> usize {
        self.windows.len()
    }
}

/// The window aggregator actor (`LogBatch` in, [`WindowOutput`] out).
pub struct WindowAggregator {
    state: WindowState,
    tick: Duration,
    wall_base_ms: i64,
    clock_base: Instant,
    late_reported: u64,
    /// The last `closed_until_ms` sent.
    sent_until: Option<i64>,
}

impl WindowAggregator {
    /// An aggregator of windows of `windows` (a zero size or tick counts as
    /// 1 ms; [`WindowConfig::validate`] rejects them).
    ///
    /// ```
    /// use spate_operators::windows::{WindowAggregator, WindowConfig};
    /// let aggregator = WindowAggregator::new(&WindowConfig::default());
    /// ```
    pub fn new(windows: &WindowConfig) -> Self {
        Self::with_wall_base(windows, wall_clock_ms())
    }

    /// Reads processing time as if the wall clock showed `wall_base_ms` now
    /// (tests replaying old event times).
    pub fn with_wall_base(windows: &WindowConfig, wall_base_ms: i64) -> Self {
        WindowAggregator {
            state: WindowState::new(
                windows.size_ms(),
                windows.lateness_ms(),
                windows.idle_timeout_ms(),
            ),
            tick: Duration::from_millis(windows.tick_ms.max(1)),
            wall_base_ms,
            clock_base: Instant::now(),
            late_reported: 0,
            sent_until: None,
        }
    }

    /// Processing time, wall-clock milliseconds, advancing with tokio's clock.
    fn now_ms(&self) -> i64 {
        let elapsed = Instant::now().saturating_duration_since(self.clock_base);
        self.wall_base_ms
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }

    /// Counts every row of `batch` at processing time `now_ms`.
    fn count(&mut self, batch: &LogBatch, now_ms: i64) -> Result<(), ActorError> {
        // The parts are grouped by partition, not in arrival order: the
        // watermark moves after the whole batch.
        self.state.begin_batch();
        let counted = self.count_parts(batch, now_ms);
        self.state.end_batch();
        counted?;
        let late = self.state.late_events();
        if late > self.late_reported {
            metrics::counter!("spate_window_late_events_total")
                .increment(late - self.late_reported);
            self.late_reported = late;
        }
        Ok(())
    }

    fn count_parts(&mut self, batch: &LogBatch, now_ms: i64) -> Result<(), ActorError> {
        for part in &batch.parts {
            let columns = EventColumns::of(&part.records)?;
            let service = &*part.key.service;
            for row in 0..part.records.num_rows() {
                let tags = columns.tags(row);
                self.state.observe(
                    now_ms,
                    columns.ts.value(row),
                    service,
                    parse_severity(columns.severity.value(row)),
                    tags,
                );
            }
        }
        Ok(())
    }

    /// Closes what the watermark passed and sends it, or the move of the
    /// closed bound, if there is any.
    async fn close_and_send(&mut self, ctx: &mut Ctx<WindowOutput>) -> ActorResult {
        let now = self.now_ms();
        let windows = self.state.advance(now);
        let closed_until_ms = self.state.closed_until_ms();
        metrics::counter!("spate_windows_closed_total").increment(windows.len() as u64);
        metrics::gauge!("spate_window_open").set(self.state.open_windows() as f64);
        if let Some(wm) = self.state.watermark_ms() {
            metrics::gauge!("spate_window_watermark_lag_seconds")
                .set(now.saturating_sub(wm) as f64 / 1000.0);
        }
        if !should_send(windows.len(), self.sent_until, closed_until_ms) {
            return Ok(());
        }
        self.sent_until = closed_until_ms;
        ctx.send(Batch::unacked(WindowOutput {
            windows,
            closed_until_ms,
        }))
        .await
    }
}

/// Whether to send an output: when windows closed, or when the closed bound
/// moved since the last output (a bound moving before any window closed
/// says nothing to the router).
fn should_send(closed: usize, sent_until: Option<i64>, closed_until: Option<i64>) -> bool {
    closed > 0 || (sent_until.is_some() && closed_until > sent_until)
}

/// The columns the aggregator reads, downcast once per part.
struct EventColumns<'a> {
    ts: &'a TimestampMillisecondArray,
    severity: &'a StringArray,
    tags: &'a ListArray,
    tag_values: &'a StringArray,
}

impl<'a> EventColumns<'a> {
    fn of(records: &'a RecordBatch) -> Result<Self, ActorError> {
        fn column<'b, T: 'static>(rb: &'b RecordBatch, name: &str) -> Result<&'b T, ActorError> {
            rb.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .ok_or_else(|| {
                    ActorError::internal(format!(
                        "window aggregator: column {name} missing or of the wrong type"
                    ))
                })
        }
        let tags: &ListArray = column(records, "tags")?;
        let tag_values = tags
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ActorError::internal("window aggregator: tags are not strings"))?;
        Ok(EventColumns {
            ts: column(records, "ts")?,
            severity: column(records, "severity")?,
            tags,
            tag_values,
        })
    }

    fn tags(&self, row: usize) -> impl Iterator<Item = &'a str> + use<'a> {
        let offsets = self.tags.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let values = self.tag_values;
        (start..end).map(move |i| values.value(i))
    }
}

fn parse_severity(s: &str) -> Severity {
    match s {
        "CRITICAL" => Severity::Critical,
        "ERROR" => Severity::Error,
        "WARNING" => Severity::Warning,
        _ => Severity::Info,
    }
}

impl Actor for WindowAggregator {
    type In = LogBatch;
    type Out = WindowOutput;

    async fn handle(&mut self, batch: Batch<LogBatch>, ctx: &mut Ctx<WindowOutput>) -> ActorResult {
        let now = self.now_ms();
        self.count(&batch.payload, now)?;
        batch.deliver();
        self.close_and_send(ctx).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.tick)
    }

    async fn tick(&mut self, ctx: &mut Ctx<WindowOutput>) -> ActorResult {
        self.close_and_send(ctx).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use spate_engine::testkit::{CaptureSink, LeakCheck, ScriptedSource};
    use spate_engine::{ActorOptions, GraphBuilder};

    use super::*;
    use crate::decode::DecodeStats;
    use crate::event::EventBatch;

    pub(crate) const T: i64 = 1_795_428_000_000; // 2026-11-23T10:00Z
    pub(crate) const MIN: i64 = 60_000;

    /// A `LogBatch` of events (ts, service, severity, tags).
    pub(crate) fn log_batch(rows: &[(i64, &str, Severity, &[&str])]) -> LogBatch {
        let mut b = EventBatch::default();
        for (i, (ts, service, severity, tags)) in rows.iter().enumerate() {
            b.event_id.push(&format!("test:{i}"));
            b.ts.push(*ts);
            b.ingest_ts.push(*ts);
            b.service.push(service);
            b.host.push_null();
            b.source.push("test");
            b.log_group.push_null();
            b.log_stream.push_null();
            b.severity.push(*severity);
            let bits = tags
                .iter()
                .fold(0u64, |acc, t| acc | 1u64 << b.tag_index(t).unwrap());
            b.tags.push(bits);
            b.status.push(0);
            b.client_ip.push_null();
            b.message.push("m");
            b.attrs.push_null();
        }
        LogBatch::from_events(b, Vec::new(), &DecodeStats::default()).unwrap()
    }

    pub(crate) fn repeat(
        n: usize,
        ts: i64,
        service: &'static str,
        severity: Severity,
    ) -> Vec<(i64, &'static str, Severity, &'static [&'static str])> {
        (0..n)
            .map(|i| (ts + i as i64, service, severity, &[][..]))
            .collect()
    }

    /// The three batches of the end-to-end tests: 14 errors and some INFO
    /// of api and web in the window at `T`; one event of each six minutes
    /// later (closing it); a late error and an api event at `T + 12 min`.
    pub(crate) fn script() -> [LogBatch; 3] {
        let mut first = repeat(14, T + 1_000, "api", Severity::Error);
        first.extend(repeat(5, T + 2_000, "api", Severity::Info));
        first.extend(repeat(3, T + 3_000, "web", Severity::Info));
        first.push((T + 4_000, "web", Severity::Info, &["http_5xx"]));
        let second = [
            (T + 6 * MIN, "api", Severity::Info, &[][..]),
            (T + 6 * MIN, "web", Severity::Info, &[][..]),
        ];
        let third = [
            (T + 1_500, "api", Severity::Error, &[][..]), // late
            (T + 12 * MIN, "api", Severity::Info, &[][..]),
        ];
        [log_batch(&first), log_batch(&second), log_batch(&third)]
    }

    #[tokio::test(start_paused = true)]
    async fn counts_closes_and_idles_end_to_end() {
        let source = ScriptedSource::new(script()).until_stopped();
        let sink = CaptureSink::<WindowOutput>::new();
        let mut g = GraphBuilder::new();
        let s = source.clone();
        g.source("source", move || s.clone());
        g.actor(
            "windows",
            || {
                // Processing time one hour after the events (a replay).
                WindowAggregator::with_wall_base(&WindowConfig::default(), T + 60 * MIN)
            },
            ActorOptions::default(),
        );
        let k = sink.clone();
        g.actor("alerts", move || k.clone(), ActorOptions::default());
        g.connect("source", "windows").connect("windows", "alerts");
        let pipeline = g.build().unwrap().spawn();
        let leaks = LeakCheck::new(&pipeline);

        // Within the idle timeout: only what event time closed.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let out = sink.delivered();
        assert_eq!(
            source.log().delivered(),
            3,
            "inputs acknowledged after counting"
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        let w0 = &out[0].windows;
        assert_eq!(w0.len(), 2);
        assert_eq!((w0[0].service.as_str(), w0[0].events), ("api", 19));
        assert_eq!(w0[0].severity, [5, 0, 14, 0]);
        assert_eq!((w0[1].service.as_str(), w0[1].events), ("web", 4));
        assert_eq!(w0[1].tags.get("http_5xx"), Some(&1));
        assert_eq!(out[0].closed_until_ms, Some(T + 5 * MIN));
        // The late error was not added to the second window.
        let w1 = &out[1].windows;
        assert_eq!(w1[0].window_start_ms, T + 5 * MIN);
        assert_eq!(w1[0].severity, [1, 0, 0, 0]);
        assert_eq!(out[1].closed_until_ms, Some(T + 10 * MIN));

        // Idle: the clock closes the last window, and the bound jumps to
        // processing time minus the lateness.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let out = sink.delivered();
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(out[2].windows.len(), 1);
        assert_eq!(out[2].windows[0].window_start_ms, T + 10 * MIN);
        assert_eq!(out[2].closed_until_ms, Some(T + 55 * MIN));

        pipeline.stop();
        pipeline.join().await.unwrap();
        drop(leaks);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_windows_then_every_move_of_the_closed_bound() {
        let errors = repeat(14, T + 1_000, "api", Severity::Error);
        let source = ScriptedSource::new([log_batch(&errors)]).until_stopped();
        let sink = CaptureSink::<WindowOutput>::new();
        let mut g = GraphBuilder::new();
        let s = source.clone();
        g.source("source", move || s.clone());
        g.actor(
            "windows",
            || {
                // Processing time just after the window's end plus lateness.
                WindowAggregator::with_wall_base(&WindowConfig::default(), T + 6 * MIN)
            },
            ActorOptions::default(),
        );
        let k = sink.clone();
        g.actor("alerts", move || k.clone(), ActorOptions::default());
        g.connect("source", "windows").connect("windows", "alerts");
        let pipeline = g.build().unwrap().spawn();

        // Idle: the window closes by the clock.
        tokio::time::sleep(Duration::from_secs(31)).await;
        let out = sink.delivered();
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].windows.len(), 1);
        assert_eq!(out[0].windows[0].severity, [0, 0, 14, 0]);
        assert_eq!(out[0].closed_until_ms, Some(T + 5 * MIN));
        // Five minutes on, the next (empty) window closes: its bound is sent
        // alone, once.
        tokio::time::sleep(Duration::from_secs(300)).await;
        let out = sink.delivered();
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(out[1].windows.is_empty());
        assert_eq!(out[1].closed_until_ms, Some(T + 10 * MIN));

        pipeline.stop();
        pipeline.join().await.unwrap();
    }

    #[test]
    fn outputs_go_when_windows_close_or_the_bound_moves_after_a_first() {
        // Before any window closed, a moving bound is not sent.
        assert!(!should_send(0, None, Some(T)));
        assert!(should_send(2, None, Some(T)));
        assert!(should_send(1, Some(T), Some(T)));
        assert!(should_send(0, Some(T), Some(T + 5 * MIN)));
        assert!(!should_send(0, Some(T), Some(T)));
    }

    #[test]
    fn severity_names_map_onto_the_ladder() {
        assert_eq!(parse_severity("CRITICAL"), Severity::Critical);
        assert_eq!(parse_severity("WARNING"), Severity::Warning);
        assert_eq!(parse_severity("DEBUG"), Severity::Info);
    }
}
