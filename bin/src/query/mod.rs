//! SQL over the lake with DataFusion: `spate query`, and the library entry
//! point the HTTP API calls ([`execute`]).
//!
//! Tables:
//! - `logs`: the Parquet lake (see [`lake`]), with the Hive partition columns
//!   `dt` (`YYYY-MM-DD`), `hour` (`00`–`23`) and `service` as strings. Filters
//!   on them skip whole directories.
//! - `alerts` and `windows`: alert notices and closed windows from the hot
//!   store (see [`history`]), read when a query names them.
//! - `audit`: the web console's audit trail (see [`audit_table`]), for
//!   admins and the bearer token only.
//!
//! Queries are read-only: DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY`) and
//! statements (`SET`) are rejected as bad queries. `EXPLAIN`, `DESCRIBE` and
//! `SHOW TABLES` work.
//!
//! # Backpressure
//!
//! Queries run on their own threads, a few at a time ([`executor`]), under a
//! time limit (cancelled when it expires), and return at most `limit` rows:
//! DataFusion stops producing rows once the limit is reached. Every session
//! has a memory pool of `[query] memory_limit` ([`QueryContext::new`]):
//! a query that needs more (large sorts, joins, aggregations) fails with
//! [`QueryError::ResourcesExhausted`] instead of growing the process.
//!
//! # Shutdown
//!
//! Nothing runs in the background: dropping the future of [`execute`] cancels
//! the query and its file reads; [`executor::QueryExecutor::shutdown`] cancels
//! every query of an executor.

pub mod audit_table;
pub mod cli;
pub mod collect;
mod error;
pub mod executor;
pub mod filters;
pub mod format;
pub mod history;
pub mod lake;
pub mod s3_store;
pub mod staged;
pub mod yielding;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::Dialect;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{SortExpr, col};
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use serde::Serialize;
use serde_json::Value;

use self::audit_table::{AuditSource, audit_batch, audit_schema};
pub use self::collect::BatchSink;
pub use self::error::QueryError;
use self::executor::QueryConfig;
use self::filters::LogFilter;
use self::history::{HistorySource, alerts_batch, alerts_schema, windows_batch, windows_schema};
use self::lake::LakeLocation;

/// Columns of the recent-logs listing (a query without SQL), in order.
pub const RECENT_COLUMNS: [&str; 7] = [
    "ts", "service", "severity", "host", "status", "tags", "message",
];

/// One result column.

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputColumn {
    /// Column name.
    pub name: String,
    /// Arrow type, e.g. `Utf8`, `Int64`, `Timestamp(ms, "UTC")`.
    pub data_type: String,
}

/// What a query returned, ready to serialize for an API response.

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOutput {
    /// The columns, in order.
    pub columns: Vec<OutputColumn>,
    /// The rows, each cell in column order (see [`format`] for the JSON form).
    pub rows: Vec<Vec<Value>>,
    /// Whether rows were left off because of the row limit.
    pub truncated: bool,
    /// Lake files the query read (after partition pruning).
    pub files_scanned: usize,
    /// Wall time of the query, milliseconds.
    pub elapsed_ms: u64,
}

/// A query before it runs: SQL, or the recent-logs listing, with filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRequest {
    /// The SQL; without it, the most recent `logs` rows, newest first
    /// ([`RECENT_COLUMNS`]).
    pub sql: Option<String>,
    /// Narrows `logs`: for SQL, the table the query sees becomes the matching
    /// rows (as a view, so partition pruning still applies).
    pub filter: LogFilter,
    /// Rows returned at most.
    pub limit: usize,
    /// Time limit.
    pub timeout: Duration,
    /// Whether the `audit` table is there (for admins and the bearer
    /// token; a context without an audit source has none anyway).
    pub audit: bool,
}

/// The result as Arrow batches, before conversion.
#[derive(Debug, Clone)]
pub struct QueryBatches {
    /// Schema of the result.
    pub schema: SchemaRef,
    /// At most `limit` rows.
    pub batches: Vec<RecordBatch>,
    /// Whether rows were left off because of the row limit.
    pub truncated: bool,
    /// Lake files read after partition pruning.
    pub files_scanned: usize,
}

