//! `spate top`: a live view of a running `spate run`, read from its
//! `/metrics` ([`frame`] computes what is shown from two scrapes).
//!
//! On a terminal, in `--format table`, the screen is cleared and redrawn
//! every `--interval`; elsewhere frames follow each other (`json` and
//! `ndjson`: one JSON object a frame and line). `--once` prints one frame,
//! from two scrapes `--interval` apart, and exits.

pub mod frame;

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use self::frame::{Frame, Scrape, bytes, number};
use crate::output::{Format, write_objects, write_rows};
use crate::plain_http;

/// `spate top` arguments.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// The address of `spate run`; `/metrics` is read from it.
    #[arg(long, default_value = "http://127.0.0.1:8470")]
    pub url: String,
    /// Time between frames (the rates are over it): 1s, 2s, 1m.
    #[arg(long, default_value = "2s")]
    pub interval: String,
    /// Print one frame and exit.
    #[arg(long)]
    pub once: bool,
    /// Bearer token, when `spate run` has `http.metrics_auth = true`.
    #[arg(long, env = "SPATE_METRICS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format (table: redrawn on a terminal; json, ndjson: one
    /// object a frame; csv: one row per actor and source).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

const ACTOR_COLUMNS: [&str; 7] = [
    "actor", "in/s", "out/s", "mailbox", "blocked", "errors", "restarts",
];
const SOURCE_COLUMNS: [&str; 6] = [
    "source",
    "lag",
    "in flight",
    "bytes",
    "delivered/s",
    "failed",
];
const CSV_COLUMNS: [&str; 13] = [
    "kind",
    "name",
    "in_per_sec",
    "out_per_sec",
    "mailbox",
    "backpressure",
    "errors",
    "restarts",
    "lag_seconds",
    "inflight_events",
    "inflight_bytes",
    "delivered_per_sec",
    "failed",
];

/// Runs `spate top` until interrupted (or for one frame).
pub fn run(args: &TopArgs, out: &mut dyn Write) -> Result<()> {
    let interval =
        crate::duration_arg::parse_duration(&args.interval).map_err(anyhow::Error::msg)?;
    if interval.is_zero() {
        bail!("--interval must be at least 1s");
    }
    let url = format!("{}/metrics", args.url.trim_end_matches('/'));
    let redraw = args.format == Format::Table && !args.once && std::io::stdout().is_terminal();
    let mut previous = scrape(&url, args.token.as_deref())?;
    let mut at = Instant::now();
    loop {
        std::thread::sleep(interval);
        let current = scrape(&url, args.token.as_deref())?;
        let now = Instant::now();
        let frame = frame::frame(&previous, &current, (now - at).as_secs_f64());
        if redraw {
            // Home and clear, then the frame.
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        write_frame(out, args.format, &args.url, &frame)?;
        out.flush()?;
        if args.once {
            return Ok(());
        }
        (previous, at) = (current, now);
    }
}

fn scrape(url: &str, token: Option<&str>) -> Result<Scrape> {
    let mut response = plain_http::get(url, token, Duration::from_secs(10))?;
    let mut text = String::new();
    response.body.read_to_string(&mut text)?;
    match response.status {
        200 => Ok(Scrape::parse(&text)),
        401 => bail!("{url} answered 401: give the metrics token (--token or SPATE_METRICS_TOKEN)"),
        status => bail!("{url} answered {status}: {}", text.trim()),
    }
}

/// Writes one frame in `format`.
pub fn write_frame(out: &mut dyn Write, format: Format, url: &str, frame: &Frame) -> Result<()> {
    match format {
        Format::Json | Format::Ndjson => {
            serde_json::to_writer(&mut *out, frame)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut rows = Vec::new();
            for actor in &frame.actors {
                let mut row = serde_json::to_value(actor)?;
                row["kind"] = "actor".into();
                row["name"] = actor.actor.clone().into();
                rows.push(row);
            }
            for source in &frame.sources {
                let mut row = serde_json::to_value(source)?;
                row["kind"] = "source".into();
                row["name"] = source.source.clone().into();
                rows.push(row);
            }
            write_objects(out, format, &CSV_COLUMNS, &rows)?;
        }
        Format::Table => out.write_all(render_table(url, frame)?.as_bytes())?,
    }
    Ok(())
}

/// The frame as text: a summary line, the actors, the sources.
pub fn render_table(url: &str, frame: &Frame) -> Result<String> {
    let mut text = format!(
        "spate top  {url}  every {}s  events {}/s  cpu {}  memory {}\n\n",
        number(frame.interval_secs),
        number(frame.events_per_sec),
        frame.cpu_cores.map_or("-".into(), number),
        frame.memory_bytes.map_or("-".into(), bytes),
    );
    let actors = frame.actors.iter().map(|a| {
        vec![
            a.actor.clone(),
            number(a.in_per_sec),
            number(a.out_per_sec),
            number(a.mailbox),
            format!("{:.0}%", a.backpressure * 100.0),
            number(a.errors),
            number(a.restarts),
        ]
    });
    let sources = frame.sources.iter().map(|s| {
        vec![
            s.source.clone(),
            format!("{}s", number(s.lag_seconds)),
            number(s.inflight_events),
            bytes(s.inflight_bytes),
            number(s.delivered_per_sec),
            number(s.failed),
        ]
    });
    let mut buffer = Vec::new();
    table(&mut buffer, &ACTOR_COLUMNS, actors)?;
    buffer.push(b'\n');
    table(&mut buffer, &SOURCE_COLUMNS, sources)?;
    text.push_str(&String::from_utf8_lossy(&buffer));
    Ok(text)
}

/// Text cells under `columns`, as an aligned table.
fn table(
    out: &mut dyn Write,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> std::io::Result<()> {
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let rows: Vec<Vec<Value>> = rows
        .map(|row| row.into_iter().map(Value::String).collect())
        .collect();
    write_rows(out, Format::Table, &columns, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_renders_as_tables_and_rows() {
        let previous = Scrape::parse(
            "spate_actor_events_received_total{actor=\"decode\"} 0\nspate_source_oldest_unacked_age_seconds{source=\"http\"} 0\n",
        );
        let current = Scrape::parse(
            "spate_actor_events_received_total{actor=\"decode\"} 50\nspate_source_oldest_unacked_age_seconds{source=\"http\"} 2\nprocess_resident_memory_bytes 3145728\n",
        );
        let frame = frame::frame(&previous, &current, 2.0);
        let text = render_table("http://x", &frame).unwrap();
        assert!(text.contains("memory 3MiB"), "{text}");
        let decode = text.lines().find(|l| l.starts_with("decode")).unwrap();
        assert_eq!(decode.split_whitespace().nth(1), Some("25"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("http") && l.contains("2s"))
        );

        let mut csv = Vec::new();
        write_frame(&mut csv, Format::Csv, "http://x", &frame).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("kind,name,in_per_sec"), "{csv}");
        assert!(csv.contains("actor,decode,25"), "{csv}");
        assert!(csv.contains("source,http,"), "{csv}");

        let mut json = Vec::new();
        write_frame(&mut json, Format::Json, "http://x", &frame).unwrap();
        let value: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["actors"][0]["in_per_sec"], 25.0);
        assert_eq!(value["sources"][0]["lag_seconds"], 2.0);
    }
}
