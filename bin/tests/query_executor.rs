//! `POST /v1/query` of `spate run` on its own bounded executor, through the
//! binary: a runaway query is answered 504 on time while health checks and
//! pushes keep answering, its operators stop (the CPU goes idle), SIGTERM
//! during a query still drains and exits 0; a query over its memory limit
//! fails cleanly with the process's peak memory bounded; a result too large
//! for Arrow's offsets or for a response gets an answer; queries beyond the
//! slots and the queue get 429.
//!
//! The tests run one at a time (they measure latency and CPU of a process
//! while another would load the same two cores).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::service::Service;

/// One test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The reproduction of issue 13: never finishes.
const CROSS_JOIN: &str = "SELECT count(*) FROM generate_series(1,1000000000) a \
                          CROSS JOIN generate_series(1,1000000000) b";

/// Runs for ever too, with a small build side (no memory to speak of).
const SMALL_CROSS_JOIN: &str = "SELECT count(*) FROM generate_series(1,1000) a \
                                CROSS JOIN generate_series(1,1000000000000) b";

/// 2,000 rows of `logs` three times over: 8 billion rows.
const LOGS_CROSS_JOIN: &str = "SELECT count(*) FROM logs a CROSS JOIN logs b CROSS JOIN logs c";

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

async fn query(client: &reqwest::Client, url: &str, body: Value) -> Answer {
    let started = Instant::now();
    let response = client
        .post(format!("{url}/v1/query"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer to {body}: {e}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("answer to {body} cut: {e}"));
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        retry_after,
        took: started.elapsed(),
    }
}

fn spawn_query(
    client: &reqwest::Client,
    url: &str,
    body: Value,
) -> tokio::task::JoinHandle<Answer> {
    let (client, url) = (client.clone(), url.to_string());
    tokio::spawn(async move { query(&client, &url, body).await })
}

