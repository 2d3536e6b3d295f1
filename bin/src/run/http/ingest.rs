//! `POST /v1/logs`: the body read within the memory budget and the slow-client
//! deadline, parsed (see [`crate::run::body`]), appended to the journal.
//!
//! # Backpressure
//!
//! Every request charges what it holds to one budget of `max_inflight_size`
//! shared by all connections: the bytes received so far, then the body as it
//! decompresses and parses (the charge grows with the buffers, see the body
//! module's `# Memory`), then its records and the journal's framed copy of
//! them until they are fsynced. A charge that does not fit is answered 429
//! with `Retry-After` at once, whatever stage the request is in; a body that
//! could never fit (more than the whole budget) is answered 413. A client
//! that declares a large `Content-Length` and sends slowly holds only what
//! it has sent.
//!
//! The receive buffer is charged by what it holds, not by its capacity: the
//! pages of a large allocation that were never written take no memory.
//!
//! A body must arrive within `body_timeout` plus one second per
//! `min_body_rate` received ([`super::budget::body_deadline`]); past that the request is
//! answered 408 and its connection closed.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::auth::{Access, authorize};
use super::budget::{BodyPace, Reservation, body_deadline};
use super::idempotency::{self, Claim};
use super::respond::{header_str, json_error, with_retry_after};
use super::state::{HttpState, Refusal};
use crate::run::body::{self, BodyError, Budget};

/// Bodies larger than this are parsed off the async threads.
const PARSE_INLINE_MAX: usize = 256 * 1024;

/// Why a body was not read.
#[derive(Debug)]
enum ReadError {
    TooLarge,
    TimedOut,
    Broken(String),
    Budget(BodyError),
}

