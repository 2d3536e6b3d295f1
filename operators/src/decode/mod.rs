//! Decoding of raw log input into [`EventBatch`] rows, classified on the way.
//!
//! [`LineDecoder::decode_chunk`] splits newline-delimited input (LF or CRLF) and
//! picks a format per line:
//! 1. a line starting with `{` is JSON (the field table is in `json.rs`): the
//!    common shapes are read in one pass without copying (`flat.rs`), anything
//!    else (escapes, floats, errors, ...) by simd-json, with the same result; a
//!    CloudWatch Logs subscription payload (`messageType` / `logEvents`) on one
//!    line is unpacked instead;
//! 2. an Apache/nginx common or combined access log line;
//! 3. anything else is plain text, with level/time/host/app conventions read by
//!    [`parse_text`].
//!
//! A chunk that starts with gzip magic is a whole CloudWatch Logs payload and
//! goes to [`LineDecoder::decode_cloudwatch`]; so does each line that starts
//! with `H4sI` (base64 of gzip: one payload per line, as in Firehose dumps).
//! A whole queue message or stream record compressed by its producer (gzip or
//! zstd, raw or base64) goes to [`LineDecoder::decode_compressed`], which reads
//! a CloudWatch Logs payload or lines out of it (`unpack.rs`, `compressed.rs`).
//!
//! `event_id` is `<source>:<position>` where position is `first_position` plus
//! the byte offset of the line in the chunk (stable on redelivery when the source
//! passes a stable `first_position`, e.g. the file offset or 0 for a message whose
//! id is part of `source`). CloudWatch events use the logEvent `id` alone.
//! `ts` falls back to `ingest_ts_ms` (CloudWatch: to the logEvent timestamp) when
//! the event carries no parseable time.
//!
//! # Malformed input
//!
//! Nothing panics; a bad line never affects the lines after it.
//!
//! | input | outcome |
//! | --- | --- |
//! | empty or whitespace-only line | skipped silently (neither event nor dead letter) |
//! | CRLF line ending, surrounding whitespace | stripped |
//! | UTF-8 BOM at the start of a chunk or payload | stripped |
//! | NUL bytes (e.g. `copytruncate` leftovers) | removed, the rest decoded; a line of only NULs is skipped |
//! | line longer than `max_line` (1 MiB) | dead letter `line exceeds 1048576 bytes (raw truncated to 65536 bytes)`, raw = first 64 KiB |
//! | invalid UTF-8 | dead letter `invalid utf-8`, raw kept |
//! | `{...` that is not valid JSON and does not end in `}` | dead letter `truncated json: <parser error>` |
//! | `{...}` that is not valid JSON | dead letter `invalid json: <parser error>` |
//! | JSON nested deeper than `max_json_depth` (64) | dead letter `json nesting deeper than 64` |
//! | JSON array / number / string line (not an object) | decoded as plain text |
//! | level field of the wrong type (bool, object, unknown number) or unknown spelling | ignored as a level, kept in `attrs`; severity from keywords/status |
//! | unparseable `ts` field | kept in `attrs`; `ts` = ingest time |
//! | access log line with an unparseable `[time]` | still an access event; `ts` = ingest time |
//! | CloudWatch payload: bad base64 | one dead letter `bad base64` |
//! | CloudWatch payload or compressed message: bad gzip or zstd / too large decompressed | one dead letter `bad gzip: ...` or `bad zstd: ...` / `gzip payload exceeds N bytes decompressed` |
//! | CloudWatch payload: bad JSON / no `logEvents` | one dead letter `invalid cloudwatch json: ...` / `not a cloudwatch logs payload` |
//! | CloudWatch `CONTROL_MESSAGE` | no event, counted in [`DecodeStats::control_messages`] |
//! | CloudWatch logEvent without a string `message` | dead letter `cloudwatch log event without message` |

mod access;
mod cloudwatch;
mod compressed;
mod flat;
mod header_level;
mod json;
mod keys;
mod special_bytes;
mod text;
mod timestamp;
mod unpack;

use memchr::memchr;
use serde::{Deserialize, Serialize};
use simd_json::{Buffers, ErrorType, Tape};

