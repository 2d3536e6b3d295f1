//! The shipped dashboards refer only to metrics that exist: every metric name
//! of the Grafana dashboard (`deploy/grafana/dashboards/spate.json`) is a
//! sample of `/metrics`, and every `Spate` metric of the CloudWatch dashboard
//! (`deploy/cloudwatch/dashboard.json`) is in the EMF output, of two live
//! `spate run` processes: one local (HTTP, tail, the embedded hot store) and
//! one on the AWS emulator (SQS, Kinesis, the S3 lake, the DynamoDB hot store,
//! SNS). promtool parses every Grafana query, and finds nothing wrong with
//! either `/metrics` page.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::repo;
use spate_test_support::service::Service;
use spate_test_support::unique;

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every PromQL expression of a Grafana dashboard: panel targets (rows
/// included) and template variable queries.
fn grafana_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(panels: &Value, out: &mut Vec<String>) {
        for panel in panels.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(target["expr"].as_str().unwrap().to_string());
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

/// The Spate metric names in a PromQL expression (outside string literals).
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_string = false;
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            word.push(c);
            continue;
        }
        if word.starts_with("spate_") || word.starts_with("process_") {
            names.insert(std::mem::take(&mut word));
        }
        word.clear();
    }
    names
}

/// `(namespace, metric)` of every Metrics Insights query of a CloudWatch
/// dashboard body (`SELECT AGG(metric) FROM namespace | SCHEMA("ns", ...)`).
fn cloudwatch_metrics(body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        if widget["type"] != "metric" {
            continue;
        }
        let props = &widget["properties"];
        assert_eq!(props["region"], "${AWS::Region}", "{widget}");
        for metric in props["metrics"].as_array().unwrap() {
            let query = metric[0]["expression"].as_str().unwrap();
            let select = query
                .strip_prefix("SELECT ")
                .unwrap_or_else(|| panic!("{query}"));
            let open = select.find('(').unwrap();
            let close = select.find(')').unwrap();
            let name = select[open + 1..close].trim_matches('"').to_string();
            let from = &select[select.find(" FROM ").unwrap() + 6..];
            let namespace = match from.strip_prefix("SCHEMA(\"") {
                Some(rest) => rest[..rest.find('"').unwrap()].to_string(),
                None => from.split_whitespace().next().unwrap().to_string(),
            };
            out.push((namespace, name));
        }
    }
    out
}

/// The sample names of a Prometheus text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l[..l.find(['{', ' ']).unwrap_or(l.len())].to_string())
        .collect()
}

/// The metric names of the EMF documents printed on stdout.
fn emf_metric_names(output: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in output.lines().filter_map(|l| l.strip_prefix("stdout: ")) {
        if !line.starts_with('{') || !line.contains("\"_aws\"") {
            continue;
        }
        let doc: Value = serde_json::from_str(line).unwrap();
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            names.insert(m["Name"].as_str().unwrap().to_string());
        }
    }
    names
}

/// The value of `series` (exactly as rendered; ending in `{`: the first
/// series of that name, whatever its labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(series)?;
            match series.ends_with('{') {
                true => rest.rsplit_once(' ').map(|(_, v)| v),
                false => rest.strip_prefix(' '),
            }
        })
        .and_then(|v| v.parse().ok())
}