/// Reads a body into one buffer (sized by `Content-Length` when given).
async fn read_body(
    body: Body,
    declared: Option<usize>,
    max_body: usize,
    pace: BodyPace,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ReadError> {
    let started = Instant::now();
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = declared.map_or_else(Vec::new, |n| Vec::with_capacity(n + 1));
    loop {
        let deadline = started + body_deadline(pace, buf.len());
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| ReadError::TimedOut)?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ReadError::Broken(e.to_string()))?;
        let len = buf.len() + chunk.len();
        if len > max_body {
            return Err(ReadError::TooLarge);
        }
        if len + 1 > buf.capacity() {
            // No (or a wrong) Content-Length: the copy and the original
            // exist together while the buffer grows.
            let grown = (buf.capacity() * 2)
                .max(len + 1)
                .max(64 << 10)
                .min(max_body + 1);
            reservation
                .hold(buf.len() + grown)
                .map_err(ReadError::Budget)?;
            buf.reserve_exact(grown - buf.len());
        }
        reservation.hold(len).map_err(ReadError::Budget)?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Answers a `POST /v1/logs`.
pub(super) async fn handle(state: &HttpState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(response) = authorize(state, &parts.headers, &parts.method, Access::Ingest) {
        return *response;
    }
    let key = header_str(&parts.headers, idempotency::HEADER);
    let claim = match key.clone() {
        None => None,
        Some(key) if !idempotency::valid_key(&key) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Idempotency-Key must be 1 to {} visible ASCII characters",
                    idempotency::MAX_KEY_LEN
                ),
            );
        }
        Some(key) => match state.keys.claim(&key, std::time::Instant::now()) {
            Claim::New(claim) => Some(claim),
            Claim::Done { lines } => {
                // Accepted before: the client lost our answer.
                metrics::counter!("spate_http_idempotent_replays_total").increment(1);
                let body = serde_json::json!({ "accepted": lines, "replayed": true });
                return (StatusCode::OK, axum::Json(body)).into_response();
            }
            Claim::InFlight => {
                return with_retry_after(
                    json_error(
                        StatusCode::CONFLICT,
                        "a push with this Idempotency-Key is being accepted",
                    ),
                    1,
                );
            }
        },
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return too_large(&format!("body exceeds {} MiB", state.max_body >> 20));
    }
    let mut reservation = state.inflight.reserve();
    let raw = match read_body(body, declared, state.max_body, state.pace, &mut reservation).await {
        Ok(raw) => raw,
        Err(ReadError::TooLarge) => {
            return too_large(&format!("body exceeds {} MiB", state.max_body >> 20));
        }
        Err(ReadError::TimedOut) => return timed_out(),
        Err(ReadError::Broken(e)) => {
            return json_error(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}"));
        }
        Err(ReadError::Budget(e)) => return refused(e),
    };
    metrics::counter!("spate_http_received_bytes_total").increment(raw.len() as u64);
    if let Err(e) = reservation.hold(raw.capacity()) {
        return refused(e);
    }
    let encoding = header_str(&parts.headers, header::CONTENT_ENCODING.as_str());
    let firehose_id = header_str(&parts.headers, "x-amz-firehose-request-id");
    let limits = state.limits;
    let parse = move |raw: Vec<u8>, mut reservation: Reservation| {
        let parsed = body::parse_within(
            raw.into(),
            encoding.as_deref(),
            firehose_id.as_deref(),
            limits,
            &mut reservation,
        );
        (parsed, reservation)
    };
    let (parsed, mut reservation) = if raw.len() > PARSE_INLINE_MAX {
        // Decompressing and parsing a large body is CPU work: keep it off
        // the async threads, on the parser threads.
        let parsed = match &state.parsers {
            Some(parsers) => parsers
                .run(move || parse(raw, reservation))
                .await
                .map_err(|e| e.to_string()),
            None => tokio::task::spawn_blocking(move || parse(raw, reservation))
                .await
                .map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(done) => done,
            Err(e) => {
                return json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("body parser failed: {e}"),
                );
            }
        }
    } else {
        parse(raw, reservation)
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    // The journal frames a copy of the records before it writes them.
    if let Err(e) = reservation.hold(2 * parsed.held_bytes()) {
        return refused(e);
    }
    let lines = parsed.lines();
    let request_id = parsed
        .firehose_request_id
        .or_else(|| header_str(&parts.headers, "x-amz-firehose-request-id"));
    let accepted = state.acceptor.accept(parsed.records, key.as_deref()).await;
    drop(reservation);
    match accepted {
        Ok(()) => {
            metrics::counter!("spate_http_accepted_lines_total").increment(lines as u64);
            if let Some(claim) = claim {
                claim.complete(lines as u64);
            }
            let body = match request_id {
                Some(id) => serde_json::json!({
                    "requestId": id,
                    "timestamp": spate_operators::event::wall_clock_ms(),
                }),
                None => serde_json::json!({ "accepted": lines }),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(Refusal::Saturated { reason }) => {
            metrics::counter!("spate_http_rejected_total", "reason" => "saturated").increment(1);
            with_retry_after(json_error(StatusCode::TOO_MANY_REQUESTS, &reason), 1)
        }
        Err(Refusal::Unavailable { reason }) => {
            metrics::counter!("spate_http_rejected_total", "reason" => "unavailable").increment(1);
            with_retry_after(json_error(StatusCode::SERVICE_UNAVAILABLE, &reason), 5)
        }
    }
}

/// The answer to a body that cannot be taken.
fn refused(error: BodyError) -> Response {
    match error {
        BodyError::Busy => {
            metrics::counter!("spate_http_rejected_total", "reason" => "inflight").increment(1);
            with_retry_after(
                json_error(StatusCode::TOO_MANY_REQUESTS, &error.to_string()),
                1,
            )
        }
        BodyError::TooLarge { .. }
        | BodyError::PayloadTooLarge { .. }
        | BodyError::OverBudget { .. } => too_large(&error.to_string()),
        other => {
            metrics::counter!("spate_http_rejected_total", "reason" => "unreadable").increment(1);
            json_error(StatusCode::BAD_REQUEST, &other.to_string())
        }
    }
}

fn too_large(reason: &str) -> Response {
    metrics::counter!("spate_http_rejected_total", "reason" => "too_large").increment(1);
    json_error(StatusCode::PAYLOAD_TOO_LARGE, reason)
}

/// 408, and the connection closes (the rest of the body is not read).
fn timed_out() -> Response {
    metrics::counter!("spate_http_rejected_total", "reason" => "slow").increment(1);
    let mut response = json_error(
        StatusCode::REQUEST_TIMEOUT,
        "body arrived too slowly (http.body_timeout, http.min_body_rate)",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::super::budget::InflightBudget;
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_times_out_and_holds_only_what_it_sent() {
        let budget = InflightBudget::new(64);
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        let body = Body::from_stream(chunks);
        let pace = BodyPace {
            timeout: Duration::from_secs(10),
            min_rate: 1024,
        };
        // A byte a second, of a declared 16 MiB.
        let sender = tokio::spawn(async move {
            while tx.send(bytes::Bytes::from_static(b"x")).await.is_ok() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut reservation = budget.reserve();
        let started = Instant::now();
        let read = read_body(body, Some(16 << 20), 16 << 20, pace, &mut reservation).await;
        assert!(matches!(read, Err(ReadError::TimedOut)), "{read:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(10) && took < Duration::from_secs(11),
            "{took:?}"
        );
        assert_eq!(budget.held_kib(), 1, "11 bytes received");
        drop(reservation);
        sender.abort();
    }
}
