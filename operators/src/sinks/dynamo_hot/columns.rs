//! The body of a block (layout 2): its events column by column in a compact
//! binary form, so that zstd sees long runs of alike values and random ids
//! cost their bytes, not their hex digits.
//!
//! Each field is a stream of its own ([`Field`]): times as varint
//! differences, severities as bytes, repeated strings (sources, hosts, log
//! groups, tags) as indexes into tables built as they go, messages as
//! length-prefixed text. An event id `<source>:<n>` or
//! `<source>:<head>:<n>` (the decoder's `<source>:<position>`, where an SQS
//! source carries the message id) keeps only the head (a table; a UUID as
//! 16 bytes) and the difference of `n` from the previous id with that head.
//! `attrs` (a JSON object) is split by key: each event gives the keys new to
//! the block and a bitmap of its keys, and each key has a stream of values
//! ([`values`](super::values)): integers as varints, lowercase hex of 16
//! digits or more and UUIDs as bytes, other strings as text, anything else
//! as its JSON. Random bytes (hex, UUIDs) go
//! to a separate section that is not compressed (`bin`): zstd's literal
//! coder does better on the text without them.
//!
//! `attrs` that is not an object is stored as its JSON text. Everything
//! reads back exactly ([`decode`], in `column_reader.rs`).
//!
//! The events come as [`EventView`]s, borrowed from the hot rows' Arrow
//! columns: a flat `attrs` object (scalars, no escapes: nearly every
//! event's) is split straight from its text
//! ([`flat_json`](super::flat_json)), anything else is parsed with
//! serde_json first; both give the same bytes.

use serde_json::Value;

use super::flat_json::{Scalar, flat_object};
use super::values::{put_scalar, put_value, uuid_bytes};
use super::wire::{TableWriter, put_bytes, put_signed, put_varint};
use crate::sinks::hot::event::stored_attrs;
use crate::sinks::hot::event_view::{AttrsView, EventView};

/// The fixed streams, in body order; attribute keys follow.
#[derive(Clone, Copy)]
pub(super) enum Field {
    Ts,
    Sev,
    Id,
    Source,
    Host,
    LogGroup,
    LogStream,
    Tags,
    Status,
    ClientIp,
    Message,
    Shape,
}

pub(super) const FIXED_STREAMS: usize = 12;

/// How an event id is stored (the first byte of its entry in [`Field::Id`]).
pub(super) const ID_RAW: u8 = 0;
pub(super) const ID_SOURCE_N: u8 = 1;
pub(super) const ID_SOURCE_HEAD_N: u8 = 2;

/// How a head of an id is stored when new.
pub(super) const HEAD_TEXT: u8 = 0;
pub(super) const HEAD_UUID: u8 = 1;

/// [`Field::Shape`] entries: no attrs, attrs (not an object) stored as JSON text, or an object
/// (its new keys and the bitmap of its keys follow).
pub(super) const SHAPE_NONE: u64 = 0;
pub(super) const SHAPE_TEXT: u64 = 1;
pub(super) const SHAPE_OBJECT: u64 = 2;

/// An encoded body: `text` (to compress) and `bin` (random bytes, stored
/// as they are).
pub struct Encoded {
    pub text: Vec<u8>,
    pub bin: Vec<u8>,
}

/// Encodes `events` (in the order given).
pub fn encode(events: &[EventView<'_>]) -> Encoded {
    let mut w = Writer {
        streams: vec![Vec::new(); FIXED_STREAMS],
        ..Writer::default()
    };
    for e in events {
        w.event(e);
    }
    let mut text = Vec::with_capacity(w.streams.iter().map(Vec::len).sum::<usize>() + 64);
    put_varint(&mut text, events.len() as u64);
    put_varint(&mut text, w.streams.len() as u64);
    for s in &w.streams {
        put_bytes(&mut text, s);
    }
    Encoded { text, bin: w.bin }
}

#[derive(Default)]
struct Writer<'a> {
    streams: Vec<Vec<u8>>,
    bin: Vec<u8>,
    previous_ts: i64,
    previous_n: i64,
    /// Id heads, and the last `n` of each.
    heads: TableWriter,
    head_n: Vec<i64>,
    sources: TableWriter,
    hosts: TableWriter,
    log_groups: TableWriter,
    log_streams: TableWriter,
    tags: TableWriter,
    ips: TableWriter,
    keys: TableWriter,
    /// Scratch of [`Writer::attrs`], kept across events: each key's index
    /// and whether it is new, and the key bitmap.
    key_ids: Vec<(u64, bool)>,
    bitmap: Vec<u8>,
    /// Scratch of [`Writer::attrs`]: the members of a flat object.
    members: Vec<(&'a str, Scalar<'a>)>,
}

