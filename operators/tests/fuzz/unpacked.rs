//! What a compressed payload holds, read independently of the decoder
//! (base64, flate2 and zstd's stream readers), shared by the CloudWatch and
//! the compressed-message targets as their oracle.

use std::io::Read;

use base64::Engine as _;

/// The lines inside `payload` by an independent reading (no size limit
/// beyond `max`), or `None` when it does not unpack. A payload that is plain
/// JSON, or base64 of it, is read as it is.
pub fn unpack(payload: &[u8], max: usize) -> Option<Vec<u8>> {
    let p = payload
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(payload)
        .trim_ascii();
    if p.starts_with(b"{") {
        return Some(p.to_vec());
    }
    let raw = if p.starts_with(&[0x1f, 0x8b]) || p.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        p.to_vec()
    } else {
        let clean: Vec<u8> = p
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .ok()?
    };
    if raw.starts_with(b"{") {
        // Base64 of plain JSON (as a CloudWatch payload may come): as it is.
        return Some(raw);
    }
    let mut out = Vec::new();
    let read = if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(max as u64 + 1)
            .read_to_end(&mut out)
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(&raw[..])
            .and_then(|d| d.take(max as u64 + 1).read_to_end(&mut out))
    } else {
        return None;
    };
    (read.is_ok() && out.len() <= max).then_some(out)
}
