//! What `spate top` shows, computed from two scrapes of `/metrics`: pure
//! functions, no I/O.
//!
//! Counters become rates over the time between the scrapes (a counter that
//! went down, a restarted process, counts from 0); gauges are shown as they
//! are in the second scrape.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series name (`_sum`, `_count`, `_bucket` included).
    pub name: String,
    /// Label names and values.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

impl Scrape {
    /// Reads the Prometheus text exposition format; lines that are not
    /// samples (comments, blanks, malformed) are skipped.
    pub fn parse(text: &str) -> Scrape {
        Scrape {
            samples: text.lines().filter_map(parse_sample).collect(),
        }
    }

    /// The sum of `name` over the series whose label `key` is `value`.
    fn sum_where(&self, name: &str, key: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && s.labels.get(key).map(String::as_str) == Some(value))
            .map(|s| s.value)
            .sum()
    }

    /// The value of `name` without labels, when present.
    fn single(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels.is_empty())
            .map(|s| s.value)
    }

    /// The values of label `key` on the series of `name`.
    fn label_values(&self, name: &str, key: &str) -> BTreeSet<String> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter_map(|s| s.labels.get(key).cloned())
            .collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t'])?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Reads `a="x",b="y"}` and returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_string();
        let mut chars = text[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in chars {
            match (escaped, c) {
                (true, c) => {
                    value.push(if c == 'n' { '\n' } else { c });
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        labels.insert(key, value);
        text = &text[end?..];
    }
}

/// One actor's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActorRow {
    /// The actor (`decode`, `lake-0`, `hot`, ...).
    pub actor: String,
    /// Events handled per second.
    pub in_per_sec: f64,
    /// Events sent downstream per second (fan-out copies counted).
    pub out_per_sec: f64,
    /// Batches in its mailbox.
    pub mailbox: f64,
    /// Share of the time it spent blocked on a full mailbox downstream
    /// (0 to 1).
    pub backpressure: f64,
    /// Failures since start.
    pub errors: f64,
    /// Restarts since start.
    pub restarts: f64,
}

/// One source's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRow {
    /// The source (`http`, a file, a queue, ...).
    pub source: String,
    /// Age of the oldest batch not yet delivered to every sink, seconds.
    pub lag_seconds: f64,
    /// Events awaiting their verdict.
    pub inflight_events: f64,
    /// Their input bytes.
    pub inflight_bytes: f64,
    /// Batches delivered per second.
    pub delivered_per_sec: f64,
    /// Batches failed since start.
    pub failed: f64,
}

/// One screen of `spate top`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    /// Seconds between the two scrapes the rates come from.
    pub interval_secs: f64,
    /// Resident memory of the process, bytes.
    pub memory_bytes: Option<f64>,
    /// CPU cores busy on average (CPU seconds per second).
    pub cpu_cores: Option<f64>,
    /// Events decoded per second (all severities).
    pub events_per_sec: f64,
    /// Per actor, by name.
    pub actors: Vec<ActorRow>,
    /// Per source, by name.
    pub sources: Vec<SourceRow>,
}

/// The increase of a counter per second; a counter that went down (the
/// process restarted) counts from 0.
fn rate(previous: f64, current: f64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    let increase = if current >= previous {
        current - previous
    } else {
        current
    };
    increase / secs
}

