//! `spate alerts` end to end, through the binary: a maintenance window set
//! with `spate alerts silence` is honoured by a running `spate run` (its
//! notices go to no output but are still recorded), routes send each
//! service's notices to their outputs, and `spate alerts silences` /
//! `unsilence` list and end it, in the SQLite hot store of a data dir or,
//! with `[hot_dynamodb]`, in the DynamoDB hot table (against the emulator).

mod support;

use std::path::Path;

use serde_json::{Value, json};
use spate_test_support::service::{Service, data_and_config_args};
use support::{spate, stdout_of};

/// Hot rows kept for ever; one decode worker keeps event time in order; the
/// notices of checkout go to the file only, the others to stdout only.
const CONFIG: &str = r#"
[hot]
retention_hours = 1000000
alert_retention_days = 100000
[pipeline]
decode_workers = 1
[[alerts.routes]]
services = ["checkout"]
outputs = ["file"]
[[alerts.routes]]
outputs = ["stdout"]
"#;

/// Runs `spate alerts ARGS --data-dir DATA --config CONFIG`, which must
/// succeed; returns its stdout.
fn alerts(data: &Path, args: &[&str]) -> String {
    stdout_of(
        spate()
            .arg("alerts")
            .args(args)
            .args(data_and_config_args(data)),
    )
}

