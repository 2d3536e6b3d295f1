//! Alert rules: configuration, validation, and the pure evaluation of one rule
//! over one closed window of one service.
//!
//! Kinds (`kind = "..."` in `[[alerts.rules]]`):
//!
//! | kind | holds when | default threshold |
//! | --- | --- | --- |
//! | `critical` | CRITICAL events > threshold | 0 |
//! | `error_count` | ERROR events > threshold | 10 |
//! | `error_rate` | (ERROR + CRITICAL) / events > threshold, with at least `min_events` events (default 100) | 0.05 |
//! | `silence` | a service with an established rhythm (events in at least `min_active_windows` of the last `rhythm_windows` windows, default 3 of 12) has none in this window | none |
//! | `tag` | events carrying `tag` > threshold | 0 |
//! | `anomaly` | `metric` outside the band its baseline learnt (see [`super::anomaly`]) | none |

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::anomaly::{AnomalySpec, Direction, Metric, Seasonality, Verdict};
use super::record::WindowRecord;
use super::rhythm::{MAX_WINDOWS, Rhythm};
use crate::component::ConfigError;
use crate::component::units::Seconds;
use crate::event::Severity;

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// CRITICAL count above the threshold.
    Critical,
    /// ERROR count above the threshold.
    ErrorCount,
    /// Share of ERROR and CRITICAL events above the threshold.
    ErrorRate,
    /// A service stopped logging.
    Silence,
    /// Count of a named tag above the threshold.
    Tag,
    /// A metric outside the band of its learnt baseline.
    Anomaly,
}

impl RuleKind {
    fn default_threshold(self) -> f64 {
        match self {
            RuleKind::Critical | RuleKind::Silence | RuleKind::Tag | RuleKind::Anomaly => 0.0,
            RuleKind::ErrorCount => 10.0,
            RuleKind::ErrorRate => 0.05,
        }
    }

    fn default_severity(self) -> AlertSeverity {
        match self {
            RuleKind::Critical => AlertSeverity::Critical,
            RuleKind::ErrorCount | RuleKind::ErrorRate | RuleKind::Anomaly => AlertSeverity::Error,
            RuleKind::Silence | RuleKind::Tag => AlertSeverity::Warning,
        }
    }
}

/// Severity of an alert itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum AlertSeverity {
    /// Page someone.
    #[serde(rename = "CRITICAL", alias = "critical")]
    Critical,
    /// Needs attention soon.
    #[serde(rename = "ERROR", alias = "error")]
    Error,
    /// Worth a look.
    #[serde(rename = "WARNING", alias = "warning")]
    Warning,
}

impl AlertSeverity {
    /// `CRITICAL`, `ERROR` or `WARNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Critical => "CRITICAL",
            AlertSeverity::Error => "ERROR",
            AlertSeverity::Warning => "WARNING",
        }
    }
}

