//! Which outputs a notice goes to: `[[alerts.routes]]`, matched in order by
//! service, alert severity, rule and tags, each with its outputs and an
//! optional repeat interval. Pure: the router feeds it every notice it sends.
//!
//! - Without routes, every notice goes to every configured output.
//! - With routes, a notice goes to the outputs of the first route that
//!   matches it, and of the routes after that one while the matched route
//!   says `continue = true`. A notice no route matches goes to no output (it
//!   is still recorded in the hot store) and counts in
//!   `spate_alerts_unrouted_total`; end the list with a route without
//!   matchers to catch everything.
//! - A matcher left empty matches everything; a list matches when any of its
//!   values does. An alert's tags are the tag its rule counts and the rule's
//!   `labels`.
//! - `repeat`: while an alert keeps firing, the rules remind every
//!   `[alerts] cooldown`; a route with `repeat` passes a reminder only
//!   when at least that long (event time, between window starts) has passed
//!   since the last notice of the alert it passed. Resolutions always pass.
//!
//! ```toml
//! [[alerts.routes]]            # criticals of payments page someone...
//! services = ["payments"]
//! severities = ["CRITICAL"]
//! outputs = ["pagerduty"]
//! repeat = "1h"
//! continue = true              # ...and still go to Slack below
//!
//! [[alerts.routes]]            # everything to Slack and the file
//! outputs = ["webhook", "file", "stdout"]
//! ```

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::record::{AlertRecord, AlertState};
use super::rules::{AlertSeverity, Rule};
use crate::component::ConfigError;
use crate::component::units::Seconds;

/// An alert output, as routes name it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputName {
    /// One line per notice on stdout (`[alerts] stdout`).
    Stdout,
    /// The NDJSON file (`[alerts] file_enabled`).
    File,
    /// `[alerts.webhook]`.
    Webhook,
    /// `[alerts.sns]`.
    Sns,
    /// `[alerts.pagerduty]`.
    Pagerduty,
}

impl OutputName {
    /// `stdout`, `file`, `webhook`, `sns` or `pagerduty`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputName::Stdout => "stdout",
            OutputName::File => "file",
            OutputName::Webhook => "webhook",
            OutputName::Sns => "sns",
            OutputName::Pagerduty => "pagerduty",
        }
    }
}

/// One `[[alerts.routes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Only alerts of these services. Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Only alerts of these severities (`CRITICAL`, `ERROR`, `WARNING`).
    /// Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severities: Vec<AlertSeverity>,
    /// Only alerts of these rules (names of `[[alerts.rules]]`). Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Only alerts with one of these tags (the tag the rule counts, and the
    /// rule's `labels`). Default: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Where matching alerts go: `stdout`, `file`, `webhook`, `sns`,
    /// `pagerduty` (each must be configured). Required.
    #[serde(default)]
    pub outputs: Vec<OutputName>,
    /// After a match, also try the routes below. Default: stop at the first
    /// match.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Pass a reminder of a firing alert only this long (event time) after
    /// the last notice of it this route passed, e.g. `"4h"`. Default: every
    /// reminder (`[alerts] cooldown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Seconds>,
}

impl RouteConfig {
    /// A route of everything to `outputs`.
    pub fn to(outputs: &[OutputName]) -> Self {
        RouteConfig {
            services: Vec::new(),
            severities: Vec::new(),
            rules: Vec::new(),
            tags: Vec::new(),
            outputs: outputs.to_vec(),
            continue_matching: false,
            repeat: None,
        }
    }
}

