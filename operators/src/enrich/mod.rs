//! Enrichment from a reference table: host IP or CIDR → service, owner, contact.
//!
//! Rows whose `host` is an address inside a block of the table get the block's
//! `owner`, `contact` and extra columns added to `attrs`, and its `service`
//! when the event named none (or always, with `override_service`). The table is
//! a CSV or JSON-lines text (see [`table`]) in a local file or an S3 object
//! (`s3://bucket/key`).
//!
//! # Reloading
//!
//! Every `reload_interval` the table's source is checked (see [`source`]): a
//! local file by its modification time, an S3 object with a conditional GET on
//! the ETag of the version in force (`If-None-Match`, answered 304 while it is
//! unchanged). A new version is parsed off to the side and swapped in whole
//! ([`decide`]), so a batch is enriched from one version or the other, never a
//! mix. A new version that does not parse is logged and counted
//! (`spate_enrich_reload_errors_total`) and the last good table stays; the
//! broken version is remembered, so it is not parsed and counted again until
//! it changes. A source that cannot be reached is logged and counted the same
//! way. `spate_enrich_table_rows` and `spate_enrich_table_age_seconds` (since
//! the version in force was last modified) say what is in force.

mod error;
mod reload;
pub mod source;
pub mod table;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::error::EnrichError;
pub use self::reload::{Reload, decide};
use self::source::{Poll, TableSource};
use self::table::{HostInfo, ReferenceTable};
use crate::decode::write_json_str;
use crate::event::{EventBatch, StrColumn};

/// `[enrich]`: the reference table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// The reference table: a local file or an S3 object (`s3://bucket/key`),
    /// CSV with a header or JSON lines, mapping `cidr` (or `ip`) to `service`,
    /// `owner`, `contact` and any extra columns (added to `attrs`). No
    /// enrichment when absent. An S3 table is read with the `[aws]` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
    /// Replace the service an event names with the table's (default: only fill
    /// in events without one).
    #[serde(default)]
    pub override_service: bool,
    /// Seconds between checks of the table for a new version (a local file's
    /// modification time; an S3 object's ETag, with a conditional GET).
    #[serde(default = "default_reload_interval_secs")]
    pub reload_interval_secs: u64,
}

fn default_reload_interval_secs() -> u64 {
    30
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            table: None,
            override_service: false,
            reload_interval_secs: default_reload_interval_secs(),
        }
    }
}

impl EnrichConfig {
    /// Whether the table is an S3 object (and needs AWS clients).
    pub fn table_on_s3(&self) -> bool {
        self.table
            .as_ref()
            .is_some_and(|t| t.to_string_lossy().starts_with("s3://"))
    }
}

struct Loaded {
    /// The version in force, or the last broken one seen after it.
    version: Option<String>,
    modified_ms: Option<i64>,
    table: Arc<ReferenceTable>,
    /// When a worker last checked the source.
    last_check: Option<tokio::time::Instant>,
}

/// The shared, reloadable table; clones share it.
#[derive(Clone)]
pub struct Enricher {
    source: Arc<TableSource>,
    override_service: bool,
    default_service: Arc<str>,
    interval: Duration,
    loaded: Arc<Mutex<Loaded>>,
}

impl Enricher {
    /// Loads the configured local table; `None` when none is configured. An
    /// S3 table needs [`Enricher::load`].
    pub fn new(config: &EnrichConfig, default_service: &str) -> Result<Option<Self>, EnrichError> {
        let Some(path) = &config.table else {
            return Ok(None);
        };
        if config.table_on_s3() {
            return Err(EnrichError::Location {
                path: path.display().to_string(),
                reason: "an s3:// table is read with the AWS settings, at the start of `spate run` or `spate ingest`".into(),
            });
        }
        let source = TableSource::File(path.clone());
        let poll = source.poll_file(None);
        Self::from_first_poll(config, default_service, source, poll).map(Some)
    }

