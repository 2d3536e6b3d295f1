//! The HTTP API of `spate run`: `POST /v1/logs` (see [`ingest`]),
//! `POST /v1/query` (see [`query`]), `GET /v1/tap` (see [`tap`]),
//! `/healthz`, `/readyz`, `/metrics`,
//! served by [`serve::serve`].
//!
//! A push is answered 200 only once its records are durably accepted (appended
//! to the journal and fsynced; see [`LogAcceptor`]). Other answers:
//!
//! | status | when |
//! |---|---|
//! | 400 | the body cannot be read (reason in the body; see [`super::body`]) |
//! | 401 | a token is configured and the request lacks it or has another (or, on the read APIs, console users exist and the request has neither the token nor a session) |
//! | 403 | a POST signed in with a console session lacks its `X-CSRF-Token` |
//! | 409 + `Retry-After` | a push with the same `Idempotency-Key` is being accepted (see [`idempotency`]) |
//! | 408 | the body arrived too slowly (`body_timeout`, `min_body_rate`); the connection closes |
//! | 413 | the body, its decompressed form, or one payload in it is larger than allowed |
//! | 429 + `Retry-After` | the pipeline is behind (journal backlog full) or the in-flight memory budget is taken |
//! | 503 + `Retry-After` | the journal cannot take data (disk limit, I/O error, shutting down) |
//!
//! The web console (`/ui`, see [`crate::console`]) is served beside them
//! when [`HttpState::with_console`] gave one; its session cookie then stands
//! for the token on `/v1/*` (with the session's CSRF token in
//! `X-CSRF-Token` on a POST), and once a console user exists the read APIs
//! (`/v1/query`, `/v1/tap`) want the token or a session even without a
//! token configured. Ingest without a token stays open.
//!
//! `/readyz` answers 503 whenever a push would be refused that way (see
//! [`LogAcceptor::ready`]). With a token, `/metrics` stays open unless
//! `metrics_auth = true`.
//!
//! # Backpressure
//!
//! Memory is bounded twice: what request bodies hold while they are received,
//! decompressed, parsed and appended shares a budget of `max_inflight_size`
//! (charged as it grows, so a gzip bomb or a JSON array cannot exceed it; a
//! request that does not fit is answered 429 at once), and the journal
//! refuses appends once the pipeline's unread backlog passes its limit.
//! Clients retry after `Retry-After`; nothing refused was accepted, so
//! nothing accepted is lost. Slow clients are cut off (408, or the header
//! timeout), so they hold neither budget nor connections for long.
//!
//! # Shutdown
//!
//! On SIGTERM the listener stops accepting connections and requests in progress
//! get `drain_timeout` to finish (their appends complete and are answered);
//! connections still open then are closed, and the journal closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use spate_operators::component::ConfigError;

use spate_operators::component::units::{KiB, Seconds};

use self::auth::{Access, authorize, authorize_api, unauthorized};
use self::ingest::{BodyPace, InflightBudget};
use super::body::{BodyRecord, Limits};
use crate::console::Console;
use crate::query::QueryContext;
use crate::query::executor::{QueryConfig, QueryExecutor};

mod auth;
mod idempotency;
mod ingest;
mod query;
pub mod serve;
pub mod tap;

