//! `spate hot recent|alerts`: read the embedded hot store of a data dir (while
//! `spate run` writes it, or after).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use spate_operators::event::Severity;
use spate_operators::sinks::hot::{HotStore, RecentQuery};

use crate::config::SpateConfig;

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

/// `spate hot recent`.
pub fn recent(
    source: HotSource<'_>,
    service: Option<String>,
    severity: Option<Severity>,
    since: Duration,
    limit: usize,
    json: bool,
) -> Result<String> {
    let query = RecentQuery {
        service,
        min_severity: severity,
        since_ms: since_ms(since),
        until_ms: None,
        limit,
    };
    let events = match source {
        HotSource::Embedded(path) => HotStore::open_read_only(path)?.recent(&query)?,
        HotSource::Dynamo(config) => {
            let (runtime, store) = dynamo_store(config)?;
            runtime.block_on(store.recent(&query))?
        }
    };
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    if json {
        return Ok(rows.iter().map(|r| format!("{r}\n")).collect());
    }
    if rows.is_empty() {
        return Ok("no events\n".to_string());
    }
    let mut out = String::new();
    for r in &rows {
        out += &format!(
            "{}  {:<8}  {:<16}  {}\n",
            text(r, "time"),
            text(r, "severity"),
            text(r, "service"),
            text(r, "message").replace('\n', " ")
        );
    }
    Ok(out)
}

/// `spate hot alerts`.
pub fn alerts(source: HotSource<'_>, since: Duration, limit: usize, json: bool) -> Result<String> {
    let alerts = match source {
        HotSource::Embedded(path) => {
            HotStore::open_read_only(path)?.alerts(since_ms(since), None, limit)?
        }
        HotSource::Dynamo(config) => {
            let (runtime, store) = dynamo_store(config)?;
            runtime.block_on(store.alerts(since_ms(since), None, limit))?
        }
    };
    if json {
        let mut out = String::new();
        for a in &alerts {
            out += &serde_json::to_string(a)?;
            out.push('\n');
        }
        return Ok(out);
    }
    if alerts.is_empty() {
        return Ok("no alerts\n".to_string());
    }
    let mut out = String::new();
    for a in &alerts {
        out += &format!(
            "{}  {:<8}  {:<8}  {:<12}  {:<16}  {}\n",
            spate_operators::sinks::hot::query::rfc3339_ms(a.raised_at_ms),
            a.state.as_str(),
            a.severity,
            a.rule,
            a.service,
            a.message
        );
    }
    Ok(out)
}

fn text(row: &serde_json::Value, key: &str) -> String {
    match &row[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
