//! How `loadgen` prints its reports (`--format table|json|ndjson|csv`, as
//! `spate` does): `table` is the report's own text, `json` and `ndjson` the
//! report as one JSON object on one line (what `verify --send-report`
//! reads), `csv` a header line and one row of the report's top-level
//! fields (nested ones as JSON).

use std::io::{self, Write};

use serde_json::Value;

/// `--format` of `loadgen send`, `verify` and `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// The report as text.
    #[default]
    Table,
    /// One JSON object.
    Json,
    /// One JSON object on one line.
    Ndjson,
    /// A header line and one row.
    Csv,
}

impl ReportFormat {
    /// `--format`, or json when the legacy `--json` flag is given.
    pub fn or_json(self, json: bool) -> Self {
        if json { ReportFormat::Json } else { self }
    }
}

/// Writes `report` in `format`; `text` is its `table` form.
pub fn write_report(
    out: &mut dyn Write,
    format: ReportFormat,
    report: &Value,
    text: &str,
) -> io::Result<()> {
    match format {
        ReportFormat::Table => writeln!(out, "{}", text.trim_end()),
        ReportFormat::Json | ReportFormat::Ndjson => writeln!(out, "{report}"),
        ReportFormat::Csv => {
            let empty = serde_json::Map::new();
            let fields = report.as_object().unwrap_or(&empty);
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(fields.keys()).map_err(io::Error::other)?;
            csv.write_record(fields.values().map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            }))
            .map_err(io::Error::other)?;
            csv.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(format: ReportFormat) -> String {
        let report =
            json!({"run_id": "r-1", "sent": 10, "note": "a, \"b\"", "latency": {"p50": 1}});
        let mut out = Vec::new();
        write_report(&mut out, format, &report, "10 sent\n").unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format_prints_the_report() {
        assert_eq!(render(ReportFormat::Table), "10 sent\n");
        let json = render(ReportFormat::Json);
        assert_eq!(json.lines().count(), 1);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["sent"], 10);
        assert_eq!(render(ReportFormat::Ndjson), json);
        assert_eq!(
            render(ReportFormat::Csv),
            "latency,note,run_id,sent\n\"{\"\"p50\"\":1}\",\"a, \"\"b\"\"\",r-1,10\n"
        );
        assert_eq!(ReportFormat::Csv.or_json(true), ReportFormat::Json);
        assert_eq!(ReportFormat::Csv.or_json(false), ReportFormat::Csv);
    }
}
