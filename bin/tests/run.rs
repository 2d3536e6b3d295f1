//! `spate run` end to end, through the binary: HTTP push with a real client,
//! the lake read back by DuckDB, the hot store through `spate hot`, alerts from
//! a burst of errors, saturation, auth, file tail across rotation and restart,
//! and the SIGTERM drain.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use spate_loadgen::Workload;
use spate_test_support::lake::duckdb;
use spate_test_support::oracle::corpus;
use spate_test_support::service::Service;
use support::spate;

/// Test config: hot rows kept for ever (the corpora carry fixed timestamps).
const BASE_CONFIG: &str = "[hot]\nretention_hours = 1000000\nalert_retention_days = 100000\n";

fn hot(data_dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = spate()
        .arg("hot")
        .args(args)
        .arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spate hot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Response {
    client
        .post(format!("{url}/v1/logs"))
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_logs_reach_lake_and_hot_store_and_sigterm_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, 20_000);
    let data = dir.path().join("data");
    let service = Service::start(support::SPATE, &data, BASE_CONFIG);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // Four concurrent clients, 1,000 lines a body.
    let client = reqwest::Client::new();
    let mut sends = Vec::new();
    for (i, chunk) in lines.chunks(1000).enumerate() {
        let body = chunk.join("\n").into_bytes();
        let (client, url) = (client.clone(), service.url.clone());
        sends.push(tokio::spawn(async move {
            let mut request = client.post(format!("{url}/v1/logs"));
            if i % 3 == 1 {
                // A body in three gzipped, one in three zstd.
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&body).unwrap();
                request = request
                    .header("content-encoding", "gzip")
                    .body(enc.finish().unwrap());
            } else if i % 3 == 2 {
                request = request
                    .header("content-encoding", "zstd")
                    .body(zstd::bulk::compress(&body, 3).unwrap());
            } else {
                request = request.body(body);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["accepted"]
                .as_u64()
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for s in sends {
        accepted += s.await.unwrap();
    }
    assert_eq!(accepted, stats.events);
    // A JSON array body too.
    let array = json!([
        {"level": "critical", "service": "arrays", "message": "disk on fire"},
        {"level": "info", "service": "arrays", "message": "fine"}
    ]);
    let r = post(&client, &service.url, array.to_string().into_bytes()).await;
    assert_eq!(r.status(), 200);

    let (status, output) = service.stop();
    assert!(status.success(), "exit {status:?}: {output}");
    assert!(output.contains("stopped"), "{output}");

    let lake = data.join("lake/logs");
    let rows = duckdb(
        &lake,
        "select count(*), count(distinct event_id), \
                count(*) filter (where severity = 'CRITICAL'), \
                count(*) filter (where severity = 'ERROR'), \
                count(*) filter (where severity = 'WARNING') from logs",
    );
    let total = stats.events + 2;
    assert_eq!(rows[0][0], total);
    assert_eq!(rows[0][1], total, "no duplicates");
    assert_eq!(rows[0][2], stats.expected_severity[3] + 1);
    assert_eq!(rows[0][3], stats.expected_severity[2]);
    assert_eq!(rows[0][4], stats.expected_severity[1]);

    // The hot store holds WARNING and above.
    let all = hot(
        &data,
        &["recent", "--since", "100000d", "--limit", "1000000"],
    );
    let warn_up: u64 = stats.expected_severity[1..].iter().sum::<u64>() + 1;
    assert_eq!(all.len() as u64, warn_up);
    let critical = hot(
        &data,
        &[
            "recent",
            "--since",
            "100000d",
            "--severity",
            "critical",
            "--service",
            "arrays",
        ],
    );
    assert_eq!(critical.len(), 1);
    assert_eq!(critical[0]["message"], "disk on fire");
}

/// One W1-style event at `ts_ms`.
fn event(ts_ms: i64, service: &str, level: &str, message: &str) -> String {
    let ts = chrono_like(ts_ms);
    json!({"timestamp": ts, "level": level, "service": service, "message": message}).to_string()
}

/// RFC 3339 UTC with milliseconds, without a date library.
fn chrono_like(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000);
    let ms = ts_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_errors_raises_one_alert_and_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Event time jumps whole windows between pushes here (a backfill). With
    // several decode workers a later push may reach the windows before an
    // earlier one and make it late; one worker keeps the order.
    let config = format!("{BASE_CONFIG}[pipeline]\ndecode_workers = 1\n");
    let service = Service::start(support::SPATE, &data, &config);
    let client = reqwest::Client::new();
    // Five-minute windows; the watermark trails the newest event by a minute.
    let window = 300_000;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 12 * window;
    let mut body = Vec::new();
    for i in 0..14 {
        body.push(event(
            w0 + 10_000 + i * 1000,
            "checkout",
            "error",
            "payment failed",
        ));
    }
    for i in 0..30 {
        body.push(event(w0 + 20_000 + i * 1000, "checkout", "info", "ok"));
    }
    assert_eq!(
        post(&client, &service.url, body.join("\n").into_bytes())
            .await
            .status(),
        200
    );
    // Later windows, clean, move the watermark past w0 and then w1.
    for k in 1..=3 {
        let body: Vec<String> = (0..30)
            .map(|i| {
                event(
                    w0 + k * window + 70_000 + i * 1000,
                    "checkout",
                    "info",
                    "ok",
                )
            })
            .collect();
        assert_eq!(
            post(&client, &service.url, body.join("\n").into_bytes())
                .await
                .status(),
            200
        );
    }
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let file = std::fs::read_to_string(data.join("alerts.ndjson")).unwrap();
    let notices: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["rule"] == "error_burst")
        .collect();
    assert_eq!(notices.len(), 2, "{file}");
    assert_eq!(notices[0]["state"], "firing");
    assert_eq!(notices[0]["service"], "checkout");
    assert_eq!(notices[0]["window_start_ms"], w0);
    assert_eq!(notices[0]["value"], 14.0);
    assert_eq!(notices[1]["state"], "resolved");
    assert_eq!(notices[1]["window_start_ms"], w0 + window);
    // The stdout line, and the hot store's copy.
    assert!(
        output.lines().any(|l| l.starts_with("stdout: ")
            && l.contains("error_burst")
            && l.contains("checkout")),
        "{output}"
    );
    let stored: Vec<Value> = hot(&data, &["alerts", "--since", "100000d"])
        .into_iter()
        .filter(|a| a["rule"] == "error_burst")
        .collect();
    assert_eq!(stored.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_rejected_on_ingest_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!("{BASE_CONFIG}[http]\nauth_token = \"t0ken\"\n");
    let service = Service::start(support::SPATE, &data, &config);
    let client = reqwest::Client::new();
    let line = event(1_763_892_000_000, "auth", "error", "x");
    let r = post(&client, &service.url, line.clone().into_bytes()).await;
    assert_eq!(r.status(), 401);
    let r = client
        .post(format!("{}/v1/logs", service.url))
        .bearer_auth("t0kem")
        .body(line.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(format!("{}/v1/logs", service.url))
        .bearer_auth("t0ken")
        .body(line)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // POST /v1/query: the same token, a row limit, bad SQL is a 400.
    let query = |token: &'static str, body: Value| {
        client
            .post(format!("{}/v1/query", service.url))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let r = query("nope", json!({"sql": "select 1"})).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = query(
        "t0ken",
        json!({"sql": "select * from (values (1), (2), (3)) t(x)", "limit": 2}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["rows"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["truncated"], true);
    let r = query("t0ken", json!({"sql": "selec count(*) from logs"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let out: Value = r.json().await.unwrap();
    assert!(!out["error"].as_str().unwrap().is_empty());
    let r = query("t0ken", json!({"sql": "select count(*) from logs"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an empty lake is an empty result");

    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let rows = duckdb(&data.join("lake/logs"), "select count(*) from logs");
    assert_eq!(rows[0][0], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_answers_429_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = format!("{BASE_CONFIG}[journal]\nmax_backlog_mib = 1\n");
    let service = Service::start(support::SPATE, &data, &config);
    // Another process holds the hot store's write lock: the hot writer stalls,
    // the pipeline backs up, the journal backlog fills.
    let db = data.join("hot.db");
    let mut locker = std::process::Command::new(spate_test_support::lake::python())
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('pragma journal_mode=wal')\n\
             c.execute('create table if not exists lock_probe(x)')\n\
             c.execute('begin exclusive')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "locked");

    let client = reqwest::Client::new();
    let mut accepted = 0u64;
    let mut refused = 0;
    let mut n = 0i64;
    for _ in 0..400 {
        let body: Vec<String> = (0..2000)
            .map(|i| {
                n += 1;
                event(
                    1_763_892_000_000 + i,
                    "flood",
                    "error",
                    &format!("event {n}"),
                )
            })
            .collect();
        let r = post(&client, &service.url, body.join("\n").into_bytes()).await;
        match r.status().as_u16() {
            200 => {
                accepted += r.json::<Value>().await.unwrap()["accepted"]
                    .as_u64()
                    .unwrap()
            }
            429 | 503 => {
                assert!(r.headers().contains_key("retry-after"));
                refused += 1;
                if refused >= 3 {
                    break;
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused >= 3, "never saturated after {accepted} events");
    // Release the lock: everything accepted drains.
    drop(locker.stdin.take());
    locker.wait().unwrap();
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let rows = duckdb(
        &data.join("lake/logs"),
        "select count(*), count(distinct event_id) from logs",
    );
    assert_eq!(rows[0][0], accepted, "every accepted event is in the lake");
    assert_eq!(rows[0][1], accepted);
    let stored = hot(
        &data,
        &["recent", "--since", "100000d", "--limit", "10000000"],
    );
    assert_eq!(stored.len() as u64, accepted);
}

#[test]
fn tailed_files_survive_rotation_and_restart_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = format!(
        "{BASE_CONFIG}[tail]\npaths = [\"{}/*.log\"]\npoll_interval_ms = 50\n",
        logs.display()
    );
    let app = logs.join("app.log");
    let mut written = 0u64;
    // Appends `n` lines; returns their bytes.
    let mut write = |path: &Path, n: u64| -> u64 {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            written += 1;
            let line = event(
                1_763_892_000_000 + written as i64,
                "tailed",
                "info",
                &format!("line {written}"),
            );
            writeln!(f, "{line}").unwrap();
            bytes += line.len() as u64 + 1;
        }
        bytes
    };
    let mut expected = write(&app, 500);
    let service = Service::start(support::SPATE, &data, &config);
    wait_for_tail(&service, expected);
    // logrotate `create`: rename, then a new file; the old one gets late lines.
    std::fs::rename(&app, logs.join("app.log.1")).unwrap();
    expected += write(&logs.join("app.log.1"), 100);
    expected += write(&app, 300);
    wait_for_tail(&service, expected);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    // Lines written while stopped are read after the restart, from the checkpoint.
    let expected = write(&app, 200);
    let service = Service::start(support::SPATE, &data, &config);
    wait_for_tail(&service, expected);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let written = 1100;

    let rows = duckdb(
        &data.join("lake/logs"),
        "select count(*), count(distinct message) from logs where service = 'tailed'",
    );
    assert_eq!(rows[0][0], written, "each line once");
    assert_eq!(rows[0][1], written);
}

/// Waits until the service has read `bytes` of tailed files, as its metrics
/// say.
fn wait_for_tail(service: &Service, bytes: u64) {
    let started = std::time::Instant::now();
    loop {
        let read = service.metric("spate_tail_read_bytes_total").unwrap_or(0.0) as u64;
        if read >= bytes {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "tail read {read} of {bytes} bytes: {}",
            service.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
