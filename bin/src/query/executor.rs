//! Where queries run: their own threads, a few at a time, with a hard time
//! limit, apart from the threads that serve ingest, health checks and signals.
//!
//! A [`QueryExecutor`] owns a small tokio runtime (`[query] threads`). A query
//! submitted with [`QueryExecutor::run`] waits for one of `max_concurrent`
//! slots, in a queue of at most `queue_len`; beyond that it is refused at once
//! ([`QueryError::Rejected`], HTTP 429 with `Retry-After`). It then runs on the
//! executor's threads while the caller waits on its own runtime, so the caller's
//! timer fires on time however hard the query computes: at the deadline (which
//! counts the time queued) the caller gets [`QueryError::Timeout`] and the
//! query's task is aborted, which drops its stream and with it DataFusion's
//! operators and the tasks they spawned (they stop at their next yield: scans
//! yield every so many batches, and [`super::yielding`] makes joins yield too).
//! A query that panics becomes an error with the panic's message; the caller
//! always gets an answer.
//!
//! # Backpressure
//!
//! At most `max_concurrent` queries run and `queue_len` wait; the rest are
//! refused. A slot is released only when the query's task has really ended (not
//! when its caller gave up), so a query slow to stop keeps its slot and CPU use
//! stays bounded. Each query's memory is bounded by its session
//! ([`super::QueryContext`], `memory_limit`).
//!
//! # Shutdown
//!
//! [`QueryExecutor::shutdown`] refuses new queries and cancels the running and
//! queued ones ([`QueryError::ShuttingDown`], HTTP 503), so a draining HTTP
//! server is not held up by a long query. Dropping the last handle shuts the
//! runtime down in the background.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spate_operators::component::ConfigError;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::QueryError;

/// `[query]`: how SQL queries (`POST /v1/query`, `spate query`) run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Threads that run queries, apart from the ones serving ingest, health
    /// checks and signals (`spate query` uses one per core instead).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Queries running at once; the next ones wait in the queue.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Queries waiting for a slot; beyond it a query is answered 429 with
    /// `Retry-After`. Time spent waiting counts toward the query's time limit.
    #[serde(default = "default_queue_len")]
    pub queue_len: usize,
    /// Memory one query's sorts, joins and aggregations may hold (MiB); a query
    /// needing more fails with a message (HTTP 400) instead of growing the
    /// process. Queries together hold at most `max_concurrent` times this.
    /// Queries do not spill to disk. `spate query --memory-limit-mib`
    /// overrides it.
    #[serde(
        rename = "memory_limit",
        alias = "memory_limit_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_memory_limit_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub memory_limit_mib: usize,
    /// Largest result a `POST /v1/query` answers (MiB of Arrow data, before
    /// JSON); a larger one fails with a message (HTTP 400) as soon as it passes
    /// the limit. `spate query` has no such limit.
    #[serde(
        rename = "max_result_size",
        alias = "max_result_mib",
        with = "spate_operators::component::units::with::mib",
        default = "default_max_result_mib"
    )]
    #[schemars(with = "spate_operators::component::units::MiB")]
    pub max_result_mib: usize,
    /// Time limit of a `POST /v1/query` that names none (`timeout_secs`).
    #[serde(
        rename = "default_timeout",
        alias = "default_timeout_secs",
        with = "spate_operators::component::units::with::secs",
        default = "default_timeout_secs"
    )]
    #[schemars(with = "spate_operators::component::units::Seconds")]
    pub default_timeout_secs: u64,
    /// Longest time limit a `POST /v1/query` may ask for; longer asks get this.
    #[serde(
        rename = "max_timeout",
        alias = "max_timeout_secs",
        with = "spate_operators::component::units::with::secs",
        default = "default_max_timeout_secs"
    )]
    #[schemars(with = "spate_operators::component::units::Seconds")]
    pub max_timeout_secs: u64,
}

