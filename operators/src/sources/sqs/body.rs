//! What an SQS message body holds, decided from its first bytes.
//!
//! - An SNS envelope (`{"Type":"Notification","Message":"...",...}`, what an SNS
//!   subscription without raw delivery puts on the queue) is unwrapped first,
//!   and its `Message` classified in turn.
//! - A compressed message: gzip (`1f 8b`) or zstd (`28 b5 2f fd`), or base64
//!   of either (`H4sI`, `KLUv/`), as a CloudWatch Logs subscription delivers
//!   its payloads or as a producer packs lines to cut its SQS or Kinesis bill
//!   (a third of the bytes for W1 events, `docs/cost.md`). The decoder
//!   unpacks it and reads a CloudWatch Logs payload or lines out of it.
//! - A CloudWatch Logs subscription payload in its JSON form (an object with
//!   `logEvents`).
//! - Anything else is lines: one JSON event, NDJSON, or text.

use crate::sources::ChunkFormat;

/// A message body ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedBody {
    /// The bytes to decode (the SNS `Message` when the body was an envelope).
    pub bytes: Vec<u8>,
    /// How the bytes are framed.
    pub format: ChunkFormat,
    /// True when an SNS envelope was removed.
    pub unwrapped_sns: bool,
}

/// Classifies a message body, unwrapping an SNS envelope.
///
/// ```
/// use spate_operators::sources::ChunkFormat;
/// use spate_operators::sources::sqs::body::classify_body;
/// let body = classify_body(b"{\"level\":\"error\",\"msg\":\"x\"}".to_vec());
/// assert_eq!(body.format, ChunkFormat::Lines);
/// ```
pub fn classify_body(body: Vec<u8>) -> ClassifiedBody {
    let (bytes, unwrapped_sns) = match unwrap_sns(&body) {
        Some(message) => (message.into_bytes(), true),
        None => (body, false),
    };
    ClassifiedBody {
        format: detect_format(&bytes),
        bytes,
        unwrapped_sns,
    }
}

/// The `Message` of an SNS notification envelope, if `body` is one.
fn unwrap_sns(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "Type")]
        kind: String,
        #[serde(rename = "Message")]
        message: String,
        #[serde(rename = "TopicArn")]
        _topic_arn: String,
    }
    let trimmed = body.trim_ascii();
    // Cheap checks first: most bodies are events, not envelopes.
    if !trimmed.starts_with(b"{")
        || memchr::memmem::find(trimmed, b"\"TopicArn\"").is_none()
        || memchr::memmem::find(trimmed, b"\"Notification\"").is_none()
    {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(trimmed).ok()?;
    (envelope.kind == "Notification").then_some(envelope.message)
}

fn detect_format(bytes: &[u8]) -> ChunkFormat {
    if crate::decode::is_compressed(bytes) {
        return ChunkFormat::Compressed;
    }
    if crate::decode::looks_like_cloudwatch(bytes) {
        return ChunkFormat::CloudWatchPayload;
    }
    ChunkFormat::Lines
}

/// Lines in a body of lines (for metrics): newlines, plus one for a last line
/// without one.
pub fn count_lines(bytes: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', bytes).count();
    let unterminated = usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
    (newlines + unterminated).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    const CW_JSON: &str = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":"hi"}]}"#;

    #[test]
    fn ndjson_and_single_events_are_lines() {
        for body in [
            &b"{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n"[..],
            b"{\"msg\":\"a\"}",
            b"plain text line",
            b"",
        ] {
            let c = classify_body(body.to_vec());
            assert_eq!(c.format, ChunkFormat::Lines, "{body:?}");
            assert_eq!(c.bytes, body);
            assert!(!c.unwrapped_sns);
        }
    }

    #[test]
    fn cloudwatch_payloads_in_every_encoding() {
        let gz = gzip(CW_JSON.as_bytes());
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&gz);
        for body in [gz.clone(), b64.into_bytes()] {
            let c = classify_body(body.clone());
            assert_eq!(c.format, ChunkFormat::Compressed);
            assert_eq!(c.bytes, body);
        }
        let c = classify_body(CW_JSON.as_bytes().to_vec());
        assert_eq!(c.format, ChunkFormat::CloudWatchPayload);
    }

    #[test]
    fn compressed_lines_are_left_to_the_decoder() {
        let lines = b"{\"msg\":\"a\"}\n{\"msg\":\"b\"}\n";
        let zst = zstd::bulk::compress(lines, 3).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&zst);
        for body in [gzip(lines), zst, b64.into_bytes()] {
            let c = classify_body(body.clone());
            assert_eq!(c.format, ChunkFormat::Compressed);
            assert_eq!(c.bytes, body);
        }
    }

    #[test]
    fn ndjson_mentioning_log_events_stays_lines() {
        let body = format!("{CW_JSON}\n{CW_JSON}\n");
        assert_eq!(classify_body(body.into_bytes()).format, ChunkFormat::Lines);
    }

    #[test]
    fn sns_envelope_is_unwrapped_then_classified() {
        let inner = "{\"level\":\"warn\",\"msg\":\"disk\"}";
        let env = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
            "Message": inner,
            "Timestamp": "2026-01-01T00:00:00.000Z",
        });
        let c = classify_body(env.to_string().into_bytes());
        assert!(c.unwrapped_sns);
        assert_eq!(c.bytes, inner.as_bytes());
        assert_eq!(c.format, ChunkFormat::Lines);

        let env = serde_json::json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
            "Message": CW_JSON,
        });
        let c = classify_body(env.to_string().into_bytes());
        assert!(c.unwrapped_sns);
        assert_eq!(c.format, ChunkFormat::CloudWatchPayload);
    }

    #[test]
    fn other_sns_types_and_broken_envelopes_are_kept_whole() {
        let confirm = serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": "confirm",
            "Note": "Notification",
        })
        .to_string();
        let c = classify_body(confirm.clone().into_bytes());
        assert!(!c.unwrapped_sns);
        assert_eq!(c.bytes, confirm.as_bytes());
        let broken = b"{\"Type\":\"Notification\",\"TopicArn\":\"t\",\"Message\":".to_vec();
        assert_eq!(classify_body(broken.clone()).bytes, broken);
    }

    #[test]
    fn line_counts() {
        assert_eq!(count_lines(b""), 1);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
    }
}
