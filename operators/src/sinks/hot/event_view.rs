//! [`EventView`]: a hot event borrowed from where it is held, what the block
//! encoder reads. At a commit the hot writers view their buffered rows'
//! Arrow columns in place: no event is copied into owned strings and no
//! `attrs` is parsed into a [`serde_json::Value`] on the way into a block
//! (the block encoder reads flat `attrs` objects straight from their text).
//! A [`StoredEvent`] read back from a store is viewed the same way.

use arrow_array::Array;

use super::HotError;
use super::event::{MAX_TEXT_BYTES, StoredEvent, bounded, stored_attrs};
use super::rows::{EventColumns, HotRows, opt_str};
use crate::event::Severity;

/// One hot event as the block encoder reads it: the fields of
/// [`StoredEvent`], borrowed.
///
/// ```
/// use spate_operators::event::Severity;
/// use spate_operators::sinks::hot::StoredEvent;
/// use spate_operators::sinks::hot::event_view::AttrsView;
/// let event = StoredEvent {
///     event_id: "test:1".into(), ts_ms: 5, severity: Severity::Error, host: None,
///     source: "test".into(), log_group: None, log_stream: None, tags: vec!["db".into()],
///     status: None, client_ip: None, message: "boom".into(),
///     attrs: Some(serde_json::json!({"k": 1})),
/// };
/// let view = event.view();
/// assert_eq!((view.event_id, view.tags.as_slice()), ("test:1", &["db"][..]));
/// assert!(matches!(view.attrs, AttrsView::Value(v) if v["k"] == 1));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventView<'a> {
    /// Stable id from the source position.
    pub event_id: &'a str,
    /// Event time, UTC milliseconds.
    pub ts_ms: i64,
    /// Its severity.
    pub severity: Severity,
    /// Host name or address.
    pub host: Option<&'a str>,
    /// Where the event came from.
    pub source: &'a str,
    /// CloudWatch Logs group.
    pub log_group: Option<&'a str>,
    /// CloudWatch Logs stream.
    pub log_stream: Option<&'a str>,
    /// Tags set by the classifier.
    pub tags: Vec<&'a str>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Client IP address.
    pub client_ip: Option<&'a str>,
    /// The message (at most [`MAX_TEXT_BYTES`]).
    pub message: &'a str,
    /// Remaining fields.
    pub attrs: AttrsView<'a>,
}

