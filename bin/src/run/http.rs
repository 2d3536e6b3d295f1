//! The HTTP API of `spate run`: `POST /v1/logs`, `POST /v1/query` (see
//! [`query`]), `/healthz`, `/readyz`,
//! `/metrics`.
//!
//! A push is answered 200 only once its records are durably accepted (appended
//! to the journal and fsynced; see [`LogAcceptor`]). Other answers:
//!
//! | status | when |
//! |---|---|
//! | 400 | the body cannot be read (reason in the body; see [`super::body`]) |
//! | 401 | a token is configured and the request lacks it or has another |
//! | 413 | the body (or its decompressed form) is larger than allowed |
//! | 429 + `Retry-After` | the pipeline is behind (journal backlog full) or too many bytes are being received at once |
//! | 503 + `Retry-After` | the journal cannot take data (disk limit, I/O error, shutting down) |
//!
//! # Backpressure
//!
//! Memory is bounded twice: bodies being received and parsed share a budget of
//! `max_inflight_size` (a request that does not fit is answered 429 at once, before
//! its body is read), and the journal refuses appends once the pipeline's unread
//! backlog passes its limit. Clients retry after `Retry-After`; nothing refused
//! was accepted, so nothing accepted is lost.
//!
//! # Shutdown
//!
//! On SIGTERM the listener stops accepting connections and requests in progress
//! finish (their appends complete and are answered) before the journal closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use spate_operators::component::ConfigError;

use super::body::{self, BodyError, BodyRecord};
use crate::query::QueryContext;
use crate::query::executor::{QueryConfig, QueryExecutor};

mod query;

/// `[http]`: the HTTP listener of `spate run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (`--listen` overrides it).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, as sent (compressed or not).
    #[serde(
        rename = "max_body_size",
        alias = "max_body_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_body_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_body_mib: usize,
    /// Largest body after decompression.
    #[serde(
        rename = "max_decoded_size",
        alias = "max_decoded_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_decoded_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_decoded_mib: usize,
    /// Bytes of request bodies received and parsed at once, over all
    /// connections; a request that does not fit is answered 429.
    #[serde(
        rename = "max_inflight_size",
        alias = "max_inflight_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_inflight_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_inflight_mib: usize,
    /// Bearer token required on `/v1/*` (none: no authentication). Prefer
    /// `auth_token_env` so the token stays out of the file.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Name of an environment variable holding the bearer token.
    #[serde(default)]
    pub auth_token_env: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8470".to_string()
}
fn default_max_body_mib() -> usize {
    16
}
fn default_max_decoded_mib() -> usize {
    64
}
fn default_max_inflight_mib() -> usize {
    256
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            max_body_mib: default_max_body_mib(),
            max_decoded_mib: default_max_decoded_mib(),
            max_inflight_mib: default_max_inflight_mib(),
            auth_token: None,
            auth_token_env: None,
        }
    }
}

impl HttpConfig {
    /// Checks the settings without I/O: `listen` is an address with a port,
    /// the sizes are positive, a token given is not empty.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_listen(&self.listen).map_err(|e| ConfigError::new("listen", e))?;
        for (key, value) in [
            ("max_body_size", self.max_body_mib),
            ("max_decoded_size", self.max_decoded_mib),
            ("max_inflight_size", self.max_inflight_mib),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.auth_token.as_deref() == Some("") {
            return Err(ConfigError::new(
                "auth_token",
                "is empty; remove the key to serve without authentication",
            ));
        }
        if self.auth_token_env.as_deref() == Some("") {
            return Err(ConfigError::new("auth_token_env", "names no variable"));
        }
        Ok(())
    }

    /// The token in force: `auth_token_env`'s variable, else `auth_token`.
    /// A variable that is unset or empty is an error, never "no auth".
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        if let Some(var) = &self.auth_token_env {
            return match std::env::var(var) {
                Ok(t) if !t.is_empty() => Ok(Some(t)),
                Ok(_) => Err(ConfigError::new(
                    "auth_token_env",
                    format!("environment variable {var} is empty"),
                )),
                Err(_) => Err(ConfigError::new(
                    "auth_token_env",
                    format!("environment variable {var} is not set"),
                )),
            };
        }
        Ok(self.auth_token.clone())
    }
}

/// `listen` must be `ADDRESS:PORT` (`127.0.0.1:8470`, `0.0.0.0:8470`,
/// `[::]:8470`, or a host name with a port).
pub fn check_listen(listen: &str) -> Result<(), String> {
    if listen.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let hint = "must be an address and a port, such as 127.0.0.1:8470 (this machine only) or 0.0.0.0:8470 (every interface)";
    match listen.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !host.contains(['[', ']', ':', '/'])
                && port.parse::<u16>().is_ok() =>
        {
            Ok(())
        }
        _ => Err(format!("{listen:?} {hint}")),
    }
}