fn default_threads() -> usize {
    2
}
fn default_max_concurrent() -> usize {
    2
}
fn default_queue_len() -> usize {
    8
}
fn default_memory_limit_mib() -> usize {
    512
}
fn default_max_result_mib() -> usize {
    64
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_timeout_secs() -> u64 {
    300
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            threads: default_threads(),
            max_concurrent: default_max_concurrent(),
            queue_len: default_queue_len(),
            memory_limit_mib: default_memory_limit_mib(),
            max_result_mib: default_max_result_mib(),
            default_timeout_secs: default_timeout_secs(),
            max_timeout_secs: default_max_timeout_secs(),
        }
    }
}

impl QueryConfig {
    /// Checks what the types alone cannot; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("threads", self.threads as u64),
            ("max_concurrent", self.max_concurrent as u64),
            ("memory_limit", self.memory_limit_mib as u64),
            ("max_result_size", self.max_result_mib as u64),
            ("default_timeout", self.default_timeout_secs),
            ("max_timeout", self.max_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.default_timeout_secs > self.max_timeout_secs {
            return Err(ConfigError::new(
                "default_timeout",
                format!(
                    "{} is more than max_timeout ({})",
                    self.default_timeout_secs, self.max_timeout_secs
                ),
            ));
        }
        Ok(())
    }

    /// The time limit of a request asking for `requested` seconds (none: the
    /// default), between 1 s and `max_timeout`.
    pub fn timeout(&self, requested: Option<u64>) -> Duration {
        let secs = requested
            .unwrap_or(self.default_timeout_secs)
            .clamp(1, self.max_timeout_secs.max(1));
        Duration::from_secs(secs)
    }
}

/// Runs queries on their own threads, a bounded number at a time; cheap to
/// clone (every clone is the same executor).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let executor = QueryExecutor::new(&QueryConfig::default())?;
/// let answer = executor
///     .run(std::time::Duration::from_secs(5), async { Ok(6 * 7) })
///     .await?;
/// assert_eq!(answer, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct QueryExecutor {
    shared: Arc<Shared>,
}

struct Shared {
    handle: Handle,
    /// The runtime when the executor owns one (not on a borrowed handle).
    _runtime: Option<OwnedRuntime>,
    /// One permit per running query.
    slots: Arc<Semaphore>,
    /// Queries admitted (running or queued); at most `capacity`.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
    max_concurrent: usize,
    queue_len: usize,
    shutdown: watch::Sender<bool>,
}

