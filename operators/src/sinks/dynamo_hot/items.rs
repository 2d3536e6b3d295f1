//! Items of the DynamoDB hot table: keys (see the [module docs](super)), and
//! conversions from hot rows, windows and alerts, and back.

use std::collections::HashMap;

use arrow_array::Array;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoHotError;
use crate::alerts::record::{AlertRecord, AlertState, WindowRecord};
use crate::event::Severity;
use crate::sinks::hot::query::rfc3339_ms;
use crate::sinks::hot::rows::{EventColumns, opt_str};
use crate::sinks::hot::{HotEvent, HotRows};
use crate::sinks::lake::partition::civil_from_days;

/// Partitions per day of the "recent across services" copies.
pub const DAY_SHARDS: u32 = 4;

/// Longest message (and `attrs`) stored, in bytes; longer ones are cut at a
/// character boundary (DynamoDB items are at most 400 KB).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

const DAY_MS: i64 = 86_400_000;
/// The largest time with 13 digits (year 2286).
const MAX_KEY_MS: i64 = 9_999_999_999_999;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Milliseconds as the 13-digit sort-key prefix (clamped to 0..=9999999999999).
///
/// ```
/// use spate_operators::sinks::dynamo_hot::items::key_ms;
/// assert_eq!(key_ms(1_763_892_000_123), "1763892000123");
/// assert_eq!(key_ms(42), "0000000000042");
/// assert_eq!(key_ms(-5), "0000000000000");
/// ```
pub fn key_ms(ms: i64) -> String {
    format!("{:013}", ms.clamp(0, MAX_KEY_MS))
}

