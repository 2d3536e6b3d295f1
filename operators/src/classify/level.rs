//! Level spellings, numeric levels and HTTP status onto the severity ladder.

use crate::event::Severity;

/// Maps a level spelling onto the ladder, case-insensitively.
///
/// Accepts the usual names of log4j, logback, syslog, Apache, Python, Go, .NET,
/// Java util logging (`SEVERE` is its highest level: ERROR), IBM Blue Gene RAS
/// logs (`FATAL` and `FAILURE`, their two highest severities: CRITICAL) and
/// the one-letter forms of klog and logcat (`W`, `E`, `F`, `A`, `I`, `D`,
/// `V`). Surrounding whitespace is ignored. Unknown spellings give `None`
/// (the field is then not an explicit level).
///
/// ```
/// use spate_operators::classify::parse_level;
/// use spate_operators::event::Severity;
/// assert_eq!(parse_level("Warning"), Some(Severity::Warning));
/// assert_eq!(parse_level("emerg"), Some(Severity::Critical));
/// assert_eq!(parse_level("debug"), Some(Severity::Info));
/// assert_eq!(parse_level("loud"), None);
/// ```
pub fn parse_level(s: &str) -> Option<Severity> {
    let s = s.trim().as_bytes();
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    for (d, c) in buf.iter_mut().zip(s) {
        *d = c.to_ascii_lowercase();
    }
    level_from_lower(&buf[..s.len()])
}

fn level_from_lower(s: &[u8]) -> Option<Severity> {
    use Severity::*;
    Some(match s {
        b"warn" | b"warning" | b"w" | b"wrn" => Warning,
        b"err" | b"error" | b"e" | b"severe" | b"eror" | b"erro" => Error,
        b"fatal" | b"crit" | b"critical" | b"emerg" | b"emergency" | b"alert" | b"panic"
        | b"dpanic" | b"f" | b"a" | b"ftl" | b"crt" | b"fata" | b"failure" => Critical,
        b"notice" | b"info" | b"information" | b"informational" | b"debug" | b"trace"
        | b"verbose" | b"i" | b"d" | b"v" | b"inf" | b"dbg" | b"trc" | b"fine" | b"finer"
        | b"finest" | b"config" | b"trace1" | b"trace2" | b"trace3" | b"trace4" | b"trace5"
        | b"trace6" | b"trace7" | b"trace8" => Info,
        _ => return None,
    })
}

/// Maps a numeric level onto the ladder.
///
/// 0..=7 are syslog severities (0-2 critical, 3 error, 4 warning, 5-7 info);
/// 10/20/30/40/50/60 are bunyan/pino levels (trace, debug, info, warn, error,
/// fatal). Anything else is `None` (the field is ignored as a level).
pub fn level_from_number(n: i64) -> Option<Severity> {
    match n {
        0..=7 => Some(syslog_severity(n as u8)),
        10 | 20 | 30 => Some(Severity::Info),
        40 => Some(Severity::Warning),
        50 => Some(Severity::Error),
        60 => Some(Severity::Critical),
        _ => None,
    }
}

/// Syslog severity (`PRI & 7`): 0-2 critical, 3 error, 4 warning, 5-7 info.
pub fn syslog_severity(sev: u8) -> Severity {
    match sev & 7 {
        0..=2 => Severity::Critical,
        3 => Severity::Error,
        4 => Severity::Warning,
        _ => Severity::Info,
    }
}

/// HTTP status onto the ladder: 5xx error, 4xx warning, otherwise info.
pub fn status_severity(status: u16) -> Severity {
    match status {
        500..=599 => Severity::Error,
        400..=499 => Severity::Warning,
        _ => Severity::Info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    #[test]
    fn spellings_map_onto_the_ladder() {
        for s in ["warn", "WARNING", "W", "Warn"] {
            assert_eq!(parse_level(s), Some(Warning), "{s}");
        }
        for s in ["err", "ERROR", "E", "severe", "SEVERE", "Error"] {
            assert_eq!(parse_level(s), Some(Error), "{s}");
        }
        for s in [
            "fatal",
            "CRIT",
            "critical",
            "emerg",
            "Emergency",
            "alert",
            "PANIC",
            "F",
            "A",
            "FAILURE",
        ] {
            assert_eq!(parse_level(s), Some(Critical), "{s}");
        }
        for s in [
            "notice",
            "INFO",
            "information",
            "debug",
            "TRACE",
            "verbose",
            "trace3",
        ] {
            assert_eq!(parse_level(s), Some(Info), "{s}");
        }
        assert_eq!(parse_level(" error "), Some(Error));
    }

    #[test]
    fn unknown_spellings_are_not_levels() {
        for s in [
            "",
            "loud",
            "errors",
            "warned",
            "failed",
            "x",
            "a-very-long-level-name-indeed",
        ] {
            assert_eq!(parse_level(s), None, "{s}");
        }
    }

    #[test]
    fn numeric_levels() {
        assert_eq!(level_from_number(60), Some(Critical));
        assert_eq!(level_from_number(50), Some(Error));
        assert_eq!(level_from_number(40), Some(Warning));
        assert_eq!(level_from_number(30), Some(Info));
        assert_eq!(level_from_number(10), Some(Info));
        assert_eq!(level_from_number(3), Some(Error));
        assert_eq!(level_from_number(4), Some(Warning));
        assert_eq!(level_from_number(2), Some(Critical));
        assert_eq!(level_from_number(6), Some(Info));
        assert_eq!(level_from_number(35), None);
        assert_eq!(level_from_number(-1), None);
    }

    #[test]
    fn status_maps() {
        assert_eq!(status_severity(503), Error);
        assert_eq!(status_severity(404), Warning);
        assert_eq!(status_severity(200), Info);
        assert_eq!(status_severity(0), Info);
    }
}
