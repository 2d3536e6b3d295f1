//! Enrichment from a reference table: host IP or CIDR → service, owner, contact.
//!
//! Rows whose `host` is an address inside a block of the table get the block's
//! `owner` and `contact` added to `attrs`, and its `service` when the event named
//! none (or always, with `override_service`). The table is a CSV file (see
//! [`table`]), reloaded when its modification time changes; a reload that fails
//! keeps the previous table and is counted (`spate_enrich_reload_errors_total`).

pub mod table;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use self::table::{HostInfo, ReferenceTable, TableError};
use crate::decode::write_json_str;
use crate::event::{EventBatch, StrColumn};

/// `[enrich]`: the reference table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// CSV file mapping `cidr` (or `ip`) to `service`, `owner`, `contact`.
    /// No enrichment when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<PathBuf>,
    /// Replace the service an event names with the table's (default: only fill
    /// in events without one).
    #[serde(default)]
    pub override_service: bool,
}

/// Loading the table failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// The file could not be read.
    #[error("cannot read reference table {path}: {source}")]
    Read {
        /// The table's path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid table.
    #[error("reference table {path}: {source}")]
    Parse {
        /// The table's path.
        path: PathBuf,
        /// What is wrong, and where.
        source: TableError,
    },
}

struct Loaded {
    modified: Option<SystemTime>,
    table: Arc<ReferenceTable>,
}

/// The shared, reloadable table; clones share it.
#[derive(Clone)]
pub struct Enricher {
    path: PathBuf,
    override_service: bool,
    default_service: Arc<str>,
    loaded: Arc<Mutex<Loaded>>,
}

fn load(path: &Path) -> Result<(Option<SystemTime>, ReferenceTable), EnrichError> {
    let read = |source| EnrichError::Read {
        path: path.to_path_buf(),
        source,
    };
    let modified = std::fs::metadata(path).map_err(read)?.modified().ok();
    let text = std::fs::read_to_string(path).map_err(read)?;
    let table = ReferenceTable::parse(&text).map_err(|source| EnrichError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((modified, table))
}

impl Enricher {
    /// Loads the configured table; `None` when none is configured.
    pub fn new(config: &EnrichConfig, default_service: &str) -> Result<Option<Self>, EnrichError> {
        let Some(path) = &config.table else {
            return Ok(None);
        };
        let (modified, table) = load(path)?;
        Ok(Some(Enricher {
            path: path.clone(),
            override_service: config.override_service,
            default_service: Arc::from(default_service),
            loaded: Arc::new(Mutex::new(Loaded {
                modified,
                table: Arc::new(table),
            })),
        }))
    }

    /// How often workers check the file for changes.
    pub fn reload_interval() -> Duration {
        Duration::from_secs(2)
    }

    /// Reloads the table if the file changed; true when it did. A bad new
    /// version is reported and the old table kept.
    pub fn reload_if_changed(&self) -> bool {
        let current = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() || current == loaded.modified {
            return false;
        }
        match load(&self.path) {
            Ok((modified, table)) => {
                tracing::info!(path = %self.path.display(), blocks = table.len(), "reference table reloaded");
                *loaded = Loaded {
                    modified,
                    table: Arc::new(table),
                };
                metrics::counter!("spate_enrich_reloads_total").increment(1);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "reference table not reloaded; keeping the previous one");
                loaded.modified = current;
                metrics::counter!("spate_enrich_reload_errors_total").increment(1);
                false
            }
        }
    }

    /// The table in force.
    pub fn table(&self) -> Arc<ReferenceTable> {
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .table
            .clone()
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
                Some(i) if i.owner.is_some() || i.contact.is_some() => {
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

/// Adds `owner` and `contact` to a JSON object text (or starts one).
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
    for (key, value) in [("owner", &info.owner), ("contact", &info.contact)] {
        if let Some(v) = value {
            if !first {
                out.push(',');
            }
            first = false;
            write_json_str(out, key);
            out.push(':');
            write_json_str(out, v);
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
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
    fn override_replaces_named_services() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(dir.path(), "ip,service\n192.0.2.1,edge\n", true);
        let mut b = batch(&[(Some("192.0.2.1"), "api", None)]);
        e.apply(&mut b);
        assert_eq!(b.service.get(0), Some("edge"));
        assert_eq!(b.attrs.get(0), None, "no owner or contact to add");
    }

    #[test]
    fn reloads_when_the_file_changes_and_keeps_the_old_table_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = enricher(dir.path(), "cidr,service\n10.0.0.0/8,old\n", false);
        assert!(!e.reload_if_changed(), "unchanged file is not reloaded");
        let path = dir.path().join("hosts.csv");
        let bump = |secs: u64| {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() + Duration::from_secs(secs))
                .unwrap();
        };
        std::fs::write(&path, "cidr,service\n10.0.0.0/8,new\n").unwrap();
        bump(10);
        assert!(e.reload_if_changed());
        let mut b = batch(&[(Some("10.0.0.1"), "unknown", None)]);
        e.apply(&mut b);
        assert_eq!(b.service.get(0), Some("new"));
        std::fs::write(&path, "cidr,service\nnonsense,x\n").unwrap();
        bump(20);
        assert!(!e.reload_if_changed());
        assert_eq!(e.table().len(), 1, "previous table kept");
    }

    #[test]
    fn missing_or_bad_table_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = EnrichConfig {
            table: Some(dir.path().join("absent.csv")),
            override_service: false,
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
        };
        let err = Enricher::new(&config, "unknown").err().unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
