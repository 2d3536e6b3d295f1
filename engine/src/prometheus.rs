//! The Prometheus exporter that a service mounts on `/metrics`.
//!
//! Built from metric catalogs ([`crate::catalog`]): every metric gets its
//! `# HELP` line, histograms are real Prometheus histograms with the buckets
//! their entry names (never summaries), and each rendering first refreshes the
//! source lag gauges ([`crate::lag::publish_all`]) and ends with the
//! `process_*` metrics read from `/proc`.

use std::time::Duration;

use metrics::{KeyName, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::catalog::{ENGINE, LATENCY_BUCKETS, MetricDef, MetricKind};
use crate::process::ProcessFigures;

/// How often recorded histogram samples are folded into their buckets when
/// nobody scrapes (they would pile up in memory otherwise).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Failure to install the process-wide metrics recorder.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the prometheus recorder: {0}")]
pub struct InstallError(String);

/// Renders every metric recorded through the `metrics` facade in the Prometheus
/// text format.
///
/// ```
/// let exporter = spate_engine::PrometheusExporter::new_local();
/// metrics::with_local_recorder(exporter.recorder(), || {
///     metrics::counter!("spate_example_total").increment(3);
/// });
/// assert!(exporter.render().contains("spate_example_total 3"));
/// ```
pub struct PrometheusExporter {
    handle: PrometheusHandle,
    recorder: Option<PrometheusRecorder>,
}

/// A recorder with the buckets and descriptions of `catalogs` (the engine's
/// own included).
fn build(catalogs: &[&[MetricDef]]) -> PrometheusRecorder {
    let mut builder = PrometheusBuilder::new()
        .set_buckets(LATENCY_BUCKETS)
        .expect("buckets are not empty");
    let all = || {
        std::iter::once(ENGINE)
            .chain(catalogs.iter().copied())
            .flatten()
    };
    for def in all() {
        if def.kind == MetricKind::Histogram && def.buckets != LATENCY_BUCKETS {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(def.name.to_string()), def.buckets)
                .expect("catalog buckets are not empty");
        }
    }
    let recorder = builder.build_recorder();
    for def in all() {
        let (name, help) = (KeyName::from(def.name), SharedString::from(def.help));
        match def.kind {
            MetricKind::Counter => recorder.describe_counter(name, None, help),
            MetricKind::Gauge => recorder.describe_gauge(name, None, help),
            MetricKind::Histogram => recorder.describe_histogram(name, None, help),
        }
    }
    recorder
}

impl PrometheusExporter {
    /// Installs the exporter as the process-wide recorder (once per process),
    /// with the engine's catalog.
    pub fn install() -> Result<Self, InstallError> {
        Self::install_with(&[])
    }

    /// Installs the exporter as the process-wide recorder (once per process),
    /// describing the metrics of `catalogs` besides the engine's.
    pub fn install_with(catalogs: &[&[MetricDef]]) -> Result<Self, InstallError> {
        let recorder = build(catalogs);
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|e| InstallError(e.to_string()))?;
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .map_err(|e| InstallError(e.to_string()))?;
        Ok(PrometheusExporter {
            handle,
            recorder: None,
        })
    }

    /// An exporter not installed globally; record into it with
    /// [`metrics::with_local_recorder`] and [`PrometheusExporter::recorder`].
    pub fn new_local() -> Self {
        Self::new_local_with(&[])
    }

    /// [`PrometheusExporter::new_local`] describing `catalogs` too.
    pub fn new_local_with(catalogs: &[&[MetricDef]]) -> Self {
        let recorder = build(catalogs);
        PrometheusExporter {
            handle: recorder.handle(),
            recorder: Some(recorder),
        }
    }

    /// The local recorder (only for [`PrometheusExporter::new_local`]).
    pub fn recorder(&self) -> &PrometheusRecorder {
        self.recorder
            .as_ref()
            .expect("recorder() is only available on a local exporter")
    }

    /// The current metrics in Prometheus text format, for a `/metrics` response.
    pub fn render(&self) -> String {
        crate::lag::publish_all();
        let mut text = self.handle.render();
        ProcessFigures::read().render_into(&mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_have_buckets_and_every_family_has_help() {
        let exporter = PrometheusExporter::new_local();
        metrics::with_local_recorder(exporter.recorder(), || {
            let stats = std::sync::Arc::new(crate::ActorStats::new("decode"));
            let _ins = crate::stats::Instruments::new(stats);
            metrics::histogram!("spate_source_delivery_seconds", "source" => "http").record(42.0);
        });
        let text = exporter.render();
        assert!(!text.contains("quantile"), "{text}");
        assert!(
            text.contains(
                "spate_actor_handle_latency_seconds_bucket{actor=\"decode\",le=\"0.0001\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("spate_source_delivery_seconds_bucket{source=\"http\",le=\"60\"} 1"),
            "delivery buckets reach minutes: {text}"
        );
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no help for {name}"
            );
        }
    }
}