/// The tables and their settings; cheap to share between requests.
pub struct QueryContext {
    lake: LakeLocation,
    history: Arc<dyn HistorySource>,
    audit: Option<Arc<dyn AuditSource>>,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    memory_limit_mib: usize,
    max_result_bytes: usize,
}

impl QueryContext {
    /// Tables over the lake at `lake` (the directory or prefix holding
    /// `logs/`) and the alert history from `history`; every query's sorts,
    /// joins and aggregations may hold `limits.memory_limit` at most, and
    /// its result `limits.max_result_size`.
    pub fn new(
        lake: LakeLocation,
        history: Arc<dyn HistorySource>,
        limits: &QueryConfig,
    ) -> Result<Self, QueryError> {
        let runtime = runtime_builder().build_arc()?;
        Ok(QueryContext {
            lake,
            history,
            audit: None,
            config: session_config()?,
            runtime,
            memory_limit_mib: limits.memory_limit_mib.max(1),
            max_result_bytes: limits.max_result_mib.saturating_mul(1 << 20),
        })
    }

    /// Adds the `audit` table, read from `source` (see
    /// [`QueryRequest::audit`] for who sees it).
    pub fn with_audit(mut self, source: Arc<dyn AuditSource>) -> Self {
        self.audit = Some(source);
        self
    }

    /// A fresh session with `logs` registered (narrowed by `filter`), the
    /// history tables and (with `audit`) the audit table, loaded only if
    /// `referenced` says so. The one place a session is made: each gets its
    /// own memory pool of `memory_limit` (the object store registry and
    /// caches are shared).
    async fn session(
        &self,
        filter: &LogFilter,
        audit: bool,
        referenced: impl Fn(&str) -> bool,
    ) -> Result<SessionContext, QueryError> {
        let mut runtime = RuntimeEnv::clone(&self.runtime);
        runtime.memory_pool = Arc::new(TrackConsumersPool::new(
            GreedyMemoryPool::new(self.memory_limit_mib.saturating_mul(1 << 20)),
            std::num::NonZeroUsize::new(3).expect("3 is not zero"),
        ));
        let state = SessionStateBuilder::new()
            .with_config(self.config.clone())
            .with_runtime_env(Arc::new(runtime))
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(yielding::YieldInJoins))
            .build();
        let ctx = SessionContext::new_with_state(state);
        self.lake.register(&ctx)?;
        if !filter.is_empty() {
            let mut df = ctx.table("logs").await?;
            for expr in filter.exprs(spate_operators::event::wall_clock_ms()) {
                df = df.filter(expr)?;
            }
            ctx.deregister_table("logs")?;
            ctx.register_table("logs", df.into_view())?;
        }
        let (want_alerts, want_windows) = (referenced("alerts"), referenced("windows"));
        let audit = self.audit.clone().filter(|_| audit);
        let want_audit = audit.is_some() && referenced("audit");
        let history = self.history.clone();
        let audit_source = audit.clone();
        let (alerts, windows, audit_records) = tokio::task::spawn_blocking(move || {
            let alerts = if want_alerts {
                history.alerts()?
            } else {
                Vec::new()
            };
            let windows = if want_windows {
                history.windows()?
            } else {
                Vec::new()
            };
            let audit_records = match (&audit_source, want_audit) {
                (Some(source), true) => source.audit_rows()?,
                _ => Vec::new(),
            };
            Ok::<_, String>((alerts, windows, audit_records))
        })
        .await
        .map_err(|e| QueryError::Internal(format!("history reader: {e}")))?
        .map_err(QueryError::History)?;
        let internal =
            |e: datafusion::arrow::error::ArrowError| QueryError::Internal(e.to_string());
        let alerts = MemTable::try_new(
            alerts_schema(),
            vec![vec![alerts_batch(&alerts).map_err(internal)?]],
        )?;
        let windows = MemTable::try_new(
            windows_schema(),
            vec![vec![windows_batch(&windows).map_err(internal)?]],
        )?;
        ctx.register_table("alerts", Arc::new(alerts))?;
        ctx.register_table("windows", Arc::new(windows))?;
        if audit.is_some() {
            let table = MemTable::try_new(
                audit_schema(),
                vec![vec![audit_batch(&audit_records).map_err(internal)?]],
            )?;
            ctx.register_table("audit", Arc::new(table))?;
        }
        Ok(ctx)
    }
}

