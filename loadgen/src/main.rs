//! `loadgen`: writes Spate's benchmark workloads, drives them into Spate at a rate profile
//! (`send`), and checks a run in the lake (`verify`).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use mimalloc::MiMalloc;
use spate_loadgen::send::{
    self, AwsDestination, BodyCompression, HttpOptions, MessageFormat, Packing, Profile, Schedule,
    SendPlan,
};
use spate_loadgen::verify::{self, Lake, S3Lake, VerifyRequest};
use spate_loadgen::{BatchGenerator, GenerateStats, RunId, Workload, generate};

mod report_format;

use report_format::{ReportFormat, write_report};

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
    /// Send a workload to a target at a rate profile (open loop) and report achieved rate,
    /// rejections, errors and latency from scheduled send to acceptance. Exits 1 when events
    /// failed (were given up on).
    Send(SendArgs),
    /// Check a `send` run in Spate's lake: lost and duplicated events, send->archive
    /// latency. Exits 1 when events are lost.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct SendArgs {
    /// Workload: w1 (app-json), w2 (access) or w3 (cloudwatch). Only w1 and w3 events carry
    /// the run marks that `verify` needs.
    #[arg(long, default_value = "w1", value_parser = clap::builder::ValueParser::new(parse_workload))]
    workload: Workload,
    /// Nominal rate R in events per second (suffixes k and m accepted, e.g. 20k).
    #[arg(long, value_parser = parse_rate)]
    rate: f64,
    /// How long to offer load, e.g. 60s, 5m, 1h, 500ms (plain numbers are seconds).
    /// Required except for the spike profile, which runs 150 s and is scaled to a duration
    /// when one is given.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Rate profile: steady (R), ramp (0 to R over the duration), spike (W4: R for 60 s,
    /// 10xR for 30 s, R for 60 s) or sine (R x (1 + amplitude x sin(2 pi t / period))).
    #[arg(long, default_value = "steady", value_parser = clap::builder::ValueParser::new(parse_profile))]
    profile: Profile,
    /// Sine profile: swing as a fraction of R, 0 to 1.
    #[arg(long, default_value_t = send::DEFAULT_SINE_AMPLITUDE)]
    amplitude: f64,
    /// Sine profile: length of one oscillation.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    period: Duration,
    /// Where to send: http://HOST:PORT (POST /v1/logs), a full http(s) URL, file:PATH
    /// (append NDJSON), stdout, sqs (with --queue-url) or kinesis (with --stream). SQS and
    /// Kinesis use the standard AWS credential chain; AWS_ENDPOINT_URL points them at an
    /// emulator.
    #[arg(long, default_value = send::DEFAULT_TARGET)]
    target: String,
    /// The queue of --target sqs (SendMessageBatch).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// The stream of --target kinesis (PutRecords).
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// SQS and Kinesis: event lines per message or record (W3 payloads always go one a
    /// message).
    #[arg(long, default_value_t = send::DEFAULT_EVENTS_PER_MESSAGE)]
    events_per_message: usize,
    /// SQS and Kinesis: message bodies as ndjson, or cloudwatch (each message a CloudWatch
    /// Logs subscription payload, gzip + base64, with the lines as logEvents).
    #[arg(long, default_value = "ndjson", value_parser = clap::builder::ValueParser::new(parse_message_format))]
    message_format: MessageFormat,
    /// Compress bodies with gzip or zstd: HTTP bodies with Content-Encoding; SQS and
    /// Kinesis NDJSON message bodies as they are (base64 on SQS, whose bodies are text;
    /// raw bytes on Kinesis): W1 bodies shrink to about a third, and SQS bills every
    /// 64 KiB of a body as one request.
    #[arg(long, default_value = "none", value_parser = clap::builder::ValueParser::new(parse_body_compression))]
    compress: BodyCompression,
    /// Kinesis: aggregate the messages of a request into KPL records (up to 1 MiB each).
    #[arg(long)]
    kpl: bool,
    /// Concurrent senders (and pooled connections).
    #[arg(long, default_value_t = send::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Events per batch (one request body). At low rates use smaller batches: a batch is
    /// due when its first event is.
    #[arg(long, default_value_t = send::DEFAULT_BATCH_EVENTS, value_parser = parse_count)]
    batch_events: u64,
    /// Overdue batches queued for the senders; a batch due while this many wait is dropped
    /// (counted as dropped_by_generator) instead of buffered.
    #[arg(long, default_value_t = send::DEFAULT_MAX_OVERDUE)]
    max_overdue: usize,
    /// Seed of the generator: the same seed sends the same events.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run id stamped on every event as lg_run; generated from the clock when absent.
    #[arg(long, value_parser = parse_run_id)]
    run_id: Option<RunId>,
    /// Bearer token for Spate's HTTP ingest.
    #[arg(long)]
    token: Option<String>,
    /// Compress HTTP bodies with gzip (the same as --compress gzip).
    #[arg(long)]
    gzip: bool,
    /// Per-request HTTP timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Report format (on stdout; on stderr with --target stdout).
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
    /// Same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// Spate's data directory (the lake is read from DATA_DIR/lake/logs).
    #[arg(long, required_unless_present = "lake", conflicts_with = "lake")]
    data_dir: Option<PathBuf>,
    /// A lake on S3, s3://BUCKET/PREFIX as in [lake.s3] (objects under PREFIX/logs/ are
    /// read), with the standard AWS credential chain and AWS_ENDPOINT_URL.
    #[arg(long, value_name = "S3_URL", value_parser = clap::builder::ValueParser::new(S3Lake::parse))]
    lake: Option<S3Lake>,
    /// The run id to check (as printed by `send`); taken from --send-report when absent.
    #[arg(long = "run", value_parser = parse_run_id)]
    run_id: Option<RunId>,
    /// Events the run sent; the highest sequence number found + 1 when absent.
    #[arg(long, value_parser = parse_count, conflicts_with = "send_report")]
    expect: Option<u64>,
    /// The report `loadgen send --json` wrote: only the events it saw acknowledged count as
    /// lost when missing.
    #[arg(long, value_name = "FILE")]
    send_report: Option<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
    /// Same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
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
    /// Format of the stats (events, bytes, expected severity and tag counts), printed on
    /// stderr (stdout may hold the events).
    #[arg(long, value_enum, default_value_t)]
    format: ReportFormat,
    /// Same as --format json.
    #[arg(long, hide = true, conflicts_with = "format")]
    json: bool,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
}

