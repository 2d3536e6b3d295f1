//! Byte-level pieces of a block body ([`columns`](super::columns)):
//! LEB128 varints, length-prefixed strings, string tables whose new entries
//! are written inline where first used, and a bounds-checked reader that
//! turns every malformed input into an error.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::DynamoHotError;

/// Largest body a block reader decompresses (a corrupt or hostile item cannot make
/// a reader allocate more).
pub const MAX_RAW_BYTES: usize = 64 << 20;

/// An error about a malformed body.
pub(super) fn malformed(what: impl std::fmt::Display) -> DynamoHotError {
    DynamoHotError::Data(format!("block body is malformed: {what}"))
}

/// Appends `v` as a LEB128 varint.
pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded (small magnitudes of either sign are short).
pub(super) fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends `bytes` with their length first.
pub(super) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads what [`put_varint`], [`put_signed`] and [`put_bytes`] wrote.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(super) fn byte(&mut self) -> Result<u8, DynamoHotError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| malformed("ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(super) fn varint(&mut self) -> Result<u64, DynamoHotError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("varint longer than 64 bits"))
    }

    pub(super) fn signed(&mut self) -> Result<i64, DynamoHotError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count or index: a varint that fits in `usize`.
    pub(super) fn len(&mut self) -> Result<usize, DynamoHotError> {
        usize::try_from(self.varint()?).map_err(|_| malformed("length out of range"))
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DynamoHotError> {
        if n > self.remaining() {
            return Err(malformed("ends early"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8], DynamoHotError> {
        let n = self.len()?;
        self.take(n)
    }

    pub(super) fn str(&mut self) -> Result<&'a str, DynamoHotError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("text is not UTF-8"))
    }
}

/// Writes strings of a column as indexes into a table built as it goes:
/// index `len` (the next one) is followed by the new string.
#[derive(Default)]
pub(super) struct TableWriter {
    index: HashMap<String, u64, RandomState>,
}

impl TableWriter {
    /// The index of `value`, and whether it is new (then the caller has
    /// written nothing yet; [`TableWriter::put`] writes both).
    pub(super) fn index_of(&mut self, value: &str) -> (u64, bool) {
        if let Some(&i) = self.index.get(value) {
            return (i, false);
        }
        let i = self.index.len() as u64;
        self.index.insert(value.to_string(), i);
        (i, true)
    }

    pub(super) fn put(&mut self, out: &mut Vec<u8>, value: &str) {
        if let Some(&i) = self.index.get(value) {
            put_varint(out, i);
            return;
        }
        let i = self.index.len() as u64;
        put_varint(out, i);
        put_bytes(out, value.as_bytes());
        self.index.insert(value.to_string(), i);
    }

    /// Strings in the table.
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// `None` as 0, a string as its index plus one (new strings inline).
    pub(super) fn put_opt(&mut self, out: &mut Vec<u8>, value: Option<&str>) {
        match value {
            None => put_varint(out, 0),
            Some(v) => {
                if let Some(&i) = self.index.get(v) {
                    put_varint(out, i + 1);
                    return;
                }
                let i = self.index.len() as u64;
                put_varint(out, i + 1);
                put_bytes(out, v.as_bytes());
                self.index.insert(v.to_string(), i);
            }
        }
    }
}

/// Reads what a [`TableWriter`] wrote.
#[derive(Default)]
pub(super) struct TableReader {
    values: Vec<String>,
}

impl TableReader {
    fn at(&mut self, r: &mut Reader<'_>, i: usize) -> Result<&str, DynamoHotError> {
        if i == self.values.len() {
            let v = r.str()?.to_string();
            self.values.push(v);
        }
        self.values
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| malformed(format!("table index {i} of {}", self.values.len())))
    }

    /// Strings in the table.
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds `value` (read by the caller) as the next entry.
    pub(super) fn push(&mut self, value: String) {
        self.values.push(value);
    }

    /// The string at `i` (an index below [`TableReader::len`]).
    pub(super) fn value(&self, i: usize) -> &str {
        &self.values[i]
    }

    /// The value the next index of `r` names (read from `r` when new).
    pub(super) fn next(&mut self, r: &mut Reader<'_>) -> Result<&str, DynamoHotError> {
        let i = r.len()?;
        self.at(r, i)
    }

    /// [`next`](Self::next) of an optional value (index 0 for none).
    pub(super) fn next_opt(&mut self, r: &mut Reader<'_>) -> Result<Option<&str>, DynamoHotError> {
        match r.len()? {
            0 => Ok(None),
            i => self.at(r, i - 1).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_strings_round_trip() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut out, v);
        }
        for v in [0, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            put_signed(&mut out, v);
        }
        put_bytes(&mut out, "héllo".as_bytes());
        let mut r = Reader::new(&out);
        for v in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        for v in [0, -1, 1, -64, 64, i64::MIN, i64::MAX] {
            assert_eq!(r.signed().unwrap(), v);
        }
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(r.remaining(), 0);
        assert!(r.byte().is_err());
        let mut short = vec![0x80; 11];
        assert!(Reader::new(&short).varint().is_err(), "too long");
        short.truncate(2);
        assert!(Reader::new(&short).varint().is_err(), "cut");
        assert!(Reader::new(&[5, b'a']).bytes().is_err());
        assert!(Reader::new(&[2, 0xff, 0xfe]).str().is_err());
    }

    #[test]
    fn tables_write_each_string_once() {
        let mut out = Vec::new();
        let mut w = TableWriter::default();
        for v in ["prod", "staging", "prod", "prod"] {
            w.put(&mut out, v);
        }
        let mut opt = TableWriter::default();
        for v in [None, Some("a"), Some("a"), None] {
            opt.put_opt(&mut out, v);
        }
        assert_eq!(
            out.len(),
            (1 + 1 + 4) + (1 + 1 + 7) + 2 + 1 + (1 + 1 + 1) + 2
        );
        let mut r = Reader::new(&out);
        let mut t = TableReader::default();
        let back: Vec<String> = (0..4)
            .map(|_| t.next(&mut r).unwrap().to_string())
            .collect();
        assert_eq!(back, ["prod", "staging", "prod", "prod"]);
        let mut t = TableReader::default();
        let back: Vec<Option<String>> = (0..4)
            .map(|_| t.next_opt(&mut r).unwrap().map(str::to_string))
            .collect();
        assert_eq!(back, [None, Some("a".into()), Some("a".into()), None]);
        // An index past the table is an error, not a panic.
        assert!(TableReader::default().next(&mut Reader::new(&[3])).is_err());
    }
}
