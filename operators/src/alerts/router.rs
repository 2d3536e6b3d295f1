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
    sns: Option<crate::sinks::sns::SnsPublisher>,
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
            sns: None,
        }
    }

    /// Also publishes every notice to an SNS topic.
    pub fn with_sns(mut self, publisher: crate::sinks::sns::SnsPublisher) -> Self {
        self.sns = Some(publisher);
        self
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
            sns: None,
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
        if let Some(publisher) = &self.sns {
            self.outputs
                .push(AlertOutput::Sns(super::outputs::sns::SnsOutput::spawn(
                    publisher.clone(),
                )));
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use spate_engine::testkit::{LeakCheck, ScriptedSource};
    use spate_engine::{ActorOptions, GraphBuilder};

    use super::*;
    use crate::alerts::outputs::tests::sample_alert;
    use crate::alerts::record::AlertState;

    /// A store that fails its first `failures` calls, then keeps everything.
    struct MemoryStore {
        failures: Mutex<usize>,
        calls: Mutex<usize>,
        kept: Mutex<Vec<(Vec<WindowRecord>, Vec<AlertRecord>)>>,
    }

    impl MemoryStore {
        fn failing(failures: usize) -> Arc<Self> {
            Arc::new(MemoryStore {
                failures: Mutex::new(failures),
                calls: Mutex::new(0),
                kept: Mutex::new(Vec::new()),
            })
        }
    }

    impl AlertStore for MemoryStore {
        fn record(&self, windows: &[WindowRecord], alerts: &[AlertRecord]) -> Result<(), String> {
            *self.calls.lock().unwrap() += 1;
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err("store unavailable".into());
            }
            self.kept
                .lock()
                .unwrap()
                .push((windows.to_vec(), alerts.to_vec()));
            Ok(())
        }
    }

    fn output() -> WindowOutput {
        WindowOutput {
            windows: vec![WindowRecord {
                window_start_ms: 0,
                window_end_ms: 300_000,
                service: "api".into(),
                events: 14,
                severity: [0, 0, 14, 0],
                tags: Default::default(),
            }],
            alerts: vec![sample_alert(AlertState::Firing)],
        }
    }

    async fn run(store: Arc<MemoryStore>, file: PathBuf) -> Arc<spate_engine::testkit::SourceLog> {
        let source = ScriptedSource::new([output(), WindowOutput::default()]);
        let log = source.log();
        let mut g = GraphBuilder::new();
        g.source("windows", move || source.clone());
        g.actor(
            "router",
            move || {
                let outputs = vec![AlertOutput::File(FileOutput::open(&file).unwrap())];
                let store: Arc<dyn AlertStore> = store.clone();
                AlertRouter::with_outputs(outputs, Some(store))
            },
            ActorOptions::default(),
        );
        g.connect("windows", "router");
        let pipeline = g.build().unwrap().spawn();
        let leaks = LeakCheck::new(&pipeline);
        pipeline.join().await.unwrap();
        drop(leaks);
        log
    }

    #[tokio::test(start_paused = true)]
    async fn records_in_the_store_writes_outputs_and_acknowledges() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alerts.ndjson");
        let store = MemoryStore::failing(0);
        let log = run(store.clone(), file.clone()).await;
        assert_eq!(log.delivered(), 2);
        // The empty output is not recorded.
        let kept = store.kept.lock().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0[0].events, 14);
        assert_eq!(kept[0].1[0].state, AlertState::Firing);
        let text = std::fs::read_to_string(&file).unwrap();
        let line: AlertRecord = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line, sample_alert(AlertState::Firing));
    }

    #[tokio::test(start_paused = true)]
    async fn store_failures_are_retried_and_notices_still_go_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alerts.ndjson");
        // Fails twice, then accepts.
        let store = MemoryStore::failing(2);
        let log = run(store.clone(), file.clone()).await;
        assert_eq!(log.delivered(), 2);
        assert_eq!(*store.calls.lock().unwrap(), 3);
        assert_eq!(store.kept.lock().unwrap().len(), 1);
        // Always failing: gives up after the attempts, still writes the file.
        let store = MemoryStore::failing(usize::MAX);
        let other = dir.path().join("other.ndjson");
        let log = run(store.clone(), other.clone()).await;
        assert_eq!(log.delivered(), 2);
        assert_eq!(*store.calls.lock().unwrap(), STORE_ATTEMPTS as usize);
        assert_eq!(std::fs::read_to_string(&other).unwrap().lines().count(), 1);
    }
}
