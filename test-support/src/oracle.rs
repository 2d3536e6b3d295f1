//! The workload generator as the tests' oracle: corpora whose expected
//! counts are known, and the `loadgen` binary that sends them to the AWS
//! emulator and reads back what arrived.

use std::path::{Path, PathBuf};

use spate_loadgen::{GenerateStats, Workload, generate};

/// Writes a workload to `<dir>/<workload>.txt` with seed 7.
pub fn corpus(dir: &Path, workload: Workload, events: u64) -> (PathBuf, GenerateStats) {
    let path = dir.join(format!("{workload}.txt"));
    let file = std::fs::File::create(&path).unwrap();
    let stats = generate(workload, events, 7, file).unwrap();
    (path, stats)
}

/// The `loadgen` binary (built beside `spate` by `cargo test --workspace`;
/// `spate` is the path of the `spate` binary, `CARGO_BIN_EXE_spate` in the
/// test file), pointed at the emulator with test credentials.
pub fn loadgen(spate: &Path) -> std::process::Command {
    let path = spate.with_file_name("loadgen");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --bin loadgen` (or run `cargo test --workspace`)",
        path.display()
    );
    let mut command = std::process::Command::new(path);
    command
        .env("AWS_ENDPOINT_URL", crate::emulator::endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    command
}

/// Runs `loadgen ARGS --json` (see [`loadgen`]), which must succeed; the
/// report it prints.
pub fn loadgen_json(spate: &Path, args: &[&str]) -> serde_json::Value {
    let out = loadgen(spate).args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "loadgen {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
