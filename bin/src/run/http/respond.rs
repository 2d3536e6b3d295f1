//! The answers every handler shares: a JSON error, `Retry-After`, a header
//! read as text, and the per-path request counters.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `{"error": reason}` with `status`.
pub(super) fn json_error(status: StatusCode, reason: &str) -> Response {
    let body = serde_json::json!({ "error": reason });
    (status, axum::Json(body)).into_response()
}

/// `response` with `Retry-After: secs`.
pub(super) fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// The header `name` as text, if present and readable.
pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Counts a request to `path` by status, and its duration.
pub(super) fn count(path: &'static str, status: StatusCode, started: Instant) {
    metrics::counter!("spate_http_requests_total", "path" => path, "status" => status.as_str().to_string())
        .increment(1);
    metrics::histogram!("spate_http_request_duration_seconds", "path" => path)
        .record(started.elapsed().as_secs_f64());
}