/// Checks `routes` against the configured outputs and the rules; errors
/// name `routes[<index>].<key>`.
pub fn validate_routes(
    routes: &[RouteConfig],
    configured: &BTreeSet<OutputName>,
    rules: &[Rule],
) -> Result<(), ConfigError> {
    for (i, route) in routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if route.outputs.is_empty() {
            return Err(
                ConfigError::new("outputs", "a route needs at least one output").within(&at),
            );
        }
        if let Some(missing) = route.outputs.iter().find(|o| !configured.contains(o)) {
            return Err(ConfigError::new(
                "outputs",
                format!(
                    "output {:?} is not configured (configured: {})",
                    missing.as_str(),
                    configured
                        .iter()
                        .map(|o| o.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .within(&at));
        }
        if let Some(unknown) = route
            .rules
            .iter()
            .find(|name| !rules.iter().any(|r| &r.name == *name))
        {
            return Err(
                ConfigError::new("rules", format!("no rule is named {unknown:?}")).within(&at),
            );
        }
        if route
            .services
            .iter()
            .chain(&route.tags)
            .any(String::is_empty)
        {
            return Err(ConfigError::new("", "services and tags must not be empty").within(&at));
        }
        if route.repeat.is_some_and(|r| r.is_zero()) {
            return Err(ConfigError::new("repeat", "must be above 0").within(&at));
        }
    }
    Ok(())
}

/// The routes, and when each last passed a notice of each firing alert.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    routes: Vec<RouteConfig>,
    everything_to: BTreeSet<OutputName>,
    /// (route, rule, service) → window start of the last notice passed.
    last_passed: HashMap<(usize, String, String), i64>,
}

impl RoutingTable {
    /// A table of `routes`; without routes everything goes to `configured`.
    pub fn new(routes: Vec<RouteConfig>, configured: BTreeSet<OutputName>) -> Self {
        RoutingTable {
            routes,
            everything_to: configured,
            last_passed: HashMap::new(),
        }
    }

    /// The outputs `alert` goes to; `tags` are its rule's tags. Keeps the
    /// repeat bookkeeping.
    ///
    /// ```
    /// use spate_operators::alerts::routing::{OutputName, RouteConfig, RoutingTable};
    /// use spate_operators::alerts::rules::AlertSeverity;
    /// let mut page = RouteConfig::to(&[OutputName::Pagerduty]);
    /// page.severities = vec![AlertSeverity::Critical];
    /// page.continue_matching = true;
    /// let all = RouteConfig::to(&[OutputName::Webhook]);
    /// let configured = [OutputName::Pagerduty, OutputName::Webhook].into();
    /// let mut table = RoutingTable::new(vec![page, all], configured);
    /// # let alert = |severity: &str| spate_operators::alerts::record::AlertRecord {
    /// #     id: "x".into(), rule: "r".into(), service: "api".into(),
    /// #     state: spate_operators::alerts::record::AlertState::Firing,
    /// #     severity: severity.into(), window_start_ms: 0, window_end_ms: 1,
    /// #     raised_at_ms: 0, value: 1.0, threshold: 0.0, message: String::new() };
    /// assert_eq!(table.route(&alert("CRITICAL"), &[]).len(), 2);
    /// assert_eq!(table.route(&alert("ERROR"), &[]), [OutputName::Webhook].into());
    /// ```
    pub fn route(&mut self, alert: &AlertRecord, tags: &[String]) -> BTreeSet<OutputName> {
        if self.routes.is_empty() {
            return self.everything_to.clone();
        }
        let mut outputs = BTreeSet::new();
        let mut matched = false;
        for (i, route) in self.routes.iter().enumerate() {
            if !matches(route, alert, tags) {
                continue;
            }
            matched = true;
            let key = (i, alert.rule.clone(), alert.service.clone());
            let pass = match alert.state {
                AlertState::Resolved => {
                    self.last_passed.remove(&key);
                    true
                }
                AlertState::Firing => {
                    let due = match (self.last_passed.get(&key), route.repeat) {
                        (Some(&last), Some(repeat)) => {
                            let repeat_ms = i64::try_from(repeat.as_millis()).unwrap_or(i64::MAX);
                            alert.window_start_ms.saturating_sub(last) >= repeat_ms
                        }
                        _ => true,
                    };
                    if due {
                        self.last_passed.insert(key, alert.window_start_ms);
                    }
                    due
                }
            };
            if pass {
                outputs.extend(route.outputs.iter().copied());
            }
            if !route.continue_matching {
                break;
            }
        }
        if !matched {
            metrics::counter!("spate_alerts_unrouted_total").increment(1);
        }
        outputs
    }
}

fn matches(route: &RouteConfig, alert: &AlertRecord, tags: &[String]) -> bool {
    let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    any(&route.services, &alert.service)
        && any(&route.rules, &alert.rule)
        && (route.severities.is_empty()
            || route
                .severities
                .iter()
                .any(|s| s.as_str() == alert.severity))
        && (route.tags.is_empty() || route.tags.iter().any(|t| tags.contains(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::outputs::tests::sample_alert;

    const H: i64 = 3_600_000;

    fn alert(
        rule: &str,
        service: &str,
        severity: &str,
        state: AlertState,
        start: i64,
    ) -> AlertRecord {
        AlertRecord {
            rule: rule.into(),
            service: service.into(),
            severity: severity.into(),
            window_start_ms: start,
            ..sample_alert(state)
        }
    }

    fn names(outputs: BTreeSet<OutputName>) -> Vec<&'static str> {
        outputs.into_iter().map(OutputName::as_str).collect()
    }

    fn table() -> RoutingTable {
        let mut page = RouteConfig::to(&[OutputName::Pagerduty]);
        page.services = vec!["payments".into()];
        page.severities = vec![AlertSeverity::Critical];
        page.continue_matching = true;
        page.repeat = Some(Seconds::units(3600));
        let mut security = RouteConfig::to(&[OutputName::Sns]);
        security.tags = vec!["failed_login".into()];
        let mut quiet = RouteConfig::to(&[OutputName::File]);
        quiet.rules = vec!["silence".into()];
        let all = RouteConfig::to(&[OutputName::Webhook, OutputName::Stdout]);
        let configured = [
            OutputName::Pagerduty,
            OutputName::Sns,
            OutputName::File,
            OutputName::Webhook,
            OutputName::Stdout,
        ]
        .into();
        RoutingTable::new(vec![page, security, quiet, all], configured)
    }

    #[test]
    fn routing_table_cases() {
        let mut t = table();
        let firing = AlertState::Firing;
        let cases: Vec<(AlertRecord, Vec<String>, Vec<&str>)> = vec![
            // Criticals of payments page, and continue to the catch-all.
            (
                alert("critical", "payments", "CRITICAL", firing, 0),
                vec![],
                vec!["stdout", "webhook", "pagerduty"],
            ),
            // Criticals of another service: not paged.
            (
                alert("critical", "api", "CRITICAL", firing, 0),
                vec![],
                vec!["stdout", "webhook"],
            ),
            // Errors of payments: not paged.
            (
                alert("error_burst", "payments", "ERROR", firing, 0),
                vec![],
                vec!["stdout", "webhook"],
            ),
            // A rule counting failed_login: to SNS only (no continue).
            (
                alert("logins", "auth", "WARNING", firing, 0),
                vec!["failed_login".into()],
                vec!["sns"],
            ),
            // Silence alerts: the file only.
            (
                alert("silence", "api", "WARNING", firing, 0),
                vec![],
                vec!["file"],
            ),
        ];
        for (alert, tags, want) in cases {
            let mut want = want;
            want.sort();
            let mut got = names(t.route(&alert, &tags));
            got.sort();
            assert_eq!(
                got, want,
                "{} {} {}",
                alert.rule, alert.service, alert.severity
            );
        }
    }

    #[test]
    fn repeat_holds_back_reminders_per_route_and_resolution_always_passes() {
        let mut t = table();
        let at = |start| {
            alert(
                "critical",
                "payments",
                "CRITICAL",
                AlertState::Firing,
                start,
            )
        };
        assert!(t.route(&at(0), &[]).contains(&OutputName::Pagerduty));
        // A reminder 15 minutes on: the catch-all passes it, the pager route
        // (repeat 1h) does not.
        let reminder = names(t.route(&at(H / 4), &[]));
        assert_eq!(reminder, ["stdout", "webhook"]);
        assert!(t.route(&at(H), &[]).contains(&OutputName::Pagerduty));
        let resolved = alert(
            "critical",
            "payments",
            "CRITICAL",
            AlertState::Resolved,
            H + H / 4,
        );
        assert!(t.route(&resolved, &[]).contains(&OutputName::Pagerduty));
        // Firing again after the resolution is news, not a reminder.
        assert!(
            t.route(&at(H + H / 2), &[])
                .contains(&OutputName::Pagerduty)
        );
    }

    #[test]
    fn no_routes_means_everything_everywhere_and_unmatched_goes_nowhere() {
        let configured: BTreeSet<OutputName> = [OutputName::Stdout, OutputName::File].into();
        let mut t = RoutingTable::new(Vec::new(), configured.clone());
        assert_eq!(t.route(&sample_alert(AlertState::Firing), &[]), configured);
        let mut only = RouteConfig::to(&[OutputName::File]);
        only.services = vec!["db".into()];
        let mut t = RoutingTable::new(vec![only], configured);
        assert!(t.route(&sample_alert(AlertState::Firing), &[]).is_empty());
    }

    #[test]
    fn validation_names_the_route_key() {
        let rules =
            crate::alerts::rules::compile_rules(&crate::alerts::rules::default_rules()).unwrap();
        let configured: BTreeSet<OutputName> = [OutputName::Stdout].into();
        let check = |r: RouteConfig| {
            validate_routes(
                &[RouteConfig::to(&[OutputName::Stdout]), r],
                &configured,
                &rules,
            )
        };
        let err = check(RouteConfig::to(&[OutputName::Pagerduty])).unwrap_err();
        assert_eq!(err.key(), "routes[1].outputs");
        assert!(
            err.message().contains("\"pagerduty\" is not configured"),
            "{err}"
        );
        let err = check(RouteConfig::to(&[])).unwrap_err();
        assert_eq!(err.key(), "routes[1].outputs");
        let mut r = RouteConfig::to(&[OutputName::Stdout]);
        r.rules = vec!["nope".into()];
        assert_eq!(check(r).unwrap_err().key(), "routes[1].rules");
        let mut r = RouteConfig::to(&[OutputName::Stdout]);
        r.repeat = Some(Seconds::units(0));
        assert_eq!(check(r).unwrap_err().key(), "routes[1].repeat");
        let parsed: RouteConfig = serde_json::from_value(serde_json::json!({
            "services": ["payments"], "severities": ["CRITICAL"], "outputs": ["pagerduty"],
            "continue": true, "repeat": "2h"
        }))
        .unwrap();
        assert!(parsed.continue_matching);
        assert_eq!(parsed.repeat.unwrap().as_secs(), 7200);
    }
}
