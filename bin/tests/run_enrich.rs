//! `spate run` with its reference table in S3 (the local AWS emulator, moto,
//! started by `scripts/test.sh`): the object changes mid-stream and events
//! after the change are enriched with the new values, events before keep the
//! old ones; a broken new version is counted and the last good table kept.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::service::Service;

fn put_table(bucket: &str, text: &str) {
    spate_test_support::emulator::put_objects(
        bucket,
        &[("ref/hosts.csv".to_string(), text.into())],
    );
}

/// Posts `n` events from host 10.1.2.3 (no service) with messages `<tag>-<i>`
/// and waits until the lake holds them.
fn send_and_archive(service: &Service, tag: &str, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({"host": "10.1.2.3", "level": "info", "message": format!("{tag}-{i}")})
                .to_string()
        })
        .collect();
    service.post_logs(&(lines.join("\n") + "\n"));
    let sql = format!("select count(*) as n from logs where message like '{tag}-%'");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = service.query(json!({ "sql": sql }));
        if out["rows"] == json!([[n]]) {
            return;
        }
        assert!(Instant::now() < deadline, "{out}\n{}", service.output());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn s3_reference_table_changes_mid_stream() {
    let bucket = spate_test_support::unique("enrich");
    spate_test_support::emulator::create_bucket(&bucket);
    put_table(
        &bucket,
        "cidr,service,owner,contact,rack\n10.0.0.0/8,corp-old,team-old,#old,r1\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"{aws}
[enrich]
table = "s3://{bucket}/ref/hosts.csv"
reload_interval_secs = 1

[lake]
max_file_age_secs = 1
"#,
        aws = spate_test_support::emulator::aws_section(),
    );
    let service = Service::start(support::SPATE, &data, &config);
    assert_eq!(service.metric("spate_enrich_table_rows"), Some(1.0));
    send_and_archive(&service, "before", 5);

    // A new version, in JSON lines: swapped in within a few checks.
    put_table(
        &bucket,
        "{\"cidr\": \"10.0.0.0/8\", \"service\": \"corp-new\", \"owner\": \"team-new\", \"rack\": \"r2\"}\n\
         {\"ip\": \"192.0.2.1\", \"service\": \"edge\"}\n",
    );
    let reloads = service.wait_metric("spate_enrich_reloads_total", 1.0, 20);
    assert_eq!(reloads, Some(1.0), "{}", service.output());
    assert_eq!(service.metric("spate_enrich_table_rows"), Some(2.0));
    send_and_archive(&service, "after", 5);

    // A broken version: counted once, and the last good table stays.
    put_table(&bucket, "cidr,service\nnot-an-address,x\n");
    let errors = service.wait_metric("spate_enrich_reload_errors_total", 1.0, 20);
    assert_eq!(errors, Some(1.0), "{}", service.output());
    send_and_archive(&service, "broken", 5);
    assert_eq!(
        service.metric("spate_enrich_reload_errors_total"),
        Some(1.0)
    );
    assert_eq!(service.metric("spate_enrich_reloads_total"), Some(1.0));
    assert_eq!(service.metric("spate_enrich_table_rows"), Some(2.0));
    let age = service.metric("spate_enrich_table_age_seconds").unwrap();
    assert!((0.0..600.0).contains(&age), "{age}");

    let out = service.query(json!({
        "sql": "select message, service, attrs from logs order by message",
        "limit": 100
    }));
    let rows = out["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 15, "{out}");
    for row in rows {
        let message = row[0].as_str().unwrap();
        let attrs: Value = serde_json::from_str(row[2].as_str().unwrap()).unwrap();
        let (service_name, owner, rack) = if message.starts_with("before-") {
            ("corp-old", "team-old", "r1")
        } else {
            ("corp-new", "team-new", "r2")
        };
        assert_eq!(row[1], service_name, "{row}");
        assert_eq!(attrs["owner"], owner, "{row}");
        assert_eq!(attrs["rack"], rack, "{row}");
        let old_contact = message.starts_with("before-").then_some("#old");
        assert_eq!(attrs["contact"].as_str(), old_contact, "{row}");
    }
    assert!(
        service.output().contains("the new version is broken"),
        "{}",
        service.output()
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    // `spate ingest` reads the table from S3 too: the broken version in
    // force stops it with an error naming the object, a good one enriches.
    let config_path = data.with_extension("toml");
    let input = dir.path().join("in.log");
    std::fs::write(
        &input,
        "{\"host\": \"10.9.9.9\", \"message\": \"ingested\"}\n",
    )
    .unwrap();
    let out = support::spate()
        .args(["ingest", "--data-dir"])
        .arg(dir.path().join("ingest"))
        .arg("--config")
        .arg(&config_path)
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("s3://{bucket}/ref/hosts.csv")),
        "{stderr}"
    );
    assert!(stderr.contains("line 2"), "{stderr}");
    put_table(&bucket, "ip,service,owner\n10.9.9.9,batch,ops\n");
    let ingest_dir = dir.path().join("ingest");
    let config_arg = config_path.display().to_string();
    let summary = support::ingest(&ingest_dir, &[&input], &["--config", &config_arg]);
    assert_eq!(summary["events"], 1);
    let rows = spate_test_support::lake::duckdb(
        &ingest_dir.join("lake/logs"),
        "select service, json_extract_string(attrs, '$.owner') from logs",
    );
    assert_eq!(rows, vec![json!(["batch", "ops"])]);
}