/// Why records were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The pipeline is behind; retry soon (429).
    Saturated {
        /// Why.
        reason: String,
    },
    /// The store cannot take data now (503).
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// Where accepted records go: the journal in `spate run`, a fake in tests.
pub trait LogAcceptor: Send + Sync + 'static {
    /// Durably accepts the records of one request (all or none).
    fn accept(&self, records: Vec<BodyRecord>) -> BoxFuture<'static, Result<(), Refusal>>;
    /// `Ok` when ready for traffic, else why not (`/readyz`).
    fn ready(&self) -> Result<(), String>;
}

/// What the handlers share.
pub struct HttpState {
    acceptor: Arc<dyn LogAcceptor>,
    token: Option<Vec<u8>>,
    max_body: usize,
    max_decoded: usize,
    inflight: Arc<Semaphore>,
    inflight_kib: usize,
    render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    query: Option<query::QueryService>,
}

impl HttpState {
    /// Serves `POST /v1/query` over `ctx` (behind the same token as ingest),
    /// running the queries on `executor` with the time limits of `config`.
    pub fn with_query(
        mut self,
        ctx: QueryContext,
        executor: QueryExecutor,
        config: &QueryConfig,
    ) -> Self {
        self.query = Some(query::QueryService::new(ctx, executor, config));
        self
    }

    /// State for the router.
    pub fn new(
        config: &HttpConfig,
        token: Option<String>,
        acceptor: Arc<dyn LogAcceptor>,
        render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    ) -> Self {
        let inflight_kib = (config.max_inflight_mib.max(1) * 1024).min(Semaphore::MAX_PERMITS);
        HttpState {
            acceptor,
            token: token.map(String::into_bytes),
            max_body: config.max_body_mib.max(1) << 20,
            max_decoded: config.max_decoded_mib.max(1) << 20,
            inflight: Arc::new(Semaphore::new(inflight_kib)),
            inflight_kib,
            render_metrics,
            query: None,
        }
    }
}

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/logs", post(post_logs))
        .route("/v1/query", post(post_query))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Binds the listener (so the caller can print the real address).
pub async fn bind(listen: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.token else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), expected)
}

fn json_error(status: StatusCode, reason: &str) -> Response {
    let body = serde_json::json!({ "error": reason });
    (status, axum::Json(body)).into_response()
}

