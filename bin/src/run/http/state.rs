//! What the handlers share: [`HttpState`], and where accepted records go
//! ([`LogAcceptor`]).

use std::sync::Arc;

use spate_engine::work_threads::WorkThreads;

use futures_util::future::BoxFuture;

use super::budget::{BodyPace, InflightBudget};
use super::config::HttpConfig;
use super::idempotency::KeyWindow;
use super::query_service::QueryService;
use crate::console::Console;
use crate::query::QueryContext;
use crate::query::executor::{QueryConfig, QueryExecutor};
use crate::run::body::{BodyRecord, Limits};

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
    /// Where accepted records go.
    pub(super) acceptor: Arc<dyn LogAcceptor>,
    /// The bearer token of `/v1/*`, if one is configured.
    pub(super) token: Option<Vec<u8>>,
    /// Largest body as sent, bytes.
    pub(super) max_body: usize,
    /// Limits of the decompressed body and of one payload in it.
    pub(super) limits: Limits,
    /// Memory all request bodies may hold at once.
    pub(super) inflight: InflightBudget,
    /// How slowly a body may arrive.
    pub(super) pace: BodyPace,
    /// Whether `/metrics` wants the token too.
    pub(super) metrics_auth: bool,
    /// Renders `/metrics`.
    pub(super) render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// What `POST /v1/query` runs on (none: answered 404).
    pub(super) query: Option<QueryService>,
    /// Turns true when the service starts shutting down (open taps end).
    pub(super) closing: tokio::sync::watch::Receiver<bool>,
    /// Keys of recent pushes (`Idempotency-Key`).
    pub(super) keys: KeyWindow,
    /// The web console (`/ui`), whose sessions the APIs accept too.
    pub(super) console: Option<Arc<Console>>,
    /// Where large bodies are decompressed and parsed: one thread per core,
    /// so their memory stays in that many allocator heaps (see
    /// [`WorkThreads`]); tokio's blocking pool if they could not start.
    pub(super) parsers: Option<WorkThreads>,
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
        self.query = Some(QueryService::new(ctx, executor, config));
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
            keys: KeyWindow::default(),
            console: None,
            parsers: body_parsers(),
        }
    }
}

/// One parser thread per core.
fn body_parsers() -> Option<WorkThreads> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    WorkThreads::spawn("http-parse", cores)
        .inspect_err(|e| tracing::warn!(error = %e, "body parsers use the blocking pool"))
        .ok()
}
