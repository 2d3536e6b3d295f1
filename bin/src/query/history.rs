//! The `alerts` and `windows` tables: alert notices and closed windows from
//! the hot store, as Arrow record batches.
//!
//! The records come from a [`HistorySource`] (the embedded hot store, or
//! DynamoDB with `[hot_dynamodb]`; fixed records in tests), read when a query
//! names the table.
//!
//! `alerts` columns: `id`, `rule`, `service`, `state` (`firing`/`resolved`),
//! `severity`, `window_start`, `window_end`, `raised_at` (timestamps, ms, UTC),
//! `value`, `threshold` (float64), `message`.
//!
//! `windows` columns: `window_start`, `window_end` (timestamps, ms, UTC),
//! `service`, `events`, `info`, `warning`, `error`, `critical` (int64 counts)
//! and `tags` (JSON object text, tag → count, e.g. `{"http_5xx":3}`).

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use spate_operators::alerts::record::{AlertRecord, WindowRecord};
use spate_operators::sinks::lake::schema::UTC;

/// Where the `alerts` and `windows` tables get their rows.
///
/// Called from a blocking thread, once per query that names the table.
pub trait HistorySource: Send + Sync + 'static {
    /// Alert notices, any order.
    fn alerts(&self) -> Result<Vec<AlertRecord>, String>;
    /// Closed windows, any order.
    fn windows(&self) -> Result<Vec<WindowRecord>, String>;
    /// Alert notices raised at or after `since_ms`, any order (the stores
    /// read only that part).
    fn alerts_since(&self, since_ms: i64) -> Result<Vec<AlertRecord>, String> {
        let mut alerts = self.alerts()?;
        alerts.retain(|a| a.raised_at_ms >= since_ms);
        Ok(alerts)
    }
}

/// No history: both tables are empty (no hot store configured).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

impl HistorySource for NoHistory {
    fn alerts(&self) -> Result<Vec<AlertRecord>, String> {
        Ok(Vec::new())
    }
    fn windows(&self) -> Result<Vec<WindowRecord>, String> {
        Ok(Vec::new())
    }
}

/// The embedded hot store of `spate run` (read-only; a missing store is an
/// empty history, not an error: nothing has run yet).
#[derive(Debug, Clone)]
pub struct HotHistory {
    path: std::path::PathBuf,
}

impl HotHistory {
    /// The hot store at `path`.
    pub fn new(path: std::path::PathBuf) -> Self {
        HotHistory { path }
    }

    fn store(&self) -> Result<Option<spate_operators::sinks::hot::HotStore>, String> {
        if !self.path.exists() {
            return Ok(None);
        }
        spate_operators::sinks::hot::HotStore::open_read_only(&self.path)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

impl HistorySource for HotHistory {
    fn alerts(&self) -> Result<Vec<AlertRecord>, String> {
        match self.store()? {
            Some(store) => store
                .alerts(i64::MIN, None, usize::MAX >> 1)
                .map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
    fn windows(&self) -> Result<Vec<WindowRecord>, String> {
        match self.store()? {
            Some(store) => store
                .windows(i64::MIN, None, usize::MAX >> 1)
                .map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
    fn alerts_since(&self, since_ms: i64) -> Result<Vec<AlertRecord>, String> {
        match self.store()? {
            Some(store) => store
                .alerts(since_ms, None, usize::MAX >> 1)
                .map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        }
    }
}

/// The DynamoDB hot store (`[hot_dynamodb]`): alerts from the day
/// partitions of their retention, windows from a Scan of the `win#` items.
#[derive(Debug, Clone)]
pub struct DynamoHistory {
    store: spate_operators::sinks::dynamo_hot::DynamoHotStore,
}

impl DynamoHistory {
    /// The history in `store`'s table.
    pub fn new(store: spate_operators::sinks::dynamo_hot::DynamoHotStore) -> Self {
        DynamoHistory { store }
    }
}

impl HistorySource for DynamoHistory {
    fn alerts(&self) -> Result<Vec<AlertRecord>, String> {
        self.store.all_alerts_blocking()
    }
    fn windows(&self) -> Result<Vec<WindowRecord>, String> {
        self.store.all_windows_blocking()
    }
    fn alerts_since(&self, since_ms: i64) -> Result<Vec<AlertRecord>, String> {
        self.store.alerts_since_blocking(since_ms)
    }
}

/// Fixed records, e.g. a snapshot or test data.
#[allow(
    dead_code,
    reason = "for callers with records at hand (tests, snapshots)"
)]
#[derive(Debug, Clone, Default)]
pub struct StaticHistory {
    /// The `alerts` rows.
    pub alerts: Vec<AlertRecord>,
    /// The `windows` rows.
    pub windows: Vec<WindowRecord>,
}

impl HistorySource for StaticHistory {
    fn alerts(&self) -> Result<Vec<AlertRecord>, String> {
        Ok(self.alerts.clone())
    }
    fn windows(&self) -> Result<Vec<WindowRecord>, String> {
        Ok(self.windows.clone())
    }
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

/// Schema of the `alerts` table.
pub fn alerts_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("rule", DataType::Utf8, false),
                Field::new("service", DataType::Utf8, false),
                Field::new("state", DataType::Utf8, false),
                Field::new("severity", DataType::Utf8, false),
                Field::new("window_start", timestamp(), false),
                Field::new("window_end", timestamp(), false),
                Field::new("raised_at", timestamp(), false),
                Field::new("value", DataType::Float64, false),
                Field::new("threshold", DataType::Float64, false),
                Field::new("message", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// Schema of the `windows` table.
pub fn windows_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("window_start", timestamp(), false),
                Field::new("window_end", timestamp(), false),
                Field::new("service", DataType::Utf8, false),
                Field::new("events", DataType::Int64, false),
                Field::new("info", DataType::Int64, false),
                Field::new("warning", DataType::Int64, false),
                Field::new("error", DataType::Int64, false),
                Field::new("critical", DataType::Int64, false),
                Field::new("tags", DataType::Utf8, false),
            ]))
        })
        .clone()
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from_iter_values(values).with_timezone(UTC))
}