/// The UTC day of `ms` as `YYYY-MM-DD`.
pub fn day(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `pk` of a service's events.
pub fn service_pk(service: &str) -> String {
    format!("svc#{service}")
}

/// `pk` of one day shard of the cross-service copies.
pub fn day_pk(day_ms: i64, shard: u32) -> String {
    format!("day#{}#{shard}", day(day_ms))
}

/// The day shard of an event id (stable: a redelivered event lands on
/// itself).
pub fn day_shard(event_id: &str) -> u32 {
    crc32fast::hash(event_id.as_bytes()) % DAY_SHARDS
}

/// `sk` of an event.
pub fn event_sk(ts_ms: i64, event_id: &str) -> String {
    format!("{}#{event_id}", key_ms(ts_ms))
}

/// `pk` of a service's windows.
pub fn window_pk(service: &str) -> String {
    format!("win#{service}")
}

/// `pk` of a day's alerts.
pub fn alerts_pk(raised_at_ms: i64) -> String {
    format!("alerts#{}", day(raised_at_ms))
}

/// `sk` of an alert.
pub fn alert_sk(raised_at_ms: i64, id: &str) -> String {
    format!("{}#{id}", key_ms(raised_at_ms))
}

/// `pk` of an alert's claim item.
pub fn claim_pk(id: &str) -> String {
    format!("alert#{id}")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `text` cut to [`MAX_TEXT_BYTES`] at a character boundary (counted).
fn bounded(text: &str) -> &str {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    metrics::counter!("spate_dynamo_hot_truncated_total").increment(1);
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The two items of every row of `rows` (service copy, then day copy).
pub fn event_items(rows: &HotRows, ttl_secs: i64) -> Result<Vec<Item>, DynamoHotError> {
    let cols = EventColumns::of(&rows.records).map_err(|e| DynamoHotError::Data(e.to_string()))?;
    let service: &str = &rows.service;
    let mut tags_json = Vec::with_capacity(64);
    let mut out = Vec::with_capacity(rows.len() * 2);
    for i in 0..rows.len() {
        let event_id = cols.event_id.value(i);
        let ts = cols.ts.value(i);
        cols.tags_json(i, &mut tags_json);
        let tags: Vec<String> = serde_json::from_slice(&tags_json)
            .map_err(|e| DynamoHotError::Data(format!("tags of {event_id}: {e}")))?;
        let mut item = Item::with_capacity(16);
        item.insert("event_id".into(), s(event_id));
        item.insert("ts".into(), n(ts));
        item.insert("service".into(), s(service));
        item.insert("severity".into(), s(cols.severity.value(i)));
        item.insert("source".into(), s(cols.source.value(i)));
        item.insert("message".into(), s(bounded(cols.message.value(i))));
        item.insert(
            "tags".into(),
            AttributeValue::L(tags.into_iter().map(s).collect()),
        );
        item.insert(
            "expires_at".into(),
            // From arrival: a replay of old logs stays for the whole TTL.
            n(cols
                .ingest_ts
                .value(i)
                .div_euclid(1000)
                .saturating_add(ttl_secs)),
        );
        let optional = [
            ("host", opt_str(cols.host, i)),
            ("log_group", opt_str(cols.log_group, i)),
            ("log_stream", opt_str(cols.log_stream, i)),
            ("client_ip", opt_str(cols.client_ip, i)),
            ("attrs", opt_str(cols.attrs, i).map(bounded)),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                item.insert(name.into(), s(v));
            }
        }
        if cols.status.is_valid(i) {
            item.insert("status".into(), n(cols.status.value(i)));
        }
        let sk = event_sk(ts, event_id);
        let mut by_day = item.clone();
        item.insert("pk".into(), s(service_pk(service)));
        item.insert("sk".into(), s(sk.clone()));
        by_day.insert("pk".into(), s(day_pk(ts, day_shard(event_id))));
        by_day.insert("sk".into(), s(sk));
        out.push(item);
        out.push(by_day);
    }
    Ok(out)
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn required<'a>(item: &'a Item, name: &str) -> Result<&'a str, DynamoHotError> {
    get_s(item, name).ok_or_else(|| {
        DynamoHotError::Data(format!(
            "stored item {:?} has no {name}",
            get_s(item, "sk").unwrap_or_default()
        ))
    })
}

/// An event item read back.
pub fn hot_event(item: &Item) -> Result<HotEvent, DynamoHotError> {
    let ts_ms: i64 =
        get_n(item, "ts").ok_or_else(|| DynamoHotError::Data("event item has no ts".into()))?;
    let attrs = match get_s(item, "attrs") {
        Some(a) => Some(
            serde_json::from_str(a)
                .map_err(|e| DynamoHotError::Data(format!("stored attrs are not JSON: {e}")))?,
        ),
        None => None,
    };
    Ok(HotEvent {
        event_id: required(item, "event_id")?.to_string(),
        ts_ms,
        time: rfc3339_ms(ts_ms),
        service: required(item, "service")?.to_string(),
        severity: required(item, "severity")?.to_string(),
        host: get_s(item, "host").map(str::to_string),
        source: required(item, "source")?.to_string(),
        log_group: get_s(item, "log_group").map(str::to_string),
        log_stream: get_s(item, "log_stream").map(str::to_string),
        tags: item
            .get("tags")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|t| t.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        status: get_n(item, "status"),
        client_ip: get_s(item, "client_ip").map(str::to_string),
        message: required(item, "message")?.to_string(),
        attrs,
    })
}

/// The attribute of a window item counting events of `severity`
/// (`severity_error`, ...).
pub fn severity_attr(severity: Severity) -> String {
    format!("severity_{}", severity.as_str().to_lowercase())
}

/// Prefix of a window item's tag counters (`tag:<name>`).
pub const TAG_ATTR_PREFIX: &str = "tag:";

/// A window item read back: the counts merged so far.
pub fn window_record(item: &Item) -> Result<WindowRecord, DynamoHotError> {
    let start: i64 = required(item, "sk")?
        .parse()
        .map_err(|_| DynamoHotError::Data("window item sk is not a time".into()))?;
    let count = |name: &str| get_n::<u64>(item, name).unwrap_or(0);
    let mut severity = [0; 4];
    for sev in Severity::ALL {
        severity[sev.index()] = count(&severity_attr(sev));
    }
    let tags = item
        .iter()
        .filter_map(|(k, v)| {
            let tag = k.strip_prefix(TAG_ATTR_PREFIX)?;
            Some((tag.to_string(), v.as_n().ok()?.parse().ok()?))
        })
        .collect();
    Ok(WindowRecord {
        window_start_ms: start,
        window_end_ms: get_n(item, "window_end_ms").ok_or_else(|| {
            DynamoHotError::Data(format!("window item {start} has no window_end_ms"))
        })?,
        service: required(item, "service")?.to_string(),
        events: count("events"),
        severity,
        tags,
    })
}

/// The listing item of an alert.
pub fn alert_item(alert: &AlertRecord, ttl_secs: i64) -> Item {
    HashMap::from([
        ("pk".into(), s(alerts_pk(alert.raised_at_ms))),
        ("sk".into(), s(alert_sk(alert.raised_at_ms, &alert.id))),
        ("id".into(), s(&alert.id)),
        ("rule".into(), s(&alert.rule)),
        ("service".into(), s(&alert.service)),
        ("state".into(), s(alert.state.as_str())),
        ("severity".into(), s(&alert.severity)),
        ("window_start_ms".into(), n(alert.window_start_ms)),
        ("window_end_ms".into(), n(alert.window_end_ms)),
        ("raised_at_ms".into(), n(alert.raised_at_ms)),
        ("value".into(), n(alert.value)),
        ("threshold".into(), n(alert.threshold)),
        ("message".into(), s(bounded(&alert.message))),
        (
            "expires_at".into(),
            n(alert.raised_at_ms.div_euclid(1000).saturating_add(ttl_secs)),
        ),
    ])
}

/// An alert item read back.
pub fn alert_record(item: &Item) -> Result<AlertRecord, DynamoHotError> {
    let num = |name: &str| -> Result<f64, DynamoHotError> {
        get_n(item, name).ok_or_else(|| DynamoHotError::Data(format!("alert item has no {name}")))
    };
    let ms = |name: &str| -> Result<i64, DynamoHotError> {
        get_n(item, name).ok_or_else(|| DynamoHotError::Data(format!("alert item has no {name}")))
    };
    let id = required(item, "id")?.to_string();
    let state = match required(item, "state")? {
        "firing" => AlertState::Firing,
        "resolved" => AlertState::Resolved,
        other => {
            return Err(DynamoHotError::Data(format!(
                "alert {id} has unknown state {other:?}"
            )));
        }
    };
    Ok(AlertRecord {
        rule: required(item, "rule")?.to_string(),
        service: required(item, "service")?.to_string(),
        state,
        severity: required(item, "severity")?.to_string(),
        window_start_ms: ms("window_start_ms")?,
        window_end_ms: ms("window_end_ms")?,
        raised_at_ms: ms("raised_at_ms")?,
        value: num("value")?,
        threshold: num("threshold")?,
        message: required(item, "message")?.to_string(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::rows::tests::{event, log_batch};

    #[test]
    fn keys_sort_by_time_and_are_stable() {
        assert!(event_sk(999, "b") < event_sk(1_000, "a"));
        assert_eq!(service_pk("api"), "svc#api");
        assert_eq!(day(1_763_892_000_123), "2025-11-23");
        assert_eq!(day(-1), "1969-12-31");
        assert_eq!(day_pk(1_763_892_000_123, 3), "day#2025-11-23#3");
        assert_eq!(day_shard("x"), day_shard("x"));
        assert!((0..DAY_SHARDS).contains(&day_shard("anything")));
        assert_eq!(alerts_pk(0), "alerts#1970-01-01");
        assert_eq!(alert_sk(5, "r:s:0:firing"), "0000000000005#r:s:0:firing");
        assert_eq!(key_ms(i64::MAX), "9999999999999");
    }

    #[test]
    fn rows_become_two_items_each_and_read_back() {
        let batch = log_batch(&[
            event("e1", 1_763_892_000_000, "api", Severity::Error),
            event("e2", 1_763_892_000_001, "api", Severity::Critical),
        ]);
        let rows = HotRows::select(&batch.parts[0], Severity::Warning)
            .unwrap()
            .unwrap();
        let items = event_items(&rows, 3600).unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(get_s(&items[0], "pk"), Some("svc#api"));
        assert_eq!(get_s(&items[0], "sk"), Some("1763892000000#e1"));
        assert!(
            get_s(&items[1], "pk")
                .unwrap()
                .starts_with("day#2025-11-23#")
        );
        assert_eq!(get_s(&items[1], "sk"), get_s(&items[0], "sk"));
        assert_eq!(
            get_n::<i64>(&items[0], "expires_at"),
            Some(1_763_892_000 + 3600)
        );
        let back = hot_event(&items[2]).unwrap();
        assert_eq!(back.event_id, "e2");
        assert_eq!(back.service, "api");
        assert_eq!(back.severity, "CRITICAL");
        assert_eq!(back.status, Some(503));
        assert_eq!(back.attrs, Some(serde_json::json!({"k": 1})));
        assert_eq!(back.time, "2025-11-23T10:00:00.001Z");
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_TEXT_BYTES);
        assert!(cut.len() > MAX_TEXT_BYTES - 4);
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn alerts_round_trip() {
        let alert = AlertRecord {
            id: "error_burst:api:0:firing".into(),
            rule: "error_burst".into(),
            service: "api".into(),
            state: AlertState::Firing,
            severity: "ERROR".into(),
            window_start_ms: 0,
            window_end_ms: 300_000,
            raised_at_ms: 300_500,
            value: 12.0,
            threshold: 10.5,
            message: "12 errors".into(),
        };
        let item = alert_item(&alert, 60);
        assert_eq!(alert_record(&item).unwrap(), alert);
        let mut broken = item.clone();
        broken.insert("state".into(), s("sleeping"));
        assert!(alert_record(&broken).is_err());
    }

    #[test]
    fn window_items_read_back_as_merged_counts() {
        let item: Item = HashMap::from([
            ("pk".into(), s(window_pk("api"))),
            ("sk".into(), s(key_ms(300_000))),
            ("window_end_ms".into(), n(600_000)),
            ("service".into(), s("api")),
            ("events".into(), n(20)),
            (severity_attr(Severity::Error), n(14)),
            (severity_attr(Severity::Info), n(6)),
            ("tag:http_5xx".into(), n(3)),
            ("expires_at".into(), n(9)),
        ]);
        let w = window_record(&item).unwrap();
        assert_eq!((w.window_start_ms, w.window_end_ms), (300_000, 600_000));
        assert_eq!((w.service.as_str(), w.events), ("api", 20));
        assert_eq!(w.severity, [6, 0, 14, 0]);
        assert_eq!(w.tags.get("http_5xx"), Some(&3));
        assert_eq!(w.tags.len(), 1);
        let mut broken = item.clone();
        broken.remove("window_end_ms");
        assert!(window_record(&broken).is_err());
    }
}
