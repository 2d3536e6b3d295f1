//! [`StoredEvent`]: one hot event as a block keeps it, what the block
//! layouts ([`block`](super::block), [`block_v1`](super::block_v1)) encode.

use crate::event::Severity;
use crate::sinks::hot::HotEvent;
use crate::sinks::hot::query::rfc3339_ms;

/// Largest body a block reader decompresses (a corrupt or hostile item cannot make
/// a reader allocate more).
pub const MAX_RAW_BYTES: usize = 64 << 20;

/// One hot event as a block keeps it (the service is the block's).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The message (already bounded).
    pub message: String,
    /// Remaining fields: a JSON object, or (cut to
    /// [`MAX_TEXT_BYTES`](super::items::MAX_TEXT_BYTES) when longer) their
    /// text as a JSON string.
    pub attrs: Option<serde_json::Value>,
}

impl StoredEvent {
    /// The event as `spate hot recent` shows it, of `service`.
    pub fn into_hot_event(self, service: &str) -> HotEvent {
        HotEvent {
            time: rfc3339_ms(self.ts_ms),
            ts_ms: self.ts_ms,
            service: service.to_string(),
            severity: self.severity.as_str().to_string(),
            host: self.host,
            source: self.source,
            log_group: self.log_group,
            log_stream: self.log_stream,
            tags: self.tags,
            status: self.status,
            client_ip: self.client_ip,
            message: self.message,
            attrs: self.attrs,
            event_id: self.event_id,
        }
    }
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
        let e = stored(10, 1_763_892_000_123).into_hot_event("api");
        assert_eq!(e.service, "api");
        assert_eq!(e.severity, "ERROR");
        assert_eq!(e.time, "2025-11-23T10:00:00.123Z");
        assert_eq!(e.status, Some(503));
        assert_eq!(e.attrs.unwrap()["env"], "prod");
    }
}
