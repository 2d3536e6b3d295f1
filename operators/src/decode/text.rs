//! Level, time, host and app from plain-text lines.
//!
//! Recognised, in this order (the first that fits decides):
//! 1. syslog `<PRI>` prefix: severity = `PRI & 7` (0-2 critical, 3 error,
//!    4 warning, 5-7 info), then an RFC 5424 (`1 TS HOST APP ...`) or RFC 3164
//!    (`Mmm dd HH:MM:SS HOST APP[PID]: ...`) header gives ts, host and service;
//! 2. klog/glog `E1123 12:00:00.000000 ...` (I/W/E/F; F = critical);
//! 3. Android logcat threadtime `11-23 12:00:00.000  1234  5678 W Tag: msg`
//!    (V/D/I/W/E/F/A; F and A = critical);
//! 4. Python logging `WARNING:root:...`;
//! 5. Apache error log `[...] [error] ...` / `[...] [core:crit] ...`;
//! 6. a leading ISO-8601 or RFC 3164 stamp, optionally followed by a syslog-style
//!    `HOST APP[PID]:` header (ts, host, service); then a level token in the
//!    header of the rest (see below);
//! 7. logfmt `level=...` / `lvl=...` / `severity=...` anywhere in the line.
//!
//! A level found this way is explicit: it decides over keywords in the
//! message. The message stays the whole line. How a level token is found in
//! the header of a line: [`super::header_level`].

use crate::classify::{parse_level, syslog_severity};
use crate::event::Severity;

use super::header_level::{level_token, token_level};
use super::timestamp::{
    month_abbrev, parse_hms, parse_iso8601, parse_iso8601_prefix, parse_rfc3164_prefix,
    with_inferred_year,
};

/// What could be read from a text line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TextLine<'a> {
    /// Explicit level.
    pub level: Option<Severity>,
    /// Event time, UTC ms.
    pub ts: Option<i64>,
    /// Host from a syslog header.
    pub host: Option<&'a str>,
    /// App name from a syslog header.
    pub service: Option<&'a str>,
}

/// Parses a text line (already trimmed, non-empty).
pub fn parse_text(line: &str, ingest_ms: i64) -> TextLine<'_> {
    let b = line.as_bytes();
    if let Some(t) = syslog(line, ingest_ms) {
        return t;
    }
    if let Some(t) = klog(b, ingest_ms).or_else(|| logcat(b, ingest_ms)) {
        return t;
    }
    if let Some(level) = python(line) {
        return TextLine {
            level: Some(level),
            ..TextLine::default()
        };
    }
    if b[0] == b'['
        && let Some(t) = apache_error(line)
    {
        return t;
    }
    let mut t = TextLine::default();
    let mut rest = line;
    if let Some((ts, n)) = parse_iso8601_prefix(b).or_else(|| parse_rfc3164_prefix(b, ingest_ms)) {
        t.ts = Some(ts);
        rest = &line[n..];
        // `LEVEL logger: message` (log4j's `%p %c: %m`) is not `HOST APP:`.
        if let Some((host, app, after)) =
            syslog_header(rest).filter(|(host, _, _)| token_level(host).is_none())
        {
            (t.host, t.service, rest) = (Some(host), Some(app), after);
        }
    }
    t.level = level_token(rest).or_else(|| logfmt_level(line));
    t
}

fn syslog(line: &str, ingest_ms: i64) -> Option<TextLine<'_>> {
    let rest = line.strip_prefix('<')?;
    let close = rest
        .get(..4)?
        .find('>')
        .or_else(|| rest.find('>').filter(|&i| i <= 3))?;
    let pri: u16 = rest[..close].parse().ok().filter(|p| *p <= 191)?;
    let mut t = TextLine {
        level: Some(syslog_severity((pri & 7) as u8)),
        ..TextLine::default()
    };
    let rest = &rest[close + 1..];
    if let Some(r) = rest.strip_prefix("1 ") {
        // RFC 5424: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID ...
        let mut f = r.split(' ');
        fn nil(s: Option<&str>) -> Option<&str> {
            s.filter(|s| *s != "-" && !s.is_empty())
        }
        t.ts = nil(f.next()).and_then(parse_iso8601);
        t.host = nil(f.next());
        t.service = nil(f.next());
        return Some(t);
    }
    let b = rest.as_bytes();
    if let Some((ts, n)) = parse_rfc3164_prefix(b, ingest_ms).or_else(|| parse_iso8601_prefix(b)) {
        t.ts = Some(ts);
        if let Some((host, app, _)) = syslog_header(&rest[n..]) {
            (t.host, t.service) = (Some(host), Some(app));
        }
    }
    Some(t)
}