pub use access::{AccessLine, parse_access};
pub use json::{JsonFields, write_json_str};
pub use text::{TextLine, parse_text};
pub use timestamp::{days_from_civil, epoch_to_ms, parse_clf, parse_iso8601, parse_iso8601_prefix};
pub use unpack::is_compressed;
pub(crate) use unpack::looks_like_cloudwatch;

use crate::classify::{Classifier, RowInput};
use crate::event::{EventBatch, Severity, StrColumn};

use unpack::BOM;

/// Input that could not be decoded, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Lowercase reason, e.g. `invalid utf-8`.
    pub reason: String,
    /// The source the input came from.
    pub source: String,
    /// Position of the line (as in `event_id`) or of the payload.
    pub position: u64,
    /// The raw bytes (a prefix when the reason says so).
    pub raw: Vec<u8>,
}

/// Per-call facts about where the input comes from.
#[derive(Debug, Clone, Copy)]
pub struct DecodeContext<'a> {
    /// Event id prefix (`file:/var/log/x.log`, `sqs:queue:msgid`, `http`).
    pub source: &'a str,
    /// The `source` column: where the input came from as `kind:name`
    /// (`file:/var/log/x.log`, `sqs:queue`, `http`); see
    /// [`RawChunk::origin`](crate::sources::RawChunk::origin).
    pub origin: &'a str,
    /// Receive time, UTC ms.
    pub ingest_ts_ms: i64,
    /// Service when the event names none.
    pub default_service: &'a str,
    /// Host when the event names none.
    pub default_host: Option<&'a str>,
}

impl<'a> DecodeContext<'a> {
    /// A context with service `unknown`, no default host, and `source` as
    /// its own origin.
    pub fn new(source: &'a str, ingest_ts_ms: i64) -> Self {
        DecodeContext {
            source,
            origin: source,
            ingest_ts_ms,
            default_service: "unknown",
            default_host: None,
        }
    }
}

fn default_max_line_bytes() -> usize {
    1 << 20
}
fn default_max_json_depth() -> usize {
    64
}
fn default_dead_letter_prefix_bytes() -> usize {
    64 << 10
}
fn default_max_payload_bytes() -> usize {
    64 << 20
}

/// Decoder limits (`[decode]` in the Spate config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecoderConfig {
    /// Lines longer than this become dead letters.
    #[serde(
        rename = "max_line",
        alias = "max_line_bytes",
        with = "crate::component::units::with::bytes",
        default = "default_max_line_bytes"
    )]
    #[schemars(with = "crate::component::units::Bytes")]
    pub max_line_bytes: usize,
    /// JSON nested deeper than this becomes a dead letter.
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
    /// How much of an over-long line a dead letter keeps.
    #[serde(
        rename = "dead_letter_prefix",
        alias = "dead_letter_prefix_bytes",
        with = "crate::component::units::with::bytes",
        default = "default_dead_letter_prefix_bytes"
    )]
    #[schemars(with = "crate::component::units::Bytes")]
    pub dead_letter_prefix_bytes: usize,
    /// Largest decompressed payload accepted (a CloudWatch Logs payload, or a
    /// compressed SQS message or Kinesis record); a larger one is a dead letter.
    #[serde(
        rename = "max_payload",
        alias = "max_payload_bytes",
        with = "crate::component::units::with::bytes",
        default = "default_max_payload_bytes"
    )]
    #[schemars(with = "crate::component::units::Bytes")]
    pub max_payload_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_line_bytes: default_max_line_bytes(),
            max_json_depth: default_max_json_depth(),
            dead_letter_prefix_bytes: default_dead_letter_prefix_bytes(),
            max_payload_bytes: default_max_payload_bytes(),
        }
    }
}

/// Counts from one decode call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Rows appended to the batch.
    pub events: usize,
    /// Dead letters appended.
    pub dead_letters: usize,
    /// CloudWatch `CONTROL_MESSAGE` payloads skipped.
    pub control_messages: usize,
}

impl std::ops::AddAssign for DecodeStats {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.dead_letters += o.dead_letters;
        self.control_messages += o.control_messages;
    }
}

/// Reusable buffers for one simd-json parse at a time.
struct JsonScratch {
    buf: Vec<u8>,
    buffers: Buffers,
    spare: Option<Tape<'static>>,
}

