//! What a `POST /v1/logs` body holds, turned into journal records.
//!
//! | body | recognised by | becomes |
//! |---|---|---|
//! | gzip of any of the below | `Content-Encoding: gzip`, or the gzip magic bytes | decompressed first (limit: `max_decoded_size`) |
//! | zstd of any of the below | `Content-Encoding: zstd`, or the zstd magic bytes | decompressed first (the same limit) |
//! | NDJSON or plain log lines | anything else | one line record |
//! | JSON array | first non-blank byte `[` | one line per element (a string element is a raw line) |
//! | CloudWatch Logs subscription payload | one object with `messageType` and `logEvents` | one CloudWatch record |
//! | Firehose HTTP endpoint request | `X-Amz-Firehose-Request-Id`, or `requestId` + `records` | one record per `records[].data` (base64), CloudWatch or lines by content |
//!
//! Lines that cannot be decoded are not a reason to refuse a body: they become
//! dead letters downstream, with their reason. A body is refused (400) only when
//! it cannot be read at all: broken gzip, a JSON array or Firehose request that
//! does not parse, base64 that does not decode, or nothing in it.
//!
//! # Limits
//!
//! The decoded size of a request is bounded by [`Limits::max_decoded`]: the
//! body after gzip, and for a Firehose request the sum of its records' data
//! *as the decoder will see it*: a gzip record (a CloudWatch subscription
//! payload) counts its decompressed size, measured here by decompressing it
//! into a small scratch buffer (it is stored compressed). One record may not
//! decompress to more than [`Limits::max_record`] either.
//!
//! # Memory
//!
//! Every buffer this module allocates is charged to a [`Budget`] before it is
//! allocated (and the charge lowered when one is freed), so the HTTP layer's
//! in-flight budget bounds what bodies hold while they are decompressed and
//! parsed, whatever they expand to. Nothing is parsed into a tree: a JSON
//! array or a Firehose request is read element by element straight into the
//! output (which is never larger than the input), so a body holds at most
//! its input, its output, and while a buffer grows the copy being made.

use std::borrow::Cow;
use std::io::Read;

use spate_operators::sources::ChunkFormat;

#[path = "body_envelopes.rs"]
mod envelopes;

/// One unit to append to the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRecord {
    /// How the bytes are framed.
    pub format: ChunkFormat,
    /// The bytes (line records end with a newline).
    pub bytes: Vec<u8>,
    /// Lines (events, roughly) in the record.
    pub lines: usize,
}

/// A body read into records.
#[derive(Debug, Default)]
pub struct ParsedBody {
    /// The records, in order.
    pub records: Vec<BodyRecord>,
    /// The Firehose request id, when the body was a Firehose request (the
    /// answer must echo it).
    pub firehose_request_id: Option<String>,
}

impl ParsedBody {
    /// Lines over all records.
    pub fn lines(&self) -> usize {
        self.records.iter().map(|r| r.lines).sum()
    }

    /// Bytes the records hold (their buffers' capacity).
    pub fn held_bytes(&self) -> usize {
        self.records.iter().map(|r| r.bytes.capacity()).sum()
    }
}

/// Why a body is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// The body is empty or blank.
    #[error("empty body")]
    Empty,
    /// Decompressed, the body is larger than allowed.
    #[error("decompressed body exceeds {limit_mib} MiB")]
    TooLarge {
        /// The limit.
        limit_mib: usize,
    },
    /// One payload (a Firehose record, a base64 gzip line) decompresses to
    /// more than allowed.
    #[error("{what} exceeds {limit_bytes} bytes decompressed")]
    PayloadTooLarge {
        /// Which (`records[3].data`, `line 17`).
        what: String,
        /// The limit.
        limit_bytes: usize,
    },
    /// The in-flight memory budget cannot grow for this body now (retry).
    #[error("too many bytes being received and parsed at once; retry later")]
    Busy,
    /// The body needs more memory than the whole in-flight budget.
    #[error("reading this body needs more than the {limit_mib} MiB of http.max_inflight_size")]
    OverBudget {
        /// The budget.
        limit_mib: usize,
    },
    /// The gzip stream is broken.
    #[error("unreadable gzip body: {0}")]
    Gzip(String),
    /// The zstd stream is broken.
    #[error("unreadable zstd body: {0}")]
    Zstd(String),
    /// A JSON array that does not parse.
    #[error("unreadable JSON array: {0}")]
    JsonArray(String),
    /// A Firehose request that does not parse.
    #[error("unreadable firehose request: {0}")]
    Firehose(String),
    /// An unsupported `Content-Encoding`.
    #[error("unsupported content-encoding {0:?} (use gzip, zstd or identity)")]
    Encoding(String),
}

