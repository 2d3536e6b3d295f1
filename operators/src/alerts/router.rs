//! The alert router: the sink after the window aggregator, and the one place
//! where the alert rules run. For every [`WindowOutput`] (closed windows, and
//! the closed bound) it adds the windows' counts to its [`WindowStore`],
//! decides the rules on the merged counts ([`super::pending`]: at once with
//! the in-memory store, after the settle delay with a shared one), records
//! the windows and notices in the [`AlertStore`] (when there is one and the
//! window store is not shared: a shared store records them itself), writes
//! the notices to every output, and delivers the batch's ack (with a shared
//! store, as soon as the counts are added).
//!
//! Before the outputs, notices of silenced services are held back
//! ([`super::silence`], read from the hot store every
//! [`REFRESH`](super::silence::REFRESH)), and each notice goes to the outputs
//! its routes name ([`super::routing`]; every output without routes).
//!
//! A store failure is retried with backoff (not when it is bad input); if it
//! persists the notices still go to the outputs, and the failure is logged
//! and counted in `spate_alert_store_failures_total` (window records are not
//! replayable: the aggregator acknowledged its input when it counted it). An
//! output failing (stdout, file) is logged and counted in
//! `spate_alert_deliveries_failed_total{output}`; the other outputs still get
//! the notices.
//!
//! # Backpressure
//!
//! The stores are called on the blocking pool; stdout and file writes are
//! small; the webhook only enqueues. None of them waits on the network.
//! Windows pending their settle delay (shared store) wait in memory, checked
//! on the tick.
//!
//! # Shutdown
//!
//! `close` decides the windows still pending their settle delay at once
//! (shared store), then drains the webhook queue within its deadline (see
//! [`super::outputs::webhook`]).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use spate_engine::{Actor, ActorResult, Batch, Ctx, NoOutput};
use tokio::time::Instant;

use super::anomaly::store::BaselineStore;
use super::outputs::AlertOutput;
use super::outputs::file::FileOutput;
use super::outputs::pagerduty::PagerDutyOutput;
use super::outputs::stdout::StdoutOutput;
use super::outputs::webhook::WebhookOutput;
use super::pending::{ClaimStats, PendingWindows};
use super::record::{AlertRecord, AlertStore, WindowRecord};
use super::retry::blocking_with_retries;
use super::routing::{OutputName, RoutingTable};
use super::rules::Rule;
use super::silence::{REFRESH, SilenceFilter, SilenceStore};
use super::window_store::WindowStore;
use super::{AlertError, AlertsConfig};
use crate::tap::{self, TapItem, TapStage};
use crate::windows::{WindowConfig, WindowOutput};

/// The alert router actor (`WindowOutput` in, nothing out).
pub struct AlertRouter {
    config: AlertsConfig,
    default_file: PathBuf,
    store: Option<Arc<dyn AlertStore>>,
    pending: PendingWindows,
    outputs: Vec<AlertOutput>,
    sns: Option<crate::sinks::sns::SnsPublisher>,
    window_metrics: Option<crate::windows::emf::WindowMetrics>,
    routing: RoutingTable,
    /// Rule → the tags of its alerts, for routing.
    rule_tags: HashMap<String, Vec<String>>,
    silences: Option<Arc<dyn SilenceStore>>,
    silence_filter: SilenceFilter,
    silences_read_at: Option<Instant>,
}

impl AlertRouter {
    /// A router for `config` (its rules validated here) over windows of
    /// `windows`: `store` records windows and notices for queries (the hot
    /// store), `window_store` holds the counts the rules run on
    /// ([`MemoryWindowStore`](super::window_store::MemoryWindowStore) for one
    /// process, the DynamoDB hot store when several share the windows).
    /// `default_file` is the NDJSON path used when the file output is
    /// enabled without a path (`<data-dir>/alerts.ndjson`). Outputs open in
    /// `start`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use spate_operators::alerts::AlertsConfig;
    /// use spate_operators::alerts::router::AlertRouter;
    /// use spate_operators::alerts::window_store::MemoryWindowStore;
    /// use spate_operators::windows::WindowConfig;
    /// let router = AlertRouter::new(
    ///     AlertsConfig::default(),
    ///     &WindowConfig::default(),
    ///     "/tmp/alerts.ndjson".into(),
    ///     None,
    ///     Arc::new(MemoryWindowStore::default()),
    /// )
    /// .unwrap();
    /// ```
    pub fn new(
        config: AlertsConfig,
        windows: &WindowConfig,
        default_file: PathBuf,
        store: Option<Arc<dyn AlertStore>>,
        window_store: Arc<dyn WindowStore>,
    ) -> Result<Self, AlertError> {
        let rules = config
            .validate()
            .map_err(|e| AlertError::Config(e.to_string()))?;
        Ok(Self::with_rules(
            config,
            rules,
            windows,
            default_file,
            store,
            window_store,
        ))
    }