impl<'a> Writer<'a> {
    fn s(&mut self, stream: Field) -> &mut Vec<u8> {
        &mut self.streams[stream as usize]
    }

    fn event(&mut self, e: &EventView<'a>) {
        let dt = e.ts_ms.wrapping_sub(self.previous_ts);
        self.previous_ts = e.ts_ms;
        put_signed(self.s(Field::Ts), dt);
        self.s(Field::Sev).push(e.severity.index() as u8);
        self.id(e.event_id, e.source);
        let mut out = std::mem::take(self.s(Field::Source));
        self.sources.put(&mut out, e.source);
        *self.s(Field::Source) = out;
        for (stream, value) in [
            (Field::Host, &e.host),
            (Field::LogGroup, &e.log_group),
            (Field::LogStream, &e.log_stream),
            (Field::ClientIp, &e.client_ip),
        ] {
            let mut out = std::mem::take(self.s(stream));
            let table = match stream {
                Field::Host => &mut self.hosts,
                Field::LogGroup => &mut self.log_groups,
                Field::LogStream => &mut self.log_streams,
                _ => &mut self.ips,
            };
            table.put_opt(&mut out, *value);
            *self.s(stream) = out;
        }
        let mut out = std::mem::take(self.s(Field::Tags));
        put_varint(&mut out, e.tags.len() as u64);
        for t in &e.tags {
            self.tags.put(&mut out, t);
        }
        *self.s(Field::Tags) = out;
        put_varint(
            self.s(Field::Status),
            e.status.map_or(0, |s| u64::from(s) + 1),
        );
        put_bytes(self.s(Field::Message), e.message.as_bytes());
        self.attrs(e.attrs);
    }

    fn id(&mut self, id: &str, source: &str) {
        let mut out = std::mem::take(self.s(Field::Id));
        match split_id(id, source) {
            Some((None, n)) => {
                out.push(ID_SOURCE_N);
                put_signed(&mut out, n.wrapping_sub(self.previous_n));
                self.previous_n = n;
            }
            Some((Some(head), n)) => {
                out.push(ID_SOURCE_HEAD_N);
                let (i, new) = self.heads.index_of(head);
                put_varint(&mut out, i);
                if new {
                    match uuid_bytes(head) {
                        Some(b) => {
                            out.push(HEAD_UUID);
                            self.bin.extend_from_slice(&b);
                        }
                        None => {
                            out.push(HEAD_TEXT);
                            put_bytes(&mut out, head.as_bytes());
                        }
                    }
                    self.head_n.push(0);
                }
                let last = &mut self.head_n[i as usize];
                put_signed(&mut out, n.wrapping_sub(*last));
                *last = n;
            }
            None => {
                out.push(ID_RAW);
                put_bytes(&mut out, id.as_bytes());
            }
        }
        *self.s(Field::Id) = out;
    }

    fn attrs(&mut self, attrs: AttrsView<'a>) {
        match attrs {
            AttrsView::None => put_varint(self.s(Field::Shape), SHAPE_NONE),
            AttrsView::Json(text) => {
                let mut members = std::mem::take(&mut self.members);
                if flat_object(text, &mut members) {
                    self.object(&members, |out, bin, v| put_scalar(out, bin, *v));
                } else {
                    self.value_attrs(&stored_attrs(text));
                }
                self.members = members;
            }
            AttrsView::Text(text) => self.value_attrs(&Value::String(text.to_string())),
            AttrsView::Value(value) => self.value_attrs(value),
        }
    }

