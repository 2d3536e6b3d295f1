//! The `spate` command line as a user meets it, through the binary: shell
//! completions, a reader that closes the pipe early, `spate demo` into a
//! running `spate run` and the first questions asked of it, `--format` on
//! `spate hot`.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use spate_test_support::service::{Service, data_and_config_args};
use support::{spate, stdout_of};

#[test]
fn completions_are_printed_for_bash_zsh_and_fish_and_parse() {
    let dir = tempfile::tempdir().unwrap();
    // How each shell checks a script without running it.
    let checks: [(&str, &[&str]); 3] = [
        ("bash", &["-n"]),
        ("zsh", &["-n"]),
        ("fish", &["--no-execute"]),
    ];
    for (shell, check) in checks {
        let out = spate().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("spate"), "{shell}: {script}");
        for subcommand in ["query", "hot", "demo", "completions"] {
            assert!(script.contains(subcommand), "{shell} lacks {subcommand}");
        }
        let path = dir.path().join(format!("spate.{shell}"));
        std::fs::write(&path, &script).unwrap();
        match Command::new(shell).args(check).arg(&path).output() {
            Ok(parsed) => assert!(
                parsed.status.success(),
                "{shell} cannot parse the script: {}",
                String::from_utf8_lossy(&parsed.stderr)
            ),
            // Not installed here: the script was still printed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("{shell} not installed: script not parsed")
            }
            Err(e) => panic!("{shell}: {e}"),
        }
    }
    let bad = spate().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `spate ARGS` with stdout a pipe whose reader is already gone.
fn into_closed_pipe(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    spate()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("lake")).unwrap();
    let data = dir.path().to_str().unwrap();
    let many = "select value from generate_series(1, 200000)";
    for args in [
        &["query", "--schema"][..],
        &["query", "--data-dir", data, many][..],
        &["query", "--data-dir", data, "--format", "ndjson", many][..],
        &["config", "default"][..],
        &["completions", "bash"][..],
    ] {
        let out = into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // As a user types it: `| head -1` closes the pipe after one line.
    let spate = env!("CARGO_BIN_EXE_spate");
    for command in [
        format!("{spate} query --schema | head -1"),
        format!("{spate} query --data-dir {data} '{many}' | head -1"),
    ] {
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &command])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command}: {stderr}");
        assert!(stderr.is_empty(), "{command}: {stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
}

/// Runs `spate ARGS --data-dir DATA`, which must succeed; its stdout.
fn run_ok(data: &Path, args: &[&str]) -> String {
    stdout_of(spate().args(args).arg("--data-dir").arg(data))
}

#[test]
fn demo_events_are_current_and_answer_the_first_questions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = Service::start(support::SPATE, &data, "");
    let report: Value = serde_json::from_str(&stdout_of(spate().args([
        "demo",
        "--format",
        "json",
        "--target",
        &service.url,
    ])))
    .unwrap();
    assert_eq!(report["events"], 120);
    assert_eq!(report["services"].as_array().unwrap().len(), 6);
    let count = |severity: &str| report[severity].as_u64().unwrap();
    let at_least_error = count("error") + count("critical");
    let important = at_least_error + count("warning");
    // SIGTERM drains: everything accepted reaches the lake and the hot store.
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");

    // The README's question, on events stamped at push time.
    let rows: Vec<Value> = serde_json::from_str(&run_ok(
        &data,
        &[
            "query",
            "--since",
            "1h",
            "--severity",
            "error",
            "--grep",
            "timeout",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert!(rows.len() >= 3, "{rows:?}");
    assert!(rows.iter().all(|r| {
        r["severity"] == "ERROR" && r["message"].as_str().unwrap().contains("timeout")
    }));
    let count: Vec<Value> = serde_json::from_str(&run_ok(
        &data,
        &[
            "query",
            "--format",
            "json",
            "select count(*) as n from logs",
        ],
    ))
    .unwrap();
    assert_eq!(count[0]["n"], 120);

    // The hot store holds the WARNING and above, with a header in a table.
    let table = run_ok(&data, &["hot", "recent", "--limit", "1000"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["time", "severity", "service", "message"]
    );
    assert_eq!(lines.count() as u64, important, "{table}");
    let csv = run_ok(
        &data,
        &["hot", "recent", "--severity", "error", "--format", "csv"],
    );
    assert!(csv.starts_with("time,ts_ms,service,severity,"), "{csv}");
    assert_eq!(csv.lines().count() as u64, 1 + at_least_error, "{csv}");
    // The old --json flag still prints one object per line.
    let ndjson = run_ok(&data, &["hot", "recent", "--json", "--limit", "1000"]);
    let objects: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len() as u64, important);
    assert!(objects.iter().all(|o| o["time"].is_string()));
}

#[test]
fn demo_without_a_service_is_a_clean_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = spate()
        .args(["demo", "--target", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("spate: cannot connect to"), "{stderr}");
}

/// An ERROR event of `service` stamped `timestamp`, as a service logs it.
fn old_error(service: &str, timestamp: &str) -> String {
    serde_json::json!({
        "timestamp": timestamp,
        "level": "ERROR",
        "service": service,
        "message": "replayed from last year's archive",
    })
    .to_string()
}

/// `POST /v1/logs` of `body` to `url`; the status.
fn post_logs(url: &str, body: &str) -> u16 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/v1/logs"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// `spate hot recent` over all time, with the config of the service that
/// wrote `data`: its stdout and stderr.
fn hot_recent_all(data: &Path) -> (String, String) {
    let out = spate()
        .args(["hot", "recent", "--since", "100000d", "--format", "ndjson"])
        .args(data_and_config_args(data))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn hot_retention_counts_from_arrival_and_says_what_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let push = |data: &Path, config: &str, body: &str| {
        let service = Service::start(support::SPATE, data, config);
        assert_eq!(post_logs(&service.url, body), 200);
        let (status, output) = service.stop();
        assert!(status.success(), "{output}");
    };
    // By default a replay of old logs stays hot, and nothing expired.
    let replay = dir.path().join("replay");
    push(&replay, "", &old_error("billing", "2020-01-01T00:00:00Z"));
    let (stdout, stderr) = hot_recent_all(&replay);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");

    // Counted from event time, the next start's first pass deletes it, and
    // `spate hot` says so.
    let by_event = dir.path().join("by-event");
    let config = "[hot]\nretention_from = \"event\"\n";
    push(
        &by_event,
        config,
        &old_error("billing", "2020-01-01T00:00:00Z"),
    );
    let service = Service::start(support::SPATE, &by_event, config);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (stdout, stderr) = loop {
        let (stdout, stderr) = hot_recent_all(&by_event);
        if !stderr.is_empty() || std::time::Instant::now() > deadline {
            break (stdout, stderr);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("1 events expired by retention so far, the last at "),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("(hot.retention = 72h from event time)"),
        "{stderr}"
    );
}

#[test]
fn the_sample_raises_no_silence_alert_for_services_seen_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sample.log"),
    )
    .unwrap();
    let service = Service::start(support::SPATE, &data, "");
    assert_eq!(post_logs(&service.url, &sample), 200);
    // SIGTERM drains: the windows close and their rules run.
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let alerts: Vec<Value> = std::fs::read_to_string(data.join("alerts.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<&str> = alerts.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert!(
        rules.contains(&"critical"),
        "the windows were judged: {rules:?}"
    );
    assert!(!rules.contains(&"silence"), "{rules:?}");
}