/// ` HOST APP[PID]: rest` → `(host, app, rest)`.
fn syslog_header(s: &str) -> Option<(&str, &str, &str)> {
    let s = s.strip_prefix(' ')?;
    let sp = s.find(' ')?;
    let host = &s[..sp];
    let rest = &s[sp + 1..];
    let tag_end = rest.find(' ').unwrap_or(rest.len());
    let tag = rest[..tag_end].strip_suffix(':')?;
    let app = &tag[..tag.find('[').unwrap_or(tag.len())];
    if host.is_empty() || app.is_empty() || host.contains(':') {
        return None;
    }
    Some((host, app, &rest[tag_end..]))
}

fn letter_level(c: u8) -> Option<Severity> {
    Some(match c {
        b'V' | b'D' | b'I' => Severity::Info,
        b'W' => Severity::Warning,
        b'E' => Severity::Error,
        b'F' | b'A' => Severity::Critical,
        _ => return None,
    })
}

/// `Lmmdd hh:mm:ss.uuuuuu ...`
fn klog(b: &[u8], ingest_ms: i64) -> Option<TextLine<'static>> {
    if !matches!(b.first()?, b'I' | b'W' | b'E' | b'F') || *b.get(5)? != b' ' {
        return None;
    }
    let num = |s: &[u8]| {
        s.iter().try_fold(0u32, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + (c - b'0') as u32)
        })
    };
    let (mo, d) = (num(&b[1..3])?, num(&b[3..5])?);
    let (h, mi, s, ms, n) = parse_hms(&b[6..])?;
    if n < 9 {
        return None; // klog always has a fraction
    }
    Some(TextLine {
        level: letter_level(b[0]),
        ts: with_inferred_year(mo, d, h, mi, s, ms, ingest_ms),
        ..TextLine::default()
    })
}

/// `MM-DD HH:MM:SS.mmm  PID  TID L Tag: msg`
fn logcat(b: &[u8], ingest_ms: i64) -> Option<TextLine<'static>> {
    let num = |s: &[u8]| {
        s.iter().try_fold(0u32, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + (c - b'0') as u32)
        })
    };
    if *b.get(2)? != b'-' || *b.get(5)? != b' ' {
        return None;
    }
    let (mo, d) = (num(&b[0..2])?, num(&b[3..5])?);
    let (h, mi, s, ms, n) = parse_hms(&b[6..])?;
    let mut fields = std::str::from_utf8(&b[6 + n..])
        .ok()?
        .split_ascii_whitespace();
    let (pid, tid, lvl) = (fields.next()?, fields.next()?, fields.next()?);
    if !pid.bytes().all(|c| c.is_ascii_digit()) || !tid.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let &[l] = lvl.as_bytes() else { return None };
    Some(TextLine {
        level: Some(letter_level(l)?),
        ts: with_inferred_year(mo, d, h, mi, s, ms, ingest_ms),
        ..TextLine::default()
    })
}

fn python(line: &str) -> Option<Severity> {
    let colon = line
        .get(..9)?
        .find(':')
        .or_else(|| line.get(..10)?.find(':'))?;
    match &line[..colon] {
        "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL" => parse_level(&line[..colon]),
        _ => None,
    }
}

/// `[Wed Oct 11 14:32:52 2000] [error] ...` or `[...] [core:error] [pid 1] ...`.
fn apache_error(line: &str) -> Option<TextLine<'_>> {
    let mut rest = line;
    let mut ts = None;
    for i in 0..4 {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let group = &inner[..close];
        if i == 0 {
            ts = ctime(group);
        }
        let word = &group[group.rfind(':').map_or(0, |c| c + 1)..];
        if word.len() > 1
            && let Some(level) = parse_level(word)
        {
            return Some(TextLine {
                level: Some(level),
                ts,
                ..TextLine::default()
            });
        }
        rest = inner[close + 1..].trim_start();
    }
    None
}

