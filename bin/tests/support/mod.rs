//! What the end-to-end tests of the `spate` binary share beyond
//! `spate-test-support`: the binary itself (whose path only a test file of
//! this crate knows), `spate ingest` and the `--stats` line of `spate query`.

#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The path of the `spate` binary under test.
pub const SPATE: &str = env!("CARGO_BIN_EXE_spate");

/// The `spate` binary under test.
pub fn spate() -> Command {
    Command::new(SPATE)
}

/// The `loadgen` binary (built beside `spate`), pointed at the emulator.
pub fn loadgen() -> Command {
    spate_test_support::oracle::loadgen(Path::new(SPATE))
}

/// Runs `loadgen ARGS --json`, which must succeed; the report it prints.
pub fn loadgen_json(args: &[&str]) -> Value {
    spate_test_support::oracle::loadgen_json(Path::new(SPATE), args)
}

/// Runs `command`, which must succeed; its stdout.
pub fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `spate ingest --json --data-dir DATA_DIR EXTRA... INPUTS...`, which
/// must succeed, and returns its summary.
pub fn ingest(data_dir: &Path, inputs: &[&Path], extra: &[&str]) -> Value {
    let summary = stdout_of(
        spate()
            .arg("ingest")
            .arg("--json")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .args(inputs),
    );
    serde_json::from_str(&summary).expect("summary is one JSON object")
}

/// The files scanned that `spate query --stats` reports on stderr.
pub fn files_scanned_in(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("files scanned"))
        .unwrap_or_else(|| panic!("no stats line in {stderr}"));
    line.split(", ")
        .find_map(|part| part.strip_suffix(" files scanned"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line}"))
}
