//! Closed windows as CloudWatch Embedded Metric Format lines, so that
//! CloudWatch alarms can be set on the window counts without Spate's own
//! alerting (the metric-filter-and-alarm setup of a Lambda design, with the
//! counting done here).
//!
//! For every closed window, [`WindowMetrics::lines`] gives:
//!
//! - per service and severity: a document with metric `WindowEvents` and
//!   dimension sets `[service, severity]` and `[severity]` (every severity,
//!   zeros included, so an alarm sees 0 rather than missing data);
//! - per service and tag with events: a document with metric
//!   `WindowTagEvents` and dimension sets `[service, tag]` and `[tag]`.
//!
//! The timestamp is the window's start. Cardinality is bounded: in each window
//! the `top_services` services with the most events keep their name and the
//! rest are added up as service `other`. The static dimensions of
//! `[metrics.emf]` go on every line as properties, not dimensions, so the
//! counts of several tasks consuming one stream add up in one metric
//! (use the `Sum` statistic over the window size); those named in
//! `window_dimensions` (a `stack`, say, to keep deployments apart) are
//! added to both dimension sets.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value, json};

use crate::alerts::record::WindowRecord;
use crate::event::Severity;

/// The service name the services beyond the top N are counted under.
pub const OTHER_SERVICE: &str = "other";

/// The metric of the per-service, per-severity counts.
pub const EVENTS_METRIC: &str = "WindowEvents";

/// The metric of the per-service, per-tag counts.
pub const TAG_EVENTS_METRIC: &str = "WindowTagEvents";

/// Turns closed windows into EMF lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowMetrics {
    namespace: String,
    top_services: usize,
    properties: BTreeMap<String, String>,
    /// Names of `properties` that are dimensions too.
    kept_dimensions: Vec<String>,
}

