//! `spate query` end to end, through the binary: lakes built with
//! `spate ingest`, counts checked against what the corpus implies, partition
//! pruning checked on the files scanned, the convenience flags, the output
//! formats, clean errors; and the Glue/Athena table definitions checked
//! against the Parquet file schema.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use spate_loadgen::Workload;
use spate_operators::sinks::lake::schema::logs_file_schema;
use spate_test_support::oracle::corpus;
use support::{files_scanned_in, ingest, spate};

/// Runs `spate query --data-dir DATA ARGS...`.
fn query(data: &Path, args: &[&str]) -> Output {
    spate()
        .arg("query")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a query that must succeed and returns its rows (`--format json`).
fn rows(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = query(data, &[&["--format", "json"], args].concat());
    assert!(
        out.status.success(),
        "query {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("a JSON array")
}

/// Files scanned, from the `--stats` line on stderr.
fn files_scanned(data: &Path, sql: &str) -> u64 {
    files_scanned_with(data, &[sql])
}

/// Files scanned by `spate query --stats ARGS...`.
fn files_scanned_with(data: &Path, args: &[&str]) -> u64 {
    let out = query(data, &[&["--stats", "--format", "json"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_scanned_in(&String::from_utf8_lossy(&out.stderr))
}

#[test]
fn w1_counts_match_the_corpus_and_partition_filters_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::AppJson, 8_000);
    let data = dir.path().join("data");
    ingest(&data, &[&input], &[]);

    spate_test_support::lake::assert_w1_counts(&stats, |sql| rows(&data, &[sql]));

    // Partition columns agree with the event time.
    let mismatched = rows(
        &data,
        &["select count(*) as n from logs \
           where to_char(ts, '%Y-%m-%d') <> dt or to_char(ts, '%H') <> hour"],
    );
    assert_eq!(mismatched[0]["n"], 0);

    // Pruning: a service filter opens that service's files only; a date with no
    // data opens none; the counts under the filter are still right.
    let all = files_scanned(&data, "select event_id from logs");
    let services = rows(
        &data,
        &["select service, count(*) as n from logs group by service order by n desc"],
    );
    assert!(services.len() >= 20, "{services:?}");
    let busiest = services[0]["service"].as_str().unwrap().to_string();
    let one = files_scanned(
        &data,
        &format!("select event_id from logs where service = '{busiest}'"),
    );
    assert!(one >= 1 && one < all, "{one} of {all} files");
    assert_eq!(
        files_scanned(&data, "select event_id from logs where dt = '1999-01-01'"),
        0
    );
    let counted = rows(
        &data,
        &[&format!(
            "select count(*) as n from logs where service = '{busiest}'"
        )],
    );
    assert_eq!(counted[0]["n"], services[0]["n"]);
}

/// An NDJSON line for the flag tests.
fn line(ts_ms: i64, service: &str, level: &str, message: &str) -> String {
    serde_json::json!({
        "timestamp": ts_ms, "service": service, "level": level, "message": message
    })
    .to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A small lake relative to now: 10 min, 3 h and 30 h ago.
fn recent_lake(dir: &Path) -> PathBuf {
    let now = now_ms();
    let minute = 60_000;
    let lines = [
        line(
            now - 10 * minute,
            "api",
            "ERROR",
            "Payment TIMEOUT talking to bank",
        ),
        line(now - 11 * minute, "api", "INFO", "GET /health ok"),
        line(
            now - 12 * minute,
            "web",
            "WARNING",
            "slow render, timeout close",
        ),
        line(now - 180 * minute, "api", "CRITICAL", "disk full on /var"),
        line(now - 1_800 * minute, "web", "INFO", "old news"),
    ];
    let input = dir.join("recent.ndjson");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let data = dir.join("data");
    ingest(&data, &[&input], &[]);
    data
}

fn messages(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect()
}

#[test]
fn flags_filter_the_recent_listing_and_narrow_sql() {
    let dir = tempfile::tempdir().unwrap();
    let data = recent_lake(dir.path());

    // Without SQL: newest first.
    let all = rows(&data, &[]);
    assert_eq!(
        messages(&all),
        [
            "Payment TIMEOUT talking to bank",
            "GET /health ok",
            "slow render, timeout close",
            "disk full on /var",
            "old news"
        ]
    );
    assert_eq!(messages(&rows(&data, &["--since", "1h"])).len(), 3);
    assert_eq!(
        messages(&rows(&data, &["--since", "1d", "--until", "1h"])),
        ["disk full on /var"]
    );
    assert_eq!(
        messages(&rows(&data, &["--service", "web"])),
        ["slow render, timeout close", "old news"]
    );
    assert_eq!(
        messages(&rows(&data, &["--severity", "error"])),
        ["Payment TIMEOUT talking to bank", "disk full on /var"]
    );
    assert_eq!(
        messages(&rows(&data, &["--grep", "timeout"])),
        [
            "Payment TIMEOUT talking to bank",
            "slow render, timeout close"
        ]
    );
    assert_eq!(rows(&data, &["--limit", "2"]).len(), 2);
    let until_text = rows(&data, &["--until", "2000-01-01T00:00:00Z"]);
    assert!(until_text.is_empty());

    // With SQL, the flags narrow `logs`, and the time bounds prune partitions.
    let narrowed = rows(
        &data,
        &[
            "--since",
            "1h",
            "--service",
            "api",
            "select count(*) as n from logs",
        ],
    );
    assert_eq!(narrowed[0]["n"], 2);
    // Five events in four or five partitions (the three recent ones may
    // straddle an hour); api within the last hour is one or two of them.
    let all_files = files_scanned(&data, "select event_id from logs");
    let narrowed_files = files_scanned_with(
        &data,
        &[
            "--since",
            "1h",
            "--service",
            "api",
            "select event_id from logs",
        ],
    );
    assert!((4..=5).contains(&all_files), "{all_files}");
    assert!((1..=2).contains(&narrowed_files), "{narrowed_files}");

    let bad = query(&data, &["--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("yesterday"));
}

#[test]
fn every_format_parses() {
    let dir = tempfile::tempdir().unwrap();
    let data = recent_lake(dir.path());
    let sql = "select service, severity, message, ts, tags from logs order by ts";

    let csv = query(&data, &["--format", "csv", sql]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("service,severity,message,ts,tags"));
    assert_eq!(lines.clone().count(), 5);
    assert!(
        text.contains("web,WARNING,\"slow render, timeout close\","),
        "{text}"
    );

    let ndjson = query(&data, &["--format", "ndjson", sql]);
    let objects: Vec<Value> = String::from_utf8(ndjson.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 5);
    assert_eq!(objects[0]["message"], "old news");
    assert!(objects[0]["tags"].is_array());
    assert!(objects[0]["ts"].as_str().unwrap().ends_with("+00:00"));

    let json = rows(&data, &[sql]);
    assert_eq!(json, objects);

    let table = query(&data, &["--format", "table", sql]);
    let text = String::from_utf8(table.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("service  severity  message"), "{text}");
    assert!(header.ends_with("  tags"), "{text}");
    assert_eq!(text.lines().count(), 6, "a header and 5 rows: {text}");
}

/// `dir` with an empty lake directory in it, as a data dir.
fn empty_lake(dir: &Path) -> &Path {
    std::fs::create_dir_all(dir.join("lake")).unwrap();
    dir
}

#[test]
fn an_empty_lake_is_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let empty = empty_lake(dir.path());
    let count = rows(empty, &["select count(*) as n from logs"]);
    assert_eq!(count[0]["n"], 0);
    assert!(rows(empty, &[]).is_empty());
    let table = query(empty, &[]);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("(0 rows)"));
    // History tables exist and are empty without a hot store.
    assert!(rows(empty, &["select * from alerts"]).is_empty());
}

#[test]
fn a_missing_lake_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for args in [&[][..], &["select count(*) from logs"][..]] {
        let out = query(&missing, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lake = missing.join("lake");
        assert!(
            stderr.starts_with(&format!("spate: no lake at {}", lake.display())),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn malformed_sql_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    for sql in [
        "selec * from logs",
        "select no_such_column from logs",
        "drop table logs",
    ] {
        let out = query(empty_lake(dir.path()), &[sql]);
        assert_eq!(out.status.code(), Some(1), "{sql}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("spate: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let unknown = query(empty_lake(dir.path()), &["select nope from logs"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
}

#[test]
fn the_memory_limit_comes_from_the_config_and_the_flag_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spate.toml");
    std::fs::write(&config, "[query]\nmemory_limit_mib = 8\n").unwrap();
    // A hash set of 2 million values: more than 8 MiB.
    let sql = "select count(distinct value) as n from generate_series(1, 2000000)";
    let config_arg = config.to_str().unwrap();
    let out = query(empty_lake(dir.path()), &["--config", config_arg, sql]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("spate: query needs more than 8 MiB of memory (query.memory_limit)"),
        "{stderr}"
    );
    let rows = rows(
        dir.path(),
        &["--config", config_arg, "--memory-limit-mib", "1024", sql],
    );
    assert_eq!(rows[0]["n"], 2_000_000);
}

#[test]
fn datafusion_settings_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let setting = |env: &[(&str, &str)]| {
        let out = spate()
            .args(["query", "--format", "json", "--data-dir"])
            .arg(empty_lake(dir.path()))
            .arg("select value from information_schema.df_settings where name = 'datafusion.execution.collect_statistics'")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, _) = setting(&[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("\"false\""), "the lake default: {stdout}");
    let (code, stdout, _) = setting(&[("DATAFUSION_EXECUTION_COLLECT_STATISTICS", "true")]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("\"true\""), "overridden: {stdout}");
    let (code, _, stderr) = setting(&[("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "many")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("DATAFUSION_EXECUTION_TARGET_PARTITIONS=many"),
        "{stderr}"
    );
}

#[test]
fn schema_lists_the_three_tables() {
    let out = query(Path::new("unused"), &["--schema", "--format", "json"]);
    assert!(out.status.success());
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let columns = |table: &str| -> Vec<String> {
        listed
            .iter()
            .filter(|r| r["table"] == table)
            .map(|r| r["column"].as_str().unwrap().to_string())
            .collect()
    };
    let logs = columns("logs");
    assert_eq!(logs.len(), logs_file_schema().fields().len() + 3);
    assert_eq!(&logs[logs.len() - 3..], ["dt", "hour", "service"]);
    assert!(columns("alerts").contains(&"raised_at".to_string()));
    assert!(columns("windows").contains(&"critical".to_string()));
    let text = query(Path::new("unused"), &["--schema"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("table    column"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("windows  ")), "{text}");
}

/// The Hive type Athena/Glue use for an Arrow type of the lake.
fn hive_type(data_type: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType as D;
    match data_type {
        D::Utf8 => "string".into(),
        D::Int32 => "int".into(),
        D::Int64 => "bigint".into(),
        D::Timestamp(_, _) => "timestamp".into(),
        D::List(item) => format!("array<{}>", hive_type(item.data_type())),
        other => panic!("no Hive type for {other}"),
    }
}

fn expected_columns() -> Vec<(String, String)> {
    logs_file_schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), hive_type(f.data_type())))
        .collect()
}

fn partitions() -> Vec<(String, String)> {
    ["dt", "hour", "service"]
        .map(|p| (p.to_string(), "string".to_string()))
        .to_vec()
}

fn glue_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/glue")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(name, type)` pairs of a DDL column list such as "`a` string, `b` int".
fn ddl_columns(list: &str) -> Vec<(String, String)> {
    list.split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .map(|l| {
            let (name, ty) = l.split_once(' ').unwrap_or_else(|| panic!("column `{l}`"));
            (name.trim_matches('`').to_string(), ty.trim().to_lowercase())
        })
        .collect()
}

#[test]
fn athena_ddl_matches_the_parquet_schema() {
    let ddl = glue_file("logs_table.sql");
    let body = ddl
        .split_once("CREATE EXTERNAL TABLE")
        .expect("a CREATE EXTERNAL TABLE")
        .1;
    let open = body.find('(').unwrap();
    let close = body.find("\n)").unwrap();
    assert_eq!(ddl_columns(&body[open + 1..close]), expected_columns());
    let partitioned = body.split_once("PARTITIONED BY (").unwrap().1;
    let partitioned = &partitioned[..partitioned.find(')').unwrap()];
    assert_eq!(ddl_columns(partitioned), partitions());
    for needle in ["STORED AS PARQUET", "LOCATION 's3://BUCKET/PREFIX/logs/'"] {
        assert!(body.contains(needle), "missing {needle}");
    }
    // Partitions are registered as files are sealed: no projection, so no
    // query has to name a service.
    assert!(!body.contains("projection."), "no partition projection");
}

#[test]
fn glue_table_input_matches_the_parquet_schema() {
    let table: Value = serde_json::from_str(&glue_file("logs_table.json")).unwrap();
    let pairs = |list: &Value| -> Vec<(String, String)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["Name"].as_str().unwrap().to_string(),
                    c["Type"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        pairs(&table["StorageDescriptor"]["Columns"]),
        expected_columns()
    );
    assert_eq!(pairs(&table["PartitionKeys"]), partitions());
    let params = &table["Parameters"];
    assert!(
        params
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("projection.")),
        "no partition projection: {params}"
    );
    assert_eq!(
        table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"],
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    );
    assert_eq!(
        table["StorageDescriptor"]["Location"],
        "s3://BUCKET/PREFIX/logs/"
    );
}