/// A metric's value from `/metrics` (first sample starting with `name`).
async fn metric(client: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `name` until it equals `want` (at most `within`).
async fn await_metric(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    want: f64,
    within: Duration,
) {
    let started = Instant::now();
    loop {
        let value = metric(client, url, name).await;
        if value == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "{name} is {value:?}, not {want}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Latency of a `/healthz` and of a one-line push, each of which must succeed.
async fn probe(client: &reqwest::Client, url: &str, n: usize) -> (Duration, Duration) {
    let started = Instant::now();
    let r = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let health = started.elapsed();
    let started = Instant::now();
    let line = format!("{{\"level\":\"info\",\"service\":\"probe\",\"message\":\"probe {n}\"}}\n");
    let r = client
        .post(format!("{url}/v1/logs"))
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    (health, started.elapsed())
}

/// Probes health and ingest every 100 ms until `query` is answered; returns
/// the answer and the worst latencies seen.
async fn probe_while(
    client: &reqwest::Client,
    url: &str,
    query: tokio::task::JoinHandle<Answer>,
) -> (Answer, Duration, Duration, usize) {
    let (mut health, mut push, mut probes) = (Duration::ZERO, Duration::ZERO, 0);
    while !query.is_finished() {
        let (h, p) = probe(client, url, probes).await;
        health = health.max(h);
        push = push.max(p);
        probes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (query.await.unwrap(), health, push, probes)
}

/// CPU seconds (user + system) the process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks as f64 / hz
}

/// Peak resident memory of the process (`VmHWM`), MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    kib / 1024
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_query_is_cancelled_on_time_while_health_ingest_and_signals_answer() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // Lake files committed within a second, for the cross join of `logs`.
    let service = Service::start(
        support::SPATE,
        &dir.path().join("data"),
        "[lake]\nmax_file_age_secs = 1\n",
    );
    let (client, url) = (client(), service.url.clone());
    let lines: String = (0..2000)
        .map(|i| format!("{{\"level\":\"info\",\"service\":\"web\",\"message\":\"line {i}\"}}\n"))
        .collect();
    let r = client
        .post(format!("{url}/v1/logs"))
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    loop {
        let answer = query(
            &client,
            &url,
            json!({"sql": "select count(*) as n from logs"}),
        )
        .await;
        if answer.body["rows"][0][0].as_u64() >= Some(2000) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "lake not committed: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for sql in [CROSS_JOIN, SMALL_CROSS_JOIN, LOGS_CROSS_JOIN] {
        let running = spawn_query(&client, &url, json!({"sql": sql, "timeout_secs": 5}));
        let (answer, health, push, probes) = probe_while(&client, &url, running).await;
        assert_eq!(answer.status, 504, "{sql}: {}", answer.body);
        assert!(
            answer.body["error"]
                .as_str()
                .unwrap()
                .contains("time limit"),
            "{}",
            answer.body
        );
        assert!(
            answer.took < Duration::from_secs(6),
            "{sql}: answered after {:?}",
            answer.took
        );
        assert!(probes >= 10, "{probes} probes");
        assert!(
            health < Duration::from_secs(1),
            "/healthz took {health:?} during {sql}"
        );
        assert!(
            push < Duration::from_secs(1),
            "a push took {push:?} during {sql}"
        );
        // The operators stop: the query's slot is freed when its task ends,
        // and the process goes back to idle.
        await_metric(
            &client,
            &url,
            "spate_queries_running",
            0.0,
            Duration::from_secs(5),
        )
        .await;
        let before = cpu_secs(service.pid());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = cpu_secs(service.pid()) - before;
        assert!(
            used < 0.3,
            "{used} CPU seconds in the second after {sql} was cancelled"
        );
        eprintln!(
            "{sql}: answered {} after {:?}; worst /healthz {health:?}, worst push {push:?} \
             over {probes} probes; {used:.2} CPU s in the second after",
            answer.status, answer.took
        );
    }
    assert_eq!(
        metric(&client, &url, "spate_queries_total{outcome=\"timeout\"}").await,
        Some(3.0)
    );

    // SIGTERM while a query runs: the query is cancelled (503), the service
    // drains and exits 0 promptly.
    let running = spawn_query(
        &client,
        &url,
        json!({"sql": SMALL_CROSS_JOIN, "timeout_secs": 300}),
    );
    await_metric(
        &client,
        &url,
        "spate_queries_running",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let started = Instant::now();
    let stopped = tokio::task::spawn_blocking(move || service.stop());
    let answer = running.await.unwrap();
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("shutting down")
    );
    let (status, output) = stopped.await.unwrap();
    assert!(status.success(), "exit {status:?}: {output}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exited {:?} after SIGTERM",
        started.elapsed()
    );
}

/// `[query] memory_limit = 128`. Without a limit the query holds its 600
/// million values (4.8 GB and more: it was OOM-killed in a 3 GiB cgroup). With
/// it, the peak is bounded by the process at rest plus four times the limit:
/// the pool itself, the copies DataFusion makes of partial aggregate states
/// while it emits and repartitions them (not counted in the pool until they
/// are buffered: up to twice the pool), and the allocator's slack. Measured at
/// this limit: 236 to 267 MiB in five runs of this test (at rest: 42 MiB), and
/// 232 to 268 MiB in twelve runs of `spate query`, three at a time on a loaded
/// machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_its_memory_limit_fails_cleanly_and_memory_stays_bounded() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        support::SPATE,
        &dir.path().join("data"),
        "[query]\nmemory_limit_mib = 128\n",
    );
    let (client, url) = (client(), service.url.clone());
    let sql =
        "SELECT value % 1000 AS k, array_agg(value) FROM generate_series(1,600000000) GROUP BY 1";
    let at_rest = peak_rss_mib(service.pid());
    eprintln!("at rest: peak RSS {at_rest} MiB");
    let answer = query(&client, &url, json!({"sql": sql, "timeout_secs": 120})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let error = answer.body["error"].as_str().unwrap();
    assert!(error.contains("more than 128 MiB"), "{error}");
    let peak = peak_rss_mib(service.pid());
    eprintln!(
        "memory limit: answered {} after {:?}, peak RSS {peak} MiB",
        answer.status, answer.took
    );
    let bound = at_rest + 4 * 128;
    assert!(
        peak < bound,
        "peak resident memory {peak} MiB, more than {bound} MiB"
    );
    assert_eq!(
        metric(
            &client,
            &url,
            "spate_queries_total{outcome=\"resources_exhausted\"}"
        )
        .await,
        Some(1.0)
    );
    // The service goes on answering queries.
    let answer = query(
        &client,
        &url,
        json!({"sql": "select count(*) as n from generate_series(1,1000)"}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["rows"], json!([[1000]]));
    let (status, output) = service.stop();
    assert!(status.success(), "exit {status:?}: {output}");
}

/// 5,000 strings of 1 MiB in one batch overflow Arrow's 32-bit offsets
/// (DataFusion panics); 5,000 of 64 KiB fit in Arrow but not in a response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_too_large_for_arrow_offsets_or_a_response_gets_an_answer() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), "");
    let (client, url) = (client(), service.url.clone());
    let sql = "SELECT repeat('x', 1048576) FROM generate_series(1,5000)";
    let answer = query(&client, &url, json!({"sql": sql, "limit": 5000})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains("too large") && error.contains("offset overflow"),
        "{error}"
    );

    let sql = "SELECT repeat('x', 65536) FROM generate_series(1,5000)";
    let answer = query(&client, &url, json!({"sql": sql, "limit": 5000})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.contains("more than 64 MiB (query.max_result_size)"),
        "{error}"
    );
    assert_eq!(
        metric(
            &client,
            &url,
            "spate_queries_total{outcome=\"result_too_large\"}"
        )
        .await,
        Some(2.0)
    );
    let r = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, output) = service.stop();
    assert!(status.success(), "exit {status:?}: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_beyond_the_slots_and_the_queue_get_429() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = "[query]\nmax_concurrent = 1\nqueue_len = 1\n";
    let service = Service::start(support::SPATE, &dir.path().join("data"), config);
    let (client, url) = (client(), service.url.clone());
    let slow = json!({"sql": SMALL_CROSS_JOIN, "timeout_secs": 3});
    let running = spawn_query(&client, &url, slow.clone());
    await_metric(
        &client,
        &url,
        "spate_queries_running",
        1.0,
        Duration::from_secs(10),
    )
    .await;
    let queued = spawn_query(&client, &url, slow);
    await_metric(
        &client,
        &url,
        "spate_queries_queued",
        1.0,
        Duration::from_secs(10),
    )
    .await;

    let refused = query(&client, &url, json!({"sql": "select 1"})).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("too many queries"),
        "{}",
        refused.body
    );
    // Both time out (the queued one within its own limit, queueing counted).
    for answer in [running.await.unwrap(), queued.await.unwrap()] {
        assert_eq!(answer.status, 504, "{}", answer.body);
        assert!(answer.took < Duration::from_secs(4), "{:?}", answer.took);
    }
    assert_eq!(
        metric(&client, &url, "spate_queries_total{outcome=\"rejected\"}").await,
        Some(1.0)
    );
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "spate_queries_running",
        "spate_queries_queued",
        "spate_queries_total",
        "spate_query_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}: {text}"
        );
    }
    // Slots free again: a query runs.
    await_metric(
        &client,
        &url,
        "spate_queries_running",
        0.0,
        Duration::from_secs(5),
    )
    .await;
    let answer = query(&client, &url, json!({"sql": "select 1 as one"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (status, output) = service.stop();
    assert!(status.success(), "exit {status:?}: {output}");
}
