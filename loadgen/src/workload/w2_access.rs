//! W2 access: Apache/nginx combined log format lines.
//!
//! `IP - user [23/Nov/2026:10:00:00 +0000] "GET /path HTTP/1.1" 200 1234 "referrer" "agent"`.
//! Status mix: 88 % 2xx/3xx, 8 % 4xx, 4 % 5xx, which decides the intended severity (5xx
//! ERROR, 4xx WARNING, else INFO). 401 only ever answers a login path, so every 401 is a
//! `failed_login`; crawlers and vulnerability scanners supply most of the 404s.

use std::io::{self, Write};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::format::{START_MS, push_clf_time, push_hex, push_u64};
use super::{EventMeta, Output};
use crate::{GenerateStats, Severity};

/// Client networks, most frequent first (crawlers, then customers, then the office).
const CLIENT_NETS: [&str; 10] = [
    "203.0.113.",
    "198.51.100.",
    "66.249.66.",
    "81.2.69.",
    "192.0.2.",
    "157.55.39.",
    "185.199.110.",
    "93.184.216.",
    "172.58.12.",
    "10.0.4.",
];
const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
/// Pages and assets that answer 2xx/3xx. Placeholders: %N number, %n small number, %h hex,
/// %w search words.
const PAGES: [&str; 17] = [
    "/",
    "/products/%N",
    "/products/%N/reviews?page=%n",
    "/category/shoes?page=%n&sort=price",
    "/search?q=%w",
    "/cart",
    "/checkout",
    "/account/orders",
    "/static/js/app.%h.js",
    "/static/css/main.%h.css",
    "/images/products/%N.jpg",
    "/images/products/%N.jpg",
    "/favicon.ico",
    "/api/v1/cart/items",
    "/api/v2/products/%N",
    "/robots.txt",
    "/login",
];
/// What scanners and stale links ask for.
const MISSING: [&str; 8] = [
    "/wp-login.php",
    "/.env",
    "/admin/config.php",
    "/products/%N",
    "/images/products/%N.jpg",
    "/xmlrpc.php",
    "/.git/config",
    "/phpmyadmin/index.php",
];
/// Endpoints that sometimes answer 5xx.
const BACKENDS: [&str; 6] = [
    "/checkout",
    "/api/v1/cart/items",
    "/api/v2/products/%N",
    "/api/v1/payments",
    "/search?q=%w",
    "/account/orders",
];
/// The only paths that ever answer 401.
const LOGIN_PATHS: [&str; 2] = ["/login", "/api/v1/auth/login"];
const SEARCH_WORDS: [&str; 6] = [
    "shoes",
    "red+dress",
    "laptop",
    "coffee+grinder",
    "tent",
    "socks",
];
const REFERRERS: [&str; 5] = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/x7Qa9",
    "https://news.example.org/deals",
];
const AGENTS: [&str; 12] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.11.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
];

/// Generates W2 lines one at a time into a caller-owned buffer.
pub(crate) struct AccessLog {
    rng: SmallRng,
    clock_ms: u64,
}

impl AccessLog {
    pub(crate) fn new(seed: u64) -> Self {
        AccessLog {
            rng: SmallRng::seed_from_u64(seed),
            clock_ms: START_MS,
        }
    }

