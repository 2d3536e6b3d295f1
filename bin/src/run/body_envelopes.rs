//! JSON arrays and Firehose requests read element by element, and the decoded
//! size of what the decoder will decompress (see the parent module's
//! `# Limits` and `# Memory`).

use std::borrow::Cow;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use spate_operators::sources::ChunkFormat;

use super::{
    BodyError, BodyRecord, Budget, GZIP_MAGIC, Limits, ParsedBody, lines_record,
    looks_like_cloudwatch,
};

/// Scratch for measuring decompressed sizes.
const SCRATCH: usize = 64 << 10;

/// What a failure inside serde's visitors really was.
fn stash<E: de::Error>(slot: &mut Option<BodyError>, error: BodyError) -> E {
    let message = error.to_string();
    *slot = Some(error);
    E::custom(message)
}

// ---------------------------------------------------------------- JSON array

struct ArrayLines<'s> {
    out: Vec<u8>,
    count: usize,
    base: usize,
    budget: &'s mut dyn Budget,
    failure: Option<BodyError>,
}

impl<'de> Visitor<'de> for &mut ArrayLines<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            let json = element.get().as_bytes();
            self.count += 1;
            if json.first() == Some(&b'"') {
                // A string element is a raw log line (newlines inside would
                // split it, so they become spaces).
                let line: Cow<'_, str> = match serde_json::from_slice::<&str>(json) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => {
                        // Escapes: unescaped into a buffer of its own.
                        let held = self.base + self.out.capacity() + json.len();
                        if let Err(e) = self.budget.hold(held) {
                            return Err(stash(&mut self.failure, e));
                        }
                        Cow::Owned(
                            serde_json::from_slice::<String>(json).map_err(de::Error::custom)?,
                        )
                    }
                };
                self.out
                    .extend(line.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
            } else if memchr::memchr2(b'\n', b'\r', json).is_some() {
                push_compact(&mut self.out, json);
            } else {
                self.out.extend_from_slice(json);
            }
            self.out.push(b'\n');
        }
        Ok(())
    }
}

/// Copies JSON without the whitespace between tokens (a valid JSON text has
/// line breaks only there).
fn push_compact(out: &mut Vec<u8>, json: &[u8]) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
            out.push(b);
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push(b);
        }
    }
}

/// One line per element of the array `text`; `base` is what the caller
/// holds. The output is never longer than `text` (an element is no longer
/// than its JSON, and its newline takes the place of a comma or the `]`).
pub(super) fn json_array(
    text: &[u8],
    base: usize,
    budget: &mut dyn Budget,
) -> Result<BodyRecord, BodyError> {
    budget.hold(base + text.len())?;
    let mut lines = ArrayLines {
        out: Vec::with_capacity(text.len()),
        count: 0,
        base,
        budget,
        failure: None,
    };
    let mut parser = serde_json::Deserializer::from_slice(text);
    let parsed =
        de::Deserializer::deserialize_seq(&mut parser, &mut lines).and_then(|()| parser.end());
    if let Err(e) = parsed {
        return Err(lines
            .failure
            .take()
            .unwrap_or_else(|| BodyError::JsonArray(e.to_string())));
    }
    if lines.count == 0 {
        return Err(BodyError::Empty);
    }
    Ok(BodyRecord {
        format: ChunkFormat::Lines,
        lines: lines.count,
        bytes: lines.out,
    })
}

// ---------------------------------------------------------------- Firehose

#[derive(Deserialize)]
struct FirehoseRecord<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

struct FirehoseState<'s> {
    base: usize,
    budget: &'s mut dyn Budget,
    records: Vec<BodyRecord>,
    /// Capacity of the records' buffers.
    held: usize,
    /// What the decoder will see of the records so far.
    decoded: DecodedSize,
    request_id: Option<String>,
    seen_records: bool,
    index: usize,
    failure: Option<BodyError>,
}

impl FirehoseState<'_> {
    fn add(&mut self, record: FirehoseRecord<'_>) -> Result<(), BodyError> {
        use base64::Engine as _;
        let index = self.index;
        self.index += 1;
        let data = record.data.trim();
        let estimate = base64::decoded_len_estimate(data.len());
        let held_now = self.base + self.held + estimate + 1;
        self.budget.hold(held_now + self.decoded.scratch_bytes())?;
        let mut bytes = Vec::with_capacity(estimate + 1);
        base64::engine::general_purpose::STANDARD
            .decode_vec(data, &mut bytes)
            .map_err(|e| BodyError::Firehose(format!("records[{index}].data: {e}")))?;
        let what = || format!("records[{index}].data");
        let record = if bytes.starts_with(&GZIP_MAGIC) || looks_like_cloudwatch(&bytes) {
            self.decoded
                .add_payload(&bytes, what, held_now, self.budget)?;
            BodyRecord {
                format: ChunkFormat::CloudWatchPayload,
                bytes,
                lines: 1,
            }
        } else if bytes.iter().any(|b| !b.is_ascii_whitespace()) {
            let record = lines_record(bytes);
            self.decoded
                .add_lines(&record.bytes, held_now, self.budget)?;
            record
        } else {
            return Ok(());
        };
        self.held += record.bytes.capacity();
        self.records.push(record);
        Ok(())
    }
}

struct Records<'a, 's>(&'a mut FirehoseState<'s>);

impl<'de> DeserializeSeed<'de> for Records<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Records<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<FirehoseRecord<'de>>()? {
            if let Err(e) = self.0.add(record) {
                return Err(stash(&mut self.0.failure, e));
            }
        }
        Ok(())
    }
}

struct Request<'a, 's>(&'a mut FirehoseState<'s>);

