//! `spate`: the log ingest and analytics stream processor.

mod alerts_cli;
mod allocator;
mod config;
mod console;
mod cost;
mod data_dir_lock;
mod demo;
mod duration_arg;
mod health;
mod hot_cli;
mod ingest;
mod journal_cli;
mod lake_cli;
mod metric_catalog;
mod output;
mod plain_http;
mod query;
mod run;
mod tap_cli;
mod top;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_TOML;
use crate::output::Format;

#[derive(Parser)]
#[command(
    name = "spate",
    version,
    about = "Log ingest and analytics stream processor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `spate cost`: the model's inputs (the rest are the defaults of
/// `deploy/aws/spate.yaml`, printed with the bill).
#[derive(clap::Args)]
struct CostArgs {
    /// Events a day (the daily average).
    #[arg(long)]
    events_per_day: f64,
    /// Bytes of one event as it arrives (W1: 339).
    #[arg(long, default_value_t = cost::measured::W1_EVENT_BYTES)]
    event_bytes: f64,
    /// Share of events kept hot in DynamoDB (W1 at WARNING and above: 0.2).
    #[arg(long, default_value_t = cost::measured::W1_HOT_SHARE)]
    hot_share: f64,
    /// Where the events arrive.
    #[arg(long, value_enum, default_value = "sqs")]
    source: cost::Source,
    /// Region of the price table.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Events the producer packs in one SQS message or Kinesis record.
    #[arg(long, default_value_t = 100.0)]
    events_per_message: f64,
    /// How the producer compresses message bodies (loadgen send --compress):
    /// gzip or zstd shrink W1 bodies to about a third (base64 on SQS), and
    /// SQS bills every 64 KiB of a body as a request.
    #[arg(long, value_enum, default_value = "none")]
    compression: cost::Compression,
    /// Services logging (one lake partition each an hour).
    #[arg(long, default_value_t = 30.0)]
    services: f64,
    /// Fewest running tasks (MinTasks).
    #[arg(long, default_value_t = 1.0)]
    min_tasks: f64,
    /// CPU units of a task (TaskCpu: 512, 1024, 2048 or 4096; 1024 = 1 vCPU).
    #[arg(long, default_value_t = 1024)]
    task_cpu: u32,
    /// Memory of a task in MiB (TaskMemory), a valid Fargate pair with
    /// --task-cpu.
    #[arg(long, default_value_t = 2048)]
    task_memory: u32,
    /// How the hot table is billed (HotTableCapacity): pay per request, or
    /// provisioned capacity auto-scaled on utilisation.
    #[arg(long, value_enum, default_value = "on-demand")]
    hot_capacity: cost::HotCapacity,
    /// S3 GET requests a day made by queries.
    #[arg(long, default_value_t = 0.0)]
    s3_gets_per_day: f64,
    /// Leave out CloudWatch EMF metrics and their log lines.
    #[arg(long)]
    no_emf: bool,
    /// Price the seed's design instead (a Lambda invocation and a DynamoDB
    /// write per event).
    #[arg(long, value_enum, default_value = "spate")]
    architecture: cost::Architecture,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(Subcommand)]
