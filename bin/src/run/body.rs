//! What a `POST /v1/logs` body holds, turned into journal records.
//!
//! | body | recognised by | becomes |
//! |---|---|---|
//! | gzip of any of the below | `Content-Encoding: gzip`, or the gzip magic bytes | decompressed first (limit: `max_decoded_size`) |
//! | NDJSON or plain log lines | anything else | one line record |
//! | JSON array | first non-blank byte `[` | one line per element (a string element is a raw line) |
//! | CloudWatch Logs subscription payload | one object with `messageType` and `logEvents` | one CloudWatch record |
//! | Firehose HTTP endpoint request | `X-Amz-Firehose-Request-Id`, or `requestId` + `records` | one record per `records[].data` (base64), CloudWatch or lines by content |
//!
//! Lines that cannot be decoded are not a reason to refuse a body: they become
//! dead letters downstream, with their reason. A body is refused (400) only when
//! it cannot be read at all: broken gzip, a JSON array or Firehose request that
//! does not parse, base64 that does not decode, or nothing in it.

use std::io::Read;

use serde::Deserialize;
use spate_operators::sources::ChunkFormat;

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
    /// The gzip stream is broken.
    #[error("unreadable gzip body: {0}")]
    Gzip(String),
    /// A JSON array that does not parse.
    #[error("unreadable JSON array: {0}")]
    JsonArray(String),
    /// A Firehose request that does not parse.
    #[error("unreadable firehose request: {0}")]
    Firehose(String),
    /// An unsupported `Content-Encoding`.
    #[error("unsupported content-encoding {0:?} (use gzip or identity)")]
    Encoding(String),
}

#[derive(Deserialize)]
struct FirehoseRequest {
    #[serde(rename = "requestId")]
    request_id: String,
    records: Vec<FirehoseRecord>,
}

#[derive(Deserialize)]
struct FirehoseRecord {
    data: String,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a body. `content_encoding` and `firehose_request_id` come from the
/// request headers; `max_decoded` bounds the decompressed size.
pub fn parse(
    raw: &[u8],
    content_encoding: Option<&str>,
    firehose_request_id: Option<&str>,
    max_decoded: usize,
) -> Result<ParsedBody, BodyError> {
    let gzip = match content_encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => raw.starts_with(&GZIP_MAGIC),
        Some(e) if e.is_empty() || e == "identity" => raw.starts_with(&GZIP_MAGIC),
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(other) => return Err(BodyError::Encoding(other)),
    };
    let decoded;
    let body: &[u8] = if gzip {
        decoded = gunzip(raw, max_decoded)?;
        &decoded
    } else {
        if raw.len() > max_decoded {
            return Err(BodyError::TooLarge {
                limit_mib: max_decoded >> 20,
            });
        }
        raw
    };
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(BodyError::Empty)?;
    let text = &body[start..];
    if firehose_request_id.is_some() || looks_like_firehose(text) {
        return parse_firehose(text, max_decoded);
    }
    let records = match text[0] {
        b'[' => vec![json_array(text)?],
        b'{' if looks_like_cloudwatch(text) => vec![BodyRecord {
            format: ChunkFormat::CloudWatchPayload,
            bytes: text.to_vec(),
            lines: 1,
        }],
        _ => vec![lines_record(text.to_vec())],
    };
    Ok(ParsedBody {
        records,
        firehose_request_id: None,
    })
}

fn gunzip(raw: &[u8], max_decoded: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(6).min(max_decoded));
    let mut reader = flate2::read::MultiGzDecoder::new(raw).take(max_decoded as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Gzip(e.to_string()))?;
    if out.len() > max_decoded {
        return Err(BodyError::TooLarge {
            limit_mib: max_decoded >> 20,
        });
    }
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

fn json_array(text: &[u8]) -> Result<BodyRecord, BodyError> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(text).map_err(|e| BodyError::JsonArray(e.to_string()))?;
    let mut bytes = Vec::with_capacity(text.len() + values.len());
    for value in &values {
        match value {
            // A string element is a raw log line (newlines inside would split
            // it, so they become spaces).
            serde_json::Value::String(line) => {
                bytes.extend(line.bytes().map(|b| if b == b'\n' { b' ' } else { b }))
            }
            other => serde_json::to_writer(&mut bytes, other)
                .map_err(|e| BodyError::JsonArray(e.to_string()))?,
        }
        bytes.push(b'\n');
    }
    if values.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(BodyRecord {
        format: ChunkFormat::Lines,
        lines: values.len(),
        bytes,
    })
}

