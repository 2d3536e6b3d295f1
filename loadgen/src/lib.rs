//! Deterministic benchmark workloads for Spate.
//!
//! This crate writes the workloads described in `WORKLOAD.md` — W1 app-json, W2 access,
//! W3 cloudwatch — so that every performance figure is measured on the same bytes: the same
//! workload, event count and seed always produce byte-identical output (for a given version of
//! this crate on a 64-bit platform; the generator is `rand`'s `SmallRng`, which makes no
//! promise across its own versions). Event times start at the fixed instant
//! 2026-11-23T10:00:00.000Z and advance a few milliseconds per event; the wall clock is never
//! read.
//!
//! Alongside the bytes, [`generate`] returns [`GenerateStats`]: what the generator *intended*
//! each event to classify as under the DESIGN.md rules (severity ladder and the built-in
//! `http_5xx` / `failed_login` tags). The generator constructs every event so that the rules
//! give exactly that answer — events meant to be INFO contain none of the severity keywords,
//! events without a level field carry a keyword or status that decides them — so a test of
//! the classifier can compare its counts with these for equality, not within a tolerance.
//!
//! What it is for: producing input files and streams for benchmarks, smoke tests and
//! classifier tests. What it is not for: it does not parse or classify logs itself (that is
//! `spate-operators`).
//!
//! On top of the generators:
//! - [`send`] drives a workload into a target (Spate's HTTP ingest, an SQS queue, a Kinesis
//!   stream, a file, stdout) at a rate profile (steady, ramp, W4 spike, sine) with open-loop
//!   pacing, and reports achieved rate, rejections, errors and latency; [`BatchGenerator`]
//!   stamps each event with the run marks `lg_run`, `lg_seq` and `lg_sent_ms`.
//! - [`verify`] reads Spate's Parquet lake (local or on S3) back and reports, for one run,
//!   lost and duplicated sequence numbers and send→archive latency; given `send`'s report,
//!   only the sequence numbers `send` saw acknowledged ([`SeqRanges`]) can be lost.
//!
//! ```
//! use spate_loadgen::{Severity, Workload, generate};
//!
//! let mut out = Vec::new();
//! let stats = generate(Workload::AppJson, 1_000, 7, &mut out).unwrap();
//! assert_eq!(stats.events, 1_000);
//! assert_eq!(stats.bytes, out.len() as u64);
//! assert_eq!(stats.expected_severity.iter().sum::<u64>(), 1_000);
//! assert!(stats.severity(Severity::Info) > stats.severity(Severity::Warning));
//! ```

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

pub mod send;
mod seq_ranges;
pub mod verify;
mod workload;

pub use seq_ranges::SeqRanges;
pub use workload::marks::{
    MAX_RUN_ID_LEN, RUN_FIELD, RunId, SENT_MS_FIELD, SEQ_FIELD, is_valid_run_id,
};
pub use workload::stream::BatchGenerator;

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

/// The severity ladder of DESIGN.md, weakest first; DEBUG and TRACE count as INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info = 0,
    Warning = 1,
    Error = 2,
    Critical = 3,
}

impl Severity {
    /// Every severity, weakest first; `ALL[s.index()] == s`.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
    ];

    /// Position in [`GenerateStats::expected_severity`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Upper-case name: `INFO`, `WARNING`, `ERROR`, `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many events the built-in tag rules should tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpectedTags {
    /// Events with an HTTP status 500–599.
    pub http_5xx: u64,
    /// sshd `Failed password` / `Invalid user` / `authentication failure` messages, and
    /// status 401 on a login path (`/login`, `/api/v1/auth/login`). No other event has a 401.
    pub failed_login: u64,
}

/// What one [`generate`] call wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateStats {
    /// Log events written. For W3 these are the `logEvents` of data messages; control
    /// messages do not count.
    pub events: u64,
    /// Bytes written, newlines included.
    pub bytes: u64,
    /// Output lines: one per event for W1/W2, one per payload for W3.
    pub records: u64,
    /// W3 `CONTROL_MESSAGE` payloads written (always 0 for W1/W2).
    pub control_messages: u64,
    /// Intended severity counts, indexed by [`Severity::index`]: INFO, WARNING, ERROR,
    /// CRITICAL. They sum to `events`.
    pub expected_severity: [u64; 4],
    /// Intended tag counts.
    pub expected_tags: ExpectedTags,
}

impl GenerateStats {
    /// The intended count for one severity.
    pub fn severity(&self, severity: Severity) -> u64 {
        self.expected_severity[severity.index()]
    }

    /// The stats as a JSON object (what `loadgen generate --json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        let [info, warning, error, critical] = self.expected_severity;
        serde_json::json!({
            "events": self.events,
            "bytes": self.bytes,
            "records": self.records,
            "control_messages": self.control_messages,
            "expected_severity": {
                "INFO": info,
                "WARNING": warning,
                "ERROR": error,
                "CRITICAL": critical,
            },
            "expected_tags": {
                "http_5xx": self.expected_tags.http_5xx,
                "failed_login": self.expected_tags.failed_login,
            },
        })
    }
}

/// Writes `events` events of `workload`, generated from `seed`, to `writer`.
///
/// Output is buffered internally (pass the raw file or stdout; a `&mut Vec<u8>` works too) and
/// flushed before returning. The same `(workload, events, seed)` always writes the same bytes,
/// and W1/W2 output for `n` events is a prefix of the output for any larger count.
pub fn generate<W: Write>(
    workload: Workload,
    events: u64,
    seed: u64,
    writer: W,
) -> io::Result<GenerateStats> {
    workload::run(workload, events, seed, writer)
}
