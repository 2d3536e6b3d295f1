//! Compressed payloads: gzip or zstd, raw or base64, unpacked within a size
//! limit.
//!
//! Two kinds of input arrive compressed:
//! - CloudWatch Logs subscription payloads (gzip; base64 of gzip through SQS,
//!   Firehose dumps and some forwarders), unpacked by
//!   [`LineDecoder::decode_cloudwatch`];
//! - whole queue messages or stream records that a producer compressed to
//!   cut its SQS or Kinesis bill (`spate cost --compression`), unpacked by
//!   [`LineDecoder::decode_compressed`]: their content is then either a
//!   CloudWatch Logs payload or lines.
//!
//! SQS message bodies must be text, so compressed bodies come base64 encoded
//! there; Kinesis records may carry the compressed bytes as they are.
//!
//! | first bytes | read as |
//! | --- | --- |
//! | `1f 8b` | gzip (every member of a multi-member stream) |
//! | `28 b5 2f fd` | zstd (every frame) |
//! | `H4sI` | base64 of gzip |
//! | `KLUv/` | base64 of zstd |
//!
//! A payload that does not unpack is one dead letter whose reason says why
//! (`bad base64`, `bad gzip: ...`, `bad zstd: ...`, `gzip payload exceeds N
//! bytes decompressed`); nothing is decompressed past the decoder's
//! `max_payload` (64 MiB by default), so a compression bomb costs at most that.

use std::io::Read;

use base64::Engine as _;
use flate2::read::MultiGzDecoder;

use super::{BOM, DeadLetter, DecodeContext, DecodeStats, LineDecoder, dead_letter};
use crate::event::EventBatch;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BASE64_GZIP: &[u8] = b"H4sI";
const BASE64_ZSTD: &[u8] = b"KLUv/";

/// True when `bytes` start like a compressed payload (see the module docs):
/// what the SQS and Kinesis sources use to hand a message to
/// [`LineDecoder::decode_compressed`].
///
/// ```
/// use spate_operators::decode::is_compressed;
/// assert!(is_compressed(b"H4sIAAAAAAAA/6tWyk"));
/// assert!(is_compressed(&[0x28, 0xb5, 0x2f, 0xfd, 0]));
/// assert!(!is_compressed(b"{\"level\":\"error\"}"));
/// ```
pub fn is_compressed(bytes: &[u8]) -> bool {
    let head = bytes.strip_prefix(BOM).unwrap_or(bytes).trim_ascii_start();
    [GZIP_MAGIC, ZSTD_MAGIC, BASE64_GZIP, BASE64_ZSTD]
        .iter()
        .any(|magic| head.starts_with(magic))
}

/// Where [`Unpacker::unpack`] left the payload's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unpacked {
    /// The payload itself: it was plain JSON (a CloudWatch payload as is).
    Plain,
    /// [`Unpacker::base64`]: base64 of plain JSON.
    Base64,
    /// [`Unpacker::inflated`]: decompressed.
    Inflated,
}

/// Reusable buffers for unpacking, and a zstd context.
#[derive(Default)]
pub(super) struct Unpacker {
    pub(super) base64: Vec<u8>,
    pub(super) inflated: Vec<u8>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Unpacker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unpacker")
            .field("base64", &self.base64.len())
            .field("inflated", &self.inflated.len())
            .finish_non_exhaustive()
    }
}

/// Buffer capacity an [`Unpacker`] keeps between payloads; a larger one (a
/// rare big payload, or a frame that states a size it does not have) is
/// freed after use.
const KEEP_BYTES: usize = 4 << 20;

impl Unpacker {
    /// Frees buffers grown past [`KEEP_BYTES`].
    pub(super) fn shrink(&mut self) {
        for buffer in [&mut self.base64, &mut self.inflated] {
            if buffer.capacity() > KEEP_BYTES {
                *buffer = Vec::new();
            }
        }
    }

