//! `POST /v1/query`: the request, the query on the
//! [`QueryExecutor`](crate::query::executor::QueryExecutor), the
//! answer (see [`crate::query::QueryError::http_status`] for the statuses).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::{Access, authorize_api};
use super::respond::{json_error, with_retry_after};
use super::state::HttpState;
use crate::query::filters::LogFilter;
use crate::query::{QueryError, QueryRequest};

/// `POST /v1/query` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    /// The SQL (tables `logs`, `alerts`, `windows`, and `audit` for admins
    /// and the token).
    sql: String,
    /// Rows returned at most (default 1,000, at most 100,000).
    #[serde(default)]
    limit: Option<usize>,
    /// Seconds before the query is cancelled (default and most:
    /// `[query] default_timeout`, `max_timeout`).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

const QUERY_DEFAULT_LIMIT: usize = 1_000;
const QUERY_MAX_LIMIT: usize = 100_000;

/// Answers a `POST /v1/query`; with a console, the query is audited (who,
/// from where, the SQL, the outcome).
pub(super) async fn handle(state: &HttpState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = crate::console::client_of(&parts);
    let caller =
        match authorize_api(state, &parts.headers, &parts.method, Access::Read, &client).await {
            Ok(caller) => caller,
            Err(response) => return *response,
        };
    let Some(service) = &state.query else {
        return json_error(StatusCode::NOT_FOUND, "queries are not enabled");
    };
    let raw = match axum::body::to_bytes(Body::new(body), 1 << 20).await {
        Ok(raw) => raw,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}")),
    };
    let body: QueryBody = match serde_json::from_slice(&raw) {
        Ok(b) => b,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"sql\": \"...\", \"limit\": N, \"timeout_secs\": N}}: {e}"),
            );
        }
    };
    let limit = body
        .limit
        .unwrap_or(QUERY_DEFAULT_LIMIT)
        .clamp(1, QUERY_MAX_LIMIT);
    let timeout = service.config.timeout(body.timeout_secs);
    let ctx = service.ctx.clone();
    let sql = body.sql.clone();
    let audit = caller.sees_audit();
    // The JSON is written on the query threads too.
    let query = async move {
        let request = QueryRequest {
            sql: Some(body.sql),
            filter: LogFilter::default(),
            limit,
            timeout,
            audit,
        };
        let output = crate::query::execute_request(&ctx, &request).await?;
        serde_json::to_vec(&output)
            .map_err(|e| QueryError::Internal(format!("result to json: {e}")))
    };
    // Recorded even if the client goes away (which cancels the query).
    let audit = state
        .console
        .as_ref()
        .map(|console| console.begin_audit(caller.name(), &client, "query", &sql));
    let result = service.executor.run(timeout, query).await;
    if let Some(audit) = audit {
        audit
            .finish(if result.is_ok() { "ok" } else { "error" })
            .await;
    }
    match result {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response(),
        Err(e) => query_error(&e),
    }
}

/// The answer to a failed query: its status, the reason, `Retry-After` when
/// retrying later may work.
fn query_error(e: &QueryError) -> Response {
    let expected = matches!(
        e,
        QueryError::Rejected { .. } | QueryError::ShuttingDown | QueryError::Timeout(_)
    );
    if !expected && !matches!(e.class(), spate_engine::ErrorClass::BadInput) {
        tracing::warn!(class = e.class().as_str(), "query failed: {e}");
    }
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let response = json_error(status, &e.to_string());
    match e.retry_after_secs() {
        Some(secs) => with_retry_after(response, secs),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_refusals_say_when_to_retry() {
        let answer = |e: QueryError| {
            let r = query_error(&e);
            let retry = r
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry)
        };
        let rejected = QueryError::Rejected {
            running: 2,
            queued: 8,
        };
        assert_eq!(answer(rejected), (429, Some("1".into())));
        assert_eq!(answer(QueryError::ShuttingDown), (503, Some("5".into())));
        let timeout = QueryError::Timeout(std::time::Duration::from_secs(5));
        assert_eq!(answer(timeout), (504, None));
        assert_eq!(answer(QueryError::Internal("bug".into())), (500, None));
        let too_large = QueryError::ResultTooLarge("too large".into());
        assert_eq!(answer(too_large), (400, None));
    }
}
