//! `GET /v1/tap?stage=decode|lake|hot|alerts&filter=...&limit=N`: the events
//! (or alert notices) passing a stage, streamed as NDJSON while the client
//! stays connected (see [`spate_operators::tap`]).
//!
//! Each line is one event as in the lake (`service` included, `attrs` as
//! JSON text) or one alert notice. Every `filter` parameter must match
//! ([`Filter`]). `limit` ends the answer after that many lines. An empty
//! line is sent after two idle seconds so a client that went away is noticed.
//!
//! # Backpressure
//!
//! The stage offers its batches to a bounded channel and never waits: a
//! slow client sees a sample, and the rest is counted in
//! `spate_tap_dropped_events_total{stage}`.
//!
//! # Shutdown
//!
//! The answer ends at `limit`, when the client closes the connection (the
//! listener is removed at the next line or idle newline at the latest), and
//! when the service starts shutting down.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use spate_operators::event::Severity;
use spate_operators::tap::{self, TapItem, TapStage, TapSubscription};

use super::auth::{Access, authorize_api};
use super::respond::json_error;
use super::state::HttpState;
use crate::query::format::json_rows;

/// Batches a client's channel holds before the stage's offers are dropped.
const CHANNEL_BATCHES: usize = 16;
/// Idle time after which an empty line is sent.
const IDLE_LINE: Duration = Duration::from_secs(2);

/// One condition on a line: all of a tap's filters must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `FIELD=VALUE`: a field (`service`, `host`, `source`, `severity`,
    /// `status`, `client_ip`, `log_group`, `log_stream`, `rule`, `state`,
    /// `event_id`) equals the value; `tags=X`: the tags hold X.
    Equals(String, String),
    /// `severity>=LEVEL` (also `>`, `<=`, `<`): on the ladder INFO < WARNING
    /// < ERROR < CRITICAL.
    Severity(std::cmp::Ordering, bool, Severity),
    /// Anything else: the line's JSON contains the text, ignoring case.
    Contains(String),
}

const FIELDS: &[&str] = &[
    "service",
    "host",
    "source",
    "severity",
    "status",
    "client_ip",
    "log_group",
    "log_stream",
    "rule",
    "state",
    "event_id",
    "tags",
];

impl Filter {
    /// Reads one filter expression (`service=api`, `severity>=ERROR`,
    /// `timeout`).
    pub fn parse(expr: &str) -> Result<Filter, String> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err("an empty filter".into());
        }
        if let Some(rest) = expr.strip_prefix("severity") {
            let (order, or_equal, level) = if let Some(l) = rest.strip_prefix(">=") {
                (std::cmp::Ordering::Greater, true, l)
            } else if let Some(l) = rest.strip_prefix("<=") {
                (std::cmp::Ordering::Less, true, l)
            } else if let Some(l) = rest.strip_prefix('>') {
                (std::cmp::Ordering::Greater, false, l)
            } else if let Some(l) = rest.strip_prefix('<') {
                (std::cmp::Ordering::Less, false, l)
            } else {
                (std::cmp::Ordering::Equal, true, "")
            };
            if order != std::cmp::Ordering::Equal {
                let severity = parse_severity(level.trim())?;
                return Ok(Filter::Severity(order, or_equal, severity));
            }
        }
        if let Some((field, value)) = expr.split_once('=')
            && FIELDS.contains(&field.trim())
        {
            let field = field.trim().to_string();
            let value = value.trim().to_string();
            if field == "severity" {
                parse_severity(&value)?;
                return Ok(Filter::Equals(field, value.to_ascii_uppercase()));
            }
            return Ok(Filter::Equals(field, value));
        }
        Ok(Filter::Contains(expr.to_lowercase()))
    }

    /// Whether `object` (one line, whose JSON text is `text`) passes.
    pub fn matches(&self, object: &Map<String, Value>, text: &str) -> bool {
        match self {
            Filter::Equals(field, value) => match object.get(field) {
                Some(Value::String(s)) => s == value,
                Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
                Some(Value::Number(n)) => n.to_string() == *value,
                _ => false,
            },
            Filter::Severity(order, or_equal, level) => {
                let Some(found) = object
                    .get("severity")
                    .and_then(Value::as_str)
                    .and_then(|s| parse_severity(s).ok())
                else {
                    return false;
                };
                let cmp = found.cmp(level);
                cmp == *order || (*or_equal && cmp.is_eq())
            }
            Filter::Contains(needle) => text.to_lowercase().contains(needle.as_str()),
        }
    }
}

fn parse_severity(name: &str) -> Result<Severity, String> {
    name.parse::<Severity>().map_err(|e| e.to_string())
}

/// The lines of one tapped item, as JSON objects.
pub fn item_objects(item: &TapItem) -> Vec<Map<String, Value>> {
    match item {
        TapItem::Alerts(alerts) => alerts
            .iter()
            .filter_map(|a| match serde_json::to_value(a) {
                Ok(Value::Object(o)) => Some(o),
                _ => None,
            })
            .collect(),
        TapItem::Events(batch) => {
            let mut out = Vec::new();
            for part in &batch.parts {
                let Ok(rows) = json_rows(std::slice::from_ref(&part.records)) else {
                    continue;
                };
                let schema = part.records.schema();
                for row in rows {
                    let mut object = Map::new();
                    for (field, value) in schema.fields().iter().zip(row) {
                        object.insert(field.name().clone(), value);
                        if field.name() == "ingest_ts" {
                            object.insert("service".into(), part.key.service.as_ref().into());
                        }
                    }
                    out.push(object);
                }
            }
            out
        }
    }
}

