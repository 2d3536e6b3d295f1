//! `spate run` with `[metrics.emf]`, through the binary: the EMF lines on
//! stdout are valid Embedded Metric Format documents, and their counter deltas
//! add up to what was pushed (the last interval printed at SIGTERM).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::service::Service;

const CONFIG: &str = r#"
[hot]
retention_hours = 1000000
alert_retention_days = 100000

[metrics.emf]
enabled = true
interval_secs = 1
namespace = "SpateTest"
per_actor = true

[metrics.emf.dimensions]
task = "emf-test"
"#;

/// The EMF documents among the stdout lines of `output`.
fn emf_documents(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("stdout: "))
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks one document against the EMF specification: the `_aws` metadata,
/// one directive with the namespace, dimension sets of at most 30 names that
/// all resolve to string members, at most 100 metrics that all resolve to
/// numbers.
fn assert_valid_emf(doc: &Value) {
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"].as_i64().unwrap() > 1_600_000_000_000,
        "{doc}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 1, "{doc}");
    let d = &directives[0];
    assert_eq!(d["Namespace"], "SpateTest");
    for set in d["Dimensions"].as_array().unwrap() {
        let set = set.as_array().unwrap();
        assert!(set.len() <= 30, "{doc}");
        for name in set {
            assert!(doc[name.as_str().unwrap()].is_string(), "{name} in {doc}");
        }
        assert!(set.iter().any(|n| n == "task"), "static dimension: {doc}");
    }
    assert_eq!(doc["task"], "emf-test");
    let metrics = d["Metrics"].as_array().unwrap();
    assert!(!metrics.is_empty() && metrics.len() <= 100, "{doc}");
    for m in metrics {
        let name = m["Name"].as_str().unwrap();
        assert!(doc[name].is_number(), "{name} in {doc}");
        let unit = m["Unit"].as_str().unwrap();
        assert!(["Count", "Bytes", "Seconds"].contains(&unit), "{unit}");
        assert_eq!(m.as_object().unwrap().len(), 2, "{m}");
    }
}

