//! SQL over the lake with DataFusion: `spate query`, and the library entry
//! point the HTTP API calls ([`execute`]).
//!
//! Tables:
//! - `logs`: the Parquet lake (see [`lake`]), with the Hive partition columns
//!   `dt` (`YYYY-MM-DD`), `hour` (`00`–`23`) and `service` as strings. Filters
//!   on them skip whole directories.
//! - `alerts` and `windows`: alert notices and closed windows from the hot
//!   store (see [`history`]), read when a query names them.
//!
//! Queries are read-only: DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY`) and
//! statements (`SET`) are rejected as bad queries. `EXPLAIN`, `DESCRIBE` and
//! `SHOW TABLES` work.
//!
//! # Backpressure
//!
//! A query runs under a time limit (cancelled when it expires) and returns at
//! most `limit` rows: DataFusion stops producing rows once the limit is
//! reached. An optional memory limit ([`QueryContext::with_memory_limit`])
//! makes queries that need more (large sorts, joins) fail with
//! [`QueryError::ResourcesExhausted`] instead of growing the process.
//!
//! # Shutdown
//!
//! Nothing runs in the background: dropping the future of [`execute`] cancels
//! the query and its file reads.

pub mod cli;
pub mod filters;
pub mod format;
pub mod history;
pub mod lake;
pub mod s3_store;

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::Dialect;
use datafusion::datasource::MemTable;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{SortExpr, col};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{DataFrame, SQLOptions, SessionConfig, SessionContext};
use serde::Serialize;
use serde_json::Value;
use spate_engine::ErrorClass;

use self::filters::LogFilter;
use self::history::{HistorySource, alerts_batch, alerts_schema, windows_batch, windows_schema};
use self::lake::LakeLocation;

/// Columns of the recent-logs listing (a query without SQL), in order.
pub const RECENT_COLUMNS: [&str; 7] = [
    "ts", "service", "severity", "host", "status", "tags", "message",
];

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is malformed, names something that does not exist, is not
    /// read-only, or fails on the data it reads (a bad cast): the caller's
    /// to fix (HTTP 400). The message is DataFusion's.
    #[error("{0}")]
    BadQuery(String),
    /// The query needs more memory than the limit allows (HTTP 400: narrow it).
    #[error("query needs more memory than allowed: {0}")]
    ResourcesExhausted(String),
    /// The query ran past its time limit and was cancelled (HTTP 504).
    #[error("query cancelled after its time limit of {0:?}")]
    Timeout(Duration),
    /// Reading the lake failed (disk, object store, a corrupt file) (HTTP 503).
    #[error("cannot read the lake: {0}")]
    Storage(String),
    /// Reading the alert and window history failed (HTTP 503).
    #[error("cannot read the alert history: {0}")]
    History(String),
    /// A bug (HTTP 500).
    #[error("internal query error: {0}")]
    Internal(String),
}

impl QueryError {
    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        match self {
            QueryError::BadQuery(_)
            | QueryError::ResourcesExhausted(_)
            | QueryError::Timeout(_) => ErrorClass::BadInput,
            QueryError::Storage(_) | QueryError::History(_) => ErrorClass::External,
            QueryError::Internal(_) => ErrorClass::Internal,
        }
    }

    /// The HTTP status an API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::BadQuery(_) | QueryError::ResourcesExhausted(_) => 400,
            QueryError::Timeout(_) => 504,
            QueryError::Storage(_) | QueryError::History(_) => 503,
            QueryError::Internal(_) => 500,
        }
    }

    /// Label of the `outcome` metric.
    fn outcome(&self) -> &'static str {
        match self {
            QueryError::BadQuery(_) => "bad_query",
            QueryError::ResourcesExhausted(_) => "resources_exhausted",
            QueryError::Timeout(_) => "timeout",
            QueryError::Storage(_) => "storage_error",
            QueryError::History(_) => "history_error",
            QueryError::Internal(_) => "internal_error",
        }
    }
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> Self {
        use datafusion::arrow::error::ArrowError as A;
        let message = e.to_string();
        match e.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            | DataFusionError::Execution(_) => QueryError::BadQuery(message),
            DataFusionError::ArrowError(a, _)
                if matches!(
                    **a,
                    A::CastError(_)
                        | A::ParseError(_)
                        | A::DivideByZero
                        | A::ArithmeticOverflow(_)
                        | A::InvalidArgumentError(_)
                        | A::ComputeError(_)
                ) =>
            {
                QueryError::BadQuery(message)
            }
            DataFusionError::ResourcesExhausted(_) => QueryError::ResourcesExhausted(message),
            DataFusionError::IoError(_)
            | DataFusionError::ObjectStore(_)
            | DataFusionError::ParquetError(_) => QueryError::Storage(message),
            _ => QueryError::Internal(message),
        }
    }
}

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
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
}

