//! The service's own metrics (HTTP, queries, the console, EMF, build info), and the
//! Prometheus exporter of `spate run`: every catalog described, the series of
//! the components a config runs registered at 0, `spate_build_info` set.

use anyhow::Result;
use spate_engine::PrometheusExporter;
#[cfg(test)]
use spate_engine::catalog::{ENGINE, PROCESS};
use spate_engine::catalog::{MetricDef, register_at_zero};
use spate_operators::metric_catalog as ops;

use crate::config::ValidConfig;

const TAP_STAGES: &[&[&str]] = &[&["decode"], &["lake"], &["hot"], &["alerts"]];

/// The HTTP API, queries, taps, EMF output and build info.
pub const SERVICE: &[MetricDef] = &[
    MetricDef::gauge(
        "spate_build_info",
        &["version", "commit"],
        "Always 1; the labels say which build is running.",
    ),
    MetricDef::counter(
        "spate_http_requests_total",
        &["path", "status"],
        "HTTP requests answered, by route and status code.",
    ),
    MetricDef::histogram(
        "spate_http_request_duration_seconds",
        &["path"],
        "Time to answer an HTTP request (a push: until it is fsynced in the journal), in seconds.",
    ),
    MetricDef::counter(
        "spate_http_accept_errors_total",
        &[],
        "Failed accepts of HTTP connections (out of file descriptors and the like).",
    ),
    MetricDef::counter(
        "spate_http_connections_cut_total",
        &[],
        "HTTP connections closed at shutdown because they were still open after the drain deadline (http.drain_timeout).",
    ),
    MetricDef::counter(
        "spate_http_received_bytes_total",
        &[],
        "Bytes of HTTP push bodies received (as sent, before decompression).",
    ),
    MetricDef::counter(
        "spate_http_accepted_lines_total",
        &[],
        "Lines of HTTP pushes accepted into the journal.",
    ),
    MetricDef::counter(
        "spate_http_idempotent_replays_total",
        &[],
        "HTTP pushes answered 200 without appending because a push with the same Idempotency-Key was accepted within 10 minutes.",
    ),
    MetricDef::counter(
        "spate_http_rejected_total",
        &["reason"],
        "HTTP pushes refused, by reason (inflight, saturated, unavailable, too_large, unreadable).",
    )
    .at_start(&[
        &["inflight"],
        &["saturated"],
        &["unavailable"],
        &["too_large"],
        &["unreadable"],
    ]),
    MetricDef::gauge(
        "spate_queries_running",
        &[],
        "SQL queries running on the query threads now.",
    ),
    MetricDef::gauge(
        "spate_queries_queued",
        &[],
        "SQL queries waiting for a slot ([query] max_concurrent).",
    ),
    MetricDef::counter(
        "spate_queries_total",
        &["outcome"],
        "SQL queries finished, by outcome: ok, rejected (queue full, 429), timeout (504), shutting_down, bad_query, resources_exhausted (memory limit), result_too_large, storage_error, history_error, internal_error (a bug or a panic).",
    )
    .at_start(&[&["ok"], &["rejected"], &["bad_query"], &["timeout"]]),
    MetricDef::histogram(
        "spate_query_duration_seconds",
        &[],
        "Time from a query's arrival to its answer, queueing included (refused queries not counted), in seconds.",
    )
    .buckets(&[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        120.0, 300.0,
    ]),
    MetricDef::gauge(
        "spate_tap_listeners",
        &["stage"],
        "Clients of GET /v1/tap (`spate tap`) connected now, by stage (decode, lake, hot, alerts).",
    )
    .at_start(TAP_STAGES),
    MetricDef::counter(
        "spate_tap_dropped_events_total",
        &["stage"],
        "Events (or alert notices) a tap client missed because it read slower than the stage ran (the stage never waits for a tap), by stage.",
    )
    .at_start(TAP_STAGES),
    MetricDef::counter(
        "spate_console_signins_total",
        &["outcome"],
        "Sign-ins to the web console (local users and the OIDC issuer), by outcome: ok, denied (a wrong name or password, an expired form, a refused ID token, no mapped group), error (the user store or the issuer failed).",
    )
    .at_start(&[&["ok"], &["denied"], &["error"]]),
    MetricDef::counter(
        "spate_console_webhook_deliveries_total",
        &["outcome"],
        "Alert notices POSTed to the webhooks console users subscribed, by outcome: ok (a 2xx answer), failed (retried at the next poll, 5 attempts at most).",
    )
    .at_start(&[&["ok"], &["failed"]]),
    MetricDef::counter(
        "spate_console_audit_errors_total",
        &[],
        "Audit records of the web console or the query API that could not be written (each is also logged).",
    ),
    MetricDef::counter(
        "spate_console_audit_pruned_total",
        &[],
        "Audit records deleted for being older than `console.audit_retention_days`.",
    ),
    MetricDef::counter(
        "spate_console_oidc_jwks_fetches_total",
        &[],
        "Fetches of the OIDC issuer's signing keys (JWKS): the first sign-in, then a token naming an unknown key (at most every 30 s).",
    ),
    MetricDef::counter(
        "spate_emf_series_skipped_total",
        &[],
        "Series left out of the EMF output (too many dimensions, or a name clash).",
    ),
    MetricDef::counter(
        "spate_emf_write_errors_total",
        &[],
        "Failed writes of EMF lines to stdout.",
    ),
];

