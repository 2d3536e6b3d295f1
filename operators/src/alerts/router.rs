//! The alert router: the sink after the window aggregator. It records closed
//! windows and notices in the [`AlertStore`] (when there is one), then writes
//! the notices to every output, then delivers the batch's ack.
//!
//! A store failure is retried a few times with backoff; if it persists the
//! notices still go to the outputs, and the failure is logged and counted in
//! `spate_alert_store_failures_total` (window records are not replayable: the
//! aggregator acknowledged its input when it counted it). An output failing
//! (stdout, file) is logged and counted in
//! `spate_alert_deliveries_failed_total{output}`; the other outputs still get
//! the notices.
//!
//! # Backpressure
//!
//! The store is called on the blocking pool; stdout and file writes are small;
//! the webhook only enqueues. None of them waits on the network.
//!
//! # Shutdown
//!
//! `close` drains the webhook queue within its deadline (see
//! [`super::outputs::webhook`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spate_engine::{Actor, ActorResult, Batch, Ctx, NoOutput};

use super::outputs::AlertOutput;
use super::outputs::file::FileOutput;
use super::outputs::stdout::StdoutOutput;
use super::outputs::webhook::WebhookOutput;
use super::record::{AlertRecord, AlertStore, WindowRecord};
use super::{AlertError, AlertsConfig};
use crate::windows::WindowOutput;

/// Attempts at recording one batch in the store before going on without it.
const STORE_ATTEMPTS: u32 = 4;
/// Delay before the first store retry; doubles each time.
const STORE_BACKOFF: Duration = Duration::from_millis(200);

/// The alert router actor (`WindowOutput` in, nothing out).
pub struct AlertRouter {
    config: AlertsConfig,
    default_file: PathBuf,
    store: Option<Arc<dyn AlertStore>>,
    outputs: Vec<AlertOutput>,
}

impl AlertRouter {
    /// A router for `config`; `default_file` is the NDJSON path used when the
    /// file output is enabled without a path (`<data-dir>/alerts.ndjson`).
    /// Outputs open in `start`.
    pub fn new(
        config: AlertsConfig,
        default_file: PathBuf,
        store: Option<Arc<dyn AlertStore>>,
    ) -> Self {
        AlertRouter {
            config,
            default_file,
            store,
            outputs: Vec::new(),
        }
    }

    /// A router writing to the given outputs (tests, custom writers).
    pub fn with_outputs(outputs: Vec<AlertOutput>, store: Option<Arc<dyn AlertStore>>) -> Self {
        AlertRouter {
            config: AlertsConfig {
                stdout: false,
                file_enabled: false,
                ..AlertsConfig::default()
            },
            default_file: PathBuf::new(),
            store,
            outputs,
        }
    }

    fn open_outputs(&mut self) -> Result<(), AlertError> {
        if self.config.stdout {
            self.outputs.push(AlertOutput::Stdout(StdoutOutput::new()));
        }
        if let Some(path) = self.config.file_path(&self.default_file) {
            self.outputs
                .push(AlertOutput::File(FileOutput::open(&path)?));
        }
        if let Some(webhook) = &self.config.webhook {
            self.outputs
                .push(AlertOutput::Webhook(WebhookOutput::spawn(webhook)?));
        }
        Ok(())
    }
}

/// Records in the store (if any), retrying a few times; gives up with a log
/// line and a counter.
async fn record(
    store: Option<&Arc<dyn AlertStore>>,
    windows: &[WindowRecord],
    alerts: &[AlertRecord],
) {
    let Some(store) = store else { return };
    if windows.is_empty() && alerts.is_empty() {
        return;
    }
    let (windows, alerts) = (Arc::new(windows.to_vec()), Arc::new(alerts.to_vec()));
    let mut delay = STORE_BACKOFF;
    for attempt in 1..=STORE_ATTEMPTS {
        let (s, w, a) = (store.clone(), windows.clone(), alerts.clone());
        let result = tokio::task::spawn_blocking(move || s.record(&w, &a))
            .await
            .unwrap_or_else(|e| Err(format!("store call panicked: {e}")));
        match result {
            Ok(()) => return,
            Err(e) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(attempt, "alert store failed, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                metrics::counter!("spate_alert_store_failures_total").increment(1);
                tracing::error!(
                    windows = windows.len(),
                    alerts = alerts.len(),
                    "{}",
                    AlertError::Store(format!("giving up after {attempt} attempts: {e}"))
                );
            }
        }
    }
}

impl Actor for AlertRouter {
    type In = WindowOutput;
    type Out = NoOutput;

    async fn start(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        if self.outputs.is_empty() {
            self.open_outputs()?;
        }
        Ok(())
    }

    async fn handle(
        &mut self,
        batch: Batch<WindowOutput>,
        _ctx: &mut Ctx<NoOutput>,
    ) -> ActorResult {
        let out = &batch.payload;
        record(self.store.as_ref(), &out.windows, &out.alerts).await;
        for alert in &out.alerts {
            metrics::counter!(
                "spate_alerts_total",
                "rule" => alert.rule.clone(),
                "state" => alert.state.as_str()
            )
            .increment(1);
        }
        if !out.alerts.is_empty() {
            for output in &mut self.outputs {
                if let Err(e) = output.send(&out.alerts) {
                    metrics::counter!("spate_alert_deliveries_failed_total", "output" => output.name())
                        .increment(out.alerts.len() as u64);
                    tracing::error!(output = output.name(), "alert output failed: {e}");
                }
            }
        }
        batch.deliver();
        Ok(())
    }

    async fn close(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        for output in std::mem::take(&mut self.outputs) {
            output.close().await;
        }
        Ok(())
    }
}
