//! `spate alerts silence|silences|unsilence`: maintenance windows, written
//! into the hot store of a data dir (or the DynamoDB hot table with
//! `[hot_dynamodb]`), where the running `spate run` reads them (within
//! 10 s) and holds back the notices of the silenced services.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use spate_operators::alerts::silence::{Silence, SilenceStore};
use spate_operators::event::wall_clock_ms;
use spate_operators::sinks::hot::HotStore;
use spate_operators::sinks::hot::query::rfc3339_ms;

use crate::config::SpateConfig;
use crate::output::{Format, write_objects};

/// `spate alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// Silence a service's alerts for a time (a maintenance window).
    Silence {
        /// The service.
        service: String,
        /// For how long (30m, 2h, 1d).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Why (shown by `spate alerts silences`).
        #[arg(long, default_value = "")]
        reason: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// End a service's silence now.
    Unsilence {
        /// The service.
        service: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List the silences in force.
    Silences {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs `action` against the hot store of `config` and `data_dir`; returns
/// what to print.
pub fn run(action: AlertsAction, config: &SpateConfig, data_dir: &Path) -> Result<String> {
    match &config.hot_dynamodb {
        Some(hot) => {
            // The store's blocking calls run on this runtime from a scoped
            // thread: its own worker drives the I/O.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let store = runtime.block_on(async {
                let sdk = config.aws.load().await;
                spate_operators::sinks::dynamo_hot::DynamoHotStore::new(
                    config.aws.dynamodb_client(&sdk),
                    hot.clone(),
                )
            })?;
            act(action, &store)
        }
        None => {
            let path = crate::hot_cli::hot_path(config, data_dir);
            let store =
                HotStore::open(&path).with_context(|| format!("hot store {}", path.display()))?;
            act(action, &store)
        }
    }
}

/// Runs `action` against `store` at the current wall-clock time.
pub fn act(action: AlertsAction, store: &dyn SilenceStore) -> Result<String> {
    let now = wall_clock_ms();
    match action {
        AlertsAction::Silence {
            service,
            duration,
            reason,
            format,
        } => {
            let duration =
                crate::duration_arg::parse_duration(&duration).map_err(anyhow::Error::msg)?;
            if duration.is_zero() {
                anyhow::bail!("--for must be above 0");
            }
            if service.trim().is_empty() {
                anyhow::bail!("the service must not be empty");
            }
            let until_ms = now.saturating_add(millis(duration));
            store.put_silence(&Silence {
                service: service.clone(),
                created_ms: now,
                until_ms,
                reason: reason.clone(),
            })?;
            let report = serde_json::json!({
                "service": service,
                "until": rfc3339_ms(until_ms),
                "until_ms": until_ms,
                "reason": reason,
            });
            report_text(format, &report, || {
                format!("silenced {service} until {}\n", rfc3339_ms(until_ms))
            })
        }
        AlertsAction::Unsilence { service, format } => {
            let was_silenced = store.remove_silence(&service)?;
            let report = serde_json::json!({ "service": service, "was_silenced": was_silenced });
            report_text(format, &report, || match was_silenced {
                true => format!("{service} is no longer silenced\n"),
                false => format!("{service} was not silenced\n"),
            })
        }
        AlertsAction::Silences { format } => {
            let silences = store.active_silences(now)?;
            render(&silences, format, now)
        }
    }
}

/// A one-object report in `format` (`table`: the sentence `table` makes).
fn report_text(
    format: Format,
    report: &serde_json::Value,
    table: impl FnOnce() -> String,
) -> Result<String> {
    let mut out = Vec::new();
    crate::output::write_report(&mut out, format, report, table)?;
    Ok(String::from_utf8(out)?)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The silences in `format`: service, end, time left and reason in a
/// table; service, start, end (also in ms) and reason otherwise.
pub fn render(silences: &[Silence], format: Format, now_ms: i64) -> Result<String> {
    let rows: Vec<serde_json::Value> = silences
        .iter()
        .map(|s| {
            let left = (s.until_ms - now_ms).max(0) / 1000;
            serde_json::json!({
                "service": s.service,
                "since": rfc3339_ms(s.created_ms),
                "until": rfc3339_ms(s.until_ms),
                "until_ms": s.until_ms,
                "left": format!("{}h{:02}m", left / 3600, left % 3600 / 60),
                "reason": s.reason,
            })
        })
        .collect();
    let columns: &[&str] = match format {
        Format::Table => &["service", "until", "left", "reason"],
        _ => &["service", "since", "until", "until_ms", "reason"],
    };
    let mut out = Vec::new();
    write_objects(&mut out, format, columns, &rows)?;
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use spate_operators::alerts::silence::MemorySilenceStore;

    use super::*;

    #[test]
    fn silence_list_and_end() {
        let store = MemorySilenceStore::default();
        let out = act(
            AlertsAction::Silence {
                service: "payments".into(),
                duration: "2h".into(),
                reason: "db migration".into(),
                format: Format::Table,
            },
            &store,
        )
        .unwrap();
        assert!(out.starts_with("silenced payments until "), "{out}");
        let list = |format| act(AlertsAction::Silences { format }, &store).unwrap();
        let table = list(Format::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("service "), "{table}");
        assert!(lines[1].starts_with("payments "), "{table}");
        assert!(
            lines[1].contains(" 1h59m ") || lines[1].contains(" 2h00m "),
            "{table}"
        );
        assert!(lines[1].ends_with("db migration"), "{table}");
        let json = list(Format::Json);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed[0]["service"], "payments");
        assert_eq!(parsed[0]["reason"], "db migration");
        let out = act(
            AlertsAction::Unsilence {
                service: "payments".into(),
                format: Format::Table,
            },
            &store,
        )
        .unwrap();
        assert_eq!(out, "payments is no longer silenced\n");
        let again = act(
            AlertsAction::Unsilence {
                service: "payments".into(),
                format: Format::Json,
            },
            &store,
        )
        .unwrap();
        let again: serde_json::Value = serde_json::from_str(&again).unwrap();
        assert_eq!(again["was_silenced"], false, "{again}");
        let table = list(Format::Table);
        assert_eq!(table, "service  until  left  reason\n(0 rows)\n");
        let csv = list(Format::Csv);
        assert_eq!(csv, "service,since,until,until_ms,reason\n");
        let err = act(
            AlertsAction::Silence {
                service: "x".into(),
                duration: "2 hours".into(),
                reason: String::new(),
                format: Format::Json,
            },
            &store,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
    }
}
