//! `spate run` against the local AWS emulator (moto, started by
//! `scripts/test.sh`): SQS in, the lake and dead letters on S3, the hot store,
//! an SNS alert that a subscribed queue receives, and a webhook whose bearer
//! token comes from Secrets Manager.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::service::Service;
use support::spate;

#[test]
fn sqs_to_s3_lake_hot_store_and_sns_alert() {
    let id = format!("t{}", std::process::id());
    let setup = boto(
        r#"
q = sqs.create_queue(QueueName=ARGS['id'] + '-in')['QueueUrl']
sub = sqs.create_queue(QueueName=ARGS['id'] + '-alerts')['QueueUrl']
sub_arn = sqs.get_queue_attributes(QueueUrl=sub, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
s3.create_bucket(Bucket=ARGS['id'] + '-lake')
topic = sns.create_topic(Name=ARGS['id'] + '-alerts')['TopicArn']
sns.subscribe(TopicArn=topic, Protocol='sqs', Endpoint=sub_arn, Attributes={'RawMessageDelivery': 'true'})
secret = secrets.create_secret(Name=ARGS['id'] + '-hook', SecretString=json.dumps({'token': 'from-secrets-manager'}))['ARN']
print(json.dumps({'queue': q, 'sub': sub, 'topic': topic, 'bucket': ARGS['id'] + '-lake', 'secret': secret}))
"#,
        &json!({ "id": id }),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (hook_url, hook_auth) = webhook_receiver();
    let config = format!(
        r#"{sqs}pollers = 2

[lake]
max_file_age_secs = 2

[lake.s3]
bucket = "{bucket}"
prefix = "spate/"

[alerts.sns]
topic_arn = "{topic}"

[alerts.webhook]
url = "{hook_url}"
bearer_token_secret = "{secret}"
bearer_token_secret_key = "token"

[hot]
retention_hours = 1000000
"#,
        sqs = spate_test_support::emulator::sqs_source_config(&setup["queue"]),
        bucket = setup["bucket"].as_str().unwrap(),
        topic = setup["topic"].as_str().unwrap(),
        secret = setup["secret"].as_str().unwrap(),
    );
    let service = Service::start(support::SPATE, &data, &config);

    // 10 messages of 100 events; one service logs criticals in one window, and
    // the last message moves event time two windows on so that window closes.
    let (w0, mut messages) = spate_test_support::emulator::alerting_messages();
    // One malformed message: a dead letter, which goes to S3 too.
    messages.push("{\"service\": \"pay\", broken".to_string());
    spate_test_support::emulator::send_messages(&setup["queue"], &messages);
    // Wait until Spate has deleted every message (deleted only after the lake
    // object exists and the hot store committed).
    assert!(
        spate_test_support::emulator::wait_drained(&setup["queue"], 60),
        "{}",
        service.output()
    );

    // POST /v1/query reads the lake in the bucket (the local lake directory is
    // only a staging area), listing it afresh for every query.
    let out = service
        .query(json!({"sql": "select count(*) as n, count(distinct event_id) as ids from logs"}));
    assert_eq!(out["rows"], json!([[1000, 1000]]), "{out}");
    let all = service.query(json!({"sql": "select message from logs", "limit": 5000}));
    assert_eq!(all["rows"].as_array().unwrap().len(), 1000, "{all}");
    let pay = service.query(json!({
        "sql": "select severity, count(*) as n from logs where service = 'pay' group by severity order by severity"
    }));
    assert_eq!(
        pay["rows"],
        json!([["CRITICAL", 3], ["WARNING", 99]]),
        "{pay}"
    );
    let scanned = |out: &Value| out["files_scanned"].as_u64().unwrap();
    let pay_messages =
        service.query(json!({"sql": "select message from logs where service = 'pay'"}));
    assert!(
        scanned(&pay_messages) >= 1 && scanned(&pay_messages) < scanned(&all),
        "pruning: {} of {} files",
        scanned(&pay_messages),
        scanned(&all)
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    // The lake on S3: 1,000 rows under the partition layout.
    let lake = boto(
        r#"
import pyarrow.parquet as pq, io
every = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket=ARGS['bucket']) for o in p.get('Contents', [])]
keys = [k for k in every if not k.startswith('spate/deadletter/')]
dead = []
for k in every:
    if k.startswith('spate/deadletter/'):
        body = s3.get_object(Bucket=ARGS['bucket'], Key=k)['Body'].read().decode()
        dead += [dict(json.loads(l), key=k) for l in body.splitlines()]
rows = 0
for k in keys:
    body = s3.get_object(Bucket=ARGS['bucket'], Key=k)['Body'].read()
    rows += pq.read_table(io.BytesIO(body)).num_rows
print(json.dumps({'keys': keys, 'rows': rows, 'dead': dead}))
"#,
        &json!({ "bucket": setup["bucket"] }),
    );
    assert_eq!(lake["rows"], 1000, "{lake}");
    let keys = lake["keys"].as_array().unwrap();
    assert!(
        keys.iter().all(|k| {
            let k = k.as_str().unwrap();
            k.starts_with("spate/logs/dt=") && k.contains("/service=") && k.ends_with(".parquet")
        }),
        "{lake}"
    );
    // The malformed message is a dead letter in S3, with its reason.
    let dead = lake["dead"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{lake}");
    assert_eq!(dead[0]["raw"], "{\"service\": \"pay\", broken", "{lake}");
    assert!(
        dead[0]["reason"].as_str().unwrap().contains("json"),
        "{lake}"
    );
    assert!(
        dead[0]["key"]
            .as_str()
            .unwrap()
            .starts_with("spate/deadletter/dt="),
        "{lake}"
    );
    // Nothing left in the local staging directories.
    assert!(
        spate_test_support::lake::walk(&data.join("lake"))
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "parquet")),
        "staged files remain"
    );
    assert!(
        spate_test_support::lake::walk(&data.join("deadletter")).is_empty(),
        "staged dead letters remain"
    );
    // `spate query --config` with `[lake.s3]` reads the bucket too, with the
    // `[aws]` endpoint of the config.
    let out = spate()
        .args(["query", "--format", "json", "--config"])
        .arg(data.with_extension("toml"))
        .args(["--data-dir"])
        .arg(&data)
        .arg("select count(*) as n from logs where service = 'pay'")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows, json!([{"n": 102}]));

    // The hot store: `pay`'s 3 criticals and 99 warnings (every tenth event of
    // each message, but the first message's first, which is critical).
    let out = spate()
        .args([
            "hot", "recent", "--since", "100000d", "--limit", "100000", "--json",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 102);

    // The SNS alert reached the subscribed queue, with its attributes.
    let alert = boto(
        r#"
deadline = time.time() + 20
found = None
while time.time() < deadline and found is None:
    r = sqs.receive_message(QueueUrl=ARGS['sub'], MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=['All'])
    for m in r.get('Messages', []):
        body = json.loads(m['Body'])
        if body.get('rule') == 'critical' and body.get('state') == 'firing':
            found = {'body': body, 'attrs': {k: v['StringValue'] for k, v in m.get('MessageAttributes', {}).items()}}
print(json.dumps(found))
"#,
        &json!({ "sub": setup["sub"] }),
    );
    assert_eq!(alert["body"]["service"], "pay", "{alert}");
    assert_eq!(alert["body"]["window_start_ms"], w0);
    assert_eq!(alert["attrs"]["rule"], "critical");
    assert_eq!(alert["attrs"]["service"], "pay");

    // The webhook got the alerts with the token read from Secrets Manager.
    let seen = hook_auth.lock().unwrap().clone();
    assert!(!seen.is_empty(), "{output}");
    assert!(
        seen.iter().all(|a| a == "Bearer from-secrets-manager"),
        "{seen:?}"
    );
}