    /// Loads the configured table, local or on S3 (with `s3`); `None` when
    /// none is configured.
    pub async fn load(
        config: &EnrichConfig,
        default_service: &str,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Result<Option<Self>, EnrichError> {
        let Some(path) = &config.table else {
            return Ok(None);
        };
        let source = TableSource::new(path, s3)?;
        let poll = source.poll(None).await;
        Self::from_first_poll(config, default_service, source, poll).map(Some)
    }

    fn from_first_poll(
        config: &EnrichConfig,
        default_service: &str,
        source: TableSource,
        poll: Poll,
    ) -> Result<Self, EnrichError> {
        let path = source.to_string();
        let (version, modified_ms, table) = match decide(poll) {
            Reload::Swap {
                version,
                modified_ms,
                table,
            } => (Some(version), modified_ms, table),
            Reload::Reject { error, .. } => {
                return Err(EnrichError::Parse {
                    path,
                    source: error,
                });
            }
            Reload::Unreachable(reason) => return Err(EnrichError::Read { path, reason }),
            Reload::Keep => (None, None, ReferenceTable::default()),
        };
        let enricher = Enricher {
            source: Arc::new(source),
            override_service: config.override_service,
            default_service: Arc::from(default_service),
            interval: Duration::from_secs(config.reload_interval_secs.max(1)),
            loaded: Arc::new(Mutex::new(Loaded {
                version,
                modified_ms,
                table: Arc::new(table),
                last_check: None,
            })),
        };
        enricher.report_table();
        Ok(enricher)
    }

    /// How often workers check the table for a new version.
    pub fn reload_interval(&self) -> Duration {
        self.interval
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the source unless a worker sharing the table did within the
    /// last half interval; true when a new table was swapped in.
    pub async fn refresh(&self) -> bool {
        {
            let mut loaded = self.lock();
            let now = tokio::time::Instant::now();
            if loaded
                .last_check
                .is_some_and(|last| now.duration_since(last) < self.interval / 2)
            {
                self.report_table_locked(&loaded);
                return false;
            }
            loaded.last_check = Some(now);
        }
        self.reload_now().await
    }

    /// Checks the source now; true when a new table was swapped in. A broken
    /// or unreachable new version is logged and counted, and the old table
    /// kept.
    pub async fn reload_now(&self) -> bool {
        let version = self.lock().version.clone();
        let poll = self.source.poll(version.as_deref()).await;
        self.apply_reload(decide(poll))
    }

    /// Applies a decision to the table in force; true when it swapped.
    fn apply_reload(&self, reload: Reload) -> bool {
        let mut loaded = self.lock();
        let swapped = match reload {
            Reload::Keep => false,
            Reload::Swap {
                version,
                modified_ms,
                table,
            } => {
                tracing::info!(table = %self.source, version = %version, blocks = table.len(), "reference table reloaded");
                *loaded = Loaded {
                    version: Some(version),
                    modified_ms,
                    table: Arc::new(table),
                    last_check: loaded.last_check,
                };
                metrics::counter!("spate_enrich_reloads_total").increment(1);
                true
            }
            Reload::Reject { version, error } => {
                tracing::warn!(table = %self.source, version = %version, error = %error, "reference table not reloaded: the new version is broken; keeping the previous one");
                loaded.version = Some(version);
                metrics::counter!("spate_enrich_reload_errors_total").increment(1);
                false
            }
            Reload::Unreachable(reason) => {
                tracing::warn!(table = %self.source, error = %reason, "reference table not checked; keeping the one in force");
                metrics::counter!("spate_enrich_reload_errors_total").increment(1);
                false
            }
        };
        self.report_table_locked(&loaded);
        swapped
    }

    fn report_table(&self) {
        self.report_table_locked(&self.lock());
    }

    /// Sets the row-count and age gauges of the table in force.
    fn report_table_locked(&self, loaded: &Loaded) {
        metrics::gauge!("spate_enrich_table_rows").set(loaded.table.len() as f64);
        if let Some(modified_ms) = loaded.modified_ms {
            let age_ms = crate::event::wall_clock_ms()
                .saturating_sub(modified_ms)
                .max(0);
            metrics::gauge!("spate_enrich_table_age_seconds").set(age_ms as f64 / 1000.0);
        }
    }

    /// The table in force.
    pub fn table(&self) -> Arc<ReferenceTable> {
        self.lock().table.clone()
    }

    /// Enriches `batch` in place; returns the number of rows matched.
    pub fn apply(&self, batch: &mut EventBatch) -> usize {
        let table = self.table();
        if table.is_empty() {
            return 0;
        }
        let matches: Vec<Option<&HostInfo>> = (0..batch.len())
            .map(|row| {
                batch
                    .host
                    .get(row)
                    .and_then(|h| h.parse::<IpAddr>().ok())
                    .and_then(|ip| table.lookup(ip))
            })
            .collect();
        let matched = matches.iter().filter(|m| m.is_some()).count();
        if matched == 0 {
            return 0;
        }
        let mut service = StrColumn::default();
        let mut attrs = StrColumn::default();
        let mut scratch = String::new();
        for (row, info) in matches.iter().enumerate() {
            let current = batch.service.get(row).unwrap_or(&self.default_service);
            let new_service = info
                .and_then(|i| i.service.as_deref())
                .filter(|_| self.override_service || current == &*self.default_service);
            service.push(new_service.unwrap_or(current));
            let existing = batch.attrs.get(row);
            match info {
                Some(i) if i.has_attrs() => {
                    scratch.clear();
                    merge_attrs(&mut scratch, existing, i);
                    attrs.push(&scratch);
                }
                _ => attrs.push_opt(existing),
            }
        }
        batch.service = service;
        batch.attrs = attrs;
        metrics::counter!("spate_enrich_matched_total").increment(matched as u64);
        matched
    }
}

/// Adds `owner`, `contact` and the extra columns to a JSON object text (or
/// starts one).
fn merge_attrs(out: &mut String, existing: Option<&str>, info: &HostInfo) {
    let body = existing
        .map(str::trim)
        .filter(|e| e.starts_with('{') && e.ends_with('}'))
        .map(|e| e[1..e.len() - 1].trim());
    out.push('{');
    if let Some(body) = body.filter(|b| !b.is_empty()) {
        out.push_str(body);
        out.push(',');
    }
    let mut first = true;
    let named = [("owner", &info.owner), ("contact", &info.contact)];
    let named = named
        .into_iter()
        .filter_map(|(key, value)| Some((key, value.as_deref()?)));
    let extra = info.extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (key, value) in named.chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        write_json_str(out, key);
        out.push(':');
        write_json_str(out, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::SystemTime;

    use super::*;

    fn batch(rows: &[(Option<&str>, &str, Option<&str>)]) -> EventBatch {
        let mut b = EventBatch::default();
        for (host, service, attrs) in rows {
            b.ts.push(0);
            b.host.push_opt(*host);
            b.service.push(service);
            b.attrs.push_opt(*attrs);
        }
        b
    }

    fn enricher(dir: &Path, csv: &str, override_service: bool) -> Enricher {
        let path = dir.join("hosts.csv");
        std::fs::write(&path, csv).unwrap();
        let config = EnrichConfig {
            table: Some(path),
            override_service,
            ..EnrichConfig::default()
        };
        Enricher::new(&config, "unknown").unwrap().unwrap()
    }

    #[test]
    fn fills_service_and_adds_owner_and_contact() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(
            dir.path(),
            "cidr,service,owner,contact\n10.0.0.0/8,corp,ops,\"#ops\"\n",
            false,
        );
        let mut b = batch(&[
            (Some("10.1.2.3"), "unknown", None),
            (Some("10.1.2.4"), "api", Some(r#"{"k":1}"#)),
            (Some("web-1"), "web", Some("{}")),
            (None, "unknown", None),
        ]);
        assert_eq!(e.apply(&mut b), 2);
        assert_eq!(b.service.get(0), Some("corp"));
        assert_eq!(b.service.get(1), Some("api"), "a named service is kept");
        assert_eq!(
            b.attrs.get(0),
            Some(r##"{"owner":"ops","contact":"#ops"}"##)
        );
        assert_eq!(
            b.attrs.get(1),
            Some(r##"{"k":1,"owner":"ops","contact":"#ops"}"##)
        );
        assert_eq!(b.attrs.get(2), Some("{}"));
        assert_eq!((b.service.get(3), b.attrs.get(3)), (Some("unknown"), None));
    }

    #[test]
    fn extra_columns_go_to_attrs() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(
            dir.path(),
            "ip,service,rack,env\n192.0.2.1,edge,r7,prod\n",
            false,
        );
        let mut b = batch(&[(Some("192.0.2.1"), "unknown", Some(r#"{"k":1}"#))]);
        assert_eq!(e.apply(&mut b), 1);
        assert_eq!(b.attrs.get(0), Some(r#"{"k":1,"rack":"r7","env":"prod"}"#));
    }

    #[test]
    fn override_replaces_named_services() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(dir.path(), "ip,service\n192.0.2.1,edge\n", true);
        let mut b = batch(&[(Some("192.0.2.1"), "api", None)]);
        e.apply(&mut b);
        assert_eq!(b.service.get(0), Some("edge"));
        assert_eq!(b.attrs.get(0), None, "no owner or contact to add");
    }

    #[tokio::test]
    async fn reloads_when_the_file_changes_and_keeps_the_old_table_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(dir.path(), "cidr,service\n10.0.0.0/8,old\n", false);
        assert!(!e.reload_now().await, "unchanged file is not reloaded");
        let path = dir.path().join("hosts.csv");
        let bump = |secs: u64| {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() + Duration::from_secs(secs))
                .unwrap();
        };
        std::fs::write(&path, "cidr,service\n10.0.0.0/8,new\n").unwrap();
        bump(10);
        let before = e.table();
        assert!(e.reload_now().await);
        let mut b = batch(&[(Some("10.0.0.1"), "unknown", None)]);
        e.apply(&mut b);
        assert_eq!(b.service.get(0), Some("new"));
        assert_eq!(
            before
                .lookup("10.0.0.1".parse().unwrap())
                .unwrap()
                .service
                .as_deref(),
            Some("old"),
            "a table taken before the swap is unchanged"
        );
        std::fs::write(&path, "cidr,service\nnonsense,x\n").unwrap();
        bump(20);
        assert!(!e.reload_now().await);
        assert_eq!(e.table().len(), 1, "previous table kept");
        let mut b = batch(&[(Some("10.0.0.1"), "unknown", None)]);
        e.apply(&mut b);
        assert_eq!(b.service.get(0), Some("new"));
        // The broken version is not parsed again until it changes.
        assert_eq!(e.lock().version, Some(version_of(&path)));
    }

    fn version_of(path: &Path) -> String {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        let since = modified.duration_since(std::time::UNIX_EPOCH).unwrap();
        since.as_nanos().to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn workers_sharing_a_table_check_it_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.csv");
        std::fs::write(&path, "ip,service\n10.0.0.1,a\n").unwrap();
        let config = EnrichConfig {
            table: Some(path.clone()),
            reload_interval_secs: 10,
            ..EnrichConfig::default()
        };
        let first = Enricher::new(&config, "unknown").unwrap().unwrap();
        let second = first.clone();
        assert_eq!(first.reload_interval(), Duration::from_secs(10));
        std::fs::write(&path, "ip,service\n10.0.0.1,b\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        assert!(first.refresh().await, "the first check reloads");
        std::fs::write(&path, "ip,service\n10.0.0.1,c\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(50))
            .unwrap();
        assert!(
            !second.refresh().await,
            "checked moments ago by the other worker"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            second.refresh().await,
            "half an interval later it checks again"
        );
        let info = first.table();
        let hit = info.lookup("10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(hit.service.as_deref(), Some("c"));
    }

    #[test]
    fn s3_tables_need_the_async_loader() {
        let config = EnrichConfig {
            table: Some(PathBuf::from("s3://ref/hosts.csv")),
            ..EnrichConfig::default()
        };
        assert!(config.table_on_s3());
        let err = Enricher::new(&config, "unknown").err().unwrap();
        assert!(err.to_string().contains("spate run"), "{err}");
    }

    #[test]
    fn missing_or_bad_table_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = EnrichConfig {
            table: Some(dir.path().join("absent.csv")),
            override_service: false,
            ..EnrichConfig::default()
        };
        let err = Enricher::new(&config, "unknown").err().unwrap();
        assert!(
            err.to_string().starts_with("cannot read reference table"),
            "{err}"
        );
        std::fs::write(dir.path().join("bad.csv"), "cidr\n1.2.3\n").unwrap();
        let config = EnrichConfig {
            table: Some(dir.path().join("bad.csv")),
            override_service: false,
            ..EnrichConfig::default()
        };
        let err = Enricher::new(&config, "unknown").err().unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
