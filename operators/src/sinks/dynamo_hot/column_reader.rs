//! Reading a block body (layout 2, written by [`columns`](super::columns)):
//! every event ([`decode`]), or only the events a caller selects by their
//! time and severity ([`decode_where`]).
//!
//! Times and severities are streams of their own, so they are read first,
//! for every event; the other streams are then walked event by event, and
//! an event not selected is stepped over (its table entries and id heads
//! still read, as later events refer to them) without building its
//! strings. "The 100 newest" of a block of a few hundred events thus
//! builds 100 events, not all of them.

use serde_json::{Map, Value};

use super::DynamoHotError;
use super::columns::{
    FIXED_STREAMS, Field, HEAD_TEXT, HEAD_UUID, ID_RAW, ID_SOURCE_HEAD_N, ID_SOURCE_N, SHAPE_NONE,
    SHAPE_OBJECT, SHAPE_TEXT,
};
use super::values::{read_value, skip_value, uuid_text};
use super::wire::{Reader, TableReader, malformed};
use crate::event::Severity;
use crate::sinks::hot::StoredEvent;

/// Decodes every event of a body, in the order they were encoded.
#[cfg(test)]
pub(super) fn decode(text: &[u8], bin: &[u8]) -> Result<Vec<StoredEvent>, DynamoHotError> {
    decode_where(text, bin, every_event)
}

/// A selection for [`decode_where`] that picks every event.
pub fn every_event(times: &[i64], _: &[Severity]) -> Vec<bool> {
    vec![true; times.len()]
}

/// Decodes the events of a body that `select` picks: it is given the time
/// and the severity of every event, in body order, and answers whether to
/// build each (an answer shorter than the events leaves the rest out). The
/// events picked come back in body order. The whole body is checked as
/// [`decode`] checks it.
pub fn decode_where(
    text: &[u8],
    bin: &[u8],
    select: impl FnOnce(&[i64], &[Severity]) -> Vec<bool>,
) -> Result<Vec<StoredEvent>, DynamoHotError> {
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
    let (times, severities) = r.times_and_severities(n)?;
    let picked = select(&times, &severities);
    let mut out = Vec::with_capacity(picked.iter().filter(|&&p| p).count());
    for (i, (&ts_ms, &severity)) in times.iter().zip(&severities).enumerate() {
        if picked.get(i).copied().unwrap_or(false) {
            out.push(r.event(ts_ms, severity)?);
        } else {
            r.skip_event()?;
        }
    }
    if r.streams.iter().any(|s| s.remaining() != 0) || r.bin.remaining() != 0 {
        return Err(malformed("bytes left after the events"));
    }
    Ok(out)
}