/// Sum of metric `name` over every document, per value of `dimension` ("" when
/// the document has none).
fn sum_by(docs: &[Value], name: &str, dimension: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for doc in docs {
        if let Some(v) = doc[name].as_f64() {
            let key = doc[dimension].as_str().unwrap_or("").to_string();
            *out.entry(key).or_insert(0.0) += v;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emf_lines_on_stdout_add_up_to_what_was_pushed() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), CONFIG);
    let client = reqwest::Client::new();
    let push = async |lines: Vec<String>| {
        let r = client
            .post(format!("{}/v1/logs", service.url))
            .body(lines.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    let levels = ["info", "warning", "error"];
    let event = |i: usize| {
        json!({"service": "api", "level": levels[i % 3], "message": format!("e{i}")}).to_string()
    };
    push((0..300).map(event).collect()).await;

    // The first interval's lines appear while the service runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while emf_documents(&service.output()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no emf line: {}",
            service.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // More events and one malformed line; the rest comes out at SIGTERM.
    let mut more: Vec<String> = (300..500).map(event).collect();
    more.push("{\"level\": \"error\", broken".into());
    push(more).await;

    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let docs = emf_documents(&output);
    assert!(docs.len() >= 2, "{output}");
    for doc in &docs {
        assert_valid_emf(doc);
    }
    let events = sum_by(&docs, "spate_events_total", "severity");
    assert_eq!(
        events,
        BTreeMap::from([
            // Present at 0 from start-up, like every severity.
            ("CRITICAL".to_string(), 0.0),
            ("ERROR".to_string(), 166.0),
            ("INFO".to_string(), 167.0),
            ("WARNING".to_string(), 167.0),
        ]),
        "{output}"
    );
    let dead = sum_by(&docs, "spate_dead_letters_total", "");
    assert_eq!(dead.values().sum::<f64>(), 1.0, "{output}");
    // Not in the default set.
    assert!(
        docs.iter()
            .all(|d| d.get("spate_http_accepted_lines_total").is_none()),
        "{output}"
    );
    // Per-actor gauges carry the actor as a dimension (`per_actor`).
    assert!(
        docs.iter()
            .any(|d| d["actor"] == "decode" && d["spate_actor_mailbox_depth"].is_number()),
        "{output}"
    );
}

/// Each closed window's counts come out as EMF lines: `WindowEvents` per
/// service × severity and `WindowTagEvents` per service × tag, in the
/// configured namespace, the services past the top N counted as `other`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_windows_are_emf_lines_of_their_counts() {
    // One decode worker, so the event that closes the window is counted
    // after the others (with several, a later chunk may overtake them and
    // make them late).
    let config = r#"
[pipeline]
decode_workers = 1

[metrics.emf]
enabled = true
interval_secs = 3600
namespace = "SpateWindows"
window_top_services = 2

[metrics.emf.dimensions]
task = "emf-windows"
"#;
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), config);
    let window = 300_000i64;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 4 * window;
    let at = |i: i64| w0 + 1_000 + i;
    let mut lines = Vec::new();
    let mut event = |service: &str, fields: Value| {
        let mut e = fields;
        e["service"] = json!(service);
        e["ts"] = json!(at(lines.len() as i64));
        lines.push(e.to_string());
    };
    for _ in 0..3 {
        event("api", json!({"level": "info", "message": "ok"}));
    }
    event("api", json!({"status": 503, "message": "upstream"}));
    event("api", json!({"level": "error", "message": "boom"}));
    event("api", json!({"level": "critical", "message": "down"}));
    for _ in 0..4 {
        event(
            "auth",
            json!({"level": "warning", "message": "FAILED LOGIN 3 FROM tty1 FOR bob"}),
        );
    }
    for name in ["c1", "c2", "c3"] {
        event(name, json!({"level": "info", "message": "quiet"}));
    }
    // Then event time moves two windows on, so the first window closes.
    let closing = json!({"service": "api", "level": "info", "message": "later", "ts": w0 + 2 * window + 70_000});
    for body in [lines.join("\n"), closing.to_string()] {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/logs", service.url))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !service.output().contains("WindowEvents") {
        assert!(Instant::now() < deadline, "{}", service.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let docs: Vec<Value> = emf_documents(&output)
        .into_iter()
        .filter(|d| d["window_start_ms"] == w0)
        .collect();
    let mut severity = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for doc in &docs {
        let d = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "SpateWindows", "{doc}");
        assert_eq!(doc["_aws"]["Timestamp"], w0, "{doc}");
        assert_eq!(doc["window_end_ms"], w0 + window, "{doc}");
        assert_eq!(doc["task"], "emf-windows", "a property on every line");
        let metric = d["Metrics"][0]["Name"].as_str().unwrap();
        assert_eq!(d["Metrics"][0]["Unit"], "Count");
        let key = match metric {
            "WindowEvents" => "severity",
            "WindowTagEvents" => "tag",
            other => panic!("unexpected metric {other}: {doc}"),
        };
        assert_eq!(d["Dimensions"], json!([["service", key], [key]]), "{doc}");
        let entry = (
            doc["service"].as_str().unwrap().to_string(),
            doc[key].as_str().unwrap().to_string(),
        );
        let value = doc[metric].as_u64().unwrap();
        let counts = if metric == "WindowEvents" {
            &mut severity
        } else {
            &mut tags
        };
        assert!(
            counts.insert(entry, value).is_none(),
            "one line each: {doc}"
        );
    }
    let expected_severity: BTreeMap<(String, String), u64> = [
        ("api", [3, 0, 2, 1]),
        ("auth", [0, 4, 0, 0]),
        ("other", [3, 0, 0, 0]),
    ]
    .into_iter()
    .flat_map(|(service, counts)| {
        ["INFO", "WARNING", "ERROR", "CRITICAL"]
            .into_iter()
            .zip(counts)
            .map(move |(s, n)| ((service.to_string(), s.to_string()), n))
    })
    .collect();
    assert_eq!(severity, expected_severity, "{output}");
    let expected_tags = BTreeMap::from([
        (("api".to_string(), "http_5xx".to_string()), 1),
        (("auth".to_string(), "failed_login".to_string()), 4),
    ]);
    assert_eq!(tags, expected_tags, "{output}");

    // The same numbers as the window counts in the hot store: the two
    // biggest services by name, the rest added up as `other`.
    let hot = spate_operators::sinks::hot::HotStore::open_read_only(
        &dir.path().join("data").join("hot.db"),
    )
    .unwrap();
    let mut stored: Vec<_> = hot
        .windows(w0, None, 100)
        .unwrap()
        .into_iter()
        .filter(|w| w.window_start_ms == w0)
        .collect();
    stored.sort_by(|a, b| b.events.cmp(&a.events).then(a.service.cmp(&b.service)));
    assert_eq!(stored.len(), 5, "{stored:?}");
    let mut from_hot = BTreeMap::new();
    for (rank, w) in stored.iter().enumerate() {
        let name = if rank < 2 {
            w.service.as_str()
        } else {
            "other"
        };
        for (s, n) in ["INFO", "WARNING", "ERROR", "CRITICAL"]
            .iter()
            .zip(w.severity)
        {
            *from_hot
                .entry((name.to_string(), s.to_string()))
                .or_insert(0) += n;
        }
    }
    assert_eq!(severity, from_hot);
}