fn counts(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        values.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
    ))
}

/// Alert notices as one batch of [`alerts_schema`].
pub fn alerts_batch(records: &[AlertRecord]) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<ArrayRef> = vec![
        strings(records.iter().map(|r| r.id.as_str())),
        strings(records.iter().map(|r| r.rule.as_str())),
        strings(records.iter().map(|r| r.service.as_str())),
        strings(records.iter().map(|r| r.state.as_str())),
        strings(records.iter().map(|r| r.severity.as_str())),
        timestamps(records.iter().map(|r| r.window_start_ms)),
        timestamps(records.iter().map(|r| r.window_end_ms)),
        timestamps(records.iter().map(|r| r.raised_at_ms)),
        Arc::new(Float64Array::from_iter_values(
            records.iter().map(|r| r.value),
        )),
        Arc::new(Float64Array::from_iter_values(
            records.iter().map(|r| r.threshold),
        )),
        strings(records.iter().map(|r| r.message.as_str())),
    ];
    RecordBatch::try_new(alerts_schema(), columns)
}

/// Closed windows as one batch of [`windows_schema`].
pub fn windows_batch(records: &[WindowRecord]) -> Result<RecordBatch, ArrowError> {
    let tags: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(&r.tags).unwrap_or_else(|_| "{}".into()))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        timestamps(records.iter().map(|r| r.window_start_ms)),
        timestamps(records.iter().map(|r| r.window_end_ms)),
        strings(records.iter().map(|r| r.service.as_str())),
        counts(records.iter().map(|r| r.events)),
        counts(records.iter().map(|r| r.severity[0])),
        counts(records.iter().map(|r| r.severity[1])),
        counts(records.iter().map(|r| r.severity[2])),
        counts(records.iter().map(|r| r.severity[3])),
        strings(tags.iter().map(String::as_str)),
    ];
    RecordBatch::try_new(windows_schema(), columns)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use datafusion::arrow::array::Array;
    use spate_operators::alerts::record::AlertState;
    use std::collections::BTreeMap;

    pub(crate) fn sample_alert(service: &str, state: AlertState) -> AlertRecord {
        AlertRecord {
            id: format!("error_burst:{service}:1000:{}", state.as_str()),
            rule: "error_burst".into(),
            service: service.into(),
            state,
            severity: "ERROR".into(),
            window_start_ms: 1_000,
            window_end_ms: 301_000,
            raised_at_ms: 302_500,
            value: 12.0,
            threshold: 10.0,
            message: format!("{service}: 12 errors in 5m"),
        }
    }

    pub(crate) fn sample_window(service: &str, severity: [u64; 4]) -> WindowRecord {
        WindowRecord {
            window_start_ms: 1_000,
            window_end_ms: 301_000,
            service: service.into(),
            events: severity.iter().sum(),
            severity,
            tags: BTreeMap::from([("http_5xx".to_string(), 3), ("failed_login".to_string(), 1)]),
        }
    }

    #[test]
    fn alerts_convert_column_by_column() {
        let batch = alerts_batch(&[
            sample_alert("api", AlertState::Firing),
            sample_alert("web", AlertState::Resolved),
        ])
        .unwrap();
        assert_eq!(batch.num_rows(), 2);
        let text = |name: &str, row: usize| {
            let a = batch.column_by_name(name).unwrap();
            let a = a.as_any().downcast_ref::<StringArray>().unwrap();
            a.value(row).to_string()
        };
        assert_eq!(text("state", 0), "firing");
        assert_eq!(text("state", 1), "resolved");
        assert_eq!(text("service", 1), "web");
        let raised = batch.column_by_name("raised_at").unwrap();
        let raised = raised
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(raised.value(0), 302_500);
        assert_eq!(raised.timezone(), Some(UTC));
        let value = batch.column_by_name("value").unwrap();
        let value = value.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(value.value(0), 12.0);
    }

    #[test]
    fn windows_have_a_column_per_severity_and_tags_as_json() {
        let batch = windows_batch(&[sample_window("api", [5, 4, 3, 2])]).unwrap();
        let count = |name: &str| {
            let a = batch.column_by_name(name).unwrap();
            a.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
        };
        assert_eq!(
            [
                count("events"),
                count("info"),
                count("warning"),
                count("error"),
                count("critical")
            ],
            [14, 5, 4, 3, 2]
        );
        let tags = batch.column_by_name("tags").unwrap();
        let tags = tags.as_any().downcast_ref::<StringArray>().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(tags.value(0)).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"failed_login": 1, "http_5xx": 3})
        );
    }

    #[test]
    fn no_records_is_an_empty_batch_of_the_schema() {
        let batch = windows_batch(&[]).unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.schema(), windows_schema());
        assert_eq!(alerts_batch(&[]).unwrap().column(0).len(), 0);
    }
}