    /// [`AlertRouter::new`] with `config`'s rules already validated.
    pub fn with_rules(
        config: AlertsConfig,
        rules: Vec<Rule>,
        windows: &WindowConfig,
        default_file: PathBuf,
        store: Option<Arc<dyn AlertStore>>,
        window_store: Arc<dyn WindowStore>,
    ) -> Self {
        let rule_tags = rules
            .iter()
            .map(|r| (r.name.clone(), r.labels.clone()))
            .collect();
        let routing = RoutingTable::new(config.routes.clone(), config.configured_outputs());
        let pending = PendingWindows::new(window_store, windows, rules, config.cooldown_ms());
        AlertRouter {
            config,
            default_file,
            store,
            pending,
            outputs: Vec::new(),
            sns: None,
            window_metrics: None,
            routing,
            rule_tags,
            silences: None,
            silence_filter: SilenceFilter::default(),
            silences_read_at: None,
        }
    }

    /// A router with the default rules writing to the given outputs (tests,
    /// custom writers).
    pub fn with_outputs(
        outputs: Vec<AlertOutput>,
        windows: &WindowConfig,
        store: Option<Arc<dyn AlertStore>>,
        window_store: Arc<dyn WindowStore>,
    ) -> Self {
        Self::with_outputs_and_rules(
            outputs,
            super::rules::default_rules(),
            windows,
            store,
            window_store,
        )
    }

    /// [`AlertRouter::with_outputs`] with `rules` instead of the defaults.
    pub fn with_outputs_and_rules(
        outputs: Vec<AlertOutput>,
        rules: Vec<super::rules::AlertRuleConfig>,
        windows: &WindowConfig,
        store: Option<Arc<dyn AlertStore>>,
        window_store: Arc<dyn WindowStore>,
    ) -> Self {
        let config = AlertsConfig {
            stdout: false,
            file_enabled: false,
            rules,
            ..AlertsConfig::default()
        };
        let rules = config.validate().expect("the rules are valid");
        let mut router =
            Self::with_rules(config, rules, windows, PathBuf::new(), store, window_store);
        router.outputs = outputs;
        router
    }

    /// Routes notices as `routes` say among the outputs already given
    /// ([`AlertRouter::with_outputs`]).
    pub fn with_routes(mut self, routes: Vec<super::routing::RouteConfig>) -> Self {
        let outputs = self.outputs.iter().map(AlertOutput::kind).collect();
        self.routing = RoutingTable::new(routes.clone(), outputs);
        self.config.routes = routes;
        self
    }

    /// Also publishes every notice to an SNS topic.
    pub fn with_sns(mut self, publisher: crate::sinks::sns::SnsPublisher) -> Self {
        self.sns = Some(publisher);
        self
    }

    /// Prints every closed window's counts as CloudWatch EMF lines on
    /// stdout (this process's own counts, also in shared-window mode: the
    /// tasks' lines add up in CloudWatch).
    pub fn with_window_metrics(mut self, metrics: crate::windows::emf::WindowMetrics) -> Self {
        self.window_metrics = Some(metrics);
        self
    }

    /// Keeps anomaly baselines in `baselines` (the hot store), so they
    /// survive a restart and are shared with the processes of a shared
    /// window store. Default: memory.
    pub fn with_baselines(mut self, baselines: Arc<dyn BaselineStore>) -> Self {
        self.pending = self.pending.with_baselines(baselines);
        self
    }

    /// Honours the silences (maintenance windows) kept in `silences`.
    pub fn with_silences(mut self, silences: Arc<dyn SilenceStore>) -> Self {
        self.silences = Some(silences);
        self
    }

    /// The decision state (the evaluator and its baselines).
    pub fn pending(&self) -> &PendingWindows {
        &self.pending
    }

    /// Counts claims in `stats` (kept across restarts of the router; shared
    /// window store only).
    pub fn with_claim_stats(mut self, stats: Arc<ClaimStats>) -> Self {
        self.pending = self.pending.with_stats(stats);
        self
    }

