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

/// `spate hot recent`.
pub fn recent(
    store_path: &Path,
    service: Option<String>,
    severity: Option<Severity>,
    since: Duration,
    limit: usize,
    json: bool,
) -> Result<String> {
    let store = HotStore::open_read_only(store_path)?;
    let events = store.recent(&RecentQuery {
        service,
        min_severity: severity,
        since_ms: since_ms(since),
        until_ms: None,
        limit,
    })?;
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
pub fn alerts(store_path: &Path, since: Duration, limit: usize, json: bool) -> Result<String> {
    let store = HotStore::open_read_only(store_path)?;
    let alerts = store.alerts(since_ms(since), None, limit)?;
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
