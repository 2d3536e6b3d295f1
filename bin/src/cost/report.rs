//! Printing a bill: `table`, `json`, `ndjson` and `csv`.

use serde_json::Value;

use super::bill::Bill;
use crate::output::Format;

/// Columns of a line item in `ndjson` and `csv`.
const COLUMNS: [&str; 8] = [
    "service",
    "item",
    "quantity",
    "unit",
    "unit_usd",
    "usd_per_month",
    "scope",
    "basis",
];

/// Prints `bill` in `format`: `table` the lines, totals and inputs as text;
/// `json` one object (`items`, the totals, `inputs`); `ndjson` and `csv` a
/// row per line item, then a `total` row.
pub fn write(
    out: &mut dyn std::io::Write,
    format: Format,
    bill: &Bill,
    inputs: &[(String, Value)],
) -> std::io::Result<()> {
    match format {
        Format::Table => out.write_all(render(bill, inputs).as_bytes()),
        Format::Json => {
            let report = serde_json::json!({
                "items": bill.items,
                "total_usd_per_month": bill.total_usd_per_month,
                "spate_usd_per_month": bill.spate_usd_per_month,
                "spate_usd_per_billion_events": bill.spate_usd_per_billion_events,
                "notes": bill.notes,
                "inputs": inputs.iter().cloned().collect::<serde_json::Map<_, _>>(),
            });
            crate::output::write_report(out, format, &report, String::new)
        }
        Format::Ndjson | Format::Csv => {
            let mut rows: Vec<Value> = bill
                .items
                .iter()
                .map(|i| serde_json::to_value(i).unwrap_or_default())
                .collect();
            rows.push(serde_json::json!({
                "service": "total",
                "usd_per_month": bill.total_usd_per_month,
                "basis": format!("Spate's lines: {:.2} USD a month", bill.spate_usd_per_month),
            }));
            crate::output::write_objects(out, format, &COLUMNS, &rows)
        }
    }
}

/// The `table` text: the lines, the totals, then every input.
pub fn render(bill: &Bill, inputs: &[(String, Value)]) -> String {
    let columns = [
        "service",
        "item",
        "quantity",
        "unit",
        "USD/unit",
        "USD/month",
        "scope",
    ];
    let rows: Vec<Vec<String>> = bill
        .items
        .iter()
        .map(|i| {
            vec![
                i.service.to_string(),
                i.item.to_string(),
                format!("{:.4}", i.quantity),
                i.unit.to_string(),
                i.unit_usd.to_string(),
                format!("{:.2}", i.usd_per_month),
                format!("{:?}", i.scope).to_lowercase(),
            ]
        })
        .collect();
    let mut out = crate::output::text_table(&columns, &rows);
    out.push_str(&format!(
        "\ntotal {:.2} USD/month; Spate's lines {:.2} USD/month ({:.2} USD per billion events)\n",
        bill.total_usd_per_month, bill.spate_usd_per_month, bill.spate_usd_per_billion_events
    ));
    for note in &bill.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str("\ninputs:\n");
    for (name, value) in inputs {
        match value {
            Value::String(text) => out.push_str(&format!("  {name} = {text}\n")),
            other => out.push_str(&format!("  {name} = {other}\n")),
        }
    }
    out
}
