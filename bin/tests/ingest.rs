//! `spate ingest` end to end, through the binary: generated corpora in, counts
//! read back from the lake by an independent reader (DuckDB), malformed input to
//! its defined outcome, and clean errors for bad invocations.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

use serde_json::Value;
use spate_loadgen::{GenerateStats, Workload};
use spate_test_support::lake::{duckdb, walk};
use spate_test_support::oracle::corpus;
use support::{ingest, spate};

fn expect_counts(summary: &Value, stats: &GenerateStats) {
    assert_eq!(summary["events"], stats.events);
    for (name, idx) in [("INFO", 0), ("WARNING", 1), ("ERROR", 2), ("CRITICAL", 3)] {
        assert_eq!(
            summary["severity"][name], stats.expected_severity[idx],
            "{name}"
        );
    }
    assert_eq!(summary["tags"]["http_5xx"], stats.expected_tags.http_5xx);
    assert_eq!(
        summary["tags"]["failed_login"],
        stats.expected_tags.failed_login
    );
    assert_eq!(summary["dead_letters"], 0);
    assert_eq!(summary["failed_batches"], 0);
}

fn lake_counts(lake: &Path, stats: &GenerateStats) {
    let rows = duckdb(
        lake,
        "select severity, count(*) from logs group by severity order by severity",
    );
    let get = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .map_or(0, |r| r[1].as_u64().unwrap())
    };
    assert_eq!(get("CRITICAL"), stats.expected_severity[3]);
    assert_eq!(get("ERROR"), stats.expected_severity[2]);
    assert_eq!(get("WARNING"), stats.expected_severity[1]);
    assert_eq!(get("INFO"), stats.expected_severity[0]);
    let tags = duckdb(
        lake,
        "select count(*) filter (where list_contains(tags, 'http_5xx')), \
                count(*) filter (where list_contains(tags, 'failed_login')), \
                count(distinct event_id), count(*) from logs",
    );
    assert_eq!(tags[0][0], stats.expected_tags.http_5xx);
    assert_eq!(tags[0][1], stats.expected_tags.failed_login);
    assert_eq!(tags[0][2], stats.events, "event ids are unique");
    assert_eq!(tags[0][3], stats.events);
}

#[test]
fn w1_app_json_counts_match_in_summary_and_lake() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::AppJson, 30_000);
    let data = dir.path().join("data");
    let summary = ingest(&data, &[&input], &[]);
    expect_counts(&summary, &stats);
    let lake = data.join("lake/logs");
    lake_counts(&lake, &stats);
    // Hive partitions: every file sits under dt=/hour=/service=, and the
    // partition columns agree with the event time.
    let mismatched = duckdb(
        &lake,
        "select count(*) from logs where strftime(ts at time zone 'UTC', '%Y-%m-%d') <> cast(dt as varchar) \
         or hour(ts at time zone 'UTC') <> hour",
    );
    assert_eq!(mismatched[0][0], 0);
    let services = duckdb(&lake, "select count(distinct service) from logs");
    assert!(services[0][0].as_u64().unwrap() >= 20);
    // No temporary files left behind.
    let leftovers = walk(&lake)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn w2_access_counts_match() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::Access, 20_000);
    let data = dir.path().join("data");
    let summary = ingest(&data, &[&input], &[]);
    expect_counts(&summary, &stats);
    lake_counts(&data.join("lake/logs"), &stats);
    let ips = duckdb(
        &data.join("lake/logs"),
        "select count(*) from logs where client_ip is null or status is null",
    );
    assert_eq!(ips[0][0], 0, "access lines carry client_ip and status");
}

#[test]
fn w3_cloudwatch_counts_match_and_control_messages_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::CloudWatch, 5_000);
    let data = dir.path().join("data");
    let summary = ingest(&data, &[&input], &[]);
    expect_counts(&summary, &stats);
    assert_eq!(summary["control_messages"], stats.control_messages);
    lake_counts(&data.join("lake/logs"), &stats);
    let groups = duckdb(
        &data.join("lake/logs"),
        "select count(*) from logs where log_group is null or log_stream is null",
    );
    assert_eq!(groups[0][0], 0);
}

#[test]
fn stdin_and_several_files_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = corpus(dir.path(), Workload::AppJson, 1_000);
    let (b, sb) = corpus(dir.path(), Workload::Access, 500);
    let data = dir.path().join("data");
    let mut child = spate()
        .args(["ingest", "--json", "--data-dir"])
        .arg(&data)
        .arg(&a)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&b).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events"], sa.events + sb.events);
    let sources = duckdb(
        &data.join("lake/logs"),
        "select source, count(*) from logs group by 1 order by 1",
    );
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[1], serde_json::json!(["stdin", 500]));
}

