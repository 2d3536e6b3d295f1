//! W1 app-json: NDJSON application logs, 250–400 bytes an event.
//!
//! Each of the 32 services logs in one of five house styles, which decides the level key
//! (`level`, `severity`, `lvl`, `levelname`, or nested `log.level` with `@timestamp`) and its
//! spellings. 85 % of events carry a level; the rest are decided by a message keyword or an
//! HTTP status, never by both pulling different ways. Intended mix: 1 % CRITICAL, 7 % ERROR,
//! 12 % WARNING, 80 % INFO. About 10 % of events carry `method`/`path`/`status`/`duration_ms`.
//! Extra fields (span id, pod, tenant, ...) are added in random subsets until the line reaches
//! a length drawn uniformly from 255–395 bytes.

use std::io::{self, Write};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::format::{START_MS, push_hex, push_iso8601, push_u64};
use super::{EventMeta, Output};
use crate::{GenerateStats, Severity};

mod extras;
mod vocabulary;

pub(crate) use vocabulary::SERVICES;
use vocabulary::*;

const MAX_LINE: usize = 400;
const MIN_LINE: usize = 250;

/// What an event's message is made of.
enum Body {
    Text(&'static str),
    Http { status: u16, login: bool },
}

/// Generates W1 events one at a time into a caller-owned buffer.
pub(crate) struct AppJson {
    rng: SmallRng,
    clock_ms: u64,
    scratch: Vec<u8>,
}

impl AppJson {
    pub(crate) fn new(seed: u64) -> Self {
        AppJson {
            rng: SmallRng::seed_from_u64(seed),
            clock_ms: START_MS,
            scratch: Vec::new(),
        }
    }

    /// Event time of the latest event, Unix milliseconds.
    pub(crate) fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// A service index, skewed so that low indices log far more than high ones.
    pub(crate) fn pick_service(&mut self) -> usize {
        let a = self.rng.random_range(0..SERVICES.len());
        let b = self.rng.random_range(0..SERVICES.len());
        a.min(b)
    }

    /// Appends one event (without newline) to `buf`; `service` forces the service.
    pub(crate) fn next_event(&mut self, buf: &mut Vec<u8>, service: Option<usize>) -> EventMeta {
        let start = buf.len();
        self.clock_ms += self.rng.random_range(0..=6u64);
        let severity = match self.rng.random_range(0..1000u32) {
            0..10 => Severity::Critical,
            10..80 => Severity::Error,
            80..200 => Severity::Warning,
            _ => Severity::Info,
        };
        let has_level = self.rng.random_range(0..100u32) < 85;
        let (body, sshd) = self.plan(severity, has_level);
        let svc = service.unwrap_or_else(|| if sshd { BASTION } else { self.pick_service() });
        let style = svc % STYLES.len();

        buf.extend_from_slice(if style == ECS_STYLE {
            b"{\"@timestamp\":\""
        } else {
            b"{\"timestamp\":\""
        });
        push_iso8601(buf, self.clock_ms);
        buf.push(b'"');
        if has_level {
            buf.extend_from_slice(STYLES[style].key);
            let spelling = self.pick(STYLES[style].spellings[severity.index()]);
            buf.extend_from_slice(spelling.as_bytes());
            buf.extend_from_slice(if style == ECS_STYLE { b"\"}" } else { b"\"" });
        }
        buf.extend_from_slice(b",\"service\":\"");
        buf.extend_from_slice(SERVICES[svc].as_bytes());
        buf.extend_from_slice(b"\",\"host\":\"");
        buf.extend_from_slice(SUBNETS[svc % SUBNETS.len()].as_bytes());
        push_u64(
            buf,
            10 + (svc as u64 * 7 + self.rng.random_range(0..4u64)) % 240,
        );
        buf.extend_from_slice(b"\",\"trace_id\":\"");
        push_hex(buf, self.rng.random(), 16);
        push_hex(buf, self.rng.random(), 16);
        buf.extend_from_slice(b"\",\"message\":\"");

        let mut status = None;
        let mut login = false;
        match body {
            Body::Text(template) => {
                self.expand(buf, template);
                buf.push(b'"');
            }
            Body::Http {
                status: code,
                login: on_login,
            } => {
                status = Some(code);
                login = on_login;
                self.push_http(buf, code, on_login);
            }
        }
        self.push_extras(buf, start, svc, status.is_none());
        buf.push(b'}');
        debug_assert!((MIN_LINE..=MAX_LINE).contains(&(buf.len() - start)));

        EventMeta {
            severity,
            http_5xx: matches!(status, Some(500..=599)),
            failed_login: sshd || (login && status == Some(401)),
            ts_ms: self.clock_ms,
        }
    }

