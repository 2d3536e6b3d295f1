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
//! reads back exactly.

use serde_json::{Map, Value};

use super::DynamoHotError;
use super::values::{put_value, read_value, uuid_bytes, uuid_text};
use super::wire::{Reader, TableReader, TableWriter, malformed, put_bytes, put_signed, put_varint};
use crate::event::Severity;
use crate::sinks::hot::StoredEvent;

/// The fixed streams, in body order; attribute keys follow.
#[derive(Clone, Copy)]
enum Field {
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

const FIXED_STREAMS: usize = 12;

/// How an event id is stored (the first byte of its entry in [`Field::Id`]).
const ID_RAW: u8 = 0;
const ID_SOURCE_N: u8 = 1;
const ID_SOURCE_HEAD_N: u8 = 2;

/// How a head of an id is stored when new.
const HEAD_TEXT: u8 = 0;
const HEAD_UUID: u8 = 1;

/// [`Field::Shape`] entries: no attrs, attrs (not an object) stored as JSON text, or an object
/// (its new keys and the bitmap of its keys follow).
const SHAPE_NONE: u64 = 0;
const SHAPE_TEXT: u64 = 1;
const SHAPE_OBJECT: u64 = 2;

/// An encoded body: `text` (to compress) and `bin` (random bytes, stored
/// as they are).
pub struct Encoded {
    pub text: Vec<u8>,
    pub bin: Vec<u8>,
}

/// Encodes `events` (in the order given).
pub fn encode(events: &[StoredEvent]) -> Encoded {
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

/// Decodes what [`encode`] wrote.
pub fn decode(text: &[u8], bin: &[u8]) -> Result<Vec<StoredEvent>, DynamoHotError> {
    let mut head = Reader::new(text);
    let n = head.len()?;
    let count = head.len()?;
    if count < FIXED_STREAMS || count > head.remaining() {
        return Err(malformed(format!("{count} streams")));
    }
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        streams.push(Reader::new(head.bytes()?));
    }
    if head.remaining() != 0 {
        return Err(malformed("bytes after the streams"));
    }
    // Every event takes at least one byte of the time stream.
    if n > streams[Field::Ts as usize].remaining() {
        return Err(malformed(format!("{n} events")));
    }
    let mut r = ReaderState {
        streams,
        bin: Reader::new(bin),
        previous_ts: 0,
        previous_n: 0,
        heads: Vec::new(),
        head_n: Vec::new(),
        sources: TableReader::default(),
        hosts: TableReader::default(),
        log_groups: TableReader::default(),
        log_streams: TableReader::default(),
        tags: TableReader::default(),
        ips: TableReader::default(),
        keys: TableReader::default(),
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.event()?);
    }
    if r.streams.iter().any(|s| s.remaining() != 0) || r.bin.remaining() != 0 {
        return Err(malformed("bytes left after the events"));
    }
    Ok(out)
}

#[derive(Default)]
struct Writer {
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
}

impl Writer {
    fn s(&mut self, stream: Field) -> &mut Vec<u8> {
        &mut self.streams[stream as usize]
    }

