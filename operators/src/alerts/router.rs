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
//! In shared-window mode ([`AlertRouter::with_shared`], see [`super::shared`])
//! the router adds the partial counts of closed windows to the shared store
//! before the ack, runs the rules itself on the merged counts once their
//! settle delay is over (on its tick), and sends only the notices whose claim
//! it wins.
//!
//! # Backpressure
//!
//! The store is called on the blocking pool; stdout and file writes are small;
//! the webhook only enqueues. None of them waits on the network. Windows
//! pending their settle delay (shared mode) wait in memory, checked on the
//! tick.
//!
//! # Shutdown
//!
//! `close` evaluates the windows still pending their settle delay at once
//! (shared mode), then drains the webhook queue within its deadline (see
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
use super::shared::SharedWindows;
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
    shared: Option<SharedWindows>,
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
            shared: None,
        }
    }

    /// Also publishes every notice to an SNS topic.
    pub fn with_sns(mut self, publisher: crate::sinks::sns::SnsPublisher) -> Self {
        self.sns = Some(publisher);
        self
    }

    /// Shared-window mode ([`super::shared`]): partial counts go to the
    /// shared store, the rules run here on the merged counts, and only the
    /// notices whose claim this process wins are sent. The store given to
    /// [`AlertRouter::new`] is then not called.
    pub fn with_shared(mut self, shared: SharedWindows) -> Self {
        self.shared = Some(shared);
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
            shared: None,
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

/// Runs `call` on the blocking pool, retrying a few times with backoff;
/// gives up with a log line and `spate_alert_store_failures_total`.
pub(crate) async fn blocking_with_retries<T: Send + 'static>(
    what: &'static str,
    call: impl Fn() -> Result<T, String> + Send + Sync + 'static,
) -> Result<T, String> {
    let call = Arc::new(call);
    let mut delay = STORE_BACKOFF;
    let mut attempt = 1;
    loop {
        let c = call.clone();
        let result = tokio::task::spawn_blocking(move || c())
            .await
            .unwrap_or_else(|e| Err(format!("store call panicked: {e}")));
        match result {
            Ok(v) => return Ok(v),
            Err(e) if attempt < STORE_ATTEMPTS => {
                tracing::warn!(attempt, "alert store failed to {what}, retrying: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => {
                metrics::counter!("spate_alert_store_failures_total").increment(1);
                let e = AlertError::Store(format!(
                    "cannot {what}, giving up after {attempt} attempts: {e}"
                ));
                tracing::error!("{e}");
                return Err(e.to_string());
            }
        }
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
    let (store, windows, alerts) = (store.clone(), windows.to_vec(), alerts.to_vec());
    let _ = blocking_with_retries("record windows and alerts", move || {
        store.record(&windows, &alerts)
    })
    .await;
}

impl AlertRouter {
    /// Counts and writes `alerts` to every output.
    fn send(&mut self, alerts: &[AlertRecord]) {
        if alerts.is_empty() {
            return;
        }
        for alert in alerts {
            metrics::counter!(
                "spate_alerts_total",
                "rule" => alert.rule.clone(),
                "state" => alert.state.as_str()
            )
            .increment(1);
        }
        for output in &mut self.outputs {
            if let Err(e) = output.send(alerts) {
                metrics::counter!("spate_alert_deliveries_failed_total", "output" => output.name())
                    .increment(alerts.len() as u64);
                tracing::error!(output = output.name(), "alert output failed: {e}");
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
        let send = match &mut self.shared {
            Some(shared) => {
                // The partial counts are in the store before the ack; the
                // rules run later, on the tick.
                shared.add(out).await;
                shared.claim(&out.alerts).await
            }
            None => {
                record(self.store.as_ref(), &out.windows, &out.alerts).await;
                out.alerts.clone()
            }
        };
        self.send(&send);
        batch.deliver();
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.shared.as_ref().map(SharedWindows::tick_interval)
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        if let Some(shared) = &mut self.shared {
            let send = shared.evaluate_due(false).await;
            self.send(&send);
        }
        Ok(())
    }

    async fn close(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        if let Some(shared) = &mut self.shared {
            let send = shared.evaluate_due(true).await;
            self.send(&send);
        }
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
            closed_until_ms: Some(300_000),
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
