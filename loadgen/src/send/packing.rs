//! How `loadgen send` cuts a batch into SQS messages or Kinesis records.
//!
//! A batch body (NDJSON lines, or for W3 one CloudWatch subscription payload a line) is cut
//! into messages by [`pack_messages`]: `events_per_message` lines a message, as NDJSON or
//! wrapped in a CloudWatch Logs subscription payload (gzip + base64 JSON with `logEvents`, as
//! a subscription filter delivers it). A W3 line already is such a payload and always goes
//! alone. [`request_groups`] cuts messages into requests within a service's limits, and
//! [`kpl_records`] packs them into KPL aggregated records. All pure.

use std::io::Write;
use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use spate_operators::sources::kinesis::kpl;

/// Room left in a KPL aggregate for the magic, digest and protobuf framing.
const KPL_OVERHEAD: usize = 1024;

/// What the body of one message (SQS) or record (Kinesis) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    /// The event lines themselves, newline-separated.
    Ndjson,
    /// A CloudWatch Logs subscription payload (base64 of gzip JSON) with the lines as
    /// `logEvents`.
    CloudWatch,
}

impl std::str::FromStr for MessageFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ndjson" => Ok(MessageFormat::Ndjson),
            "cloudwatch" | "cwl" => Ok(MessageFormat::CloudWatch),
            _ => Err(format!(
                "unknown message format {s:?}: expected ndjson or cloudwatch"
            )),
        }
    }
}

/// How a message body is compressed by its producer (Spate's SQS and Kinesis
/// sources unpack both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyCompression {
    /// As it is.
    #[default]
    None,
    /// gzip, default level.
    Gzip,
    /// zstd, level 3.
    Zstd,
}

impl std::str::FromStr for BodyCompression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(BodyCompression::None),
            "gzip" => Ok(BodyCompression::Gzip),
            "zstd" => Ok(BodyCompression::Zstd),
            _ => Err(format!(
                "unknown compression {s:?}: expected none, gzip or zstd"
            )),
        }
    }
}

/// How batches become messages.
#[derive(Debug, Clone, Copy)]
pub struct Packing {
    /// Event lines per message (at least 1).
    pub events_per_message: usize,
    /// The message body.
    pub format: MessageFormat,
    /// Compression of NDJSON bodies (a CloudWatch payload is gzip already).
    pub compression: BodyCompression,
    /// True when bodies must be text (SQS): compressed ones are then base64.
    pub text: bool,
}

impl Packing {
    /// NDJSON bodies of `events_per_message` lines, uncompressed.
    pub fn ndjson(events_per_message: usize) -> Self {
        Packing {
            events_per_message,
            format: MessageFormat::Ndjson,
            compression: BodyCompression::None,
            text: true,
        }
    }
}

/// The first bytes of a base64-encoded gzip stream: a line that already is a CloudWatch
/// subscription payload (W3).
const BASE64_GZIP: &[u8] = b"H4sI";

/// Cuts `body` (newline-terminated lines) into message bodies as `packing` says; a line
/// that already is a subscription payload (W3) is a message of its own. `now_ms` is the
/// `timestamp` of wrapped log events.
///
/// ```
/// use spate_loadgen::send::{Packing, pack_messages};
/// let packing = Packing::ndjson(2);
/// let messages = pack_messages(b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n", packing, 0).unwrap();
/// assert_eq!(messages, vec![b"{\"a\":1}\n{\"a\":2}".to_vec(), b"{\"a\":3}".to_vec()]);
/// ```
pub fn pack_messages(body: &[u8], packing: Packing, now_ms: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let per_message = packing.events_per_message.max(1);
    let mut messages = Vec::new();
    let mut group: Vec<&[u8]> = Vec::with_capacity(per_message);
    let flush = |group: &mut Vec<&[u8]>, messages: &mut Vec<Vec<u8>>| {
        if group.is_empty() {
            return Ok(());
        }
        let message = match packing.format {
            MessageFormat::Ndjson => compress(group.join(&b'\n'), packing)?,
            MessageFormat::CloudWatch => subscription_payload(group, now_ms)?,
        };
        messages.push(message);
        group.clear();
        std::io::Result::Ok(())
    };
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if line.starts_with(BASE64_GZIP) {
            flush(&mut group, &mut messages)?;
            messages.push(line.to_vec());
            continue;
        }
        group.push(line);
        if group.len() == per_message {
            flush(&mut group, &mut messages)?;
        }
    }
    flush(&mut group, &mut messages)?;
    Ok(messages)
}