impl<'de> Visitor<'de> for Request<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Firehose request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "requestId" => self.0.request_id = Some(map.next_value::<String>()?),
                "records" => {
                    map.next_value_seed(Records(self.0))?;
                    self.0.seen_records = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The records of a Firehose request `text`, read one by one; `base` is what
/// the caller holds.
pub(super) fn firehose(
    text: &[u8],
    base: usize,
    limits: Limits,
    budget: &mut dyn Budget,
) -> Result<ParsedBody, BodyError> {
    let mut state = FirehoseState {
        base,
        budget,
        records: Vec::new(),
        held: 0,
        decoded: DecodedSize::new(limits),
        request_id: None,
        seen_records: false,
        index: 0,
        failure: None,
    };
    let mut parser = serde_json::Deserializer::from_slice(text);
    let parsed = de::Deserializer::deserialize_map(&mut parser, Request(&mut state))
        .and_then(|()| parser.end());
    if let Err(e) = parsed {
        return Err(state
            .failure
            .take()
            .unwrap_or_else(|| BodyError::Firehose(e.to_string())));
    }
    let missing = |field| BodyError::Firehose(format!("missing field `{field}`"));
    let request_id = state.request_id.ok_or_else(|| missing("requestId"))?;
    if !state.seen_records {
        return Err(missing("records"));
    }
    if state.records.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(ParsedBody {
        records: state.records,
        firehose_request_id: Some(request_id),
    })
}

// ---------------------------------------------------------------- sizes

/// Counts what the decoder will see of a request's records: a gzip payload
/// by its decompressed size, and a line that is a base64 gzip payload
/// (`H4sI...`, which the line decoder decompresses) by that payload's.
pub(super) struct DecodedSize {
    limits: Limits,
    total: usize,
    scratch: Vec<u8>,
}

impl DecodedSize {
    pub(super) fn new(limits: Limits) -> Self {
        DecodedSize {
            limits,
            total: 0,
            scratch: Vec::new(),
        }
    }

    fn count(&mut self, n: usize) -> Result<(), BodyError> {
        self.total = self.total.saturating_add(n);
        if self.total > self.limits.max_decoded {
            return Err(BodyError::TooLarge {
                limit_mib: self.limits.max_decoded >> 20,
            });
        }
        Ok(())
    }

    /// Bytes of the scratch buffer (charged by the callers once it exists).
    pub(super) fn scratch_bytes(&self) -> usize {
        self.scratch.capacity()
    }

    /// A CloudWatch payload (`what` names it in errors); `held` is what the
    /// body holds besides the scratch buffer.
    pub(super) fn add_payload(
        &mut self,
        bytes: &[u8],
        what: impl Fn() -> String,
        held: usize,
        budget: &mut dyn Budget,
    ) -> Result<(), BodyError> {
        let start = bytes.len() - bytes.trim_ascii_start().len();
        if !bytes[start..].starts_with(&GZIP_MAGIC) {
            return self.count(bytes.len());
        }
        let gz = flate2::read::MultiGzDecoder::new(&bytes[start..]);
        self.add_stream(gz, bytes.len(), what, held, budget)
    }

    /// A line record: its bytes, plus what its `H4sI` lines decompress to.
    pub(super) fn add_lines(
        &mut self,
        bytes: &[u8],
        held: usize,
        budget: &mut dyn Budget,
    ) -> Result<(), BodyError> {
        let head = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        if head.trim_ascii_start().starts_with(&GZIP_MAGIC) {
            // The decoder reads a chunk that starts with gzip as one payload.
            return self.add_payload(head, || "body (gzip inside gzip)".into(), held, budget);
        }
        self.count(bytes.len())?;
        let mut line_start = 0;
        let mut number = 0;
        while line_start < bytes.len() {
            let end =
                memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
            let line = bytes[line_start..end].trim_ascii();
            number += 1;
            if line.starts_with(b"H4sI") {
                let b64 = base64::read::DecoderReader::new(
                    NoWhitespace(line),
                    &base64::engine::general_purpose::STANDARD,
                );
                let gz = flate2::read::MultiGzDecoder::new(b64);
                self.add_stream(gz, 0, || format!("line {number}"), held, budget)?;
            }
            line_start = end + 1;
        }
        Ok(())
    }

    /// Reads `stream` to its end (or past the limits) into the scratch
    /// buffer, counting; a stream that breaks counts what it gave, at least
    /// `floor` (the decoder will dead-letter it).
    fn add_stream(
        &mut self,
        mut stream: impl Read,
        floor: usize,
        what: impl Fn() -> String,
        held: usize,
        budget: &mut dyn Budget,
    ) -> Result<(), BodyError> {
        if self.scratch.is_empty() {
            budget.hold(held + SCRATCH)?;
            self.scratch = vec![0; SCRATCH];
        }
        let room = self.limits.max_decoded.saturating_sub(self.total);
        let cap = self.limits.max_record.min(room);
        let mut n = 0usize;
        loop {
            match stream.read(&mut self.scratch) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
            if n > cap {
                break;
            }
        }
        if n > self.limits.max_record {
            return Err(BodyError::PayloadTooLarge {
                what: what(),
                limit_bytes: self.limits.max_record,
            });
        }
        self.count(n.max(floor))
    }
}

/// Bytes without ASCII whitespace (the decoder drops it from base64).
struct NoWhitespace<'a>(&'a [u8]);

impl Read for NoWhitespace<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let Some((&b, rest)) = self.0.split_first() else {
                break;
            };
            self.0 = rest;
            if !b.is_ascii_whitespace() {
                buf[n] = b;
                n += 1;
            }
        }
        Ok(n)
    }
}