/// The frame between `previous` and `current`, scraped `secs` apart.
pub fn frame(previous: &Scrape, current: &Scrape, secs: f64) -> Frame {
    let counter_rate = |name: &str, key: &str, value: &str| {
        rate(
            previous.sum_where(name, key, value),
            current.sum_where(name, key, value),
            secs,
        )
    };
    let actors = current
        .label_values("spate_actor_events_received_total", "actor")
        .into_iter()
        .chain(current.label_values("spate_actor_mailbox_depth", "actor"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|actor| ActorRow {
            in_per_sec: counter_rate("spate_actor_events_received_total", "actor", &actor),
            out_per_sec: counter_rate("spate_actor_events_sent_total", "actor", &actor),
            mailbox: current.sum_where("spate_actor_mailbox_depth", "actor", &actor),
            backpressure: counter_rate("spate_actor_backpressure_seconds_sum", "actor", &actor)
                .min(1.0),
            errors: current.sum_where("spate_actor_errors_total", "actor", &actor),
            restarts: current.sum_where("spate_actor_restarts_total", "actor", &actor),
            actor,
        })
        .collect();
    let sources = current
        .label_values("spate_source_oldest_unacked_age_seconds", "source")
        .into_iter()
        .map(|source| {
            let settled = |verdict: &str, scrape: &Scrape| {
                scrape
                    .samples
                    .iter()
                    .filter(|s| {
                        s.name == "spate_source_batches_settled_total"
                            && s.labels.get("source") == Some(&source)
                            && s.labels.get("verdict").map(String::as_str) == Some(verdict)
                    })
                    .map(|s| s.value)
                    .sum::<f64>()
            };
            SourceRow {
                lag_seconds: current.sum_where(
                    "spate_source_oldest_unacked_age_seconds",
                    "source",
                    &source,
                ),
                inflight_events: current.sum_where(
                    "spate_source_inflight_events",
                    "source",
                    &source,
                ),
                inflight_bytes: current.sum_where("spate_source_inflight_bytes", "source", &source),
                delivered_per_sec: rate(
                    settled("delivered", previous),
                    settled("delivered", current),
                    secs,
                ),
                failed: settled("failed", current),
                source,
            }
        })
        .collect();
    let events = |scrape: &Scrape| {
        scrape
            .samples
            .iter()
            .filter(|s| s.name == "spate_events_total")
            .map(|s| s.value)
            .sum::<f64>()
    };
    let cpu = match (
        previous.single("process_cpu_seconds_total"),
        current.single("process_cpu_seconds_total"),
    ) {
        (Some(a), Some(b)) => Some(rate(a, b, secs)),
        _ => None,
    };
    Frame {
        interval_secs: secs,
        memory_bytes: current.single("process_resident_memory_bytes"),
        cpu_cores: cpu,
        events_per_sec: rate(events(previous), events(current), secs),
        actors,
        sources,
    }
}

/// A rate or count for the table: whole numbers without decimals, small
/// ones with one or two.
pub fn number(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Bytes as KiB/MiB/GiB.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = value;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{}{}", number(value), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = r#"# HELP spate_actor_events_received_total Events in the batches the actor handled.
# TYPE spate_actor_events_received_total counter
spate_actor_events_received_total{actor="decode"} 100
spate_actor_events_received_total{actor="hot"} 10
spate_actor_events_sent_total{actor="decode"} 300
spate_actor_mailbox_depth{actor="decode"} 1
spate_actor_backpressure_seconds_sum{actor="decode"} 0.5
spate_actor_errors_total{actor="hot",class="external"} 2
spate_actor_restarts_total{actor="hot"} 1
spate_source_oldest_unacked_age_seconds{source="http"} 0
spate_source_inflight_events{source="http"} 0
spate_source_batches_settled_total{source="http",verdict="delivered"} 5
spate_source_batches_settled_total{source="http",verdict="failed"} 0
spate_events_total{severity="INFO"} 90
spate_events_total{severity="ERROR"} 10
process_cpu_seconds_total 10
process_resident_memory_bytes 1048576
"#;

    const SECOND: &str = r#"spate_actor_events_received_total{actor="decode"} 300
spate_actor_events_received_total{actor="hot"} 4
spate_actor_events_sent_total{actor="decode"} 900
spate_actor_mailbox_depth{actor="decode"} 3
spate_actor_backpressure_seconds_sum{actor="decode"} 1.5
spate_actor_errors_total{actor="hot",class="external"} 3
spate_actor_errors_total{actor="hot",class="internal"} 1
spate_actor_restarts_total{actor="hot"} 1
spate_source_oldest_unacked_age_seconds{source="http"} 1.25
spate_source_inflight_events{source="http"} 40
spate_source_inflight_bytes{source="http"} 4096
spate_source_batches_settled_total{source="http",verdict="delivered"} 9
spate_source_batches_settled_total{source="http",verdict="failed"} 1
spate_events_total{severity="INFO"} 270
spate_events_total{severity="ERROR"} 30
process_cpu_seconds_total 11
process_resident_memory_bytes 2097152
"#;

    #[test]
    fn samples_and_escaped_labels_parse() {
        let scrape = Scrape::parse(
            "# TYPE x counter\nx_total{a=\"q\\\"uote\",b=\"back\\\\slash\\n\"} 3 1700000000\ny +Inf\nbroken{a=\"x\" 1\n\n",
        );
        assert_eq!(scrape.samples.len(), 2);
        assert_eq!(scrape.samples[0].labels["a"], "q\"uote");
        assert_eq!(scrape.samples[0].labels["b"], "back\\slash\n");
        assert_eq!(scrape.samples[0].value, 3.0);
        assert_eq!(scrape.samples[1].value, f64::INFINITY);
    }

    #[test]
    fn rates_come_from_two_scrapes() {
        let frame = frame(&Scrape::parse(FIRST), &Scrape::parse(SECOND), 2.0);
        let decode = &frame.actors[0];
        assert_eq!(decode.actor, "decode");
        assert_eq!(decode.in_per_sec, 100.0);
        assert_eq!(decode.out_per_sec, 300.0);
        assert_eq!(decode.mailbox, 3.0);
        assert_eq!(decode.backpressure, 0.5);
        let hot = &frame.actors[1];
        // A counter that went down (a restart) counts from 0.
        assert_eq!(hot.in_per_sec, 2.0);
        assert_eq!((hot.errors, hot.restarts), (4.0, 1.0));
        let http = &frame.sources[0];
        assert_eq!(http.source, "http");
        assert_eq!(http.lag_seconds, 1.25);
        assert_eq!((http.inflight_events, http.inflight_bytes), (40.0, 4096.0));
        assert_eq!((http.delivered_per_sec, http.failed), (2.0, 1.0));
        assert_eq!(frame.events_per_sec, 100.0);
        assert_eq!(frame.cpu_cores, Some(0.5));
        assert_eq!(frame.memory_bytes, Some(2_097_152.0));
    }

    #[test]
    fn no_time_no_rate() {
        let frame = frame(&Scrape::parse(FIRST), &Scrape::parse(SECOND), 0.0);
        assert_eq!(frame.actors[0].in_per_sec, 0.0);
        let empty = super::frame(&Scrape::default(), &Scrape::default(), 1.0);
        assert!(empty.actors.is_empty() && empty.sources.is_empty());
        assert_eq!(empty.memory_bytes, None);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1234.56), "1235");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(2.345), "2.3");
        assert_eq!(number(0.125), "0.12");
        assert_eq!(bytes(2_097_152.0), "2MiB");
        assert_eq!(bytes(512.0), "512B");
    }
}