fn parse_firehose(text: &[u8], max_decoded: usize) -> Result<ParsedBody, BodyError> {
    use base64::Engine as _;
    let request: FirehoseRequest =
        serde_json::from_slice(text).map_err(|e| BodyError::Firehose(e.to_string()))?;
    let mut records = Vec::with_capacity(request.records.len());
    let mut total = 0usize;
    for (i, record) in request.records.iter().enumerate() {
        let data = base64::engine::general_purpose::STANDARD
            .decode(record.data.trim())
            .map_err(|e| BodyError::Firehose(format!("records[{i}].data: {e}")))?;
        total += data.len();
        if total > max_decoded {
            return Err(BodyError::TooLarge {
                limit_mib: max_decoded >> 20,
            });
        }
        if data.starts_with(&GZIP_MAGIC) || looks_like_cloudwatch(&data) {
            records.push(BodyRecord {
                format: ChunkFormat::CloudWatchPayload,
                bytes: data,
                lines: 1,
            });
        } else if data.iter().any(|b| !b.is_ascii_whitespace()) {
            records.push(lines_record(data));
        }
    }
    if records.is_empty() {
        return Err(BodyError::Empty);
    }
    Ok(ParsedBody {
        records,
        firehose_request_id: Some(request.request_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: usize = 1 << 20;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn ndjson_becomes_one_line_record_ending_in_a_newline() {
        let body = parse(b"{\"a\":1}\n{\"a\":2}", None, None, MIB).unwrap();
        assert_eq!(body.records.len(), 1);
        assert_eq!(body.records[0].format, ChunkFormat::Lines);
        assert_eq!(body.records[0].bytes, b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(body.lines(), 2);
        assert!(body.firehose_request_id.is_none());
    }

    #[test]
    fn gzip_is_found_by_header_or_by_magic() {
        let packed = gzip(b"plain line one\nline two\n");
        for encoding in [Some("gzip"), None, Some("identity")] {
            let body = parse(&packed, encoding, None, MIB).unwrap();
            assert_eq!(body.records[0].bytes, b"plain line one\nline two\n");
        }
        assert!(matches!(
            parse(b"not gzip at all", Some("gzip"), None, MIB),
            Err(BodyError::Gzip(_))
        ));
        assert!(matches!(
            parse(b"x", Some("br"), None, MIB),
            Err(BodyError::Encoding(_))
        ));
    }

    #[test]
    fn decompressed_size_is_bounded() {
        let packed = gzip(&vec![b'a'; 3 * MIB]);
        assert_eq!(
            parse(&packed, None, None, 2 * MIB).unwrap_err(),
            BodyError::TooLarge { limit_mib: 2 }
        );
    }

    #[test]
    fn json_array_elements_become_lines() {
        let body = parse(
            b" [ {\"level\":\"error\",\n \"msg\":\"x\"}, \"raw text line\" ]",
            None,
            None,
            MIB,
        )
        .unwrap();
        assert_eq!(
            body.records[0].bytes,
            b"{\"level\":\"error\",\"msg\":\"x\"}\nraw text line\n"
        );
        assert_eq!(body.lines(), 2);
        assert!(matches!(
            parse(b"[{\"a\":", None, None, MIB),
            Err(BodyError::JsonArray(_))
        ));
        assert_eq!(parse(b"[]", None, None, MIB).unwrap_err(), BodyError::Empty);
    }

    #[test]
    fn cloudwatch_payload_is_one_record_plain_or_gzipped() {
        let payload = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":"m"}]}"#;
        for raw in [payload.to_vec(), gzip(payload)] {
            let body = parse(&raw, None, None, MIB).unwrap();
            assert_eq!(body.records.len(), 1);
            assert_eq!(body.records[0].format, ChunkFormat::CloudWatchPayload);
            assert_eq!(body.records[0].bytes, payload);
        }
    }

    #[test]
    fn firehose_records_are_decoded_one_by_one() {
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let cw = gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#);
        let body = format!(
            r#"{{"requestId":"req-1","timestamp":1,"records":[{{"data":"{}"}},{{"data":"{}"}}]}}"#,
            b64(&cw),
            b64(b"line a\nline b")
        );
        let parsed = parse(body.as_bytes(), None, None, MIB).unwrap();
        assert_eq!(parsed.firehose_request_id.as_deref(), Some("req-1"));
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[0].format, ChunkFormat::CloudWatchPayload);
        assert_eq!(parsed.records[0].bytes, cw);
        assert_eq!(parsed.records[1].bytes, b"line a\nline b\n");
        let bad = r#"{"requestId":"r","records":[{"data":"***"}]}"#;
        assert!(matches!(
            parse(bad.as_bytes(), None, None, MIB),
            Err(BodyError::Firehose(_))
        ));
        // The header alone marks a Firehose request.
        assert!(matches!(
            parse(b"{\"x\":1}", None, Some("r"), MIB),
            Err(BodyError::Firehose(_))
        ));
    }

    #[test]
    fn blank_bodies_are_refused() {
        assert_eq!(parse(b"", None, None, MIB).unwrap_err(), BodyError::Empty);
        assert_eq!(
            parse(b" \n\t ", None, None, MIB).unwrap_err(),
            BodyError::Empty
        );
    }
}
