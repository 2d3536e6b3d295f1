//! Query results as JSON values, printed by [`crate::output`] as an aligned
//! table, CSV, a JSON array of objects, or one JSON object per line.
//!
//! Cells become JSON by type: numbers and booleans as themselves, strings as
//! strings, timestamps as RFC 3339 text (`2026-11-23T10:00:00.123Z`), lists as
//! arrays, structs as objects, nulls as `null`; anything else as its display
//! text.

use std::io::{self, Write};

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Float16Array, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

use crate::output::{Format, write_rows};

/// Rows of `batches` as JSON arrays, cells in column order.
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Value>>, ArrowError> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<Value>> = batch
            .columns()
            .iter()
            .map(|c| column_values(c.as_ref()))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[row].clone()).collect());
        }
    }
    Ok(rows)
}

/// Every cell of a column as a JSON value.
fn column_values(array: &dyn Array) -> Result<Vec<Value>, ArrowError> {
    macro_rules! numbers {
        ($t:ty, $conv:expr) => {{
            let a = array.as_any().downcast_ref::<$t>().expect("type checked");
            Ok(a.iter().map(|v| v.map_or(Value::Null, $conv)).collect())
        }};
    }
    let float = |v: f64| Number::from_f64(v).map_or(Value::Null, Value::Number);
    match array.data_type() {
        DataType::Null => Ok(vec![Value::Null; array.len()]),
        DataType::Boolean => numbers!(BooleanArray, Value::Bool),
        DataType::Int8 => numbers!(Int8Array, Value::from),
        DataType::Int16 => numbers!(Int16Array, Value::from),
        DataType::Int32 => numbers!(Int32Array, Value::from),
        DataType::Int64 => numbers!(Int64Array, Value::from),
        DataType::UInt8 => numbers!(UInt8Array, Value::from),
        DataType::UInt16 => numbers!(UInt16Array, Value::from),
        DataType::UInt32 => numbers!(UInt32Array, Value::from),
        DataType::UInt64 => numbers!(UInt64Array, Value::from),
        DataType::Float16 => numbers!(Float16Array, |v| float(f64::from(v))),
        DataType::Float32 => numbers!(Float32Array, |v| float(f64::from(v))),
        DataType::Float64 => numbers!(Float64Array, float),
        DataType::Utf8 => Ok(strings(array.as_string::<i32>().iter())),
        DataType::LargeUtf8 => Ok(strings(array.as_string::<i64>().iter())),
        DataType::Utf8View => Ok(strings(array.as_string_view().iter())),
        DataType::Dictionary(_, _) => column_values(cast(array, &DataType::Utf8)?.as_ref()),
        DataType::List(_) => lists(array.as_list::<i32>().iter(), array.len()),
        DataType::LargeList(_) => lists(array.as_list::<i64>().iter(), array.len()),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let columns: Vec<Vec<Value>> = s
                .columns()
                .iter()
                .map(|c| column_values(c.as_ref()))
                .collect::<Result<_, _>>()?;
            Ok((0..s.len())
                .map(|row| {
                    if s.is_null(row) {
                        return Value::Null;
                    }
                    let object: Map<String, Value> = fields
                        .iter()
                        .zip(&columns)
                        .map(|(f, c)| (f.name().clone(), c[row].clone()))
                        .collect();
                    Value::Object(object)
                })
                .collect())
        }
        _ => {
            // Timestamps, dates, decimals, intervals...: their display text.
            let options = FormatOptions::default().with_timestamp_tz_format(Some("%+"));
            let formatter = ArrayFormatter::try_new(array, &options)?;
            Ok((0..array.len())
                .map(|row| {
                    if array.is_null(row) {
                        Value::Null
                    } else {
                        Value::String(formatter.value(row).to_string())
                    }
                })
                .collect())
        }
    }
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    values
        .map(|v| v.map_or(Value::Null, |s| Value::String(s.to_string())))
        .collect()
}

fn lists(
    values: impl Iterator<Item = Option<std::sync::Arc<dyn Array>>>,
    len: usize,
) -> Result<Vec<Value>, ArrowError> {
    let mut out = Vec::with_capacity(len);
    for item in values {
        out.push(match item {
            Some(inner) => Value::Array(column_values(inner.as_ref())?),
            None => Value::Null,
        });
    }
    Ok(out)
}

/// Writes the result in `format` ([`crate::output`]): `columns` are the
/// names, `batches` the rows.
pub fn write_output(
    out: &mut dyn Write,
    format: Format,
    columns: &[String],
    batches: &[RecordBatch],
) -> io::Result<()> {
    let rows = json_rows(batches).map_err(|e| io::Error::other(e.to_string()))?;
    write_rows(out, format, columns, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, ListBuilder, StringArray, StringBuilder, TimestampMillisecondArray,
    };
    use std::sync::Arc;

    fn sample() -> RecordBatch {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.values().append_value("http_5xx");
        tags.append(true);
        tags.append(true);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "ts",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_795_428_000_123, 0])
                        .with_timezone("UTC"),
                ),
            ),
            ("status", Arc::new(Int32Array::from(vec![Some(503), None]))),
            ("tags", Arc::new(tags.finish())),
            (
                "message",
                Arc::new(StringArray::from(vec!["a, \"quoted\"\nline", "plain"])),
            ),
            ("rate", Arc::new(Float64Array::from(vec![0.5, f64::NAN]))),
        ];
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn names() -> Vec<String> {
        ["ts", "status", "tags", "message", "rate"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn cells_become_typed_json() {
        let rows = json_rows(&[sample()]).unwrap();
        assert_eq!(
            rows[0],
            vec![
                Value::from("2026-11-23T10:00:00.123+00:00"),
                Value::from(503),
                serde_json::json!(["http_5xx"]),
                Value::from("a, \"quoted\"\nline"),
                Value::from(0.5),
            ]
        );
        assert_eq!(rows[1][1], Value::Null);
        assert_eq!(rows[1][2], serde_json::json!([]));
        assert_eq!(rows[1][4], Value::Null, "NaN has no JSON form");
    }

    fn render(format: Format) -> String {
        let mut out = Vec::new();
        write_output(&mut out, format, &names(), &[sample()]).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn batches_print_through_the_shared_formats() {
        assert_eq!(
            render(Format::Csv),
            "ts,status,tags,message,rate\n\
             2026-11-23T10:00:00.123+00:00,503,\"[\"\"http_5xx\"\"]\",\"a, \"\"quoted\"\"\nline\",0.5\n\
             1970-01-01T00:00:00+00:00,,[],plain,\n"
        );
        let lines: Vec<Value> = render(Format::Ndjson)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tags"][0], "http_5xx");
        let table = render(Format::Table);
        assert!(table.starts_with("ts  "), "{table}");
        assert!(table.contains("  503  "), "{table}");
        let mut out = Vec::new();
        write_output(&mut out, Format::Table, &names(), &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ts  status  tags  message  rate\n(0 rows)\n"
        );
    }
}
