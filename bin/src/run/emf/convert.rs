//! The pure part of the EMF emitter: the Prometheus text of
//! [`spate_engine::PrometheusExporter::render`] in, CloudWatch Embedded Metric
//! Format lines out.
//!
//! - Counters (and any series whose name ends in `_total`, the Prometheus
//!   convention for cumulative values) become the delta since the previous
//!   conversion; the first conversion reports the whole value (the counters
//!   start at zero with the process). A counter that went down (a restart of
//!   whatever feeds it) reports its new value. Zero deltas are emitted too, so
//!   a CloudWatch alarm sees "0", not "missing data".
//! - Gauges are their current value.
//! - Histograms become `<name>_count` and `<name>_sum` (deltas: the
//!   observations of the interval and their total) and, when the interval had
//!   observations, `<name>_p50` and `<name>_p99`: the quantiles of the
//!   interval's bucket deltas, interpolated within a bucket as PromQL's
//!   `histogram_quantile` does (an observation beyond the last bucket reads as
//!   that bucket's bound). Summaries give their 0.5 and 0.99 quantiles and
//!   `<name>_count`.
//! - Units: `Bytes` for names with `_bytes`, `Seconds` for names with
//!   `_seconds`, `Count` otherwise.
//! - Labels become dimensions, after the static dimensions (a label of the same
//!   name wins; an empty label value is left out; values are cut to 1024
//!   bytes). Series with the same dimensions share a line; a line carries at
//!   most 100 metrics and about [`MAX_METRICS_BYTES`] of metric names and
//!   values, so it stays well under Docker's 16 KiB log-line split. A series
//!   that would need more than 30 dimensions, or whose name collides with a
//!   dimension, is skipped and counted.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::exposition::{Kind, Labels, Sample, parse};
use super::per_actor::sum_over_actors;

/// EMF's limit of metrics per directive.
pub const MAX_METRICS_PER_LINE: usize = 100;
/// EMF's limit of dimensions per dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// CloudWatch's limit on a dimension value (bytes).
const MAX_DIMENSION_VALUE: usize = 1024;
/// Budget of the metric part of one line (names in the directive and at the
/// root, values), so that lines stay below 16 KiB.
pub const MAX_METRICS_BYTES: usize = 12 * 1024;

/// What a conversion is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfSettings {
    /// CloudWatch namespace of every metric.
    pub namespace: String,
    /// Metric families kept: those whose Prometheus name starts with one of
    /// these.
    pub include: Vec<String>,
    /// Dimensions added to every metric.
    pub dimensions: BTreeMap<String, String>,
    /// One series per actor for the `spate_actor_*` families; else summed
    /// over the actors ([`sum_over_actors`]).
    pub per_actor: bool,
}

/// The lines of one conversion.
#[derive(Debug, Default, PartialEq)]
pub struct Conversion {
    /// One JSON document per line, without the newline.
    pub lines: Vec<String>,
    /// Series left out (too many dimensions, or a name clash).
    pub skipped: u64,
}

/// Converts snapshots, remembering counter values between them.
#[derive(Debug)]
pub struct EmfConverter {
    settings: EmfSettings,
    last: HashMap<String, f64>,
}

/// One metric value bound for a line.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: String,
    unit: &'static str,
    value: f64,
}

impl EmfConverter {
    /// A converter with no history.
    pub fn new(settings: EmfSettings) -> Self {
        EmfConverter {
            settings,
            last: HashMap::new(),
        }
    }

