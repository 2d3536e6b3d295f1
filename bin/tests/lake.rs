//! The lake through the binary: rows queryable within seconds of their 200,
//! every row exactly once while seals and compactions run, nothing lost or
//! doubled by a SIGKILL, replays and retried pushes (`Idempotency-Key`)
//! landing once, Athena-sized row groups, and one process per data dir.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use spate_loadgen::{GenerateStats, Severity, Workload};
use spate_test_support::lake::{duckdb, parquet_files, walk};
use spate_test_support::oracle::corpus;
use spate_test_support::service::Service;
use spate_test_support::wait::wait_until;
use support::{ingest, spate};

/// Seals every second, stages every 100 ms: many seals in a short test.
const SEALING_CONFIG: &str = "[lake]\nmax_file_age = \"1s\"\ncommit_interval = \"100ms\"\n";

/// The rows `spate query --format json` answers for `sql`.
fn query_rows(data_dir: &Path, sql: &str) -> Vec<Value> {
    let out = spate()
        .args(["query", "--format", "json", "--data-dir"])
        .arg(data_dir)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spate query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `SELECT count(*), count(DISTINCT event_id) FROM logs` through `spate query`.
fn counts(data_dir: &Path) -> (u64, u64) {
    let rows = query_rows(
        data_dir,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM logs",
    );
    (
        rows[0]["n"].as_u64().unwrap(),
        rows[0]["d"].as_u64().unwrap(),
    )
}

/// `(severity, n)` rows of `sql` (which names the columns `severity` and
/// `n`), ordered by severity.
fn severity_counts(data_dir: &Path, sql: &str) -> Vec<(String, u64)> {
    query_rows(data_dir, &format!("{sql} ORDER BY severity"))
        .iter()
        .map(|r| {
            let severity = r["severity"].as_str().unwrap().to_string();
            (severity, r["n"].as_u64().unwrap())
        })
        .collect()
}

/// A W1 corpus of `events` in a fresh directory (kept while the first value
/// lives): the data dir to use in it, the corpus text, and what it holds.
fn w1_corpus(events: u64) -> (tempfile::TempDir, PathBuf, String, GenerateStats) {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, events);
    let text = std::fs::read_to_string(&path).unwrap();
    let data = dir.path().join("data");
    (dir, data, text, stats)
}

