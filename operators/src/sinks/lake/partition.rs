//! Hive-style partitions of the lake: `dt=YYYY-MM-DD/hour=HH/service=NAME/`.
//!
//! Pure functions: which partition a row belongs to, and the partition's path.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_schema::ArrowError;

use crate::event::EventBatch;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The partition of a row: the UTC hour of its event time, and its service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Start of the UTC hour, milliseconds since the epoch.
    pub hour_start_ms: i64,
    /// Service name as logged (escaped only in the path).
    pub service: Arc<str>,
}

impl PartitionKey {
    /// The key of an event at `ts_ms` from `service`.
    ///
    /// ```
    /// use spate_operators::sinks::lake::partition::PartitionKey;
    /// let key = PartitionKey::of(1_763_892_000_123, "api");
    /// assert_eq!(key.path(), "dt=2025-11-23/hour=10/service=api");
    /// ```
    pub fn of(ts_ms: i64, service: &str) -> Self {
        PartitionKey {
            hour_start_ms: hour_start(ts_ms),
            service: Arc::from(service),
        }
    }

    /// The key of the hour starting at `hour_start_ms` and the service whose
    /// name is `service` (UTF-8, as every decoded column holds; anything else
    /// is replaced, never a panic).
    fn of_bytes(hour_start_ms: i64, service: &[u8]) -> Self {
        PartitionKey {
            hour_start_ms,
            service: Arc::from(String::from_utf8_lossy(service)),
        }
    }

    /// The relative directory: `dt=YYYY-MM-DD/hour=HH/service=NAME`.
    pub fn path(&self) -> String {
        let (y, m, d) = civil_from_days(self.hour_start_ms.div_euclid(DAY_MS));
        let hour = self.hour_start_ms.rem_euclid(DAY_MS) / HOUR_MS;
        format!(
            "dt={y:04}-{m:02}-{d:02}/hour={hour:02}/service={}",
            escape_partition_value(&self.service)
        )
    }

    /// Which of `shards` writers owns this partition (stable: FNV-1a of the
    /// service and hour), so each partition has one open file at a time.
    pub fn shard(&self, shards: usize) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.service.bytes().chain(self.hour_start_ms.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        (h % shards.max(1) as u64) as usize
    }

    /// The key of a partition directory, from its relative path
    /// `dt=YYYY-MM-DD/hour=HH/service=NAME` (the inverse of [`path`](Self::path)).
    ///
    /// ```
    /// use spate_operators::sinks::lake::partition::PartitionKey;
    /// let key = PartitionKey::of(1_763_892_000_123, "a/b");
    /// assert_eq!(PartitionKey::parse_path(&key.path()), Some(PartitionKey::of(1_763_892_000_000, "a/b")));
    /// assert_eq!(PartitionKey::parse_path("dt=2025-11-23/hour=24/service=x"), None);
    /// ```
    pub fn parse_path(path: &str) -> Option<Self> {
        let mut parts = path.trim_matches('/').split('/');
        let dt = parts.next()?.strip_prefix("dt=")?;
        let hour = parts.next()?.strip_prefix("hour=")?;
        let service = parts.next()?.strip_prefix("service=")?;
        if parts.next().is_some() || hour.len() != 2 || dt.len() != 10 {
            return None;
        }
        let hour: i64 = hour.parse().ok().filter(|h| (0..24).contains(h))?;
        let mut ymd = dt.split('-');
        let y: i64 = ymd.next()?.parse().ok()?;
        let m: u32 = ymd.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
        let d: u32 = ymd.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
        let days = days_from_civil(y, m, d);
        if civil_from_days(days) != (y, m, d) {
            return None;
        }
        Some(PartitionKey {
            hour_start_ms: days * DAY_MS + hour * HOUR_MS,
            service: Arc::from(unescape_partition_value(service)?.as_str()),
        })
    }

    /// End of the partition's hour, milliseconds since the epoch.
    pub fn hour_end_ms(&self) -> i64 {
        self.hour_start_ms + HOUR_MS
    }