/// One `[[alerts.rules]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleConfig {
    /// Unique name of the rule (letters, digits, `_`, `-`); part of alert ids.
    pub name: String,
    /// What the rule measures: `critical`, `error_count`, `error_rate`,
    /// `silence`, `tag` or `anomaly`.
    pub kind: RuleKind,
    /// The alert fires when the measured value is strictly above it. Default:
    /// 0 for `critical` and `tag`, 10 for `error_count`, 0.05 for `error_rate`;
    /// not allowed for `silence` and `anomaly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `error_rate`, and `anomaly` with `metric = "error_rate"`: windows with
    /// fewer events never fire (nor teach the baseline). Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// `tag` (required there), and `anomaly` with `metric = "tag"`: the tag
    /// to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `anomaly` only: what is measured per service and window: `events`,
    /// `info`, `warning`, `error`, `critical`, `errors` (ERROR + CRITICAL),
    /// `error_rate` or `tag` (with `tag`). Default: `tag` when `tag` is set,
    /// `errors` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// `anomaly` only: width of the band around the expected value, in
    /// standard deviations (learnt, and at least the count's own noise).
    /// Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<f64>,
    /// `anomaly` only: history (event time) the baseline needs before the
    /// rule may fire, e.g. `"2d"`. Default: two periods of the seasonality
    /// (2 days daily, 14 days weekly), 1 day without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_history: Option<Seconds>,
    /// `anomaly` only: the period the baseline learns: `none`, `daily` (one
    /// offset per UTC hour of the day) or `weekly` (per hour of the week).
    /// Default `daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seasonality: Option<Seasonality>,
    /// `anomaly` only: `up` (spikes above the band), `down` (drops below
    /// it, silence included) or `both`. Default `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Extra tags of this rule's alerts, for routing (`[[alerts.routes]]
    /// tags`); a rule counting a tag has that tag too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// `silence` only: a service must have had events in at least this
    /// many of the last `rhythm_windows` windows before its silence is an
    /// alert, so that a service seen once (a sample file, a one-off job)
    /// raises none. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_active_windows: Option<u32>,
    /// `silence` only: how many windows before the silent one
    /// `min_active_windows` counts in, 1 to 64. Default 12 (an hour of
    /// 5-minute windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm_windows: Option<u32>,
    /// Only this service; default: every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Severity of the alert: `CRITICAL`, `ERROR` or `WARNING`. Default:
    /// CRITICAL for `critical`, ERROR for `error_count` and `error_rate`,
    /// WARNING for `silence` and `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<AlertSeverity>,
}

impl AlertRuleConfig {
    /// A rule of `kind` named `name` with every default.
    pub fn new(name: &str, kind: RuleKind) -> Self {
        AlertRuleConfig {
            name: name.to_string(),
            kind,
            threshold: None,
            min_events: None,
            tag: None,
            service: None,
            severity: None,
            metric: None,
            k: None,
            min_history: None,
            seasonality: None,
            direction: None,
            min_active_windows: None,
            rhythm_windows: None,
            labels: Vec::new(),
        }
    }
}

/// The default rules: `critical` (any CRITICAL), `error_burst` (more than 10
/// ERRORs, the original Lambda's rule), `error_rate` (over 5 % of at least 100
/// events), `silence`.
pub fn default_rules() -> Vec<AlertRuleConfig> {
    vec![
        AlertRuleConfig::new("critical", RuleKind::Critical),
        AlertRuleConfig::new("error_burst", RuleKind::ErrorCount),
        AlertRuleConfig::new("error_rate", RuleKind::ErrorRate),
        AlertRuleConfig::new("silence", RuleKind::Silence),
    ]
}

/// The default rules, but `silence` speaks for every service seen in the
/// last 12 windows (test scripts are a few windows long).
#[cfg(test)]
pub(crate) fn default_rules_eager_silence() -> Vec<AlertRuleConfig> {
    let mut rules = default_rules();
    for rule in rules.iter_mut().filter(|r| r.kind == RuleKind::Silence) {
        rule.min_active_windows = Some(1);
    }
    rules
}

const DEFAULT_MIN_EVENTS: u64 = 100;

/// Default `min_active_windows` of silence rules.
pub const DEFAULT_MIN_ACTIVE_WINDOWS: u32 = 3;
/// Default `rhythm_windows` of silence rules.
pub const DEFAULT_RHYTHM_WINDOWS: u32 = 12;

/// A validated rule, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// What it measures.
    pub kind: RuleKind,
    /// Fires when the value is above it.
    pub threshold: f64,
    /// `error_rate`: minimum events in the window.
    pub min_events: u64,
    /// `tag`: the tag counted.
    pub tag: Option<String>,
    /// Service filter.
    pub service: Option<String>,
    /// Severity of the alert.
    pub severity: AlertSeverity,
    /// `anomaly`: the baseline's settings.
    pub anomaly: Option<AnomalySpec>,
    /// The alert's tags for routing: the tag counted, and the labels.
    pub labels: Vec<String>,
    /// `silence`: the rhythm a service needs before its silence counts.
    pub rhythm: Option<Rhythm>,
}

/// Default band width of anomaly rules, in standard deviations.
pub const DEFAULT_K: f64 = 4.0;

