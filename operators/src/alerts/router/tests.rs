//! Unit tests of the alert router with the in-memory window store: recording,
//! store failures, and the rules run on the aggregator's closed windows.

use std::path::Path;
use std::sync::Mutex;

use spate_engine::testkit::{LeakCheck, ScriptedSource, SourceLog};
use spate_engine::{ActorOptions, GraphBuilder};

use super::*;
use crate::alerts::outputs::tests::sample_alert;
use crate::alerts::record::AlertState;
use crate::alerts::record::AlertStoreError;
use crate::alerts::retry::STORE_ATTEMPTS;
use crate::alerts::window_store::MemoryWindowStore;
use crate::windows::WindowAggregator;
use crate::windows::aggregator::tests::{MIN, T, script};

/// A store that fails its first `failures` calls (with `error`), then keeps
/// everything.
struct MemoryStore {
    failures: Mutex<usize>,
    error: AlertStoreError,
    calls: Mutex<usize>,
    kept: Mutex<Vec<(Vec<WindowRecord>, Vec<AlertRecord>)>>,
}

impl MemoryStore {
    fn failing(failures: usize) -> Arc<Self> {
        Self::failing_with(
            failures,
            AlertStoreError::External("store unavailable".into()),
        )
    }

    fn failing_with(failures: usize, error: AlertStoreError) -> Arc<Self> {
        Arc::new(MemoryStore {
            failures: Mutex::new(failures),
            error,
            calls: Mutex::new(0),
            kept: Mutex::new(Vec::new()),
        })
    }
}

impl AlertStore for MemoryStore {
    fn record(
        &self,
        windows: &[WindowRecord],
        alerts: &[AlertRecord],
    ) -> Result<(), AlertStoreError> {
        *self.calls.lock().unwrap() += 1;
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(self.error.clone());
        }
        self.kept
            .lock()
            .unwrap()
            .push((windows.to_vec(), alerts.to_vec()));
        Ok(())
    }
}

/// The window of `sample_alert`: 14 errors of api at `T`.
fn output() -> WindowOutput {
    WindowOutput {
        windows: vec![WindowRecord {
            window_start_ms: T,
            window_end_ms: T + 5 * MIN,
            service: "api".into(),
            events: 14,
            severity: [0, 0, 14, 0],
            tags: Default::default(),
        }],
        closed_until_ms: Some(T + 5 * MIN),
    }
}

fn router(file: &Path, store: Option<Arc<dyn AlertStore>>) -> AlertRouter {
    let outputs = vec![AlertOutput::File(FileOutput::open(file).unwrap())];
    let window_store = Arc::new(MemoryWindowStore::default());
    AlertRouter::with_outputs(outputs, &WindowConfig::default(), store, window_store)
}