impl JsonScratch {
    fn new(max_depth: usize) -> Self {
        JsonScratch {
            buf: Vec::new(),
            buffers: Buffers::with_max_depth(4096, max_depth),
            spare: None,
        }
    }
}

/// Parses `input` with `scratch`'s buffers; hand the tape back with `recycle`.
fn parse_json<'s>(
    buf: &'s mut Vec<u8>,
    buffers: &mut Buffers,
    spare: &mut Option<Tape<'static>>,
    input: &[u8],
) -> Result<Tape<'s>, simd_json::Error> {
    buf.clear();
    buf.extend_from_slice(input);
    let mut tape = spare.take().unwrap_or_else(|| Tape(Vec::new())).reset();
    match simd_json::fill_tape(buf, buffers, &mut tape) {
        Ok(()) => Ok(tape),
        Err(e) => {
            *spare = Some(tape.reset());
            Err(e)
        }
    }
}

fn json_error_reason(e: &simd_json::Error, line: &[u8], max_depth: usize) -> String {
    let msg = e.to_string().to_lowercase();
    match e.error() {
        ErrorType::DepthLimitExceeded => format!("json nesting deeper than {max_depth}"),
        ErrorType::InvalidUtf8 => "invalid utf-8".into(),
        ErrorType::Eof => format!("truncated json: {msg}"),
        _ if !line.ends_with(b"}") => format!("truncated json: {msg}"),
        _ => format!("invalid json: {msg}"),
    }
}

/// How a row's id is written.
#[derive(Debug, Clone, Copy)]
enum EventId<'a> {
    /// `<source>:<position>`.
    Position(u64),
    /// Taken as is (CloudWatch logEvent id).
    Literal(&'a str),
}

/// Per-line facts besides the context.
#[derive(Debug, Clone, Copy)]
struct LineMeta<'a> {
    id: EventId<'a>,
    position: u64,
    fallback_ts: i64,
    log_group: Option<&'a str>,
    log_stream: Option<&'a str>,
    allow_cloudwatch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineOutcome {
    Event,
    Dead,
    Skipped,
    CloudWatch,
}

/// The per-row fields every decoder produces.
#[derive(Debug, Clone, Copy, Default)]
struct Fields<'a> {
    ts: Option<i64>,
    level: Option<Severity>,
    service: Option<&'a str>,
    host: Option<&'a str>,
    message: &'a str,
    status: u16,
    client_ip: Option<&'a str>,
    path: Option<&'a str>,
}

/// The line-level machinery, separate from the CloudWatch buffers so that
/// CloudWatch messages (borrowed from those buffers) can be decoded as lines.
struct Engine {
    cfg: DecoderConfig,
    classifier: Classifier,
    json: JsonScratch,
    /// Members found by the JSON fast path (`flat.rs`).
    flat: Vec<flat::Member>,
    attrs: String,
    nul: Vec<u8>,
}

/// Decodes and classifies chunks of log input into an [`EventBatch`].
///
/// Holds reusable scratch buffers: keep one per decode actor and call it for
/// every chunk.
pub struct LineDecoder {
    engine: Engine,
    cw: JsonScratch,
    unpacker: unpack::Unpacker,
}

impl LineDecoder {
    /// A decoder with the given limits and classifier.
    pub fn new(config: DecoderConfig, classifier: Classifier) -> Self {
        let depth = config.max_json_depth;
        LineDecoder {
            engine: Engine {
                cfg: config,
                classifier,
                json: JsonScratch::new(depth),
                flat: Vec::new(),
                attrs: String::new(),
                nul: Vec::new(),
            },
            cw: JsonScratch::new(depth),
            unpacker: unpack::Unpacker::default(),
        }
    }

    /// The classifier applied to every row.
    pub fn classifier(&self) -> &Classifier {
        &self.engine.classifier
    }

