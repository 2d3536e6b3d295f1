//! `spate run` against the local AWS emulator (moto, started by
//! `scripts/test.sh`): SQS in, the lake on S3, the hot store, and an SNS alert
//! that a subscribed queue receives; and two processes sharing a Kinesis
//! stream and the DynamoDB hot store, which raise one alert from their merged
//! window counts.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::service::Service;
use support::{python, spate};

fn endpoint() -> String {
    std::env::var("SPATE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("SPATE_TEST_AWS_ENDPOINT is not set: run the suite with `bash scripts/test.sh`")
    })
}

/// Runs a boto3 snippet against the emulator; `ARGS` is the JSON argument and
/// the snippet prints one JSON value.
fn boto(snippet: &str, args: &Value) -> Value {
    let script = format!(
        "import boto3, json, sys, time\n\
         ARGS = json.loads(sys.argv[1])\n\
         kw = dict(endpoint_url=sys.argv[2], region_name='us-east-1',\n\
                   aws_access_key_id='test', aws_secret_access_key='test')\n\
         sqs = boto3.client('sqs', **kw)\n\
         s3 = boto3.client('s3', **kw)\n\
         sns = boto3.client('sns', **kw)\n\
         kinesis = boto3.client('kinesis', **kw)\n\
         ddb = boto3.client('dynamodb', **kw)\n\
         {snippet}\n"
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(args.to_string())
        .arg(endpoint())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

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
print(json.dumps({'queue': q, 'sub': sub, 'topic': topic, 'bucket': ARGS['id'] + '-lake'}))
"#,
        &json!({ "id": id }),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[[sources.sqs]]
queue_url = "{queue}"
wait_time_secs = 1
pollers = 2

[lake]
max_file_age_secs = 2

[lake.s3]
bucket = "{bucket}"
prefix = "spate/"

[alerts.sns]
topic_arn = "{topic}"

[hot]
retention_hours = 1000000
"#,
        endpoint = endpoint(),
        queue = setup["queue"].as_str().unwrap(),
        bucket = setup["bucket"].as_str().unwrap(),
        topic = setup["topic"].as_str().unwrap(),
    );
    let service = Service::start(&data, &config);

    // 10 messages of 100 events; one service logs criticals in one window, and
    // the last message moves event time two windows on so that window closes.
    let window = 300_000i64;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 4 * window;
    let mut messages = Vec::new();
    for m in 0..10i64 {
        let mut lines = Vec::new();
        for i in 0..100i64 {
            let ts = if m == 9 {
                w0 + 2 * window + 70_000 + i
            } else {
                w0 + m * 1000 + i
            };
            let (service, level) = if m == 0 && i < 3 {
                ("pay", "critical")
            } else if i % 10 == 0 {
                ("pay", "warning")
            } else {
                ("web", "info")
            };
            lines.push(
                json!({"ts": ts, "level": level, "service": service, "message": format!("m{m} e{i}")})
                    .to_string(),
            );
        }
        messages.push(lines.join("\n"));
    }
    boto(
        r#"
for body in ARGS['messages']:
    sqs.send_message(QueueUrl=ARGS['queue'], MessageBody=body)
print('null')
"#,
        &json!({ "queue": setup["queue"], "messages": messages }),
    );
    // Wait until Spate has deleted every message (deleted only after the lake
    // object exists and the hot store committed).
    let drained = boto(
        r#"
deadline = time.time() + 60
while time.time() < deadline:
    a = sqs.get_queue_attributes(QueueUrl=ARGS['queue'], AttributeNames=['All'])['Attributes']
    if int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']) == 0:
        print('true'); break
    time.sleep(0.2)
else:
    print('false')
"#,
        &json!({ "queue": setup["queue"] }),
    );
    assert_eq!(drained, true, "{}", service.output());
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    // The lake on S3: 1,000 rows under the partition layout.
    let lake = boto(
        r#"
import pyarrow.parquet as pq, io
keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket=ARGS['bucket']) for o in p.get('Contents', [])]
rows = 0
for k in keys:
    body = s3.get_object(Bucket=ARGS['bucket'], Key=k)['Body'].read()
    rows += pq.read_table(io.BytesIO(body)).num_rows
print(json.dumps({'keys': keys, 'rows': rows}))
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
    // Nothing left in the local staging directory.
    assert!(
        support::walk(&data.join("lake"))
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "parquet")),
        "staged files remain"
    );

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
}

