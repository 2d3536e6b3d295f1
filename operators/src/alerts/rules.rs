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
//! | `silence` | a service that had events before has none in this window | none |
//! | `tag` | events carrying `tag` > threshold | 0 |

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::AlertError;
use super::record::WindowRecord;
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
}

impl RuleKind {
    fn default_threshold(self) -> f64 {
        match self {
            RuleKind::Critical | RuleKind::Silence | RuleKind::Tag => 0.0,
            RuleKind::ErrorCount => 10.0,
            RuleKind::ErrorRate => 0.05,
        }
    }

    fn default_severity(self) -> AlertSeverity {
        match self {
            RuleKind::Critical => AlertSeverity::Critical,
            RuleKind::ErrorCount | RuleKind::ErrorRate => AlertSeverity::Error,
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
    /// `silence` or `tag`.
    pub kind: RuleKind,
    /// The alert fires when the measured value is strictly above it. Default:
    /// 0 for `critical` and `tag`, 10 for `error_count`, 0.05 for `error_rate`;
    /// not allowed for `silence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `error_rate` only: windows with fewer events never fire. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// `tag` only (required there): the tag to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
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

const DEFAULT_MIN_EVENTS: u64 = 100;

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
}

/// The result of evaluating a rule on one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Whether the condition holds.
    pub holds: bool,
    /// The measured value (a count or a rate).
    pub value: f64,
}

impl Rule {
    /// Validates one rule configuration.
    pub fn compile(config: &AlertRuleConfig) -> Result<Rule, AlertError> {
        let bad = |why: String| AlertError::Config(format!("rule {:?}: {why}", config.name));
        let valid_name = !config.name.is_empty()
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(bad(
                "name must be non-empty letters, digits, '_' or '-'".into()
            ));
        }
        let kind = config.kind;
        let threshold = match (kind, config.threshold) {
            (RuleKind::Silence, Some(_)) => {
                return Err(bad("a silence rule takes no threshold".into()));
            }
            (_, Some(t)) if !t.is_finite() || t < 0.0 => {
                return Err(bad(format!("threshold {t} must be a number >= 0")));
            }
            (RuleKind::ErrorRate, Some(t)) if t >= 1.0 => {
                return Err(bad(format!(
                    "error_rate threshold {t} must be a fraction below 1 (0.05 = 5 %)"
                )));
            }
            (_, Some(t)) => t,
            (_, None) => kind.default_threshold(),
        };
        if config.min_events.is_some() && kind != RuleKind::ErrorRate {
            return Err(bad("min_events applies to error_rate rules only".into()));
        }
        let tag = match (kind, &config.tag) {
            (RuleKind::Tag, Some(t)) if !t.is_empty() => Some(t.clone()),
            (RuleKind::Tag, _) => return Err(bad("a tag rule needs a non-empty tag".into())),
            (_, Some(_)) => return Err(bad("tag applies to tag rules only".into())),
            (_, None) => None,
        };
        if config.service.as_deref() == Some("") {
            return Err(bad("service filter must not be empty".into()));
        }
        Ok(Rule {
            name: config.name.clone(),
            kind,
            threshold,
            min_events: config.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
            tag,
            service: config.service.clone(),
            severity: config.severity.unwrap_or(kind.default_severity()),
        })
    }

    /// Whether the rule looks at `service`.
    pub fn applies_to(&self, service: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
    }

    /// Evaluates the rule on the counts of one service in one closed window;
    /// `window` is `None` when the service had no events in it, and
    /// `seen_before` says whether it had events in an earlier window.
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
        }
    }
}

/// Validates a rule list: each rule, and names unique.
pub fn compile_rules(configs: &[AlertRuleConfig]) -> Result<Vec<Rule>, AlertError> {
    let mut names = HashSet::new();
    configs
        .iter()
        .map(|c| {
            if !names.insert(c.name.as_str()) {
                return Err(AlertError::Config(format!(
                    "rule name {:?} is used twice",
                    c.name
                )));
            }
            Rule::compile(c)
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
        assert!(err(AlertRuleConfig::new("t", RuleKind::Tag)).contains("needs a non-empty tag"));
        let mut c = AlertRuleConfig::new("e", RuleKind::ErrorCount);
        c.min_events = Some(3);
        assert!(err(c).contains("error_rate rules only"));
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
}