/// The decoded-size limits of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The body after decompression, and the sum of a Firehose request's
    /// records as decoded (`http.max_decoded_size`).
    pub max_decoded: usize,
    /// One Firehose record's data after decompression.
    pub max_record: usize,
}

impl Limits {
    /// `max_decoded` for the request and for each record.
    #[cfg(test)]
    pub fn uniform(max_decoded: usize) -> Self {
        Limits {
            max_decoded,
            max_record: max_decoded,
        }
    }
}

/// Memory a body may hold while it is read and parsed.
pub trait Budget {
    /// Sets what the body holds now to `bytes`, growing or shrinking the
    /// reservation; [`BodyError::Busy`] or [`BodyError::OverBudget`] when it
    /// cannot grow that far (the reservation is then unchanged).
    fn hold(&mut self, bytes: usize) -> Result<(), BodyError>;
}

/// No limit (tests).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct NoBudget;

#[cfg(test)]
impl Budget for NoBudget {
    fn hold(&mut self, _bytes: usize) -> Result<(), BodyError> {
        Ok(())
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Gzip,
    Zstd,
}

/// The body's compression: from `Content-Encoding`, else sniffed from its
/// first bytes.
fn codec(raw: &[u8], content_encoding: Option<&str>) -> Result<Option<Codec>, BodyError> {
    let sniffed = if raw.starts_with(&GZIP_MAGIC) {
        Some(Codec::Gzip)
    } else if raw.starts_with(&ZSTD_MAGIC) {
        Some(Codec::Zstd)
    } else {
        None
    };
    match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(sniffed),
        Some(e) if e.is_empty() || e == "identity" => Ok(sniffed),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(Some(Codec::Gzip)),
        Some(e) if e == "zstd" => Ok(Some(Codec::Zstd)),
        Some(other) => Err(BodyError::Encoding(other)),
    }
}

/// Reads a body. `content_encoding` and `firehose_request_id` come from the
/// request headers; `max_decoded` bounds the decompressed size (tests and
/// fuzzing; the server reads within a budget, see [`parse_within`]).
#[cfg(test)]
pub fn parse(
    raw: &[u8],
    content_encoding: Option<&str>,
    firehose_request_id: Option<&str>,
    max_decoded: usize,
) -> Result<ParsedBody, BodyError> {
    parse_within(
        Cow::Borrowed(raw),
        content_encoding,
        firehose_request_id,
        Limits::uniform(max_decoded),
        &mut NoBudget,
    )
}

/// What a buffer costs: its capacity when owned; borrowed bytes are the
/// caller's.
#[allow(clippy::ptr_arg)] // whether it is owned is the point
fn held(bytes: &Cow<'_, [u8]>) -> usize {
    match bytes {
        Cow::Owned(v) => v.capacity(),
        Cow::Borrowed(_) => 0,
    }
}

/// Reads a body within `limits`, charging what it holds to `budget` (the
/// caller has charged `raw` already). An owned `raw` is reused for the
/// record when the body is lines or a CloudWatch payload.
pub fn parse_within(
    raw: Cow<'_, [u8]>,
    content_encoding: Option<&str>,
    firehose_request_id: Option<&str>,
    limits: Limits,
    budget: &mut dyn Budget,
) -> Result<ParsedBody, BodyError> {
    let codec = codec(&raw, content_encoding)?;
    let too_large = || BodyError::TooLarge {
        limit_mib: limits.max_decoded >> 20,
    };
    let body: Cow<'_, [u8]> = if let Some(codec) = codec {
        let decoded = decompress(codec, &raw, held(&raw), limits.max_decoded, budget)?;
        drop(raw);
        budget.hold(decoded.capacity())?;
        Cow::Owned(decoded)
    } else {
        if raw.len() > limits.max_decoded {
            return Err(too_large());
        }
        raw
    };
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(BodyError::Empty)?;
    let text = &body[start..];
    if firehose_request_id.is_some() || looks_like_firehose(text) {
        return envelopes::firehose(text, held(&body), limits, budget);
    }
    let record = if text[0] == b'[' {
        let record = envelopes::json_array(text, held(&body), budget)?;
        drop(body);
        budget.hold(record.bytes.capacity())?;
        record
    } else {
        let cloudwatch = text[0] == b'{' && looks_like_cloudwatch(text);
        let bytes = trimmed(body, start, budget)?;
        if cloudwatch {
            BodyRecord {
                format: ChunkFormat::CloudWatchPayload,
                bytes,
                lines: 1,
            }
        } else {
            lines_record(bytes)
        }
    };
    // Lines that are base64 gzip payloads, or a gzip inside the gzip, are
    // decompressed by the decoder: they count at their decompressed size.
    let mut decoded = envelopes::DecodedSize::new(limits);
    let held = record.bytes.capacity();
    match record.format {
        ChunkFormat::Lines => decoded.add_lines(&record.bytes, held, budget)?,
        _ => decoded.add_payload(&record.bytes, || "body".into(), held, budget)?,
    }
    drop(decoded);
    budget.hold(held)?;
    Ok(ParsedBody {
        records: vec![record],
        firehose_request_id: None,
    })
}

