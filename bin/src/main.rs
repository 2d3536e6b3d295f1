//! `spate`: the log ingest and analytics stream processor.

mod config;
mod ingest;
mod query;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{DEFAULT_CONFIG_TOML, SpateConfig};

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
    /// SQL over the lake (tables logs, alerts, windows), or the recent logs.
    Query(query::cli::QueryArgs),
    /// Print or check configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the full default configuration, documented.
    Default,
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

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ingest {
            config,
            data_dir,
            json,
            paths,
        } => {
            let config = match config {
                Some(path) => SpateConfig::load(&path)?,
                None => SpateConfig::default(),
            };
            let runtime = runtime()?;
            let summary = runtime.block_on(ingest::run(config, &data_dir, &paths));
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
        Command::Query(args) => {
            let config = match &args.config {
                Some(path) => SpateConfig::load(path)?,
                None => SpateConfig::default(),
            };
            let lake_dir = config.lake.path.unwrap_or_else(|| args.data_dir.join("lake"));
            let mut out = std::io::stdout().lock();
            runtime()?.block_on(query::cli::run_cli(&args, &lake_dir, &mut out))?;
        }
        Command::Config { action } => match action {
            ConfigAction::Default => print!("{DEFAULT_CONFIG_TOML}"),
            ConfigAction::Check { file } => {
                SpateConfig::load(&file)?;
                println!("{}: ok", file.display());
            }
        },
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