fn dead_letters(data: &Path) -> Vec<Value> {
    walk(&data.join("deadletter"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn malformed_input_gets_its_defined_outcome_and_later_lines_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(
        b"\xEF\xBB\xBF{\"level\":\"error\",\"service\":\"bom\",\"message\":\"after a bom\"}\n",
    );
    input.extend_from_slice(b"{\"level\":\"info\",\"message\":\"truncated\n");
    input.extend_from_slice(b"{\"level\":\"info\",\"message\":\"bad \xff\xfe utf8\"}\n");
    let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
    input.extend_from_slice(deep.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(
        b"{\"message\":\"nul\x00byte\",\"level\":\"warn\",\"service\":\"nul\"}\n",
    );
    input.extend_from_slice(b"[1,2,3]\n");
    input.extend_from_slice(b"42\n");
    input.extend_from_slice(
        b"{\"level\":7,\"service\":\"typed\",\"message\":\"level of the wrong type\"}\n",
    );
    input.extend_from_slice(b"\r\n\n   \n");
    input.extend_from_slice(
        b"{\"level\":\"ERROR\",\"service\":\"crlf\",\"message\":\"windows line\"}\r\n",
    );
    input.extend_from_slice(&vec![b'x'; 3 * 1024 * 1024]);
    input.push(b'\n');
    input.extend_from_slice(
        b"{\"level\":\"critical\",\"service\":\"last\",\"message\":\"still processed\"}\n",
    );
    let path = dir.path().join("bad.log");
    std::fs::write(&path, &input).unwrap();
    let data = dir.path().join("data");
    let summary = ingest(&data, &[&path], &[]);

    let letters = dead_letters(&data);
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert_eq!(summary["dead_letters"], letters.len() as u64, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.starts_with("truncated json")),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"invalid utf-8"), "{reasons:?}");
    assert!(
        reasons.contains(&"json nesting deeper than 64"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("line exceeds 1048576 bytes")),
        "{reasons:?}"
    );
    assert_eq!(letters.len(), 4, "{reasons:?}");
    let utf8 = letters
        .iter()
        .find(|l| l["reason"] == "invalid utf-8")
        .unwrap();
    assert!(
        utf8["raw_base64"].is_string(),
        "non-UTF-8 raw bytes are base64"
    );
    assert!(
        letters
            .iter()
            .all(|l| l["position"].is_u64() && l["source"].is_string())
    );

    // bom, nul, [1,2,3] and 42 as text, typed, crlf, last: 7 events.
    assert_eq!(summary["events"], 7, "{summary}");
    let lake = data.join("lake/logs");
    let rows = duckdb(
        &lake,
        "select service, severity, message from logs order by service, message",
    );
    let find = |svc: &str| {
        rows.iter()
            .find(|r| r[0] == svc)
            .cloned()
            .unwrap_or_else(|| panic!("{svc}: {rows:?}"))
    };
    assert_eq!(find("bom")[1], "ERROR");
    assert_eq!(
        find("crlf"),
        serde_json::json!(["crlf", "ERROR", "windows line"])
    );
    assert_eq!(find("last")[1], "CRITICAL");
    assert_eq!(find("nul")[1], "WARNING");
    assert_eq!(find("typed")[0], "typed");
}

#[test]
fn missing_path_and_bad_config_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = spate()
        .args(["ingest", "--data-dir"])
        .arg(dir.path())
        .arg(dir.path().join("nope.log"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open") && err.contains("nope.log"),
        "{err}"
    );

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[lake]\nzstd_levle = 3\n").unwrap();
    let out = spate()
        .args(["ingest", "--config"])
        .arg(&config)
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("zstd_levle"),
        "{err}"
    );
}

#[test]
fn config_default_round_trips_through_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = spate().args(["config", "default"]).output().unwrap();
    assert!(out.status.success());
    let path = dir.path().join("default.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = spate()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).ends_with(": ok\n"));
}

