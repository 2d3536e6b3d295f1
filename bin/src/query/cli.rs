//! `spate query`: arguments, and printing the result.
//!
//! Without SQL it lists the most recent `logs` rows, newest first, narrowed by
//! the flags (`--since`, `--until`, `--service`, `--severity`, `--grep`), at
//! most `--limit` (100 by default). With SQL the same flags narrow the `logs`
//! table the SQL sees, and `--limit` caps the rows printed (no cap by
//! default). `--schema` prints the tables and their columns.
//!
//! The lake is `--lake s3://bucket/prefix` if given, else the S3 lake of the
//! config's `[lake.s3]`, else the local lake (`lake.path`, or
//! `<data-dir>/lake`). S3 is reached with the config's `[aws]` settings, or
//! without a config the standard credential chain and `AWS_ENDPOINT_URL`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;

use super::executor::{QueryConfig, QueryExecutor};
use super::filters::{LogFilter, TimeBound, parse_severity};
use super::format::write_output;
use super::history::{
    DynamoHistory, HistorySource, HotHistory, NoHistory, alerts_schema, windows_schema,
};
use super::lake::{LakeLocation, S3Url, logs_table_schema};
use super::{QueryContext, QueryRequest, run};
use crate::config::SpateConfig;
use crate::hot_cli::hot_path;
use crate::output::Format;

/// Rows listed without SQL when `--limit` is not given.
pub const DEFAULT_RECENT_LIMIT: usize = 100;

/// Arguments of `spate query`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// The SQL (tables `logs`, `alerts`, `windows`). Without it: the most recent
    /// log rows, newest first.
    pub sql: Option<String>,
    /// Configuration file (TOML), for `lake.path`, `[lake.s3]`, `[aws]` and
    /// `hot.path`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The data directory; the lake is `<data-dir>/lake` unless the config says
    /// otherwise (`lake.path`, or `[lake.s3]` for the S3 lake).
    #[arg(long, default_value = "./spate-data")]
    pub data_dir: PathBuf,
    /// Query the lake in S3 at this prefix (the one holding `logs/`, as
    /// `[lake.s3]` writes it) instead of a local one. AWS settings: `[aws]` of
    /// `--config`, else the standard chain and `AWS_ENDPOINT_URL`. The
    /// `alerts` and `windows` tables read the hot store at `hot.path` of the
    /// config (DynamoDB with `[hot_dynamodb]`), and are empty without it.
    #[arg(
        long,
        value_name = "s3://BUCKET/PREFIX",
        value_parser = S3Url::parse,
        conflicts_with = "data_dir"
    )]
    pub lake: Option<S3Url>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Only rows at or after this time: a duration ago (15m, 1h, 2d) or RFC 3339.
    #[arg(long, value_parser = TimeBound::parse)]
    pub since: Option<TimeBound>,
    /// Only rows before this time: a duration ago (15m, 1h, 2d) or RFC 3339.
    #[arg(long, value_parser = TimeBound::parse)]
    pub until: Option<TimeBound>,
    /// Only rows of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only rows at or above this severity (INFO < WARNING < ERROR < CRITICAL).
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<spate_operators::event::Severity>,
    /// Only rows whose message contains this text (ignoring case).
    #[arg(long)]
    pub grep: Option<String>,
    /// Rows printed at most [default: 100 without SQL, no limit with SQL].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Fail queries whose sorts, joins and aggregations need more memory than
    /// this (MiB) instead of growing the process [default: `memory_limit`
    /// of the config's `[query]`, 512].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit_mib: Option<u64>,
    /// Cancel the query after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Print rows, files scanned and time on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Print the tables and their columns instead of querying.
    #[arg(long, conflicts_with = "sql")]
    pub schema: bool,
}

impl QueryArgs {
    /// The filters the flags ask for.
    pub fn filter(&self) -> LogFilter {
        LogFilter {
            since: self.since,
            until: self.until,
            service: self.service.clone(),
            severity: self.severity,
            grep: self.grep.clone(),
        }
    }
}