/// Shuts the runtime down without waiting when the executor goes away
/// (dropping a runtime inside another one's task would panic).
struct OwnedRuntime(Option<Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl QueryExecutor {
    /// An executor with its own runtime of `config.threads` threads (named
    /// `spate-query`).
    pub fn new(config: &QueryConfig) -> std::io::Result<Self> {
        let threads = config.threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            // File reads of the local lake run on blocking threads.
            .max_blocking_threads(threads * 4)
            .thread_name("spate-query")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self::build(
            handle,
            Some(OwnedRuntime(Some(runtime))),
            config,
        ))
    }

    /// An executor running queries on `handle` (tests under a paused clock).
    #[cfg(test)]
    pub fn on_handle(handle: Handle, config: &QueryConfig) -> Self {
        Self::build(handle, None, config)
    }

    fn build(handle: Handle, runtime: Option<OwnedRuntime>, config: &QueryConfig) -> Self {
        describe_metrics();
        let max_concurrent = config.max_concurrent.max(1);
        let (shutdown, _) = watch::channel(false);
        QueryExecutor {
            shared: Arc::new(Shared {
                handle,
                _runtime: runtime,
                slots: Arc::new(Semaphore::new(max_concurrent)),
                admitted: Arc::new(AtomicUsize::new(0)),
                capacity: max_concurrent + config.queue_len,
                max_concurrent,
                queue_len: config.queue_len,
                shutdown,
            }),
        }
    }

    /// Queries running now and queries waiting for a slot.
    #[cfg(test)]
    pub fn load(&self) -> (usize, usize) {
        let admitted = self.shared.admitted.load(Ordering::Acquire);
        let running = self.shared.max_concurrent - self.shared.slots.available_permits();
        (running, admitted.saturating_sub(running))
    }

    /// Refuses new queries and cancels the running and queued ones (they end
    /// with [`QueryError::ShuttingDown`]).
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Runs `query` on the executor's threads within `timeout` (counted from
    /// now, queueing included), and records its outcome in the metrics.
    ///
    /// Errors besides the query's own: [`QueryError::Rejected`] (queue full),
    /// [`QueryError::Timeout`], [`QueryError::ShuttingDown`], and
    /// [`QueryError::Internal`] or [`QueryError::BadQuery`] for a panic.
    /// Dropping the returned future (a client that went away) cancels the query.
    pub async fn run<T, F>(&self, timeout: Duration, query: F) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let result = self.run_inner(started + timeout, timeout, query).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        metrics::counter!("spate_queries_total", "outcome" => outcome).increment(1);
        if !matches!(result, Err(QueryError::Rejected { .. })) {
            metrics::histogram!("spate_query_duration_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        result
    }

    async fn run_inner<T, F>(
        &self,
        deadline: Instant,
        timeout: Duration,
        query: F,
    ) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        let shared = &self.shared;
        let mut shutdown = shared.shutdown.subscribe();
        if *shutdown.borrow() {
            return Err(QueryError::ShuttingDown);
        }
        let admission = Admission::enter(shared)?;
        let queued = Gauge::up("spate_queries_queued");
        let permit: OwnedSemaphorePermit = tokio::select! {
            permit = shared.slots.clone().acquire_owned() => {
                permit.map_err(|_| QueryError::ShuttingDown)?
            }
            _ = tokio::time::sleep_until(deadline) => return Err(QueryError::Timeout(timeout)),
            _ = shutdown.wait_for(|stop| *stop) => return Err(QueryError::ShuttingDown),
        };
        drop(queued);
        let running = Gauge::up("spate_queries_running");
        // The task holds its slot and admission until it really ends.
        let mut task = shared.handle.spawn(async move {
            let _held = (permit, admission, running);
            query.await
        });
        let _abort_if_dropped = AbortOnDrop(task.abort_handle());
        tokio::select! {
            joined = &mut task => match joined {
                Ok(result) => result,
                Err(e) if e.is_panic() => Err(QueryError::from_panic(e.into_panic())),
                Err(_) => Err(QueryError::ShuttingDown),
            },
            _ = tokio::time::sleep_until(deadline) => Err(QueryError::Timeout(timeout)),
            _ = shutdown.wait_for(|stop| *stop) => Err(QueryError::ShuttingDown),
        }
    }
}

/// A place among the admitted queries, given back on drop.
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn enter(shared: &Shared) -> Result<Self, QueryError> {
        let admitted = &shared.admitted;
        admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < shared.capacity).then_some(n + 1)
            })
            .map_err(|_| QueryError::Rejected {
                running: shared.max_concurrent,
                queued: shared.queue_len,
            })?;
        Ok(Admission(admitted.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// +1 on a gauge while alive.
struct Gauge(&'static str);

impl Gauge {
    fn up(name: &'static str) -> Self {
        metrics::gauge!(name).increment(1.0);
        Gauge(name)
    }
}

impl Drop for Gauge {
    fn drop(&mut self) {
        metrics::gauge!(self.0).decrement(1.0);
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A no-op for a task that has finished.
        self.0.abort();
    }
}

/// HELP texts of the query metrics (once the recorder is installed).
fn describe_metrics() {
    metrics::describe_gauge!(
        "spate_queries_running",
        "SQL queries running on the query threads now"
    );
    metrics::describe_gauge!(
        "spate_queries_queued",
        "SQL queries waiting for a slot ([query] max_concurrent)"
    );
    metrics::describe_counter!(
        "spate_queries_total",
        "SQL queries finished, by outcome: ok, rejected (queue full, 429), timeout (504), \
         shutting_down, bad_query, resources_exhausted (memory limit), result_too_large, \
         storage_error, history_error, internal_error (a bug or a panic)"
    );
    metrics::describe_histogram!(
        "spate_query_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a query's arrival to its answer, queueing included (refused queries not counted)"
    );
}

#[cfg(test)]
mod tests;