/// The lines of `item` that pass every filter, each ending in a newline.
pub fn render(item: &TapItem, filters: &[Filter], limit: &mut Option<u64>) -> String {
    let mut out = String::new();
    for object in item_objects(item) {
        if *limit == Some(0) {
            break;
        }
        let Ok(text) = serde_json::to_string(&object) else {
            continue;
        };
        if filters.iter().all(|f| f.matches(&object, &text)) {
            out.push_str(&text);
            out.push('\n');
            if let Some(n) = limit {
                *n -= 1;
            }
        }
    }
    out
}

/// Answers a `GET /v1/tap`.
pub(super) async fn handle(
    state: &HttpState,
    headers: &HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || "unknown".to_string(),
            |f| format!("x-forwarded-for {}", f.trim()),
        );
    if let Err(response) = authorize_api(
        state,
        headers,
        &axum::http::Method::GET,
        Access::Read,
        &client,
    )
    .await
    {
        return *response;
    }
    let mut stage = TapStage::Decode;
    let mut filters = Vec::new();
    let mut limit = None;
    for (key, value) in params {
        match key.as_str() {
            "stage" => match TapStage::parse(&value) {
                Some(s) => stage = s,
                None => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        &format!("stage {value:?} is not one of decode, lake, hot, alerts"),
                    );
                }
            },
            "filter" => match Filter::parse(&value) {
                Ok(f) => filters.push(f),
                Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("filter: {e}")),
            },
            "limit" => match value.parse::<u64>() {
                Ok(n) if n > 0 => limit = Some(n),
                _ => {
                    return json_error(StatusCode::BAD_REQUEST, "limit: expected a positive count");
                }
            },
            other => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter {other:?} (stage, filter, limit)"),
                );
            }
        }
    }
    let subscription = tap::point(stage).subscribe(CHANNEL_BATCHES);
    let lines = futures_util::stream::unfold(
        (subscription, filters, limit, state.closing.clone()),
        |(mut subscription, filters, mut limit, mut closing)| async move {
            if limit == Some(0) || *closing.borrow() {
                return None;
            }
            let chunk = tokio::select! {
                chunk = next_chunk(&mut subscription, &filters, &mut limit) => chunk,
                // Shutting down (or the service is gone): the answer ends.
                _ = shutdown(&mut closing) => return None,
            };
            Some((
                Ok::<_, std::io::Error>(Bytes::from(chunk)),
                (subscription, filters, limit, closing),
            ))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// Returns when the service starts shutting down (never without a sender).
async fn shutdown(closing: &mut tokio::sync::watch::Receiver<bool>) {
    if closing.wait_for(|closing| *closing).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The next lines to send: what passes of the next item, or an empty line
/// after [`IDLE_LINE`] without any.
async fn next_chunk(
    subscription: &mut TapSubscription,
    filters: &[Filter],
    limit: &mut Option<u64>,
) -> String {
    let deadline = tokio::time::Instant::now() + IDLE_LINE;
    loop {
        match tokio::time::timeout_at(deadline, subscription.recv()).await {
            Ok(Some(item)) => {
                let lines = render(&item, filters, limit);
                if !lines.is_empty() {
                    return lines;
                }
            }
            Ok(None) | Err(_) => return "\n".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    fn passes(filter: &str, value: Value) -> bool {
        let text = value.to_string();
        Filter::parse(filter)
            .unwrap()
            .matches(&object(value), &text)
    }

    #[test]
    fn filters_by_field_severity_and_text() {
        let event = json!({"service": "api", "severity": "ERROR", "tags": ["http_5xx"],
            "status": 503, "message": "Upstream Timeout"});
        assert!(passes("service=api", event.clone()));
        assert!(!passes("service=web", event.clone()));
        assert!(passes("severity>=ERROR", event.clone()));
        assert!(passes("severity>=warning", event.clone()));
        assert!(!passes("severity>ERROR", event.clone()));
        assert!(passes("severity<=ERROR", event.clone()));
        assert!(!passes("severity>=CRITICAL", event.clone()));
        assert!(passes("severity=error", event.clone()));
        assert!(passes("tags=http_5xx", event.clone()));
        assert!(passes("status=503", event.clone()));
        assert!(passes("upstream timeout", event.clone()));
        assert!(!passes("database", event.clone()));
        // An unknown field is text to find, not a field.
        assert!(!passes("user=bob", event));
        assert!(passes("user=bob", json!({"message": "login user=bob"})));
        assert!(Filter::parse("severity>=LOUD").is_err());
        assert!(Filter::parse(" ").is_err());
    }

    #[test]
    fn render_stops_at_the_limit() {
        let record = serde_json::from_value(json!({
            "id": "r:s:0:firing", "rule": "r", "service": "s", "state": "firing",
            "severity": "ERROR", "window_start_ms": 0, "window_end_ms": 1,
            "raised_at_ms": 1, "value": 1.0, "threshold": 1.0, "message": "m"
        }))
        .unwrap();
        let item = TapItem::Alerts(std::sync::Arc::new(vec![record; 5]));
        let mut limit = Some(3);
        let text = render(&item, &[Filter::parse("service=s").unwrap()], &mut limit);
        assert_eq!(text.lines().count(), 3);
        assert_eq!(limit, Some(0));
        let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["rule"], "r");
        let mut unlimited = None;
        assert_eq!(render(&item, &[], &mut unlimited).lines().count(), 5);
        let mut unlimited = None;
        let none = render(
            &item,
            &[Filter::parse("service=x").unwrap()],
            &mut unlimited,
        );
        assert!(none.is_empty());
    }
}