    fn event(&mut self, e: &StoredEvent) {
        let dt = e.ts_ms.wrapping_sub(self.previous_ts);
        self.previous_ts = e.ts_ms;
        put_signed(self.s(Field::Ts), dt);
        self.s(Field::Sev).push(e.severity.index() as u8);
        self.id(&e.event_id, &e.source);
        let mut out = std::mem::take(self.s(Field::Source));
        self.sources.put(&mut out, &e.source);
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
            table.put_opt(&mut out, value.as_deref());
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
        self.attrs(e.attrs.as_ref());
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

    fn attrs(&mut self, attrs: Option<&Value>) {
        let map = match attrs {
            None => {
                put_varint(self.s(Field::Shape), SHAPE_NONE);
                return;
            }
            Some(Value::Object(map)) => map,
            Some(other) => {
                let out = self.s(Field::Shape);
                put_varint(out, SHAPE_TEXT);
                put_bytes(out, other.to_string().as_bytes());
                return;
            }
        };
        // The keys not seen before in this block, then a bitmap of the
        // event's keys over every key seen so far; each value goes to its
        // key's stream, in key order (the order `bin` is read back in).
        let ids: Vec<(u64, bool)> = map.keys().map(|k| self.keys.index_of(k)).collect();
        let out = &mut self.streams[Field::Shape as usize];
        put_varint(out, SHAPE_OBJECT);
        put_varint(out, ids.iter().filter(|&&(_, new)| new).count() as u64);
        // New keys get their indexes in map order: ascending.
        for (key, _) in map.keys().zip(&ids).filter(|(_, (_, new))| *new) {
            put_bytes(out, key.as_bytes());
        }
        let mut bitmap = vec![0u8; self.keys.len().div_ceil(8)];
        for &(i, _) in &ids {
            bitmap[(i / 8) as usize] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bitmap);
        let mut values: Vec<(u64, &Value)> =
            ids.iter().map(|&(i, _)| i).zip(map.values()).collect();
        values.sort_unstable_by_key(|&(i, _)| i);
        for (i, value) in values {
            let stream = FIXED_STREAMS + i as usize;
            if self.streams.len() <= stream {
                self.streams.resize(stream + 1, Vec::new());
            }
            put_value(&mut self.streams[stream], &mut self.bin, value);
        }
    }
}

struct ReaderState<'a> {
    streams: Vec<Reader<'a>>,
    bin: Reader<'a>,
    previous_ts: i64,
    previous_n: i64,
    heads: Vec<String>,
    head_n: Vec<i64>,
    sources: TableReader,
    hosts: TableReader,
    log_groups: TableReader,
    log_streams: TableReader,
    tags: TableReader,
    ips: TableReader,
    keys: TableReader,
}