/// `Wed Oct 11 14:32:52[.123456] 2000`, read as UTC.
fn ctime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mo = month_abbrev(b.get(4..7)?)?;
    let mut f = s.get(8..)?.split_ascii_whitespace();
    let d: u32 = f.next()?.parse().ok()?;
    let (h, mi, sec, ms, _) = parse_hms(f.next()?.as_bytes())?;
    let y: i64 = f.next()?.parse().ok()?;
    let iso = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}.{ms:03}Z");
    parse_iso8601(&iso)
}

fn logfmt_level(line: &str) -> Option<Severity> {
    for key in ["level=", "lvl=", "severity=", "loglevel="] {
        let mut from = 0;
        while let Some(i) = line[from..].find(key) {
            let at = from + i;
            from = at + key.len();
            if at > 0 && !line.as_bytes()[at - 1].is_ascii_whitespace() {
                continue;
            }
            let v = &line[from..];
            let v = v[..v.find(' ').unwrap_or(v.len())].trim_matches('"');
            if let Some(l) = parse_level(v) {
                return Some(l);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Severity::*;

    const INGEST: i64 = 1_704_067_200_000 + 330 * 86_400_000; // 2024-11-26

    fn level(l: &str) -> Option<Severity> {
        parse_text(l, INGEST).level
    }

    #[test]
    fn log4j_and_logback() {
        let t = parse_text(
            "2015-10-18 18:01:47,978 INFO [main] o.a.h.Server: started",
            INGEST,
        );
        assert_eq!(t.level, Some(Info));
        assert_eq!(t.ts, Some(1_445_191_307_978));
        assert_eq!(
            level("2015-10-18 18:01:47,978 WARN [main] x: slow"),
            Some(Warning)
        );
        assert_eq!(
            level("2015-10-18 18:01:47,978 FATAL [main] x: dead"),
            Some(Critical)
        );
        assert_eq!(
            level("18:01:47.978 [main] ERROR c.b.App - boom"),
            Some(Error)
        );
    }

    #[test]
    fn apache_error_log() {
        let t = parse_text(
            "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] denied",
            INGEST,
        );
        assert_eq!(t.level, Some(Error));
        assert_eq!(t.ts, Some(971_274_772_000));
        assert_eq!(
            level("[Wed Oct 11 14:32:52 2000] [notice] Apache configured"),
            Some(Info)
        );
        assert_eq!(level("[Wed Oct 11 14:32:52 2000] [warn] x"), Some(Warning));
        assert_eq!(level("[Wed Oct 11 14:32:52 2000] [crit] x"), Some(Critical));
        assert_eq!(
            level("[Wed Oct 11 14:32:52 2000] [emerg] x"),
            Some(Critical)
        );
        assert_eq!(
            level("[Wed Oct 11 14:32:52 2000] [alert] x"),
            Some(Critical)
        );
        assert_eq!(
            level("[Wed Oct 11 14:32:52.123456 2024] [core:error] [pid 42] AH00037: x"),
            Some(Error)
        );
    }

    #[test]
    fn syslog_priority_and_headers() {
        let t = parse_text(
            "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed",
            INGEST,
        );
        assert_eq!(t.level, Some(Critical)); // 34 & 7 = 2
        assert_eq!(t.host, Some("mymachine"));
        assert_eq!(t.service, Some("su"));
        assert_eq!(t.ts, Some(1_728_684_855_000)); // 2024-10-11T22:14:15Z
        assert_eq!(level("<11>Oct 11 22:14:15 h app: x"), Some(Error));
        assert_eq!(level("<12>Oct 11 22:14:15 h app: x"), Some(Warning));
        assert_eq!(level("<13>x"), Some(Info));
        assert_eq!(level("<191>x"), Some(Info));
        let t = parse_text(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - msg",
            INGEST,
        );
        assert_eq!(t.level, Some(Info));
        assert_eq!(t.ts, Some(1_065_910_455_003));
        assert_eq!(t.host, Some("mymachine.example.com"));
        assert_eq!(t.service, Some("evntslog"));
        // Not a PRI: out of range or not numeric.
        assert_eq!(level("<999>hello"), None);
        assert_eq!(level("<abc> hello"), None);
    }

    #[test]
    fn python_logging() {
        assert_eq!(level("WARNING:root:disk almost full"), Some(Warning));
        assert_eq!(level("ERROR:app.db:connection lost"), Some(Error));
        assert_eq!(level("CRITICAL:x:y"), Some(Critical));
        assert_eq!(level("DEBUG:x:y"), Some(Info));
    }

    #[test]
    fn klog_glog() {
        let t = parse_text("E1123 12:00:00.000000    1234 server.go:42] boom", INGEST);
        assert_eq!(t.level, Some(Error));
        assert_eq!(t.ts, Some(1_732_363_200_000)); // 2024-11-23T12:00:00Z
        assert_eq!(level("W1123 12:00:00.000000 1 a.go:1] x"), Some(Warning));
        assert_eq!(level("I1123 12:00:00.000000 1 a.go:1] x"), Some(Info));
        assert_eq!(level("F1123 12:00:00.000000 1 a.go:1] x"), Some(Critical));
    }

    #[test]
    fn android_logcat() {
        let t = parse_text("11-23 12:00:00.000  1234  5678 W Tag: msg", INGEST);
        assert_eq!(t.level, Some(Warning));
        assert_eq!(t.ts, Some(1_732_363_200_000));
        assert_eq!(
            level("11-23 12:00:00.000  1234  5678 E Tag: msg"),
            Some(Error)
        );
        assert_eq!(
            level("11-23 12:00:00.000  1234  5678 F Tag: msg"),
            Some(Critical)
        );
        assert_eq!(
            level("11-23 12:00:00.000  1234  5678 A Tag: msg"),
            Some(Critical)
        );
        assert_eq!(
            level("11-23 12:00:00.000  1234  5678 D Tag: msg"),
            Some(Info)
        );
        assert_eq!(
            level("11-23 12:00:00.000  1234  5678 V Tag: msg"),
            Some(Info)
        );
    }

    #[test]
    fn level_token_in_leading_fields() {
        let t = parse_text("2024-01-01T00:00:00Z host app[12]: ERROR something", INGEST);
        assert_eq!(t.level, Some(Error));
        assert_eq!(t.host, Some("host"));
        assert_eq!(t.service, Some("app"));
        assert_eq!(t.ts, Some(1_704_067_200_000));
        let t = parse_text(
            "Nov 20 10:00:00 web1 sshd[99]: Failed password for root",
            INGEST,
        );
        assert_eq!(
            (t.host, t.service, t.level),
            (Some("web1"), Some("sshd"), None)
        );
        assert_eq!(level("[WARN] low disk"), Some(Warning));
        assert_eq!(level("error: cannot open file"), Some(Error));
        assert_eq!(level("app <crit> x"), Some(Critical));
        assert_eq!(
            level("ts=1 caller=main.go:1 level=warn msg=\"slow\""),
            Some(Warning)
        );
        assert_eq!(level("msg=x lvl=\"error\""), Some(Error));
    }

    #[test]
    fn a_level_and_a_logger_are_not_a_syslog_host_and_app() {
        let t = parse_text(
            "2025-11-26 10:43:01,102 WARN org.apache.hadoop.DataNode: write failed over",
            INGEST,
        );
        assert_eq!((t.level, t.host, t.service), (Some(Warning), None, None));
    }

    #[test]
    fn no_level_without_a_token() {
        assert_eq!(
            level("user alert sent to bob"),
            None,
            "lower-case bare word"
        );
        assert_eq!(
            level("a b c d e f ERROR late"),
            None,
            "beyond the leading fields"
        );
        assert_eq!(level("everything is FINE"), None);
        assert_eq!(level("sublevel=warn x"), None);
        assert_eq!(level("E11 not klog"), None);
        assert_eq!(level("12-34 nope"), None);
    }
}
