//! Tests of the send loop: a scripted in-memory target under tokio's paused clock, and one
//! HTTP exchange against a local axum server.

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;

use serde_json::Value;

use super::*;

/// Answers from a script (then success), after `delay`; keeps what it was sent.
#[derive(Default)]
struct ScriptedTarget {
    script: StdMutex<VecDeque<Result<(), SendError>>>,
    delay: Duration,
    received: StdMutex<Vec<(Instant, Bytes)>>,
}

impl ScriptedTarget {
    fn new(script: Vec<Result<(), SendError>>, delay: Duration) -> Arc<Self> {
        Arc::new(ScriptedTarget {
            script: StdMutex::new(script.into()),
            delay,
            received: StdMutex::default(),
        })
    }

    fn received(&self) -> Vec<(Instant, Bytes)> {
        self.received.lock().unwrap().clone()
    }
}

impl Target for ScriptedTarget {
    fn describe(&self) -> String {
        "scripted".to_owned()
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            self.received
                .lock()
                .unwrap()
                .push((Instant::now(), body.clone()));
            sleep(self.delay).await;
            self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
        })
    }
}

fn plan(rate: f64, seconds: u64, batch_events: u64) -> SendPlan {
    SendPlan {
        workload: Workload::AppJson,
        seed: 5,
        schedule: Schedule::new(
            Profile::Steady,
            rate,
            Some(Duration::from_secs(seconds)),
            batch_events,
        )
        .unwrap(),
        run_id: RunId::new("test-run").unwrap(),
        concurrency: 2,
        max_overdue: 4,
        progress: false,
    }
}

fn events(body: &[u8]) -> Vec<Value> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn never() -> std::future::Pending<()> {
    std::future::pending()
}