impl<'a> ReaderState<'a> {
    fn s(&mut self, stream: Field) -> &mut Reader<'a> {
        &mut self.streams[stream as usize]
    }

    fn event(&mut self) -> Result<StoredEvent, DynamoHotError> {
        let ts_ms = self.previous_ts.wrapping_add(self.s(Field::Ts).signed()?);
        self.previous_ts = ts_ms;
        let sev = self.s(Field::Sev).byte()?;
        let severity = *Severity::ALL
            .get(usize::from(sev))
            .ok_or_else(|| malformed(format!("severity index {sev}")))?;
        let id = self.id()?;
        let source = self
            .sources
            .get(&mut self.streams[Field::Source as usize])?;
        let event_id = match id {
            Id::Raw(id) => id,
            Id::SourceN(n) => format!("{source}:{n}"),
            Id::SourceHeadN(head, n) => format!("{source}:{}:{n}", self.heads[head]),
        };
        let host = self
            .hosts
            .get_opt(&mut self.streams[Field::Host as usize])?;
        let log_group = self
            .log_groups
            .get_opt(&mut self.streams[Field::LogGroup as usize])?;
        let log_stream = self
            .log_streams
            .get_opt(&mut self.streams[Field::LogStream as usize])?;
        let client_ip = self
            .ips
            .get_opt(&mut self.streams[Field::ClientIp as usize])?;
        let count = self.s(Field::Tags).len()?;
        if count > self.s(Field::Tags).remaining() {
            return Err(malformed(format!("{count} tags")));
        }
        let mut tags = Vec::with_capacity(count);
        for _ in 0..count {
            tags.push(self.tags.get(&mut self.streams[Field::Tags as usize])?);
        }
        let status = match self.s(Field::Status).varint()? {
            0 => None,
            s => Some(u16::try_from(s - 1).map_err(|_| malformed(format!("status {}", s - 1)))?),
        };
        let message = self.s(Field::Message).str()?.to_string();
        let attrs = self.attrs()?;
        Ok(StoredEvent {
            event_id,
            ts_ms,
            severity,
            host,
            source,
            log_group,
            log_stream,
            tags,
            status,
            client_ip,
            message,
            attrs,
        })
    }

    fn id(&mut self) -> Result<Id, DynamoHotError> {
        let r = &mut self.streams[Field::Id as usize];
        match r.byte()? {
            ID_RAW => Ok(Id::Raw(r.str()?.to_string())),
            ID_SOURCE_N => {
                let n = self.previous_n.wrapping_add(r.signed()?);
                self.previous_n = n;
                Ok(Id::SourceN(non_negative(n)?))
            }
            ID_SOURCE_HEAD_N => {
                let i = r.len()?;
                if i == self.heads.len() {
                    let head = match r.byte()? {
                        HEAD_TEXT => r.str()?.to_string(),
                        HEAD_UUID => uuid_text(self.bin.take(16)?),
                        other => return Err(malformed(format!("id head kind {other}"))),
                    };
                    self.heads.push(head);
                    self.head_n.push(0);
                }
                let last = self
                    .head_n
                    .get_mut(i)
                    .ok_or_else(|| malformed(format!("id head {i}")))?;
                *last = last.wrapping_add(r.signed()?);
                Ok(Id::SourceHeadN(i, non_negative(*last)?))
            }
            other => Err(malformed(format!("id kind {other}"))),
        }
    }

    fn attrs(&mut self) -> Result<Option<Value>, DynamoHotError> {
        let r = &mut self.streams[Field::Shape as usize];
        match r.varint()? {
            SHAPE_NONE => return Ok(None),
            SHAPE_TEXT => {
                return serde_json::from_slice(r.bytes()?)
                    .map(Some)
                    .map_err(|e| malformed(format!("attrs: {e}")));
            }
            SHAPE_OBJECT => {}
            other => return Err(malformed(format!("attrs kind {other}"))),
        }
        let new = r.len()?;
        if new > r.remaining() {
            return Err(malformed(format!("{new} keys")));
        }
        for _ in 0..new {
            self.keys.push(r.str()?.to_string());
        }
        let bitmap = r.take(self.keys.len().div_ceil(8))?;
        let mut map = Map::new();
        for k in 0..self.keys.len() {
            if bitmap[k / 8] & (1 << (k % 8)) == 0 {
                continue;
            }
            let values = self
                .streams
                .get_mut(FIXED_STREAMS + k)
                .ok_or_else(|| malformed(format!("no values of key {k}")))?;
            let value = read_value(values, &mut self.bin)?;
            map.insert(self.keys.value(k).to_string(), value);
        }
        Ok(Some(Value::Object(map)))
    }
}

enum Id {
    Raw(String),
    SourceN(u64),
    SourceHeadN(usize, u64),
}

fn non_negative(n: i64) -> Result<u64, DynamoHotError> {
    u64::try_from(n).map_err(|_| malformed(format!("id number {n}")))
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
mod tests {
    use super::*;
    use crate::sinks::hot::event::tests::stored;

    fn round_trip(events: &[StoredEvent]) -> Vec<StoredEvent> {
        let e = encode(events);
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
    fn random_ids_are_stored_as_bytes() {
        let mut e = stored(1, 1);
        e.attrs = Some(serde_json::json!({"trace_id": "45ac5f6db1ed51b506f85663a0be0c1b"}));
        e.event_id = "sqs:q:f179b57d-f799-46d2-8e7c-b5bd8def31ad:0".into();
        e.source = "sqs:q".into();
        let encoded = encode(&[e]);
        assert_eq!(encoded.bin.len(), 32);
        assert!(
            !String::from_utf8_lossy(&encoded.text).contains("45ac5f"),
            "the hex is not in the text"
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let events: Vec<StoredEvent> = (0..5).map(|i| stored(i, i as i64)).collect();
        let good = encode(&events);
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
