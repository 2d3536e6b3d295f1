//! What the generator intended each event to classify as: the oracle the
//! classifier's counts are compared with.

use std::fmt;

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