/// The runtime every query of a context shares, without DataFusion's
/// listing cache: it keeps a table's file list for ever (no TTL by default),
/// so a long-lived context (the HTTP API's) would never see files committed
/// after its first query. The lake is listed on every query instead (one
/// directory walk, or a few ListObjectsV2 pages on S3).
///
/// No spilling to disk either: spill files would be written outside the lake
/// (in the OS temporary directory, up to 100 GB), and spilling did not keep
/// memory within the pool (an `array_agg` over 600 million values reached
/// 5 GB resident with a 256 MiB pool, against 0.4–1.3 GB failing cleanly
/// without spilling). A query needing more than its pool fails instead.
fn runtime_builder() -> RuntimeEnvBuilder {
    RuntimeEnvBuilder::new()
        .with_object_list_cache_limit(0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
}

/// Session settings: read-only SQL with `information_schema`, UTC, tuned for
/// a log lake (many files, row groups of a few thousand rows, scans rather
/// than lookups); measured on a 20M-event W1 lake (docs/BENCHMARKS.md):
///
/// - no statistics gathered from every file's footer while planning: that read
///   all footers up front and held them (about 500 MB for 600 files) to speed
///   up little more than a bare `count(*)`; row groups are still pruned by
///   their statistics when each file is opened;
/// - no page index: it costs a read per file, and with row groups this
///   small scans were faster without it;
/// - two partitions per core, so reading one file overlaps decoding another.
///
/// Any of DataFusion's settings can be overridden with its `DATAFUSION_*`
/// environment variable (e.g. `DATAFUSION_EXECUTION_TARGET_PARTITIONS=8`); a
/// malformed value is an error naming the variable.
fn session_config() -> Result<SessionConfig, QueryError> {
    let mut config = SessionConfig::new().with_information_schema(true);
    let options = config.options_mut();
    options.execution.time_zone = Some("UTC".into());
    options.sql_parser.dialect = Dialect::Generic;
    options.execution.collect_statistics = false;
    options.execution.parquet.enable_page_index = false;
    options.execution.target_partitions =
        2 * std::thread::available_parallelism().map_or(1, |n| n.get());
    for entry in options.entries() {
        let variable = entry.key.to_uppercase().replace('.', "_");
        if let Ok(value) = std::env::var(&variable) {
            options
                .set(&entry.key, &value)
                .map_err(|e| QueryError::BadQuery(format!("{variable}={value}: {e}")))?;
        }
    }
    Ok(config)
}

/// Runs `sql` with at most `limit` rows and the time limit `timeout`
/// (the tests' shorthand for [`execute_request`]).
#[cfg(test)]
pub async fn execute(
    ctx: &QueryContext,
    sql: &str,
    limit: usize,
    timeout: Duration,
) -> Result<QueryOutput, QueryError> {
    execute_request(
        ctx,
        &QueryRequest {
            sql: Some(sql.to_string()),
            filter: LogFilter::default(),
            limit,
            timeout,
            audit: false,
        },
    )
    .await
}

/// Runs a request (SQL or the recent-logs listing, with filters) and converts
/// the rows to JSON.
///
/// The entry point of the HTTP API and the console: a
/// [`QueryError::BadQuery`] is the caller's (400), see
/// [`QueryError::http_status`] for the rest.
pub async fn execute_request(
    ctx: &QueryContext,
    request: &QueryRequest,
) -> Result<QueryOutput, QueryError> {
    let started = tokio::time::Instant::now();
    run(ctx, request).await.and_then(|b| {
        let rows = format::json_rows(&b.batches)
            .map_err(|e| QueryError::Internal(format!("result to json: {e}")))?;
        Ok(QueryOutput {
            columns: b
                .schema
                .fields()
                .iter()
                .map(|f| OutputColumn {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                })
                .collect(),
            rows,
            truncated: b.truncated,
            files_scanned: b.files_scanned,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    })
}

/// Runs a request and returns the Arrow batches (what the CLI prints).
///
/// This runs the query on the caller's task: services run it through a
/// [`executor::QueryExecutor`], whose time limit holds however hard the query
/// computes (and which counts the outcomes in the metrics).
pub async fn run(ctx: &QueryContext, request: &QueryRequest) -> Result<QueryBatches, QueryError> {
    run_with(ctx, request, None).await
}

/// [`run`], sending the rows to `sink` as they are read (the console's
/// search shows them as they arrive); the batches are returned too.
pub async fn stream_request(
    ctx: &QueryContext,
    request: &QueryRequest,
    sink: &BatchSink,
) -> Result<QueryBatches, QueryError> {
    run_with(ctx, request, Some(sink)).await
}

async fn run_with(
    ctx: &QueryContext,
    request: &QueryRequest,
    sink: Option<&BatchSink>,
) -> Result<QueryBatches, QueryError> {
    match tokio::time::timeout(request.timeout, run_through_compactions(ctx, request, sink)).await {
        Ok(Err(QueryError::ResourcesExhausted(detail))) => {
            Err(QueryError::ResourcesExhausted(format!(
                "query needs more than {} MiB of memory (query.memory_limit): narrow it \
                 (filters, fewer groups, a LIMIT) or raise the limit; {detail}",
                ctx.memory_limit_mib
            )))
        }
        Ok(result) => result,
        Err(_) => Err(QueryError::Timeout(request.timeout)),
    }
}

/// Runs the query again while it fails because a file it listed is gone, or
/// while a local lake's partitions were swapped as it ran.
///
/// A compaction (`spate lake compact`) swaps a partition's files between a
/// query's listing and its reads: the query then fails with "not found"
/// rather than counting wrong. A swap during the listing itself leaves the
/// merged-away files out without an error, so the compactor counts its
/// swaps and a query whose count changed runs again
/// (`spate_operators::sinks::lake::swaps`). A compaction swaps its
/// partitions one after another, so the query is retried, with a growing
/// pause, until it runs between swaps or its time limit ([`run`]) ends it.
/// A streaming query is run again only if it has sent no rows yet (else
/// they would come twice).
async fn run_through_compactions(
    ctx: &QueryContext,
    request: &QueryRequest,
    sink: Option<&BatchSink>,
) -> Result<QueryBatches, QueryError> {
    use spate_operators::sinks::lake::swaps::read_swaps;
    let mut pause = Duration::from_millis(10);
    let lake_dir = ctx.lake.local_dir();
    loop {
        let before = lake_dir.map(read_swaps);
        let result = run_inner(ctx, request, sink).await;
        let unsent = sink.is_none_or(|s| s.sent() == 0);
        let swapped = match (before, lake_dir) {
            (Some(before), Some(dir)) => !before.unchanged_at(read_swaps(dir)),
            _ => false,
        };
        match result {
            Err(QueryError::Storage(message)) if is_vanished_file(&message) && unsent => {}
            Ok(_) if swapped && unsent => {}
            other => return other,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Whether a storage error says a listed file disappeared before it was read.
fn is_vanished_file(message: &str) -> bool {
    message.contains("not found") || message.contains("No such file or directory")
}

async fn run_inner(
    ctx: &QueryContext,
    request: &QueryRequest,
    sink: Option<&BatchSink>,
) -> Result<QueryBatches, QueryError> {
    let df = match &request.sql {
        Some(sql) => {
            let config = ctx.config.clone();
            let parser = SessionContext::new_with_config(config);
            let statement = parser.state().sql_to_statement(sql, &Dialect::Generic)?;
            let tables = parser.state().resolve_table_references(&statement)?;
            let session = ctx
                .session(&request.filter, request.audit, |name| {
                    tables.iter().any(|t| t.table() == name)
                })
                .await?;
            let plan = session.state().statement_to_plan(statement).await?;
            read_only().verify_plan(&plan)?;
            session.execute_logical_plan(plan).await?
        }
        None => {
            let session = ctx.session(&request.filter, false, |_| false).await?;
            recent_logs(session.table("logs").await?)?
        }
    };
    collect::collect_limited(df, request.limit, ctx.max_result_bytes, sink).await
}

/// SQL options of every query: no DDL, DML or statements.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The recent-logs listing: [`RECENT_COLUMNS`], newest first.
fn recent_logs(logs: DataFrame) -> Result<DataFrame, QueryError> {
    Ok(logs
        .sort(vec![SortExpr::new(col("ts"), false, false)])?
        .select_columns(&RECENT_COLUMNS)?)
}

#[cfg(test)]
mod tests;
