//! `spate demo`: push a realistic burst of current events to a running
//! `spate run`, so that a new user's first `spate hot` and `spate query`
//! show something.
//!
//! The events are application logs as services write them (JSON lines with
//! `timestamp`, a level, `service`, `host`, a message and, for requests,
//! `method`/`path`/`status`/`duration_ms`) from six services, stamped in the
//! last minute before the push. About one in ten is an ERROR, among them
//! upstream and database timeouts (`spate query --since 1h --severity error
//! --grep timeout` finds them); a few are WARNINGs (slow requests, failed
//! logins) and one is CRITICAL. The same `--seed` gives the same events
//! (but for their times).

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::plain_http::request;

/// What `spate demo` did.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DemoReport {
    /// Where the events went.
    pub target: String,
    /// Events sent.
    pub events: usize,
    /// Events per severity: INFO, WARNING, ERROR, CRITICAL.
    pub info: usize,
    /// WARNING events.
    pub warning: usize,
    /// ERROR events.
    pub error: usize,
    /// CRITICAL events.
    pub critical: usize,
    /// Services the events came from.
    pub services: Vec<String>,
}

impl DemoReport {
    /// The report as one sentence and the next commands to try.
    pub fn render(&self) -> String {
        format!(
            "sent {} events from {} services ({} INFO, {} WARNING, {} ERROR, {} CRITICAL) to {}\n\
             try: spate hot recent --severity warning\n     \
             spate query --since 1h --severity error --grep timeout\n",
            self.events,
            self.services.len(),
            self.info,
            self.warning,
            self.error,
            self.critical,
            self.target,
        )
    }
}

const SERVICES: [&str; 6] = ["api", "web", "payments", "auth", "orders", "worker"];

/// A small deterministic generator (xorshift64*): no dependency, and the
/// same seed gives the same stream.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The `n`-th of `count` events: its level and its JSON line, stamped
/// `ts_ms`.
fn event(dice: &mut Dice, index: usize, ts_ms: i64) -> (&'static str, Value) {
    let service = SERVICES[index % SERVICES.len()];
    let host = format!(
        "10.0.{}.{}",
        index % SERVICES.len() + 1,
        10 + dice.below(20)
    );
    let timestamp = spate_operators::sinks::hot::query::rfc3339_ms(ts_ms);
    let roll = dice.below(100);
    let ms = 5 + dice.below(120);
    let (level, message, http): (&str, String, Option<(&str, String, u16)>) = match (service, roll)
    {
        // The one CRITICAL of the stream.
        ("worker", _) if index == 41 => (
            "CRITICAL",
            "database connection pool exhausted: 50 of 50 connections in use".into(),
            None,
        ),
        ("api", 0..12) => (
            "ERROR",
            format!("upstream timeout calling payments after {} ms", 5000 + ms),
            Some(("POST", "/v1/checkout".into(), 504)),
        ),
        ("payments", 0..10) => (
            "ERROR",
            "card processor timeout after 10000 ms, retry scheduled".into(),
            None,
        ),
        ("orders", 0..8) => (
            "ERROR",
            format!("query timeout on orders_by_customer after {} ms", 3000 + ms),
            None,
        ),
        ("auth", 0..15) => (
            "WARNING",
            format!(
                "failed login for user u_{} from 203.0.113.{}",
                dice.below(900),
                dice.below(250)
            ),
            Some(("POST", "/login".into(), 401)),
        ),
        ("web", 0..10) => (
            "WARNING",
            format!("slow request: GET /search took {} ms", 2000 + ms * 10),
            Some(("GET", "/search".into(), 200)),
        ),
        ("api" | "web", _) => {
            let path = dice.pick(&["/v1/orders", "/v1/cart", "/healthz", "/v1/items/42"]);
            (
                "INFO",
                format!("request completed: GET {path} -> 200 in {ms} ms"),
                Some(("GET", path.to_string(), 200)),
            )
        }
        ("payments", _) => (
            "INFO",
            format!(
                "payment authorized for order ord_{:06} in {ms} ms",
                dice.below(1_000_000)
            ),
            None,
        ),
        ("auth", _) => (
            "INFO",
            format!("login ok for user u_{}", dice.below(900)),
            Some(("POST", "/login".into(), 200)),
        ),
        ("orders", _) => (
            "INFO",
            format!(
                "order ord_{:06} placed: {} items",
                dice.below(1_000_000),
                1 + dice.below(5)
            ),
            None,
        ),
        _ => (
            "INFO",
            format!(
                "processed batch of {} messages from orders.placed in {ms} ms",
                10 + dice.below(300)
            ),
            None,
        ),
    };
    let mut line = json!({
        "timestamp": timestamp,
        "level": level,
        "service": service,
        "host": host,
        "message": message,
        "env": "demo",
    });
    if let Some((method, path, status)) = http {
        line["method"] = method.into();
        line["path"] = path.into();
        line["status"] = status.into();
        line["duration_ms"] = ms.into();
    }
    (level, line)
}

