//! `spate run` on Kinesis against the local AWS emulator (moto, started by
//! `scripts/test.sh`): two processes split a stream's shards through the lease
//! table, one is killed (SIGKILL) mid-stream, and the other takes its shard
//! over from the last checkpoint: every record put reaches a lake. And two
//! processes sharing a stream and the DynamoDB hot store raise one alert from
//! their merged window counts (shared windows).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::lake::duckdb;
use spate_test_support::service::Service;
use spate_test_support::unique;
use support::spate;

/// A `spate run` config reading `stream` with leases in `table` as `worker`;
/// a lease not renewed for `lease_secs` is taken over.
fn kinesis_config(stream: &str, table: &str, worker: &str, lease_secs: u64) -> String {
    format!(
        r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[[sources.kinesis]]
stream = "{stream}"
lease_table = "{table}"
worker_id = "{worker}"
lease_duration_secs = {lease_secs}
renew_every_secs = 1
poll_interval_ms = 100
"#,
        endpoint = endpoint(),
    )
}

/// Creates a stream of two shards, waiting until it is active, and a lease
/// table.
fn create_stream_and_leases(stream: &str, table: &str) {
    boto(
        r#"
kinesis.create_stream(StreamName=ARGS['stream'], ShardCount=2)
ddb.create_table(TableName=ARGS['table'],
                 AttributeDefinitions=[{'AttributeName': 'lease_key', 'AttributeType': 'S'}],
                 KeySchema=[{'AttributeName': 'lease_key', 'KeyType': 'HASH'}],
                 BillingMode='PAY_PER_REQUEST')
for _ in range(100):
    if kinesis.describe_stream_summary(StreamName=ARGS['stream'])['StreamDescriptionSummary']['StreamStatus'] == 'ACTIVE':
        break
    time.sleep(0.1)
print(json.dumps(True))
"#,
        &json!({ "stream": stream, "table": table }),
    );
}

/// Puts `count` records, each one NDJSON event `{prefix}-{i}`, spread over
/// the shards by partition key.
fn put(stream: &str, prefix: &str, count: usize) {
    boto(
        r#"
records = [{'Data': json.dumps({'service': 'api', 'level': 'info', 'msg': f"{ARGS['prefix']}-{i:04}"}) + '\n',
            'PartitionKey': f"{ARGS['prefix']}-{i}"} for i in range(ARGS['count'])]
for start in range(0, len(records), 100):
    out = kinesis.put_records(StreamName=ARGS['stream'], Records=records[start:start + 100])
    assert out['FailedRecordCount'] == 0, out
print(json.dumps(len(records)))
"#,
        &json!({ "stream": stream, "prefix": prefix, "count": count }),
    );
}

/// Owner of each shard's lease.
fn owners(table: &str) -> Vec<String> {
    let out = boto(
        r#"
items = ddb.scan(TableName=ARGS['table'], ConsistentRead=True)['Items']
print(json.dumps([i.get('owner', {}).get('S', '') for i in items]))
"#,
        &json!({ "table": table }),
    );
    serde_json::from_value(out).unwrap()
}