async fn run(store: Arc<MemoryStore>, file: PathBuf) -> Arc<SourceLog> {
    // The second output closes nothing.
    let source = ScriptedSource::new([output(), WindowOutput::default()]);
    let log = source.log();
    let mut g = GraphBuilder::new();
    g.source("windows", move || source.clone());
    g.actor(
        "router",
        move || {
            let store: Arc<dyn AlertStore> = store.clone();
            // Processing time one minute after the window's end.
            router(&file, Some(store)).with_wall_base(T + 6 * MIN)
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

#[tokio::test(start_paused = true)]
async fn bad_input_from_the_store_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.ndjson");
    let store = MemoryStore::failing_with(
        usize::MAX,
        AlertStoreError::BadInput("dynamodb hot record window: table not found".into()),
    );
    let log = run(store.clone(), file.clone()).await;
    assert_eq!(log.delivered(), 2);
    assert_eq!(*store.calls.lock().unwrap(), 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
}

/// The aggregator's closed windows through the router: the rules run here
/// (the aggregator knows none), decided at once with the in-memory store.
#[tokio::test(start_paused = true)]
async fn closed_windows_raise_alerts_resolve_and_fall_silent_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.ndjson");
    let store = MemoryStore::failing(0);
    let source = ScriptedSource::new(script()).until_stopped();
    let mut g = GraphBuilder::new();
    let s = source.clone();
    g.source("source", move || s.clone());
    g.actor(
        "windows",
        || {
            // Processing time one hour after the events (a replay).
            WindowAggregator::with_wall_base(&WindowConfig::default(), T + 60 * MIN)
        },
        ActorOptions::default(),
    );
    let (f, k) = (file.clone(), store.clone());
    g.actor(
        "alerts",
        move || {
            let store: Arc<dyn AlertStore> = k.clone();
            let outputs = vec![AlertOutput::File(FileOutput::open(&f).unwrap())];
            // Two windows of events: silence speaks for services seen once.
            AlertRouter::with_outputs_and_rules(
                outputs,
                crate::alerts::rules::default_rules_eager_silence(),
                &WindowConfig::default(),
                Some(store),
                Arc::new(MemoryWindowStore::default()),
            )
            .with_wall_base(T + 60 * MIN)
        },
        ActorOptions::default(),
    );
    g.connect("source", "windows").connect("windows", "alerts");
    let pipeline = g.build().unwrap().spawn();
    let leaks = LeakCheck::new(&pipeline);
    let notices = || -> Vec<AlertRecord> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // Within the idle timeout: what event time closed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(source.log().delivered(), 3);
    let sent = notices();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let firing = &sent[0];
    assert_eq!(firing.id, format!("error_burst:api:{T}:firing"));
    assert_eq!(firing.raised_at_ms, T + 60 * MIN);
    // The late error was not counted: the burst resolved.
    assert_eq!(sent[1].state, AlertState::Resolved);
    assert_eq!(sent[1].window_start_ms, T + 5 * MIN);
    {
        // Each decision recorded its windows with its notices.
        let kept = store.kept.lock().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!((kept[0].0.len(), kept[0].1.len()), (2, 1));
        assert_eq!(kept[0].0[0].severity, [5, 0, 14, 0]);
        assert_eq!((kept[1].0.len(), kept[1].1.len()), (2, 1));
    }

    // Idle: the clock closes the last window, and both services fall silent.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let sent = notices();
    assert_eq!(sent.len(), 4, "{sent:#?}");
    let silent: Vec<(&str, i64)> = sent[2..]
        .iter()
        .map(|a| (a.service.as_str(), a.window_start_ms))
        .collect();
    assert_eq!(silent, [("web", T + 10 * MIN), ("api", T + 15 * MIN)]);
    assert!(sent[2..].iter().all(|a| a.rule == "silence"));

    pipeline.stop();
    pipeline.join().await.unwrap();
    drop(leaks);
}

/// What the local webhook receiver got: one JSON body per message.
#[derive(Default)]
struct Hook {
    bodies: Mutex<Vec<serde_json::Value>>,
    arrived: tokio::sync::Notify,
}

async fn hook() -> (String, Arc<Hook>) {
    let seen = Arc::new(Hook::default());
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = state.clone();
            async move {
                seen.bodies
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                seen.arrived.notify_one();
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

/// Routing, grouping and a silence read from the hot store, through the
/// router: payments' notices go to the webhook (grouped into one message)
/// and the file, the others to the file, and the silenced service nowhere.
#[tokio::test(start_paused = true)]
async fn routes_group_per_service_and_honour_silences_from_the_hot_store() {
    use crate::alerts::outputs::webhook::{WebhookConfig, WebhookOutput};
    use crate::alerts::routing::{OutputName, RouteConfig};
    use crate::alerts::silence::{Silence, SilenceStore};

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.ndjson");
    let hot = crate::sinks::hot::HotStore::open(&dir.path().join("hot.db")).unwrap();
    // What `spate alerts silence web --for 1d` writes.
    hot.put_silence(&Silence {
        service: "web".into(),
        created_ms: T,
        until_ms: T + 24 * 60 * MIN,
        reason: "maintenance".into(),
    })
    .unwrap();
    let (url, seen) = hook().await;
    let webhook = WebhookOutput::with_client(
        &WebhookConfig {
            url,
            ..WebhookConfig::default()
        },
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let outputs = vec![
        AlertOutput::File(FileOutput::open(&file).unwrap()),
        AlertOutput::Webhook(webhook),
    ];
    let mut payments = RouteConfig::to(&[OutputName::Webhook]);
    payments.services = vec!["payments".into()];
    payments.continue_matching = true;
    let routes = vec![payments, RouteConfig::to(&[OutputName::File])];
    let window = |service: &str, severity: [u64; 4]| WindowRecord {
        window_start_ms: T,
        window_end_ms: T + 5 * MIN,
        service: service.into(),
        events: severity.iter().sum(),
        severity,
        tags: Default::default(),
    };
    let source = ScriptedSource::new([WindowOutput {
        windows: vec![
            window("payments", [0, 0, 14, 2]),
            window("web", [0, 0, 0, 3]),
            window("api", [0, 0, 12, 0]),
        ],
        closed_until_ms: Some(T + 5 * MIN),
    }]);
    let mut g = GraphBuilder::new();
    g.source("windows", move || source.clone());
    let (hot_store, outputs) = (Arc::new(hot), Mutex::new(Some(outputs)));
    g.actor(
        "router",
        move || {
            let outputs = outputs.lock().unwrap().take().expect("started once");
            AlertRouter::with_outputs(
                outputs,
                &WindowConfig::default(),
                None,
                Arc::new(MemoryWindowStore::default()),
            )
            .with_routes(routes.clone())
            .with_silences(hot_store.clone())
            .with_wall_base(T + 6 * MIN)
        },
        ActorOptions::default(),
    );
    g.connect("windows", "router");
    let pipeline = g.build().unwrap().spawn();
    seen.arrived.notified().await;
    pipeline.join().await.unwrap();

    let filed: Vec<(String, String)> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<AlertRecord>(l).unwrap())
        .map(|a| (a.rule, a.service))
        .collect();
    let pair = |r: &str, s: &str| (r.to_string(), s.to_string());
    assert_eq!(
        filed,
        [
            pair("critical", "payments"),
            pair("error_burst", "api"),
            pair("error_burst", "payments")
        ]
    );
    let bodies = seen.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1, "one grouped message: {bodies:#?}");
    let text = bodies[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("ALERTS service=payments window=")
            && text.ends_with("2 firing (critical, error_burst)"),
        "{text}"
    );
    assert_eq!(bodies[0]["attachments"].as_array().unwrap().len(), 2);
}