/// Where `spate query` reads the lake and the alert history: `--lake`, else
/// `[lake.s3]` of the config, else the local lake; see the module docs.
pub async fn sources(
    args: &QueryArgs,
    config: &SpateConfig,
) -> Result<(LakeLocation, Arc<dyn HistorySource>)> {
    let s3_url = match (&args.lake, &config.lake.s3) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(s3)) => Some(
            S3Url::new(&s3.bucket, &s3.prefix)
                .map_err(anyhow::Error::msg)
                .context("lake.s3")?,
        ),
        (None, None) => None,
    };
    // One AWS setup for the S3 lake and the DynamoDB history alike.
    let sdk = match s3_url.is_some() || config.hot_dynamodb.is_some() {
        true => Some(config.aws.load().await),
        false => None,
    };
    let history: Arc<dyn HistorySource> = match (&config.hot_dynamodb, &sdk) {
        // With [hot_dynamodb] the history is in DynamoDB, wherever the lake is.
        (Some(hot), Some(sdk)) => Arc::new(DynamoHistory::new(
            spate_operators::sinks::dynamo_hot::DynamoHotStore::new(
                config.aws.dynamodb_client(sdk),
                hot.clone(),
            )
            .context("hot_dynamodb")?,
        )),
        // `--lake` names no data dir: only a hot store the config names.
        _ if args.lake.is_some() => match &config.hot.path {
            Some(path) => Arc::new(HotHistory::new(path.clone())),
            None => Arc::new(NoHistory),
        },
        _ => Arc::new(HotHistory::new(hot_path(config, &args.data_dir))),
    };
    let lake = match (s3_url, &sdk) {
        (Some(url), Some(sdk)) => LakeLocation::s3(config.aws.s3_client(sdk), &url),
        _ => {
            let path = local_lake_path(args, config);
            if !args.schema && !path.is_dir() {
                anyhow::bail!(
                    "no lake at {} (give the --data-dir of `spate run` or `spate ingest`, or --lake s3://...)",
                    path.display()
                );
            }
            LakeLocation::local(path)
        }
    };
    Ok((lake, history))
}

/// The local lake: `lake.path` of the config, else `<data-dir>/lake`.
pub fn local_lake_path(args: &QueryArgs, config: &SpateConfig) -> PathBuf {
    config
        .lake
        .path
        .clone()
        .unwrap_or_else(|| args.data_dir.join("lake"))
}

/// How `spate query` runs its one query: the config's `[query]`, with
/// `--memory-limit-mib` over its memory limit, one thread per core, and no
/// limit on the result (it is printed, not sent).
pub fn limits(args: &QueryArgs, config: &QueryConfig) -> QueryConfig {
    QueryConfig {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        max_concurrent: 1,
        max_result_mib: usize::MAX >> 20,
        memory_limit_mib: args
            .memory_limit_mib
            .map_or(config.memory_limit_mib, |mib| {
                usize::try_from(mib).unwrap_or(usize::MAX)
            }),
        ..config.clone()
    }
}

/// Runs `spate query` over `lake`, with the `alerts` and `windows` tables
/// from `history`, on an executor of `limits` (a panic or the time limit is an
/// error, not a crash or a hang).
pub async fn run_cli(
    args: &QueryArgs,
    limits: &QueryConfig,
    lake: LakeLocation,
    history: Arc<dyn HistorySource>,
    out: &mut dyn Write,
) -> Result<()> {
    if args.schema {
        let batch = schema_batch().context("schema listing")?;
        let columns = column_names(&batch.schema());
        write_output(out, args.format, &columns, &[batch])?;
        return Ok(());
    }
    let ctx = Arc::new(QueryContext::new(lake, history, limits)?);
    let executor = QueryExecutor::new(limits).context("query threads")?;
    let limit = match (&args.sql, args.limit) {
        (_, Some(limit)) => limit,
        (None, None) => DEFAULT_RECENT_LIMIT,
        (Some(_), None) => usize::MAX,
    };
    let request = QueryRequest {
        sql: args.sql.clone(),
        filter: args.filter(),
        limit,
        timeout: Duration::from_secs(args.timeout_secs),
        audit: false,
    };
    let started = tokio::time::Instant::now();
    let timeout = request.timeout;
    let result = executor
        .run(timeout, async move { run(&ctx, &request).await })
        .await?;
    let columns = column_names(&result.schema);
    write_output(out, args.format, &columns, &result.batches)?;
    out.flush()?;
    if args.stats {
        let rows: usize = result.batches.iter().map(RecordBatch::num_rows).sum();
        eprintln!(
            "{rows} rows{}, {} files scanned, {} ms",
            if result.truncated {
                " (limit reached)"
            } else {
                ""
            },
            result.files_scanned,
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

fn column_names(schema: &SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Every table's columns: `table`, `column`, `type`, `nullable`.
pub fn schema_batch() -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let mut rows: Vec<(&str, String, String, bool)> = Vec::new();
    for (table, schema) in [
        ("logs", logs_table_schema()),
        ("alerts", alerts_schema()),
        ("windows", windows_schema()),
    ] {
        for field in schema.fields() {
            rows.push((
                table,
                field.name().clone(),
                field.data_type().to_string(),
                field.is_nullable(),
            ));
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "table",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        ),
        (
            "column",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.1))),
        ),
        (
            "type",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.2))),
        ),
        (
            "nullable",
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.3)))),
        ),
    ];
    RecordBatch::try_from_iter(columns)
}