    /// The EMF lines for a snapshot (`text`, Prometheus text format) taken at
    /// `timestamp_ms`.
    pub fn convert(&mut self, text: &str, timestamp_ms: i64) -> Conversion {
        let mut skipped = 0;
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Metric>> = BTreeMap::new();
        let mut metrics = Vec::new();
        // Bucket deltas per histogram series, for its quantiles.
        let mut buckets: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
        let mut samples = parse(text);
        if !self.settings.per_actor {
            samples = sum_over_actors(samples);
        }
        for sample in samples {
            if !self
                .settings
                .include
                .iter()
                .any(|p| sample.family.starts_with(p.as_str()))
            {
                continue;
            }
            if sample.kind == Kind::Histogram && sample.name == format!("{}_bucket", sample.family)
            {
                let Sample {
                    family,
                    name,
                    mut labels,
                    value,
                    ..
                } = sample;
                let Some(at) = labels.iter().position(|(k, _)| k == "le") else {
                    continue;
                };
                let le = match labels[at].1.as_str() {
                    "+Inf" => f64::INFINITY,
                    v => match v.parse::<f64>() {
                        Ok(le) => le,
                        Err(_) => continue,
                    },
                };
                let delta = self.delta(&name, &labels, value);
                labels.remove(at);
                buckets
                    .entry((family, labels))
                    .or_default()
                    .push((le, delta));
                continue;
            }
            if let Some(metric) = self.metric(sample) {
                metrics.push(metric);
            }
        }
        for ((family, labels), mut cumulative) in buckets {
            cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
            let unit = unit_of(&family);
            for (q, suffix) in [(0.5, "p50"), (0.99, "p99")] {
                if let Some(value) = bucket_quantile(q, &cumulative) {
                    let name = format!("{family}_{suffix}");
                    metrics.push((Metric { name, unit, value }, labels.clone()));
                }
            }
        }
        for (metric, labels) in metrics {
            let mut dims = self.settings.dimensions.clone();
            for (k, v) in labels {
                if !v.is_empty() {
                    dims.insert(k, truncate(v, MAX_DIMENSION_VALUE));
                }
            }
            if dims.len() > MAX_DIMENSIONS || dims.contains_key(&metric.name) {
                skipped += 1;
                continue;
            }
            groups.entry(dims).or_default().push(metric);
        }
        let mut lines = Vec::new();
        for (dims, mut metrics) in groups {
            metrics.sort_by(|a, b| a.name.cmp(&b.name));
            for chunk in chunks(metrics) {
                lines.push(self.line(&dims, &chunk, timestamp_ms));
            }
        }
        Conversion { lines, skipped }
    }

    /// The metric a sample becomes (with its labels), or none.
    fn metric(&mut self, sample: Sample) -> Option<(Metric, Labels)> {
        let Sample {
            family,
            kind,
            name,
            mut labels,
            value,
        } = sample;
        if !value.is_finite() {
            return None;
        }
        let (name, value, unit) = match kind {
            Kind::Summary | Kind::Histogram if name == family => {
                let at = labels.iter().position(|(k, _)| k == "quantile")?;
                let (_, q) = labels.remove(at);
                let suffix = match q.as_str() {
                    "0.5" => "p50",
                    "0.99" => "p99",
                    _ => return None,
                };
                let unit = unit_of(&family);
                (format!("{family}_{suffix}"), value, unit)
            }
            Kind::Summary | Kind::Histogram => {
                let unit = if name == format!("{family}_count") {
                    "Count"
                } else if kind == Kind::Histogram && name == format!("{family}_sum") {
                    unit_of(&family)
                } else {
                    return None;
                };
                let delta = self.delta(&name, &labels, value);
                (name, delta, unit)
            }
            Kind::Counter => {
                let delta = self.delta(&name, &labels, value);
                let unit = unit_of(&name);
                (name, delta, unit)
            }
            Kind::Gauge | Kind::Untyped if name.ends_with("_total") => {
                let delta = self.delta(&name, &labels, value);
                let unit = unit_of(&name);
                (name, delta, unit)
            }
            Kind::Gauge | Kind::Untyped => {
                let unit = unit_of(&name);
                (name, value, unit)
            }
        };
        Some((Metric { name, unit, value }, labels))
    }

    /// `value` minus the value this series had at the previous conversion.
    fn delta(&mut self, name: &str, labels: &[(String, String)], value: f64) -> f64 {
        let mut key = name.to_string();
        for (k, v) in labels {
            key.push('\u{0}');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        let previous = self.last.insert(key, value).unwrap_or(0.0);
        if value >= previous {
            value - previous
        } else {
            value
        }
    }

    fn line(
        &self,
        dims: &BTreeMap<String, String>,
        metrics: &[Metric],
        timestamp_ms: i64,
    ) -> String {
        let directive = json!({
            "Namespace": self.settings.namespace,
            "Dimensions": [dims.keys().collect::<Vec<_>>()],
            "Metrics": metrics
                .iter()
                .map(|m| json!({"Name": m.name, "Unit": m.unit}))
                .collect::<Vec<_>>(),
        });
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]}),
        );
        for (k, v) in dims {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for m in metrics {
            root.insert(m.name.clone(), number(m.value));
        }
        Value::Object(root).to_string()
    }
}