/// `loadgen send --target sqs` drives a spike into a queue while `spate run`
/// consumes it into the S3 lake; `loadgen verify --lake s3://...` then finds
/// every event `send` saw acknowledged.
#[test]
fn loadgen_spike_into_sqs_loses_nothing_in_the_s3_lake() {
    let id = format!("lg{}", std::process::id());
    let setup = boto(
        r#"
q = sqs.create_queue(QueueName=ARGS['id'] + '-in')['QueueUrl']
s3.create_bucket(Bucket=ARGS['id'] + '-lake')
print(json.dumps({'queue': q, 'bucket': ARGS['id'] + '-lake'}))
"#,
        &json!({ "id": id }),
    );
    let queue = setup["queue"].as_str().unwrap();
    let bucket = setup["bucket"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"{aws}
[[sources.sqs]]
queue_url = "{queue}"
wait_time_secs = 1
pollers = 2

[lake]
max_file_age_secs = 1

[lake.s3]
bucket = "{bucket}"
prefix = "spate/"
"#,
        aws = spate_test_support::emulator::aws_section(),
    );
    let service = Service::start(support::SPATE, &data, &config);

    // The W4 spike scaled to 3 s: 200 events/s, 2,000/s for 0.6 s, 200/s;
    // 1,680 events in messages of 40, a run each as NDJSON, as CloudWatch Logs
    // subscription payloads and as NDJSON compressed with zstd (base64).
    let send_report = dir.path().join("send.json");
    for (run, format, compress) in [
        ("lg-ndjson", "ndjson", "none"),
        ("lg-cwl", "cloudwatch", "none"),
        ("lg-zstd", "ndjson", "zstd"),
    ] {
        #[rustfmt::skip]
        let report = support::loadgen_json(&[
            "send", "--target", "sqs", "--queue-url", queue,
            "--profile", "spike", "--rate", "200", "--duration", "3s",
            "--batch-events", "80", "--events-per-message", "40",
            "--message-format", format, "--compress", compress, "--run-id", run,
        ]);
        assert_eq!(report["target"], format!("sqs:{queue}"), "{report}");
        assert_eq!(report["failed"], 0, "{report}");
        assert_eq!(report["dropped_by_generator"], 0, "{report}");
        let sent = report["scheduled"].as_u64().unwrap();
        assert!(sent > 1_500, "{report}");
        assert_eq!(report["acknowledged"], sent, "{report}");
        std::fs::write(&send_report, report.to_string()).unwrap();

        assert!(
            spate_test_support::emulator::wait_drained(&setup["queue"], 90),
            "{}",
            service.output()
        );
        let lake = format!("s3://{bucket}/spate");
        let report_arg = send_report.display().to_string();
        let verified =
            support::loadgen_json(&["verify", "--lake", &lake, "--send-report", &report_arg]);
        assert_eq!(verified["run_id"], run, "{verified}");
        assert_eq!(verified["expected_from"], "send_report", "{verified}");
        assert_eq!(verified["expected"], sent, "{verified}");
        assert_eq!(verified["lost"]["count"], 0, "{verified}");
        assert_eq!(verified["unique"], sent, "{verified}");
        assert_eq!(verified["unexpected"], 0, "{verified}");
        assert!(verified["files"].as_u64().unwrap() >= 1, "{verified}");
    }
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

/// `spate run` refuses to start when the webhook's secret does not exist, and
/// says which secret.
#[test]
fn missing_webhook_secret_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("t{}-no-such-secret", std::process::id());
    let config_path = dir.path().join("spate.toml");
    std::fs::write(
        &config_path,
        format!(
            "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n\n[alerts.webhook]\nurl = \"http://127.0.0.1:9/hook\"\nbearer_token_secret = \"{secret}\"\n",
            endpoint()
        ),
    )
    .unwrap();
    let out = spate()
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config_path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("alerts.webhook.bearer_token_secret") && stderr.contains(&secret),
        "{stderr}"
    );
    assert!(stderr.contains("not found"), "{stderr}");
}

