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
            ]))
        })
        .clone()
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
    ];
    RecordBatch::try_new(logs_file_schema(), columns)
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