    /// Chooses the message for an event of `severity` so that the classification rules give
    /// exactly that severity. Returns the body and whether it is an sshd message.
    fn plan(&mut self, severity: Severity, has_level: bool) -> (Body, bool) {
        let r = self.rng.random_range(0..100u32);
        let text = |t: &'static str| (Body::Text(t), false);
        match (severity, has_level) {
            (Severity::Info, _) if r < 7 => {
                let r = self.rng.random_range(0..100u32);
                let (status, login) = match r {
                    0..4 => (if r < 2 { 200 } else { 302 }, true),
                    // An explicit level decides, so a level-carrying INFO may log a 404.
                    4..9 if has_level => (404, false),
                    _ => (self.pick(&OK_STATUSES), false),
                };
                (Body::Http { status, login }, false)
            }
            (Severity::Info, _) => text(self.pick(&INFO)),
            (Severity::Warning, _) if r < 22 => (self.client_error(), false),
            (Severity::Warning, true) if r < 24 => {
                let failed = self.rng.random_bool(0.5);
                (
                    Body::Text(if failed {
                        self.pick(&SSHD_FAILED)
                    } else {
                        SSHD_INVALID
                    }),
                    true,
                )
            }
            (Severity::Warning, true) if r < 60 => text(self.pick(&WARNING_KEYWORD)),
            (Severity::Warning, true) => text(self.pick(&WARNING_PLAIN)),
            (Severity::Warning, false) => text(self.pick(&WARNING_KEYWORD)),
            (Severity::Error, true) if r < 3 => (
                Body::Http {
                    status: self.pick(&[400, 409, 422]),
                    login: false,
                },
                false,
            ),
            (Severity::Error, _) if r < 30 => (
                Body::Http {
                    status: self.pick(&SERVER_STATUSES),
                    login: false,
                },
                false,
            ),
            (Severity::Error, _) if r < 35 => (Body::Text(self.pick(&SSHD_FAILED)), true),
            (Severity::Error, true) if r < 75 => text(self.pick(&ERROR_KEYWORD)),
            (Severity::Error, true) => text(self.pick(&ERROR_PLAIN)),
            (Severity::Error, false) => text(self.pick(&ERROR_KEYWORD)),
            (Severity::Critical, true) if r < 10 => (
                Body::Http {
                    status: self.pick(&[500, 503]),
                    login: false,
                },
                false,
            ),
            (Severity::Critical, true) if r < 70 => text(self.pick(&CRITICAL_KEYWORD)),
            (Severity::Critical, true) => text(self.pick(&CRITICAL_PLAIN)),
            (Severity::Critical, false) => text(self.pick(&CRITICAL_KEYWORD)),
        }
    }

    /// A 4xx response: 15 % are 401s on a login path, the rest other 4xx on API paths.
    fn client_error(&mut self) -> Body {
        if self.rng.random_range(0..100u32) < 15 {
            Body::Http {
                status: 401,
                login: true,
            }
        } else {
            Body::Http {
                status: self.pick(&CLIENT_STATUSES),
                login: false,
            }
        }
    }