/// The `q` quantile of a histogram from its cumulative bucket counts
/// (`(upper bound, count)`, sorted, `+Inf` last), as PromQL's
/// `histogram_quantile` computes it; `None` without observations.
fn bucket_quantile(q: f64, cumulative: &[(f64, f64)]) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in cumulative {
        if count >= rank {
            if le.is_infinite() {
                // Beyond the last bound: the last finite bound is all we know.
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / in_bucket);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

/// Splits a group's metrics into lines: at most 100 each, and at most
/// [`MAX_METRICS_BYTES`] of names and values.
fn chunks(metrics: Vec<Metric>) -> Vec<Vec<Metric>> {
    let mut out: Vec<Vec<Metric>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for m in metrics {
        // The name twice (directive and root), the unit, a value, JSON syntax.
        let size = 2 * m.name.len() + 64;
        if !current.is_empty()
            && (current.len() == MAX_METRICS_PER_LINE || bytes + size > MAX_METRICS_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(m);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The EMF unit a metric's name implies.
fn unit_of(name: &str) -> &'static str {
    if name.contains("_bytes") {
        "Bytes"
    } else if name.contains("_seconds") {
        "Seconds"
    } else {
        "Count"
    }
}

/// A JSON number: an integer when the value is one (counts read better).
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(include: &[&str]) -> EmfSettings {
        EmfSettings {
            namespace: "Spate".into(),
            include: include.iter().map(|s| s.to_string()).collect(),
            dimensions: BTreeMap::from([("service".to_string(), "spate-prod".to_string())]),
            per_actor: true,
        }
    }

    fn lines(conversion: &Conversion) -> Vec<Value> {
        conversion
            .lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    const SNAPSHOT: &str = r#"# TYPE spate_events_total counter
spate_events_total{severity="INFO"} 10
spate_events_total{severity="ERROR"} 2
# TYPE spate_dead_letters_total counter
spate_dead_letters_total 1
# TYPE spate_journal_backlog_bytes gauge
spate_journal_backlog_bytes 4096
# TYPE spate_actor_blocked_seconds_total gauge
spate_actor_blocked_seconds_total{actor="lake"} 1.5
# TYPE spate_http_request_duration_seconds summary
spate_http_request_duration_seconds{path="/v1/logs",quantile="0"} 0.001
spate_http_request_duration_seconds{path="/v1/logs",quantile="0.5"} 0.002
spate_http_request_duration_seconds{path="/v1/logs",quantile="0.99"} 0.25
spate_http_request_duration_seconds_sum{path="/v1/logs"} 3.5
spate_http_request_duration_seconds_count{path="/v1/logs"} 40
# TYPE spate_other_total counter
spate_other_total 7
"#;

    #[test]
    fn counters_are_deltas_gauges_values_summaries_quantiles() {
        let mut c = EmfConverter::new(settings(&[
            "spate_events",
            "spate_dead",
            "spate_journal",
            "spate_actor",
            "spate_http",
        ]));
        let first = c.convert(SNAPSHOT, 1_000);
        assert_eq!(first.skipped, 0);
        let docs = lines(&first);
        // One line per dimension set: {service}, {service, severity} x2,
        // {service, actor}, {service, path}.
        assert_eq!(docs.len(), 5, "{docs:#?}");
        let plain = docs
            .iter()
            .find(|d| {
                d.get("severity").is_none() && d.get("actor").is_none() && d.get("path").is_none()
            })
            .unwrap();
        assert_eq!(plain["spate_dead_letters_total"], 1);
        assert_eq!(plain["spate_journal_backlog_bytes"], 4096);
        assert_eq!(plain["service"], "spate-prod");
        assert!(plain.get("spate_other_total").is_none(), "not included");
        let metrics = &plain["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(
            metrics[0],
            json!({"Name": "spate_dead_letters_total", "Unit": "Count"})
        );
        assert_eq!(
            metrics[1],
            json!({"Name": "spate_journal_backlog_bytes", "Unit": "Bytes"})
        );
        let info = docs.iter().find(|d| d["severity"] == "INFO").unwrap();
        assert_eq!(info["spate_events_total"], 10);
        assert_eq!(
            info["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service", "severity"]])
        );
        assert_eq!(info["_aws"]["Timestamp"], 1_000);
        let http = docs.iter().find(|d| d["path"] == "/v1/logs").unwrap();
        assert_eq!(http["spate_http_request_duration_seconds_p50"], 0.002);
        assert_eq!(http["spate_http_request_duration_seconds_p99"], 0.25);
        assert_eq!(http["spate_http_request_duration_seconds_count"], 40);
        assert!(http.get("quantile").is_none());
        assert_eq!(
            http["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );

        // Second snapshot: counters report what happened since.
        let next = SNAPSHOT
            .replace("{severity=\"INFO\"} 10", "{severity=\"INFO\"} 25")
            .replace(
                "spate_journal_backlog_bytes 4096",
                "spate_journal_backlog_bytes 100",
            )
            .replace("{actor=\"lake\"} 1.5", "{actor=\"lake\"} 4")
            .replace(
                "_count{path=\"/v1/logs\"} 40",
                "_count{path=\"/v1/logs\"} 41",
            );
        let docs = lines(&c.convert(&next, 2_000));
        let info = docs.iter().find(|d| d["severity"] == "INFO").unwrap();
        assert_eq!(info["spate_events_total"], 15);
        let error = docs.iter().find(|d| d["severity"] == "ERROR").unwrap();
        assert_eq!(error["spate_events_total"], 0, "zero deltas are emitted");
        let plain = docs
            .iter()
            .find(|d| {
                d.get("severity").is_none() && d.get("actor").is_none() && d.get("path").is_none()
            })
            .unwrap();
        assert_eq!(plain["spate_journal_backlog_bytes"], 100);
        assert_eq!(plain["spate_dead_letters_total"], 0);
        let lake = docs.iter().find(|d| d["actor"] == "lake").unwrap();
        assert_eq!(lake["spate_actor_blocked_seconds_total"], 2.5);
        assert_eq!(
            lake["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
        let http = docs.iter().find(|d| d["path"] == "/v1/logs").unwrap();
        assert_eq!(http["spate_http_request_duration_seconds_count"], 1);

        // A counter that went down reports its new value.
        let reset = next.replace("{severity=\"INFO\"} 25", "{severity=\"INFO\"} 3");
        let docs = lines(&c.convert(&reset, 3_000));
        let info = docs.iter().find(|d| d["severity"] == "INFO").unwrap();
        assert_eq!(info["spate_events_total"], 3);
    }

    fn histogram(buckets: [u64; 4], sum: f64) -> String {
        let les = ["0.1", "0.5", "1", "+Inf"];
        let mut text =
            "# HELP spate_commit_seconds Commit time.\n# TYPE spate_commit_seconds histogram\n"
                .to_string();
        for (le, n) in les.iter().zip(buckets) {
            text.push_str(&format!(
                "spate_commit_seconds_bucket{{sink=\"lake\",le=\"{le}\"}} {n}\n"
            ));
        }
        text.push_str(&format!(
            "spate_commit_seconds_sum{{sink=\"lake\"}} {sum}\nspate_commit_seconds_count{{sink=\"lake\"}} {}\n",
            buckets[3]
        ));
        text
    }

    #[test]
    fn histograms_give_the_interval_quantiles_count_and_sum() {
        let mut c = EmfConverter::new(settings(&["spate_commit"]));
        let doc = |c: &mut EmfConverter, text: &str| lines(&c.convert(text, 0)).remove(0);
        let first = doc(&mut c, &histogram([0, 0, 0, 0], 0.0));
        assert_eq!(first["sink"], "lake");
        assert_eq!(first["spate_commit_seconds_count"], 0);
        assert_eq!(first["spate_commit_seconds_sum"], 0);
        assert!(
            first.get("spate_commit_seconds_p50").is_none(),
            "no observation, no quantile: {first}"
        );
        // 100 observations: 50 up to 0.1 s, 40 up to 0.5 s, 9 up to 1 s, 1 above.
        let second = doc(&mut c, &histogram([50, 90, 99, 100], 40.0));
        assert_eq!(second["spate_commit_seconds_count"], 100);
        assert_eq!(second["spate_commit_seconds_sum"], 40);
        assert_eq!(second["spate_commit_seconds_p50"], 0.1);
        assert_eq!(second["spate_commit_seconds_p99"], 1);
        assert!(second.get("le").is_none());
        let units: Vec<(&str, &str)> = second["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["Name"].as_str().unwrap(), m["Unit"].as_str().unwrap()))
            .collect();
        assert_eq!(
            units,
            [
                ("spate_commit_seconds_count", "Count"),
                ("spate_commit_seconds_p50", "Seconds"),
                ("spate_commit_seconds_p99", "Seconds"),
                ("spate_commit_seconds_sum", "Seconds"),
            ]
        );
        // The next interval's quantiles come from its own observations only:
        // 10 above the last bound read as that bound.
        let third = doc(&mut c, &histogram([50, 90, 99, 110], 70.0));
        assert_eq!(third["spate_commit_seconds_count"], 10);
        assert_eq!(third["spate_commit_seconds_sum"], 30);
        assert_eq!(third["spate_commit_seconds_p50"], 1);
        assert_eq!(third["spate_commit_seconds_p99"], 1);
    }

    #[test]
    fn bucket_quantiles_interpolate_like_promql() {
        let buckets = [
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 99.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(bucket_quantile(0.5, &buckets), Some(0.1));
        assert!((bucket_quantile(0.7, &buckets).unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(bucket_quantile(0.995, &buckets), Some(1.0));
        assert_eq!(
            bucket_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(bucket_quantile(0.5, &[]), None);
    }

    #[test]
    fn labels_are_parsed_with_escapes_and_win_over_static_dimensions() {
        let text = "# TYPE spate_x_total counter\nspate_x_total{service=\"a \\\"q\\\" \\\\ b\",empty=\"\"} 4\n";
        let mut c = EmfConverter::new(settings(&["spate_x"]));
        let docs = lines(&c.convert(text, 0));
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["service"], "a \"q\" \\ b");
        assert!(
            docs[0].get("empty").is_none(),
            "empty label values are left out"
        );
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service"]])
        );
    }

    #[test]
    fn more_than_100_metrics_split_into_lines_of_at_most_100() {
        let mut text = String::new();
        for i in 0..250 {
            text.push_str(&format!("# TYPE spate_m{i:03} gauge\nspate_m{i:03} {i}\n"));
        }
        let mut c = EmfConverter::new(settings(&["spate_m"]));
        let conversion = c.convert(&text, 0);
        let docs = lines(&conversion);
        let sizes: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(conversion.lines.iter().all(|l| l.len() < 16 * 1024));
        let total: i64 = (0..250).sum();
        let seen: i64 = docs
            .iter()
            .flat_map(|d| {
                (0..250)
                    .filter_map(move |i| d.get(format!("spate_m{i:03}")).and_then(Value::as_i64))
            })
            .sum();
        assert_eq!(seen, total, "every metric in exactly one line");
    }

    #[test]
    fn long_names_split_by_bytes() {
        let mut text = String::new();
        let long = "x".repeat(200);
        for i in 0..60 {
            text.push_str(&format!(
                "# TYPE spate_{long}{i:02} gauge\nspate_{long}{i:02} 1\n"
            ));
        }
        let mut c = EmfConverter::new(settings(&["spate_"]));
        let conversion = c.convert(&text, 0);
        assert!(conversion.lines.len() > 1);
        assert!(
            conversion.lines.iter().all(|l| l.len() < 16 * 1024),
            "{:?}",
            conversion.lines.iter().map(String::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn too_many_dimensions_and_name_clashes_are_skipped() {
        let mut s = settings(&["spate_"]);
        for i in 0..30 {
            s.dimensions.insert(format!("d{i:02}"), "v".into());
        }
        let mut c = EmfConverter::new(s);
        let conversion = c.convert("# TYPE spate_a gauge\nspate_a{x=\"1\"} 1\n", 0);
        assert_eq!(conversion.lines.len(), 0);
        assert_eq!(conversion.skipped, 1);
        let mut c = EmfConverter::new(settings(&["spate_"]));
        let conversion = c.convert("# TYPE spate_a gauge\nspate_a{spate_a=\"1\"} 1\n", 0);
        assert_eq!(conversion.skipped, 1);
    }

    #[test]
    fn non_finite_and_garbage_lines_are_left_out() {
        let text = "# TYPE spate_a gauge\nspate_a NaN\nspate_b{unterminated=\"x 1\n# HELP spate_c x\nspate_c 2\n";
        let mut c = EmfConverter::new(settings(&["spate_"]));
        let docs = lines(&c.convert(text, 0));
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["spate_c"], 2);
        assert!(docs[0].get("spate_a").is_none());
    }

    #[test]
    fn reads_what_the_prometheus_exporter_renders() {
        let exporter = spate_engine::PrometheusExporter::new_local();
        metrics::with_local_recorder(exporter.recorder(), || {
            metrics::counter!("spate_events_total", "severity" => "WARNING").increment(3);
            metrics::gauge!("spate_actor_mailbox_depth", "actor" => "decode").set(5.0);
            metrics::histogram!("spate_query_duration_seconds").record(0.5);
        });
        let mut c = EmfConverter::new(settings(&["spate_"]));
        let docs = lines(&c.convert(&exporter.render(), 0));
        let warning = docs.iter().find(|d| d["severity"] == "WARNING").unwrap();
        assert_eq!(warning["spate_events_total"], 3);
        let decode = docs.iter().find(|d| d["actor"] == "decode").unwrap();
        assert_eq!(decode["spate_actor_mailbox_depth"], 5);
        let plain = docs
            .iter()
            .find(|d| d.get("spate_query_duration_seconds_p50").is_some())
            .unwrap();
        assert_eq!(plain["spate_query_duration_seconds_count"], 1);
        assert!((plain["spate_query_duration_seconds_p99"].as_f64().unwrap() - 0.5).abs() < 0.01);
    }
}
