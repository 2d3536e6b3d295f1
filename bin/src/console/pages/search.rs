//! `GET /ui/search`: a time range (last 15m to 7d), service and severity
//! filters, free text (case-insensitive substring of the message) or SQL
//! over `logs` narrowed by those filters; the histogram of the matching
//! events above at most [`ROW_LIMIT`] rows, which stream into the page as
//! the query reads them (see [`super::search_stream`]).
//!
//! Both run on the query threads of `POST /v1/query` with its limits (time,
//! memory, concurrency), so a search never holds up ingest. Filter values
//! reach the query as literals, never as SQL text. The page's Cancel button
//! stops the page load: the connection closes, the request is dropped, and
//! dropping it cancels the queries (audited as `cancelled`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use spate_operators::event::wall_clock_ms;

use super::guard::signed_in;
use super::histogram::{Buckets, svg};
use super::layout::{esc, html, page_body};
use super::search_stream::{self, Frame, RowsQuery, Start};
use crate::console::{Console, client_of};
use crate::query::BatchSink;
use crate::query::filters::{LogFilter, TimeBound, parse_severity};
use crate::query::{QueryOutput, QueryRequest};

/// Rows shown at most.
pub const ROW_LIMIT: usize = 200;

/// The time ranges offered.
const RANGES: [(&str, u64); 5] = [
    ("15m", 900),
    ("1h", 3_600),
    ("6h", 21_600),
    ("24h", 86_400),
    ("7d", 604_800),
];

/// The search form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    sql: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `GET /ui/search`.
pub async fn page(
    State(console): State<Arc<Console>>,
    parts: Parts,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let session = match signed_in(&console, &parts) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let range = non_empty(&params.range).unwrap_or_else(|| "1h".into());
    let service = non_empty(&params.service);
    let severity_text = non_empty(&params.severity);
    let grep = non_empty(&params.q);
    let sql = non_empty(&params.sql);
    let form = form(&range, &service, &severity_text, &grep, &sql);
    let fail = |status: StatusCode, message: &str| {
        let main = format!(
            r#"{form}<p class="error" role="alert" id="search-error">{}</p>"#,
            esc(message)
        );
        html(status, page_body("Search", Some(&session), &main))
    };
    let Some(&(_, secs)) = RANGES.iter().find(|(name, _)| *name == range) else {
        return fail(StatusCode::BAD_REQUEST, "unknown time range");
    };
    let severity = match severity_text.as_deref().map(parse_severity).transpose() {
        Ok(s) => s,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e),
    };
    let until_ms = wall_clock_ms();
    let since_ms = until_ms - Duration::from_secs(secs).as_millis() as i64;
    let filter = LogFilter {
        since: Some(TimeBound::At(since_ms)),
        until: Some(TimeBound::At(until_ms + 1)),
        service: service.clone(),
        severity,
        grep: grep.clone(),
    };
    let buckets = Buckets::covering(since_ms, until_ms + 1);
    let histogram_sql = format!(
        "SELECT CAST(ts AS BIGINT) / {w} * {w} AS bucket, severity, count(*) AS n \
         FROM logs GROUP BY 1, 2",
        w = buckets.width_ms
    );
    let audit_detail = match &sql {
        Some(sql) => format!(
            "range={range} service={service:?} severity={severity_text:?} q={grep:?} sql: {sql}"
        ),
        None => format!("range={range} service={service:?} severity={severity_text:?} q={grep:?}"),
    };
    let client = client_of(&parts);
    // Recorded even if the client goes away (which cancels the queries).
    let audit = console.begin_audit(&session.user, &client, "query", &audit_detail);
    let request = |sql: Option<String>, limit| QueryRequest {
        sql,
        filter: filter.clone(),
        limit,
        timeout: Duration::ZERO,
        audit: false,
    };
    let counts = match console
        .run_query(&session, request(Some(histogram_sql), 100_000))
        .await
    {
        Ok(counts) => counts,
        Err(e) => {
            audit.finish("error").await;
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return fail(status, &e.to_string());
        }
    };
    // The rows stream into the page as the query reads them; the answer
    // starts with the first of them (see `search_stream`).
    let started = tokio::time::Instant::now();
    let (tx, mut rows_rx) = tokio::sync::mpsc::channel(8);
    let mut query: RowsQuery = Box::pin(console.stream_query(
        &session,
        request(sql.clone(), ROW_LIMIT),
        BatchSink::new(tx),
    ));
    let start = search_stream::first(&mut query, &mut rows_rx).await;
    if let Start::Done(Err(e)) = &start {
        audit.finish("error").await;
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return fail(status, &e.to_string());
    }
    const ROWS: &str = "<!--rows-->";
    let main = format!(
        "{form}<section aria-label=\"histogram\">{}</section><section aria-label=\"results\"><script src=\"/ui/static/search-stream.js\"></script>{ROWS}</section>",
        svg(buckets, &bucket_counts(&counts)),
    );
    let page = page_body("Search", Some(&session), &main);
    let (head, tail) = page.split_once(ROWS).unwrap_or((&page, ""));
    let frame = Frame {
        head: head.to_string(),
        tail: tail.to_string(),
    };
    search_stream::respond(frame, start, query, rows_rx, ROW_LIMIT, started, audit)
}