    pub(crate) fn next_event(&mut self, buf: &mut Vec<u8>) -> EventMeta {
        self.clock_ms += self.rng.random_range(0..=4u64);
        let (status, path, method): (u16, &str, &str) = match self.rng.random_range(0..1000u32) {
            0..40 => {
                let status = self.pick(&[500, 502, 502, 503, 503, 503, 504, 500, 500, 504]);
                let path = self.pick(&BACKENDS);
                let method = if path == "/checkout" || path == "/api/v1/payments" {
                    "POST"
                } else {
                    "GET"
                };
                (status, path, method)
            }
            40..120 => match self.rng.random_range(0..100u32) {
                0..12 => (401, self.pick(&LOGIN_PATHS), "POST"),
                12..67 => (404, self.pick(&MISSING), "GET"),
                67..77 => (
                    403,
                    self.pick(&["/admin/", "/.git/config", "/account/orders"]),
                    "GET",
                ),
                77..87 => (400, self.pick(&["/api/v1/cart/items", "/checkout"]), "POST"),
                87..90 => (405, "/api/v2/products/%N", "DELETE"),
                _ => (
                    429,
                    self.pick(&["/search?q=%w", "/api/v2/products/%N"]),
                    "GET",
                ),
            },
            _ => {
                let status = match self.rng.random_range(0..100u32) {
                    0..78 => 200,
                    78..88 => 304,
                    88..91 => 301,
                    91..96 => 302,
                    96..98 => 204,
                    _ => 206,
                };
                let path = self.pick(&PAGES);
                let method = match (path, status) {
                    ("/login", 302) | ("/checkout", 302) | ("/api/v1/cart/items", 204) => "POST",
                    (_, 200) if self.rng.random_range(0..100u32) < 2 => "HEAD",
                    _ => "GET",
                };
                (status, path, method)
            }
        };

        // Client and identity.
        let a = self.rng.random_range(0..CLIENT_NETS.len());
        let b = self.rng.random_range(0..CLIENT_NETS.len());
        buf.extend_from_slice(CLIENT_NETS[a.min(b)].as_bytes());
        push_u64(buf, self.rng.random_range(1..255u64));
        buf.extend_from_slice(b" - ");
        if self.rng.random_range(0..100u32) < 4 {
            buf.extend_from_slice(self.pick(&USERS).as_bytes());
        } else {
            buf.push(b'-');
        }
        buf.extend_from_slice(b" [");
        push_clf_time(buf, self.clock_ms);
        buf.extend_from_slice(b"] \"");

        // Request line.
        buf.extend_from_slice(method.as_bytes());
        buf.push(b' ');
        self.expand(buf, path);
        buf.extend_from_slice(match self.rng.random_range(0..100u32) {
            0..70 => b" HTTP/1.1\" ",
            70..98 => b" HTTP/2.0\" ",
            _ => b" HTTP/1.0\" ",
        });
        push_u64(buf, u64::from(status));
        buf.push(b' ');
        match status {
            204 | 304 => buf.push(b'-'),
            200 | 206 => {
                let size = if self.rng.random_range(0..100u32) < 60 {
                    self.rng.random_range(200..20_000u64)
                } else {
                    self.rng.random_range(20_000..600_000u64)
                };
                push_u64(buf, size);
            }
            _ => push_u64(buf, self.rng.random_range(150..1200u64)),
        }

        // Referrer and user agent.
        buf.extend_from_slice(b" \"");
        match self.rng.random_range(0..100u32) {
            0..45 => buf.push(b'-'),
            45..85 => {
                buf.extend_from_slice(b"https://shop.example.com");
                let page = self.pick(&PAGES[..8]);
                self.expand(buf, page);
            }
            _ => buf.extend_from_slice(self.pick(&REFERRERS).as_bytes()),
        }
        buf.extend_from_slice(b"\" \"");
        let a = self.rng.random_range(0..AGENTS.len());
        let b = self.rng.random_range(0..AGENTS.len());
        buf.extend_from_slice(AGENTS[a.min(b)].as_bytes());
        buf.push(b'"');

        EventMeta {
            severity: match status {
                500..=599 => Severity::Error,
                400..=499 => Severity::Warning,
                _ => Severity::Info,
            },
            http_5xx: (500..=599).contains(&status),
            failed_login: status == 401,
            ts_ms: self.clock_ms,
        }
    }