/// The result of evaluating a rule on one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Whether the condition holds.
    pub holds: bool,
    /// The measured value (a count or a rate).
    pub value: f64,
}

impl Rule {
    /// Validates one rule configuration; errors name the key (relative to
    /// the rule) and the rule.
    pub fn compile(config: &AlertRuleConfig) -> Result<Rule, ConfigError> {
        let bad = |key: &str, why: String| {
            ConfigError::new(key, format!("rule {:?}: {why}", config.name))
        };
        let valid_name = !config.name.is_empty()
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(bad(
                "name",
                "name must be non-empty letters, digits, '_' or '-'".into(),
            ));
        }
        let kind = config.kind;
        let threshold = match (kind, config.threshold) {
            (RuleKind::Silence, Some(_)) => {
                return Err(bad("threshold", "a silence rule takes no threshold".into()));
            }
            (RuleKind::Anomaly, Some(_)) => {
                return Err(bad(
                    "threshold",
                    "an anomaly rule takes no threshold (its band is k deviations wide)".into(),
                ));
            }
            (_, Some(t)) if !t.is_finite() || t < 0.0 => {
                return Err(bad(
                    "threshold",
                    format!("threshold {t} must be a number >= 0"),
                ));
            }
            (RuleKind::ErrorRate, Some(t)) if t >= 1.0 => {
                return Err(bad(
                    "threshold",
                    format!("error_rate threshold {t} must be a fraction below 1 (0.05 = 5 %)"),
                ));
            }
            (_, Some(t)) => t,
            (_, None) => kind.default_threshold(),
        };
        let anomaly = if kind == RuleKind::Anomaly {
            Some(anomaly_spec(config, &bad)?)
        } else {
            let only = [
                ("metric", config.metric.is_some()),
                ("k", config.k.is_some()),
                ("min_history", config.min_history.is_some()),
                ("seasonality", config.seasonality.is_some()),
                ("direction", config.direction.is_some()),
            ];
            if let Some((key, _)) = only.iter().find(|(_, set)| *set) {
                return Err(bad(key, format!("{key} applies to anomaly rules only")));
            }
            None
        };
        let counts_rate = kind == RuleKind::ErrorRate
            || anomaly
                .as_ref()
                .is_some_and(|a| a.metric == Metric::ErrorRate);
        if config.min_events.is_some() && !counts_rate {
            return Err(bad(
                "min_events",
                "min_events applies to error_rate rules (and error_rate anomalies) only".into(),
            ));
        }
        let counts_tag =
            kind == RuleKind::Tag || anomaly.as_ref().is_some_and(|a| a.metric == Metric::Tag);
        let tag = match (counts_tag, &config.tag) {
            (true, Some(t)) if !t.is_empty() => Some(t.clone()),
            (true, _) => return Err(bad("tag", "a tag rule needs a non-empty tag".into())),
            (false, Some(_)) => {
                return Err(bad(
                    "tag",
                    "tag applies to tag rules (and anomalies of metric \"tag\") only".into(),
                ));
            }
            (false, None) => None,
        };
        if config.service.as_deref() == Some("") {
            return Err(bad("service", "service filter must not be empty".into()));
        }
        if config.labels.iter().any(|l| l.is_empty()) {
            return Err(bad("labels", "labels must not be empty".into()));
        }
        let rhythm = match kind {
            RuleKind::Silence => {
                let windows = config.rhythm_windows.unwrap_or(DEFAULT_RHYTHM_WINDOWS);
                if !(1..=MAX_WINDOWS).contains(&windows) {
                    return Err(bad(
                        "rhythm_windows",
                        format!("rhythm_windows {windows} must be 1 to {MAX_WINDOWS}"),
                    ));
                }
                let min_active = config
                    .min_active_windows
                    .unwrap_or(DEFAULT_MIN_ACTIVE_WINDOWS.min(windows));
                if !(1..=windows).contains(&min_active) {
                    return Err(bad(
                        "min_active_windows",
                        format!(
                            "min_active_windows {min_active} must be 1 to rhythm_windows ({windows})"
                        ),
                    ));
                }
                Some(Rhythm {
                    min_active,
                    windows,
                })
            }
            _ => {
                let only = [
                    ("min_active_windows", config.min_active_windows.is_some()),
                    ("rhythm_windows", config.rhythm_windows.is_some()),
                ];
                if let Some((key, _)) = only.iter().find(|(_, set)| *set) {
                    return Err(bad(key, format!("{key} applies to silence rules only")));
                }
                None
            }
        };
        let mut labels: Vec<String> = tag.iter().cloned().collect();
        labels.extend(config.labels.iter().cloned());
        Ok(Rule {
            name: config.name.clone(),
            kind,
            threshold,
            min_events: config.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
            tag,
            service: config.service.clone(),
            severity: config.severity.unwrap_or(kind.default_severity()),
            anomaly,
            labels,
            rhythm,
        })
    }

    /// Whether the rule looks at `service`.
    pub fn applies_to(&self, service: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
    }

    /// Evaluates the rule on the counts of one service in one closed window;
    /// `window` is `None` when the service had no events in it, and
    /// `seen_before` says whether it had events in an earlier window (for
    /// `silence`: whether it has an established rhythm, see
    /// [`super::rhythm`]).
    pub fn evaluate(&self, window: Option<&WindowRecord>, seen_before: bool) -> Evaluation {
        let events = window.map_or(0, |w| w.events);
        let severity = |s: Severity| window.map_or(0, |w| w.severity[s.index()]) as f64;
        let above = |value: f64| Evaluation {
            holds: value > self.threshold,
            value,
        };
        match self.kind {
            RuleKind::Critical => above(severity(Severity::Critical)),
            RuleKind::ErrorCount => above(severity(Severity::Error)),
            RuleKind::ErrorRate => {
                let bad = severity(Severity::Error) + severity(Severity::Critical);
                let rate = if events == 0 {
                    0.0
                } else {
                    bad / events as f64
                };
                Evaluation {
                    holds: events >= self.min_events && rate > self.threshold,
                    value: rate,
                }
            }
            RuleKind::Silence => Evaluation {
                holds: seen_before && events == 0,
                value: events as f64,
            },
            RuleKind::Tag => {
                let tag = self.tag.as_deref().unwrap_or_default();
                above(window.and_then(|w| w.tags.get(tag)).copied().unwrap_or(0) as f64)
            }
            // Needs its baseline: the evaluator judges it.
            RuleKind::Anomaly => Evaluation {
                holds: false,
                value: 0.0,
            },
        }
    }

    /// One readable sentence about an anomaly verdict, e.g. `1000 events,
    /// expected 210 (band 140–280, k = 4)`.
    pub fn describe_anomaly(&self, verdict: &Verdict, holds: bool) -> String {
        let metric = self.anomaly.as_ref().map_or(Metric::Errors, |a| a.metric);
        let k = self.anomaly.as_ref().map_or(DEFAULT_K, |a| a.k);
        let rate = metric == Metric::ErrorRate;
        let num = |v: f64| {
            if rate {
                format!("{:.2}%", v * 100.0)
            } else {
                format!("{}", (v * 10.0).round() / 10.0)
            }
        };
        let what = metric.describe(self.tag.as_deref());
        let expected = verdict.expected.map_or("nothing yet".to_string(), num);
        let band = format!(
            "band {}–{}, k = {k}",
            num(verdict.lower),
            num(verdict.upper)
        );
        match (holds, verdict.spike) {
            (true, true) => format!(
                "{what} {} above normal: expected {expected} ({band})",
                num(verdict.value)
            ),
            (true, false) => format!(
                "{what} {} below normal: expected {expected} ({band})",
                num(verdict.value)
            ),
            (false, _) => format!(
                "{what} back to normal: {}, expected {expected} ({band})",
                num(verdict.value)
            ),
        }
    }

    /// One readable sentence about `value`, e.g. `14 errors > 10`.
    pub fn describe(&self, value: f64, holds: bool) -> String {
        let cmp = if holds { ">" } else { "<=" };
        let t = self.threshold;
        match self.kind {
            RuleKind::Critical => format!("{value} critical events {cmp} {t}"),
            RuleKind::ErrorCount => format!("{value} errors {cmp} {t}"),
            RuleKind::ErrorRate => {
                format!(
                    "error rate {:.1}% {cmp} {:.1}% (min {} events)",
                    value * 100.0,
                    t * 100.0,
                    self.min_events
                )
            }
            RuleKind::Silence if holds => "no events in this window".to_string(),
            RuleKind::Silence => format!("logging again: {value} events"),
            RuleKind::Tag => format!(
                "{value} events tagged {} {cmp} {t}",
                self.tag.as_deref().unwrap_or_default()
            ),
            RuleKind::Anomaly => format!("{value}"),
        }
    }
}