    /// Unpacks `payload` (trimmed, BOM removed): plain JSON stays where it
    /// is; base64 is decoded; gzip and zstd are decompressed up to `max`
    /// bytes. `Err` holds the dead letter's reason.
    pub(super) fn unpack(&mut self, payload: &[u8], max: usize) -> Result<Unpacked, String> {
        if payload.starts_with(b"{") {
            return Ok(Unpacked::Plain);
        }
        let compressed: &[u8] =
            if payload.starts_with(GZIP_MAGIC) || payload.starts_with(ZSTD_MAGIC) {
                payload
            } else {
                self.base64.clear();
                let clean: Vec<u8>;
                let text = if payload.iter().any(u8::is_ascii_whitespace) {
                    clean = payload
                        .iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect();
                    &clean[..]
                } else {
                    payload
                };
                if base64::engine::general_purpose::STANDARD
                    .decode_vec(text, &mut self.base64)
                    .is_err()
                {
                    return Err("bad base64".into());
                }
                if self.base64.starts_with(b"{") {
                    return Ok(Unpacked::Base64);
                }
                &self.base64
            };
        self.inflated.clear();
        let limit = max as u64 + 1;
        let (codec, read) = if compressed.starts_with(ZSTD_MAGIC) {
            // One frame that states its size (what `zstd::bulk` and the CLI
            // write) decompresses in one call with a reused context; anything
            // else streams.
            if let Some(size) = zstd_frame_size(compressed).filter(|&n| n <= max) {
                self.inflated.reserve(size);
                let context = match &mut self.zstd {
                    Some(context) => context,
                    empty => empty.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| format!("bad zstd: {}", e.to_string().to_lowercase()))?,
                    ),
                };
                if context
                    .decompress_to_buffer(compressed, &mut self.inflated)
                    .is_ok_and(|n| n == size)
                {
                    return Ok(Unpacked::Inflated);
                }
                self.inflated.clear();
            }
            let read = zstd::stream::read::Decoder::with_buffer(compressed)
                .and_then(|d| d.take(limit).read_to_end(&mut self.inflated));
            ("zstd", read)
        } else if compressed.starts_with(GZIP_MAGIC) {
            // The trailer's size (of the last member, modulo 4 GiB) is a hint.
            if let Some(size) = gzip_size_hint(compressed).filter(|&n| n <= max) {
                self.inflated.reserve(size);
            }
            let read = MultiGzDecoder::new(compressed)
                .take(limit)
                .read_to_end(&mut self.inflated);
            ("gzip", read)
        } else {
            return Err("bad gzip: not gzip data".into());
        };
        if let Err(e) = read {
            return Err(format!("bad {codec}: {}", e.to_string().to_lowercase()));
        }
        if self.inflated.len() > max {
            return Err(format!("{codec} payload exceeds {max} bytes decompressed"));
        }
        Ok(Unpacked::Inflated)
    }
}

/// The content size a zstd frame header states, if it states one.
fn zstd_frame_size(frame: &[u8]) -> Option<usize> {
    let size = zstd::zstd_safe::get_frame_content_size(frame).ok()??;
    usize::try_from(size).ok()
}

/// The uncompressed size in a gzip stream's trailer (ISIZE).
fn gzip_size_hint(stream: &[u8]) -> Option<usize> {
    let tail: [u8; 4] = stream
        .get(stream.len().checked_sub(4)?..)?
        .try_into()
        .ok()?;
    usize::try_from(u32::from_le_bytes(tail)).ok()
}

/// True when `json` is one JSON object that names `logEvents` and
/// `messageType`: a CloudWatch Logs subscription payload rather than lines.
pub(crate) fn looks_like_cloudwatch(json: &[u8]) -> bool {
    let json = json.trim_ascii();
    json.starts_with(b"{")
        && memchr::memmem::find(json, b"\"logEvents\"").is_some()
        && memchr::memmem::find(json, b"\"messageType\"").is_some()
        && serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok()
}

