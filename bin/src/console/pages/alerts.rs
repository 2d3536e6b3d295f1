//! `GET /ui/alerts`: the alerts firing now (the newest notice of a rule and
//! service says `firing`), the history of notices with the window counts
//! behind each (from the `alerts` and `windows` tables, through the query
//! engine, so the DynamoDB hot store works too), and the rules in force.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, request::Parts};
use axum::response::Response;
use serde_json::Value;
use spate_operators::alerts::rules::Rule;

use super::guard::signed_in;
use super::layout::{cell, esc, html, ok, page_body, table};
use crate::console::{Console, client_of};
use crate::query::QueryRequest;

/// Notices shown at most.
const HISTORY_LIMIT: usize = 500;

const HISTORY_SQL: &str = "SELECT a.raised_at, a.state, a.severity, a.rule, a.service, \
     a.window_start, a.window_end, a.value, a.threshold, a.message, \
     w.events, w.info, w.warning, w.error, w.critical \
     FROM alerts a LEFT JOIN windows w \
     ON w.service = a.service AND w.window_start = a.window_start \
     ORDER BY a.raised_at DESC, a.id DESC";

const HEADERS: [&str; 15] = [
    "raised (UTC)",
    "state",
    "severity",
    "rule",
    "service",
    "window start",
    "window end",
    "value",
    "threshold",
    "message",
    "events",
    "info",
    "warning",
    "error",
    "critical",
];

/// `GET /ui/alerts`.
pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let session = match signed_in(&console, &parts) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let result = console
        .run_query(
            &session,
            QueryRequest {
                sql: Some(HISTORY_SQL.to_string()),
                filter: Default::default(),
                limit: HISTORY_LIMIT,
                timeout: Duration::ZERO,
                audit: false,
            },
        )
        .await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    console
        .audit(
            &session.user,
            &client_of(&parts),
            "query",
            outcome,
            HISTORY_SQL,
        )
        .await;
    let output = match result {
        Ok(o) => o,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let main = format!(
                r#"<h1>Alerts</h1><p class="error" role="alert">{}</p>"#,
                esc(&e.to_string())
            );
            return html(status, page_body("Alerts", Some(&session), &main));
        }
    };
    let rows: Vec<Vec<String>> = output
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let firing = firing_now(&rows);
    let firing = if firing.is_empty() {
        r#"<p id="firing-none">Nothing is firing.</p>"#.to_string()
    } else {
        table("firing", "Firing now", &HEADERS, &firing)
    };
    let history = if rows.is_empty() {
        r#"<p id="history-none">No alert has been raised.</p>"#.to_string()
    } else {
        table("alert-history", "Notices, newest first", &HEADERS, &rows)
    };
    let main = format!(
        "<h1>Alerts</h1><h2>Firing</h2>{firing}<h2>History</h2>{history}<h2>Rules in force</h2>{}",
        rules_table(&console.rules)
    );
    ok("Alerts", &session, &main)
}

/// The rows (newest first) whose rule and service have no newer notice and
/// which say `firing`.
fn firing_now(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut seen = HashSet::new();
    rows.iter()
        .filter(|r| seen.insert((r[3].clone(), r[4].clone())) && r[1] == "firing")
        .cloned()
        .collect()
}

fn rules_table(rules: &[Rule]) -> String {
    if rules.is_empty() {
        return r#"<p id="rules-none">No rules: alerting is off.</p>"#.to_string();
    }
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                cell(&serde_json::to_value(r.kind).unwrap_or(Value::Null)),
                r.severity.as_str().to_string(),
                r.service.clone().unwrap_or_else(|| "every service".into()),
                r.threshold.to_string(),
                r.tag.clone().unwrap_or_default(),
                r.labels.join(", "),
            ]
        })
        .collect();
    table(
        "rules",
        "Each fires when its value in a window is above the threshold",
        &[
            "name",
            "kind",
            "severity",
            "service",
            "threshold",
            "tag",
            "labels",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, rule: &str, service: &str) -> Vec<String> {
        let mut r = vec![String::new(); 15];
        r[1] = state.into();
        r[3] = rule.into();
        r[4] = service.into();
        r
    }

    #[test]
    fn only_the_newest_notice_of_a_rule_and_service_counts() {
        let rows = vec![
            row("resolved", "error_burst", "checkout"),
            row("firing", "error_burst", "checkout"),
            row("firing", "critical", "checkout"),
            row("firing", "error_burst", "search"),
        ];
        let firing = firing_now(&rows);
        let keys: Vec<(&str, &str)> = firing.iter().map(|r| (&*r[3], &*r[4])).collect();
        assert_eq!(keys, [("critical", "checkout"), ("error_burst", "search")]);
        let rules = rules_table(
            &spate_operators::alerts::rules::compile_rules(
                &spate_operators::alerts::rules::default_rules(),
            )
            .unwrap(),
        );
        assert!(
            rules.contains("error_burst") && rules.contains("error_count"),
            "{rules}"
        );
    }
}
