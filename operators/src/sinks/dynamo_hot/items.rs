//! Items of the DynamoDB hot table: keys (see the [module docs](super)), and
//! conversions from hot rows, windows and alerts, and back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoHotError;
use super::block::{pack, span_start, unpack_where};
use super::column_reader::every_event;
use crate::alerts::record::{AlertRecord, AlertState, WindowRecord};
use crate::event::Severity;
use crate::sinks::hot::event_view::EventView;
use crate::sinks::hot::{HotEvent, HotRows, StoredEvent};
use crate::sinks::lake::partition::civil_from_days;

pub use crate::sinks::hot::event::MAX_TEXT_BYTES;
use crate::sinks::hot::event::bounded;

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

/// `sk` of an event item (as written before blocks; still read).
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

/// `pk` of the services that have blocks of a day (event time), the
/// registry "recent across services" starts from.
pub fn services_pk(day_ms: i64) -> String {
    format!("svcs#{}", day(day_ms))
}

/// `sk` of a block: the start of its span, then the writer and the
/// writer's sequence number (unique across writers and commits).
pub fn block_sk(span_ms: i64, writer: &str, seq: u64) -> String {
    format!("{}#{writer}#{seq}", key_ms(span_ms))
}

/// The time prefix of a stored event or block `sk`: the event time of an
/// event item, the span start of a block.
pub fn sk_ms(sk: &str) -> Option<i64> {
    sk.get(..13).and_then(|p| p.parse().ok())
}

/// The block items of buffered hot rows, and what they hold.
#[derive(Debug, Default)]
pub struct Blocks {
    /// One item per block: per service × span ([`BLOCK_SPAN_MS`](super::block::BLOCK_SPAN_MS)) of the
    /// rows, split at [`MAX_BLOCK_BYTES`](super::block::MAX_BLOCK_BYTES).
    pub items: Vec<Item>,
    /// Events in the blocks (after dropping repeated ids).
    pub events: u64,
    /// Every (day, service) of the blocks with the latest `expires_at` of its
    /// blocks: what the day's service registry must list.
    pub days: BTreeMap<(String, Arc<str>), i64>,
}

/// Packs `rows` into block items: the events of each service and span
/// together, one id once, at most `cap` compressed bytes a block. `writer`
/// and `seq` (incremented per block) make the keys unique; a block expires
/// `ttl_secs` after the latest arrival of its events.
pub fn block_items(
    rows: &[HotRows],
    ttl_secs: i64,
    writer: &str,
    seq: &mut u64,
    cap: usize,
) -> Result<Blocks, DynamoHotError> {
    let mut groups: BTreeMap<(Arc<str>, i64), (Vec<EventView<'_>>, i64)> = BTreeMap::new();
    for r in rows {
        let events = EventView::of_rows(r).map_err(|e| DynamoHotError::Data(e.to_string()))?;
        for (event, ingest_ms) in events {
            let group = groups
                .entry((r.service.clone(), span_start(event.ts_ms)))
                .or_insert_with(|| (Vec::new(), i64::MIN));
            group.1 = group.1.max(ingest_ms);
            group.0.push(event);
        }
    }
    let mut out = Blocks::default();
    for ((service, span), (events, ingest_ms)) in groups {
        let expires_at = ingest_ms.div_euclid(1000).saturating_add(ttl_secs);
        let registry = out
            .days
            .entry((day(span), service.clone()))
            .or_insert(expires_at);
        *registry = (*registry).max(expires_at);
        for packed in pack(events, cap)? {
            *seq += 1;
            out.events += packed.events as u64;
            out.items.push(HashMap::from([
                ("pk".into(), s(service_pk(&service))),
                ("sk".into(), s(block_sk(span, writer, *seq))),
                ("blk".into(), AttributeValue::B(Blob::new(packed.bytes))),
                ("n".into(), n(packed.events)),
                ("top".into(), n(packed.top.index())),
                ("expires_at".into(), n(expires_at)),
            ]));
        }
    }
    Ok(out)
}

/// The registry item listing `service` under `day` (`YYYY-MM-DD`).
pub fn registry_item(day: &str, service: &str, expires_at: i64) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("svcs#{day}"))),
        ("sk".into(), s(service)),
        ("expires_at".into(), n(expires_at)),
    ])
}

/// The events of a stored item of `service`'s partition: every event of a
/// block, or the one event of an item written before blocks.
pub fn item_events(item: &Item, service: &str) -> Result<Vec<HotEvent>, DynamoHotError> {
    Ok(item_events_where(item, every_event)?
        .into_iter()
        .map(|e| HotEvent::new(service.to_string(), e))
        .collect())
}

/// The events of a stored item that `select` picks by their times and
/// severities (see [`unpack_where`](super::block::unpack_where)), oldest
/// first: of a block only those are built.
pub fn item_events_where(
    item: &Item,
    select: impl FnOnce(&[i64], &[Severity]) -> Vec<bool>,
) -> Result<Vec<StoredEvent>, DynamoHotError> {
    let Some(blob) = item.get("blk") else {
        let event = hot_event(item)?.event;
        let picked = select(&[event.ts_ms], &[event.severity]);
        return Ok(picked
            .first()
            .copied()
            .unwrap_or(false)
            .then_some(event)
            .into_iter()
            .collect());
    };
    let bytes = blob.as_b().map_err(|_| {
        DynamoHotError::Data(format!(
            "block {:?} is not binary",
            get_s(item, "sk").unwrap_or_default()
        ))
    })?;
    // Blocks of layout 1 carry their uncompressed length.
    let raw_len: Option<usize> = get_n(item, "raw");
    unpack_where(bytes.as_ref(), raw_len, select)
}

