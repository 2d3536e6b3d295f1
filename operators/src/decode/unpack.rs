//! Compressed payloads: gzip or zstd, raw or base64, recognised by their
//! first bytes and unpacked within a size limit.
//!
//! Two kinds of input arrive compressed:
//! - CloudWatch Logs subscription payloads (gzip; base64 of gzip through SQS,
//!   Firehose dumps and some forwarders), unpacked by
//!   [`LineDecoder::decode_cloudwatch`](super::LineDecoder::decode_cloudwatch);
//! - whole queue messages or stream records that a producer compressed to
//!   cut its SQS or Kinesis bill (`spate cost --compression`), unpacked by
//!   [`LineDecoder::decode_compressed`](super::LineDecoder::decode_compressed): their content is then either a
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

/// The UTF-8 byte order mark, stripped before a chunk or payload is read.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BASE64_GZIP: &[u8] = b"H4sI";
const BASE64_ZSTD: &[u8] = b"KLUv/";

/// True when `bytes` start like a compressed payload (see the module docs):
/// what the SQS and Kinesis sources use to hand a message to
/// [`LineDecoder::decode_compressed`](super::LineDecoder::decode_compressed).
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(is_compressed(b"\xEF\xBB\xBF  H4sIAAAA"));
    }

    #[test]
    fn size_hints_are_read_from_headers_and_trailers() {
        let zst = zstd::bulk::compress(&[7u8; 5000], 3).unwrap();
        assert_eq!(zstd_frame_size(&zst), Some(5000));
        assert_eq!(zstd_frame_size(b"not zstd"), None);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &[7u8; 3000]).unwrap();
        assert_eq!(gzip_size_hint(&gz.finish().unwrap()), Some(3000));
        assert_eq!(gzip_size_hint(b"x"), None);
    }

    #[test]
    fn big_buffers_are_freed_small_ones_kept() {
        let mut unpacker = Unpacker::default();
        unpacker.inflated.reserve(KEEP_BYTES + 1);
        unpacker.base64.reserve(1024);
        unpacker.shrink();
        assert_eq!(unpacker.inflated.capacity(), 0);
        assert!(unpacker.base64.capacity() >= 1024);
    }
}
