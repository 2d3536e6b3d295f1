//! `GET /metrics` of a live `spate run`, through the binary: `promtool check
//! metrics` finds nothing to say about it (HELP on every family, `_total` only
//! on counters, base units, histograms rather than summaries), series are
//! present at 0 from start-up, and the lag of the `http` source comes back to
//! 0 once the sinks committed what was pushed.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use spate_test_support::promtool::{promtool_check, sample};
use spate_test_support::service::Service;

fn config(logs: &std::path::Path) -> String {
    format!(
        r#"
[hot]
retention_hours = 1000000
alert_retention_days = 100000

[lake]
max_file_age_secs = 1

[tail]
paths = ["{}/*.log"]
"#,
        logs.display()
    )
}

#[test]
fn promtool_finds_nothing_wrong_with_a_live_metrics_page() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), &config(&logs));

    // Before anything happened: the series whose labels are known are there, at 0.
    let text = service.metrics_text();
    for series in [
        r#"spate_events_total{severity="ERROR"}"#,
        r#"spate_alerts_total{rule="error_burst",state="firing"}"#,
        r#"spate_http_rejected_total{reason="saturated"}"#,
        r#"spate_actor_events_received_total{actor="decode"}"#,
        r#"spate_actor_errors_total{actor="hot",class="external"}"#,
        r#"spate_source_oldest_unacked_age_seconds{source="http"}"#,
        r#"spate_source_batches_settled_total{source="tail",verdict="failed"}"#,
        "spate_lake_commit_seconds_count",
        "spate_lake_rows_written_total",
        "spate_journal_backlog_bytes",
        "spate_tail_behind_bytes",
    ] {
        assert_eq!(
            sample(&text, series),
            Some(0.0),
            "{series} at start:\n{text}"
        );
    }
    let (ok, said) = promtool_check(&text);
    assert!(
        ok && said.is_empty(),
        "promtool at start-up: {said}\n{text}"
    );

    // Every kind of series: pushes (one line a dead letter), a tailed file,
    // a query, a refused request.
    let levels = ["info", "warning", "error", "critical"];
    let mut body: Vec<String> = (0..200)
        .map(|i| {
            json!({"service": "api", "level": levels[i % 4], "message": format!("m{i}")})
                .to_string()
        })
        .collect();
    body.push("{\"level\": \"error\", broken".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{}/v1/logs", service.url))
            .body(body.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .post(format!("{}/v1/logs", service.url))
            .header("content-encoding", "gzip")
            .body("not gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    });
    std::fs::write(
        logs.join("app.log"),
        "ERROR tailed line one\nINFO tailed line two\n",
    )
    .unwrap();

    // Delivered end to end: the lake committed (it rolls after 1 s), so the
    // verdicts came back and the lag is 0 again.
    let started = Instant::now();
    loop {
        let text = service.metrics_text();
        let delivered = |source: &str| {
            sample(
                &text,
                &format!(
                    r#"spate_source_batches_settled_total{{source="{source}",verdict="delivered"}}"#
                ),
            )
            .unwrap_or(0.0)
        };
        let inflight = |source: &str| {
            sample(
                &text,
                &format!(r#"spate_source_inflight_events{{source="{source}"}}"#),
            )
        };
        if delivered("http") >= 1.0
            && delivered("tail") >= 1.0
            && inflight("http") == Some(0.0)
            && inflight("tail") == Some(0.0)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not delivered: {}\n{text}",
            service.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    service.query(json!({"sql": "select severity, count(*) from logs group by severity"}));
    let text = service.metrics_text();

    assert_eq!(
        sample(
            &text,
            r#"spate_source_oldest_unacked_age_seconds{source="http"}"#
        ),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            r#"spate_source_delivery_seconds_count{source="http"}"#
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        sample(&text, r#"spate_events_total{severity="CRITICAL"}"#),
        Some(50.0)
    );
    assert_eq!(sample(&text, "spate_decode_dead_letters_total"), Some(1.0));
    assert_eq!(
        sample(&text, r#"spate_queries_total{outcome="ok"}"#),
        Some(1.0)
    );
    assert!(sample(&text, "spate_query_duration_seconds_count").unwrap() >= 1.0);
    assert!(sample(&text, "spate_lake_commit_seconds_count").unwrap() >= 1.0);
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(sample(&text, "process_open_fds").unwrap() >= 3.0);
    assert!(sample(&text, "process_start_time_seconds").unwrap() > 1.6e9);
    let build = text
        .lines()
        .find(|l| l.starts_with("spate_build_info{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        build.contains(concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""))
            && build.contains("commit=\"")
            && build.ends_with(" 1"),
        "{build}"
    );
    assert!(!text.contains("quantile="), "no summaries: {text}");
    let (ok, said) = promtool_check(&text);
    assert!(ok && said.is_empty(), "promtool: {said}\n{text}");

    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

#[test]
fn promtool_check_is_strict() {
    // The checker itself flags what the conventions forbid, so a clean result
    // above means something.
    let (ok, said) = promtool_check(
        "# TYPE spate_backpressure_seconds_total gauge\nspate_backpressure_seconds_total 1\n",
    );
    assert!(!ok, "{said}");
    assert!(said.contains("no help text"), "{said}");
    assert!(said.contains("_total"), "{said}");
}