/// The notices a process wrote to `<data dir>/alerts.ndjson`.
fn notices(data: &Path) -> Vec<Value> {
    std::fs::read_to_string(data.join("alerts.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Notices of `rule` in `state`.
fn of<'a>(notices: &'a [Value], rule: &str, state: &str) -> Vec<&'a Value> {
    notices
        .iter()
        .filter(|n| n["rule"] == rule && n["state"] == state)
        .collect()
}

/// Waits (real time: other processes) until `done` holds, failing after
/// `limit` with `what`.
fn wait_until(limit: Duration, what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_processes_sharing_a_stream_raise_one_alert_for_one_window() {
    let id = format!("shared{}", std::process::id());
    let setup = boto(
        r#"
stream, hot, leases = ARGS['id'] + '-logs', ARGS['id'] + '-hot', ARGS['id'] + '-leases'
kinesis.create_stream(StreamName=stream, ShardCount=2)
kinesis.get_waiter('stream_exists').wait(StreamName=stream, WaiterConfig={'Delay': 0.1, 'MaxAttempts': 100})
s = lambda n: {'AttributeName': n, 'AttributeType': 'S'}
k = lambda n, t: {'AttributeName': n, 'KeyType': t}
ddb.create_table(TableName=hot, AttributeDefinitions=[s('pk'), s('sk')],
                 KeySchema=[k('pk', 'HASH'), k('sk', 'RANGE')], BillingMode='PAY_PER_REQUEST')
ddb.create_table(TableName=leases, AttributeDefinitions=[s('lease_key')],
                 KeySchema=[k('lease_key', 'HASH')], BillingMode='PAY_PER_REQUEST')
shards = kinesis.list_shards(StreamName=stream)['Shards']
print(json.dumps({'stream': stream, 'hot': hot, 'leases': leases,
                  'hash_keys': [sh['HashKeyRange']['StartingHashKey'] for sh in shards]}))
"#,
        &json!({ "id": id }),
    );
    let hash_keys = setup["hash_keys"].as_array().unwrap();
    assert_eq!(hash_keys.len(), 2, "{setup}");
    // One-minute windows, closed by the idle timeout 2 s after the last
    // event; decisions 5 s after the partial counts were added; leases
    // renewed every second. The default rules: error_burst fires above 10
    // ERRORs in a window.
    let config = |worker: &str| {
        format!(
            r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[[sources.kinesis]]
stream = "{stream}"
lease_table = "{leases}"
worker_id = "{worker}"
lease_duration_secs = 10
renew_every_secs = 1
poll_interval_ms = 200

[hot_dynamodb]
table = "{hot}"

[windows]
size_secs = 60
allowed_lateness_secs = 1
idle_timeout_secs = 2
tick_ms = 200
shared_settle_secs = 5
"#,
            endpoint = endpoint(),
            stream = setup["stream"].as_str().unwrap(),
            leases = setup["leases"].as_str().unwrap(),
            hot = setup["hot"].as_str().unwrap(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = Service::start(&data_a, &config("a"));
    let b = Service::start(&data_b, &config("b"));

    // The processes split the shards: each runs the reader of one (the one
    // that took both first gives one up when the other takes it over).
    let owned = |s: &Service| s.metric("spate_kinesis_leases_owned");
    wait_until(
        Duration::from_secs(60),
        || {
            let leases = boto(
                "print(json.dumps(ddb.scan(TableName=ARGS['t'], ConsistentRead=True)['Items']))",
                &json!({ "t": setup["leases"] }),
            );
            format!(
                "one shard each (owned: a {:?}, b {:?}; leases {leases}):\n{}\n{}",
                owned(&a),
                owned(&b),
                a.output(),
                b.output()
            )
        },
        || owned(&a) == Some(1.0) && owned(&b) == Some(1.0),
    );

    // 7 ERRORs of `api` on each shard, in one window two minutes back: each
    // process sees 7 (no burst alone), the merged window 14.
    let window = 60_000i64;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 2 * window;
    let records: Vec<(String, String)> = hash_keys
        .iter()
        .enumerate()
        .map(|(shard, key)| {
            let lines: Vec<String> = (0..7)
                .map(|i| {
                    json!({"ts": w0 + 1_000 * i, "level": "error", "service": "api",
                           "message": format!("shard {shard} error {i}")})
                    .to_string()
                })
                .collect();
            (key.as_str().unwrap().to_string(), lines.join("\n"))
        })
        .collect();
    boto(
        r#"
for key, data in ARGS['records']:
    kinesis.put_record(StreamName=ARGS['stream'], Data=data.encode(), PartitionKey='p', ExplicitHashKey=key)
print('null')
"#,
        &json!({ "stream": setup["stream"], "records": records }),
    );

    // Both processes decide: each claims the burst and its resolution (the
    // next window has no error), one wins each claim.
    let claims = |s: &Service| {
        s.metric("spate_alert_claims_won_total").unwrap_or(0.0)
            + s.metric("spate_alert_claims_lost_total").unwrap_or(0.0)
    };
    wait_until(
        Duration::from_secs(60),
        || format!("both processes to decide:\n{}\n{}", a.output(), b.output()),
        || claims(&a) >= 2.0 && claims(&b) >= 2.0,
    );
    let lost = b.metric("spate_alert_claims_lost_total").unwrap_or(0.0)
        + a.metric("spate_alert_claims_lost_total").unwrap_or(0.0);
    assert!(
        lost >= 2.0,
        "a lost claim each for the firing and the resolution"
    );
    let (status, out_a) = a.stop();
    assert!(status.success(), "{out_a}");
    let (status, out_b) = b.stop();
    assert!(status.success(), "{out_b}");

    // Exactly one firing notice and one resolution across both processes'
    // outputs, with the merged count.
    let sent: Vec<Value> = notices(&data_a)
        .into_iter()
        .chain(notices(&data_b))
        .collect();
    let firing = of(&sent, "error_burst", "firing");
    assert_eq!(firing.len(), 1, "{sent:#?}");
    assert_eq!(firing[0]["service"], "api");
    assert_eq!(firing[0]["window_start_ms"], w0);
    assert_eq!(firing[0]["value"], 14.0);
    assert_eq!(of(&sent, "error_burst", "resolved").len(), 1, "{sent:#?}");
    let stdout_lines = format!("{out_a}{out_b}")
        .lines()
        .filter(|l| l.starts_with("stdout: ALERT firing error_burst"))
        .count();
    assert_eq!(stdout_lines, 1, "{out_a}{out_b}");

    // And exactly one such alert in the DynamoDB store.
    let out = spate()
        .args(["hot", "alerts", "--since", "1d", "--json", "--config"])
        .arg(data_a.with_extension("toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stored_firing = of(&stored, "error_burst", "firing");
    assert_eq!(stored_firing.len(), 1, "{stored:#?}");
    assert_eq!(stored_firing[0]["value"], 14.0);
    assert_eq!(stored_firing[0]["id"], firing[0]["id"]);
}
