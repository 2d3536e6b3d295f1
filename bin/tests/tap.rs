//! `spate tap` through the binary against a live `spate run`: it shows the
//! events pushed (filtered), stops at `--limit`, on Ctrl-C and when its
//! reader goes away, leaving no listener behind; without the token it is
//! refused (401) when the service has one.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spate_test_support::service::Service;
use support::spate;

/// `n` events of each of `checkout` (ERROR) and `web` (INFO), tagged `round`.
fn events(round: usize, n: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "{{\"service\":\"checkout\",\"level\":\"error\",\"msg\":\"payment declined r{round} #{i}\"}}\n{{\"service\":\"web\",\"level\":\"info\",\"msg\":\"page served r{round} #{i}\"}}\n"
        ));
    }
    body
}

/// `spate tap --url URL ARGS`, stdout and stderr piped.
fn tap(service: &Service, args: &[&str]) -> Child {
    spate()
        .args(["tap", "--url", &service.url])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `spate_tap_listeners{stage=STAGE}` is `n`.
fn wait_listeners(service: &Service, stage: &str, n: f64) {
    let series = format!("spate_tap_listeners{{stage=\"{stage}\"}}");
    let started = Instant::now();
    while service.metric(&series) != Some(n) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{series} never became {n}: {:?}",
            service.metric(&series)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits at most 30 s for `child` to exit.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("spate tap did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tap_shows_pushed_events_filtered_and_stops_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), "");
    let mut child = tap(
        &service,
        &[
            "--filter",
            "service=checkout",
            "--filter",
            "severity>=ERROR",
            "--filter",
            "DECLINED r1",
            "--limit",
            "3",
        ],
    );
    wait_listeners(&service, "decode", 1.0);
    service.push(&events(0, 5), None);
    service.push(&events(1, 5), None);
    let status = wait_exit(&mut child);
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["service"], "checkout", "{line}");
        assert_eq!(line["severity"], "ERROR", "{line}");
        let message = line["message"].as_str().unwrap();
        assert!(message.starts_with("payment declined r1 #"), "{line}");
        assert!(line["event_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    // The answer ended with the limit: the listener is gone.
    wait_listeners(&service, "decode", 0.0);

    // The lake stage too, as a table.
    let mut child = tap(
        &service,
        &[
            "--stage",
            "lake",
            "--filter",
            "service=web",
            "--format",
            "table",
            "--limit",
            "2",
        ],
    );
    wait_listeners(&service, "lake", 1.0);
    service.push(&events(2, 3), None);
    assert!(wait_exit(&mut child).success());
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .all(|l| l.contains("  INFO  ") && l.contains(" web  page served r2")),
        "{out}"
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

#[test]
fn ctrl_c_and_a_closed_pipe_end_the_tap_and_its_listener() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(support::SPATE, &dir.path().join("data"), "");

    // Ctrl-C.
    let mut child = tap(&service, &[]);
    wait_listeners(&service, "decode", 1.0);
    service.push(&events(0, 2), None);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert!(first["message"].as_str().unwrap().contains(" r0 #"));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_exit(&mut child);
    // The service notices the closed connection (at the latest at its next
    // idle line) and removes the listener.
    wait_listeners(&service, "decode", 0.0);

    // A reader that goes away: the tap exits 0.
    let mut child = tap(&service, &["--stage", "hot"]);
    wait_listeners(&service, "hot", 1.0);
    service.push(&events(1, 2), None);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"service\""), "{first}");
    drop(stdout);
    // The next line it writes fails: it ends quietly.
    let started = Instant::now();
    let status = loop {
        service.push(&events(2, 2), None);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tap kept running"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    wait_listeners(&service, "hot", 0.0);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

#[test]
fn tap_needs_the_token_when_the_service_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        support::SPATE,
        &dir.path().join("data"),
        "[http]\nauth_token = \"s3cret\"\n",
    );
    let out = spate()
        .args(["tap", "--url", &service.url, "--limit", "1"])
        .env_remove("SPATE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("answered 401: missing or wrong bearer token"),
        "{stderr}"
    );
    let out = spate()
        .args(["tap", "--url", &service.url, "--token", "wrong"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    let mut child = spate()
        .args(["tap", "--url", &service.url, "--limit", "1"])
        .env("SPATE_TOKEN", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_listeners(&service, "decode", 1.0);
    service.push(&events(0, 1), Some("s3cret"));
    assert!(wait_exit(&mut child).success());
    let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn an_open_tap_does_not_hold_the_shutdown_up() {
    let dir = tempfile::tempdir().unwrap();
    // Connections still open at shutdown would be waited for two minutes.
    let service = Service::start(
        support::SPATE,
        &dir.path().join("data"),
        "[http]\ndrain_timeout = \"120s\"\n",
    );
    let mut child = tap(&service, &["--stage", "alerts"]);
    wait_listeners(&service, "alerts", 1.0);
    // SIGTERM: the tap's answer ends with the service's drain, well before
    // the drain timeout (Service::stop gives up after 60 s).
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    let status = wait_exit(&mut child);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
}