struct ReaderState<'a> {
    streams: Vec<Reader<'a>>,
    bin: Reader<'a>,
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

    /// The times (deltas summed) and severities of the `n` events.
    fn times_and_severities(
        &mut self,
        n: usize,
    ) -> Result<(Vec<i64>, Vec<Severity>), DynamoHotError> {
        let mut times = Vec::with_capacity(n);
        let mut ts_ms = 0i64;
        for _ in 0..n {
            ts_ms = ts_ms.wrapping_add(self.s(Field::Ts).signed()?);
            times.push(ts_ms);
        }
        if n > self.s(Field::Sev).remaining() {
            return Err(malformed(format!("{n} severities")));
        }
        let mut severities = Vec::with_capacity(n);
        for _ in 0..n {
            let sev = self.s(Field::Sev).byte()?;
            severities.push(
                *Severity::ALL
                    .get(usize::from(sev))
                    .ok_or_else(|| malformed(format!("severity index {sev}")))?,
            );
        }
        Ok((times, severities))
    }

    /// The next event, whose time and severity are known.
    fn event(&mut self, ts_ms: i64, severity: Severity) -> Result<StoredEvent, DynamoHotError> {
        let id = self.id()?;
        let source = self.table(Field::Source)?.to_string();
        let event_id = match id {
            Id::Raw(id) => id.to_string(),
            Id::SourceN(n) => format!("{source}:{n}"),
            Id::SourceHeadN(head, n) => format!("{source}:{}:{n}", self.heads[head]),
        };
        let host = self.table_opt(Field::Host)?.map(str::to_string);
        let log_group = self.table_opt(Field::LogGroup)?.map(str::to_string);
        let log_stream = self.table_opt(Field::LogStream)?.map(str::to_string);
        let client_ip = self.table_opt(Field::ClientIp)?.map(str::to_string);
        let count = self.tag_count()?;
        let mut tags = Vec::with_capacity(count);
        for _ in 0..count {
            tags.push(self.table(Field::Tags)?.to_string());
        }
        let status = self.status()?;
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

    /// Steps over the next event: what later events refer to (table
    /// entries, id heads and numbers, attribute keys) is read, nothing is
    /// built.
    fn skip_event(&mut self) -> Result<(), DynamoHotError> {
        self.id()?;
        self.table(Field::Source)?;
        for field in [
            Field::Host,
            Field::LogGroup,
            Field::LogStream,
            Field::ClientIp,
        ] {
            self.table_opt(field)?;
        }
        for _ in 0..self.tag_count()? {
            self.table(Field::Tags)?;
        }
        self.status()?;
        self.s(Field::Message).bytes()?;
        self.skip_attrs()
    }

    /// The table of a stream of table indexes.
    fn table_of(&mut self, field: Field) -> (&mut TableReader, &mut Reader<'a>) {
        let table = match field {
            Field::Source => &mut self.sources,
            Field::Host => &mut self.hosts,
            Field::LogGroup => &mut self.log_groups,
            Field::LogStream => &mut self.log_streams,
            Field::ClientIp => &mut self.ips,
            _ => &mut self.tags,
        };
        (table, &mut self.streams[field as usize])
    }

    fn table(&mut self, field: Field) -> Result<&str, DynamoHotError> {
        let (table, r) = self.table_of(field);
        table.next(r)
    }

    fn table_opt(&mut self, field: Field) -> Result<Option<&str>, DynamoHotError> {
        let (table, r) = self.table_of(field);
        table.next_opt(r)
    }

    fn tag_count(&mut self) -> Result<usize, DynamoHotError> {
        let count = self.s(Field::Tags).len()?;
        if count > self.s(Field::Tags).remaining() {
            return Err(malformed(format!("{count} tags")));
        }
        Ok(count)
    }

    fn status(&mut self) -> Result<Option<u16>, DynamoHotError> {
        match self.s(Field::Status).varint()? {
            0 => Ok(None),
            s => u16::try_from(s - 1)
                .map(Some)
                .map_err(|_| malformed(format!("status {}", s - 1))),
        }
    }

    fn id(&mut self) -> Result<Id<'a>, DynamoHotError> {
        let r = &mut self.streams[Field::Id as usize];
        match r.byte()? {
            ID_RAW => Ok(Id::Raw(r.str()?)),
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

    /// The shape of the next event's attrs: `None` for none, the JSON text
    /// of attrs that are not an object, or the bitmap of an object's keys
    /// (the keys new to the block read into the key table).
    fn shape(&mut self) -> Result<Option<Shape<'a>>, DynamoHotError> {
        let r = &mut self.streams[Field::Shape as usize];
        match r.varint()? {
            SHAPE_NONE => return Ok(None),
            SHAPE_TEXT => return Ok(Some(Shape::Text(r.bytes()?))),
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
        Ok(Some(Shape::Object(bitmap)))
    }

    fn attrs(&mut self) -> Result<Option<Value>, DynamoHotError> {
        let bitmap = match self.shape()? {
            None => return Ok(None),
            Some(Shape::Text(json)) => {
                return serde_json::from_slice(json)
                    .map(Some)
                    .map_err(|e| malformed(format!("attrs: {e}")));
            }
            Some(Shape::Object(bitmap)) => bitmap,
        };
        let mut map = Map::new();
        for k in keys_in(bitmap, self.keys.len()) {
            let value = read_value(values_of(&mut self.streams, k)?, &mut self.bin)?;
            map.insert(self.keys.value(k).to_string(), value);
        }
        Ok(Some(Value::Object(map)))
    }

    fn skip_attrs(&mut self) -> Result<(), DynamoHotError> {
        let Some(Shape::Object(bitmap)) = self.shape()? else {
            return Ok(());
        };
        for k in keys_in(bitmap, self.keys.len()) {
            skip_value(values_of(&mut self.streams, k)?, &mut self.bin)?;
        }
        Ok(())
    }
}

/// The value stream of attribute key `k`.
fn values_of<'s, 'a>(
    streams: &'s mut [Reader<'a>],
    k: usize,
) -> Result<&'s mut Reader<'a>, DynamoHotError> {
    streams
        .get_mut(FIXED_STREAMS + k)
        .ok_or_else(|| malformed(format!("no values of key {k}")))
}