    /// `attrs` held as a value: an object by key, anything else as its JSON
    /// text.
    fn value_attrs(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                let members: Vec<(&str, &Value)> =
                    map.iter().map(|(k, v)| (k.as_str(), v)).collect();
                self.object(&members, |out, bin, v| put_value(out, bin, v));
            }
            other => {
                let out = self.s(Field::Shape);
                put_varint(out, SHAPE_TEXT);
                put_bytes(out, other.to_string().as_bytes());
            }
        }
    }

    /// An object's `members`, sorted by key, no key twice; `put` writes a
    /// value.
    fn object<V>(&mut self, members: &[(&str, V)], put: impl Fn(&mut Vec<u8>, &mut Vec<u8>, &V)) {
        // The keys not seen before in this block, then a bitmap of the
        // event's keys over every key seen so far; each value goes to its
        // key's stream, in key order (the order `bin` is read back in).
        let mut ids = std::mem::take(&mut self.key_ids);
        ids.clear();
        ids.extend(members.iter().map(|(k, _)| self.keys.index_of(k)));
        let out = &mut self.streams[Field::Shape as usize];
        put_varint(out, SHAPE_OBJECT);
        put_varint(out, ids.iter().filter(|&&(_, new)| new).count() as u64);
        // New keys get their indexes in member order: ascending.
        for ((key, _), _) in members.iter().zip(&ids).filter(|(_, (_, new))| *new) {
            put_bytes(out, key.as_bytes());
        }
        self.bitmap.clear();
        self.bitmap.resize(self.keys.len().div_ceil(8), 0);
        for &(i, _) in &ids {
            self.bitmap[(i / 8) as usize] |= 1 << (i % 8);
        }
        out.extend_from_slice(&self.bitmap);
        // Values in key index order; member order already is that unless an
        // earlier event brought a later key first.
        if ids.is_sorted_by_key(|&(i, _)| i) {
            for (&(i, _), (_, value)) in ids.iter().zip(members) {
                let stream = self.value_stream(i);
                put(&mut self.streams[stream], &mut self.bin, value);
            }
        } else {
            let mut order: Vec<(u64, &V)> = ids
                .iter()
                .map(|&(i, _)| i)
                .zip(members.iter().map(|(_, v)| v))
                .collect();
            order.sort_unstable_by_key(|&(i, _)| i);
            for (i, value) in order {
                let stream = self.value_stream(i);
                put(&mut self.streams[stream], &mut self.bin, value);
            }
        }
        self.key_ids = ids;
    }

    /// The stream of key `i`'s values (made when new).
    fn value_stream(&mut self, i: u64) -> usize {
        let stream = FIXED_STREAMS + i as usize;
        if self.streams.len() <= stream {
            self.streams.resize(stream + 1, Vec::new());
        }
        stream
    }
}

