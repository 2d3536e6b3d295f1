//! The lake's Arrow schema and the conversion from [`EventBatch`].
//!
//! `service` is a Hive partition column (`service=NAME/` in the path), so it is
//! not stored inside the files: readers (DuckDB, pyarrow, Athena, DataFusion) get
//! it from the path, and no reader sees the column twice.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::event::{EventBatch, StrColumn};

/// Time zone of the timestamp columns.
pub const UTC: &str = "UTC";

/// Columns stored in each Parquet file, in order.
///
/// ```
/// let schema = spate_operators::sinks::lake::schema::logs_file_schema();
/// assert_eq!(schema.field(0).name(), "event_id");
/// assert!(schema.field_with_name("service").is_err()); // a partition column
/// ```
pub fn logs_file_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let ts = DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()));
            let tag = Field::new("item", DataType::Utf8, false);
            Arc::new(Schema::new(vec![
                Field::new("event_id", DataType::Utf8, false),
                Field::new("ts", ts.clone(), false),
                Field::new("ingest_ts", ts, false),
                Field::new("host", DataType::Utf8, true),
                Field::new("source", DataType::Utf8, false),
                Field::new("log_group", DataType::Utf8, true),
                Field::new("log_stream", DataType::Utf8, true),
                Field::new("severity", DataType::Utf8, false),
                Field::new("tags", DataType::List(Arc::new(tag)), false),
                Field::new("status", DataType::Int32, true),
                Field::new("client_ip", DataType::Utf8, true),
                Field::new("message", DataType::Utf8, false),
                Field::new("attrs", DataType::Utf8, true),
                // Last, so files written before it existed still match the
                // other columns by position; null in those files.
                Field::new("position", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Columns of the file schema before `position` was added (files and staged
/// segments written by older versions have only these).
const COLUMNS_BEFORE_POSITION: usize = 13;

/// Where in its source an event was read: its event id without the
/// `<source>:` prefix (`<shard>:<sequence>:<offset>` for Kinesis,
/// `<message id>:<offset>` for SQS, the byte offset for a file or the HTTP
/// journal, `@<generation>:<offset>` for a rotated file's later generation),
/// or the whole id when it does not start with the source (a CloudWatch Logs
/// event id).
///
/// ```
/// use spate_operators::sinks::lake::schema::position_of;
/// assert_eq!(position_of("sqs:orders:m-1:42", "sqs:orders"), "m-1:42");
/// assert_eq!(position_of("file:/var/log/a.log@1:7", "file:/var/log/a.log"), "@1:7");
/// assert_eq!(position_of("37981234", "kinesis:app"), "37981234");
/// ```
pub fn position_of<'a>(event_id: &'a str, source: &str) -> &'a str {
    let position = position_bytes(event_id.as_bytes(), source.as_bytes());
    // The cut is just after an ASCII byte (or at 0): a char boundary.
    &event_id[event_id.len() - position.len()..]
}

/// [`position_of`] on bytes.
fn position_bytes<'a>(event_id: &'a [u8], source: &[u8]) -> &'a [u8] {
    match event_id.strip_prefix(source) {
        Some([b':', rest @ ..]) => rest,
        Some(rest) if rest.first() == Some(&b'@') => rest,
        _ => event_id,
    }
}

/// The `position` column of rows given as (event id, source) pairs.
fn position_array<'a>(
    rows: usize,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    id_bytes: usize,
) -> Result<ArrayRef, ArrowError> {
    let mut data = Vec::with_capacity(id_bytes);
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    for (id, source) in pairs {
        data.extend_from_slice(position_bytes(id, source));
        offsets.push(data.len() as i32);
    }
    Ok(Arc::new(StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(data),
        None,
    )?))
}