fn event(ts_ms: i64, service: &str, level: &str) -> String {
    json!({"ts": ts_ms, "service": service, "level": level, "msg": "payment failed"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_service_alerts_nowhere_and_routes_pick_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.with_extension("toml"), CONFIG).unwrap();

    // The maintenance window, set before the service starts (it reads the
    // silences from the hot store when it first sends notices).
    let out = alerts(
        &data,
        &[
            "silence",
            "payments",
            "--for",
            "2h",
            "--reason",
            "db migration",
        ],
    );
    assert!(out.starts_with("silenced payments until "), "{out}");
    let listed: Value =
        serde_json::from_str(&alerts(&data, &["silences", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["service"], "payments");
    assert_eq!(listed[0]["reason"], "db migration");

    let service = Service::start(support::SPATE, &data, CONFIG);
    let client = reqwest::Client::new();
    let window = 300_000;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 12 * window;
    // 14 errors each (error_burst: > 10) in w0, then clean windows that
    // move the watermark past it.
    let mut body = Vec::new();
    for service in ["payments", "checkout", "api"] {
        body.extend((0..14).map(|i| event(w0 + 10_000 + i * 1000, service, "error")));
    }
    for k in 1..=3 {
        for service in ["payments", "checkout", "api"] {
            body.extend(
                (0..5).map(|i| event(w0 + k * window + 70_000 + i * 1000, service, "info")),
            );
        }
    }
    for chunk in body.chunks(21) {
        let r = client
            .post(format!("{}/v1/logs", service.url))
            .body(chunk.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let bursts = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|a| a["rule"] == "error_burst")
            .map(|a| {
                (
                    a["service"].as_str().unwrap().to_string(),
                    a["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |s: &str, state: &str| (s.to_string(), state.to_string());
    // The hot store records every notice, silenced ones included (first:
    // when an output lacks one, this says whether it was raised at all).
    let stored = spate()
        .args([
            "hot",
            "alerts",
            "--since",
            "100000d",
            "--json",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(stored.status.success());
    let mut stored = bursts(&String::from_utf8(stored.stdout).unwrap());
    stored.sort();
    assert_eq!(
        stored,
        [
            pair("api", "firing"),
            pair("api", "resolved"),
            pair("checkout", "firing"),
            pair("checkout", "resolved"),
            pair("payments", "firing"),
            pair("payments", "resolved"),
        ],
        "{output}"
    );

    // The file: checkout only (its route); payments is silenced.
    let file = std::fs::read_to_string(data.join("alerts.ndjson")).unwrap_or_default();
    assert_eq!(
        bursts(&file),
        [pair("checkout", "firing"), pair("checkout", "resolved")],
        "{file}"
    );
    // Stdout: api only (the catch-all route).
    let stdout: Vec<&str> = output
        .lines()
        .filter(|l| l.starts_with("stdout: ") && l.contains("error_burst"))
        .collect();
    assert_eq!(stdout.len(), 2, "{output}");
    assert!(stdout.iter().all(|l| l.contains("api")), "{output}");
    // Ended by hand.
    assert_eq!(
        alerts(&data, &["unsilence", "payments"]),
        "payments is no longer silenced\n"
    );
    assert_eq!(
        alerts(&data, &["silences"]),
        "service  until  left  reason\n(0 rows)\n"
    );
    assert_eq!(
        alerts(&data, &["unsilence", "payments"]),
        "payments was not silenced\n"
    );
}

/// With `[hot_dynamodb]` the silences live in the DynamoDB hot table, so a
/// silence set from one machine is seen from any other (against the local
/// emulator).
#[test]
fn silences_go_to_the_dynamodb_hot_table_with_hot_dynamodb() {
    use spate_test_support::emulator::{boto, endpoint};
    use spate_test_support::unique;

    let table = unique("alerts-silences");
    boto(
        r#"
ddb.create_table(TableName=ARGS['table'],
                 AttributeDefinitions=[{'AttributeName': 'pk', 'AttributeType': 'S'},
                                       {'AttributeName': 'sk', 'AttributeType': 'S'}],
                 KeySchema=[{'AttributeName': 'pk', 'KeyType': 'HASH'},
                            {'AttributeName': 'sk', 'KeyType': 'RANGE'}],
                 BillingMode='PAY_PER_REQUEST')
print(json.dumps(True))
"#,
        &json!({ "table": table }),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n\n[hot_dynamodb]\ntable = \"{table}\"\n",
        endpoint()
    );
    // Two machines: different data dirs, one table.
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    for data in [&one, &two] {
        std::fs::write(data.with_extension("toml"), &config).unwrap();
    }
    let out = alerts(
        &one,
        &["silence", "payments", "--for", "30m", "--reason", "deploy"],
    );
    assert!(out.starts_with("silenced payments until "), "{out}");
    let listed: Value =
        serde_json::from_str(&alerts(&two, &["silences", "--format", "json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["service"], "payments");
    assert_eq!(listed[0]["reason"], "deploy");
    // The item itself, as any other reader of the table sees it.
    let item = boto(
        r#"
item = ddb.get_item(TableName=ARGS['table'], Key={'pk': {'S': 'silences'}, 'sk': {'S': 'payments'}})['Item']
print(json.dumps({'reason': item['reason']['S'], 'until_ms': int(item['until_ms']['N'])}))
"#,
        &json!({ "table": table }),
    );
    assert_eq!(item["reason"], "deploy");
    assert_eq!(item["until_ms"], listed[0]["until_ms"]);
    assert_eq!(
        alerts(&two, &["unsilence", "payments"]),
        "payments is no longer silenced\n"
    );
    assert_eq!(
        alerts(&one, &["silences"]),
        "service  until  left  reason\n(0 rows)\n"
    );
}

/// `[alerts.pagerduty]` wired into `spate run`: a route sends criticals to a
/// local Events API v2 receiver, which gets a trigger and then a resolve
/// with one dedup key; the other notices go to the file only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criticals_are_routed_to_pagerduty_as_trigger_then_resolve() {
    use std::sync::{Arc, Mutex};

    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/v2/enqueue",
        axum::routing::post(move |body: String| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                (
                    axum::http::StatusCode::ACCEPTED,
                    r#"{"status":"success","message":"Event processed"}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"
[hot]
retention_hours = 1000000
alert_retention_days = 100000
[pipeline]
decode_workers = 1
[alerts.pagerduty]
routing_key = "test-routing-key"
url = "http://{addr}/v2/enqueue"
timeout = "2s"
[[alerts.routes]]
severities = ["CRITICAL"]
outputs = ["pagerduty"]
continue = true
[[alerts.routes]]
outputs = ["file"]
"#
    );
    let service = Service::start(support::SPATE, &data, &config);
    let client = reqwest::Client::new();
    let window = 300_000;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 12 * window;
    let mut body: Vec<String> = (0..2)
        .map(|i| event(w0 + 10_000 + i * 1000, "payments", "critical"))
        .collect();
    for k in 1..=3 {
        body.extend((0..5).map(|i| event(w0 + k * window + 70_000 + i * 1000, "payments", "info")));
    }
    let r = client
        .post(format!("{}/v1/logs", service.url))
        .body(body.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let received = received.lock().unwrap().clone();
    let actions: Vec<(&str, &str)> = received
        .iter()
        .map(|e| {
            (
                e["event_action"].as_str().unwrap(),
                e["dedup_key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("trigger", "spate/critical/payments"),
            ("resolve", "spate/critical/payments")
        ],
        "{received:#?}"
    );
    assert!(
        received
            .iter()
            .all(|e| e["routing_key"] == "test-routing-key")
    );
    assert_eq!(received[0]["payload"]["severity"], "critical");
    assert_eq!(received[0]["payload"]["source"], "payments");
    // The key is not in the logs.
    assert!(!output.contains("test-routing-key"), "{output}");
    // The file got them too (second route), and nothing else went to PagerDuty.
    let file = std::fs::read_to_string(data.join("alerts.ndjson")).unwrap();
    let critical = file
        .lines()
        .filter(|l| l.contains("\"rule\":\"critical\""))
        .count();
    assert_eq!(critical, 2, "{file}");
}