/// `body` compressed as `packing` says, base64 encoded when it must be text.
fn compress(body: Vec<u8>, packing: Packing) -> std::io::Result<Vec<u8>> {
    let packed = match packing.compression {
        BodyCompression::None => return Ok(body),
        BodyCompression::Gzip => {
            let mut gzip =
                GzEncoder::new(Vec::with_capacity(body.len() / 2), Compression::default());
            gzip.write_all(&body)?;
            gzip.finish()?
        }
        BodyCompression::Zstd => zstd::bulk::compress(&body, 3)?,
    };
    Ok(if packing.text {
        STANDARD.encode(packed).into_bytes()
    } else {
        packed
    })
}

/// A CloudWatch Logs subscription `DATA_MESSAGE` carrying `lines` as log events, gzip
/// compressed and base64 encoded.
fn subscription_payload(lines: &[&[u8]], now_ms: u64) -> std::io::Result<Vec<u8>> {
    // Log event ids are unique, as CloudWatch's are (Spate dedups by them):
    // two messages built in the same millisecond must not share one.
    static NEXT_EVENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| {
            let n = NEXT_EVENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            serde_json::json!({
                "id": format!("{now_ms}{n:012}"),
                "timestamp": now_ms,
                "message": String::from_utf8_lossy(line),
            })
        })
        .collect();
    let payload = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/loadgen/send",
        "logStream": "loadgen",
        "subscriptionFilters": ["loadgen"],
        "logEvents": events,
    });
    let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
    serde_json::to_writer(&mut gzip, &payload)?;
    gzip.flush()?;
    Ok(STANDARD.encode(gzip.finish()?).into_bytes())
}

/// Splits items of the given sizes into consecutive requests of at most `max_items` items
/// and `max_bytes` bytes; an item over `max_bytes` is an error naming its index.
pub fn request_groups(
    sizes: &[usize],
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<Range<usize>>, usize> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        if size > max_bytes {
            return Err(i);
        }
        if i > start && (i - start == max_items || bytes + size > max_bytes) {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        groups.push(start..sizes.len());
    }
    Ok(groups)
}

