//! `spate query --lake s3://bucket/prefix` end to end against the local AWS
//! emulator (moto, started by `scripts/test.sh`): a lake built with `spate
//! ingest` and uploaded under the `[lake.s3]` key layout answers exactly as
//! the local lake does, partition filters open fewer objects, the `[aws]`
//! settings of a config apply, an empty prefix is an empty result and a
//! missing bucket a clean error.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use spate_loadgen::{GenerateStats, Workload};
use spate_test_support::emulator::{create_bucket, endpoint, objects_of_dir, put_objects};
use spate_test_support::oracle::corpus;
use spate_test_support::unique;
use support::{files_scanned_in, ingest, spate};

/// Runs `spate query --format json --lake URL ARGS...` with the emulator as
/// `AWS_ENDPOINT_URL` (the standard chain, no config).
fn query_s3(url: &str, args: &[&str]) -> Output {
    spate()
        .args(["query", "--format", "json", "--lake", url])
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .unwrap()
}

/// The rows of a query that must succeed.
fn rows_of(out: Output, what: &str) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array")
}

fn rows(url: &str, args: &[&str]) -> Vec<Value> {
    rows_of(query_s3(url, args), &format!("{args:?}"))
}

fn files_scanned(url: &str, sql: &str) -> u64 {
    let out = query_s3(url, &["--stats", sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_scanned_in(&String::from_utf8_lossy(&out.stderr))
}

/// A W1 lake of `events` ingested locally and uploaded to a new bucket under
/// `prefix` (keys `<prefix>logs/dt=…/hour=…/service=…/*.parquet`, as `[lake.s3]`
/// writes them). Returns the bucket, the local data dir, the corpus stats and
/// the number of Parquet objects.
fn s3_lake(
    dir: &Path,
    events: u64,
    prefix: &str,
) -> (String, std::path::PathBuf, GenerateStats, usize) {
    let (input, stats) = corpus(dir, Workload::AppJson, events);
    let data = dir.join("data");
    ingest(&data, &[&input], &[]);
    let bucket = unique("spate-query");
    create_bucket(&bucket);
    let objects = objects_of_dir(&data.join("lake"), prefix);
    let files = objects.len();
    assert!(files > 20, "{files} files");
    put_objects(&bucket, &objects);
    (bucket, data, stats, files)
}

#[test]
fn an_s3_lake_answers_like_the_local_one_and_partition_filters_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (bucket, data, stats, files) = s3_lake(dir.path(), 8_000, "team/spate/");
    // Objects the table must never read: a writer's in-progress file and a
    // hidden one (neither is Parquet: reading them would fail the query), and
    // the zero-byte "folder" some tools create.
    let partition = objects_of_dir(&data.join("lake"), "team/spate/")[0]
        .0
        .rsplit_once('/')
        .unwrap()
        .0
        .to_string();
    put_objects(
        &bucket,
        &[
            (
                format!("{partition}/.part-9.parquet.tmp"),
                b"partial".to_vec(),
            ),
            (
                format!("{partition}/.hidden.parquet"),
                b"not parquet".to_vec(),
            ),
            ("team/spate/logs/".to_string(), Vec::new()),
        ],
    );
    let url = format!("s3://{bucket}/team/spate");

    spate_test_support::lake::assert_w1_counts(&stats, |sql| rows(&url, &[sql]));

    // Every row and column, partition values included, as the local lake has
    // them (the column chunks are read by byte range).
    let every = "select * from logs order by event_id";
    let local = spate()
        .args(["query", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg(every)
        .output()
        .unwrap();
    let local = rows_of(local, "the local query");
    let remote = rows(&url, &[every]);
    assert_eq!(remote.len(), 8_000);
    assert!(remote == local, "the S3 lake differs from the local lake");

    // Pruning: a service filter opens that service's objects only; a date
    // with no data opens none; the counts under the filter are still right.
    let all = files_scanned(&url, "select event_id from logs");
    assert_eq!(all, files as u64, "every committed object, nothing else");
    let services = rows(
        &url,
        &["select service, count(*) as n from logs group by service order by n desc"],
    );
    let busiest = services[0]["service"].as_str().unwrap().to_string();
    let one = files_scanned(
        &url,
        &format!("select event_id from logs where service = '{busiest}'"),
    );
    assert!(one >= 1 && one < all, "{one} of {all} files");
    assert_eq!(
        files_scanned(&url, "select event_id from logs where dt = '1999-01-01'"),
        0
    );
    let flagged = rows(
        &url,
        &["--service", &busiest, "select count(*) as n from logs"],
    );
    assert_eq!(flagged[0]["n"], services[0]["n"]);

    // No hot store with `--lake`: the history tables are empty.
    assert_eq!(
        rows(&url, &["select count(*) as n from alerts"]),
        [json!({"n": 0})]
    );
}

#[test]
fn the_aws_settings_and_lake_s3_of_a_config_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (bucket, _, stats, _) = s3_lake(dir.path(), 2_000, "archive/");
    let config = dir.path().join("spate.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[aws]
endpoint_url = "{endpoint}"
region = "us-east-1"

[lake.s3]
bucket = "{bucket}"
prefix = "archive/"
"#,
            endpoint = endpoint()
        ),
    )
    .unwrap();
    let sql = "select count(*) as n from logs";
    // The lake of `[lake.s3]`, reached through `[aws]` (no AWS_ENDPOINT_URL).
    let from_config = spate()
        .args(["query", "--format", "json", "--config"])
        .arg(&config)
        .arg(sql)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(
        rows_of(from_config, "query --config"),
        [json!({"n": stats.events})]
    );
    // `--lake` overrides the config's lake, still through `[aws]`.
    let elsewhere = unique("spate-query-empty");
    create_bucket(&elsewhere);
    let overridden = spate()
        .args(["query", "--format", "json", "--config"])
        .arg(&config)
        .args(["--lake", &format!("s3://{elsewhere}/archive"), sql])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(
        rows_of(overridden, "query --config --lake"),
        [json!({"n": 0})]
    );
}

#[test]
fn an_empty_prefix_is_empty_and_a_missing_bucket_is_a_clean_error() {
    let bucket = unique("spate-query-empty");
    create_bucket(&bucket);
    let url = format!("s3://{bucket}/nothing/here");
    assert_eq!(
        rows(&url, &["select count(*) as n from logs"]),
        [json!({"n": 0})]
    );
    assert!(rows(&url, &[]).is_empty(), "the recent listing");
    assert!(
        rows(&format!("s3://{bucket}"), &[]).is_empty(),
        "the bucket root"
    );

    let missing = unique("spate-query-missing");
    let out = query_s3(
        &format!("s3://{missing}/lake"),
        &["select count(*) from logs"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("spate: "), "{stderr}");
    assert!(
        stderr.contains(&format!("bucket {missing} does not exist")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());

    // Not an s3:// URL, or together with --data-dir: usage errors.
    let out = query_s3("/var/lib/spate/lake", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://bucket/prefix"));
    let out = query_s3(&url, &["--data-dir", "/tmp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}