/// Polls `/metrics` until every series of `ready` is at least its value.
fn wait_for(service: &Service, ready: &[(&str, f64)]) -> String {
    let started = Instant::now();
    loop {
        let text = service.metrics_text();
        if ready
            .iter()
            .all(|(series, at_least)| sample(&text, series).is_some_and(|v| v >= *at_least))
        {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "waiting for {ready:?}:\n{}\n{text}",
            service.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

const EMF: &str = r#"
[metrics.emf]
enabled = true
interval_secs = 1

[metrics.emf.dimensions]
task = "dashboards"
"#;

/// The local run: HTTP pushes, a tailed file, a query; (metrics, output).
fn local_run(dir: &Path) -> (String, String) {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = format!(
        "[lake]\nmax_file_age_secs = 1\n\n[tail]\npaths = [\"{}/*.log\"]\n{EMF}",
        logs.display()
    );
    let service = Service::start(support::SPATE, &dir.join("data"), &config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let body: Vec<String> = (0..50)
            .map(|i| {
                json!({"service": "api", "level": "error", "message": format!("m{i}")}).to_string()
            })
            .collect();
        let r = reqwest::Client::new()
            .post(format!("{}/v1/logs", service.url))
            .body(body.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    std::fs::write(logs.join("app.log"), "ERROR tailed\n").unwrap();
    wait_for(
        &service,
        &[
            (
                r#"spate_source_batches_settled_total{source="http",verdict="delivered"}"#,
                1.0,
            ),
            (
                r#"spate_source_batches_settled_total{source="tail",verdict="delivered"}"#,
                1.0,
            ),
        ],
    );
    service.query(json!({"sql": "select count(*) from logs"}));
    let text = service.metrics_text();
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    (text, output)
}

/// The AWS run: SQS and Kinesis in, S3 lake, DynamoDB hot store, SNS alerts.
fn aws_run(dir: &Path) -> (String, String) {
    let id = unique("dash");
    let setup = boto(
        r#"
i = ARGS['id']
q = sqs.create_queue(QueueName=i + '-in')['QueueUrl']
s3.create_bucket(Bucket=i + '-lake')
topic = sns.create_topic(Name=i + '-alerts')['TopicArn']
kinesis.create_stream(StreamName=i + '-logs', ShardCount=1)
kinesis.get_waiter('stream_exists').wait(StreamName=i + '-logs', WaiterConfig={'Delay': 0.1, 'MaxAttempts': 100})
s = lambda n: {'AttributeName': n, 'AttributeType': 'S'}
k = lambda n, t: {'AttributeName': n, 'KeyType': t}
ddb.create_table(TableName=i + '-hot', AttributeDefinitions=[s('pk'), s('sk')],
                 KeySchema=[k('pk', 'HASH'), k('sk', 'RANGE')], BillingMode='PAY_PER_REQUEST')
ddb.create_table(TableName=i + '-leases', AttributeDefinitions=[s('lease_key')],
                 KeySchema=[k('lease_key', 'HASH')], BillingMode='PAY_PER_REQUEST')
print(json.dumps({'queue': q, 'topic': topic}))
"#,
        &json!({ "id": id }),
    );
    let config = format!(
        r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[[sources.sqs]]
queue_url = "{queue}"
wait_time_secs = 1
pollers = 1

[[sources.kinesis]]
stream = "{id}-logs"
lease_table = "{id}-leases"
worker_id = "dashboards"
lease_duration_secs = 10
renew_every_secs = 1
poll_interval_ms = 100

[lake]
max_file_age_secs = 1

[lake.s3]
bucket = "{id}-lake"
prefix = "spate/"

[hot_dynamodb]
table = "{id}-hot"
commit_interval = "1s"

[alerts.sns]
topic_arn = "{topic}"
{EMF}"#,
        endpoint = endpoint(),
        queue = setup["queue"].as_str().unwrap(),
        topic = setup["topic"].as_str().unwrap(),
    );
    let service = Service::start(support::SPATE, &dir.join("data"), &config);
    boto(
        r#"
sqs.send_message(QueueUrl=ARGS['queue'], MessageBody='{"service": "api", "level": "error", "message": "from sqs"}')
kinesis.put_record(StreamName=ARGS['id'] + '-logs', PartitionKey='p',
                   Data=b'{"service": "api", "level": "warning", "message": "from kinesis"}\n')
print('null')
"#,
        &json!({ "id": id, "queue": setup["queue"] }),
    );
    let text = wait_for(
        &service,
        &[
            (
                r#"spate_source_batches_settled_total{source="sqs-0",verdict="delivered"}"#,
                1.0,
            ),
            (
                r#"spate_source_batches_settled_total{source="kinesis-0",verdict="delivered"}"#,
                1.0,
            ),
            ("spate_sqs_queue_visible_messages{", 0.0),
            ("spate_kinesis_behind_latest_seconds{", 0.0),
        ],
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    (text, output)
}

#[test]
fn dashboards_refer_only_to_metrics_a_live_spate_has() {
    let grafana = read_json("deploy/grafana/dashboards/spate.json");
    let cloudwatch = read_json("deploy/cloudwatch/dashboard.json");
    let exprs = grafana_exprs(&grafana);
    assert!(exprs.len() > 30, "{exprs:?}");
    let cw = cloudwatch_metrics(&cloudwatch);
    assert!(cw.len() > 20, "{cw:?}");

    // Every Grafana query parses (as a recording rule, Grafana's variables
    // replaced by what they expand to).
    let dir = tempfile::tempdir().unwrap();
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Grafana's `label_values(selector, label)`: the selector is PromQL.
            let e = match e.strip_prefix("label_values(") {
                Some(rest) => rest[..rest.rfind(',').unwrap()].to_string(),
                None => e.clone(),
            };
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$job", ".*")
                .replace("$instance", ".*");
            json!({"record": format!("spate:dashboard_{i}"), "expr": e})
        })
        .collect();
    let rules_file = dir.path().join("rules.json");
    std::fs::write(
        &rules_file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let promtool = std::env::var("SPATE_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules_file)
        .output()
        .unwrap_or_else(|e| {
            panic!("{promtool}: {e} (run with `bash scripts/test.sh`, which installs promtool)")
        });
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (local_metrics, local_output) = local_run(&dir.path().join("local"));
    let (aws_metrics, aws_output) = aws_run(&dir.path().join("aws"));
    // Both pages (every kind of source and sink between them) pass promtool.
    for page in [&local_metrics, &aws_metrics] {
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), page.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.is_empty(),
            "promtool: {said}\n{page}"
        );
    }
    let mut samples = sample_names(&local_metrics);
    samples.extend(sample_names(&aws_metrics));
    let mut emf = emf_metric_names(&local_output);
    emf.extend(emf_metric_names(&aws_output));

    let grafana_names: BTreeSet<String> =
        exprs.iter().flat_map(|e| promql_metric_names(e)).collect();
    assert!(grafana_names.len() > 40, "{grafana_names:?}");
    let missing: Vec<_> = grafana_names
        .iter()
        .filter(|n| !samples.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "Grafana dashboard metrics not in /metrics: {missing:?}"
    );

    let mut seen_aws = BTreeSet::new();
    for (namespace, name) in &cw {
        match namespace.as_str() {
            "Spate" => assert!(
                emf.contains(name),
                "CloudWatch dashboard metric {name} not in the EMF output"
            ),
            "AWS/SQS" | "AWS/Kinesis" => {
                seen_aws.insert(namespace.as_str());
            }
            other => panic!("unexpected namespace {other} for {name}"),
        }
    }
    assert_eq!(seen_aws.len(), 2, "AWS/SQS and AWS/Kinesis widgets: {cw:?}");
}
