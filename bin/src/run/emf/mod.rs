//! CloudWatch metrics as Embedded Metric Format lines on stdout
//! (`[metrics.emf]`), so that ECS's `awslogs` log driver (or the CloudWatch
//! agent) turns them into metrics without a `PutMetricData` call.
//!
//! Every `interval`, and once more at shutdown after the pipeline drained
//! (so the last interval is not lost), the emitter snapshots the metrics and
//! prints one JSON line per dimension set ([`convert`] says how Prometheus
//! series become EMF metrics).
//!
//! # Where the numbers come from
//!
//! The snapshot is the text of the same [`PrometheusExporter`] that serves
//! `/metrics`, parsed back. A second recorder behind a fanout would keep its
//! own copy of every series and need `metrics-util`'s registry in the binary;
//! the exporter's rendering is already there, is what operators see on
//! `/metrics`, and costs one render per interval (a few hundred series), so
//! EMF and Prometheus can never disagree on a value.
//!
//! # Stdout
//!
//! Each line is written with one `write_all` on the locked stdout, so it never
//! interleaves with the alert lines the stdout alert output prints.
//!
//! [`PrometheusExporter`]: spate_engine::PrometheusExporter

pub mod convert;
pub mod exposition;
pub mod per_actor;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use spate_operators::windows::emf::WindowMetrics;

use self::convert::{EmfConverter, EmfSettings, MAX_DIMENSIONS};

/// `[metrics]`: metric outputs besides `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// CloudWatch Embedded Metric Format lines on stdout.
    #[serde(default)]
    pub emf: EmfConfig,
}

/// `[metrics.emf]`: CloudWatch metrics as EMF lines on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmfConfig {
    /// Print EMF lines on stdout.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between emissions (one more at shutdown).
    #[serde(
        rename = "interval",
        alias = "interval_secs",
        with = "spate_operators::component::units::with::secs",
        default = "default_interval_secs"
    )]
    #[schemars(with = "spate_operators::component::units::Seconds")]
    pub interval_secs: u64,
    /// CloudWatch namespace of the metrics.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Prometheus metric names to emit, by prefix (`["spate_"]` for all).
    /// Each metric name with each set of dimension values is a CloudWatch
    /// custom metric, billed a month (0.30 USD in us-east-1): the default
    /// list is the series the stack's alarms and dashboard read, about 50
    /// custom metrics on an SQS + S3 lake run (docs/cost.md).
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    /// Emit the per-actor series (`spate_actor_*`: mailbox depth, time
    /// blocked on backpressure, errors, restarts) one series per actor, up to
    /// 9 custom metrics an actor. Off, each is summed over the actors (no
    /// `actor` dimension).
    #[serde(default)]
    pub per_actor: bool,
    /// Dimensions added to every metric (e.g. `service`, `task`); a metric's
    /// own labels are dimensions too. On the window lines they are
    /// properties, not dimensions, so the counts of several tasks add up.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Also print each closed window's counts: metric `WindowEvents` per
    /// service × severity (dimensions `service`, `severity`) and
    /// `WindowTagEvents` per service × tag (dimensions `service`, `tag`),
    /// timestamped at the window's start.
    #[serde(default = "default_windows")]
    pub windows: bool,
    /// Window lines: the services with the most events in a window keep
    /// their name, this many; the rest are counted as service `other`.
    #[serde(default = "default_window_top_services")]
    pub window_top_services: usize,
    /// Window lines: names of `dimensions` that stay dimensions there (e.g.
    /// `["stack"]`, to keep deployments apart); the others are properties.
    #[serde(default)]
    pub window_dimensions: Vec<String>,
}

fn default_windows() -> bool {
    true
}
fn default_window_top_services() -> usize {
    20
}