/// The histogram query's rows as counts by bucket start and severity.
fn bucket_counts(output: &QueryOutput) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for row in &output.rows {
        if let [
            Value::Number(bucket),
            Value::String(severity),
            Value::Number(n),
        ] = &row[..]
            && let (Some(bucket), Some(n)) = (bucket.as_i64(), n.as_u64())
        {
            *counts.entry((bucket, severity.clone())).or_default() += n;
        }
    }
    counts
}

fn form(
    range: &str,
    service: &Option<String>,
    severity: &Option<String>,
    grep: &Option<String>,
    sql: &Option<String>,
) -> String {
    let mut ranges = String::new();
    for (name, _) in RANGES {
        let selected = if name == range { " selected" } else { "" };
        ranges.push_str(&format!(
            r#"<option value="{name}"{selected}>last {name}</option>"#
        ));
    }
    let mut severities = String::from(r#"<option value="">any</option>"#);
    for name in ["INFO", "WARNING", "ERROR", "CRITICAL"] {
        let selected = if severity
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
        {
            " selected"
        } else {
            ""
        };
        severities.push_str(&format!(
            r#"<option value="{name}"{selected}>{name} and above</option>"#
        ));
    }
    let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
    format!(
        r#"<h1>Search</h1>
<form method="get" action="/ui/search" class="search" id="search-form">
<label for="range">Time</label><select id="range" name="range">{ranges}</select>
<label for="service">Service</label><input id="service" name="service" value="{service}" placeholder="any">
<label for="severity">Severity</label><select id="severity" name="severity">{severities}</select>
<label for="q">Text</label><input id="q" name="q" value="{grep}" placeholder="in the message">
<label for="sql" class="wide">SQL over <code>logs</code> (optional; the filters above narrow <code>logs</code>)</label>
<textarea id="sql" name="sql" rows="3" class="wide" placeholder="SELECT service, count(*) FROM logs GROUP BY service">{sql}</textarea>
<button type="submit" id="run-search">Search</button>
<button type="button" id="cancel-search" hidden>Cancel</button>
<p id="search-status" role="status" aria-live="polite" class="wide note"></p>
</form>"#,
        service = value(service),
        grep = value(grep),
        sql = value(sql),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::OutputColumn;

    #[test]
    fn histogram_rows_become_counts() {
        let output = QueryOutput {
            columns: vec![OutputColumn {
                name: "message".into(),
                data_type: "Utf8".into(),
            }],
            rows: vec![
                vec![Value::from(60_000), Value::from("ERROR"), Value::from(3)],
                vec![Value::from(60_000), Value::from("INFO"), Value::from(5)],
                vec![Value::Null, Value::from("INFO"), Value::from(5)],
            ],
            truncated: true,
            files_scanned: 1,
            elapsed_ms: 2,
        };
        let counts = bucket_counts(&output);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[&(60_000, "ERROR".to_string())], 3);
    }
}