/// Every catalog, in the order `docs/operations.md` lists them.
#[cfg(test)]
fn all() -> Vec<(&'static str, &'static [MetricDef])> {
    let mut all = vec![("engine", ENGINE), ("process", PROCESS)];
    let names = [
        "decode",
        "lake",
        "s3_lake",
        "hot",
        "dynamo_hot",
        "journal",
        "tail",
        "sqs",
        "kinesis",
        "windows",
        "alerts",
        "shared_windows",
        "sns",
        "aws",
    ];
    all.extend(names.into_iter().zip(ops::ALL.iter().copied()));
    all.push(("service", SERVICE));
    all
}

/// Installs the process-wide exporter for `spate run` with `valid`.
pub fn install(valid: &ValidConfig) -> Result<PrometheusExporter> {
    let config = &valid.config;
    let mut catalogs: Vec<&[MetricDef]> = ops::ALL.to_vec();
    catalogs.push(SERVICE);
    let exporter = PrometheusExporter::install_with(&catalogs)?;
    let dynamo = config.hot_dynamodb.is_some();
    let mut running = vec![
        ops::DECODE,
        ops::LAKE,
        ops::JOURNAL,
        ops::WINDOWS,
        ops::ALERTS,
        SERVICE,
    ];
    // Each source kind names its own metrics.
    running.extend(valid.sources.iter().map(|s| s.source.metrics()));
    let optional = [
        (config.lake.s3.is_some(), ops::S3_LAKE),
        (dynamo, ops::DYNAMO_HOT),
        (!dynamo, ops::HOT),
        (config.alerts.sns.is_some(), ops::SNS),
        (valid.shared_windows, ops::SHARED_WINDOWS),
    ];
    running.extend(optional.into_iter().filter(|(on, _)| *on).map(|(_, c)| c));
    for catalog in running {
        register_at_zero(catalog);
    }
    // The AWS calls the configured components make, at 0.
    let sinks = [
        (config.lake.s3.is_some(), ("s3", "PutObject")),
        (dynamo, ("dynamodb", "BatchWriteItem")),
        (config.alerts.sns.is_some(), ("sns", "Publish")),
    ];
    let calls = valid
        .sources
        .iter()
        .flat_map(|s| s.source.aws_calls().iter().copied())
        .chain(
            sinks
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, call)| call),
        );
    for (service, operation) in calls {
        let _ = metrics::counter!("spate_aws_requests_total", "service" => service, "operation" => operation);
    }
    // The alert outputs are known now: their failures, at 0.
    let alerts = &config.alerts;
    let outputs = [
        (alerts.stdout, "stdout", false),
        (alerts.file_enabled, "file", false),
        (alerts.webhook.is_some(), "webhook", true),
        (alerts.sns.is_some(), "sns", true),
    ];
    for (_, output, queued) in outputs.into_iter().filter(|(on, ..)| *on) {
        let _ = metrics::counter!("spate_alert_deliveries_failed_total", "output" => output);
        if queued {
            let _ = metrics::counter!("spate_alerts_dropped_total", "output" => output);
        }
    }
    // The rules are known now: each one's notices, at 0.
    for rule in &valid.rules {
        for state in ["firing", "resolved"] {
            let _ = metrics::counter!("spate_alerts_total", "rule" => rule.name.clone(), "state" => state);
        }
    }
    metrics::gauge!(
        "spate_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => env!("SPATE_BUILD_COMMIT")
    )
    .set(1.0);
    Ok(exporter)
}