/// `count` events stamped over the second before `now_ms` (oldest
/// first), as NDJSON, and the report of them.
pub fn events(count: usize, seed: u64, now_ms: i64, target: &str) -> (Vec<u8>, DemoReport) {
    let mut dice = Dice::new(seed);
    let mut body = Vec::new();
    let mut report = DemoReport {
        target: target.to_string(),
        events: count,
        info: 0,
        warning: 0,
        error: 0,
        critical: 0,
        services: Vec::new(),
    };
    for index in 0..count {
        // Spread over the last minute, 50 ms apart at most.
        let age = (count - 1 - index) as i64 * (60_000 / count.max(1) as i64).min(50);
        let (level, line) = event(&mut dice, index, now_ms - age);
        match level {
            "CRITICAL" => report.critical += 1,
            "ERROR" => report.error += 1,
            "WARNING" => report.warning += 1,
            _ => report.info += 1,
        }
        let service = SERVICES[index % SERVICES.len()].to_string();
        if !report.services.contains(&service) {
            report.services.push(service);
        }
        body.extend_from_slice(line.to_string().as_bytes());
        body.push(b'\n');
    }
    (body, report)
}

/// Sends `body` to `POST <target>/v1/logs`; an error unless it is accepted.
pub fn push(target: &str, token: Option<&str>, body: &[u8], timeout: Duration) -> Result<()> {
    let url = format!("{}/v1/logs", target.trim_end_matches('/'));
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    match request("POST", &url, &headers, body, timeout)? {
        200..=299 => Ok(()),
        401 => bail!("{url} answered 401: give the service's bearer token with --token"),
        status => bail!("{url} answered {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_current_varied_and_has_timeouts() {
        let now = 1_800_000_000_000;
        let (body, report) = events(120, 1, now, "http://127.0.0.1:8470");
        let lines: Vec<Value> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 120);
        assert_eq!(report.events, 120);
        assert_eq!(report.services.len(), 6);
        assert_eq!(report.critical, 1);
        assert!(report.error >= 3 && report.error <= 30, "{report:?}");
        assert!(report.warning >= 2, "{report:?}");
        assert_eq!(
            report.info + report.warning + report.error + report.critical,
            120
        );
        // Every event within the last minute, oldest first, the last one now.
        let last = spate_operators::sinks::hot::query::rfc3339_ms(now);
        assert_eq!(lines[119]["timestamp"], last.as_str());
        assert!(lines[0]["timestamp"].as_str().unwrap() >= "2027-01-15T07:59:00");
        let timeouts = lines
            .iter()
            .filter(|l| l["level"] == "ERROR")
            .filter(|l| l["message"].as_str().unwrap().contains("timeout"))
            .count();
        assert!(timeouts >= 3, "{timeouts}");
        // Deterministic but for the times.
        assert_eq!(events(120, 1, now, "x").0, body);
        assert_ne!(events(120, 2, now, "x").0, body);
    }

    #[test]
    fn the_report_names_the_next_commands() {
        let (_, report) = events(12, 1, 0, "http://127.0.0.1:8470");
        let text = report.render();
        assert!(text.starts_with("sent 12 events from 6 services"), "{text}");
        assert!(text.contains("spate query --since 1h --severity error --grep timeout"));
    }
}