/// The counts of one window after the top-N cut, by service.
type WindowCounts<'a> = BTreeMap<&'a str, ([u64; 4], BTreeMap<&'a str, u64>)>;

impl WindowMetrics {
    /// Lines in `namespace`, `top_services` services a window by name (at
    /// least 1), with `properties` on every line.
    pub fn new(namespace: &str, top_services: usize, properties: BTreeMap<String, String>) -> Self {
        WindowMetrics {
            namespace: namespace.to_owned(),
            top_services: top_services.max(1),
            properties,
            kept_dimensions: Vec::new(),
        }
    }

    /// Makes the properties named in `names` dimensions too (names that are
    /// not properties are ignored).
    pub fn with_dimensions(mut self, names: &[String]) -> Self {
        self.kept_dimensions = names
            .iter()
            .filter(|n| self.properties.contains_key(*n))
            .cloned()
            .collect();
        self
    }

    /// The EMF lines of `windows` (records of closed windows, any order).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use spate_operators::alerts::record::WindowRecord;
    /// use spate_operators::windows::emf::WindowMetrics;
    /// let record = WindowRecord {
    ///     window_start_ms: 1_764_900_000_000,
    ///     window_end_ms: 1_764_900_300_000,
    ///     service: "pay".into(),
    ///     events: 3,
    ///     severity: [1, 0, 2, 0],
    ///     tags: BTreeMap::from([("http_5xx".to_string(), 2)]),
    /// };
    /// let lines = WindowMetrics::new("Spate", 20, BTreeMap::new()).lines(&[record]);
    /// assert_eq!(lines.len(), 5); // 4 severities and 1 tag
    /// assert!(lines[2].contains(r#""severity":"ERROR""#) && lines[2].contains(r#""WindowEvents":2"#));
    /// ```
    pub fn lines(&self, windows: &[WindowRecord]) -> Vec<String> {
        let mut by_window: BTreeMap<(i64, i64), Vec<&WindowRecord>> = BTreeMap::new();
        for record in windows {
            by_window
                .entry((record.window_start_ms, record.window_end_ms))
                .or_default()
                .push(record);
        }
        let mut lines = Vec::new();
        for ((start_ms, end_ms), records) in by_window {
            for (service, (severity, tags)) in self.top_n(records) {
                for s in Severity::ALL {
                    let dims = [("service", service), ("severity", s.as_str())];
                    let doc =
                        self.document(start_ms, end_ms, EVENTS_METRIC, &dims, severity[s.index()]);
                    lines.push(doc);
                }
                for (tag, count) in tags {
                    let dims = [("service", service), ("tag", tag)];
                    lines.push(self.document(start_ms, end_ms, TAG_EVENTS_METRIC, &dims, count));
                }
            }
        }
        lines
    }

    /// The counts of one window's records, the services past the top N
    /// merged into [`OTHER_SERVICE`].
    fn top_n<'a>(&self, mut records: Vec<&'a WindowRecord>) -> WindowCounts<'a> {
        records.sort_by(|a, b| b.events.cmp(&a.events).then(a.service.cmp(&b.service)));
        let mut counts: WindowCounts<'a> = BTreeMap::new();
        for (rank, record) in records.into_iter().enumerate() {
            let name = if rank < self.top_services {
                record.service.as_str()
            } else {
                OTHER_SERVICE
            };
            let (severity, tags) = counts.entry(name).or_default();
            for (total, n) in severity.iter_mut().zip(record.severity) {
                *total += n;
            }
            for (tag, n) in &record.tags {
                *tags.entry(tag.as_str()).or_default() += n;
            }
        }
        counts
    }

    /// One EMF document: `metric` = `value` with dimension sets `dims` and
    /// its last dimension alone.
    fn document(
        &self,
        start_ms: i64,
        end_ms: i64,
        metric: &str,
        dims: &[(&str, &str); 2],
        value: u64,
    ) -> String {
        let [(first, first_value), (second, second_value)] = *dims;
        let mut by_both = vec![first, second];
        let mut by_second = vec![second];
        for kept in &self.kept_dimensions {
            by_both.push(kept);
            by_second.push(kept);
        }
        let mut doc = Map::new();
        for (key, value) in &self.properties {
            doc.insert(key.clone(), Value::from(value.as_str()));
        }
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": start_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [by_both, by_second],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }],
            }),
        );
        doc.insert(first.into(), Value::from(first_value));
        doc.insert(second.into(), Value::from(second_value));
        doc.insert(metric.into(), Value::from(value));
        doc.insert("window_start_ms".into(), Value::from(start_ms));
        doc.insert("window_end_ms".into(), Value::from(end_ms));
        Value::Object(doc).to_string()
    }

    /// Prints the lines of `windows` on stdout, each with one `write_all` on
    /// the locked stdout (so they never interleave with other lines there).
    pub fn print(&self, windows: &[WindowRecord]) {
        let lines = self.lines(windows);
        if lines.is_empty() {
            return;
        }
        let count = lines.len() as u64;
        let mut out = std::io::stdout().lock();
        for mut line in lines {
            line.push('\n');
            if let Err(e) = out.write_all(line.as_bytes()) {
                tracing::warn!("cannot write window EMF lines to stdout: {e}");
                return;
            }
        }
        let _ = out.flush();
        metrics::counter!("spate_window_emf_lines_total").increment(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(start: i64, service: &str, severity: [u64; 4], tags: &[(&str, u64)]) -> WindowRecord {
        WindowRecord {
            window_start_ms: start,
            window_end_ms: start + 300_000,
            service: service.into(),
            events: severity.iter().sum(),
            severity,
            tags: tags.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn docs(lines: &[String]) -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `(service, severity-or-tag) -> value` of metric `metric`.
    fn values(docs: &[Value], metric: &str, key: &str) -> BTreeMap<(String, String), u64> {
        docs.iter()
            .filter(|d| d[metric].is_number())
            .map(|d| {
                let service = d["service"].as_str().unwrap().to_owned();
                (
                    (service, d[key].as_str().unwrap().to_owned()),
                    d[metric].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn documents_are_emf_with_the_window_counts() {
        let properties = BTreeMap::from([("task".to_string(), "t1".to_string())]);
        let metrics = WindowMetrics::new("SpateTest", 10, properties);
        let lines = metrics.lines(&[record(600_000, "pay", [5, 1, 2, 1], &[("http_5xx", 2)])]);
        let docs = docs(&lines);
        assert_eq!(docs.len(), 5);
        for doc in &docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(doc["_aws"]["Timestamp"], 600_000);
            assert_eq!(directive["Namespace"], "SpateTest");
            assert_eq!(doc["task"], "t1", "a property");
            assert_eq!(doc["window_end_ms"], 900_000);
            let sets = directive["Dimensions"].as_array().unwrap();
            assert_eq!(sets.len(), 2);
            assert!(
                sets.iter()
                    .all(|s| !s.as_array().unwrap().contains(&json!("task")))
            );
            for name in sets[0].as_array().unwrap() {
                assert!(doc[name.as_str().unwrap()].is_string());
            }
            let metric = directive["Metrics"][0]["Name"].as_str().unwrap();
            assert!(doc[metric].is_u64());
        }
        let severity = values(&docs, EVENTS_METRIC, "severity");
        let pay = |s: &str| severity[&("pay".to_string(), s.to_string())];
        assert_eq!(
            (pay("INFO"), pay("WARNING"), pay("ERROR"), pay("CRITICAL")),
            (5, 1, 2, 1)
        );
        let tags = values(&docs, TAG_EVENTS_METRIC, "tag");
        assert_eq!(
            tags,
            BTreeMap::from([(("pay".into(), "http_5xx".into()), 2)])
        );
    }

    #[test]
    fn services_past_the_top_n_are_other_and_windows_stay_apart() {
        let metrics = WindowMetrics::new("S", 2, BTreeMap::new());
        let lines = metrics.lines(&[
            record(0, "a", [10, 0, 0, 0], &[]),
            record(0, "b", [0, 0, 7, 0], &[("failed_login", 1)]),
            record(0, "c", [1, 1, 0, 0], &[("failed_login", 2)]),
            record(0, "d", [0, 0, 3, 0], &[("failed_login", 3)]),
            record(300_000, "c", [4, 0, 0, 0], &[]),
        ]);
        let docs = docs(&lines);
        let first: Vec<Value> = docs
            .iter()
            .filter(|d| d["window_start_ms"] == 0)
            .cloned()
            .collect();
        let severity = values(&first, EVENTS_METRIC, "severity");
        let services: std::collections::BTreeSet<&str> =
            severity.keys().map(|(s, _)| s.as_str()).collect();
        assert_eq!(services, ["a", "b", "other"].into());
        assert_eq!(severity[&("other".into(), "ERROR".into())], 3);
        assert_eq!(severity[&("other".into(), "INFO".into())], 1);
        let tags = values(&first, TAG_EVENTS_METRIC, "tag");
        assert_eq!(tags[&("other".into(), "failed_login".into())], 5);
        assert_eq!(tags[&("b".into(), "failed_login".into())], 1);
        // The second window ranks its own services: c is in its top 2.
        let second: Vec<Value> = docs
            .iter()
            .filter(|d| d["window_start_ms"] == 300_000)
            .cloned()
            .collect();
        let severity = values(&second, EVENTS_METRIC, "severity");
        assert_eq!(severity[&("c".into(), "INFO".into())], 4);
        assert_eq!(second.len(), 4);
    }

    #[test]
    fn named_static_dimensions_stay_dimensions() {
        let properties = BTreeMap::from([
            ("stack".to_string(), "prod".to_string()),
            ("task".to_string(), "t1".to_string()),
        ]);
        let names = ["stack".to_string(), "absent".to_string()];
        let metrics = WindowMetrics::new("S", 5, properties).with_dimensions(&names);
        let lines = metrics.lines(&[record(0, "a", [1, 0, 0, 0], &[("http_5xx", 1)])]);
        for doc in docs(&lines) {
            let sets = &doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
            let key = if doc["severity"].is_string() {
                "severity"
            } else {
                "tag"
            };
            assert_eq!(
                sets,
                &json!([["service", key, "stack"], [key, "stack"]]),
                "{doc}"
            );
            assert_eq!(
                (doc["stack"].as_str(), doc["task"].as_str()),
                (Some("prod"), Some("t1"))
            );
        }
    }

    #[test]
    fn ties_rank_by_name_and_no_windows_no_lines() {
        let metrics = WindowMetrics::new("S", 1, BTreeMap::new());
        let lines = metrics.lines(&[
            record(0, "z", [2, 0, 0, 0], &[]),
            record(0, "y", [2, 0, 0, 0], &[]),
        ]);
        let severity = values(&docs(&lines), EVENTS_METRIC, "severity");
        assert_eq!(severity[&("y".into(), "INFO".into())], 2);
        assert_eq!(severity[&("other".into(), "INFO".into())], 2);
        assert!(metrics.lines(&[]).is_empty());
    }
}
