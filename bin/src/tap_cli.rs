//! `spate tap`: the events passing a stage of a running `spate run`, as
//! they pass (`GET /v1/tap`, see `run::http::tap`).
//!
//! A sample: when the terminal reads slower than the stage runs, the service
//! drops what does not fit (and counts it); the pipeline never waits. Ends
//! after `--limit` lines, on Ctrl-C, or when the reader goes away
//! (`spate tap | head`).

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::output::{Format, write_objects};
use crate::plain_http;

/// The stage to tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Stage {
    /// Decoded and classified events.
    #[default]
    Decode,
    /// Events on their way into the lake.
    Lake,
    /// Events on their way into the hot store.
    Hot,
    /// Alert notices.
    Alerts,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Lake => "lake",
            Stage::Hot => "hot",
            Stage::Alerts => "alerts",
        }
    }
}

/// `spate tap` arguments.
#[derive(Debug, clap::Args)]
pub struct TapArgs {
    /// The address of `spate run`.
    #[arg(long, default_value = "http://127.0.0.1:8470")]
    pub url: String,
    /// Where to watch.
    #[arg(long, value_enum, default_value_t)]
    pub stage: Stage,
    /// Only lines that match: `service=api`, `severity>=ERROR`, a field
    /// `=` value (host, source, status, tags, rule, state...), or any other
    /// text to find in the line (ignoring case). Repeat to require several.
    #[arg(long)]
    pub filter: Vec<String>,
    /// Stop after this many lines.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Bearer token of the data APIs, when `spate run` has one.
    #[arg(long, env = "SPATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format: ndjson (each line as the service sends it; json is the
    /// same, a stream has no end to close an array at), table (time,
    /// severity, service, message), csv (those columns under a header).
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,
}

/// The columns of `table` and `csv`: events' and alert notices' fields.
const COLUMNS: [&str; 5] = ["ts", "severity", "service", "rule", "message"];

/// The request path and query of `args`.
pub fn tap_path(args: &TapArgs) -> String {
    let mut path = format!(
        "{}/v1/tap?stage={}",
        args.url.trim_end_matches('/'),
        args.stage.as_str()
    );
    for filter in &args.filter {
        path.push_str("&filter=");
        path.push_str(&percent_encode(filter));
    }
    if let Some(limit) = args.limit {
        path.push_str(&format!("&limit={limit}"));
    }
    path
}

/// `%XX` for every byte but the unreserved ones of RFC 3986.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Streams the tap to `out` until the limit, the end of the answer, or an
/// error writing (a reader that went away).
pub fn run(args: &TapArgs, out: &mut dyn Write) -> Result<()> {
    let url = tap_path(args);
    // The service sends an empty line every two idle seconds.
    let mut response = plain_http::get(&url, args.token.as_deref(), Duration::from_secs(30))?;
    if response.status != 200 {
        let mut text = String::new();
        let _ = response.body.read_to_string(&mut text);
        let reason = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("{url} answered {}: {}", response.status, reason.trim());
    }
    if args.format == Format::Csv {
        write_objects(out, Format::Csv, &COLUMNS, &[])?;
    }
    let mut line = String::new();
    let mut written = 0u64;
    loop {
        line.clear();
        let read = response
            .body
            .read_line(&mut line)
            .with_context(|| format!("reading {url}"))?;
        if read == 0 {
            return Ok(());
        }
        let text = line.trim_end();
        if text.is_empty() {
            continue;
        }
        write_line(out, args.format, text)?;
        out.flush()?;
        written += 1;
        if args.limit.is_some_and(|limit| written >= limit) {
            return Ok(());
        }
    }
}

/// One line of the tap in `format`.
fn write_line(out: &mut dyn Write, format: Format, text: &str) -> Result<()> {
    match format {
        Format::Json | Format::Ndjson => writeln!(out, "{text}")?,
        Format::Table | Format::Csv => {
            let mut object: Value = serde_json::from_str(text)?;
            if object.get("ts").is_none()
                && let Some(raised) = object.get("raised_at_ms").cloned()
            {
                object["ts"] = raised;
            }
            if format == Format::Csv {
                let mut row = Vec::new();
                write_objects(&mut row, Format::Csv, &COLUMNS, &[object])?;
                // The header is written once, at the start.
                let row = String::from_utf8_lossy(&row);
                out.write_all(row.split_once('\n').map_or("", |(_, r)| r).as_bytes())?;
            } else {
                let cell = |key: &str| match object.get(key) {
                    Some(Value::String(s)) => s.replace(['\n', '\t'], " "),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                writeln!(
                    out,
                    "{}  {:<8}  {}  {}{}",
                    cell("ts"),
                    cell("severity"),
                    cell("service"),
                    match cell("rule") {
                        rule if rule.is_empty() => String::new(),
                        rule => format!("[{rule}] "),
                    },
                    cell("message")
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_travel_percent_encoded() {
        let args = TapArgs {
            url: "http://127.0.0.1:8470/".into(),
            stage: Stage::Hot,
            filter: vec!["severity>=ERROR".into(), "disk full & more".into()],
            limit: Some(5),
            token: None,
            format: Format::Ndjson,
        };
        assert_eq!(
            tap_path(&args),
            "http://127.0.0.1:8470/v1/tap?stage=hot&filter=severity%3E%3DERROR&filter=disk%20full%20%26%20more&limit=5"
        );
    }

    #[test]
    fn lines_render_per_format() {
        let line = r#"{"ts":"2026-12-05T10:00:00Z","severity":"ERROR","service":"api","message":"boom\nagain"}"#;
        let mut out = Vec::new();
        write_line(&mut out, Format::Table, line).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-05T10:00:00Z  ERROR     api  boom again\n"
        );
        let mut out = Vec::new();
        write_line(&mut out, Format::Csv, line).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-05T10:00:00Z,ERROR,api,,\"boom\nagain\"\n"
        );
        let mut out = Vec::new();
        write_line(&mut out, Format::Ndjson, line).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{line}\n"));
    }
}