fn parse_message_format(s: &str) -> Result<MessageFormat, String> {
    s.parse()
}

fn parse_body_compression(s: &str) -> Result<BodyCompression, String> {
    s.parse()
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse()
}

fn parse_run_id(s: &str) -> Result<RunId, String> {
    RunId::new(s)
}

/// A rate in events per second, with an optional k or m suffix.
fn parse_rate(s: &str) -> Result<f64, String> {
    let clean = s.trim().replace('_', "").to_ascii_lowercase();
    let (digits, factor) = match clean.strip_suffix('k') {
        Some(d) => (d, 1e3),
        None => match clean.strip_suffix('m') {
            Some(d) => (d, 1e6),
            None => (clean.as_str(), 1.0),
        },
    };
    digits
        .parse::<f64>()
        .ok()
        .map(|n| n * factor)
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| {
            format!("invalid rate {s:?}: expected events per second such as 5000 or 20k")
        })
}

/// A duration such as `500ms`, `90s`, `5m`, `1h`, or a plain number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let clean = s.trim().to_ascii_lowercase();
    let (digits, unit) = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .into_iter()
        .find_map(|(suffix, unit)| clean.strip_suffix(suffix).map(|d| (d, unit)))
        .unwrap_or((clean.as_str(), 1.0));
    digits
        .parse::<f64>()
        .ok()
        .map(|n| n * unit)
        .filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 500ms, 90s, 5m or 1h"))
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

/// Exit status when `verify` finds lost events or `send` gave up on events.
const EXIT_LOST: u8 = 1;
/// Exit status when a command cannot do its work at all.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A reader that went away (`loadgen ... | head`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Generate(args) => run_generate(args).map(|()| ExitCode::SUCCESS),
        Command::Send(args) => run_send(args),
        Command::Verify(args) => run_verify(args),
    }
}

/// Checks the arguments and builds the plan (no I/O).
fn send_plan(args: &SendArgs, progress: bool) -> Result<SendPlan> {
    let format = args.format.or_json(args.json);
    if format != ReportFormat::Table && targets_stdout(args) {
        bail!(
            "--format {format:?} prints the report on stdout, which --target stdout fills with events"
        );
    }
    if args.concurrency == 0 || args.max_overdue == 0 || args.events_per_message == 0 {
        bail!("--concurrency, --max-overdue and --events-per-message must be at least 1");
    }
    aws_destination(args)?;
    let profile = match args.profile {
        Profile::Sine { .. } => Profile::Sine {
            amplitude: args.amplitude,
            period: args.period,
        },
        other => other,
    };
    let schedule = Schedule::new(profile, args.rate, args.duration, args.batch_events)?;
    if !BatchGenerator::carries_marks(args.workload) {
        eprintln!(
            "loadgen: note: {} events carry no run marks; `loadgen verify` cannot check this run",
            args.workload
        );
    }
    Ok(SendPlan {
        workload: args.workload,
        seed: args.seed,
        schedule,
        run_id: args
            .run_id
            .clone()
            .unwrap_or_else(|| RunId::from_wall_clock(send::wall_clock_ms())),
        concurrency: args.concurrency,
        max_overdue: args.max_overdue,
        progress,
    })
}

