//! The Prometheus exporter that a service mounts on `/metrics`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
    recorder: Option<metrics_exporter_prometheus::PrometheusRecorder>,
}

impl PrometheusExporter {
    /// Installs the exporter as the process-wide recorder (once per process).
    pub fn install() -> Result<Self, InstallError> {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| InstallError(e.to_string()))?;
        Ok(PrometheusExporter {
            handle,
            recorder: None,
        })
    }

    /// An exporter not installed globally; record into it with
    /// [`metrics::with_local_recorder`] and [`PrometheusExporter::recorder`].
    pub fn new_local() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        PrometheusExporter {
            handle: recorder.handle(),
            recorder: Some(recorder),
        }
    }

    /// The local recorder (only for [`PrometheusExporter::new_local`]).
    pub fn recorder(&self) -> &metrics_exporter_prometheus::PrometheusRecorder {
        self.recorder
            .as_ref()
            .expect("recorder() is only available on a local exporter")
    }

    /// The current metrics in Prometheus text format, for a `/metrics` response.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