    fn expand(&mut self, buf: &mut Vec<u8>, template: &str) {
        let mut parts = template.split('%');
        buf.extend_from_slice(parts.next().unwrap_or_default().as_bytes());
        for part in parts {
            let (code, rest) = part.split_at(1);
            match code {
                "N" => push_u64(buf, self.rng.random_range(1000..100_000u64)),
                "n" => push_u64(buf, self.rng.random_range(1..40u64)),
                "h" => push_hex(buf, self.rng.random(), 8),
                "w" => buf.extend_from_slice(self.pick(&SEARCH_WORDS).as_bytes()),
                other => unreachable!("unknown placeholder %{other}"),
            }
            buf.extend_from_slice(rest.as_bytes());
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }
}

/// Writes `events` W2 lines.
pub(crate) fn write<W: Write>(
    events: u64,
    seed: u64,
    out: &mut Output<W>,
    stats: &mut GenerateStats,
) -> io::Result<()> {
    let mut generator = AccessLog::new(seed);
    let mut line = Vec::with_capacity(512);
    for _ in 0..events {
        line.clear();
        let meta = generator.next_event(&mut line);
        out.line(&line)?;
        stats.record(meta);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::reference_classifier::{KEYWORDS, Verdict, classify_access};
    use super::*;
    use crate::Workload;

    fn lines(n: usize, seed: u64) -> Vec<(String, EventMeta)> {
        let mut generator = AccessLog::new(seed);
        let mut line = Vec::new();
        (0..n)
            .map(|_| {
                line.clear();
                let meta = generator.next_event(&mut line);
                (String::from_utf8(line.clone()).unwrap(), meta)
            })
            .collect()
    }

    #[test]
    fn lines_are_combined_log_format_and_classify_as_intended() {
        let mut previous_ms = START_MS;
        for (line, meta) in lines(100_000, 21) {
            let verdict = classify_access(&line);
            let intended = Verdict {
                severity: meta.severity,
                http_5xx: meta.http_5xx,
                failed_login: meta.failed_login,
            };
            assert_eq!(verdict, intended, "{line}");

            // IP - user [time] "METHOD path PROTO" status bytes "referrer" "agent"
            let (head, rest) = line.split_once(" [").unwrap();
            let mut head = head.split(' ');
            head.next().unwrap().parse::<Ipv4Addr>().unwrap();
            assert_eq!(head.next(), Some("-"));
            assert!(head.next().is_some_and(|u| !u.is_empty()));
            let (time, rest) = rest.split_once("] \"").unwrap();
            let mut expected_time = Vec::new();
            push_clf_time(&mut expected_time, meta.ts_ms);
            assert_eq!(time.as_bytes(), expected_time, "{line}");
            assert!(meta.ts_ms >= previous_ms);
            previous_ms = meta.ts_ms;
            let parts: Vec<&str> = rest.split('"').collect();
            assert_eq!(parts.len(), 6, "{line}");
            let request: Vec<&str> = parts[0].split(' ').collect();
            assert_eq!(request.len(), 3, "{line}");
            assert!(["GET", "POST", "PUT", "DELETE", "HEAD"].contains(&request[0]));
            assert!(request[1].starts_with('/') && request[2].starts_with("HTTP/"));
            let fields: Vec<&str> = parts[1].split_ascii_whitespace().collect();
            assert_eq!(fields.len(), 2, "{line}");
            assert!(
                fields[1] == "-" || fields[1].parse::<u64>().is_ok(),
                "{line}"
            );
            assert!(!parts[2].is_empty() && !parts[4].is_empty(), "{line}");
            assert_eq!((parts[3], parts[5]), (" ", ""), "{line}");
        }
    }

    #[test]
    fn status_mix_matches_the_workload() {
        let n = 200_000;
        let stats = crate::generate(Workload::Access, n, 22, std::io::sink()).unwrap();
        let pct = |s: Severity| stats.severity(s) as f64 / n as f64 * 100.0;
        assert!((87.3..=88.7).contains(&pct(Severity::Info)), "{stats:?}");
        assert!((7.5..=8.5).contains(&pct(Severity::Warning)), "{stats:?}");
        assert!((3.6..=4.4).contains(&pct(Severity::Error)), "{stats:?}");
        assert_eq!(stats.severity(Severity::Critical), 0);
        assert_eq!(
            stats.expected_tags.http_5xx,
            stats.severity(Severity::Error)
        );
        let failed_login = stats.expected_tags.failed_login as f64 / n as f64 * 100.0;
        assert!((0.7..=1.2).contains(&failed_login), "{stats:?}");
    }

    #[test]
    fn vocabulary_is_free_of_severity_keywords() {
        let values = [
            &CLIENT_NETS[..],
            &USERS,
            &PAGES,
            &MISSING,
            &BACKENDS,
            &LOGIN_PATHS,
            &SEARCH_WORDS,
            &REFERRERS,
            &AGENTS,
        ];
        for value in values.iter().flat_map(|v| v.iter()) {
            let lower = value.to_ascii_lowercase();
            assert!(!KEYWORDS.iter().any(|(k, _)| lower.contains(k)), "{value}");
        }
    }
}
