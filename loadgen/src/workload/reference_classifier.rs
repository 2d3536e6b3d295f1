//! Test oracle: the DESIGN.md classification rules, re-implemented independently of the
//! generators (and naively: serde_json, word splitting) so the tests can check that every
//! generated event classifies as the generator intended.

use serde_json::Value;

use crate::Severity;

/// The severity keywords of DESIGN.md, strongest first.
pub(crate) const KEYWORDS: [(&str, Severity); 11] = [
    ("critical", Severity::Critical),
    ("fatal", Severity::Critical),
    ("panic", Severity::Critical),
    ("emergency", Severity::Critical),
    ("error", Severity::Error),
    ("exception", Severity::Error),
    ("failed", Severity::Error),
    ("failure", Severity::Error),
    ("warning", Severity::Warning),
    ("warn", Severity::Warning),
    ("deprecated", Severity::Warning),
];

/// What the rules say about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub severity: Severity,
    pub http_5xx: bool,
    pub failed_login: bool,
}

/// Maps a level spelling onto the ladder; panics on a spelling the rules do not know.
pub(crate) fn level_severity(level: &str) -> Severity {
    match level.to_ascii_lowercase().as_str() {
        "trace" | "debug" | "info" | "notice" => Severity::Info,
        "warn" | "warning" => Severity::Warning,
        "err" | "error" => Severity::Error,
        "crit" | "critical" | "fatal" | "emerg" | "emergency" => Severity::Critical,
        other => panic!("level spelling {other:?} is not in the rules"),
    }
}

/// The strongest keyword in `message`, matched as a whole word, case-insensitively.
pub(crate) fn keyword_severity(message: &str) -> Severity {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| KEYWORDS.iter().find(|(k, _)| word.eq_ignore_ascii_case(k)))
        .map(|&(_, severity)| severity)
        .max()
        .unwrap_or(Severity::Info)
}

pub(crate) fn status_severity(status: Option<u64>) -> Severity {
    match status {
        Some(500..=599) => Severity::Error,
        Some(400..=499) => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The built-in tags, from the message, status and request path.
fn tags(message: &str, status: Option<u64>, path: &str) -> (bool, bool) {
    let sshd = ["Failed password", "Invalid user", "authentication failure"]
        .iter()
        .any(|p| message.contains(p));
    let login_401 = status == Some(401) && path.split(['/', '?']).any(|s| s == "login");
    (matches!(status, Some(500..=599)), sshd || login_401)
}

/// Classifies one W1 line (a JSON object).
pub(crate) fn classify_app_json(line: &str) -> Verdict {
    let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let level = ["level", "severity", "lvl", "levelname"]
        .iter()
        .find_map(|k| event.get(k))
        .or_else(|| event.get("log").and_then(|log| log.get("level")))
        .map(|v| v.as_str().expect("level is a string"));
    let message = event["message"].as_str().expect("message is a string");
    let status = event
        .get("status")
        .map(|s| s.as_u64().expect("status is a number"));
    let severity = match level {
        Some(level) => level_severity(level),
        None => keyword_severity(message).max(status_severity(status)),
    };
    let path = event.get("path").and_then(Value::as_str).unwrap_or("");
    let (http_5xx, failed_login) = tags(message, status, path);
    Verdict {
        severity,
        http_5xx,
        failed_login,
    }
}

/// Classifies one W2 line (combined log format): the status decides.
pub(crate) fn classify_access(line: &str) -> Verdict {
    let mut quoted = line.split('"');
    let request = quoted.nth(1).expect("request line");
    let path = request.split(' ').nth(1).expect("request path");
    let status: u64 = quoted
        .next()
        .and_then(|s| s.split_ascii_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("status after the request line");
    let (http_5xx, failed_login) = tags("", Some(status), path);
    Verdict {
        severity: status_severity(Some(status)),
        http_5xx,
        failed_login,
    }
}

#[test]
fn oracle_follows_the_rules() {
    assert_eq!(
        keyword_severity("request failed: panic in handler"),
        Severity::Critical
    );
    assert_eq!(
        keyword_severity("NullPointerException in errors_total"),
        Severity::Info
    );
    assert_eq!(keyword_severity("Deprecated flag"), Severity::Warning);
    let line = r#"{"lvl":"notice","message":"fatal","status":503,"path":"/x"}"#;
    let verdict = classify_app_json(line);
    assert_eq!(
        verdict,
        Verdict {
            severity: Severity::Info,
            http_5xx: true,
            failed_login: false
        }
    );
    let line = r#"{"message":"handled","status":401,"path":"/api/v1/auth/login"}"#;
    let verdict = classify_app_json(line);
    assert_eq!(
        verdict,
        Verdict {
            severity: Severity::Warning,
            http_5xx: false,
            failed_login: true
        }
    );
}