    /// The limits in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.engine.cfg
    }

    /// Decodes a chunk of newline-delimited input (the last line need not end in
    /// a newline), appending rows to `out` and bad input to `dead`.
    pub fn decode_chunk(
        &mut self,
        chunk: &[u8],
        first_position: u64,
        ctx: &DecodeContext<'_>,
        out: &mut EventBatch,
        dead: &mut Vec<DeadLetter>,
    ) -> DecodeStats {
        let mut stats = DecodeStats::default();
        let start = if chunk.starts_with(BOM) { BOM.len() } else { 0 };
        let head = chunk[start..].trim_ascii_start();
        if head.starts_with(&[0x1f, 0x8b]) {
            return self.decode_cloudwatch(&chunk[start..], first_position, ctx, out, dead);
        }
        reserve_rows(out, chunk, ctx.source.len(), ctx.origin.len());
        let mut line_start = start;
        while line_start < chunk.len() {
            let line_end =
                memchr(b'\n', &chunk[line_start..]).map_or(chunk.len(), |i| line_start + i);
            let line = &chunk[line_start..line_end];
            let position = first_position + line_start as u64;
            if line.trim_ascii_start().starts_with(b"H4sI") {
                // One base64-of-gzip CloudWatch payload per line (Firehose/Kinesis dumps).
                stats += self.decode_cloudwatch(line, position, ctx, out, dead);
                line_start = line_end + 1;
                continue;
            }
            let meta = LineMeta {
                id: EventId::Position(position),
                position,
                fallback_ts: ctx.ingest_ts_ms,
                log_group: None,
                log_stream: None,
                allow_cloudwatch: true,
            };
            match self.engine.decode_line(line, &meta, ctx, out, dead) {
                LineOutcome::Event => stats.events += 1,
                LineOutcome::Dead => stats.dead_letters += 1,
                LineOutcome::Skipped => {}
                LineOutcome::CloudWatch => {
                    stats += self.decode_cloudwatch(line, position, ctx, out, dead);
                }
            }
            line_start = line_end + 1;
        }
        stats
    }
}

/// Reserves room for the rows of `chunk` up front, so that a fresh batch does
/// not grow (and copy) its columns a dozen times while decoding.
fn reserve_rows(out: &mut EventBatch, chunk: &[u8], source_len: usize, origin_len: usize) {
    // Line length from the first 64 KiB (counting every newline costs ~3 %).
    let sample = &chunk[..chunk.len().min(64 << 10)];
    let lines = memchr::memchr_iter(b'\n', sample).count() + 1;
    let rows = lines * (chunk.len() / sample.len().max(1)) + lines;
    out.ts.reserve(rows);
    out.ingest_ts.reserve(rows);
    out.severity.reserve(rows);
    out.tags.reserve(rows);
    out.status.reserve(rows);
    for c in out.str_columns_mut() {
        c.offsets.reserve(rows);
    }
    out.event_id.data.reserve(rows * (source_len + 8));
    out.source.data.reserve(rows * origin_len);
    out.message.data.reserve(chunk.len() / 2);
    out.attrs.data.reserve(chunk.len() / 2);
}

fn dead_letter(reason: String, ctx: &DecodeContext<'_>, position: u64, raw: &[u8]) -> DeadLetter {
    DeadLetter {
        reason,
        source: ctx.source.to_string(),
        position,
        raw: raw.to_vec(),
    }
}

