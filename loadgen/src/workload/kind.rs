//! The workloads of `WORKLOAD.md` by name.

use std::fmt;
use std::str::FromStr;

/// One of the benchmark workloads of `WORKLOAD.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// W1: NDJSON application logs, 250–400 bytes an event.
    AppJson,
    /// W2: Apache/nginx combined access log lines.
    Access,
    /// W3: CloudWatch Logs subscription payloads (gzip + base64 JSON), one per line.
    CloudWatch,
}

impl Workload {
    /// Every workload, in W-number order.
    pub const ALL: [Workload; 3] = [Workload::AppJson, Workload::Access, Workload::CloudWatch];

    /// The short name used on the command line: `w1`, `w2` or `w3`.
    pub fn short_name(self) -> &'static str {
        match self {
            Workload::AppJson => "w1",
            Workload::Access => "w2",
            Workload::CloudWatch => "w3",
        }
    }

    /// The descriptive name: `app-json`, `access` or `cloudwatch`.
    pub fn long_name(self) -> &'static str {
        match self {
            Workload::AppJson => "app-json",
            Workload::Access => "access",
            Workload::CloudWatch => "cloudwatch",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl FromStr for Workload {
    type Err = String;

    /// Accepts the short (`w1`) or long (`app-json`) name, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Workload::ALL
            .into_iter()
            .find(|w| {
                s.eq_ignore_ascii_case(w.short_name()) || s.eq_ignore_ascii_case(w.long_name())
            })
            .ok_or_else(|| {
                format!(
                    "unknown workload {s:?}: expected w1 (app-json), w2 (access) or w3 (cloudwatch)"
                )
            })
    }
}
