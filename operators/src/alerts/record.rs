//! The records the window aggregator produces and every alert output and store
//! consumes: closed windows ([`WindowRecord`]) and alert notices
//! ([`AlertRecord`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts of one service in one closed event-time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Window start, UTC milliseconds (inclusive).
    pub window_start_ms: i64,
    /// Window end, UTC milliseconds (exclusive).
    pub window_end_ms: i64,
    /// The service.
    pub service: String,
    /// Events in the window.
    pub events: u64,
    /// Events per severity, indexed by `Severity::index` (INFO, WARNING, ERROR,
    /// CRITICAL).
    pub severity: [u64; 4],
    /// Events per tag.
    pub tags: BTreeMap<String, u64>,
}

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The rule's condition holds.
    Firing,
    /// The condition cleared (after having fired).
    Resolved,
}

impl AlertState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert notice: a rule firing for a service, or its resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Deterministic id, `<rule>:<service>:<window_start_ms>:<state>`, so a
    /// notice written twice overwrites itself.
    pub id: String,
    /// The rule's name (`critical`, `error_burst`, `error_rate`, `silence`, or a
    /// configured name).
    pub rule: String,
    /// The service the alert is about.
    pub service: String,
    /// Firing or resolved.
    pub state: AlertState,
    /// Severity of the alert itself (`CRITICAL`, `ERROR`, `WARNING`).
    pub severity: String,
    /// The window that decided, UTC milliseconds.
    pub window_start_ms: i64,
    /// End of that window, UTC milliseconds.
    pub window_end_ms: i64,
    /// When the notice was raised (processing time), UTC milliseconds.
    pub raised_at_ms: i64,
    /// The measured value (a count, or a rate).
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// One readable sentence.
    pub message: String,
}

/// Where closed windows and alert notices are kept (the hot store); the alert
/// router calls it before acknowledging.
pub trait AlertStore: Send + Sync + 'static {
    /// Durably records closed windows and alert notices (upserts by key).
    fn record(&self, windows: &[WindowRecord], alerts: &[AlertRecord]) -> Result<(), String>;
}

/// A store shared by several processes consuming one stream (the DynamoDB
/// hot table): their partial window counts sum up in it, and each notice is
/// claimed so that exactly one process sends it. The alert router's
/// shared-window mode ([`super::shared`]) calls it, on the blocking pool.
pub trait SharedWindowStore: Send + Sync + 'static {
    /// Durably adds this process's partial counts of closed windows to the
    /// merged counts (an atomic add per window and service).
    fn add_windows(&self, windows: &[WindowRecord]) -> Result<(), String>;

    /// The merged counts of `services` for every window starting in
    /// `[from_ms, until_ms)`, read so that every completed add is seen
    /// (strongly consistent). A (window, service) nobody counted is absent.
    fn merged_windows(
        &self,
        services: &[String],
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<WindowRecord>, String>;

    /// Records `alert` unless some process already did (same deterministic
    /// id): true when this store's call wrote it, also through an earlier
    /// attempt whose answer was lost; false when another process holds the
    /// claim.
    fn claim_alert(&self, alert: &AlertRecord) -> Result<bool, String>;
}