/// `[http]`: the HTTP listener of `spate run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (`--listen`, then the `SPATE_LISTEN` environment
    /// variable, override it; the container image sets `0.0.0.0:8470`).
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
    /// Memory that request bodies may hold at once, over all connections:
    /// received, decompressed, parsed and being appended (charged as it
    /// grows). A request that does not fit is answered 429.
    #[serde(
        rename = "max_inflight_size",
        alias = "max_inflight_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_inflight_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_inflight_mib: usize,
    /// Time a client has to send a request's headers, from the connection's
    /// start or the end of the previous response (idle keep-alive
    /// connections close after it too).
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Seconds,
    /// Time a request body may take before `min_body_rate` counts: a body
    /// must arrive within `body_timeout` plus one second per `min_body_rate`
    /// received, else it is answered 408 and its connection closed.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: Seconds,
    /// The slowest a body may arrive on average, per second (see
    /// `body_timeout`).
    #[serde(default = "default_min_body_rate")]
    pub min_body_rate: KiB,
    /// At shutdown, time requests in progress get to finish before their
    /// connections are closed (before the pipeline drains).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Seconds,
    /// Require the bearer token on `/metrics` too. Off by default: with a
    /// token configured, `/metrics` (counters and gauges, no log data) stays
    /// open for Prometheus scrapers without credentials.
    #[serde(default)]
    pub metrics_auth: bool,
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
fn default_header_timeout() -> Seconds {
    Seconds::units(30)
}
fn default_body_timeout() -> Seconds {
    Seconds::units(10)
}
fn default_min_body_rate() -> KiB {
    KiB::units(32)
}
fn default_drain_timeout() -> Seconds {
    Seconds::units(5)
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            max_body_mib: default_max_body_mib(),
            max_decoded_mib: default_max_decoded_mib(),
            max_inflight_mib: default_max_inflight_mib(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            min_body_rate: default_min_body_rate(),
            drain_timeout: default_drain_timeout(),
            metrics_auth: false,
            auth_token: None,
            auth_token_env: None,
        }
    }
}

impl HttpConfig {
    /// Checks the settings without I/O: `listen` is an address with a port,
    /// the sizes and timeouts are positive, a token given is not blank.
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
        for (key, value) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            if value.get() < std::time::Duration::from_millis(100) {
                return Err(ConfigError::new(key, "must be at least 100ms"));
            }
        }
        if self.min_body_rate.bytes() < 1024 {
            return Err(ConfigError::new("min_body_rate", "must be at least 1KiB"));
        }
        if self.max_inflight_mib < self.max_body_mib {
            return Err(ConfigError::new(
                "max_inflight_size",
                format!(
                    "is smaller than max_body_size ({}MiB): no body that size could be received",
                    self.max_body_mib
                ),
            ));
        }
        if self
            .auth_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
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
                Ok(t) if !t.trim().is_empty() => Ok(Some(t)),
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
    /// Durably accepts the records of one request (all or none); `key`: its
    /// `Idempotency-Key`, from which the records' event ids are derived.
    fn accept(
        &self,
        records: Vec<BodyRecord>,
        key: Option<&str>,
    ) -> BoxFuture<'static, Result<(), Refusal>>;
    /// `Ok` when a push would be accepted now, else why it would be refused
    /// (`/readyz` answers 503 with the reason).
    fn ready(&self) -> Result<(), String>;
}

/// What the handlers share.
pub struct HttpState {
    acceptor: Arc<dyn LogAcceptor>,
    token: Option<Vec<u8>>,
    max_body: usize,
    limits: Limits,
    inflight: InflightBudget,
    pace: BodyPace,
    metrics_auth: bool,
    render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    query: Option<query::QueryService>,
    /// Turns true when the service starts shutting down (open taps end).
    closing: tokio::sync::watch::Receiver<bool>,
    /// Keys of recent pushes (`Idempotency-Key`).
    keys: idempotency::KeyWindow,
    /// The web console (`/ui`), whose sessions the APIs accept too.
    console: Option<Arc<Console>>,
}

impl HttpState {
    /// Serves `POST /v1/query` over `ctx` (behind the same token as ingest),
    /// running the queries on `executor` with the time limits of `config`.
    pub fn with_query(
        mut self,
        ctx: Arc<QueryContext>,
        executor: QueryExecutor,
        config: &QueryConfig,
    ) -> Self {
        self.query = Some(query::QueryService::new(ctx, executor, config));
        self
    }

    /// Serves the web console at `/ui`, and accepts its sessions on the
    /// APIs (see the module docs).
    pub fn with_console(mut self, console: Arc<Console>) -> Self {
        self.console = Some(console);
        self
    }

    /// Ends the streaming answers (`GET /v1/tap`) when `closing` turns
    /// true, so they do not hold the drain up.
    pub fn with_closing(mut self, closing: tokio::sync::watch::Receiver<bool>) -> Self {
        self.closing = closing;
        self
    }

