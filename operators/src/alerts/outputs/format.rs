//! Alerts as text: the line every output prints, the window and time
//! formats, and grouping a batch of alerts by service and window.

use crate::alerts::record::AlertRecord;
use crate::sinks::lake::partition::civil_from_days;

/// The notices of `alerts` grouped by service and window, in order of first
/// appearance: what one message of a grouping output holds.
///
/// ```
/// # use spate_operators::alerts::record::{AlertRecord, AlertState};
/// use spate_operators::alerts::outputs::group_by_service;
/// # let alert = |rule: &str, service: &str| AlertRecord { id: rule.into(), rule: rule.into(),
/// #     service: service.into(), state: AlertState::Firing, severity: "ERROR".into(),
/// #     window_start_ms: 0, window_end_ms: 300_000, raised_at_ms: 0, value: 1.0,
/// #     threshold: 0.0, message: String::new() };
/// let groups = group_by_service(&[alert("a", "api"), alert("b", "web"), alert("c", "api")]);
/// let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
/// assert_eq!(sizes, [2, 1]);
/// ```
pub fn group_by_service(alerts: &[AlertRecord]) -> Vec<Vec<AlertRecord>> {
    let mut groups: Vec<Vec<AlertRecord>> = Vec::new();
    for alert in alerts {
        match groups.iter_mut().find(|g| {
            g[0].service == alert.service && g[0].window_start_ms == alert.window_start_ms
        }) {
            Some(group) => group.push(alert.clone()),
            None => groups.push(vec![alert.clone()]),
        }
    }
    groups
}

/// `2026-11-23T10:00Z`, with seconds only when they are not zero.
///
/// ```
/// use spate_operators::alerts::outputs::format_utc_minute;
/// assert_eq!(format_utc_minute(1_763_892_000_000), "2025-11-23T10:00Z");
/// assert_eq!(format_utc_minute(30_000), "1970-01-01T00:00:30Z");
/// ```
pub fn format_utc_minute(ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS) / 1000;
    let (hh, mm, ss) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
    if ss == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// A window as `<start>/<length>`, e.g. `2025-11-23T10:00Z/5m`.
///
/// ```
/// use spate_operators::alerts::outputs::format_window;
/// assert_eq!(format_window(1_763_892_000_000, 1_763_892_300_000), "2025-11-23T10:00Z/5m");
/// assert_eq!(format_window(0, 3_600_000), "1970-01-01T00:00Z/1h");
/// assert_eq!(format_window(0, 45_000), "1970-01-01T00:00Z/45s");
/// ```
pub fn format_window(start_ms: i64, end_ms: i64) -> String {
    let len = end_ms.saturating_sub(start_ms);
    let len = if len % 3_600_000 == 0 && len > 0 {
        format!("{}h", len / 3_600_000)
    } else if len % 60_000 == 0 && len > 0 {
        format!("{}m", len / 60_000)
    } else if len % 1000 == 0 {
        format!("{}s", len / 1000)
    } else {
        format!("{len}ms")
    };
    format!("{}/{len}", format_utc_minute(start_ms))
}

/// One readable line:
/// `ALERT firing error_burst service=api window=2025-11-23T10:00Z/5m: 14 errors > 10`.
pub fn format_line(alert: &AlertRecord) -> String {
    format!(
        "ALERT {} {} service={} window={}: {}",
        alert.state.as_str(),
        alert.rule,
        alert.service,
        format_window(alert.window_start_ms, alert.window_end_ms),
        alert.message
    )
}