/// Posts `lines` in bodies of `per_body`, each answered 200; returns the rows
/// accepted.
async fn push(url: &str, lines: &[&str], per_body: usize) -> u64 {
    let client = reqwest::Client::new();
    let mut accepted = 0;
    for chunk in lines.chunks(per_body) {
        let r = client
            .post(format!("{url}/v1/logs"))
            .body(chunk.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        accepted += r.json::<Value>().await.unwrap()["accepted"]
            .as_u64()
            .unwrap();
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_rows_are_queryable_within_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, 5_000);
    let data = dir.path().join("data");
    // The defaults: sealed files are an hour away, staged rows are not.
    let service = Service::start(support::SPATE, &data, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let accepted = push(&service.url, &lines, 1_000).await;
    assert_eq!(accepted, stats.events);
    let answered = Instant::now();
    let data_dir = data.clone();
    let seen = tokio::task::spawn_blocking(move || {
        loop {
            let (n, distinct) = counts(&data_dir);
            assert_eq!(n, distinct, "a row counted twice");
            if n == stats.events || answered.elapsed() > Duration::from_secs(30) {
                return (n, answered.elapsed());
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.0, stats.events, "every row visible");
    assert!(
        seen.1 <= Duration::from_secs(5),
        "visible after {:?}",
        seen.1
    );
    // Still staged, not sealed: the columns queries read as views (severity,
    // host) come out of the staged rows too, grouped and filtered.
    assert!(
        parquet_files(&data.join("lake/logs")).is_empty(),
        "nothing sealed yet"
    );
    assert_eq!(
        severity_counts(
            &data,
            "SELECT severity, count(*) AS n FROM logs GROUP BY severity"
        ),
        [
            ("CRITICAL", stats.severity(Severity::Critical)),
            ("ERROR", stats.severity(Severity::Error)),
            ("INFO", stats.severity(Severity::Info)),
            ("WARNING", stats.severity(Severity::Warning)),
        ]
        .map(|(s, n)| (s.to_string(), n))
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect::<Vec<_>>()
    );
    let hosts = severity_counts(
        &data,
        "SELECT severity, count(DISTINCT host) AS n FROM logs \
         WHERE severity IN ('ERROR', 'CRITICAL') AND host IS NOT NULL GROUP BY severity",
    );
    assert!(
        hosts.len() == 2 && hosts.iter().all(|(_, n)| *n > 1),
        "{hosts:?}"
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    // Sealed at shutdown: external readers see every row once.
    let rows = duckdb(
        &data.join("lake/logs"),
        "select count(*), count(distinct event_id) from logs",
    );
    assert_eq!(rows[0][0], stats.events);
    assert_eq!(rows[0][1], stats.events);
    assert!(
        walk(&data.join("lake/staging")).is_empty(),
        "staging emptied by the final seal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_seals_and_compaction_see_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, 12_000);
    let data = dir.path().join("data");
    let service = Service::start(support::SPATE, &data, SEALING_CONFIG);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // A query loop beside the pushes: never a row twice, and a query started
    // `VISIBLE` after rows were answered 200 sees at least those (the 200
    // means journaled; the lake stages them within its commit interval).
    const VISIBLE: Duration = Duration::from_secs(2);
    let acked: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let looper = {
        let (acked, done, data) = (acked.clone(), done.clone(), data.clone());
        std::thread::spawn(move || {
            let mut queries = 0;
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let floor = acked
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(at, _)| *at + VISIBLE <= started)
                    .map(|(_, total)| *total)
                    .max()
                    .unwrap_or(0);
                let (n, distinct) = counts(&data);
                assert_eq!(n, distinct, "a row counted twice ({n} rows)");
                assert!(
                    n >= floor,
                    "{n} rows seen, {floor} were answered 200 over {VISIBLE:?} earlier"
                );
                queries += 1;
            }
            queries
        })
    };
    for chunk in lines.chunks(500) {
        let n = push(&service.url, chunk, 500).await;
        {
            let mut acked = acked.lock().unwrap();
            let total = acked.last().map_or(0, |(_, t)| *t) + n;
            acked.push((Instant::now(), total));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // A few more seals happen under the loop.
    let seals = service.metric("spate_lake_seals_total").unwrap_or(0.0);
    let sealed = service.wait_metric("spate_lake_seals_total", seals + 2.0, 30);
    assert!(
        sealed.is_some_and(|n| n >= seals + 2.0),
        "no more seals after {seals}: {}",
        service.output()
    );
    done.store(true, Ordering::SeqCst);
    let queries = looper.join().unwrap();
    assert!(queries >= 3, "only {queries} queries ran");
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let files = parquet_files(&data.join("lake/logs"));
    assert!(files.len() > 24, "seals ran: {} files", files.len());
    assert_eq!(counts(&data), (stats.events, stats.events));

    // Compaction of the closed partitions (the corpus is in the past), with
    // queries running beside it.
    let done = Arc::new(AtomicBool::new(false));
    let looper = {
        let (done, data) = (done.clone(), data.clone());
        std::thread::spawn(move || {
            let mut queries = 0;
            while !done.load(Ordering::SeqCst) || queries == 0 {
                assert_eq!(counts(&data), (stats.events, stats.events));
                queries += 1;
            }
            queries
        })
    };
    let out = spate()
        .args(["lake", "compact", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    done.store(true, Ordering::SeqCst);
    looper.join().unwrap();
    assert!(
        out.status.success(),
        "compact failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["files_merged"].as_u64().unwrap() > 0, "{report}");
    assert!(report["rows"].as_u64().unwrap() > 0, "{report}");
    let after = parquet_files(&data.join("lake/logs"));
    assert!(
        after.len() < files.len(),
        "{} -> {}",
        files.len(),
        after.len()
    );
    assert_eq!(counts(&data), (stats.events, stats.events));
    let rows = duckdb(
        &data.join("lake/logs"),
        "select count(*), count(distinct event_id) from logs",
    );
    assert_eq!(rows[0][0], stats.events);
    assert_eq!(rows[0][1], stats.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_seals_loses_and_doubles_nothing() {
    let (_dir, data, text, stats) = w1_corpus(9_000);
    let lines: Vec<&str> = text.lines().collect();
    let mut accepted = 0;
    // The journal's checkpoint follows the lake's acknowledgements every
    // 50 ms here: a SIGKILL before it is saved replays acknowledged rows
    // (at least once, the journal's contract), which is not what this test
    // is about; it waits for the checkpoint, then kills during the seals.
    let config = format!("{SEALING_CONFIG}[journal]\ncheckpoint_interval = \"50ms\"\n");
    // Three lives, each killed with SIGKILL while it stages and seals.
    for (life, chunk) in lines.chunks(3_000).enumerate() {
        let service = Service::start(support::SPATE, &data, &config);
        accepted += push(&service.url, chunk, 250).await;
        // Every row staged and acknowledged (a local lake acknowledges at the
        // staging commit)...
        let waited = Instant::now();
        while service.metric("spate_journal_uncommitted_bytes") != Some(0.0) {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "never committed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // ...the checkpoint saved after it (two intervals), then into the
        // seals, which start a second after the rows were staged.
        tokio::time::sleep(Duration::from_millis(100 + 350 * life as u64 + 500)).await;
        // Dropping the service sends SIGKILL and waits for the exit; the
        // kernel releases the lock, so the next life starts.
        drop(service);
    }
    assert_eq!(accepted, stats.events);
    // A last life recovers what the kills left, and seals it at shutdown.
    let service = Service::start(support::SPATE, &data, &config);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    assert_one_row_per_event(&data, stats.events);
}

/// Asserts that the sealed files (read by DuckDB) hold `events` rows, one
/// per `event_id`: nothing lost or doubled.
fn assert_one_row_per_event(data: &Path, events: u64) {
    let rows = duckdb(
        &data.join("lake/logs"),
        "select count(*), count(distinct event_id) from logs",
    );
    assert_eq!(rows[0][0], events, "rows");
    assert_eq!(rows[0][1], events, "distinct event ids");
}

/// Waits until the service's metric `name` reaches `at_least`.
async fn wait_for_metric(service: &Service, name: &str, at_least: f64) {
    let waited = Instant::now();
    while service.metric(name).unwrap_or(0.0) < at_least {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "{name} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_replayed_after_a_sigkill_land_once() {
    let (_dir, data, text, stats) = w1_corpus(3_000);
    let lines: Vec<&str> = text.lines().collect();
    // The journal never saves its checkpoint before the kill: the next life
    // replays every row, acknowledged, staged and sealed as they were, with
    // the same event ids (at least once, the journal's contract).
    let config = format!("{SEALING_CONFIG}[journal]\ncheckpoint_interval = \"1h\"\n");
    let service = Service::start(support::SPATE, &data, &config);
    assert_eq!(push(&service.url, &lines, 250).await, stats.events);
    // Every row sealed into Parquet (the seals run a second after staging).
    wait_for_metric(
        &service,
        "spate_lake_rows_written_total",
        stats.events as f64,
    )
    .await;
    drop(service); // SIGKILL
    let sealed = duckdb(&data.join("lake/logs"), "select count(*) from logs");
    assert_eq!(sealed[0][0], stats.events, "all sealed before the kill");

    // The second life replays the journal from its start; its seals drop
    // every replayed row. The index is deleted first: it is rebuilt from the
    // sealed files' event ids.
    std::fs::remove_dir_all(data.join("lake/dedup")).unwrap();
    let service = Service::start(support::SPATE, &data, &config);
    stop_once_all_dropped(
        service,
        &data,
        stats.events,
        "spate_lake_duplicates_dropped_total",
    )
    .await;
}

#[test]
fn a_file_ingested_twice_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, 2_000);
    let data = dir.path().join("data");
    let first = ingest(&data, &[&path], &[]);
    // The same file again: the same event ids (its path and offsets), every
    // row dropped at seal. The files still appear (empty), which is what
    // recovery keys on.
    let second = ingest(&data, &[&path], &[]);
    assert_eq!(first["events"], stats.events);
    assert_eq!(second["events"], stats.events);
    assert_one_row_per_event(&data, stats.events);
    assert_eq!(counts(&data), (stats.events, stats.events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_retried_with_its_idempotency_key_lands_once() {
    let (_dir, data, text, stats) = w1_corpus(1_000);
    let lines: Vec<&str> = text.lines().collect();
    let service = Service::start(support::SPATE, &data, SEALING_CONFIG);
    let client = reqwest::Client::new();
    let post = |body: String, key: &str| {
        client
            .post(format!("{}/v1/logs", service.url))
            .header("Idempotency-Key", key)
            .body(body)
            .send()
    };
    for (n, chunk) in lines.chunks(250).enumerate() {
        let body = chunk.join("\n");
        let key = format!("batch-{n}");
        // The first answer is "lost": the client sends the batch again.
        for attempt in 0..3 {
            let r = post(body.clone(), &key).await.unwrap();
            assert_eq!(r.status(), 200);
            let answer: Value = r.json().await.unwrap();
            assert_eq!(answer["accepted"], chunk.len() as u64);
            assert_eq!(answer["replayed"].as_bool().unwrap_or(false), attempt > 0);
        }
    }
    let bad = post("{}".into(), "no spaces").await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        service.metric("spate_http_idempotent_replays_total"),
        Some(8.0)
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    assert_one_row_per_event(&data, stats.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_push_retried_after_a_sigkill_lands_once() {
    let (_dir, data, text, stats) = w1_corpus(2_000);
    let lines: Vec<&str> = text.lines().collect();
    let bodies: Vec<(String, String)> = lines
        .chunks(250)
        .enumerate()
        .map(|(n, chunk)| (format!("client-7/batch-{n}"), chunk.join("\n")))
        .collect();
    let push_keyed = |url: String, bodies: Vec<(String, String)>| async move {
        let client = reqwest::Client::new();
        let mut accepted = 0;
        for (key, body) in bodies {
            let r = client
                .post(format!("{url}/v1/logs"))
                .header("Idempotency-Key", key)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let answer: Value = r.json().await.unwrap();
            // A new process does not remember the keys: it appends again.
            assert_eq!(answer["replayed"], Value::Null);
            accepted += answer["accepted"].as_u64().unwrap();
        }
        accepted
    };
    // The checkpoint follows the acknowledgements, so the second life does
    // not replay the journal: what it gets twice is the client's retry.
    let config = format!("{SEALING_CONFIG}[journal]\ncheckpoint_interval = \"50ms\"\n");
    let service = Service::start(support::SPATE, &data, &config);
    assert_eq!(
        push_keyed(service.url.clone(), bodies.clone()).await,
        stats.events
    );
    wait_for_metric(
        &service,
        "spate_lake_rows_written_total",
        stats.events as f64,
    )
    .await;
    while service.metric("spate_journal_uncommitted_bytes") != Some(0.0) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The checkpoint saved at the end of what was appended (positions count
    // payload bytes, as the counter does), so the next life replays nothing.
    let appended = service
        .metric("spate_journal_appended_bytes_total")
        .expect("appended bytes");
    let checkpoint = data.join("journal").join("checkpoint.json");
    wait_until(
        Duration::from_secs(20),
        "the journal checkpoint at the appended end",
        async || {
            std::fs::read(&checkpoint)
                .ok()
                .and_then(|text| serde_json::from_slice::<Value>(&text).ok())
                .and_then(|file| file["committed"].as_f64())
                == Some(appended)
        },
    )
    .await;
    // Every answer "lost": SIGKILL, and the client retries every push with
    // its key against the next life.
    service.kill();
    let service = Service::start(support::SPATE, &data, &config);
    assert_eq!(
        push_keyed(service.url.clone(), bodies.clone()).await,
        stats.events
    );
    stop_once_all_dropped(
        service,
        &data,
        stats.events,
        "spate_lake_duplicates_dropped_total{source=\"http\"}",
    )
    .await;
    // The ids come from the keys: `http:<key>:<offset in the body>`.
    let ids = duckdb(
        &data.join("lake/logs"),
        "select count(*) from logs where event_id like 'http:client-7/batch-%:%'",
    );
    assert_eq!(ids[0][0], stats.events);
}

#[test]
fn a_generated_lake_has_one_file_per_partition_and_full_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = corpus(dir.path(), Workload::AppJson, 60_000);
    let data = dir.path().join("data");
    let config = dir.path().join("spate.toml");
    std::fs::write(&config, "[lake]\nrow_group_rows = 1024\n").unwrap();
    let summary = ingest(&data, &[&path], &["--config", config.to_str().unwrap()]);
    assert_eq!(
        summary["events"].as_u64().unwrap(),
        stats.events,
        "{summary}"
    );
    let lake = data.join("lake/logs");
    let files = parquet_files(&lake);
    let partitions: std::collections::HashSet<&Path> =
        files.iter().map(|f| f.parent().unwrap()).collect();
    assert_eq!(
        files.len(),
        partitions.len(),
        "one sealed file per partition"
    );
    assert_eq!(
        summary["files_written"].as_u64().unwrap(),
        files.len() as u64
    );
    // Every row group but the last of its file is full.
    let glob = format!("{}/**/*.parquet", lake.display());
    let groups = duckdb(
        &lake,
        &format!(
            "select file_name, row_group_id, row_group_num_rows, \
                    max(row_group_id) over (partition by file_name) \
             from (select distinct file_name, row_group_id, row_group_num_rows \
                   from parquet_metadata('{glob}'))"
        ),
    );
    let mut rows = 0;
    let mut full = 0;
    for g in &groups {
        let (id, n, last) = (
            g[1].as_u64().unwrap(),
            g[2].as_u64().unwrap(),
            g[3].as_u64().unwrap(),
        );
        rows += n;
        if id < last {
            assert_eq!(n, 1024, "{g:?}");
            full += 1;
        }
    }
    assert_eq!(rows, stats.events);
    assert!(full > 0, "some partition holds more than one row group");
    assert_eq!(
        summary["row_groups_written"].as_u64().unwrap(),
        groups.len() as u64
    );
}

#[test]
fn a_second_process_on_a_data_dir_exits_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = Service::start(support::SPATE, &data, "");
    let second = spate()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("process {} (", service.pid())) && stderr.contains("spate run"),
        "{stderr}"
    );
    let input = dir.path().join("one.log");
    std::fs::write(&input, "{\"message\": \"x\"}\n").unwrap();
    let ingest = spate()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&input)
        .output()
        .unwrap();
    assert!(!ingest.status.success());
    assert!(
        String::from_utf8_lossy(&ingest.stderr).contains(&service.pid().to_string()),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    // Released at exit.
    let again = spate()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Waits until `metric` counts every one of `events` as a dropped
/// duplicate, stops the service, and checks the lake holds each event once.
async fn stop_once_all_dropped(service: Service, data: &Path, events: u64, metric: &str) {
    wait_for_metric(&service, metric, events as f64).await;
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    assert_one_row_per_event(data, events);
    assert_eq!(counts(data), (events, events));
}