/// The `attrs` of an [`EventView`]: what [`StoredEvent::attrs`] would hold,
/// not yet parsed when it comes from the lake's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrsView<'a> {
    /// No attributes.
    None,
    /// The lake's `attrs` text, at most [`MAX_TEXT_BYTES`]: stored as the
    /// JSON value it holds, or as a JSON string of itself when it is not
    /// JSON (as [`StoredEvent`] keeps it).
    Json(&'a str),
    /// Text stored as a JSON string: `attrs` longer than [`MAX_TEXT_BYTES`],
    /// cut.
    Text(&'a str),
    /// A parsed value.
    Value(&'a serde_json::Value),
}

impl<'a> AttrsView<'a> {
    /// The lake's `attrs` text of an event as a hot store keeps it: cut to
    /// [`MAX_TEXT_BYTES`] and kept as a string when longer (counted, as
    /// [`bounded`] does).
    pub fn of_text(text: Option<&'a str>) -> Self {
        match text {
            None => AttrsView::None,
            Some(t) if t.len() > MAX_TEXT_BYTES => AttrsView::Text(bounded(t)),
            Some(t) => AttrsView::Json(t),
        }
    }

    /// Bytes of the attributes as JSON text, roughly (no escapes counted).
    pub fn json_len(&self) -> usize {
        match self {
            AttrsView::None => 4,
            AttrsView::Json(t) => t.len(),
            AttrsView::Text(t) => t.len() + 2,
            AttrsView::Value(v) => json_size(v),
        }
    }
}

/// Bytes of `v` as JSON text, roughly (no escapes counted).
fn json_size(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(m) => {
            2 + m
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

impl StoredEvent {
    /// The events of hot `rows`, each with its arrival time (`ingest_ts`,
    /// ms): messages and attributes cut to [`MAX_TEXT_BYTES`].
    pub fn of_rows(rows: &HotRows) -> Result<Vec<(StoredEvent, i64)>, HotError> {
        Ok(EventView::of_rows(rows)?
            .into_iter()
            .map(|(view, ingest_ms)| (view.to_stored(), ingest_ms))
            .collect())
    }

    /// This event, borrowed.
    pub fn view(&self) -> EventView<'_> {
        EventView {
            event_id: &self.event_id,
            ts_ms: self.ts_ms,
            severity: self.severity,
            host: self.host.as_deref(),
            source: &self.source,
            log_group: self.log_group.as_deref(),
            log_stream: self.log_stream.as_deref(),
            tags: self.tags.iter().map(String::as_str).collect(),
            status: self.status,
            client_ip: self.client_ip.as_deref(),
            message: &self.message,
            attrs: self
                .attrs
                .as_ref()
                .map_or(AttrsView::None, AttrsView::Value),
        }
    }
}

impl<'a> EventView<'a> {
    /// This event, owned: `attrs` text parsed as [`StoredEvent`] keeps it.
    pub fn to_stored(&self) -> StoredEvent {
        let owned = |v: Option<&str>| v.map(str::to_string);
        StoredEvent {
            event_id: self.event_id.to_string(),
            ts_ms: self.ts_ms,
            severity: self.severity,
            host: owned(self.host),
            source: self.source.to_string(),
            log_group: owned(self.log_group),
            log_stream: owned(self.log_stream),
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            status: self.status,
            client_ip: owned(self.client_ip),
            message: self.message.to_string(),
            attrs: match self.attrs {
                AttrsView::None => None,
                AttrsView::Json(text) => Some(stored_attrs(text)),
                AttrsView::Text(text) => Some(serde_json::Value::String(text.to_string())),
                AttrsView::Value(value) => Some(value.clone()),
            },
        }
    }

    /// The events of hot `rows`, borrowed from their columns, each with its
    /// arrival time (`ingest_ts`, ms): messages cut to [`MAX_TEXT_BYTES`],
    /// as [`StoredEvent::of_rows`] does.
    pub fn of_rows(rows: &'a HotRows) -> Result<Vec<(EventView<'a>, i64)>, HotError> {
        let cols = EventColumns::of(&rows.records)?;
        let mut out = Vec::with_capacity(rows.len());
        for i in 0..rows.len() {
            let event_id = cols.event_id.value(i);
            let severity: Severity = cols
                .severity
                .value(i)
                .parse()
                .map_err(|e| HotError::Data(format!("severity of {event_id}: {e}")))?;
            let event = EventView {
                event_id,
                ts_ms: cols.ts.value(i),
                severity,
                host: opt_str(cols.host, i),
                source: cols.source.value(i),
                log_group: opt_str(cols.log_group, i),
                log_stream: opt_str(cols.log_stream, i),
                tags: cols.tags(i),
                status: cols
                    .status
                    .is_valid(i)
                    .then(|| u16::try_from(cols.status.value(i)).ok())
                    .flatten(),
                client_ip: opt_str(cols.client_ip, i),
                message: bounded(cols.message.value(i)),
                attrs: AttrsView::of_text(opt_str(cols.attrs, i)),
            };
            out.push((event, cols.ingest_ts.value(i)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::hot::rows::tests::{TestEvent, event, log_batch};

    /// Every row of `events`, of one service.
    fn all_rows(events: &[TestEvent]) -> HotRows {
        let batch = log_batch(events);
        HotRows::select(&batch.parts[0], Severity::Info)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn rows_become_stored_events_with_their_arrival() {
        let mut e = event("c1", 1_000, "api", Severity::Critical);
        e.tags = &["http_5xx"];
        e.ingest_ts = Some(5_000);
        let rows = all_rows(&[e]);
        let got = StoredEvent::of_rows(&rows).unwrap();
        assert_eq!(got.len(), 1);
        let (stored, ingest_ms) = &got[0];
        assert_eq!(*ingest_ms, 5_000);
        assert_eq!(stored.event_id, "c1");
        assert_eq!(stored.severity, Severity::Critical);
        assert_eq!(stored.tags, ["http_5xx"]);
        assert_eq!(stored.status, Some(503));
        assert_eq!(stored.attrs, Some(serde_json::json!({"k": 1})));
        assert_eq!(stored.log_group, None);
    }

    #[test]
    fn rows_are_viewed_in_place_and_owned_as_stored_events() {
        let mut a = event("c1", 1_000, "api", Severity::Critical);
        a.tags = &["http_5xx", "db"];
        a.ingest_ts = Some(5_000);
        let b = event("c2", 2_000, "api", Severity::Error);
        let rows = all_rows(&[a, b]);
        let viewed = EventView::of_rows(&rows).unwrap();
        assert_eq!(viewed.len(), 2);
        let (first, ingest_ms) = &viewed[0];
        assert_eq!(*ingest_ms, 5_000);
        assert_eq!((first.event_id, first.ts_ms), ("c1", 1_000));
        assert_eq!(first.severity, Severity::Critical);
        assert_eq!(first.tags, ["http_5xx", "db"]);
        assert_eq!(first.status, Some(503));
        assert_eq!(first.attrs, AttrsView::Json(r#"{"k":1}"#));
        assert_eq!(viewed[1].0.attrs, AttrsView::None);
        // Owned, and viewed again: the same event.
        let stored = first.to_stored();
        assert_eq!(stored.attrs, Some(serde_json::json!({"k": 1})));
        let mut again = stored.view();
        assert!(matches!(again.attrs, AttrsView::Value(v) if v["k"] == 1));
        again.attrs = first.attrs;
        assert_eq!(&again, first);
        for text in ["{", r#""s""#] {
            let view = EventView {
                attrs: AttrsView::Json(text),
                ..first.clone()
            };
            assert_eq!(view.to_stored().attrs, Some(stored_attrs(text)));
        }
    }

    #[test]
    fn long_attrs_are_viewed_cut_as_text() {
        let long = format!("{{\"k\":\"{}\"}}", "x".repeat(MAX_TEXT_BYTES));
        let AttrsView::Text(cut) = AttrsView::of_text(Some(&long)) else {
            panic!("not cut")
        };
        assert_eq!(cut.len(), MAX_TEXT_BYTES);
        assert_eq!(stored_attrs(&long), serde_json::Value::String(cut.into()));
        assert_eq!(AttrsView::of_text(Some("{}")), AttrsView::Json("{}"));
        assert_eq!(AttrsView::of_text(None), AttrsView::None);
    }
}
