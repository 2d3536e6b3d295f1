//! Whole queue messages and stream records compressed by their producer
//! (`unpack.rs` recognises and unpacks them): a CloudWatch Logs payload or
//! lines once unpacked.

use super::unpack::{Unpacked, looks_like_cloudwatch};
use super::{BOM, DeadLetter, DecodeContext, DecodeStats, LineDecoder};
use crate::event::EventBatch;

impl LineDecoder {
    /// Decodes one whole message or record that a producer compressed (see
    /// `unpack.rs`): a CloudWatch Logs subscription payload goes on as
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
            Err(reason) => return self.payload_dead_letter(reason, payload, position, ctx, dead),
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
    use crate::decode::is_compressed;
    use crate::event::Severity;
    use base64::Engine as _;

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
}