/// The anomaly settings of `config`, with their defaults.
fn anomaly_spec(
    config: &AlertRuleConfig,
    bad: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AnomalySpec, ConfigError> {
    let k = config.k.unwrap_or(DEFAULT_K);
    if !k.is_finite() || k <= 0.0 || k > 100.0 {
        return Err(bad(
            "k",
            format!("k {k} must be a number above 0 (and at most 100)"),
        ));
    }
    let metric = match (config.metric, &config.tag) {
        (Some(m), _) => m,
        (None, Some(_)) => Metric::Tag,
        (None, None) => Metric::Errors,
    };
    let seasonality = config.seasonality.unwrap_or(Seasonality::Daily);
    let min_history_ms = match config.min_history {
        Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        None => seasonality.default_min_history_ms(),
    };
    Ok(AnomalySpec {
        metric,
        k,
        min_history_ms,
        seasonality,
        direction: config.direction.unwrap_or(Direction::Both),
    })
}

/// Validates a rule list: each rule, and names unique. Errors name the key
/// as `rules[<index>].<key>`.
pub fn compile_rules(configs: &[AlertRuleConfig]) -> Result<Vec<Rule>, ConfigError> {
    let mut names = HashSet::new();
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let at = format!("rules[{i}]");
            if !names.insert(c.name.as_str()) {
                return Err(ConfigError::new(
                    "name",
                    format!("rule name {:?} is used twice", c.name),
                )
                .within(&at));
            }
            Rule::compile(c).map_err(|e| e.within(&at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(events: u64, severity: [u64; 4], tags: &[(&str, u64)]) -> WindowRecord {
        WindowRecord {
            window_start_ms: 0,
            window_end_ms: 300_000,
            service: "api".into(),
            events,
            severity,
            tags: tags.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn rule(kind: RuleKind) -> Rule {
        Rule::compile(&AlertRuleConfig::new("r", kind)).unwrap()
    }

    #[test]
    fn critical_fires_on_any_critical() {
        let r = rule(RuleKind::Critical);
        assert_eq!(r.severity, AlertSeverity::Critical);
        assert!(!r.evaluate(Some(&window(5, [5, 0, 0, 0], &[])), true).holds);
        let e = r.evaluate(Some(&window(6, [5, 0, 0, 1], &[])), true);
        assert!(e.holds);
        assert_eq!(e.value, 1.0);
    }

    #[test]
    fn error_count_is_strictly_above_ten_by_default() {
        let r = rule(RuleKind::ErrorCount);
        assert!(
            !r.evaluate(Some(&window(10, [0, 0, 10, 0], &[])), true)
                .holds
        );
        let e = r.evaluate(Some(&window(14, [0, 0, 14, 0], &[])), true);
        assert!(e.holds);
        assert_eq!(r.describe(e.value, e.holds), "14 errors > 10");
        // CRITICAL events are not ERRORs for this rule.
        assert!(
            !r.evaluate(Some(&window(20, [0, 0, 0, 20], &[])), true)
                .holds
        );
        assert!(!r.evaluate(None, true).holds);
    }

    #[test]
    fn error_rate_needs_min_events() {
        let r = rule(RuleKind::ErrorRate);
        // 50 % but only 10 events.
        assert!(!r.evaluate(Some(&window(10, [5, 0, 5, 0], &[])), true).holds);
        // 6 % of 100: fires (errors and criticals both count).
        let e = r.evaluate(Some(&window(100, [94, 0, 4, 2], &[])), true);
        assert!(e.holds);
        assert!((e.value - 0.06).abs() < 1e-9);
        // 5 % exactly: not above.
        assert!(
            !r.evaluate(Some(&window(100, [95, 0, 5, 0], &[])), true)
                .holds
        );
        assert!(!r.evaluate(None, true).holds);
    }

    #[test]
    fn silence_holds_only_for_a_known_service_without_events() {
        let r = rule(RuleKind::Silence);
        assert!(r.evaluate(None, true).holds);
        assert!(!r.evaluate(None, false).holds);
        assert!(!r.evaluate(Some(&window(1, [1, 0, 0, 0], &[])), true).holds);
    }

    #[test]
    fn tag_counts_the_named_tag() {
        let mut c = AlertRuleConfig::new("logins", RuleKind::Tag);
        c.tag = Some("failed_login".into());
        c.threshold = Some(3.0);
        let r = Rule::compile(&c).unwrap();
        let w = window(10, [10, 0, 0, 0], &[("failed_login", 4), ("http_5xx", 9)]);
        assert!(r.evaluate(Some(&w), true).holds);
        let w = window(10, [10, 0, 0, 0], &[("failed_login", 3)]);
        assert!(!r.evaluate(Some(&w), true).holds);
    }

    #[test]
    fn service_filter() {
        let mut c = AlertRuleConfig::new("api_errors", RuleKind::ErrorCount);
        c.service = Some("api".into());
        let r = Rule::compile(&c).unwrap();
        assert!(r.applies_to("api"));
        assert!(!r.applies_to("web"));
        assert!(rule(RuleKind::ErrorCount).applies_to("web"));
    }

    #[test]
    fn defaults_are_the_four_rules() {
        let rules = compile_rules(&default_rules()).unwrap();
        let names: Vec<_> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["critical", "error_burst", "error_rate", "silence"]);
        assert_eq!(rules[1].threshold, 10.0);
        assert_eq!(rules[2].threshold, 0.05);
        assert_eq!(rules[2].min_events, 100);
        assert_eq!(
            rules[3].rhythm,
            Some(Rhythm {
                min_active: DEFAULT_MIN_ACTIVE_WINDOWS,
                windows: DEFAULT_RHYTHM_WINDOWS
            })
        );
    }

    #[test]
    fn validation_errors_are_clear() {
        let err = |c: AlertRuleConfig| compile_rules(&[c]).unwrap_err().to_string();
        let mut c = AlertRuleConfig::new("a:b", RuleKind::Critical);
        assert!(err(c.clone()).contains("name must be"));
        c.name = "x".into();
        c.threshold = Some(-1.0);
        assert!(err(c.clone()).contains(">= 0"));
        let mut c = AlertRuleConfig::new("rate", RuleKind::ErrorRate);
        c.threshold = Some(5.0);
        assert!(err(c).contains("fraction below 1"));
        let mut c = AlertRuleConfig::new("quiet", RuleKind::Silence);
        c.threshold = Some(1.0);
        assert!(err(c).contains("no threshold"));
        let mut c = AlertRuleConfig::new("quiet", RuleKind::Silence);
        c.min_active_windows = Some(13);
        assert!(err(c.clone()).contains("min_active_windows 13 must be 1 to rhythm_windows (12)"));
        c.rhythm_windows = Some(65);
        assert!(err(c.clone()).contains("rhythm_windows 65 must be 1 to 64"));
        c.rhythm_windows = Some(20);
        let rule = Rule::compile(&c).unwrap();
        assert_eq!(
            rule.rhythm,
            Some(Rhythm {
                min_active: 13,
                windows: 20
            })
        );
        let mut c = AlertRuleConfig::new("e", RuleKind::ErrorCount);
        c.rhythm_windows = Some(3);
        assert!(err(c).contains("rhythm_windows applies to silence rules only"));
        assert!(err(AlertRuleConfig::new("t", RuleKind::Tag)).contains("needs a non-empty tag"));
        let mut c = AlertRuleConfig::new("e", RuleKind::ErrorCount);
        c.min_events = Some(3);
        assert!(err(c).contains("applies to error_rate rules"));
        let dup = vec![
            AlertRuleConfig::new("same", RuleKind::Critical),
            AlertRuleConfig::new("same", RuleKind::ErrorCount),
        ];
        assert!(
            compile_rules(&dup)
                .unwrap_err()
                .to_string()
                .contains("used twice")
        );
    }

    #[test]
    fn anomaly_rules_take_their_keys_with_defaults_and_name_the_key_in_errors() {
        let parsed: AlertRuleConfig = serde_json::from_value(serde_json::json!({
            "name": "errors_anomaly", "kind": "anomaly", "k": 3.5, "min_history": "3d",
            "seasonality": "weekly", "direction": "up", "labels": ["team-payments"],
        }))
        .unwrap();
        let rule = Rule::compile(&parsed).unwrap();
        let spec = rule.anomaly.clone().unwrap();
        assert_eq!(spec.metric, Metric::Errors);
        assert_eq!((spec.k, spec.min_history_ms), (3.5, 3 * 86_400_000));
        assert_eq!(spec.seasonality, Seasonality::Weekly);
        assert_eq!(spec.direction, Direction::Up);
        assert_eq!(rule.severity, AlertSeverity::Error);
        assert_eq!(rule.labels, ["team-payments"]);
        // Defaults: errors, k = 4, daily, two days, both directions.
        let rule = Rule::compile(&AlertRuleConfig::new("a", RuleKind::Anomaly)).unwrap();
        let spec = rule.anomaly.unwrap();
        assert_eq!((spec.k, spec.min_history_ms), (DEFAULT_K, 2 * 86_400_000));
        assert_eq!(
            (spec.seasonality, spec.direction),
            (Seasonality::Daily, Direction::Both)
        );
        // A tag makes it count the tag, which is then an alert tag too.
        let mut c = AlertRuleConfig::new("t", RuleKind::Anomaly);
        c.tag = Some("http_5xx".into());
        let rule = Rule::compile(&c).unwrap();
        assert_eq!(rule.anomaly.unwrap().metric, Metric::Tag);
        assert_eq!(rule.labels, ["http_5xx"]);

        let key = |c: AlertRuleConfig| {
            compile_rules(&[AlertRuleConfig::new("ok", RuleKind::Critical), c])
                .unwrap_err()
                .key()
                .to_string()
        };
        let mut c = AlertRuleConfig::new("a", RuleKind::Anomaly);
        c.k = Some(0.0);
        assert_eq!(key(c), "rules[1].k");
        let mut c = AlertRuleConfig::new("a", RuleKind::Anomaly);
        c.threshold = Some(3.0);
        assert_eq!(key(c), "rules[1].threshold");
        let mut c = AlertRuleConfig::new("a", RuleKind::Anomaly);
        c.metric = Some(Metric::Tag);
        assert_eq!(key(c), "rules[1].tag");
        let mut c = AlertRuleConfig::new("a", RuleKind::Anomaly);
        c.min_events = Some(10);
        assert_eq!(key(c.clone()), "rules[1].min_events");
        c.metric = Some(Metric::ErrorRate);
        assert!(Rule::compile(&c).is_ok());
        let mut c = AlertRuleConfig::new("e", RuleKind::ErrorCount);
        c.seasonality = Some(Seasonality::Daily);
        assert_eq!(key(c.clone()), "rules[1].seasonality");
        c.seasonality = None;
        c.direction = Some(Direction::Down);
        let err = compile_rules(&[c]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rules[0].direction: rule \"e\": direction applies to anomaly rules only"
        );
        assert!(
            serde_json::from_value::<AlertRuleConfig>(serde_json::json!({
                "name": "a", "kind": "anomaly", "seasonality": "hourly"
            }))
            .is_err()
        );
    }
}