impl Engine {
    fn decode_line(
        &mut self,
        raw: &[u8],
        meta: &LineMeta<'_>,
        ctx: &DecodeContext<'_>,
        out: &mut EventBatch,
        dead: &mut Vec<DeadLetter>,
    ) -> LineOutcome {
        let Engine {
            cfg,
            classifier,
            json,
            flat,
            attrs,
            nul,
        } = self;
        if raw.len() > cfg.max_line_bytes {
            let keep = cfg.dead_letter_prefix_bytes.min(raw.len());
            let reason = format!(
                "line exceeds {} bytes (raw truncated to {keep} bytes)",
                cfg.max_line_bytes
            );
            dead.push(dead_letter(reason, ctx, meta.position, &raw[..keep]));
            return LineOutcome::Dead;
        }
        let line = if memchr(0, raw).is_some() {
            nul.clear();
            nul.extend(raw.iter().copied().filter(|&b| b != 0));
            nul.as_slice()
        } else {
            raw
        };
        let line = line.trim_ascii();
        if line.is_empty() {
            return LineOutcome::Skipped;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            dead.push(dead_letter("invalid utf-8".into(), ctx, meta.position, raw));
            return LineOutcome::Dead;
        };
        if line[0] == b'{' {
            if flat::scan(text, flat) {
                let f = json::extract_members(flat::iter(text, flat), attrs, meta.allow_cloudwatch);
                if f.cloudwatch {
                    return LineOutcome::CloudWatch;
                }
                emit(out, ctx, meta, &json_fields(&f), attrs, classifier);
                return LineOutcome::Event;
            }
            let JsonScratch {
                buf,
                buffers,
                spare,
            } = json;
            let tape = match parse_json(buf, buffers, spare, line) {
                Ok(t) => t,
                Err(e) => {
                    let reason = json_error_reason(&e, line, cfg.max_json_depth);
                    dead.push(dead_letter(reason, ctx, meta.position, raw));
                    return LineOutcome::Dead;
                }
            };
            let f = json::extract(&tape.0, attrs, meta.allow_cloudwatch);
            if f.cloudwatch {
                *spare = Some(tape.reset());
                return LineOutcome::CloudWatch;
            }
            emit(out, ctx, meta, &json_fields(&f), attrs, classifier);
            *spare = Some(tape.reset());
        } else if let Some(a) = parse_access(text) {
            access::write_access_attrs(&a, attrs);
            let fields = Fields {
                ts: a.ts,
                message: text,
                status: a.status,
                client_ip: Some(a.client_ip),
                path: a.path,
                ..Fields::default()
            };
            emit(out, ctx, meta, &fields, attrs, classifier);
        } else {
            let t = parse_text(text, ctx.ingest_ts_ms);
            let fields = Fields {
                ts: t.ts,
                level: t.level,
                service: t.service,
                host: t.host,
                message: text,
                ..Fields::default()
            };
            attrs.clear();
            emit(out, ctx, meta, &fields, attrs, classifier);
        }
        LineOutcome::Event
    }
}

fn json_fields<'a>(f: &JsonFields<'a>) -> Fields<'a> {
    Fields {
        ts: f.ts,
        level: f.level,
        service: f.service,
        host: f.host,
        message: f.message.unwrap_or(""),
        status: f.status,
        client_ip: f.client_ip,
        path: f.path,
    }
}

/// Appends `<source>:<position>` (or a literal id) without allocating.
fn push_event_id(col: &mut StrColumn, source: &str, id: EventId<'_>) {
    match id {
        EventId::Literal(s) => col.push(s),
        EventId::Position(p) => {
            col.data.extend_from_slice(source.as_bytes());
            col.data.push(b':');
            col.data
                .extend_from_slice(access::itoa_u64(p, &mut [0u8; 20]).as_bytes());
            col.offsets.push(col.data.len() as i32);
            if let Some(v) = col.validity.as_mut() {
                v.push(true);
            }
        }
    }
}

/// Appends one classified row to every column of `out`.
fn emit(
    out: &mut EventBatch,
    ctx: &DecodeContext<'_>,
    meta: &LineMeta<'_>,
    f: &Fields<'_>,
    attrs: &str,
    classifier: &Classifier,
) {
    fn non_empty(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    let attrs = (!attrs.is_empty()).then_some(attrs);
    let service = non_empty(f.service).unwrap_or(ctx.default_service);
    let host = non_empty(f.host).or(ctx.default_host);
    let client_ip = non_empty(f.client_ip);
    push_event_id(&mut out.event_id, ctx.source, meta.id);
    out.ts.push(f.ts.unwrap_or(meta.fallback_ts));
    out.ingest_ts.push(ctx.ingest_ts_ms);
    out.service.push(service);
    out.host.push_opt(host);
    out.source.push(ctx.origin);
    out.log_group.push_opt(meta.log_group);
    out.log_stream.push_opt(meta.log_stream);
    out.status.push(f.status);
    out.client_ip.push_opt(client_ip);
    out.message.push(f.message);
    out.attrs.push_opt(attrs);
    let c = classifier.classify(&RowInput {
        message: f.message,
        level: f.level,
        status: f.status,
        path: f.path,
        service: Some(service),
        host,
        client_ip,
        attrs,
    });
    out.severity.push(c.severity);
    let tags = if c.tags == 0 {
        0
    } else {
        classifier.batch_tag_bits(c.tags, out)
    };
    out.tags.push(tags);
}

#[cfg(test)]
mod tests;