/// Brings a record batch read from an older file or staged segment (without
/// the `position` column) to [`logs_file_schema`], deriving `position` from
/// `event_id` and `source`; a current batch passes through unchanged.
pub fn upgrade_file_batch(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = logs_file_schema();
    if batch.num_columns() == schema.fields().len() {
        return Ok(batch);
    }
    if batch.num_columns() != COLUMNS_BEFORE_POSITION {
        return Err(ArrowError::SchemaError(format!(
            "a lake file with {} columns (expected {} or {})",
            batch.num_columns(),
            COLUMNS_BEFORE_POSITION,
            schema.fields().len()
        )));
    }
    let strings = |name: &str| -> Result<StringArray, ArrowError> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .cloned()
            .ok_or_else(|| ArrowError::SchemaError(format!("a lake file without `{name}`")))
    };
    let (ids, sources) = (strings("event_id")?, strings("source")?);
    let position = position_array(
        batch.num_rows(),
        ids.iter()
            .zip(sources.iter())
            .map(|(id, s)| (id.unwrap_or("").as_bytes(), s.unwrap_or("").as_bytes())),
        ids.values().len(),
    )?;
    let mut columns = batch.columns().to_vec();
    columns.push(position);
    RecordBatch::try_new(schema, columns)
}

/// Moves a string column into an Arrow array without copying its bytes.
fn string_array(column: StrColumn, nullable: bool) -> Result<ArrayRef, ArrowError> {
    let StrColumn {
        data,
        offsets,
        validity,
    } = column;
    let nulls = match validity {
        Some(v) if nullable => Some(NullBuffer::from(v)),
        Some(_) => {
            return Err(ArrowError::InvalidArgumentError(
                "null in a non-nullable column".into(),
            ));
        }
        None => None,
    };
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(StringArray::try_new(
        offsets,
        Buffer::from_vec(data),
        nulls,
    )?))
}

/// Converts a decoded batch into a record batch of [`logs_file_schema`],
/// consuming it (string bytes move, they are not copied). `service` is dropped:
/// callers split by partition before converting.
pub fn to_record_batch(batch: EventBatch) -> Result<RecordBatch, ArrowError> {
    let rows = batch.len();
    let severity: StringArray = batch.severity.iter().map(|s| Some(s.as_str())).collect();
    let mut tags = ListBuilder::with_capacity(StringBuilder::new(), rows)
        .with_field(Arc::new(Field::new("item", DataType::Utf8, false)));
    for bits in &batch.tags {
        let mut bits = *bits;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            tags.values().append_value(&batch.tag_names[i]);
        }
        tags.append(true);
    }
    let status: Int32Array = batch
        .status
        .iter()
        .map(|&s| (s != 0).then_some(i32::from(s)))
        .collect();
    let position = position_array(
        rows,
        (0..rows).map(|i| (str_at(&batch.event_id, i), str_at(&batch.source, i))),
        batch.event_id.data.len(),
    )?;
    let ts = TimestampMillisecondArray::from(batch.ts).with_timezone(UTC);
    let ingest_ts = TimestampMillisecondArray::from(batch.ingest_ts).with_timezone(UTC);
    let columns: Vec<ArrayRef> = vec![
        string_array(batch.event_id, false)?,
        Arc::new(ts),
        Arc::new(ingest_ts),
        string_array(batch.host, true)?,
        string_array(batch.source, false)?,
        string_array(batch.log_group, true)?,
        string_array(batch.log_stream, true)?,
        Arc::new(severity),
        Arc::new(tags.finish()),
        Arc::new(status),
        string_array(batch.client_ip, true)?,
        string_array(batch.message, false)?,
        string_array(batch.attrs, true)?,
        position,
    ];
    RecordBatch::try_new(logs_file_schema(), columns)
}

/// The bytes of row `i` of a string column (empty for a null).
fn str_at(column: &StrColumn, i: usize) -> &[u8] {
    column.get_bytes(i).unwrap_or_default()
}