#[tokio::test(start_paused = true)]
async fn steady_run_delivers_every_batch_on_schedule() {
    let target = ScriptedTarget::new(Vec::new(), Duration::ZERO);
    let started = Instant::now();
    let report = run(plan(100.0, 5, 50), target.clone(), never()).await;
    assert_eq!(report.scheduled, 500);
    assert_eq!((report.sent, report.acknowledged), (500, 500));
    assert_eq!(report.acknowledged_seqs.ranges(), &[[0, 500]]);
    assert_eq!((report.rejected, report.errors, report.failed), (0, 0, 0));
    assert_eq!(report.dropped_by_generator, 0);
    assert_eq!(report.latency.count, 10);
    assert_eq!(report.latency.max_ms, 0.0);
    assert_eq!(report.achieved_rate_per_s, 100.0);
    assert_eq!(
        report
            .per_second
            .iter()
            .map(|s| s.acknowledged)
            .collect::<Vec<_>>(),
        vec![100; 5]
    );
    let received = target.received();
    assert_eq!(received.len(), 10);
    let mut seqs = Vec::new();
    let mut first_sent_ms = None;
    for (k, (at, body)) in received.iter().enumerate() {
        // Batch k is due k × 0.5 s after the start and goes out right then.
        assert_eq!(*at - started, Duration::from_millis(500 * k as u64));
        let events = events(body);
        assert_eq!(events.len(), 50);
        let sent_ms = events[0]["lg_sent_ms"].as_u64().unwrap();
        let first = *first_sent_ms.get_or_insert(sent_ms);
        assert_eq!(sent_ms - first, 500 * k as u64);
        for event in events {
            assert_eq!(event["lg_run"], "test-run");
            assert_eq!(event["lg_sent_ms"].as_u64(), Some(sent_ms));
            seqs.push(event["lg_seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seqs, (0..500).collect::<Vec<u64>>());
}

#[tokio::test(start_paused = true)]
async fn a_slow_target_shows_in_latency_and_overdue_batches_are_dropped() {
    // One sender needing 2 s a batch, a batch due every 0.5 s, room for 2 overdue batches.
    let target = ScriptedTarget::new(Vec::new(), Duration::from_secs(2));
    let mut plan = plan(100.0, 10, 50);
    plan.concurrency = 1;
    plan.max_overdue = 2;
    let report = run(plan, target.clone(), never()).await;
    assert_eq!(report.scheduled, 1_000);
    assert!(report.dropped_by_generator > 0, "{report:?}");
    assert_eq!(report.sent + report.dropped_by_generator, report.scheduled);
    assert_eq!(report.acknowledged, report.sent);
    // Measured from the scheduled time: queueing behind the slow target counts.
    assert!(report.latency.max_ms >= 4_000.0, "{:?}", report.latency);
    assert!(report.latency.p50_ms >= 2_000.0, "{:?}", report.latency);
    // Dropped batches take no sequence numbers: what was sent is 0..sent.
    let seqs: Vec<u64> = target
        .received()
        .iter()
        .flat_map(|(_, body)| events(body))
        .map(|e| e["lg_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..report.sent).collect::<Vec<u64>>());
    assert!(report.elapsed_s > 10.0);
    assert!(report.achieved_rate_per_s < 100.0);
}

#[tokio::test(start_paused = true)]
async fn rejections_wait_for_retry_after_then_succeed() {
    let rejected = || {
        Err(SendError::Rejected {
            status: 429,
            retry_after: Duration::from_secs(3),
        })
    };
    let target = ScriptedTarget::new(vec![rejected(), rejected()], Duration::ZERO);
    let mut plan = plan(10.0, 1, 10);
    plan.concurrency = 1;
    let started = Instant::now();
    let report = run(plan, target.clone(), never()).await;
    assert_eq!((report.acknowledged, report.failed), (10, 0));
    assert_eq!((report.rejected, report.retries, report.errors), (2, 2, 0));
    let received = target.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].0 - started, Duration::from_secs(6));
    assert!(received.iter().all(|(_, body)| body == &received[0].1));
    // Three significant digits.
    assert!(
        (report.latency.max_ms - 6_000.0).abs() < 6.0,
        "{:?}",
        report.latency
    );
}

#[tokio::test(start_paused = true)]
async fn errors_are_retried_three_times_then_the_events_fail() {
    let failed = || {
        Err(SendError::Failed {
            status: 500,
            detail: "boom".into(),
        })
    };
    let target = ScriptedTarget::new(vec![failed(), failed(), failed(), failed()], Duration::ZERO);
    let mut plan = plan(10.0, 2, 10);
    plan.concurrency = 1;
    let started = Instant::now();
    let report = run(plan, target.clone(), never()).await;
    assert_eq!(report.scheduled, 20);
    assert_eq!((report.errors, report.retries), (4, 3));
    assert_eq!(
        (report.sent, report.acknowledged, report.failed),
        (20, 10, 10)
    );
    // Only the second batch's numbers were acknowledged.
    assert_eq!(report.acknowledged_seqs.ranges(), &[[10, 20]]);
    assert!(report.last_error.as_deref().unwrap().contains("boom"));
    let at: Vec<Duration> = target
        .received()
        .iter()
        .map(|(t, _)| *t - started)
        .collect();
    // Backoff 0.2, 0.4, 0.8 s; the second batch (due at 1 s) waits for the only sender.
    let ms = |m| Duration::from_millis(m);
    assert_eq!(at, vec![ms(0), ms(200), ms(600), ms(1_400), ms(1_400)]);
}

#[tokio::test(start_paused = true)]
async fn refusals_are_not_retried() {
    let refused = Err(SendError::Refused {
        status: 401,
        detail: "missing token".into(),
    });
    let target = ScriptedTarget::new(vec![refused], Duration::ZERO);
    let report = run(plan(10.0, 1, 10), target.clone(), never()).await;
    assert_eq!((report.errors, report.retries, report.failed), (1, 0, 10));
    assert_eq!(target.received().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_schedule_early() {
    let target = ScriptedTarget::new(Vec::new(), Duration::ZERO);
    let report = run(
        plan(100.0, 60, 100),
        target.clone(),
        sleep(Duration::from_millis(2_500)),
    )
    .await;
    assert!(report.interrupted);
    // Batches due at 0, 1, 2 s went out; the one due at 3 s did not.
    assert_eq!(report.acknowledged, 300);
    assert_eq!(report.scheduled, 6_000);
}

/// Requests the local ingest saw: (Authorization header, body).
type SeenRequests = Arc<StdMutex<Vec<(Option<String>, String)>>>;

/// A local stand-in for `spate run`'s ingest: 429 with `Retry-After: 1` to the first
/// request, then 200 `{"accepted": <lines>}`.
async fn spawn_ingest() -> (String, SeenRequests) {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    let seen: SeenRequests = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/logs",
        post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let auth = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let lines = body.lines().count();
                let first = {
                    let mut log = log.lock().unwrap();
                    log.push((auth, body));
                    log.len() == 1
                };
                if first {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(header::RETRY_AFTER, "1")],
                        "",
                    )
                        .into_response()
                } else {
                    axum::Json(serde_json::json!({ "accepted": lines })).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test(start_paused = true)]
async fn http_target_retries_after_429_and_is_acknowledged() {
    let (base, seen) = spawn_ingest().await;
    let options = HttpOptions {
        token: Some("secret".into()),
        compression: BodyCompression::None,
        timeout: None,
        pool_size: 1,
    };
    let target: Arc<dyn Target> = Arc::new(HttpTarget::new(&base, options).unwrap());
    let mut plan = plan(20.0, 1, 20);
    plan.concurrency = 1;
    let report = run(plan, target, never()).await;
    assert_eq!(report.target, format!("{base}/v1/logs"));
    assert_eq!((report.sent, report.acknowledged), (20, 20));
    assert_eq!((report.rejected, report.retries), (1, 1));
    assert_eq!((report.errors, report.failed), (0, 0));
    assert!(report.latency.max_ms >= 1_000.0, "{:?}", report.latency);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, seen[1].1, "the same batch is sent again");
    assert_eq!(seen[1].0.as_deref(), Some("Bearer secret"));
    let seqs: Vec<u64> = events(seen[1].1.as_bytes())
        .iter()
        .map(|e| e["lg_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..20).collect::<Vec<u64>>());
}

#[tokio::test(start_paused = true)]
async fn stop_during_the_drain_ends_retries() {
    // The target always answers 503; without a stop the batch would be retried 100 times.
    let busy = (0..200)
        .map(|_| {
            Err(SendError::Rejected {
                status: 503,
                retry_after: Duration::from_secs(1),
            })
        })
        .collect();
    let target = ScriptedTarget::new(busy, Duration::ZERO);
    let started = Instant::now();
    let report = run(
        plan(10.0, 1, 10),
        target.clone(),
        sleep(Duration::from_millis(4_500)),
    )
    .await;
    assert!(report.interrupted);
    assert_eq!((report.acknowledged, report.failed), (0, 10));
    // Attempts at 0..=4 s; the wait for the retry due at 5 s is cut short at the stop.
    assert_eq!((report.rejected, report.retries), (5, 4));
    assert_eq!(started.elapsed(), Duration::from_millis(4_500));
    assert_eq!(
        report.last_error.as_deref(),
        Some("interrupted before the batch was accepted")
    );
}