#[test]
fn enrichment_from_a_reference_table_reaches_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("hosts.csv");
    std::fs::write(
        &table,
        "cidr,service,owner,contact\n10.20.0.0/16,billing,payments-team,#pay-oncall\n10.20.1.5,ledger,dba,dba@example.com\n",
    )
    .unwrap();
    let config = dir.path().join("spate.toml");
    std::fs::write(
        &config,
        format!("[enrich]\ntable = {:?}\n", table.display().to_string()),
    )
    .unwrap();
    let input = dir.path().join("in.log");
    std::fs::write(
        &input,
        concat!(
            "{\"host\":\"10.20.9.9\",\"message\":\"no service named\"}\n",
            "{\"host\":\"10.20.1.5\",\"service\":\"api\",\"message\":\"named service kept\"}\n",
            "{\"host\":\"192.0.2.1\",\"message\":\"outside the table\"}\n",
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let config_arg = config.display().to_string();
    let summary = ingest(&data, &[&input], &["--config", &config_arg]);
    assert_eq!(summary["events"], 3);
    let rows = duckdb(
        &data.join("lake/logs"),
        "select message, service, json_extract_string(attrs, '$.owner'), json_extract_string(attrs, '$.contact') \
         from logs order by message",
    );
    assert_eq!(
        rows,
        vec![
            serde_json::json!(["named service kept", "api", "dba", "dba@example.com"]),
            serde_json::json!([
                "no service named",
                "billing",
                "payments-team",
                "#pay-oncall"
            ]),
            serde_json::json!(["outside the table", "unknown", null, null]),
        ]
    );

    std::fs::write(&table, "cidr,service\n10.20.0.0/16\n10.0.0.0/33,x\n").unwrap();
    let check = spate()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("enrich.table") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn two_lake_writers_shard_partitions_without_duplicating_files() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::AppJson, 8_000);
    let config = dir.path().join("spate.toml");
    std::fs::write(
        &config,
        "[pipeline]\ndecode_workers = 3\n[lake]\nwriters = 2\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let config_arg = config.display().to_string();
    let summary = ingest(&data, &[&input], &["--config", &config_arg]);
    expect_counts(&summary, &stats);
    let lake = data.join("lake/logs");
    lake_counts(&lake, &stats);
    let partitions = duckdb(
        &lake,
        "select count(distinct (dt, hour, service)) from logs",
    );
    assert_eq!(
        summary["files_written"], partitions[0][0],
        "one file per partition"
    );
}

#[test]
fn sigterm_stops_reading_and_archives_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus_path, _) = corpus(dir.path(), Workload::AppJson, 2_000);
    let data = dir.path().join("data");
    let mut child = spate()
        .args(["ingest", "--json", "--data-dir"])
        .arg(&data)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stdin stays open: the run only ends because of the signal.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&std::fs::read(&corpus_path).unwrap())
        .unwrap();
    stdin.flush().unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(
        out.status.code(),
        Some(130),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["failed_batches"], 0);
    let archived = summary["events"].as_u64().unwrap();
    assert!(archived <= 2_000);
    // Everything the summary reports is in the lake, committed, nothing partial.
    if archived > 0 {
        let rows = duckdb(&data.join("lake/logs"), "select count(*) from logs");
        assert_eq!(rows[0][0], archived);
    }
    let leftovers = walk(&data)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_run_that_did_not_end_is_run_again_into_one_row_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stats) = corpus(dir.path(), Workload::AppJson, 20_000);
    let whole = std::fs::read(&input).unwrap();
    let data = dir.path().join("data");
    // The run that did not end: it sealed the first half of the file, and
    // left a scratch segment that an operating-system crash tore (zeros).
    let half = whole
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(9_999)
        .map(|(i, _)| i + 1)
        .unwrap();
    std::fs::write(&input, &whole[..half]).unwrap();
    let first = ingest(&data, &[&input], &[]);
    assert_eq!(first["events"], 10_000);
    let partition = data.join("lake/staging/dt=2026-11-23/hour=10/service=checkout");
    std::fs::create_dir_all(&partition).unwrap();
    let torn = partition.join(".seg-00000000000000ff.arrows.tmp");
    std::fs::write(&torn, vec![0u8; 4096]).unwrap();
    // Run again over the whole input.
    std::fs::write(&input, &whole).unwrap();
    let summary = ingest(&data, &[&input], &[]);
    expect_counts(&summary, &stats);
    assert!(
        !torn.exists(),
        "the scratch of the run that did not end is deleted"
    );
    lake_counts(&data.join("lake/logs"), &stats);
    let scratch = walk(&data)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".arrows.tmp"))
        .count();
    assert_eq!(scratch, 0);
}

#[test]
fn a_lake_that_cannot_be_written_fails_the_run_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = corpus(dir.path(), Workload::AppJson, 500);
    let data = dir.path().join("data");
    // A file where the table directory should be: every write fails.
    std::fs::create_dir_all(data.join("lake")).unwrap();
    std::fs::write(data.join("lake/logs"), b"not a directory").unwrap();
    let out = spate()
        .args(["ingest", "--data-dir"])
        .arg(&data)
        .arg(&input)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("spate: "), "{err}");
    assert!(
        last.contains("cannot create directory") && last.contains("lake/logs"),
        "{err}"
    );
}
