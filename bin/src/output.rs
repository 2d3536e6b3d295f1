//! How every `spate` subcommand prints data and reports: one `--format
//! table|json|ndjson|csv`, rendered here.
//!
//! Data is rows of JSON values under named columns:
//! - `table`: aligned columns under a header row, two spaces apart; cells
//!   are strings as they are (line breaks and tabs as spaces), lists and
//!   objects as JSON, nulls empty. No rows: the header and `(0 rows)`.
//! - `json`: one JSON array of objects keyed by column.
//! - `ndjson`: one JSON object per line.
//! - `csv`: a header line, then one line per row, quoted per RFC 4180 where
//!   needed; lists and objects as JSON, nulls empty.
//!
//! A report (one object, such as `spate ingest`'s summary) prints as its
//! own text in `table`, as the object in `json` and `ndjson` (one line), and
//! as one header line and one row of its fields in `csv`
//! ([`write_report`]).
//!
//! Output goes to a writer and fails with the writer: a reader that went
//! away (`spate query | head -1`) ends the command quietly ([`is_broken_pipe`]).

use std::io::{self, Write};

use serde_json::{Map, Value};

/// How a subcommand prints its data (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns under a header row.
    #[default]
    Table,
    /// One JSON array of objects (a report: one object).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// CSV with a header line.
    Csv,
}

impl Format {
    /// The format chosen by `--format`, or by a legacy flag (`--json`) that
    /// asked for `legacy`.
    pub fn or_legacy(self, legacy_flag: bool, legacy: Format) -> Format {
        if legacy_flag { legacy } else { self }
    }
}

/// Writes `rows` (cells in the order of `columns`) in `format`.
pub fn write_rows(
    out: &mut dyn Write,
    format: Format,
    columns: &[String],
    rows: &[Vec<Value>],
) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table(columns, rows).as_bytes()),
        Format::Json => {
            let objects: Vec<Value> = rows.iter().map(|r| object(columns, r)).collect();
            serde_json::to_writer(&mut *out, &objects)?;
            writeln!(out)
        }
        Format::Ndjson => {
            for row in rows {
                serde_json::to_writer(&mut *out, &object(columns, row))?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(columns).map_err(csv_error)?;
            for row in rows {
                csv.write_record(row.iter().map(csv_cell))
                    .map_err(csv_error)?;
            }
            csv.flush()
        }
    }
}

/// Writes JSON objects as rows of `columns` (each column the object's field
/// of that name; absent fields are null).
pub fn write_objects(
    out: &mut dyn Write,
    format: Format,
    columns: &[&str],
    objects: &[Value],
) -> io::Result<()> {
    let rows: Vec<Vec<Value>> = objects
        .iter()
        .map(|o| {
            columns
                .iter()
                .map(|c| o.get(*c).cloned().unwrap_or(Value::Null))
                .collect()
        })
        .collect();
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    write_rows(out, format, &columns, &rows)
}

/// Writes one report: `table` (its own text) in `table`, else `report` as
/// one JSON object (`json`, `ndjson`) or as a CSV header and row of its
/// top-level fields.
pub fn write_report(
    out: &mut dyn Write,
    format: Format,
    report: &Value,
    table: impl FnOnce() -> String,
) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table().as_bytes()),
        Format::Json | Format::Ndjson => {
            serde_json::to_writer(&mut *out, report)?;
            writeln!(out)
        }
        Format::Csv => {
            let (columns, row): (Vec<String>, Vec<Value>) = match report {
                Value::Object(fields) => fields.iter().map(|(k, v)| (k.clone(), v.clone())).unzip(),
                other => (vec!["value".to_string()], vec![other.clone()]),
            };
            write_rows(out, format, &columns, &[row])
        }
    }
}

/// Whether `err` is a write to a reader that went away (`| head`): not a
/// failure of the command.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

/// One row as a JSON object keyed by column name.
pub fn object(columns: &[String], row: &[Value]) -> Value {
    Value::Object(
        columns
            .iter()
            .cloned()
            .zip(row.iter().cloned())
            .collect::<Map<String, Value>>(),
    )
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// A cell as a CSV field: null is empty, strings as they are, the rest as JSON.
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A cell as table text: on one line.
fn table_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
    }
}