    /// Stamps notices as if the processing clock read `wall_base_ms` now
    /// (tests replaying old event times).
    pub fn with_wall_base(mut self, wall_base_ms: i64) -> Self {
        self.pending = self.pending.with_wall_base(wall_base_ms);
        self
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
        if let Some(pagerduty) = &self.config.pagerduty {
            self.outputs
                .push(AlertOutput::Pagerduty(PagerDutyOutput::spawn(pagerduty)?));
        }
        Ok(())
    }
}

/// Records in the store (if any), retrying; gives up with a log line and a
/// counter.
async fn record(
    store: Option<&Arc<dyn AlertStore>>,
    windows: Vec<WindowRecord>,
    alerts: &[AlertRecord],
) {
    let Some(store) = store else { return };
    if windows.is_empty() && alerts.is_empty() {
        return;
    }
    let (store, alerts) = (store.clone(), alerts.to_vec());
    let _ = blocking_with_retries("record windows and alerts", move || {
        store.record(&windows, &alerts)
    })
    .await;
}

impl AlertRouter {
    /// Decides what is due (everything with `all`), records it unless the
    /// window store is shared (it recorded them itself), and writes the
    /// notices to every output.
    async fn decide_and_send(&mut self, all: bool) {
        let decided = self.pending.decide_due(all).await;
        if !self.pending.is_shared() {
            record(self.store.as_ref(), decided.windows, &decided.notices).await;
        }
        self.send(&decided.notices).await;
    }

    /// Reads the silences again when the last read is older than
    /// [`REFRESH`]; a failed read keeps the ones known.
    async fn refresh_silences(&mut self) {
        let Some(store) = &self.silences else { return };
        if self
            .silences_read_at
            .is_some_and(|at| at.elapsed() < REFRESH)
        {
            return;
        }
        let (store, now_ms) = (store.clone(), self.pending.now_ms());
        if let Ok(silences) =
            blocking_with_retries("read silences", move || store.active_silences(now_ms)).await
        {
            self.silence_filter.set(silences);
        }
        self.silences_read_at = Some(Instant::now());
    }

    /// Counts `alerts`, holds back the silenced ones, and writes each of the
    /// others to the outputs its routes name.
    async fn send(&mut self, alerts: &[AlertRecord]) {
        if alerts.is_empty() {
            return;
        }
        tap::point(TapStage::Alerts).offer(|| TapItem::Alerts(Arc::new(alerts.to_vec())));
        self.refresh_silences().await;
        for alert in alerts {
            metrics::counter!(
                "spate_alerts_total",
                "rule" => alert.rule.clone(),
                "state" => alert.state.as_str()
            )
            .increment(1);
        }
        let passing: Vec<AlertRecord> = alerts
            .iter()
            .filter(|a| self.silence_filter.passes(a))
            .cloned()
            .collect();
        if passing.is_empty() {
            return;
        }
        let routed = !self.config.routes.is_empty();
        let mut per_output: BTreeMap<OutputName, Vec<AlertRecord>> = BTreeMap::new();
        if routed {
            let none = Vec::new();
            for alert in &passing {
                let tags = self.rule_tags.get(&alert.rule).unwrap_or(&none);
                for output in self.routing.route(alert, tags) {
                    per_output.entry(output).or_default().push(alert.clone());
                }
            }
        }
        for output in &mut self.outputs {
            let alerts = if routed {
                match per_output.get(&output.kind()) {
                    Some(alerts) => alerts.as_slice(),
                    None => continue,
                }
            } else {
                passing.as_slice()
            };
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
        // The counts are in the window store before the ack; in one process
        // they are decided at once, with a shared store on the tick, after
        // the settle delay.
        if let Some(metrics) = &self.window_metrics {
            metrics.print(&batch.payload.windows);
        }
        self.pending.add(&batch.payload).await;
        if !self.pending.is_shared() {
            self.decide_and_send(false).await;
        }
        batch.deliver();
        Ok(())
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.pending.tick_interval()
    }

    async fn tick(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.decide_and_send(false).await;
        Ok(())
    }

    async fn close(&mut self, _ctx: &mut Ctx<NoOutput>) -> ActorResult {
        self.decide_and_send(true).await;
        for output in std::mem::take(&mut self.outputs) {
            output.close().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
