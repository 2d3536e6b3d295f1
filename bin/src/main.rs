//! `spate`: the log ingest and analytics stream processor.

mod alerts_cli;
mod config;
mod data_dir_lock;
mod duration_arg;
mod health;
mod hot_cli;
mod ingest;
mod journal_cli;
mod lake_cli;
mod metric_catalog;
mod query;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::DEFAULT_CONFIG_TOML;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        /// Print the summary as one JSON object.
        #[arg(long)]
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
        /// Report format.
        #[arg(long, value_enum, default_value_t)]
        format: journal_cli::CheckFormat,
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
        /// One JSON object per line.
        #[arg(long)]
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
        /// One JSON object per line.
        #[arg(long)]
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
    match cli.command {
        Command::Ingest {
            config,
            data_dir,
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
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                print!("{}", summary.render());
            }
            if summary.interrupted {
                return Ok(ExitCode::from(130));
            }
        }
        Command::Run {
            config,
            listen,
            data_dir,
        } => {
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
            let out = match action {
                HotAction::Recent {
                    service,
                    severity,
                    since,
                    limit,
                    json,
                } => {
                    let severity = severity
                        .as_deref()
                        .map(hot_cli::parse_severity)
                        .transpose()?;
                    let since = duration_arg::parse_duration(&since).map_err(anyhow::Error::msg)?;
                    hot_cli::recent(source, service, severity, since, limit, json)?
                }
                HotAction::Alerts { since, limit, json } => {
                    let since = duration_arg::parse_duration(&since).map_err(anyhow::Error::msg)?;
                    hot_cli::alerts(source, since, limit, json)?
                }
            };
            print!("{out}");
        }
        Command::Alerts {
            action,
            config,
            data_dir,
        } => {
            let config = load_config(config.as_deref())?.config;
            print!("{}", alerts_cli::run(action, &config, &data_dir)?);
        }
        Command::Query(args) => {
            let config = load_config(args.config.as_deref())?.config;
            let mut out = std::io::stdout().lock();
            runtime()?.block_on(async {
                let (lake, history) = query::cli::sources(&args, &config).await?;
                let limits = query::cli::limits(&args, &config.query);
                query::cli::run_cli(&args, &limits, lake, history, &mut out).await
            })?;
        }
        Command::Health { url, timeout_secs } => {
            health::check(&url, std::time::Duration::from_secs(timeout_secs))?;
        }
        Command::Lake {
            action: LakeAction::Compact(args),
        } => {
            let config = load_config(args.config.as_deref())?.config;
            let report = runtime()?.block_on(lake_cli::compact(&args, &config))?;
            if args.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", lake_cli::render(&report));
            }
        }
        Command::Config { action } => match action {
            ConfigAction::Default => print!("{DEFAULT_CONFIG_TOML}"),
            ConfigAction::Reference => print!(
                "{}",
                config::reference::markdown(&spate_operators::sources::supported_sources())
            ),
            ConfigAction::Check { file } => {
                // The same reading and validation as `spate run`, then the
                // local files the configuration names.
                let valid = load_config(Some(&file))?;
                valid.preflight()?;
                println!("{}: ok", file.display());
            }
        },
        Command::Journal {
            action:
                JournalAction::Check {
                    config,
                    data_dir,
                    format,
                },
        } => {
            let config = load_config(config.as_deref())?.config;
            let mut out = std::io::stdout().lock();
            return journal_cli::run(&config.journal, &data_dir, format, &mut out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
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
        Err(e) => {
            eprintln!("spate: {e:#}");
            ExitCode::from(1)
        }
    }
}