fn default_interval_secs() -> u64 {
    60
}
fn default_namespace() -> String {
    "Spate".into()
}
fn default_include() -> Vec<String> {
    [
        "spate_events_total",
        "spate_dead_letters_total",
        "spate_decode_dead_letters_total",
        "spate_http_rejected_total",
        "spate_journal_backlog_bytes",
        "spate_dynamo_hot_items_written_total",
        "spate_alerts_total",
        "spate_lake_files_written_total",
        "spate_s3_lake_objects_written_total",
        "spate_s3_lake_bytes_written_total",
        "spate_actor_mailbox_depth",
        "spate_actor_backpressure_seconds",
        "spate_actor_errors_total",
        "spate_actor_restarts_total",
        "spate_source_oldest_unacked_age_seconds",
        "spate_source_inflight_events",
        "spate_source_batches_settled_total",
        "spate_source_delivery_seconds",
        "spate_sqs_queue_visible_messages",
        "spate_sqs_messages_held",
        "spate_kinesis_behind_latest_seconds",
        "spate_http_request_duration_seconds",
        "spate_lake_commit_seconds",
        "spate_s3_lake_upload_seconds",
        "spate_hot_commit_seconds",
        "spate_dynamo_hot_batch_write_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ]
    .map(String::from)
    .to_vec()
}

/// Labels the metrics carry at most (`path` and `status`, `rule` and
/// `state`), kept free below EMF's 30 dimensions.
const MAX_LABELS: usize = 2;

impl Default for EmfConfig {
    fn default() -> Self {
        EmfConfig {
            enabled: false,
            interval_secs: default_interval_secs(),
            namespace: default_namespace(),
            include: default_include(),
            per_actor: false,
            dimensions: BTreeMap::new(),
            windows: default_windows(),
            window_top_services: default_window_top_services(),
            window_dimensions: Vec::new(),
        }
    }
}

impl EmfConfig {
    /// Checks what CloudWatch would refuse (the error names the key).
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 {
            return Err("interval: must be at least 1".into());
        }
        let ns = &self.namespace;
        if ns.is_empty() || ns.len() > 255 || ns.starts_with("AWS/") || ns.starts_with(':') {
            return Err(format!(
                "namespace: {ns:?} must be 1 to 255 characters, not starting with AWS/ or :"
            ));
        }
        if self.window_top_services == 0 {
            return Err("window_top_services: must be at least 1".into());
        }
        if let Some(name) = self
            .window_dimensions
            .iter()
            .find(|n| !self.dimensions.contains_key(*n))
        {
            return Err(format!(
                "window_dimensions: {name:?} is not one of the [metrics.emf.dimensions]"
            ));
        }
        if self.include.is_empty() || self.include.iter().any(String::is_empty) {
            return Err(
                "include: list the metric name prefixes to emit (\"spate_\" for all)".into(),
            );
        }
        if self.dimensions.len() > MAX_DIMENSIONS - MAX_LABELS {
            return Err(format!(
                "dimensions: at most {} (EMF allows {MAX_DIMENSIONS}, metric labels need {MAX_LABELS})",
                MAX_DIMENSIONS - MAX_LABELS
            ));
        }
        for (k, v) in &self.dimensions {
            if k.is_empty() || k.len() > 255 || k.starts_with(':') || k == "_aws" {
                return Err(format!(
                    "dimensions: name {k:?} must be 1 to 255 characters, not _aws or starting with :"
                ));
            }
            if v.is_empty() || v.len() > 1024 {
                return Err(format!("dimensions.{k}: value must be 1 to 1024 bytes"));
            }
        }
        Ok(())
    }

    /// What prints the closed windows' EMF lines, when EMF and its window
    /// lines are on.
    pub fn window_metrics(&self) -> Option<WindowMetrics> {
        (self.enabled && self.windows).then(|| {
            WindowMetrics::new(
                &self.namespace,
                self.window_top_services,
                self.dimensions.clone(),
            )
            .with_dimensions(&self.window_dimensions)
        })
    }

    fn settings(&self) -> EmfSettings {
        EmfSettings {
            namespace: self.namespace.clone(),
            include: self.include.clone(),
            dimensions: self.dimensions.clone(),
            per_actor: self.per_actor,
        }
    }
}

