//! Values of a block body that are not plain text: attribute values by
//! kind (integers as varints, lowercase hex of 16 digits or more and UUIDs
//! as bytes in the body's `bin` section), and the hex/UUID conversions.

use serde_json::Value;

use super::DynamoHotError;
use super::flat_json::Scalar;
use super::wire::{Reader, malformed, put_bytes, put_signed, put_varint};

/// How an attribute value is stored (the first byte of its entry).
const V_JSON: u8 = 0;
const V_TEXT: u8 = 1;
const V_HEX: u8 = 2;
const V_UUID: u8 = 3;
const V_INT: u8 = 4;
const V_TRUE: u8 = 5;
const V_FALSE: u8 = 6;
const V_NULL: u8 = 7;

/// Puts an attribute value: its kind in `out`, then its entry (random
/// bytes in `bin`).
pub(super) fn put_value(out: &mut Vec<u8>, bin: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => put_str(out, bin, s),
        Value::Number(n) if n.as_i64().is_some() => put_int(out, n.as_i64().unwrap_or_default()),
        Value::Bool(b) => out.push(if *b { V_TRUE } else { V_FALSE }),
        Value::Null => out.push(V_NULL),
        other => {
            out.push(V_JSON);
            put_bytes(out, other.to_string().as_bytes());
        }
    }
}

/// Puts a value of a flat object read from its text: the same bytes as
/// [`put_value`] of the value serde_json reads.
pub(super) fn put_scalar(out: &mut Vec<u8>, bin: &mut Vec<u8>, value: Scalar<'_>) {
    match value {
        Scalar::Str(s) => put_str(out, bin, s),
        Scalar::Int(n) => put_int(out, n),
        Scalar::Bool(b) => out.push(if b { V_TRUE } else { V_FALSE }),
        Scalar::Null => out.push(V_NULL),
    }
}

fn put_str(out: &mut Vec<u8>, bin: &mut Vec<u8>, s: &str) {
    if let Some(b) = uuid_bytes(s) {
        out.push(V_UUID);
        bin.extend_from_slice(&b);
    } else if is_hex(s) {
        out.push(V_HEX);
        put_varint(out, (s.len() / 2) as u64);
        bin.extend(s.as_bytes().chunks_exact(2).map(hex_pair));
    } else {
        out.push(V_TEXT);
        put_bytes(out, s.as_bytes());
    }
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    out.push(V_INT);
    put_signed(out, n);
}

pub(super) fn read_value(
    r: &mut Reader<'_>,
    bin: &mut Reader<'_>,
) -> Result<Value, DynamoHotError> {
    Ok(match r.byte()? {
        V_TEXT => Value::String(r.str()?.to_string()),
        V_UUID => Value::String(uuid_text(bin.take(16)?)),
        V_HEX => {
            let n = r.len()?;
            Value::String(hex_text(bin.take(n)?))
        }
        V_INT => Value::from(r.signed()?),
        V_TRUE => Value::Bool(true),
        V_FALSE => Value::Bool(false),
        V_NULL => Value::Null,
        V_JSON => serde_json::from_slice(r.bytes()?)
            .map_err(|e| malformed(format!("attribute value: {e}")))?,
        other => return Err(malformed(format!("value kind {other}"))),
    })
}

/// Steps over a value [`read_value`] would read.
pub(super) fn skip_value(r: &mut Reader<'_>, bin: &mut Reader<'_>) -> Result<(), DynamoHotError> {
    match r.byte()? {
        V_TEXT | V_JSON => {
            r.bytes()?;
        }
        V_UUID => {
            bin.take(16)?;
        }
        V_HEX => {
            let n = r.len()?;
            bin.take(n)?;
        }
        V_INT => {
            r.signed()?;
        }
        V_TRUE | V_FALSE | V_NULL => {}
        other => return Err(malformed(format!("value kind {other}"))),
    }
    Ok(())
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Whether `s` is lowercase hex of 16 digits or more, an even number.
fn is_hex(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 16 && b.len().is_multiple_of(2) && b.iter().all(|&c| hex_digit(c).is_some())
}

/// The byte of two lowercase hex digits (checked by [`is_hex`]).
fn hex_pair(p: &[u8]) -> u8 {
    let digit = |c: u8| hex_digit(c).unwrap_or_default();
    digit(p[0]) << 4 | digit(p[1])
}

/// The bytes of `s` when it is lowercase hex of 16 digits or more, an even
/// number.
#[cfg(test)]
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    is_hex(s).then(|| s.as_bytes().chunks_exact(2).map(hex_pair).collect())
}

pub(super) fn hex_text(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The 16 bytes of a lowercase UUID (`8-4-4-4-12` hex digits).
pub(super) fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    // Hex digit pairs, skipping the four dashes: 8-4-4-4-12 digits.
    let mut out = [0u8; 16];
    let mut at = 0;
    for o in &mut out {
        if matches!(at, 8 | 13 | 18 | 23) {
            at += 1;
        }
        *o = hex_digit(b[at])? << 4 | hex_digit(b[at + 1])?;
        at += 2;
    }
    Some(out)
}

pub(super) fn uuid_text(bytes: &[u8]) -> String {
    let hex = hex_text(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_uuids_are_recognised_exactly() {
        assert_eq!(
            hex_bytes("00ff10aa00ff10aa").unwrap(),
            [0, 255, 16, 170, 0, 255, 16, 170]
        );
        assert_eq!(hex_text(&[0, 255, 16, 170]), "00ff10aa");
        assert!(hex_bytes("00ff10aa00ff10a").is_none());
        assert!(hex_bytes("00FF10AA00FF10AA").is_none());
        let u = "f179b57d-f799-46d2-8e7c-b5bd8def31ad";
        assert_eq!(uuid_text(&uuid_bytes(u).unwrap()), u);
        assert!(uuid_bytes("f179b57d-f799-46d2-8e7c-b5bd8def31a-").is_none());
        assert!(uuid_bytes("f179b57df79946d28e7cb5bd8def31ad0000").is_none());
        // A dash among the digits, or capitals: not a UUID (kept as text).
        assert!(uuid_bytes("f179b57d-f79--46d2-8e7c-b5bd8def31ad").is_none());
        assert!(uuid_bytes("F179B57D-F799-46D2-8E7C-B5BD8DEF31AD").is_none());
    }

    #[test]
    fn values_round_trip_by_kind() {
        let values = serde_json::json!([
            "45ac5f6db1ed51b506f85663a0be0c1b",
            "f179b57d-f799-46d2-8e7c-b5bd8def31ad",
            "plain",
            -7,
            u64::MAX,
            1.5,
            true,
            false,
            null,
            {"a": [1]}
        ]);
        let (mut out, mut bin) = (Vec::new(), Vec::new());
        for v in values.as_array().unwrap() {
            put_value(&mut out, &mut bin, v);
        }
        assert_eq!(bin.len(), 32);
        let (mut r, mut b) = (Reader::new(&out), Reader::new(&bin));
        for v in values.as_array().unwrap() {
            assert_eq!(&read_value(&mut r, &mut b).unwrap(), v);
        }
        assert_eq!((r.remaining(), b.remaining()), (0, 0));
        assert!(read_value(&mut Reader::new(&[99]), &mut b).is_err());
    }
}
