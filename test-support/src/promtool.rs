//! promtool, the Prometheus project's checker of exposition text, and reading
//! samples back from a `/metrics` page.

use std::io::Write;
use std::process::{Command, Stdio};

/// promtool: `SPATE_TEST_PROMTOOL`, else `promtool` on the PATH
/// (`bash scripts/test.sh` installs Debian's `prometheus` package for it).
pub fn promtool() -> String {
    let path = std::env::var("SPATE_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        _ => panic!(
            "promtool not found ({path}): the metrics tests need it; run them with \
             `bash scripts/test.sh`, which installs it, or set SPATE_TEST_PROMTOOL"
        ),
    }
}

/// `promtool check metrics` on `text`: (exit status, stdout + stderr).
pub fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of the sample `series` (name and labels exactly as rendered).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}