/// `id` as `<source>:[<head>:]<n>`: the head (if any) and `n` (decimal, no
/// leading zeros, below 2^63).
fn split_id<'a>(id: &'a str, source: &str) -> Option<(Option<&'a str>, i64)> {
    let rest = id.strip_prefix(source)?.strip_prefix(':')?;
    let (head, digits) = match rest.rsplit_once(':') {
        Some((head, digits)) => (Some(head), digits),
        None => (None, rest),
    };
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    let n: i64 = digits.parse().ok().filter(|_| canonical)?;
    Some((head, n))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sinks::dynamo_hot::column_reader::decode;
    use crate::sinks::hot::StoredEvent;
    use crate::sinks::hot::event::tests::stored;
    use proptest::prelude::*;

    /// [`encode`] of owned events.
    pub(in crate::sinks::dynamo_hot) fn encode_stored(events: &[StoredEvent]) -> Encoded {
        let views: Vec<EventView<'_>> = events.iter().map(StoredEvent::view).collect();
        encode(&views)
    }

    fn round_trip(events: &[StoredEvent]) -> Vec<StoredEvent> {
        let e = encode_stored(events);
        decode(&e.text, &e.bin).unwrap()
    }

    #[test]
    fn events_round_trip() {
        let events: Vec<StoredEvent> = (0..50).map(|i| stored(i, 1_000 + i as i64)).collect();
        assert_eq!(round_trip(&events), events);
        assert!(round_trip(&[]).is_empty());
    }

    #[test]
    fn ids_values_and_odd_attrs_round_trip() {
        let uuid = "f179b57d-f799-46d2-8e7c-b5bd8def31ad";
        let mut events: Vec<StoredEvent> = (0..8).map(|i| stored(i, -5 + i as i64)).collect();
        events[0].event_id = format!("sqs:q:{uuid}:120");
        events[0].source = "sqs:q".into();
        events[1].event_id = format!("sqs:q:{uuid}:7");
        events[1].source = "sqs:q".into();
        events[2].event_id = "sqs:q:other-head:0".into();
        events[2].source = "sqs:q".into();
        events[3].event_id = "3695".repeat(14); // a CloudWatch id
        events[4].event_id = "sqs:queue:007".into(); // leading zero: kept as text
        events[5].event_id = "sqs:queue:".into();
        events[6].attrs = Some(serde_json::json!({
                "trace_id": "45ac5f6db1ed51b506f85663a0be0c1b",
                "upper": "45AC5F6DB1ED51B506F85663A0BE0C1B",
                "short": "abcd",
                "uuid": uuid,
                "UUID": uuid.to_uppercase(),
                "n": -12,
                "big": u64::MAX,
                "f": 2.5,
                "t": true,
                "no": false,
                "null": null,
                "list": [1, {"x": "y"}],
                "esc": "a\"b\\c\né",
        }));
        events[7].attrs = Some(serde_json::json!([1, "2"])); // not an object: as text
        events[7].tags = vec!["a".into(), "b".into(), "a".into()];
        events[7].status = Some(u16::MAX);
        events[7].host = None;
        events[7].message = String::new();
        assert_eq!(round_trip(&events), events);
    }

    #[test]
    fn keys_met_in_another_order_than_the_maps_round_trip() {
        // "b" gets index 0 in the first event; in the second, map order
        // (a, b) is then not index order (1, 0), and the values are put in
        // index order.
        let mut events: Vec<StoredEvent> = (0..3).map(|i| stored(i, i as i64)).collect();
        events[0].attrs = Some(serde_json::json!({"b": 1}));
        events[1].attrs = Some(serde_json::json!({"a": "45ac5f6db1ed51b5", "b": 3}));
        events[2].attrs = Some(serde_json::json!({"a": "x", "c": true}));
        assert_eq!(round_trip(&events), events);
    }

    /// The body of `events` with each `attrs` given as text (as the hot
    /// writers view the lake's rows) and as the value serde_json reads.
    fn bodies_of_text_and_value(events: &[StoredEvent], texts: &[&str]) -> (Encoded, Encoded) {
        let values: Vec<serde_json::Value> = texts.iter().map(|t| stored_attrs(t)).collect();
        let mut of_text = Vec::new();
        let mut of_value = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let mut v = e.view();
            v.attrs = AttrsView::Json(texts[i % texts.len()]);
            of_text.push(v.clone());
            v.attrs = AttrsView::Value(&values[i % texts.len()]);
            of_value.push(v);
        }
        (encode(&of_text), encode(&of_value))
    }

    #[test]
    fn attrs_read_from_text_encode_as_their_values_do() {
        let texts = [
            r#"{"trace_id":"45ac5f6db1ed51b506f85663a0be0c1b","n":-3,"ok":true}"#,
            r#"{"uuid":"f179b57d-f799-46d2-8e7c-b5bd8def31ad","z":null,"a":false}"#,
            r#" { "n" : 9223372036854775807 , "b": "x y" } "#,
            r#"{"b":"first","a":"then a key that sorts before"}"#,
            "{}",
            // Left to serde_json: each must still give the same bytes.
            r#"{"esc":"a\"b\u00e9","n":1}"#,
            r#"{"f":2.50,"e":1e3,"neg0":-0}"#,
            r#"{"big":18446744073709551615,"small":-9223372036854775809}"#,
            r#"{"nested":{"x":[1,"y"]},"n":1}"#,
            r#"{"dup":1,"dup":2}"#,
            r#"[1,"2"]"#,
            r#""just a string""#,
            "12",
            "not json {",
            "{\"raw\":\"tab\there\"}",
        ];
        let events: Vec<StoredEvent> = (0..60).map(|i| stored(i, 1_000 + i as i64)).collect();
        let (of_text, of_value) = bodies_of_text_and_value(&events, &texts);
        assert_eq!(of_text.text, of_value.text);
        assert_eq!(of_text.bin, of_value.bin);
        // And they read back as the values.
        let back = decode(&of_text.text, &of_text.bin).unwrap();
        for (i, e) in back.iter().enumerate() {
            assert_eq!(
                e.attrs.as_ref(),
                Some(&stored_attrs(texts[i % texts.len()]))
            );
        }
    }

    #[test]
    fn w1_attrs_read_from_text_encode_as_their_values_do() {
        let mut input = Vec::new();
        spate_loadgen::generate(spate_loadgen::Workload::AppJson, 3_000, 7, &mut input).unwrap();
        let mut decoder = crate::decode::LineDecoder::new(
            crate::decode::DecoderConfig::default(),
            crate::classify::Classifier::default(),
        );
        let ctx = crate::decode::DecodeContext::new("http:test", 1_800_000_000_000);
        let mut events = crate::event::EventBatch::default();
        let mut dead = Vec::new();
        let stats = decoder.decode_chunk(&input, 0, &ctx, &mut events, &mut dead);
        let batch = crate::log_batch::LogBatch::from_events(events, dead, &stats).unwrap();
        let rows =
            crate::sinks::hot::HotRows::select_all(&batch, crate::event::Severity::Info).unwrap();
        let mut flat = 0;
        for r in &rows {
            let viewed: Vec<EventView<'_>> = EventView::of_rows(r)
                .unwrap()
                .into_iter()
                .map(|(e, _)| e)
                .collect();
            let stored: Vec<StoredEvent> = StoredEvent::of_rows(r)
                .unwrap()
                .into_iter()
                .map(|(e, _)| e)
                .collect();
            let mut scratch = Vec::new();
            flat += viewed
                .iter()
                .filter(|v| matches!(v.attrs, AttrsView::Json(t) if flat_object(t, &mut scratch)))
                .count();
            let (a, b) = (encode(&viewed), encode_stored(&stored));
            assert_eq!((a.text, a.bin), (b.text, b.bin), "service {}", r.service);
        }
        assert!(flat > 2_900, "W1 attrs are flat objects: {flat} of 3000");
    }

    proptest! {
        /// Any object of scalars serde_json writes, with keys and strings
        /// that need escapes or not, and any text at all: the same bytes.
        #[test]
        fn any_attrs_text_encodes_as_its_value(
            members in proptest::collection::vec(
                (r#"[a-c"\\é\n]{0,3}"#, prop_oneof![
                    r#"[0-9a-f"\\ ]{0,40}"#.prop_map(serde_json::Value::from),
                    proptest::num::i64::ANY.prop_map(serde_json::Value::from),
                    proptest::num::u64::ANY.prop_map(serde_json::Value::from),
                    proptest::num::f64::NORMAL.prop_map(serde_json::Value::from),
                    proptest::bool::ANY.prop_map(serde_json::Value::from),
                    proptest::strategy::Just(serde_json::Value::Null),
                ]),
                0..6,
            ),
            junk in r#"[{}":,0-9a-z \\-]{0,24}"#,
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).unwrap());
                text.push(':');
                text.push_str(&v.to_string());
            }
            text.push('}');
            let events: Vec<StoredEvent> = (0..4).map(|i| stored(i, i as i64)).collect();
            let (a, b) = bodies_of_text_and_value(&events, &[&text, &junk]);
            prop_assert_eq!((a.text, a.bin), (b.text, b.bin), "{} / {}", text, junk);
        }
    }

    #[test]
    fn random_ids_are_stored_as_bytes() {
        let mut e = stored(1, 1);
        e.attrs = Some(serde_json::json!({"trace_id": "45ac5f6db1ed51b506f85663a0be0c1b"}));
        e.event_id = "sqs:q:f179b57d-f799-46d2-8e7c-b5bd8def31ad:0".into();
        e.source = "sqs:q".into();
        let encoded = encode_stored(&[e]);
        assert_eq!(encoded.bin.len(), 32);
        assert!(
            !String::from_utf8_lossy(&encoded.text).contains("45ac5f"),
            "the hex is not in the text"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let events: Vec<StoredEvent> = (0..5).map(|i| stored(i, i as i64)).collect();
        let good = encode_stored(&events);
        for cut in [0, 1, 5, good.text.len() / 2, good.text.len() - 1] {
            assert!(
                decode(&good.text[..cut], &good.bin).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = good.bin.clone();
        extra.push(0);
        assert!(decode(&good.text, &extra).is_err(), "bytes left over");
        // Every single-byte change is an error or some events, never a panic.
        for i in 0..good.text.len() {
            let mut bad = good.text.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad, &good.bin);
        }
        // A huge event count does not allocate.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX >> 1);
        assert!(decode(&huge, &[]).is_err());
    }

    #[test]
    fn ids_split_at_their_source() {
        assert_eq!(split_id("sqs:q:12", "sqs:q"), Some((None, 12)));
        assert_eq!(split_id("sqs:q:h:0", "sqs:q"), Some((Some("h"), 0)));
        assert_eq!(split_id("sqs:q:h:01", "sqs:q"), None);
        assert_eq!(split_id("sqs:qq:1", "sqs:q"), None);
        assert_eq!(split_id("sqs:q:99999999999999999999", "sqs:q"), None);
    }
}