/// Distinct messages in a data dir's lake, sealed files and staged rows
/// alike (`spate query` reads both; a process killed before sealing leaves
/// its acknowledged rows staged, sealed when it starts again): empty while
/// there is no lake yet.
fn messages(data_dir: &Path) -> BTreeSet<String> {
    let out = spate()
        .args(["query", "--format", "ndjson", "--data-dir"])
        .arg(data_dir)
        .arg("SELECT DISTINCT message FROM logs")
        .output()
        .unwrap();
    if !out.status.success() {
        return BTreeSet::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|row| row["message"].as_str().map(str::to_string))
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_process_shards_are_taken_over_without_loss() {
    let stream = unique("kin-failover");
    let table = unique("kin-failover-leases");
    create_stream_and_leases(&stream, &table);
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    // Lake files committed every second, so checkpoints move.
    let config =
        |worker| kinesis_config(&stream, &table, worker, 3) + "[lake]\nmax_file_age_secs = 1\n";
    let a = Service::start(support::SPATE, &a_dir, &config("a"));
    let b = Service::start(support::SPATE, &b_dir, &config("b"));

    // Both processes hold a shard before anything is put.
    wait_for("one lease each", Duration::from_secs(30), || {
        let mut o = owners(&table);
        o.sort();
        o == ["a", "b"]
    });
    put(&stream, "first", 300);
    // a has read (some of) its shard: it is killed with records in flight,
    // possibly read but not yet committed.
    wait_for("a reading", Duration::from_secs(30), || {
        a.metric("spate_kinesis_records_total").unwrap_or(0.0) > 0.0
    });
    drop(a); // SIGKILL
    put(&stream, "second", 300);

    // b takes a's shard over once its lease expires, from a's checkpoint.
    let mut expected: BTreeSet<String> = (0..300).map(|i| format!("first-{i:04}")).collect();
    expected.extend((0..300).map(|i| format!("second-{i:04}")));
    let got_all = || {
        let mut got = messages(&a_dir);
        got.extend(messages(&b_dir));
        got
    };
    wait_or_explain(
        Duration::from_secs(60),
        || {
            let got = got_all();
            let missing: Vec<&String> = expected.difference(&got).collect();
            format!(
                "every record in a lake: {} missing (first {:?}), lease owners {:?}, b's log:\n{}",
                missing.len(),
                missing.iter().take(5).collect::<Vec<_>>(),
                owners(&table),
                b.output()
            )
        },
        || got_all().is_superset(&expected),
    );
    assert_eq!(owners(&table), ["b", "b"], "b holds both shards");
    let (status, output) = b.stop();
    assert!(status.success(), "{output}");

    let mut got = messages(&a_dir);
    got.extend(messages(&b_dir));
    assert_eq!(got, expected);
    // Nothing but the records put reached the lakes (at-least-once: a
    // record a read but did not commit is read again by b, once).
    let rows: Vec<Value> = duckdb(&b_dir.join("lake"), "SELECT count(*) AS n FROM logs");
    assert!(rows[0][0].as_u64().unwrap() <= 600, "{rows:?}");
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

/// Waits until `done` holds, failing after `limit` with the account `what`
/// gives then.
fn wait_or_explain(limit: Duration, what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
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
    let id = unique("kin-shared");
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
    let shared_config = |worker: &str| {
        kinesis_config(
            setup["stream"].as_str().unwrap(),
            setup["leases"].as_str().unwrap(),
            worker,
            10,
        ) + &format!(
            r#"
[hot_dynamodb]
table = "{hot}"

[windows]
size_secs = 60
allowed_lateness_secs = 1
idle_timeout_secs = 2
tick_ms = 200
shared_settle_secs = 5
"#,
            hot = setup["hot"].as_str().unwrap(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = Service::start(support::SPATE, &data_a, &shared_config("a"));
    let b = Service::start(support::SPATE, &data_b, &shared_config("b"));

    // The processes split the shards: each runs the reader of one (the one
    // that took both first gives one up when the other takes it over).
    let owned = |s: &Service| s.metric("spate_kinesis_leases_owned");
    wait_or_explain(
        Duration::from_secs(60),
        || {
            format!(
                "one shard each (owned: a {:?}, b {:?}; lease owners {:?}):\n{}\n{}",
                owned(&a),
                owned(&b),
                owners(setup["leases"].as_str().unwrap()),
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
    wait_or_explain(
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

    // `spate query` reads the same history from DynamoDB: the alert, and
    // the window's merged count (7 from each process).
    let sql = |q: &str| -> Value {
        let out = spate()
            .args(["query", "--format", "json", "--data-dir"])
            .arg(&data_a)
            .arg("--config")
            .arg(data_a.with_extension("toml"))
            .arg(q)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(
        sql("select id, value from alerts where rule = 'error_burst' and state = 'firing'"),
        json!([{"id": firing[0]["id"], "value": 14.0}])
    );
    assert_eq!(
        sql(&format!(
            "select sum(error) as errors from windows where service = 'api' \
             and cast(window_start as bigint) = {w0}"
        )),
        json!([{"errors": 14}])
    );
}

/// `loadgen send --target kinesis --kpl` drives a spike of CloudWatch Logs
/// subscription payloads, aggregated KPL-style, into a stream that `spate
/// run` reads into the S3 lake; `loadgen verify --lake s3://...` then finds
/// every event `send` saw acknowledged.
#[test]
fn loadgen_kpl_spike_into_kinesis_loses_nothing_in_the_s3_lake() {
    let stream = unique("kin-loadgen");
    let table = unique("kin-loadgen-leases");
    let bucket = unique("kin-loadgen-lake");
    spate_test_support::emulator::create_bucket(&bucket);
    create_stream_and_leases(&stream, &table);
    let dir = tempfile::tempdir().unwrap();
    let config = kinesis_config(&stream, &table, "a", 10)
        + &format!("[lake]\nmax_file_age_secs = 1\n[lake.s3]\nbucket = \"{bucket}\"\n");
    let service = Service::start(support::SPATE, &dir.path().join("data"), &config);

    #[rustfmt::skip]
    let report = support::loadgen_json(&[
        "send", "--target", "kinesis", "--stream", &stream, "--kpl",
        "--profile", "spike", "--rate", "200", "--duration", "3s",
        "--batch-events", "80", "--events-per-message", "20",
        "--message-format", "cloudwatch", "--run-id", "lg-kinesis",
    ]);
    let sent = report["scheduled"].as_u64().unwrap();
    assert_eq!(report["acknowledged"], sent, "{report}");
    let send_report = dir.path().join("send.json");
    std::fs::write(&send_report, report.to_string()).unwrap();

    // The lake fills as the shards are read: verify until nothing is lost.
    let mut verified = Value::Null;
    wait_for("every event in the lake", Duration::from_secs(60), || {
        let out = support::loadgen()
            .args(["verify", "--lake", &format!("s3://{bucket}"), "--json"])
            .arg("--send-report")
            .arg(&send_report)
            .output()
            .unwrap();
        verified = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        out.status.success()
    });
    assert_eq!(verified["expected"], sent, "{verified}");
    assert_eq!(verified["lost"]["count"], 0, "{verified}");
    assert_eq!(verified["unique"], sent, "{verified}");
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}