impl QueryContext {
    /// Tables over the lake at `lake` (the directory or prefix holding
    /// `logs/`) and the alert history from `history`.
    pub fn new(lake: LakeLocation, history: Arc<dyn HistorySource>) -> Result<Self, QueryError> {
        let runtime = runtime_builder().build_arc()?;
        Ok(QueryContext {
            lake,
            history,
            config: session_config()?,
            runtime,
        })
    }

    /// Bounds the memory of each query's sorts, joins and aggregations.
    pub fn with_memory_limit(mut self, bytes: usize) -> Result<Self, QueryError> {
        self.runtime = runtime_builder()
            .with_memory_limit(bytes, 1.0)
            .build_arc()?;
        Ok(self)
    }

    /// A fresh session with `logs` registered (narrowed by `filter`) and the
    /// history tables, loaded only if `referenced` says so.
    async fn session(
        &self,
        filter: &LogFilter,
        referenced: impl Fn(&str) -> bool,
    ) -> Result<SessionContext, QueryError> {
        let ctx = SessionContext::new_with_config_rt(self.config.clone(), self.runtime.clone());
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
        let history = self.history.clone();
        let (alerts, windows) = tokio::task::spawn_blocking(move || {
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
            Ok::<_, String>((alerts, windows))
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
        Ok(ctx)
    }
}

/// The runtime every query of a context shares, without DataFusion's
/// listing cache: it keeps a table's file list for ever (no TTL by default),
/// so a long-lived context (the HTTP API's) would never see files committed
/// after its first query. The lake is listed on every query instead (one
/// directory walk, or a few ListObjectsV2 pages on S3).
fn runtime_builder() -> RuntimeEnvBuilder {
    RuntimeEnvBuilder::new().with_object_list_cache_limit(0)
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

/// Runs `sql` with at most `limit` rows and the time limit `timeout`.
///
/// The entry point of the HTTP API: a [`QueryError::BadQuery`] is the caller's
/// (400), see [`QueryError::http_status`] for the rest.
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
        },
    )
    .await
}

/// Runs a request (SQL or the recent-logs listing, with filters) and converts
/// the rows to JSON.
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
pub async fn run(ctx: &QueryContext, request: &QueryRequest) -> Result<QueryBatches, QueryError> {
    let started = tokio::time::Instant::now();
    let result = match tokio::time::timeout(request.timeout, run_inner(ctx, request)).await {
        Ok(result) => result,
        Err(_) => Err(QueryError::Timeout(request.timeout)),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    metrics::counter!("spate_queries_total", "outcome" => outcome).increment(1);
    metrics::histogram!("spate_query_duration_seconds").record(started.elapsed().as_secs_f64());
    result
}

async fn run_inner(ctx: &QueryContext, request: &QueryRequest) -> Result<QueryBatches, QueryError> {
    let df = match &request.sql {
        Some(sql) => {
            let config = ctx.config.clone();
            let parser = SessionContext::new_with_config(config);
            let statement = parser.state().sql_to_statement(sql, &Dialect::Generic)?;
            let tables = parser.state().resolve_table_references(&statement)?;
            let session = ctx
                .session(&request.filter, |name| {
                    tables.iter().any(|t| t.table() == name)
                })
                .await?;
            let plan = session.state().statement_to_plan(statement).await?;
            read_only().verify_plan(&plan)?;
            session.execute_logical_plan(plan).await?
        }
        None => {
            let session = ctx.session(&request.filter, |_| false).await?;
            recent_logs(session.table("logs").await?)?
        }
    };
    collect_limited(df, request.limit).await
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

/// Collects at most `limit` rows (asking for one more to know whether rows
/// were left off) and counts the lake files the plan reads.
async fn collect_limited(df: DataFrame, limit: usize) -> Result<QueryBatches, QueryError> {
    let task = Arc::new(df.task_ctx());
    // One more than asked, to tell whether rows were left off; a limit beyond
    // what DataFusion takes (i64) is no limit.
    let df = match i64::try_from(limit) {
        Ok(n) if n < i64::MAX => df.limit(0, Some(limit + 1))?,
        _ => df,
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let plan = df.create_physical_plan().await?;
    let files_scanned = files_scanned(&plan);
    let mut batches = collect(plan, task).await?;
    let mut remaining = limit;
    let mut truncated = false;
    for batch in &mut batches {
        if batch.num_rows() > remaining {
            *batch = batch.slice(0, remaining);
            truncated = true;
        }
        remaining -= batch.num_rows();
    }
    batches.retain(|b| b.num_rows() > 0);
    Ok(QueryBatches {
        schema,
        batches,
        truncated,
        files_scanned,
    })
}

/// Files the physical plan reads, over every file scan in it.
pub fn files_scanned(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let own = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .map_or(0, |scan| scan.file_groups.iter().map(|g| g.len()).sum());
    own + plan
        .children()
        .into_iter()
        .map(files_scanned)
        .sum::<usize>()
}

#[cfg(test)]
mod tests;
