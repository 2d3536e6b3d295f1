//! `spate hot recent|alerts`: read the embedded hot store of a data dir (while
//! `spate run` writes it, or after).

use std::path::Path;
use std::time::Duration;

use std::io::Write;

use anyhow::Result;
use spate_operators::event::Severity;
use spate_operators::sinks::hot::query::rfc3339_ms;
use spate_operators::sinks::hot::{HotStore, RecentQuery};

use crate::config::SpateConfig;
use crate::output::{Format, write_objects};

/// Where the hot store of `data_dir` is under `config`.
pub fn hot_path(config: &SpateConfig, data_dir: &Path) -> std::path::PathBuf {
    config
        .hot
        .path
        .clone()
        .unwrap_or_else(|| data_dir.join("hot.db"))
}

fn since_ms(since: Duration) -> i64 {
    spate_operators::event::wall_clock_ms() - since.as_millis() as i64
}

/// Parses a severity name as the lake writes it (case-insensitive).
pub fn parse_severity(text: &str) -> Result<Severity> {
    Ok(text.parse::<Severity>()?)
}

/// Where `spate hot` reads: the embedded store of the data dir, or DynamoDB
/// when the config has `[hot_dynamodb]`.
pub enum HotSource<'a> {
    /// The SQLite file.
    Embedded(&'a Path),
    /// The DynamoDB table (the config names it and the AWS settings).
    Dynamo(&'a SpateConfig),
}

fn dynamo_store(
    config: &SpateConfig,
) -> Result<(
    tokio::runtime::Runtime,
    spate_operators::sinks::dynamo_hot::DynamoHotStore,
)> {
    let hot = config
        .hot_dynamodb
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no [hot_dynamodb] in the config"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = runtime.block_on(async {
        let sdk = config.aws.load().await;
        spate_operators::sinks::dynamo_hot::DynamoHotStore::new(
            config.aws.dynamodb_client(&sdk),
            hot,
        )
    })?;
    Ok((runtime, store))
}

/// Fields of `spate hot recent` rows in every format but `table`.
pub const EVENT_COLUMNS: [&str; 14] = [
    "time",
    "ts_ms",
    "service",
    "severity",
    "host",
    "source",
    "log_group",
    "log_stream",
    "status",
    "client_ip",
    "tags",
    "message",
    "attrs",
    "event_id",
];

/// Columns of `spate hot recent --format table`.
pub const EVENT_TABLE_COLUMNS: [&str; 4] = ["time", "severity", "service", "message"];

/// Fields of `spate hot alerts` rows in every format but `table`.
pub const ALERT_COLUMNS: [&str; 12] = [
    "raised_at",
    "raised_at_ms",
    "state",
    "severity",
    "rule",
    "service",
    "message",
    "value",
    "threshold",
    "window_start_ms",
    "window_end_ms",
    "id",
];

/// Columns of `spate hot alerts --format table`.
pub const ALERT_TABLE_COLUMNS: [&str; 6] = [
    "raised_at",
    "state",
    "severity",
    "rule",
    "service",
    "message",
];

/// Writes hot rows (events or alerts as JSON objects) in `format`: the
/// `table` columns in a table, every column otherwise.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    rows: &[serde_json::Value],
    table_columns: &[&str],
    columns: &[&str],
) -> std::io::Result<()> {
    let columns = match format {
        Format::Table => table_columns,
        _ => columns,
    };
    write_objects(out, format, columns, rows)
}

/// `spate hot recent`: the events, newest first, as JSON objects.
pub fn recent(
    source: HotSource<'_>,
    service: Option<String>,
    severity: Option<Severity>,
    since: Duration,
    limit: usize,
) -> Result<Vec<serde_json::Value>> {
    let query = RecentQuery {
        service,
        min_severity: severity,
        since_ms: since_ms(since),
        until_ms: None,
        limit,
    };
    let events = match source {
        HotSource::Embedded(path) => open(path)?.recent(&query)?,
        HotSource::Dynamo(config) => {
            let (runtime, store) = dynamo_store(config)?;
            runtime.block_on(store.recent(&query))?
        }
    };
    Ok(events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?)
}

/// `spate hot alerts`: the notices, newest first, as JSON objects.
pub fn alerts(
    source: HotSource<'_>,
    since: Duration,
    limit: usize,
) -> Result<Vec<serde_json::Value>> {
    let alerts = match source {
        HotSource::Embedded(path) => open(path)?.alerts(since_ms(since), None, limit)?,
        HotSource::Dynamo(config) => {
            let (runtime, store) = dynamo_store(config)?;
            runtime.block_on(store.alerts(since_ms(since), None, limit))?
        }
    };
    alerts
        .iter()
        .map(|a| {
            let mut row = serde_json::to_value(a)?;
            row["raised_at"] = rfc3339_ms(a.raised_at_ms).into();
            Ok(row)
        })
        .collect()
}

/// What `spate hot recent` says (on stderr) when retention has deleted
/// events from the embedded store: how many, when last, and the setting.
pub fn expiry_note(source: &HotSource<'_>, config: &SpateConfig) -> Result<Option<String>> {
    let HotSource::Embedded(path) = source else {
        // DynamoDB deletes by TTL and keeps no count.
        return Ok(None);
    };
    Ok(open(path)?.expired()?.map(|expired| {
        format!(
            "{} events expired by retention so far, the last at {} (hot.retention = {}h from {} time)",
            expired.events,
            rfc3339_ms(expired.last_ms),
            config.hot.retention_hours,
            config.hot.retention_from.as_str(),
        )
    }))
}

fn open(path: &Path) -> Result<HotStore> {
    Ok(HotStore::open_read_only(path)?)
}