    /// Appends the message of an HTTP event, closes it, and appends the HTTP fields.
    fn push_http(&mut self, buf: &mut Vec<u8>, status: u16, login: bool) {
        let mut path = std::mem::take(&mut self.scratch);
        path.clear();
        let method: &[u8] = if login {
            path.extend_from_slice(self.pick(&LOGIN_PATHS).as_bytes());
            b"POST"
        } else {
            let template = self.pick(&API_PATHS);
            self.expand(&mut path, template);
            match self.rng.random_range(0..100u32) {
                0..70 => b"GET",
                70..88 => b"POST",
                88..94 => b"PUT",
                94..97 => b"DELETE",
                _ => b"PATCH",
            }
        };
        let millis = self.millis();
        let shape = self.rng.random_range(0..3u32);
        if shape == 1 {
            buf.extend_from_slice(b"handled ");
        } else if shape == 2 {
            buf.extend_from_slice(b"request completed: ");
        }
        buf.extend_from_slice(method);
        buf.push(b' ');
        buf.extend_from_slice(&path);
        buf.extend_from_slice(match shape {
            0 => b" ",
            1 => b" status=",
            _ => b" -> ",
        });
        push_u64(buf, u64::from(status));
        buf.extend_from_slice(if shape == 1 { b" duration=" } else { b" in " });
        push_u64(buf, millis);
        buf.extend_from_slice(if shape == 1 { b"ms\"" } else { b" ms\"" });

        buf.extend_from_slice(b",\"method\":\"");
        buf.extend_from_slice(method);
        buf.extend_from_slice(b"\",\"path\":\"");
        buf.extend_from_slice(&path);
        buf.extend_from_slice(b"\",\"status\":");
        push_u64(buf, u64::from(status));
        buf.extend_from_slice(b",\"duration_ms\":");
        push_u64(buf, millis);
        self.scratch = path;
    }

    /// Appends `template` with its placeholders filled in.
    fn expand(&mut self, buf: &mut Vec<u8>, template: &str) {
        let mut parts = template.split('%');
        buf.extend_from_slice(parts.next().unwrap_or_default().as_bytes());
        for part in parts {
            let (code, rest) = part.split_at(1);
            self.placeholder(buf, code.as_bytes()[0]);
            buf.extend_from_slice(rest.as_bytes());
        }
    }

    fn placeholder(&mut self, buf: &mut Vec<u8>, code: u8) {
        let rng = &mut self.rng;
        match code {
            b'n' => push_u64(buf, rng.random_range(1..1000u64)),
            b'N' => push_u64(buf, rng.random_range(1000..1_000_000u64)),
            b'm' => {
                let millis = self.millis();
                push_u64(buf, millis);
            }
            b'i' => {
                let net = self.pick(&CLIENT_NETS);
                buf.extend_from_slice(net.as_bytes());
                push_u64(buf, self.rng.random_range(1..255u64));
            }
            b'u' => buf.extend_from_slice(self.pick(&USERS).as_bytes()),
            b'k' => buf.extend_from_slice(self.pick(&SSH_USERS).as_bytes()),
            b'o' => {
                buf.extend_from_slice(b"ord_");
                push_hex(buf, rng.random(), 12);
            }
            b'h' => push_hex(buf, rng.random(), 8),
            b'q' => buf.extend_from_slice(self.pick(&QUEUES).as_bytes()),
            b't' => buf.extend_from_slice(self.pick(&TABLES).as_bytes()),
            b's' => buf.extend_from_slice(SERVICES[self.pick_service()].as_bytes()),
            b'p' => push_u64(buf, rng.random_range(1024..65_536u64)),
            b'w' => buf.extend_from_slice(self.pick(&SEARCH_WORDS).as_bytes()),
            other => unreachable!("unknown placeholder %{}", other as char),
        }
    }

