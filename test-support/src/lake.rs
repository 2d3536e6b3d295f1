//! The lake read by something other than Spate: DuckDB (through the Python
//! that `scripts/test.sh` installs, `SPATE_TEST_PYTHON`) over its Parquet
//! files, and the counts a W1 corpus must give.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use spate_loadgen::GenerateStats;

/// The Python with DuckDB and pyarrow that `scripts/test.sh` installs.
pub fn python() -> String {
    std::env::var("SPATE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("SPATE_TEST_PYTHON is not set: run the suite with `bash scripts/test.sh`")
    })
}

/// Runs a DuckDB query over the lake (view `logs`, Hive partitions as columns)
/// and returns its rows as JSON arrays.
pub fn duckdb(lake: &Path, sql: &str) -> Vec<Value> {
    let glob = format!("{}/**/*.parquet", lake.display());
    let script = format!(
        r#"
import duckdb, json, sys
con = duckdb.connect()
con.execute("create view logs as select * from read_parquet('{glob}', hive_partitioning=true)")
rows = con.execute(sys.argv[1]).fetchall()
print(json.dumps([list(r) for r in rows], default=str))
"#
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// The sealed Parquet files under `dir` (a lake's `logs/`), recursively;
/// none if it does not exist. Temporary files (`.tmp`) are not counted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Asserts that `spate query` over a lake built from a W1 corpus finds what
/// the corpus holds: every event once, the severity counts and the
/// `http_5xx` tag count. `rows` runs one SQL statement and returns its rows
/// as JSON objects.
pub fn assert_w1_counts(stats: &GenerateStats, rows: impl Fn(&str) -> Vec<Value>) {
    let by_severity = rows("select severity, count(*) as n from logs group by severity");
    let count = |name: &str| {
        by_severity
            .iter()
            .find(|r| r["severity"] == name)
            .map_or(0, |r| r["n"].as_u64().unwrap())
    };
    for (name, idx) in [("INFO", 0), ("WARNING", 1), ("ERROR", 2), ("CRITICAL", 3)] {
        assert_eq!(count(name), stats.expected_severity[idx], "{name}");
    }
    let total = rows("select count(*) as n, count(distinct event_id) as ids from logs");
    assert_eq!(total[0]["n"], stats.events);
    assert_eq!(total[0]["ids"], stats.events);
    let tagged = rows("select count(*) as n from logs where array_has(tags, 'http_5xx')");
    assert_eq!(tagged[0]["n"], stats.expected_tags.http_5xx);
}