impl LineDecoder {
    /// Decodes one whole message or record that a producer compressed (see
    /// the module docs): a CloudWatch Logs subscription payload goes on as
    /// in [`decode_cloudwatch`](Self::decode_cloudwatch), anything else is
    /// lines, positioned from `position` by their offset in the
    /// decompressed bytes. A payload that does not unpack is one dead letter
    /// at `position`.
    ///
    /// Only for input whose event ids cannot collide with the next chunk's
    /// (a message whose id is in the context's `source`, at position 0):
    /// the decompressed offsets run past the compressed length.
    ///
    /// ```
    /// use std::io::Write;
    /// use spate_operators::classify::Classifier;
    /// use spate_operators::decode::{DecodeContext, DecoderConfig, LineDecoder};
    /// use spate_operators::event::EventBatch;
    ///
    /// let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    /// gz.write_all(b"{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"info\",\"msg\":\"b\"}\n").unwrap();
    /// let (mut out, mut dead) = (EventBatch::default(), Vec::new());
    /// let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    /// let ctx = DecodeContext::new("sqs:app:m1", 0);
    /// let stats = decoder.decode_compressed(&gz.finish().unwrap(), 0, &ctx, &mut out, &mut dead);
    /// assert_eq!((stats.events, out.event_id.get(1)), (2, Some("sqs:app:m1:28")));
    /// ```
    pub fn decode_compressed(
        &mut self,
        payload: &[u8],
        position: u64,
        ctx: &DecodeContext<'_>,
        out: &mut EventBatch,
        dead: &mut Vec<DeadLetter>,
    ) -> DecodeStats {
        let trimmed = payload.strip_prefix(BOM).unwrap_or(payload).trim_ascii();
        let max = self.engine.cfg.max_payload_bytes;
        let unpacked = match self.unpacker.unpack(trimmed, max) {
            Ok(unpacked) => unpacked,
            Err(reason) => {
                let keep = payload.len().min(self.engine.cfg.max_line_bytes);
                dead.push(dead_letter(reason, ctx, position, &payload[..keep]));
                return DecodeStats {
                    dead_letters: 1,
                    ..DecodeStats::default()
                };
            }
        };
        let content: &[u8] = match unpacked {
            Unpacked::Plain => trimmed,
            Unpacked::Base64 => &self.unpacker.base64,
            Unpacked::Inflated => &self.unpacker.inflated,
        };
        if looks_like_cloudwatch(content) {
            let stats = self.read_cloudwatch(unpacked, payload, position, ctx, out, dead);
            self.unpacker.shrink();
            return stats;
        }
        // The lines are decoded from the buffer they were unpacked into, lent
        // out for the call: a line in them that is itself a payload
        // (`H4sI...`) unpacks into the emptied buffers as a CloudWatch
        // payload, never into more lines, so the depth stays bounded.
        let slot = match unpacked {
            Unpacked::Plain => return self.decode_chunk(trimmed, position, ctx, out, dead),
            Unpacked::Base64 => &mut self.unpacker.base64,
            Unpacked::Inflated => &mut self.unpacker.inflated,
        };
        let content = std::mem::take(slot);
        let stats = self.decode_chunk(&content, position, ctx, out, dead);
        let slot = match unpacked {
            Unpacked::Base64 => &mut self.unpacker.base64,
            _ => &mut self.unpacker.inflated,
        };
        if slot.capacity() < content.capacity() {
            *slot = content;
        }
        self.unpacker.shrink();
        stats
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::classify::Classifier;
    use crate::decode::DecoderConfig;
    use crate::event::Severity;

    const LINES: &[u8] = b"{\"level\":\"error\",\"service\":\"pay\",\"msg\":\"card declined\"}\n\
        plain text WARNING disk almost full\n\
        {\"level\":\"info\",\"msg\":\"ok\"}";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 3).unwrap()
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes()
    }

    fn decode(cfg: DecoderConfig, payload: &[u8]) -> (EventBatch, Vec<DeadLetter>, DecodeStats) {
        let mut d = LineDecoder::new(cfg, Classifier::default());
        let (mut out, mut dead) = (EventBatch::default(), Vec::new());
        let ctx = DecodeContext::new("sqs:q:m1", 5);
        let stats = d.decode_compressed(payload, 0, &ctx, &mut out, &mut dead);
        (out, dead, stats)
    }

    #[test]
    fn lines_unpack_from_every_codec_and_encoding() {
        for payload in [
            gzip(LINES),
            zstd(LINES),
            b64(&gzip(LINES)),
            b64(&zstd(LINES)),
        ] {
            assert!(is_compressed(&payload));
            let (out, dead, stats) = decode(DecoderConfig::default(), &payload);
            assert!(dead.is_empty(), "{dead:?}");
            assert_eq!(stats.events, 3);
            assert_eq!(
                out.severity[..],
                [Severity::Error, Severity::Warning, Severity::Info]
            );
            assert_eq!(out.service.get(0), Some("pay"));
            // Ids are offsets in the decompressed lines, as for plain lines.
            assert_eq!(out.event_id.get(0), Some("sqs:q:m1:0"));
            let second = LINES.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(
                out.event_id.get(1),
                Some(format!("sqs:q:m1:{second}").as_str())
            );
        }
    }

    #[test]
    fn a_compressed_message_decodes_like_the_same_lines_uncompressed() {
        let mut d = LineDecoder::new(DecoderConfig::default(), Classifier::default());
        let ctx = DecodeContext::new("sqs:q:m1", 5);
        let (mut plain, mut dead) = (EventBatch::default(), Vec::new());
        d.decode_chunk(LINES, 0, &ctx, &mut plain, &mut dead);
        let (packed, _, _) = decode(DecoderConfig::default(), &b64(&zstd(LINES)));
        assert_eq!(format!("{plain:?}"), format!("{packed:?}"));
    }

    #[test]
    fn a_compressed_cloudwatch_payload_is_read_as_one() {
        let cw = br#"{"messageType":"DATA_MESSAGE","logGroup":"/g","logStream":"s","logEvents":[{"id":"e1","timestamp":1704067200000,"message":"ERROR boom"}]}"#;
        for payload in [gzip(cw), zstd(cw), b64(&zstd(cw))] {
            let (out, dead, stats) = decode(DecoderConfig::default(), &payload);
            assert!(dead.is_empty(), "{dead:?}");
            assert_eq!(stats.events, 1);
            assert_eq!(out.event_id.get(0), Some("e1"));
            assert_eq!(out.log_group.get(0), Some("/g"));
        }
    }

    #[test]
    fn one_json_object_that_is_not_cloudwatch_is_an_event() {
        let (out, dead, _) = decode(DecoderConfig::default(), &gzip(b"{\"level\":\"warn\"}"));
        assert!(dead.is_empty());
        assert_eq!(out.severity[..], [Severity::Warning]);
    }

    #[test]
    fn bad_payloads_are_one_dead_letter_with_the_reason() {
        let mut truncated = zstd(LINES);
        truncated.truncate(truncated.len() - 4);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"KLUv/!!! not base64".to_vec(), "bad base64"),
            (truncated.clone(), "bad zstd: "),
            (b64(&truncated), "bad zstd: "),
            (b"\x1f\x8b\x08\x00not deflate".to_vec(), "bad gzip: "),
        ];
        for (payload, want) in cases {
            let (out, dead, stats) = decode(DecoderConfig::default(), &payload);
            assert_eq!((stats.dead_letters, dead.len()), (1, 1), "{want}");
            assert!(
                dead[0].reason.starts_with(want),
                "{} vs {want}",
                dead[0].reason
            );
            assert_eq!(dead[0].raw, payload);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn bombs_stop_at_the_payload_limit() {
        let cfg = DecoderConfig {
            max_payload_bytes: 1000,
            ..DecoderConfig::default()
        };
        let big = "x".repeat(1_000_000);
        for (payload, codec) in [
            (zstd(big.as_bytes()), "zstd"),
            (gzip(big.as_bytes()), "gzip"),
        ] {
            let (_, dead, _) = decode(cfg.clone(), &b64(&payload));
            assert_eq!(
                dead[0].reason,
                format!("{codec} payload exceeds 1000 bytes decompressed")
            );
        }
    }

    #[test]
    fn a_compressed_line_inside_compressed_lines_is_not_unpacked_again() {
        // A base64 gzip line inside the lines is a CloudWatch payload or a
        // dead letter, never more lines: the depth is bounded.
        let inner = b64(&gzip(LINES));
        let (out, dead, stats) = decode(DecoderConfig::default(), &zstd(&inner));
        assert_eq!((stats.events, stats.dead_letters), (0, 1));
        assert!(out.is_empty());
        assert!(
            dead[0].reason.starts_with("invalid cloudwatch json"),
            "{dead:?}"
        );
    }

    #[test]
    fn plain_text_is_not_mistaken_for_a_payload() {
        for text in [
            &b"KLUv without the slash"[..],
            b"H4s",
            b"{\"a\":1}",
            b"ERROR x",
        ] {
            assert!(!is_compressed(text), "{}", String::from_utf8_lossy(text));
        }
    }
}
