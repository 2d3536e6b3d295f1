//! One hot event: [`StoredEvent`] as the stores keep it (what the packed
//! block layouts encode, the service being the block's), [`HotEvent`] as
//! `spate hot recent` shows it (with its service and time as text).

use serde::Serialize;

use crate::event::Severity;
use crate::sinks::lake::partition::civil_from_days;

/// Longest message (and `attrs` text) a hot store keeps, in bytes; longer
/// ones are cut at a character boundary and counted
/// (`spate_hot_truncated_total`). DynamoDB items are at most 400 KB; the
/// lake keeps every event whole.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// One hot event as a store keeps it, without its service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// Stable id from the source position.
    pub event_id: String,
    /// Event time, UTC milliseconds.
    pub ts_ms: i64,
    /// Its severity.
    pub severity: Severity,
    /// Host name or address.
    pub host: Option<String>,
    /// Where the event came from.
    pub source: String,
    /// CloudWatch Logs group.
    pub log_group: Option<String>,
    /// CloudWatch Logs stream.
    pub log_stream: Option<String>,
    /// Tags set by the classifier.
    pub tags: Vec<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Client IP address.
    pub client_ip: Option<String>,
    /// The message (at most [`MAX_TEXT_BYTES`]).
    pub message: String,
    /// Remaining fields: a JSON object, or (cut to [`MAX_TEXT_BYTES`] when
    /// longer, or when not JSON) their text as a JSON string.
    pub attrs: Option<serde_json::Value>,
}

/// `text` cut to [`MAX_TEXT_BYTES`] at a character boundary (counted).
pub(crate) fn bounded(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    metrics::counter!("spate_hot_truncated_total").increment(1);
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The `attrs` text of an event as stored: the JSON value it holds, or,
/// when longer than [`MAX_TEXT_BYTES`] (then cut and counted) or not JSON,
/// the text as a JSON string, kept rather than lost.
pub(crate) fn stored_attrs(text: &str) -> serde_json::Value {
    if text.len() > MAX_TEXT_BYTES {
        return serde_json::Value::String(bounded(text).to_string());
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
}

/// One stored event, as `spate hot recent` prints it: the event's fields
/// and its service and time, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotEvent {
    /// Event time as RFC 3339 (`2025-11-23T10:00:00.123Z`).
    pub time: String,
    /// The service.
    pub service: String,
    /// The event.
    #[serde(flatten)]
    pub event: StoredEvent,
}

impl HotEvent {
    /// `event` of `service` as `spate hot recent` shows it.
    pub fn new(service: String, event: StoredEvent) -> Self {
        HotEvent {
            time: rfc3339_ms(event.ts_ms),
            service,
            event,
        }
    }
}

/// `ts_ms` as RFC 3339 in UTC with milliseconds.
///
/// ```
/// use spate_operators::sinks::hot::event::rfc3339_ms;
/// assert_eq!(rfc3339_ms(1_763_892_000_123), "2025-11-23T10:00:00.123Z");
/// assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
/// ```
pub fn rfc3339_ms(ts_ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (y, m, d) = civil_from_days(ts_ms.div_euclid(DAY_MS));
    let in_day = ts_ms.rem_euclid(DAY_MS);
    let (h, min) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (s, ms) = (in_day / 1000 % 60, in_day % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A W1-like hot event: `i` decides the id, time, host and message.
    pub(crate) fn stored(i: u64, ts_ms: i64) -> StoredEvent {
        StoredEvent {
            event_id: format!("sqs:queue:{i}"),
            ts_ms,
            severity: if i.is_multiple_of(7) {
                Severity::Critical
            } else {
                Severity::Error
            },
            host: Some(format!("ip-10-0-{}-{}", i % 3, i % 11)),
            source: "sqs:queue".into(),
            log_group: i.is_multiple_of(2).then(|| "/app/api".to_string()),
            log_stream: None,
            tags: if i.is_multiple_of(5) {
                vec!["http_5xx".into()]
            } else {
                Vec::new()
            },
            status: i.is_multiple_of(5).then_some(503),
            client_ip: None,
            message: format!(
                "upstream timeout after {} ms talking to db-{}",
                1000 + i,
                i % 4
            ),
            attrs: Some(serde_json::json!({
                "env": "prod",
                "span_id": format!("{:016x}", i * 7919),
            })),
        }
    }

    #[test]
    fn stored_events_read_back_as_hot_events() {
        let e = HotEvent::new("api".into(), stored(10, 1_763_892_000_123));
        assert_eq!(e.service, "api");
        assert_eq!(e.event.severity, Severity::Error);
        assert_eq!(e.time, "2025-11-23T10:00:00.123Z");
        assert_eq!(e.event.status, Some(503));
        assert_eq!(e.event.attrs.as_ref().unwrap()["env"], "prod");
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert!(cut.len() > MAX_TEXT_BYTES - 4);
        assert_eq!(bounded("short"), "short");
        // Long attrs are cut: no longer JSON, they are kept as a string.
        let big = format!("{{\"k\":\"{}\"}}", "x".repeat(MAX_TEXT_BYTES));
        let kept = stored_attrs(&big);
        assert_eq!(kept.as_str().map(str::len), Some(MAX_TEXT_BYTES));
        assert_eq!(stored_attrs(r#"{"k":1}"#), serde_json::json!({"k": 1}));
        assert_eq!(stored_attrs("{"), serde_json::json!("{"));
    }

    #[test]
    fn hot_events_print_flat() {
        let e = HotEvent::new("api".into(), stored(10, 1_763_892_000_123));
        let json = serde_json::to_value(&e).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "attrs",
                "client_ip",
                "event_id",
                "host",
                "log_group",
                "log_stream",
                "message",
                "service",
                "severity",
                "source",
                "status",
                "tags",
                "time",
                "ts_ms"
            ]
        );
        assert_eq!(json["severity"], "ERROR");
        assert_eq!(json["time"], "2025-11-23T10:00:00.123Z");
        assert_eq!(json["ts_ms"], 1_763_892_000_123_i64);
        assert_eq!(json["status"], 503);
        assert_eq!(json["log_stream"], serde_json::Value::Null);
        assert_eq!(json["attrs"]["env"], "prod");
    }
}