/// Renders the current metrics in Prometheus text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

struct Emitting {
    converter: EmfConverter,
    render: Render,
    out: Box<dyn Write + Send>,
}

impl Emitting {
    /// Converts a snapshot and writes its lines, one `write_all` each.
    fn emit(&mut self) {
        let text = (self.render)();
        let conversion = self
            .converter
            .convert(&text, spate_operators::event::wall_clock_ms());
        if conversion.skipped > 0 {
            metrics::counter!("spate_emf_series_skipped_total").increment(conversion.skipped);
        }
        for mut line in conversion.lines {
            line.push('\n');
            let written = self
                .out
                .write_all(line.as_bytes())
                .and_then(|_| self.out.flush());
            if let Err(e) = written {
                metrics::counter!("spate_emf_write_errors_total").increment(1);
                tracing::warn!(error = %e, "cannot write an emf line to stdout");
                return;
            }
        }
    }
}

/// The periodic EMF task of `spate run`.
pub struct EmfEmitter {
    emitting: Arc<Mutex<Emitting>>,
    task: JoinHandle<()>,
}

impl EmfEmitter {
    /// Starts emitting to stdout every `interval` (call inside a tokio
    /// runtime; `config` validated).
    pub fn start(config: &EmfConfig, render: Render) -> Self {
        Self::to_writer(config, render, Box::new(std::io::stdout()))
    }

    /// Like [`EmfEmitter::start`], writing to `out`.
    pub fn to_writer(config: &EmfConfig, render: Render, out: Box<dyn Write + Send>) -> Self {
        let emitting = Arc::new(Mutex::new(Emitting {
            converter: EmfConverter::new(config.settings()),
            render,
            out,
        }));
        let period = Duration::from_secs(config.interval_secs.max(1));
        let shared = emitting.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                shared.lock().unwrap_or_else(|p| p.into_inner()).emit();
            }
        });
        EmfEmitter { emitting, task }
    }

    /// Stops the task and emits once more (what happened since the last
    /// emission, the drain included).
    pub async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
        self.emitting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .emit();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn events(&self) -> Vec<i64> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter_map(|d| d["spate_events_total"].as_i64())
                .collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn emits_every_interval_and_once_more_at_finish() {
        let exporter = Arc::new(spate_engine::PrometheusExporter::new_local());
        let record = |n: u64| {
            metrics::with_local_recorder(exporter.recorder(), || {
                metrics::counter!("spate_events_total", "severity" => "INFO").increment(n);
            })
        };
        let out = Shared::default();
        let render = {
            let exporter = exporter.clone();
            Arc::new(move || exporter.render())
        };
        let config = EmfConfig {
            enabled: true,
            ..EmfConfig::default()
        };
        let emitter = EmfEmitter::to_writer(&config, render, Box::new(out.clone()));
        record(5);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(out.events().is_empty(), "nothing before the first interval");
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(out.events(), [5]);
        record(3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        record(4);
        emitter.finish().await;
        assert_eq!(out.events(), [5, 3, 4], "deltas; the last one at finish");
    }

    #[test]
    fn validation_names_the_key() {
        let ok = EmfConfig::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                EmfConfig {
                    interval_secs: 0,
                    ..ok.clone()
                },
                "interval",
            ),
            (
                EmfConfig {
                    namespace: "AWS/ECS".into(),
                    ..ok.clone()
                },
                "namespace",
            ),
            (
                EmfConfig {
                    include: vec![],
                    ..ok.clone()
                },
                "include",
            ),
            (
                EmfConfig {
                    dimensions: (0..29)
                        .map(|i| (format!("d{i}"), "v".to_string()))
                        .collect(),
                    ..ok.clone()
                },
                "dimensions",
            ),
            (
                EmfConfig {
                    dimensions: BTreeMap::from([("task".to_string(), String::new())]),
                    ..ok.clone()
                },
                "dimensions.task",
            ),
        ];
        for (config, key) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.starts_with(key), "{key}: {err}");
        }
    }
}