/// Rows for tests: one per id, `ts` from `ts0` up by 1 ms, all in `service`,
/// INFO, message `m`, source `t`.
#[cfg(test)]
pub(crate) fn test_rows(
    ids: impl IntoIterator<Item = String>,
    ts0: i64,
    service: &str,
) -> arrow_array::RecordBatch {
    let mut b = EventBatch::default();
    for (i, id) in ids.into_iter().enumerate() {
        b.event_id.push(&id);
        b.ts.push(ts0 + i as i64);
        b.ingest_ts.push(0);
        b.service.push(service);
        b.host.push_null();
        b.source.push("t");
        b.log_group.push_null();
        b.log_stream.push_null();
        b.severity.push(crate::event::Severity::Info);
        b.tags.push(0);
        b.status.push(0);
        b.client_ip.push_null();
        b.message.push("m");
        b.attrs.push_null();
    }
    to_record_batch(b).expect("test rows make a record batch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;
    use arrow_array::{Array, ListArray};

    pub(crate) fn sample_batch() -> EventBatch {
        let mut b = EventBatch::default();
        for (i, (svc, sev, status)) in
            [("api", Severity::Error, 503u16), ("web", Severity::Info, 0)]
                .into_iter()
                .enumerate()
        {
            b.event_id.push(&format!("test:{i}"));
            b.ts.push(1_763_892_000_000 + i as i64);
            b.ingest_ts.push(1_763_892_100_000);
            b.service.push(svc);
            b.host.push_opt((i == 0).then_some("10.0.0.1"));
            b.source.push("test");
            b.log_group.push_null();
            b.log_stream.push_null();
            b.severity.push(sev);
            let tags = if status >= 500 {
                1u64 << b.tag_index("http_5xx").unwrap()
            } else {
                0
            };
            b.tags.push(tags);
            b.status.push(status);
            b.client_ip.push_null();
            b.message
                .push(if i == 0 { "upstream failed" } else { "ok" });
            b.attrs.push_opt((i == 1).then_some(r#"{"k":1}"#));
        }
        b
    }

    #[test]
    fn converts_every_column() {
        let rb = to_record_batch(sample_batch()).unwrap();
        assert_eq!(rb.num_rows(), 2);
        let col = |name: &str| rb.column_by_name(name).unwrap().clone();
        let sev = col("severity");
        let sev = sev.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((sev.value(0), sev.value(1)), ("ERROR", "INFO"));
        let status = col("status");
        let status = status.as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(status.value(0), 503);
        assert!(status.is_null(1));
        let host = col("host");
        assert!(host.is_valid(0) && host.is_null(1));
        let tags = col("tags");
        let tags = tags.as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(tags.value_length(0), 1);
        assert_eq!(tags.value_length(1), 0);
        let attrs = col("attrs");
        let attrs = attrs.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(attrs.value(1), r#"{"k":1}"#);
        assert!(attrs.is_null(0));
        let position = col("position");
        let position = position.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((position.value(0), position.value(1)), ("0", "1"));
    }

    #[test]
    fn positions_strip_the_source_and_keep_foreign_ids_whole() {
        let mut b = sample_batch();
        b.event_id = StrColumn::default();
        b.source = StrColumn::default();
        for (id, source) in [
            ("kinesis:app:shardId-1:4955:12", "kinesis:app"),
            ("file:/a.log@2:7", "file:/a.log"),
        ] {
            b.event_id.push(id);
            b.source.push(source);
        }
        let rb = to_record_batch(b).unwrap();
        let position = rb.column_by_name("position").unwrap();
        let position = position.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(position.value(0), "shardId-1:4955:12");
        assert_eq!(position.value(1), "@2:7");
        assert_eq!(position_of("3798", "sqs:q"), "3798");
        assert_eq!(position_of("sqs:qq:1", "sqs:q"), "sqs:qq:1");
    }

    #[test]
    fn batches_of_older_files_gain_a_derived_position() {
        let current = to_record_batch(sample_batch()).unwrap();
        let old_schema = Arc::new(Schema::new(
            logs_file_schema().fields()[..COLUMNS_BEFORE_POSITION].to_vec(),
        ));
        let old = RecordBatch::try_new(
            old_schema,
            current.columns()[..COLUMNS_BEFORE_POSITION].to_vec(),
        )
        .unwrap();
        assert_eq!(upgrade_file_batch(old).unwrap(), current);
        assert_eq!(upgrade_file_batch(current.clone()).unwrap(), current);
        let narrow = current.project(&[0, 1]).unwrap();
        let err = upgrade_file_batch(narrow).unwrap_err().to_string();
        assert!(err.contains("a lake file with 2 columns"), "{err}");
    }

    #[test]
    fn null_in_required_column_is_an_error() {
        let mut b = sample_batch();
        b.message.push_null();
        for _ in 0..1 {
            b.event_id.push("x");
            b.ts.push(0);
            b.ingest_ts.push(0);
            b.service.push("s");
            b.host.push_null();
            b.source.push("t");
            b.log_group.push_null();
            b.log_stream.push_null();
            b.severity.push(Severity::Info);
            b.tags.push(0);
            b.status.push(0);
            b.client_ip.push_null();
            b.attrs.push_null();
        }
        assert!(to_record_batch(b).is_err());
    }
}
