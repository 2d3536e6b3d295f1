//! `spate top` through the binary, in a real pseudo-terminal (`script` from
//! util-linux), against a live `spate run` taking pushes: one frame shows
//! the stages and sources with non-zero rates; `--format json` gives the
//! same frame as one object; without `--once` it redraws in place until
//! interrupted; with `metrics_auth` it sends the token.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spate_test_support::service::Service;
use support::spate;

/// Pushes 200 events every 100 ms until `until`.
fn keep_pushing(service: &Service, token: Option<&str>, until: Instant) {
    let mut round = 0;
    while Instant::now() < until {
        let body: String = (0..200)
            .map(|i| {
                format!(
                    "{{\"service\":\"api\",\"level\":\"warn\",\"msg\":\"slow call {round}-{i}\"}}\n"
                )
            })
            .collect();
        service.push(&body, token);
        round += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `spate top ARGS` in a pseudo-terminal while events are pushed; its
/// output (the terminal's).
fn top_in_pty(service: &Service, args: &str, token: Option<&'static str>) -> String {
    let command = format!(
        "{} top --url {} --once --interval 2s {args}",
        env!("CARGO_BIN_EXE_spate"),
        service.url
    );
    let until = Instant::now() + Duration::from_secs(4);
    let out = std::thread::scope(|scope| {
        scope.spawn(|| keep_pushing(service, token, until));
        Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(Stdio::null())
            .env_remove("SPATE_METRICS_TOKEN")
            .output()
            .expect("script (util-linux) runs commands in a pseudo-terminal")
    });
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        out.status.success(),
        "{command}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The cells of the last table line starting with `name` (a source named
/// like an actor comes in the second table).
fn row<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
        .split_whitespace()
        .collect()
}

#[test]
fn top_renders_stages_and_rates_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), "");
    let text = top_in_pty(&service, "", None);
    assert!(text.contains("spate top"), "{text}");
    assert!(text.contains("memory "), "{text}");
    for stage in ["decode", "hot", "windows", "alerts", "http"] {
        assert!(
            text.lines().any(|l| l.starts_with(stage)),
            "no {stage}:\n{text}"
        );
    }
    // decode handled events: in/s and out/s above 0.
    let decode = row(&text, "decode");
    let rate = |cell: &str| {
        cell.parse::<f64>()
            .unwrap_or_else(|_| panic!("{cell:?} is not a rate:\n{text}"))
    };
    assert!(rate(decode[1]) > 0.0, "{text}");
    assert!(rate(decode[2]) > 0.0, "{text}");
    // The http source delivered batches (its line in the sources table).
    let http = row(&text, "http");
    assert!(http[1].ends_with('s'), "{text}");
    assert!(rate(http[4]) > 0.0, "{text}");

    // The same frame as JSON.
    let text = top_in_pty(&service, "--format json", None);
    let frame: Value = serde_json::from_str(text.trim()).unwrap();
    assert!(frame["events_per_sec"].as_f64().unwrap() > 0.0, "{frame}");
    let decode = frame["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actor"] == "decode")
        .unwrap_or_else(|| panic!("{frame}"));
    assert!(decode["in_per_sec"].as_f64().unwrap() > 0.0, "{frame}");
    assert!(frame["memory_bytes"].as_f64().unwrap() > 0.0);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

#[test]
fn top_redraws_in_place_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), "");
    // Three seconds of one-second frames, then Ctrl-C (timeout's SIGINT).
    let command = format!(
        "timeout -s INT 3.5 {} top --url {} --interval 1s",
        env!("CARGO_BIN_EXE_spate"),
        service.url
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    // timeout says 124 when it had to interrupt.
    assert_eq!(out.status.code(), Some(124), "{text}");
    let frames = text.matches("\x1b[H\x1b[2J").count();
    assert!(frames >= 2, "{frames} redraws:\n{text}");
    let last = text.rsplit("\x1b[H\x1b[2J").next().unwrap();
    assert!(
        last.contains("spate top") && last.contains("decode"),
        "{last}"
    );
}

#[test]
fn top_sends_the_metrics_token() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        support::SPATE,
        &dir.path().join("data"),
        "[http]\nauth_token = \"s3cret\"\nmetrics_auth = true\n",
    );
    let out = spate()
        .args(["top", "--url", &service.url, "--once", "--interval", "1s"])
        .env_remove("SPATE_METRICS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("answered 401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = top_in_pty(&service, "--token s3cret", Some("s3cret"));
    assert!(
        row(&text, "decode")[1].parse::<f64>().unwrap() > 0.0,
        "{text}"
    );
}