/// `body` without its first `start` bytes, reusing an owned buffer (with
/// room for a final newline).
fn trimmed(
    body: Cow<'_, [u8]>,
    start: usize,
    budget: &mut dyn Budget,
) -> Result<Vec<u8>, BodyError> {
    match body {
        Cow::Owned(mut bytes) => {
            bytes.drain(..start);
            if bytes.len() == bytes.capacity() {
                // Growing copies: both buffers exist for a moment.
                budget.hold(2 * bytes.len() + 1)?;
                bytes.reserve_exact(1);
                budget.hold(bytes.capacity())?;
            }
            Ok(bytes)
        }
        Cow::Borrowed(bytes) => {
            let bytes = &bytes[start..];
            budget.hold(bytes.len() + 1)?;
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.extend_from_slice(bytes);
            Ok(out)
        }
    }
}

/// Decompresses `raw` into a buffer that grows by doubling up to
/// `max_decoded`, charging `base` (what the caller holds) plus the buffer,
/// and while it grows the old and the new buffer, to `budget`. The buffer
/// keeps one spare byte for a final newline.
fn decompress(
    codec: Codec,
    raw: &[u8],
    base: usize,
    max_decoded: usize,
    budget: &mut dyn Budget,
) -> Result<Vec<u8>, BodyError> {
    const FIRST: usize = 64 << 10;
    let ceiling = max_decoded.saturating_add(2);
    let mut decoder: Box<dyn Read + '_> = match codec {
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Codec::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| BodyError::Zstd(e.to_string()))?,
        ),
    };
    let broken = |e: std::io::Error| match codec {
        Codec::Gzip => BodyError::Gzip(e.to_string()),
        Codec::Zstd => BodyError::Zstd(e.to_string()),
    };
    let first = raw.len().saturating_mul(4).clamp(FIRST, ceiling);
    budget.hold(base + first)?;
    let mut out = vec![0u8; first];
    let mut len = 0;
    loop {
        if len == out.len() {
            if len > max_decoded {
                break;
            }
            let grown = (out.len() * 2).min(ceiling);
            budget.hold(base + out.len() + grown)?;
            out.reserve_exact(grown - out.len());
            out.resize(grown, 0);
            budget.hold(base + out.capacity())?;
        }
        match decoder.read(&mut out[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(broken(e)),
        }
        if len > max_decoded {
            break;
        }
    }
    if len > max_decoded {
        return Err(BodyError::TooLarge {
            limit_mib: max_decoded >> 20,
        });
    }
    out.truncate(len);
    Ok(out)
}

/// A line record, newline-terminated.
fn lines_record(mut bytes: Vec<u8>) -> BodyRecord {
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    let lines = memchr::memchr_iter(b'\n', &bytes).count();
    BodyRecord {
        format: ChunkFormat::Lines,
        bytes,
        lines,
    }
}

fn head(text: &[u8]) -> &[u8] {
    &text[..text.len().min(4096)]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// One object with `messageType` and `logEvents` (a subscription payload,
/// possibly pretty-printed), not NDJSON of application events.
fn looks_like_cloudwatch(text: &[u8]) -> bool {
    let head = head(text);
    contains(head, b"\"messageType\"") && contains(text, b"\"logEvents\"")
}

fn looks_like_firehose(text: &[u8]) -> bool {
    let head = &text[..text.len().min(256)];
    text.first() == Some(&b'{')
        && contains(head, b"\"requestId\"")
        && contains(text, b"\"records\"")
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