/// The indexes (below `keys`) of the bits set in `bitmap`.
fn keys_in(bitmap: &[u8], keys: usize) -> impl Iterator<Item = usize> + '_ {
    (0..keys).filter(move |&k| bitmap[k / 8] & (1 << (k % 8)) != 0)
}

enum Shape<'a> {
    Text(&'a [u8]),
    Object(&'a [u8]),
}

enum Id<'a> {
    Raw(&'a str),
    SourceN(u64),
    SourceHeadN(usize, u64),
}

fn non_negative(n: i64) -> Result<u64, DynamoHotError> {
    u64::try_from(n).map_err(|_| malformed(format!("id number {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::dynamo_hot::columns::tests::encode_stored as encode;
    use crate::sinks::hot::event::tests::stored;

    #[test]
    fn only_the_events_selected_are_built_and_in_body_order() {
        let mut events: Vec<StoredEvent> = (0..40).map(|i| stored(i, 1_000 + i as i64)).collect();
        events[3].attrs = Some(serde_json::json!({"trace_id": "45ac5f6db1ed51b506f85663a0be0c1b"}));
        events[30].attrs =
            Some(serde_json::json!({"n": 7, "trace_id": "55ac5f6db1ed51b506f85663a0be0c1b"}));
        events[31].attrs = Some(serde_json::json!([1, 2]));
        events[32].event_id = "sqs:q:f179b57d-f799-46d2-8e7c-b5bd8def31ad:3".into();
        events[32].source = "sqs:q".into();
        events[33].event_id = "sqs:q:f179b57d-f799-46d2-8e7c-b5bd8def31ad:9".into();
        events[33].source = "sqs:q".into();
        let body = encode(&events);
        let mut seen = Vec::new();
        let picked = decode_where(&body.text, &body.bin, |times, severities| {
            seen = times
                .iter()
                .copied()
                .zip(severities.iter().copied())
                .collect();
            times.iter().map(|&t| t >= 1_030).collect()
        })
        .unwrap();
        assert_eq!(picked, events[30..]);
        let expected: Vec<(i64, Severity)> = events.iter().map(|e| (e.ts_ms, e.severity)).collect();
        assert_eq!(seen, expected);
        // A short answer leaves the rest out; nothing picked is nothing.
        let first = decode_where(&body.text, &body.bin, |_, _| vec![true, false, true]).unwrap();
        assert_eq!(first, [events[0].clone(), events[2].clone()]);
        assert!(
            decode_where(&body.text, &body.bin, |_, _| Vec::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_selection_still_checks_the_whole_body() {
        let events: Vec<StoredEvent> = (0..5).map(|i| stored(i, i as i64)).collect();
        let good = encode(&events);
        let mut extra = good.bin.clone();
        extra.push(0);
        assert!(decode_where(&good.text, &extra, |_, _| Vec::new()).is_err());
        for cut in [1, good.text.len() / 2, good.text.len() - 1] {
            assert!(decode_where(&good.text[..cut], &good.bin, |_, _| Vec::new()).is_err());
        }
        // Every single-byte change is an error or some events, never a panic.
        for i in 0..good.text.len() {
            let mut bad = good.text.clone();
            bad[i] ^= 0x5a;
            let _ = decode_where(&bad, &good.bin, |t, _| {
                t.iter().map(|t| t % 2 == 0).collect()
            });
        }
    }
}