/// Packs messages into KPL aggregated records of at most `max_bytes` each (a message too
/// big to share a record goes alone, unaggregated).
pub fn kpl_records(messages: Vec<Vec<u8>>, partition_key: &str, max_bytes: usize) -> Vec<Vec<u8>> {
    let budget = max_bytes.saturating_sub(KPL_OVERHEAD);
    let sizes: Vec<usize> = messages.iter().map(|m| m.len() + 8).collect();
    let Ok(groups) = request_groups(&sizes, usize::MAX, budget) else {
        return messages;
    };
    groups
        .into_iter()
        .map(|group| {
            let parts: Vec<&[u8]> = messages[group].iter().map(Vec::as_slice).collect();
            kpl::aggregate(partition_key, &parts)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn ndjson(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"i\":{i}}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn ndjson_messages_hold_n_lines_and_w3_lines_go_alone() {
        let packing = Packing::ndjson(3);
        let messages = pack_messages(&ndjson(7), packing, 0).unwrap();
        let lines: Vec<usize> = messages
            .iter()
            .map(|m| m.split(|&b| b == b'\n').count())
            .collect();
        assert_eq!(lines, [3, 3, 1]);
        assert_eq!(messages[2], b"{\"i\":6}");
        let mixed = b"{\"i\":0}\nH4sIAAAA\n{\"i\":1}\n{\"i\":2}\n";
        let messages = pack_messages(mixed, packing, 0).unwrap();
        assert_eq!(
            messages,
            [
                b"{\"i\":0}".to_vec(),
                b"H4sIAAAA".to_vec(),
                b"{\"i\":1}\n{\"i\":2}".to_vec()
            ]
        );
    }

    #[test]
    fn compressed_messages_unpack_to_the_same_lines() {
        let plain = pack_messages(&ndjson(7), Packing::ndjson(3), 0).unwrap();
        for (compression, text) in [
            (BodyCompression::Gzip, true),
            (BodyCompression::Zstd, true),
            (BodyCompression::Zstd, false),
        ] {
            let packing = Packing {
                compression,
                text,
                ..Packing::ndjson(3)
            };
            let messages = pack_messages(&ndjson(7), packing, 0).unwrap();
            let unpacked: Vec<Vec<u8>> = messages
                .iter()
                .map(|m| {
                    let raw = if text {
                        STANDARD.decode(m).unwrap()
                    } else {
                        m.clone()
                    };
                    let mut out = Vec::new();
                    match compression {
                        BodyCompression::Gzip => {
                            flate2::read::GzDecoder::new(&raw[..])
                                .read_to_end(&mut out)
                                .unwrap();
                        }
                        _ => out = zstd::decode_all(&raw[..]).unwrap(),
                    }
                    out
                })
                .collect();
            assert_eq!(unpacked, plain, "{compression:?}");
            assert!(spate_operators::decode::is_compressed(&messages[0]));
        }
        assert_eq!("ZSTD".parse(), Ok(BodyCompression::Zstd));
        assert!("lz4".parse::<BodyCompression>().is_err());
    }

    #[test]
    fn cloudwatch_messages_are_subscription_payloads_of_the_lines() {
        let packing = Packing {
            format: MessageFormat::CloudWatch,
            ..Packing::ndjson(4)
        };
        let messages = pack_messages(&ndjson(6), packing, 1_700_000_000_000).unwrap();
        assert_eq!(messages.len(), 2);
        let gzip = STANDARD.decode(&messages[0]).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_string(&mut json)
            .unwrap();
        let payload: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(payload["messageType"], "DATA_MESSAGE");
        let events = payload["logEvents"].as_array().unwrap();
        assert_eq!(events.len(), 4);
        assert_eq!(events[3]["message"], "{\"i\":3}");
        assert_eq!(events[3]["timestamp"], 1_700_000_000_000u64);
        // What Spate's SQS source makes of it: a CloudWatch payload.
        let body = spate_operators::sources::sqs::body::classify_body(messages[1].clone());
        assert_ne!(body.format, spate_operators::sources::ChunkFormat::Lines);
    }

    #[test]
    fn requests_respect_item_and_byte_limits() {
        assert_eq!(
            request_groups(&[1; 25], 10, 100),
            Ok(vec![0..10, 10..20, 20..25])
        );
        assert_eq!(
            request_groups(&[60, 60, 30, 10], 10, 100),
            Ok(vec![0..1, 1..4])
        );
        assert_eq!(
            request_groups(&[60, 60, 30, 11], 10, 100),
            Ok(vec![0..1, 1..3, 3..4])
        );
        assert_eq!(request_groups(&[], 10, 100), Ok(vec![]));
        assert_eq!(request_groups(&[5, 101], 10, 100), Err(1));
    }

    #[test]
    fn kpl_records_unpack_to_the_messages_in_order() {
        let messages: Vec<Vec<u8>> = (0..50).map(|i| vec![b'a' + (i % 26) as u8; 100]).collect();
        let records = kpl_records(messages.clone(), "lg", 2048);
        assert!(records.len() > 1 && records.len() < messages.len());
        let unpacked: Vec<Vec<u8>> = records
            .iter()
            .flat_map(|r| kpl::deaggregate(r).expect("an aggregate"))
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(unpacked, messages);
        assert!(records.iter().all(|r| r.len() <= 2048));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("NDJSON".parse(), Ok(MessageFormat::Ndjson));
        assert_eq!("cloudwatch".parse(), Ok(MessageFormat::CloudWatch));
        assert!("xml".parse::<MessageFormat>().is_err());
    }
}