fn with_retry_after(mut response: Response, secs: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Counts a request to `path` by status, and its duration.
fn count(path: &'static str, status: StatusCode, started: Instant) {
    metrics::counter!("spate_http_requests_total", "path" => path, "status" => status.as_str().to_string())
        .increment(1);
    metrics::histogram!("spate_http_request_duration_seconds", "path" => path)
        .record(started.elapsed().as_secs_f64());
}

/// The 401 (with `WWW-Authenticate: Bearer`) for a request without the
/// token; `None` when it may pass.
fn unauthorized(state: &HttpState, headers: &HeaderMap) -> Option<Response> {
    if authorized(state, headers) {
        return None;
    }
    let mut r = json_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}

async fn post_logs(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let started = Instant::now();
    let response = handle_post(&state, request).await;
    count("/v1/logs", response.status(), started);
    response
}

async fn handle_post(state: &HttpState, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(response) = unauthorized(state, &parts.headers) {
        return response;
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return too_large(state.max_body);
    }
    // Reserve the body's bytes (or the most it may be) before reading it.
    let kib = declared
        .unwrap_or(state.max_body)
        .div_ceil(1024)
        .clamp(1, state.inflight_kib) as u32;
    let Ok(_permit) = state.inflight.clone().try_acquire_many_owned(kib) else {
        metrics::counter!("spate_http_rejected_total", "reason" => "inflight").increment(1);
        return with_retry_after(
            json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many bytes being received; retry later",
            ),
            1,
        );
    };
    let raw = match axum::body::to_bytes(Body::new(body), state.max_body).await {
        Ok(raw) => raw,
        Err(e) => {
            // axum reports the limit only through the error's text.
            let limit = format!("{e:#}").contains("length limit")
                || std::error::Error::source(&e)
                    .is_some_and(|s| s.to_string().contains("length limit"));
            return if limit {
                too_large(state.max_body)
            } else {
                json_error(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}"))
            };
        }
    };
    metrics::counter!("spate_http_received_bytes_total").increment(raw.len() as u64);
    let encoding = header_str(&parts.headers, header::CONTENT_ENCODING.as_str());
    let firehose_id = header_str(&parts.headers, "x-amz-firehose-request-id");
    let max_decoded = state.max_decoded;
    let parsed = if raw.len() > 256 * 1024 {
        // Decompressing a large body is CPU work: keep it off the async threads.
        let (e, f) = (encoding.clone(), firehose_id.clone());
        tokio::task::spawn_blocking(move || {
            body::parse(&raw, e.as_deref(), f.as_deref(), max_decoded)
        })
        .await
        .unwrap_or_else(|e| Err(BodyError::Gzip(format!("parser failed: {e}"))))
    } else {
        body::parse(
            &raw,
            encoding.as_deref(),
            firehose_id.as_deref(),
            max_decoded,
        )
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(BodyError::TooLarge { .. }) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("decompressed body exceeds {} MiB", state.max_decoded >> 20),
            );
        }
        Err(e) => {
            metrics::counter!("spate_http_rejected_total", "reason" => "unreadable").increment(1);
            return json_error(StatusCode::BAD_REQUEST, &e.to_string());
        }
    };
    let lines = parsed.lines();
    let request_id = parsed.firehose_request_id.or(firehose_id);
    match state.acceptor.accept(parsed.records).await {
        Ok(()) => {
            metrics::counter!("spate_http_accepted_lines_total").increment(lines as u64);
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

fn too_large(max_body: usize) -> Response {
    metrics::counter!("spate_http_rejected_total", "reason" => "too_large").increment(1);
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("body exceeds {} MiB", max_body >> 20),
    )
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn post_query(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let started = Instant::now();
    let response = query::handle(&state, request).await;
    count("/v1/query", response.status(), started);
    response
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    match state.acceptor.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>) -> Response {
    let text = (state.render_metrics)();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Accepts into memory, or refuses as told.
    #[derive(Default)]
    struct Fake {
        accepted: Mutex<Vec<BodyRecord>>,
        refuse: Mutex<Option<Refusal>>,
    }

    impl LogAcceptor for Fake {
        fn accept(&self, records: Vec<BodyRecord>) -> BoxFuture<'static, Result<(), Refusal>> {
            let result = match self.refuse.lock().unwrap().clone() {
                Some(r) => Err(r),
                None => {
                    self.accepted.lock().unwrap().extend(records);
                    Ok(())
                }
            };
            Box::pin(async move { result })
        }
        fn ready(&self) -> Result<(), String> {
            match &*self.refuse.lock().unwrap() {
                Some(_) => Err("journal backlog full".into()),
                None => Ok(()),
            }
        }
    }

    async fn serve(config: HttpConfig, token: Option<&str>) -> (String, Arc<Fake>) {
        let fake = Arc::new(Fake::default());
        let state = HttpState::new(
            &config,
            token.map(str::to_string),
            fake.clone(),
            Arc::new(|| "spate_up 1\n".to_string()),
        );
        let (listener, addr) = bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router(Arc::new(state)))
                .await
                .unwrap();
        });
        (format!("http://{addr}"), fake)
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }

    #[tokio::test]
    async fn answers_by_outcome() {
        let (url, fake) = serve(HttpConfig::default(), Some("s3cret")).await;
        let client = reqwest::Client::new();
        let post = |body: &'static [u8], token: Option<&'static str>| {
            let mut r = client.post(format!("{url}/v1/logs")).body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let r = post(b"{\"msg\":\"a\"}\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["accepted"], 1);
        assert_eq!(fake.accepted.lock().unwrap().len(), 1);

        assert_eq!(post(b"x\n", None).await.unwrap().status(), 401);
        assert_eq!(post(b"x\n", Some("wrong")).await.unwrap().status(), 401);
        let r = post(b"[{\"a\":", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 400);
        let reason = r.json::<serde_json::Value>().await.unwrap();
        assert!(
            reason["error"].as_str().unwrap().contains("JSON array"),
            "{reason}"
        );

        *fake.refuse.lock().unwrap() = Some(Refusal::Saturated {
            reason: "journal backlog full".into(),
        });
        let r = post(b"x\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let r = client.get(format!("{url}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        *fake.refuse.lock().unwrap() = Some(Refusal::Unavailable {
            reason: "shutting down".into(),
        });
        let r = post(b"x\n", Some("s3cret")).await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(fake.accepted.lock().unwrap().len(), 1);

        let r = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "spate_up 1\n");
        let r = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn oversized_bodies_get_413() {
        let config = HttpConfig {
            max_body_mib: 1,
            ..HttpConfig::default()
        };
        let (url, fake) = serve(config, None).await;
        let client = reqwest::Client::new();
        let big = vec![b'a'; (1 << 20) + 10];
        let r = client
            .post(format!("{url}/v1/logs"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        // Without a Content-Length (a stream), the limit still holds.
        let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big)]);
        let r = client
            .post(format!("{url}/v1/logs"))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(fake.accepted.lock().unwrap().is_empty());
    }
}