/// The SQS or Kinesis destination `--target` names, checked against its options.
fn aws_destination(args: &SendArgs) -> Result<Option<AwsDestination>> {
    let destination = match args.target.trim() {
        "sqs" => AwsDestination::Sqs {
            queue_url: args
                .queue_url
                .clone()
                .context("--target sqs needs --queue-url URL")?,
        },
        "kinesis" => AwsDestination::Kinesis {
            stream: args
                .stream
                .clone()
                .context("--target kinesis needs --stream NAME")?,
            kpl: args.kpl,
        },
        _ => {
            if args.queue_url.is_some() || args.stream.is_some() || args.kpl {
                bail!("--queue-url, --stream and --kpl go with --target sqs or --target kinesis");
            }
            return Ok(None);
        }
    };
    match &destination {
        AwsDestination::Sqs { .. } if args.stream.is_some() || args.kpl => {
            bail!("--stream and --kpl go with --target kinesis")
        }
        AwsDestination::Kinesis { .. } if args.queue_url.is_some() => {
            bail!("--queue-url goes with --target sqs")
        }
        _ => Ok(Some(destination)),
    }
}

/// Whether the events go to stdout (the report then goes to stderr).
fn targets_stdout(args: &SendArgs) -> bool {
    matches!(args.target.trim(), "stdout" | "-")
}

fn run_send(args: SendArgs) -> Result<ExitCode> {
    let plan = send_plan(&args, send::stderr_is_terminal())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let options = HttpOptions {
            token: args.token.clone(),
            compression: if args.gzip {
                BodyCompression::Gzip
            } else {
                args.compress
            },
            timeout: Some(args.timeout),
            pool_size: args.concurrency,
        };
        let target = match aws_destination(&args)? {
            Some(destination) => {
                let packing = Packing {
                    events_per_message: args.events_per_message,
                    format: args.message_format,
                    compression: args.compress,
                    text: true,
                };
                send::open_aws_target(destination, packing).await
            }
            None => send::open_target(&args.target, options).await?,
        };
        let interrupted = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        anyhow::Ok(send::run(plan, Arc::from(target), interrupted).await)
    })?;
    let format = args.format.or_json(args.json);
    let json = serde_json::to_value(&report).context("cannot encode the report")?;
    if targets_stdout(&args) {
        write_report(&mut io::stderr().lock(), format, &json, &report.summary())?;
    } else {
        if format != ReportFormat::Table {
            // For the one watching; stdout holds the report for a program.
            eprintln!("{}", report.summary());
        }
        write_report(&mut io::stdout().lock(), format, &json, &report.summary())?;
    }
    Ok(if report.failed > 0 {
        ExitCode::from(EXIT_LOST)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_verify(args: VerifyArgs) -> Result<ExitCode> {
    let sent = args
        .send_report
        .as_deref()
        .map(verify::read_send_report)
        .transpose()?;
    let run_id = match (args.run_id, &sent) {
        (Some(run), Some(sent)) if run.as_str() != sent.run_id => {
            bail!("--run {run} but the send report is of run {}", sent.run_id)
        }
        (Some(run), _) => run,
        (None, Some(sent)) => RunId::new(&sent.run_id)
            .map_err(|e| anyhow::anyhow!("the send report's run id: {e}"))?,
        (None, None) => bail!("give --run RUN_ID or --send-report FILE"),
    };
    let lake = match (args.lake, args.data_dir) {
        (Some(lake), _) => Lake::S3(lake),
        (None, Some(dir)) => Lake::DataDir(dir),
        (None, None) => bail!("give --data-dir DIR or --lake s3://BUCKET/PREFIX"),
    };
    let request = VerifyRequest {
        lake,
        run_id,
        expect: args.expect,
        acknowledged: sent.map(|s| s.acknowledged_seqs),
    };
    let report = verify::verify(&request)?;
    let json = serde_json::to_value(&report).context("cannot encode the report")?;
    write_report(
        &mut io::stdout().lock(),
        args.format.or_json(args.json),
        &json,
        &report.summary(),
    )?;
    Ok(if report.has_loss() {
        ExitCode::from(EXIT_LOST)
    } else {
        ExitCode::SUCCESS
    })
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
    let mut json = stats.to_json();
    json["workload"] = args.workload.short_name().into();
    json["seed"] = args.seed.into();
    json["elapsed_s"] = elapsed.into();
    write_report(
        &mut io::stderr().lock(),
        args.format.or_json(args.json),
        &json,
        &summary(args.workload, &stats, elapsed),
    )?;
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
#[path = "main_tests.rs"]
mod tests;
