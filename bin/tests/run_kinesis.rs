//! `spate run` on Kinesis against the local AWS emulator (moto, started by
//! `scripts/test.sh`): two processes split a stream's shards through the lease
//! table, one is killed (SIGKILL) mid-stream, and the other takes its shard
//! over from the last checkpoint: every record put reaches a lake.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::aws::{boto, endpoint, unique};
use support::duckdb;
use support::service::Service;

fn config(stream: &str, table: &str, worker: &str) -> String {
    format!(
        r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[[sources.kinesis]]
stream = "{stream}"
lease_table = "{table}"
worker_id = "{worker}"
lease_duration_secs = 3
renew_every_secs = 1
poll_interval_ms = 100

[lake]
max_file_age_secs = 1
"#,
        endpoint = endpoint(),
    )
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

/// Distinct messages in a lake (empty when nothing is committed yet).
fn messages(data_dir: &Path) -> BTreeSet<String> {
    let lake = data_dir.join("lake");
    if !support::walk(&lake).iter().any(|p| {
        p.extension().is_some_and(|e| e == "parquet")
            && !p.file_name().unwrap().to_string_lossy().starts_with('.')
    }) {
        return BTreeSet::new();
    }
    duckdb(&lake, "SELECT DISTINCT message FROM logs")
        .into_iter()
        .filter_map(|row| row[0].as_str().map(str::to_string))
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
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = Service::start(&a_dir, &config(&stream, &table, "a"));
    let b = Service::start(&b_dir, &config(&stream, &table, "b"));

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
    wait_for("every record in a lake", Duration::from_secs(60), || {
        let mut got = messages(&a_dir);
        got.extend(messages(&b_dir));
        got.is_superset(&expected)
    });
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