enum Command {
    /// Decode, classify and archive log files (or stdin, as -) into the Parquet lake.
    Ingest {
        /// Configuration file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the lake and dead letters go.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
        /// Summary format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Same as --format json.
        #[arg(long, hide = true, conflicts_with = "format")]
        json: bool,
        /// Input files; - reads stdin.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Run the log service: HTTP push, file tail, lake, hot store, windows, alerts.
    Run {
        /// Configuration file (TOML); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on; else the SPATE_LISTEN environment variable,
        /// else http.listen (default 127.0.0.1:8470; 0.0.0.0:8470 in the
        /// container image).
        #[arg(long)]
        listen: Option<String>,
        /// Where the journal, lake, hot store, checkpoints and alerts go.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
    },
    /// Look up recent important events and alerts in the hot store.
    Hot {
        #[command(subcommand)]
        action: HotAction,
        /// Configuration file (for hot.path); built-in defaults when absent.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The data dir of `spate run`.
        #[arg(long, global = true, default_value = "./spate-data")]
        data_dir: PathBuf,
    },
    /// Alert maintenance windows: silence a service for a time, list silences.
    Alerts {
        #[command(subcommand)]
        action: alerts_cli::AlertsAction,
        /// Configuration file (for hot.path or [hot_dynamodb]); built-in defaults when absent.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// The data dir of `spate run`.
        #[arg(long, global = true, default_value = "./spate-data")]
        data_dir: PathBuf,
    },
    /// SQL over the lake, local or in S3 (tables logs, alerts, windows), or the recent logs.
    Query(query::cli::QueryArgs),
    /// Exit 0 if a running `spate run` answers GET /healthz with 200 (the
    /// container health check; the image has no shell or curl).
    Health {
        /// The health endpoint.
        #[arg(long, default_value = "http://127.0.0.1:8470/healthz")]
        url: String,
        /// How long to wait for the answer (seconds).
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
        /// Report format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Send a realistic burst of current log events (six services, a few
    /// errors and timeouts) to a running `spate run`, to try the queries on.
    Demo {
        /// The address of `spate run`; the events go to POST /v1/logs.
        #[arg(long, default_value = "http://127.0.0.1:8470")]
        target: String,
        /// How many events.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        events: u64,
        /// The same seed sends the same events (stamped now).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Bearer token of the HTTP ingest, when `spate run` has one.
        #[arg(long, env = "SPATE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Report format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Print a shell completion script: `spate completions bash > /etc/bash_completion.d/spate`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Maintain the lake.
    Lake {
        #[command(subcommand)]
        action: LakeAction,
    },
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// What running Spate on AWS costs a month, by line item (docs/cost.md).
    Cost(Box<CostArgs>),
    /// A live view of a running `spate run` from its /metrics: events/s in
    /// and out per stage, mailboxes, backpressure, lag, errors, memory.
    Top(top::TopArgs),
    /// Stream the events passing a stage of a running `spate run` (a sample:
    /// the pipeline never waits for the tap), as NDJSON.
    Tap(tap_cli::TapArgs),
    /// Manage the users of the web console (`spate run` serves it at /ui).
    User {
        #[command(subcommand)]
        action: console::user_cli::UserAction,
    },
    /// Inspect the ingest journal behind HTTP push.
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
}

#[derive(Subcommand)]
enum JournalAction {
    /// Read every segment and report records and damaged ranges, changing
    /// nothing; exit status 3 when damage holding uncommitted events is found.
    Check {
        /// Configuration file (for `[journal] dir`); built-in defaults when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The data dir of `spate run`.
        #[arg(long, default_value = "./spate-data")]
        data_dir: PathBuf,
        /// Report format (csv: one row per segment).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum HotAction {
    /// Recent events at or above a severity, newest first.
    Recent {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Lowest severity (INFO, WARNING, ERROR, CRITICAL).
        #[arg(long)]
        severity: Option<String>,
        /// How far back (30s, 15m, 2h, 1d).
        #[arg(long, default_value = "15m")]
        since: String,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Output format (table: time, severity, service and message; the
        /// others: every field).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Same as --format ndjson.
        #[arg(long, hide = true, conflicts_with = "format")]
        json: bool,
    },
    /// Alerts raised and resolved, newest first.
    Alerts {
        /// How far back (30s, 15m, 2h, 1d).
        #[arg(long, default_value = "1d")]
        since: String,
        /// At most this many alerts.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output format (table: time, state, severity, rule, service and
        /// message; the others: every field).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Same as --format ndjson.
        #[arg(long, hide = true, conflicts_with = "format")]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LakeAction {
    /// Merge the small Parquet files of closed partitions into files of about
    /// `lake.max_file_size` (exactly once for readers of a local lake).
    Compact(lake_cli::CompactArgs),
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the full default configuration, documented.
    Default,
    /// Print the reference of every key: type, default and meaning (Markdown).
    Reference,
    /// Validate a configuration file.
    Check {
        /// The file to check.
        file: PathBuf,
        /// Report format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?)
}

/// Reads and validates the configuration (the built-in defaults without a
/// file), the one check `config check`, `ingest` and `run` share.
fn load_config(path: Option<&std::path::Path>) -> Result<config::ValidConfig> {
    config::load(path)?.validate()
}

/// `SPATE_LISTEN`, the listen address of `spate run` when `--listen` is not
/// given (set to `0.0.0.0:8470` in the container image); unset or empty: the
/// config's `http.listen`.
fn listen_from_env() -> Option<String> {
    std::env::var("SPATE_LISTEN").ok().filter(|s| !s.is_empty())
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Not locked for the whole command: `spate run` prints alerts on stdout
    // from its own threads.
    let mut stdout = std::io::stdout();
    let out: &mut dyn Write = &mut stdout;
    match cli.command {
        Command::Ingest {
            config,
            data_dir,
            format,
            json,
            paths,
        } => {
            let valid = load_config(config.as_deref())?;
            let runtime = runtime()?;
            let summary = runtime.block_on(ingest::run(valid, &data_dir, &paths));
            // A read of stdin may still wait on a blocking thread after a signal;
            // do not wait for it (everything read has been archived).
            runtime.shutdown_background();
            let summary = summary?;
            let format = format.or_legacy(json, Format::Json);
            output::write_report(out, format, &serde_json::to_value(&summary)?, || {
                summary.render()
            })?;
            if summary.interrupted {
                return Ok(ExitCode::from(130));
            }
        }
        Command::Run {
            config,
            listen,
            data_dir,
        } => {
            allocator::configure_for_service();
            let mut loaded = config::load(config.as_deref())?;
            if let Some(listen) = listen.or_else(listen_from_env) {
                loaded.config.http.listen = listen;
            }
            let valid = loaded.validate()?;
            let runtime = runtime()?;
            let result = runtime.block_on(run::run(
                valid,
                run::RunOptions {
                    data_dir,
                    signals: None,
                },
            ));
            runtime.shutdown_background();
            result?;
        }
        Command::Hot {
            action,
            config,
            data_dir,
        } => {
            let config = load_config(config.as_deref())?.config;
            let path = hot_cli::hot_path(&config, &data_dir);
            let source = if config.hot_dynamodb.is_some() {
                hot_cli::HotSource::Dynamo(&config)
            } else {
                hot_cli::HotSource::Embedded(&path)
            };
            match action {
                HotAction::Recent {
                    service,
                    severity,
                    since,
                    limit,
                    format,
                    json,
                } => {
                    let severity = severity
                        .as_deref()
                        .map(hot_cli::parse_severity)
                        .transpose()?;
                    let since = duration_arg::parse_duration(&since).map_err(anyhow::Error::msg)?;
                    let note = hot_cli::expiry_note(&source, &config)?;
                    let rows = hot_cli::recent(source, service, severity, since, limit)?;
                    hot_cli::write(
                        out,
                        format.or_legacy(json, Format::Ndjson),
                        &rows,
                        &hot_cli::EVENT_TABLE_COLUMNS,
                        &hot_cli::EVENT_COLUMNS,
                    )?;
                    if let Some(note) = note {
                        eprintln!("{note}");
                    }
                }
                HotAction::Alerts {
                    since,
                    limit,
                    format,
                    json,
                } => {
                    let since = duration_arg::parse_duration(&since).map_err(anyhow::Error::msg)?;
                    let rows = hot_cli::alerts(source, since, limit)?;
                    hot_cli::write(
                        out,
                        format.or_legacy(json, Format::Ndjson),
                        &rows,
                        &hot_cli::ALERT_TABLE_COLUMNS,
                        &hot_cli::ALERT_COLUMNS,
                    )?;
                }
            }
        }
        Command::Alerts {
            action,
            config,
            data_dir,
        } => {
            let config = load_config(config.as_deref())?.config;
            out.write_all(alerts_cli::run(action, &config, &data_dir)?.as_bytes())?;
        }
        Command::Query(args) => {
            let config = load_config(args.config.as_deref())?.config;
            runtime()?.block_on(async {
                let (lake, history) = query::cli::sources(&args, &config).await?;
                let limits = query::cli::limits(&args, &config.query);
                query::cli::run_cli(&args, &limits, lake, history, out).await
            })?;
        }
        Command::Health {
            url,
            timeout_secs,
            format,
        } => {
            health::check(&url, std::time::Duration::from_secs(timeout_secs))?;
            let report = serde_json::json!({ "url": url, "status": "ok" });
            output::write_objects(out, format, &["url", "status"], &[report])?;
        }
        Command::Demo {
            target,
            events,
            seed,
            token,
            format,
        } => {
            let now = spate_operators::event::wall_clock_ms();
            let count = usize::try_from(events)?;
            let (body, report) = demo::events(count, seed, now, &target);
            demo::push(
                &target,
                token.as_deref(),
                &body,
                std::time::Duration::from_secs(30),
            )?;
            output::write_report(out, format, &serde_json::to_value(&report)?, || {
                report.render()
            })?;
        }
        Command::Top(args) => top::run(&args, out)?,
        Command::User { action } => console::user_cli::run(action, out)?,
        Command::Tap(args) => tap_cli::run(&args, out)?,
        Command::Completions { shell } => {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "spate", &mut buffer);
            out.write_all(&buffer)?;
        }
        Command::Lake {
            action: LakeAction::Compact(args),
        } => {
            let config = load_config(args.config.as_deref())?.config;
            let report = runtime()?.block_on(lake_cli::compact(&args, &config))?;
            let format = args.format.or_legacy(args.json, Format::Json);
            output::write_report(out, format, &serde_json::to_value(&report)?, || {
                lake_cli::render(&report)
            })?;
        }
        Command::Config { action } => match action {
            ConfigAction::Default => out.write_all(DEFAULT_CONFIG_TOML.as_bytes())?,
            ConfigAction::Reference => out.write_all(
                config::reference::markdown(&spate_operators::sources::supported_sources())
                    .as_bytes(),
            )?,
            ConfigAction::Check { file, format } => {
                // The same reading and validation as `spate run`, then the
                // local files the configuration names.
                let valid = load_config(Some(&file))?;
                valid.preflight()?;
                let report =
                    serde_json::json!({ "file": file.display().to_string(), "valid": true });
                output::write_report(out, format, &report, || format!("{}: ok\n", file.display()))?;
            }
        },
        Command::Cost(args) => {
            let prices = cost::prices::for_region(&args.region).map_err(anyhow::Error::msg)?;
            let mut inputs = cost::CostInputs::new(args.events_per_day);
            inputs.event_bytes = args.event_bytes;
            inputs.hot_share = args.hot_share;
            inputs.source = args.source;
            inputs.region = args.region.clone();
            inputs.events_per_message = args.events_per_message;
            inputs.compression = args.compression;
            inputs.services = args.services;
            inputs.min_tasks = args.min_tasks;
            inputs.hot_capacity = args.hot_capacity;
            cost::check_task_size(args.task_cpu, args.task_memory).map_err(anyhow::Error::msg)?;
            inputs.task_vcpu = f64::from(args.task_cpu) / 1024.0;
            inputs.task_memory_gb = f64::from(args.task_memory) / 1024.0;
            inputs.s3_gets_per_day = args.s3_gets_per_day;
            inputs.emf = !args.no_emf;
            inputs.validate().map_err(anyhow::Error::msg)?;
            let bill = match args.architecture {
                cost::Architecture::Spate => cost::spate_bill(&inputs, prices),
                cost::Architecture::SeedLambda => cost::seed_lambda_bill(&inputs, prices),
            };
            let rows = cost::input_rows(&inputs, args.architecture);
            cost::write(out, args.format, &bill, &rows)?;
        }
        Command::Journal {
            action:
                JournalAction::Check {
                    config,
                    data_dir,
                    format,
                },
        } => {
            let config = load_config(config.as_deref())?.config;
            return journal_cli::run(&config.journal, &data_dir, format, &mut stdout.lock());
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    allocator::configure();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        // A reader that went away (`spate query | head -1`) is not a failure.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spate: {e:#}");
            ExitCode::from(1)
        }
    }
}