/// The metric tables of `docs/operations.md`, one per catalog.
#[cfg(test)]
fn markdown() -> String {
    let mut out = String::new();
    for (group, defs) in all() {
        out.push_str(&format!(
            "\n**{group}**\n\n| metric | type | labels | meaning |\n| --- | --- | --- | --- |\n"
        ));
        for def in defs {
            let labels = def
                .labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                def.name,
                def.kind.as_str(),
                labels,
                def.help
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use spate_engine::catalog::MetricKind;

    use super::*;

    const BEGIN: &str = "<!-- BEGIN GENERATED: metric tables (SPATE_UPDATE_DOCS=1 cargo test -p spate metric_catalog) -->";
    const END: &str = "<!-- END GENERATED: metric tables -->";

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut seen = BTreeSet::new();
        for (group, defs) in all() {
            for def in defs {
                assert!(seen.insert(def.name), "{} twice ({group})", def.name);
                assert_eq!(
                    def.name.ends_with("_total"),
                    def.kind == MetricKind::Counter,
                    "{}: _total exactly on counters",
                    def.name
                );
                for unit in ["_millis", "_ms", "_micros", "_minutes", "_kib", "_mib"] {
                    assert!(!def.name.contains(unit), "{}: base units", def.name);
                }
                assert!(
                    def.help.ends_with('.') && !def.help.contains('\n'),
                    "{}: one sentence of help",
                    def.name
                );
                for tuple in def.at_start {
                    assert_eq!(tuple.len(), def.labels.len(), "{}", def.name);
                }
            }
        }
    }

    /// `metrics` macro calls with a literal name, outside comments and test
    /// modules.
    fn emitted_names(dir: &Path, out: &mut BTreeSet<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                emitted_names(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for mac in ["counter!(", "gauge!(", "histogram!("] {
                for (at, _) in code.match_indices(mac) {
                    let rest = code[at + mac.len()..].trim_start();
                    if let Some(rest) = rest.strip_prefix('"') {
                        let name = &rest[..rest.find('"').unwrap()];
                        out.insert((name.to_string(), path.display().to_string()));
                    }
                }
            }
        }
    }

    #[test]
    fn every_metric_the_code_emits_is_in_a_catalog() {
        let catalog: BTreeSet<&str> = all()
            .iter()
            .flat_map(|(_, defs)| defs.iter().map(|d| d.name))
            .collect();
        let mut emitted = BTreeSet::new();
        for dir in ["engine/src", "operators/src", "bin/src"] {
            emitted_names(&workspace().join(dir), &mut emitted);
        }
        assert!(emitted.len() > 80, "{emitted:?}");
        let missing: Vec<_> = emitted
            .iter()
            .filter(|(name, _)| !catalog.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "emitted but not in a metric catalog (add them with their help): {missing:?}"
        );
    }

    #[test]
    fn operations_md_lists_every_metric() {
        let path = workspace().join("docs/operations.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
            panic!("{} has no generated metric tables", path.display());
        };
        let current = &doc[begin + BEGIN.len()..end];
        let expected = markdown();
        if current != expected {
            if std::env::var_os("SPATE_UPDATE_DOCS").is_some() {
                let updated = format!("{}{BEGIN}{expected}{}", &doc[..begin], &doc[end..]);
                std::fs::write(&path, &updated).unwrap();
                return;
            } else {
                panic!(
                    "docs/operations.md's metric tables are stale: run \
                     `SPATE_UPDATE_DOCS=1 cargo test -p spate metric_catalog`"
                );
            }
        }
        for (_, defs) in all() {
            for def in defs {
                assert!(doc.contains(&format!("| `{}` |", def.name)), "{}", def.name);
            }
        }
    }
}