/// Rows of JSON values as a [`text_table`]; no rows: the header and
/// `(0 rows)`.
fn table(columns: &[String], rows: &[Vec<Value>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(table_cell).collect())
        .collect();
    let mut out = text_table(columns, &cells);
    if rows.is_empty() {
        out.push_str("(0 rows)\n");
    }
    out
}

/// Left-aligned columns two spaces apart under a header row, each line
/// without trailing blanks.
pub fn text_table(columns: &[impl AsRef<str>], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([columns[i].as_ref().chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(&mut columns.iter().map(AsRef::as_ref));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn columns() -> Vec<String> {
        ["ts", "status", "tags", "message"]
            .map(String::from)
            .to_vec()
    }

    fn rows() -> Vec<Vec<Value>> {
        vec![
            vec![
                json!("2026-11-23T10:00:00.123Z"),
                json!(503),
                json!(["http_5xx"]),
                json!("a, \"quoted\"\nline"),
            ],
            vec![
                json!("2026-11-23T10:00:01Z"),
                Value::Null,
                json!([]),
                json!("plain"),
            ],
        ]
    }

    fn render(format: Format, rows: &[Vec<Value>]) -> String {
        let mut out = Vec::new();
        write_rows(&mut out, format, &columns(), rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn table_has_a_header_and_aligned_columns() {
        assert_eq!(
            render(Format::Table, &rows()),
            "ts                        status  tags          message\n\
             2026-11-23T10:00:00.123Z  503     [\"http_5xx\"]  a, \"quoted\" line\n\
             2026-11-23T10:00:01Z              []            plain\n"
        );
        assert_eq!(
            render(Format::Table, &[]),
            "ts  status  tags  message\n(0 rows)\n"
        );
    }

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks() {
        assert_eq!(
            render(Format::Csv, &rows()),
            "ts,status,tags,message\n\
             2026-11-23T10:00:00.123Z,503,\"[\"\"http_5xx\"\"]\",\"a, \"\"quoted\"\"\nline\"\n\
             2026-11-23T10:00:01Z,,[],plain\n"
        );
        assert_eq!(render(Format::Csv, &[]), "ts,status,tags,message\n");
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let text = render(Format::Ndjson, &rows());
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "a, \"quoted\"\nline");
        assert_eq!(lines[0]["tags"], json!(["http_5xx"]));
        assert_eq!(lines[1]["status"], Value::Null);
        assert_eq!(render(Format::Ndjson, &[]), "");
    }

    #[test]
    fn json_is_one_array_of_objects() {
        let all: Value = serde_json::from_str(&render(Format::Json, &rows())).unwrap();
        assert_eq!(all[0]["status"], 503);
        assert_eq!(all[1]["message"], "plain");
        assert_eq!(render(Format::Json, &[]), "[]\n");
    }

    #[test]
    fn objects_become_rows_of_the_named_columns() {
        let mut out = Vec::new();
        let objects = [
            json!({"service": "api", "n": 2, "extra": true}),
            json!({"n": 3}),
        ];
        write_objects(&mut out, Format::Csv, &["service", "n"], &objects).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "service,n\napi,2\n,3\n");
    }

    #[test]
    fn a_report_is_its_text_or_one_object() {
        let report = json!({"events": 24, "file": "a,b"});
        let render = |format| {
            let mut out = Vec::new();
            write_report(&mut out, format, &report, || "24 events\n".into()).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(render(Format::Table), "24 events\n");
        assert_eq!(render(Format::Json), "{\"events\":24,\"file\":\"a,b\"}\n");
        assert_eq!(render(Format::Ndjson), render(Format::Json));
        assert_eq!(render(Format::Csv), "events,file\n24,\"a,b\"\n");
    }

    #[test]
    fn legacy_flags_pick_their_format() {
        assert_eq!(Format::Csv.or_legacy(false, Format::Ndjson), Format::Csv);
        assert_eq!(
            Format::Table.or_legacy(true, Format::Ndjson),
            Format::Ndjson
        );
    }

    #[test]
    fn broken_pipes_are_recognised_through_context() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