    /// The `dt=YYYY-MM-DD` part alone.
    pub fn date(&self) -> String {
        let (y, m, d) = civil_from_days(self.hour_start_ms.div_euclid(DAY_MS));
        format!("{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Start of the UTC hour containing `ts_ms` (the window function of the lake).
///
/// ```
/// use spate_operators::sinks::lake::partition::hour_start;
/// assert_eq!(hour_start(7_199_999), 3_600_000);
/// assert_eq!(hour_start(-1), -3_600_000);
/// ```
pub fn hour_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Gregorian (year, month, day) of a day count since 1970-01-01.
///
/// ```
/// use spate_operators::sinks::lake::partition::civil_from_days;
/// assert_eq!(civil_from_days(0), (1970, 1, 1));
/// assert_eq!(civil_from_days(20_415), (2025, 11, 23));
/// ```
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day count since 1970-01-01 of a Gregorian date (the inverse of
/// [`civil_from_days`]).
///
/// ```
/// use spate_operators::sinks::lake::partition::days_from_civil;
/// assert_eq!(days_from_civil(1970, 1, 1), 0);
/// assert_eq!(days_from_civil(2025, 11, 23), 20_415);
/// ```
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The value an escaped path component stands for (the inverse of
/// [`escape_partition_value`]); `None` for a malformed escape.
///
/// ```
/// use spate_operators::sinks::lake::partition::unescape_partition_value;
/// assert_eq!(unescape_partition_value("a%2Fb%20c").as_deref(), Some("a/b c"));
/// assert_eq!(unescape_partition_value("__HIVE_DEFAULT_PARTITION__").as_deref(), Some(""));
/// ```
pub fn unescape_partition_value(escaped: &str) -> Option<String> {
    if escaped == "__HIVE_DEFAULT_PARTITION__" {
        return Some(String::new());
    }
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes a partition value the way Hive does: bytes outside
/// `[A-Za-z0-9._-]` become `%XX`; an empty value becomes
/// `__HIVE_DEFAULT_PARTITION__`.
///
/// ```
/// use spate_operators::sinks::lake::partition::escape_partition_value;
/// assert_eq!(escape_partition_value("checkout-api"), "checkout-api");
/// assert_eq!(escape_partition_value("a/b c"), "a%2Fb%20c");
/// ```
pub fn escape_partition_value(value: &str) -> String {
    if value.is_empty() {
        return "__HIVE_DEFAULT_PARTITION__".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // "." and ".." are not safe directory names.
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

/// The row indexes of each partition in `batch`, in first-seen order.
///
/// Rows are keyed by their hour and their service's bytes in a table with a
/// fast hash (foldhash, randomly seeded per table); a row in the same
/// partition as the row before it skips the table.
pub fn partition_rows(batch: &EventBatch) -> Vec<(PartitionKey, Vec<u32>)> {
    let mut index: HashMap<(i64, &[u8]), usize, foldhash::fast::RandomState> = HashMap::default();
    let mut parts: Vec<(PartitionKey, Vec<u32>)> = Vec::new();
    let mut last: Option<(i64, &[u8], usize)> = None;
    for row in 0..batch.len() {
        let hour = hour_start(batch.ts[row]);
        let service = batch.service.get_bytes(row).unwrap_or(b"unknown");
        let slot = match last {
            Some((h, s, slot)) if h == hour && s == service => slot,
            _ => *index.entry((hour, service)).or_insert_with(|| {
                parts.push((PartitionKey::of_bytes(hour, service), Vec::new()));
                parts.len() - 1
            }),
        };
        last = Some((hour, service, slot));
        parts[slot].1.push(row as u32);
    }
    parts
}

/// Splits a record batch by partition (rows from [`partition_rows`]); a batch
/// that is all one partition is passed through without copying.
///
/// The rows are gathered once, in partition order, and each part is a slice
/// of that one batch: one allocation per column, not one per column and
/// partition (a W1 batch of 1,000 events spans about 30 partitions). The
/// parts share their buffers, so their size in memory is [`sliced_bytes`],
/// not `get_array_memory_size` (which counts the shared buffers whole).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int32Array, RecordBatch};
/// use spate_operators::sinks::lake::partition::{PartitionKey, split_record_batch};
/// let column = Arc::new(Int32Array::from(vec![1, 2, 3]));
/// let batch = RecordBatch::try_from_iter([("n", column as _)]).unwrap();
/// let (a, b) = (PartitionKey::of(0, "a"), PartitionKey::of(0, "b"));
/// let parts = split_record_batch(batch, vec![(a, vec![0, 2]), (b, vec![1])]).unwrap();
/// let n = |i: usize| parts[i].1.column(0).as_any().downcast_ref::<Int32Array>().unwrap().values().to_vec();
/// assert_eq!((n(0), n(1)), (vec![1, 3], vec![2]));
/// ```
pub fn split_record_batch(
    records: RecordBatch,
    parts: Vec<(PartitionKey, Vec<u32>)>,
) -> Result<Vec<(PartitionKey, RecordBatch)>, ArrowError> {
    if parts.len() == 1 {
        let (key, _) = parts.into_iter().next().expect("one part");
        return Ok(vec![(key, records)]);
    }
    let rows: usize = parts.iter().map(|(_, r)| r.len()).sum();
    let mut order = Vec::with_capacity(rows);
    for (_, part_rows) in &parts {
        order.extend_from_slice(part_rows);
    }
    let gathered = arrow_select::take::take_record_batch(&records, &UInt32Array::from(order))?;
    drop(records);
    let mut offset = 0;
    Ok(parts
        .into_iter()
        .map(|(key, part_rows)| {
            let part = gathered.slice(offset, part_rows.len());
            offset += part_rows.len();
            (key, part)
        })
        .collect())
}

/// Bytes of memory that `batch`'s rows occupy: for a slice (a part of
/// [`split_record_batch`]), its share of the buffers, not the buffers whole.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch};
/// use spate_operators::sinks::lake::partition::sliced_bytes;
/// let column = Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>()));
/// let batch = RecordBatch::try_from_iter([("n", column as _)]).unwrap();
/// assert_eq!(sliced_bytes(&batch.slice(0, 10)), 80);
/// assert!(batch.slice(0, 10).get_array_memory_size() >= 8000);
/// ```
pub fn sliced_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| column_sliced_bytes(column.as_ref()))
        .sum()
}

/// [`sliced_bytes`] of one column: Arrow's `get_slice_memory_size`, worked
/// out straight from text, list and fixed-width columns (all of the lake's), since
/// building the `ArrayData` it needs took 1.9 % of `spate run`'s samples at
/// 300 k W1 events/s (a batch of 1,000 events makes about 30 parts of 15
/// columns each; `docs/BENCHMARKS.md`).
fn column_sliced_bytes(column: &dyn Array) -> usize {
    // Arrow drops a validity buffer without nulls when it builds the data.
    let validity = if column.null_count() > 0 {
        column.len().div_ceil(8)
    } else {
        0
    };
    if let Some(text) = column.as_string_opt::<i32>() {
        let offsets = text.value_offsets();
        let values = offsets
            .last()
            .zip(offsets.first())
            .map_or(0, |(end, start)| end - start);
        return validity + std::mem::size_of_val(offsets) + usize::try_from(values).unwrap_or(0);
    }
    if let Some(width) = column.data_type().primitive_width() {
        return validity + column.len() * width;
    }
    if let Some(list) = column.as_list_opt::<i32>() {
        // As Arrow counts it: a slice's offsets, and the values whole.
        let offsets = std::mem::size_of_val(list.value_offsets());
        return validity + offsets + column_sliced_bytes(list.values().as_ref());
    }
    column
        .to_data()
        .get_slice_memory_size()
        .unwrap_or_else(|_| column.get_array_memory_size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliced_bytes_are_arrows_slice_memory_size() {
        use arrow_array::builder::{ListBuilder, StringBuilder};
        use arrow_array::{Int32Array, StringArray, TimestampMillisecondArray};
        let rows = 300;
        let text = |i: usize| "x".repeat(i % 17);
        let mut tags = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            for t in 0..i % 3 {
                tags.values().append_value(text(t + i));
            }
            tags.append(true);
        }
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(StringArray::from_iter_values((0..rows).map(text))) as _,
            ),
            (
                "host",
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| (i % 4 > 0).then(|| text(i))),
                )) as _,
            ),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    (0..rows).map(|i| i as i64),
                )) as _,
            ),
            (
                "status",
                Arc::new(Int32Array::from_iter(
                    (0..rows).map(|i| (i % 5 > 0).then_some(i as i32)),
                )) as _,
            ),
            ("tags", Arc::new(tags.finish()) as _),
        ])
        .unwrap();
        for (offset, len) in [
            (0, rows),
            (0, 0),
            (7, 1),
            (13, 50),
            (rows - 3, 3),
            (100, 200),
        ] {
            let part = batch.slice(offset, len);
            for column in part.columns() {
                let arrow = column.to_data().get_slice_memory_size().unwrap();
                assert_eq!(
                    column_sliced_bytes(column.as_ref()),
                    arrow,
                    "{offset}+{len} {}",
                    column.data_type()
                );
            }
        }
    }

    #[test]
    fn paths_use_utc_date_and_hour() {
        // 2026-11-23T23:59:59.999Z and the next millisecond.
        let before = PartitionKey::of(1_795_478_399_999, "api");
        let after = PartitionKey::of(1_795_478_400_000, "api");
        assert_eq!(before.path(), "dt=2026-11-23/hour=23/service=api");
        assert_eq!(after.path(), "dt=2026-11-24/hour=00/service=api");
        assert_eq!(after.date(), "2026-11-24");
    }

    #[test]
    fn leap_day_and_pre_epoch() {
        // 2024-02-29T12:00:00Z
        assert_eq!(
            PartitionKey::of(1_709_208_000_000, "s").path(),
            "dt=2024-02-29/hour=12/service=s"
        );
        assert_eq!(
            PartitionKey::of(-1, "s").path(),
            "dt=1969-12-31/hour=23/service=s"
        );
    }

    #[test]
    fn shards_are_stable_and_spread() {
        let keys: Vec<PartitionKey> = (0..64)
            .map(|i| PartitionKey::of(0, &format!("svc-{i}")))
            .collect();
        let first: Vec<usize> = keys.iter().map(|k| k.shard(2)).collect();
        assert_eq!(first, keys.iter().map(|k| k.shard(2)).collect::<Vec<_>>());
        let ones = first.iter().filter(|&&s| s == 1).count();
        assert!((16..=48).contains(&ones), "{ones} of 64 on shard 1");
        assert!(keys.iter().all(|k| k.shard(1) == 0));
    }

    #[test]
    fn paths_parse_back_into_keys() {
        for (ts, service) in [
            (1_795_478_399_999, "api"),
            (-1, "s"),
            (1_709_208_000_000, "a/b c"),
            (0, ""),
            (0, ".."),
        ] {
            let key = PartitionKey::of(ts, service);
            assert_eq!(
                PartitionKey::parse_path(&key.path()),
                Some(key.clone()),
                "{key}"
            );
        }
        for bad in [
            "dt=2025-02-30/hour=00/service=x",
            "dt=2025-01-01/hour=0/service=x",
            "dt=2025-01-01/hour=00",
            "dt=2025-01-01/hour=00/service=x/y",
            "dt=2025-01-01/hour=00/service=%zz",
        ] {
            assert_eq!(PartitionKey::parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn escaping_keeps_paths_safe() {
        assert_eq!(escape_partition_value(".."), "%2E%2E");
        assert_eq!(escape_partition_value(""), "__HIVE_DEFAULT_PARTITION__");
        assert_eq!(escape_partition_value("ü"), "%C3%BC");
        assert_eq!(escape_partition_value("x=1"), "x%3D1");
    }

    /// `partition_rows` of rows given as (event time, service), as
    /// (partition path, row indexes).
    fn grouped(rows: &[(i64, Option<&str>)]) -> Vec<(String, Vec<u32>)> {
        let mut b = EventBatch::default();
        for &(ts, service) in rows {
            b.ts.push(ts);
            b.service.push_opt(service);
        }
        partition_rows(&b)
            .into_iter()
            .map(|(k, r)| (k.path(), r))
            .collect()
    }

    #[test]
    fn rows_group_by_hour_and_service() {
        let rows = [(0, "a"), (3_600_000, "a"), (10, "b"), (20, "a")];
        let rows: Vec<_> = rows.iter().map(|&(ts, s)| (ts, Some(s))).collect();
        assert_eq!(
            grouped(&rows),
            vec![
                ("dt=1970-01-01/hour=00/service=a".to_string(), vec![0, 3]),
                ("dt=1970-01-01/hour=01/service=a".to_string(), vec![1]),
                ("dt=1970-01-01/hour=00/service=b".to_string(), vec![2]),
            ]
        );
    }

    #[test]
    fn a_service_column_shorter_than_the_batch_reads_as_unknown() {
        let mut b = EventBatch::default();
        b.ts.extend([0, 1]);
        b.service.push("a");
        let paths: Vec<String> = partition_rows(&b)
            .into_iter()
            .map(|(k, _)| k.path())
            .collect();
        assert_eq!(
            paths,
            [
                "dt=1970-01-01/hour=00/service=a",
                "dt=1970-01-01/hour=00/service=unknown"
            ]
        );
    }

    #[test]
    fn runs_of_one_partition_and_null_services_group_too() {
        let rows = [
            (0, Some("a")),
            (1, Some("a")),
            (2, None),
            (3, Some("unknown")),
            (4, Some("a")),
            (5, Some("a")),
            (3_600_000, Some("a")),
            (6, Some("a")),
        ];
        let a = |rows: Vec<u32>| ("dt=1970-01-01/hour=00/service=a".to_string(), rows);
        assert_eq!(
            grouped(&rows),
            vec![
                a(vec![0, 1, 4, 5, 7]),
                (
                    "dt=1970-01-01/hour=00/service=unknown".to_string(),
                    vec![2, 3]
                ),
                ("dt=1970-01-01/hour=01/service=a".to_string(), vec![6]),
            ]
        );
    }
}
