//! Kinesis Producer Library (KPL) aggregated records, unpacked into the user
//! records they carry.
//!
//! Producers using the KPL (and Fluent Bit's and Vector's aggregation options)
//! pack many user records into one Kinesis record to save on the per-record
//! limits. Such a record is the 4 magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, and the 16-byte MD5 of that protobuf:
//!
//! ```text
//! message AggregatedRecord {
//!   repeated string partition_key_table = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes data = 3;
//!   repeated Tag tags = 4;
//! }
//! ```
//!
//! As in the KCL, a record that starts with the magic bytes but whose digest
//! does not match, or whose protobuf does not parse, is not an aggregate: it is
//! passed on whole as an ordinary record (and counted), so nothing is dropped.

use md5::{Digest, Md5};

/// The first bytes of every KPL aggregated record.
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

const DIGEST_LEN: usize = 16;

/// The user records of a KPL aggregated record, in order; `None` when `data`
/// is not one (no magic, a digest mismatch, or a protobuf that does not parse).
///
/// ```
/// use spate_operators::sources::kinesis::kpl::deaggregate;
/// assert_eq!(deaggregate(b"{\"message\":\"plain\"}"), None);
/// ```
pub fn deaggregate(data: &[u8]) -> Option<Vec<&[u8]>> {
    let rest = data.strip_prefix(&KPL_MAGIC)?;
    if rest.len() < DIGEST_LEN {
        return None;
    }
    let (message, digest) = rest.split_at(rest.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return None;
    }
    let mut records = Vec::new();
    let mut fields = Fields::new(message);
    while let Some(field) = fields.next()? {
        if let (3, Value::Bytes(record)) = field {
            records.push(record_data(record)?);
        }
    }
    Some(records)
}

/// The `data` field of one `Record` message.
fn record_data(record: &[u8]) -> Option<&[u8]> {
    let mut data = None;
    let mut fields = Fields::new(record);
    while let Some(field) = fields.next()? {
        if let (3, Value::Bytes(bytes)) = field {
            data = Some(bytes);
        }
    }
    data
}

/// A protobuf field value, for the wire types this format uses.
enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one protobuf message: `next()` is `Some(None)` at the end and
/// `None` on malformed input.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Self {
        Fields { rest: message }
    }

    fn next(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        if self.rest.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => {
                self.varint()?;
                Value::Varint
            }
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.rest.len() < len {
            return None;
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Some(head)
    }
}

/// Encodes an aggregated record as the KPL does (for tests and tools that
/// produce test data).
///
/// ```
/// use spate_operators::sources::kinesis::kpl::{aggregate, deaggregate};
/// let packed = aggregate("pk", &[b"one".as_slice(), b"two"]);
/// assert_eq!(deaggregate(&packed), Some(vec![b"one".as_slice(), b"two"]));
/// ```
pub fn aggregate(partition_key: &str, records: &[&[u8]]) -> Vec<u8> {
    let mut message = Vec::new();
    push_bytes(&mut message, 1, partition_key.as_bytes());
    for data in records {
        let mut record = Vec::new();
        push_varint(&mut record, 1 << 3); // partition_key_index = 0
        push_varint(&mut record, 0);
        push_bytes(&mut record, 3, data);
        push_bytes(&mut message, 3, &record);
    }
    let mut out = KPL_MAGIC.to_vec();
    out.extend_from_slice(&message);
    out.extend_from_slice(Md5::digest(&message).as_slice());
    out
}

fn push_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    push_varint(out, (field << 3) | 2);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_bytes() {
        let big = vec![b'x'; 300]; // a length needing a two-byte varint
        let records: Vec<&[u8]> = vec![b"{\"a\":1}\n", b"", &big, b"line"];
        let packed = aggregate("key", &records);
        assert_eq!(deaggregate(&packed), Some(records));
    }

    #[test]
    fn plain_records_are_not_aggregates() {
        assert_eq!(deaggregate(b""), None);
        assert_eq!(deaggregate(b"{\"message\":\"x\"}"), None);
        assert_eq!(deaggregate(&KPL_MAGIC), None);
    }

    #[test]
    fn a_wrong_digest_or_a_broken_message_is_not_an_aggregate() {
        let mut packed = aggregate("key", &[b"one".as_slice()]);
        let last = packed.len() - 1;
        packed[last] ^= 1;
        assert_eq!(deaggregate(&packed), None);

        // A length running past the end, with a matching digest.
        let message = [0x1a, 0x7f, 0x01];
        let mut broken = KPL_MAGIC.to_vec();
        broken.extend_from_slice(&message);
        broken.extend_from_slice(Md5::digest(message).as_slice());
        assert_eq!(deaggregate(&broken), None);
    }

    #[test]
    fn unknown_fields_and_tags_are_skipped() {
        // records[0] = { partition_key_index: 0, data: "d", tags: [{key: "k"}] }
        // plus an unknown fixed32 field 9 in the aggregate.
        let record = [0x08, 0x00, 0x1a, 0x01, b'd', 0x22, 0x03, 0x0a, 0x01, b'k'];
        let mut message = vec![0x0a, 0x01, b'p', 0x4d, 1, 2, 3, 4, 0x1a, record.len() as u8];
        message.extend_from_slice(&record);
        let mut packed = KPL_MAGIC.to_vec();
        packed.extend_from_slice(&message);
        packed.extend_from_slice(Md5::digest(&message).as_slice());
        assert_eq!(deaggregate(&packed), Some(vec![b"d".as_slice()]));
    }
}