/// A webhook receiver on a free port answering 200 to every request; returns
/// its URL and the `Authorization` headers it saw.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let header = line.trim_end().to_string();
                line.clear();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "authorization" => log.lock().unwrap().push(value.trim().to_string()),
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

/// The shipped Glue table (`deploy/glue/logs_table.json`) in the emulator,
/// and `spate run` registering every partition it seals into before the
/// upload: Athena then prunes by date, hour and service without projection.
#[test]
fn sealed_partitions_are_registered_in_glue() {
    let id = format!("g{}", std::process::id());
    let table_json = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/glue/logs_table.json"),
    )
    .unwrap()
    .replace("BUCKET/PREFIX", &format!("{id}-lake/spate"));
    boto(
        r#"
s3.create_bucket(Bucket=ARGS['id'] + '-lake')
glue.create_database(DatabaseInput={'Name': ARGS['id']})
glue.create_table(DatabaseName=ARGS['id'], TableInput=json.loads(ARGS['table']))
print('{}')
"#,
        &json!({ "id": id, "table": table_json }),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[lake]
max_file_age = "1s"
commit_interval = "100ms"

[lake.s3]
bucket = "{id}-lake"
prefix = "spate/"
max_file_age = "1s"

[lake.s3.glue]
database = "{id}"
"#,
        endpoint = endpoint(),
    );
    let service = Service::start(support::SPATE, &data, &config);
    // Two services over two hours: four partitions.
    let mut lines = Vec::new();
    for (i, service) in ["checkout", "search"].iter().enumerate() {
        for hour in ["10", "11"] {
            for n in 0..5 {
                lines.push(
                    json!({
                        "timestamp": format!("2026-11-23T{hour}:0{n}:00.000Z"),
                        "level": if i == 0 { "error" } else { "info" },
                        "service": service,
                        "message": format!("m{n}"),
                    })
                    .to_string(),
                );
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/logs", service.url))
            .body(lines.join("\n"))
            .send()
            .await
            .unwrap();
        // Answered once journaled; the lake acknowledges after the upload.
        assert_eq!(r.status(), 200);
    });
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let found = boto(
        r#"
parts = glue.get_partitions(DatabaseName=ARGS['id'], TableName='logs')['Partitions']
objects = s3.list_objects_v2(Bucket=ARGS['id'] + '-lake', Prefix='spate/logs/').get('Contents', [])
print(json.dumps({
    'partitions': sorted([[p['Values'], p['StorageDescriptor']['Location'],
                           p['StorageDescriptor']['SerdeInfo']['SerializationLibrary']] for p in parts]),
    'objects': sorted(o['Key'] for o in objects),
}))
"#,
        &json!({ "id": id }),
    );
    let partitions = found["partitions"].as_array().unwrap();
    let mut expected = Vec::new();
    for service in ["checkout", "search"] {
        for hour in ["10", "11"] {
            expected.push((
                vec![
                    "2026-11-23".to_string(),
                    hour.to_string(),
                    service.to_string(),
                ],
                format!("s3://{id}-lake/spate/logs/dt=2026-11-23/hour={hour}/service={service}/"),
            ));
        }
    }
    expected.sort();
    let got: Vec<(Vec<String>, String)> = partitions
        .iter()
        .map(|p| {
            assert_eq!(
                p[2], "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                "the table's storage descriptor is copied"
            );
            (
                serde_json::from_value(p[0].clone()).unwrap(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    // Every registered partition holds the sealed files of its rows.
    let objects: Vec<&str> = found["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for (_, location) in &expected {
        let prefix = location.strip_prefix(&format!("s3://{id}-lake/")).unwrap();
        assert!(
            objects
                .iter()
                .any(|o| o.starts_with(prefix) && o.ends_with(".parquet")),
            "no file in {location}: {objects:?}"
        );
    }
}

/// The sum of the samples of `family` whose labels include every one of
/// `labels` (0 when there are none).
fn sum_of(text: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(family))
        .filter(|l| l.starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every AWS call of `spate run` is counted by service and operation, with
/// the bytes of its bodies: against W1 messages queued before the start (so
/// receives come back full, as under load), the SQS receives and batched
/// deletes and the lake's PutObject calls match what the pipeline did, and the
/// page stays promtool-clean. Prints the requests per message and per event
/// (the figures `spate cost` uses, `docs/cost.md`).
#[test]
fn aws_requests_are_counted_by_service_and_operation() {
    let id = spate_test_support::unique("acct");
    let setup = boto(
        r#"
q = sqs.create_queue(QueueName=ARGS['id'])['QueueUrl']
s3.create_bucket(Bucket=ARGS['id'])
print(json.dumps({'queue': q, 'bucket': ARGS['id']}))
"#,
        &json!({ "id": id }),
    );
    let dir = tempfile::tempdir().unwrap();
    // 40 messages of 100 W1 events (~34 KB each: one 64 KiB SQS billing chunk).
    let (events, per_message) = (4_000u64, 100);
    let (corpus, _) =
        spate_test_support::oracle::corpus(dir.path(), spate_loadgen::Workload::AppJson, events);
    let lines: Vec<String> = std::fs::read_to_string(corpus)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let messages: Vec<String> = lines.chunks(per_message).map(|c| c.join("\n")).collect();
    let message_count = messages.len() as f64;
    spate_test_support::emulator::send_messages(&setup["queue"], &messages);

    let data = dir.path().join("data");
    let config = format!(
        r#"{sqs}
[lake]
max_file_age_secs = 2

[lake.s3]
bucket = "{bucket}"
prefix = "spate/"

[metrics.emf]
enabled = true
"#,
        sqs = spate_test_support::emulator::sqs_source_config(&setup["queue"]),
        bucket = setup["bucket"].as_str().unwrap(),
    );
    let service = Service::start(support::SPATE, &data, &config);
    assert!(
        spate_test_support::emulator::wait_drained(&setup["queue"], 90),
        "{}",
        service.output()
    );
    let text = service.metrics_text();
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    let (ok, said) = spate_test_support::promtool::promtool_check(&text);
    assert!(ok && said.is_empty(), "promtool: {said}\n{text}");
    let requests = |service: &str, operation: &str| {
        sum_of(
            &text,
            "spate_aws_requests_total",
            &[("service", service), ("operation", operation)],
        )
    };
    let bytes = |service: &str, operation: &str, direction: &str| {
        sum_of(
            &text,
            "spate_aws_request_bytes_total",
            &[
                ("service", service),
                ("operation", operation),
                ("direction", direction),
            ],
        )
    };
    // The calls the configured components make have series from the start,
    // at 0 when never made.
    assert!(
        text.contains(
            r#"spate_aws_requests_total{service="sqs",operation="ChangeMessageVisibilityBatch"} "#
        ),
        "{text}"
    );
    let receives = requests("sqs", "ReceiveMessage");
    let deletes = requests("sqs", "DeleteMessageBatch");
    let puts = requests("s3", "PutObject");
    // At most 10 messages a receive and a delete batch; never more deletes
    // than messages.
    assert!(receives >= message_count / 10.0, "{text}");
    assert!(
        deletes >= message_count / 10.0 && deletes <= message_count,
        "{text}"
    );
    // One PutObject per lake object (small files: no multipart upload).
    let objects = sum_of(&text, "spate_s3_lake_objects_written_total", &[]);
    assert!(objects >= 1.0, "{text}");
    assert_eq!(puts, objects, "{text}");
    // The PutObject bodies carry at least the lake's bytes; receives brought
    // the messages' bodies back.
    let lake_bytes = sum_of(&text, "spate_s3_lake_bytes_written_total", &[]);
    assert!(bytes("s3", "PutObject", "sent") >= lake_bytes, "{text}");
    let body_bytes: usize = messages.iter().map(String::len).sum();
    assert!(
        bytes("sqs", "ReceiveMessage", "received") >= body_bytes as f64,
        "{text}"
    );
    assert_eq!(
        sum_of(&text, "spate_aws_request_errors_total", &[]),
        0.0,
        "{text}"
    );
    // The default EMF set (one emission, at shutdown): each metric name with
    // its dimension values is one CloudWatch custom metric, billed a month.
    let mut custom_metrics = std::collections::BTreeSet::new();
    let mut window_metrics = std::collections::BTreeSet::new();
    let mut emf_bytes = 0;
    for line in output.lines().filter_map(|l| l.strip_prefix("stdout: ")) {
        let Ok(doc) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        emf_bytes += line.len() + 1;
        for d in directives {
            let dims: Vec<String> = d["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|set| set.as_array().into_iter().flatten())
                .map(|k| format!("{k}={}", doc[k.as_str().unwrap_or("")]))
                .collect();
            for m in d["Metrics"].as_array().into_iter().flatten() {
                // The window counts (`metrics.emf.windows`) are their own
                // family, bounded by `window_top_services`, and priced apart.
                let name = m["Name"].as_str().unwrap_or("");
                if name.starts_with("Window") {
                    window_metrics.insert(format!("{name}{dims:?}"));
                    continue;
                }
                assert!(
                    !dims.iter().any(|d| d.starts_with("actor=")),
                    "per-actor series are summed by default: {name} {dims:?}"
                );
                custom_metrics.insert(format!("{}{dims:?}", m["Name"]));
            }
        }
    }
    // docs/cost.md prices the default set (114 metrics measured here on
    // 2026-12-05, 62 after trimming it and summing the per-actor series on
    // 2026-12-06): it must not grow unnoticed. The window counts (one per
    // service x severity and per severity, per service x tag and per tag)
    // are listed apart.
    eprintln!("{} window count metrics", window_metrics.len());
    assert!(
        !custom_metrics.is_empty() && custom_metrics.len() <= 70,
        "{} custom metrics: {custom_metrics:?}",
        custom_metrics.len()
    );
    let per_event = |n: f64| n / events as f64;
    let mut by_name = std::collections::BTreeMap::new();
    for metric in &custom_metrics {
        *by_name
            .entry(metric.split('[').next().unwrap_or(""))
            .or_insert(0) += 1;
    }
    eprintln!(
        "measured: default EMF set {} custom metrics, {emf_bytes} bytes an emission: {by_name:?}",
        custom_metrics.len()
    );
    eprintln!(
        "measured: {events} W1 events in {message_count} messages: ReceiveMessage {receives} \
         ({:.3}/message), DeleteMessageBatch {deletes} ({:.3}/message), PutObject {puts} \
         ({:.6}/event), lake bytes {lake_bytes} ({:.1}/event)",
        receives / message_count,
        deletes / message_count,
        per_event(puts),
        per_event(lake_bytes),
    );
}