/// Bytes DynamoDB counts for `item`: attribute names plus values (strings
/// and binaries by length, numbers at one byte per two significant digits
/// plus one, lists and maps 3 bytes plus one a member).
pub fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

fn value_bytes(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            let digits = n.trim_start_matches('-').replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
        AttributeValue::Ns(l) => l
            .iter()
            .map(|n| value_bytes(&AttributeValue::N(n.clone())))
            .sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Write units of putting `item`: one per started KB, at least one.
pub fn write_units(item: &Item) -> u64 {
    (item_bytes(item).div_ceil(1024)).max(1) as u64
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

/// An event item (as written before blocks) read back.
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
    let event_id = required(item, "event_id")?;
    let severity = required(item, "severity")?
        .parse()
        .map_err(|e| DynamoHotError::Data(format!("stored severity of {event_id}: {e}")))?;
    let event = StoredEvent {
        event_id: event_id.to_string(),
        ts_ms,
        severity,
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
    };
    Ok(HotEvent::new(required(item, "service")?.to_string(), event))
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
        assert_eq!(services_pk(1_763_892_000_123), "svcs#2025-11-23");
        assert_eq!(block_sk(60_000, "w1", 7), "0000000060000#w1#7");
        assert_eq!(sk_ms(&block_sk(60_000, "w1", 7)), Some(60_000));
        assert_eq!(sk_ms("short"), None);
        assert_eq!(alerts_pk(0), "alerts#1970-01-01");
        assert_eq!(alert_sk(5, "r:s:0:firing"), "0000000000005#r:s:0:firing");
        assert_eq!(key_ms(i64::MAX), "9999999999999");
    }

    #[test]
    fn rows_become_blocks_per_service_and_minute_and_read_back() {
        let batch = log_batch(&[
            event("e1", 1_763_892_000_000, "api", Severity::Error),
            event("e2", 1_763_892_000_001, "api", Severity::Critical),
            event("e3", 1_763_892_060_000, "api", Severity::Warning),
        ]);
        let rows = HotRows::select(&batch.parts[0], Severity::Warning)
            .unwrap()
            .unwrap();
        let mut seq = 0;
        let blocks = block_items(&[rows.clone(), rows], 3600, "w", &mut seq, 64 * 1024).unwrap();
        assert_eq!(blocks.items.len(), 2, "one block per minute");
        assert_eq!(blocks.events, 3, "the repeated rows once");
        assert_eq!(seq, 2);
        let first = &blocks.items[0];
        assert_eq!(get_s(first, "pk"), Some("svc#api"));
        assert_eq!(get_s(first, "sk"), Some("1763892000000#w#1"));
        assert_eq!(
            get_n::<i64>(first, "expires_at"),
            Some(1_763_892_000 + 3600)
        );
        assert_eq!(
            get_n::<usize>(first, "top"),
            Some(Severity::Critical.index())
        );
        let events = item_events(first, "api").unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"]);
        assert_eq!(events[1].service, "api");
        assert_eq!(events[1].event.severity, Severity::Critical);
        assert_eq!(events[1].event.status, Some(503));
        assert_eq!(events[1].event.attrs, Some(serde_json::json!({"k": 1})));
        assert_eq!(events[1].time, "2025-11-23T10:00:00.001Z");
        assert_eq!(
            blocks.days.keys().collect::<Vec<_>>(),
            [&("2025-11-23".to_string(), Arc::from("api"))]
        );
        let registry = registry_item("2025-11-23", "api", 9);
        assert_eq!(get_s(&registry, "pk"), Some("svcs#2025-11-23"));
    }

    #[test]
    fn items_written_before_blocks_still_read() {
        let item: Item = HashMap::from([
            ("pk".into(), s(service_pk("api"))),
            ("sk".into(), s(event_sk(5, "e1"))),
            ("event_id".into(), s("e1")),
            ("ts".into(), n(5)),
            ("service".into(), s("api")),
            ("severity".into(), s("ERROR")),
            ("source".into(), s("src")),
            ("message".into(), s("boom")),
        ]);
        let events = item_events(&item, "api").unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.message, "boom");
        let mut broken = item.clone();
        broken.insert("blk".into(), s("not binary"));
        assert!(item_events(&broken, "api").is_err());
    }

    #[test]
    fn write_units_follow_the_item_size() {
        // Names 2 + 2 + 3, values 7 + 3 + (1 + 1): 19 bytes.
        let item: Item = HashMap::from([
            ("pk".into(), s("svc#api")),
            ("sk".into(), s("a#b")),
            ("num".into(), n(1200)),
        ]);
        assert_eq!(item_bytes(&item), 2 + 7 + 2 + 3 + 3 + 2);
        assert_eq!(write_units(&item), 1);
        let big: Item =
            HashMap::from([("blk".into(), AttributeValue::B(Blob::new(vec![0u8; 2048])))]);
        assert_eq!(item_bytes(&big), 2051);
        assert_eq!(write_units(&big), 3);
        let list = AttributeValue::L(vec![s("ab"), s("c")]);
        assert_eq!(value_bytes(&list), 3 + 3 + 2);
        assert_eq!(value_bytes(&n("-0.0500")), 2);
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