    /// State for the router. One payload inside a body (a Firehose record,
    /// a base64 gzip line) may decompress to `max_payload` bytes at most
    /// (the decoder's `max_payload_bytes`).
    pub fn new(
        config: &HttpConfig,
        max_payload: usize,
        token: Option<String>,
        acceptor: Arc<dyn LogAcceptor>,
        render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    ) -> Self {
        let max_decoded = config.max_decoded_mib.max(1) << 20;
        HttpState {
            acceptor,
            token: token.map(String::into_bytes),
            max_body: config.max_body_mib.max(1) << 20,
            limits: Limits {
                max_decoded,
                max_record: max_payload.clamp(1, max_decoded),
            },
            inflight: InflightBudget::new(config.max_inflight_mib),
            pace: BodyPace {
                timeout: config.body_timeout.get(),
                min_rate: config.min_body_rate.bytes().max(1),
            },
            metrics_auth: config.metrics_auth,
            render_metrics,
            query: None,
            closing: tokio::sync::watch::channel(false).1,
            keys: idempotency::KeyWindow::default(),
            console: None,
        }
    }
}

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    let console = state.console.clone();
    let api = Router::new()
        .route("/v1/logs", post(post_logs))
        .route("/v1/query", post(post_query))
        .route("/v1/tap", get(get_tap))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    match console {
        Some(console) => api.merge(crate::console::router(console)),
        None => api,
    }
}

/// Binds the listener (so the caller can print the real address).
pub async fn bind(listen: &str) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
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

async fn post_logs(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let started = Instant::now();
    let response = ingest::handle(&state, request).await;
    count("/v1/logs", response.status(), started);
    response
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

async fn get_tap(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    params: axum::extract::Query<Vec<(String, String)>>,
) -> Response {
    let started = Instant::now();
    let response = tap::handle(&state, &headers, params).await;
    count("/v1/tap", response.status(), started);
    response
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    match state.acceptor.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if state.metrics_auth
        && let Some(response) = unauthorized(&state, &headers)
    {
        return response;
    }
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
        fn accept(
            &self,
            records: Vec<BodyRecord>,
            _key: Option<&str>,
        ) -> BoxFuture<'static, Result<(), Refusal>> {
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
            config.max_decoded_mib << 20,
            token.map(str::to_string),
            fake.clone(),
            Arc::new(|| "spate_up 1\n".to_string()),
        );
        let (listener, addr) = bind("127.0.0.1:0").await.unwrap();
        let timeouts = serve::ServeTimeouts {
            header: config.header_timeout.get(),
            drain: config.drain_timeout.get(),
        };
        let app = router(Arc::new(state));
        tokio::spawn(serve::serve(
            listener,
            app,
            timeouts,
            std::future::pending(),
        ));
        (format!("http://{addr}"), fake)
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

        // With a token, /metrics stays open unless metrics_auth is on.
        let r = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "spate_up 1\n");
        let r = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let config = HttpConfig {
            metrics_auth: true,
            ..HttpConfig::default()
        };
        let (url, _) = serve(config, Some("s3cret")).await;
        let r = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = client
            .get(format!("{url}/metrics"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "spate_up 1\n");
    }

    #[test]
    fn blank_tokens_and_impossible_budgets_are_refused() {
        let with = |f: &dyn Fn(&mut HttpConfig)| {
            let mut config = HttpConfig::default();
            f(&mut config);
            config.validate().map_err(|e| e.to_string())
        };
        for token in ["", "  "] {
            let err = with(&|c| c.auth_token = Some(token.into())).unwrap_err();
            assert!(err.contains("auth_token"), "{err}");
        }
        let err = with(&|c| c.max_inflight_mib = 8).unwrap_err();
        assert!(err.contains("max_inflight_size"), "{err}");
        let err = with(&|c| c.min_body_rate = KiB::from_bytes(100)).unwrap_err();
        assert!(err.contains("min_body_rate"), "{err}");
        let err = with(&|c| c.body_timeout = Seconds::units(0)).unwrap_err();
        assert!(err.contains("body_timeout"), "{err}");
        assert!(with(&|_| {}).is_ok());
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