    /// A duration: mostly fast, with a long tail.
    fn millis(&mut self) -> u64 {
        if self.rng.random_range(0..10u32) < 7 {
            self.rng.random_range(1..80u64)
        } else {
            self.rng.random_range(80..3000u64)
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }
}

/// Writes `events` W1 lines.
pub(crate) fn write<W: Write>(
    events: u64,
    seed: u64,
    out: &mut Output<W>,
    stats: &mut GenerateStats,
) -> io::Result<()> {
    let mut generator = AppJson::new(seed);
    let mut line = Vec::with_capacity(512);
    for _ in 0..events {
        line.clear();
        let meta = generator.next_event(&mut line, None);
        out.line(&line)?;
        stats.record(meta);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::Value;

    use super::super::format::push_iso8601;
    use super::super::reference_classifier::{
        KEYWORDS, Verdict, classify_app_json, keyword_severity,
    };
    use super::*;
    use crate::Workload;

    /// Generates `n` events, returning each line with the generator's intent.
    fn events(n: usize, seed: u64) -> Vec<(String, EventMeta)> {
        let mut generator = AppJson::new(seed);
        let mut line = Vec::new();
        (0..n)
            .map(|_| {
                line.clear();
                let meta = generator.next_event(&mut line, None);
                (String::from_utf8(line.clone()).unwrap(), meta)
            })
            .collect()
    }

    fn has_keyword_substring(text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        KEYWORDS.iter().any(|(k, _)| lower.contains(k))
    }

    #[test]
    fn every_event_classifies_as_intended_and_fits_the_size_range() {
        for (line, meta) in events(100_000, 3) {
            let verdict = classify_app_json(&line);
            let intended = Verdict {
                severity: meta.severity,
                http_5xx: meta.http_5xx,
                failed_login: meta.failed_login,
            };
            assert_eq!(verdict, intended, "{line}");
            assert!(
                (MIN_LINE..=MAX_LINE).contains(&line.len()),
                "{} bytes: {line}",
                line.len()
            );
        }
    }

    #[test]
    fn info_events_contain_no_keyword_anywhere() {
        for (line, meta) in events(50_000, 4) {
            if meta.severity == Severity::Info {
                assert!(!has_keyword_substring(&line), "{line}");
            }
        }
    }

    #[test]
    fn severity_mix_matches_the_workload() {
        let n = 200_000;
        let stats = crate::generate(Workload::AppJson, n, 5, std::io::sink()).unwrap();
        let share = |s: Severity| stats.severity(s) as f64 / n as f64 * 100.0;
        let within = |s, lo, hi| {
            let pct = share(s);
            assert!(
                (lo..=hi).contains(&pct),
                "{s} at {pct:.2} %, want {lo}–{hi} %"
            );
        };
        within(Severity::Critical, 0.8, 1.2);
        within(Severity::Error, 6.5, 7.5);
        within(Severity::Warning, 11.3, 12.7);
        within(Severity::Info, 79.0, 81.0);
        let tags = stats.expected_tags;
        assert!(
            tags.http_5xx > n / 200 && tags.http_5xx < n / 25,
            "{tags:?}"
        );
        assert!(
            tags.failed_login > n / 500 && tags.failed_login < n / 50,
            "{tags:?}"
        );
    }

    #[test]
    fn fields_look_like_real_application_logs() {
        let lines = events(100_000, 6);
        let (mut with_level, mut with_status, mut login_401, mut sshd) = (0, 0, 0, 0);
        let mut level_keys = HashSet::new();
        let mut services = HashSet::new();
        let mut previous_ts = String::new();
        for (line, meta) in &lines {
            let event: Value = serde_json::from_str(line).unwrap();
            let ts = event
                .get("timestamp")
                .or_else(|| event.get("@timestamp"))
                .unwrap();
            let ts = ts.as_str().unwrap();
            let mut iso = Vec::new();
            push_iso8601(&mut iso, meta.ts_ms);
            assert_eq!(ts.as_bytes(), iso, "{line}");
            assert!(ts >= previous_ts.as_str(), "time goes backwards at {line}");
            previous_ts = ts.to_owned();

            let keys = ["level", "severity", "lvl", "levelname"];
            if let Some(key) = keys.iter().find(|k| event.get(**k).is_some()) {
                level_keys.insert(key.to_string());
                with_level += 1;
            } else if event.pointer("/log/level").is_some() {
                level_keys.insert("log.level".to_owned());
                with_level += 1;
            }
            let service = event["service"].as_str().unwrap();
            services.insert(service.to_owned());
            let host = event["host"].as_str().unwrap();
            assert!(SUBNETS.iter().any(|net| host.starts_with(net)), "{host}");
            let trace = event["trace_id"].as_str().unwrap();
            assert!(trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()));
            if let Some(status) = event.get("status") {
                with_status += 1;
                let path = event["path"].as_str().unwrap();
                assert!(event["message"].as_str().unwrap().contains(path));
                if status == 401 {
                    assert!(LOGIN_PATHS.contains(&path), "401 on {path}");
                    login_401 += 1;
                }
            }
            sshd += usize::from(meta.failed_login && event.get("status").is_none());
        }
        let pct = |n: usize| n as f64 / lines.len() as f64 * 100.0;
        assert!(
            (83.5..=86.5).contains(&pct(with_level)),
            "level on {:.1} %",
            pct(with_level)
        );
        assert!(
            (8.0..=12.0).contains(&pct(with_status)),
            "status on {:.1} %",
            pct(with_status)
        );
        assert_eq!(level_keys.len(), 5, "{level_keys:?}");
        assert_eq!(services.len(), SERVICES.len());
        assert!(login_401 > 50 && sshd > 50, "401s {login_401}, sshd {sshd}");
        let span = lines.last().unwrap().1.ts_ms - START_MS;
        assert!(
            (200_000..=400_000).contains(&span),
            "100k events span {span} ms"
        );
    }

    #[test]
    fn templates_respect_keyword_discipline() {
        let expect = |templates: &[&str], severity| {
            for t in templates {
                assert_eq!(keyword_severity(t), severity, "{t}");
            }
        };
        expect(&INFO, Severity::Info);
        expect(&WARNING_PLAIN, Severity::Info);
        expect(&ERROR_PLAIN, Severity::Info);
        expect(&CRITICAL_PLAIN, Severity::Info);
        expect(&[SSHD_INVALID], Severity::Info);
        expect(&WARNING_KEYWORD, Severity::Warning);
        expect(&ERROR_KEYWORD, Severity::Error);
        expect(&SSHD_FAILED, Severity::Error);
        expect(&CRITICAL_KEYWORD, Severity::Critical);
        let values = [
            &SERVICES[..],
            &SUBNETS,
            &CLIENT_NETS,
            &REGIONS,
            &USERS,
            &SSH_USERS,
            &QUEUES,
            &TABLES,
            &SEARCH_WORDS,
            &TENANTS,
            &THREADS,
            &LOGGERS,
            &INFO,
            &API_PATHS,
            &LOGIN_PATHS,
        ];
        for value in values.iter().flat_map(|v| v.iter()) {
            assert!(!has_keyword_substring(value), "{value}");
        }
    }

    #[test]
    fn fewer_events_give_a_prefix_and_output_is_not_trivially_compressible() {
        let run = |n| {
            let mut buf = Vec::new();
            crate::generate(Workload::AppJson, n, 8, &mut buf).unwrap();
            buf
        };
        let (short, long) = (run(1_000), run(20_000));
        assert!(long.starts_with(&short));
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        std::io::Write::write_all(&mut gz, &long).unwrap();
        let ratio = long.len() as f64 / gz.finish().unwrap().len() as f64;
        assert!((2.5..8.0).contains(&ratio), "gzip ratio {ratio:.1}");
    }
}
