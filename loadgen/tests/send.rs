//! `loadgen send` through the binary: its report goes to stdout in the
//! `--format` asked for, the events to the target.

use std::process::Command;

use serde_json::Value;

/// `loadgen send` of one second at 50 events/s into a file, with `extra`.
fn send(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "send",
            "--rate",
            "50",
            "--duration",
            "1s",
            "--batch-events",
            "10",
        ])
        .arg("--target")
        .arg(format!("file:{}", dir.join("events.ndjson").display()))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_report_goes_to_stdout_in_the_format_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = send(dir.path(), &["--run-id", "r-table"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("run r-table (w1 "), "{stdout}");
    assert!(stdout.contains("acknowledged 50"), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("run r-table"));

    for args in [&["--format", "json"][..], &["--json"][..]] {
        let out = send(dir.path(), &[&["--run-id", "r-json"], args].concat());
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["run_id"], "r-json");
        assert_eq!(report["acknowledged"], 50);
    }

    let out = send(dir.path(), &["--format", "csv"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(header.contains(&"acknowledged"), "{stdout}");
    assert!(lines.next().is_some(), "{stdout}");

    // The events went to the target, not stdout.
    let events = std::fs::read_to_string(dir.path().join("events.ndjson")).unwrap();
    assert_eq!(events.lines().count(), 50 * 4);
}
