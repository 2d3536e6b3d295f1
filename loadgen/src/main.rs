//! `loadgen`: writes Spate's benchmark workloads (and, later, drives traffic into sources).

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use mimalloc::MiMalloc;
use spate_loadgen::{GenerateStats, Workload, generate};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Workload generator for Spate benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a workload deterministically: the same workload, events and seed give the same
    /// bytes.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// Workload: w1 (app-json), w2 (access) or w3 (cloudwatch).
    #[arg(long, value_parser = clap::builder::ValueParser::new(parse_workload))]
    workload: Workload,
    /// Number of log events (for w3: logEvents, control messages not counted). Accepts
    /// suffixes k and m, e.g. 1m.
    #[arg(long, value_parser = parse_count)]
    events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file; stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the stats (events, bytes, expected severity and tag counts) as JSON on stderr
    /// instead of the one-line summary.
    #[arg(long)]
    json: bool,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

fn parse_count(s: &str) -> Result<u64, String> {
    let clean = s.trim().replace('_', "").to_ascii_lowercase();
    let (digits, factor) = match clean.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match clean.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (clean.as_str(), 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            format!("invalid event count {s:?}: expected a number such as 1000000 or 1m")
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A reader that went away (`loadgen ... | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(args) => run_generate(args),
    }
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let started = Instant::now();
    let stats = match &args.out {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            generate(args.workload, args.events, args.seed, file)
                .with_context(|| format!("cannot write {}", path.display()))?
        }
        None => generate(args.workload, args.events, args.seed, io::stdout().lock())
            .context("cannot write to stdout")?,
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mut stderr = io::stderr().lock();
    if args.json {
        let mut json = stats.to_json();
        json["workload"] = args.workload.short_name().into();
        json["seed"] = args.seed.into();
        json["elapsed_s"] = elapsed.into();
        writeln!(stderr, "{json}")?;
    } else {
        writeln!(stderr, "{}", summary(args.workload, &stats, elapsed))?;
    }
    Ok(())
}

fn summary(workload: Workload, stats: &GenerateStats, elapsed: f64) -> String {
    let mib = stats.bytes as f64 / (1024.0 * 1024.0);
    let [info, warning, error, critical] = stats.expected_severity;
    format!(
        "{workload} ({}): {} events, {} records, {mib:.1} MiB in {elapsed:.2} s \
         ({:.0} events/s); expected INFO {info} WARNING {warning} ERROR {error} \
         CRITICAL {critical}, http_5xx {}, failed_login {}",
        workload.long_name(),
        stats.events,
        stats.records,
        stats.events as f64 / elapsed.max(1e-9),
        stats.expected_tags.http_5xx,
        stats.expected_tags.failed_login,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_suffixes_and_separators() {
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("20m"), Ok(20_000_000));
        assert_eq!(parse_count("500K"), Ok(500_000));
        assert!(
            parse_count("lots")
                .unwrap_err()
                .starts_with("invalid event count")
        );
        assert!(parse_count("99999999999999999999m").is_err());
    }

    #[test]
    fn cli_parses_generate() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "generate",
            "--workload",
            "cloudwatch",
            "--events",
            "1k",
            "--seed",
            "9",
            "--json",
        ])
        .unwrap();
        let Command::Generate(args) = cli.command;
        assert_eq!(args.workload, Workload::CloudWatch);
        assert_eq!((args.events, args.seed, args.json), (1000, 9, true));
        assert!(args.out.is_none());
        assert!(
            Cli::try_parse_from(["loadgen", "generate", "--workload", "w7", "--events", "1"])
                .is_err()
        );
    }
}
