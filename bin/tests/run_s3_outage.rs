//! `spate run` with `[lake.s3]` through a 60 s outage of S3: the emulator's
//! address refuses connections (its listener closed, open connections cut) for
//! a minute while pushes keep coming, then comes back. Every event a push
//! acknowledged reaches the bucket, each once.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::emulator::{boto, endpoint};
use spate_test_support::service::Service;
use spate_test_support::wait::poll_until;
use support::loadgen;

/// A TCP forwarder in front of the emulator that can be taken down: while
/// down its port refuses connections and the connections it had are cut, as
/// when the emulator itself stops.
struct Outage {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Outage {
    fn start(upstream: SocketAddr) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let outage = Outage {
            port,
            down: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (down, open, stop) = (
            outage.down.clone(),
            outage.open.clone(),
            outage.stop.clone(),
        );
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            while !stop.load(Ordering::Acquire) {
                if down.load(Ordering::Acquire) {
                    // Closed: connecting now is refused.
                    listener = None;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let l = listener.get_or_insert_with(|| {
                    TcpListener::bind(("127.0.0.1", port)).expect("the port comes back")
                });
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((client, _)) => forward(client, upstream, &open),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        outage
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops answering: refuses new connections, cuts the open ones.
    fn take_down(&self) {
        self.down.store(true, Ordering::Release);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn bring_back(&self) {
        self.down.store(false, Ordering::Release);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Copies bytes both ways between `client` and a new connection to
/// `upstream`, each direction on its own thread.
fn forward(client: TcpStream, upstream: SocketAddr, open: &Arc<Mutex<Vec<TcpStream>>>) {
    client.set_nonblocking(false).unwrap();
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    {
        let mut open = open.lock().unwrap();
        open.push(client.try_clone().unwrap());
        open.push(server.try_clone().unwrap());
    }
    for (mut from, mut to) in [
        (client.try_clone().unwrap(), server.try_clone().unwrap()),
        (server, client),
    ] {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

fn emulator_addr() -> SocketAddr {
    let url = endpoint();
    let host_port = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    host_port
        .parse()
        .expect("the emulator listens on an IP:port")
}

fn counter(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_minute_without_s3_loses_no_acknowledged_event() {
    let id = format!("outage{}", std::process::id());
    let setup = boto(
        "s3.create_bucket(Bucket=ARGS['bucket'])\nprint(json.dumps({}))\n",
        &json!({ "bucket": id }),
    );
    assert!(setup.is_object());
    let outage = Outage::start(emulator_addr());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        r#"[aws]
endpoint_url = "{url}"
region = "us-east-1"

[lake]
max_file_age_secs = 1

[lake.s3]
bucket = "{id}"
prefix = "spate/"
"#,
        url = outage.url(),
    );
    let service = Service::start(support::SPATE, &data, &config);

    // 80 s of pushes at 250 events/s; S3 is gone from 10 s to 70 s.
    let send_report = dir.path().join("send.json");
    let sender = {
        let url = service.url.clone();
        let report = send_report.clone();
        std::thread::spawn(move || {
            #[rustfmt::skip]
            let sent = support::loadgen_json(&[
                "send", "--target", &url, "--profile", "steady", "--rate", "250",
                "--duration", "80s", "--batch-events", "50", "--run-id", "outage",
            ]);
            std::fs::write(&report, sent.to_string()).unwrap();
            sent
        })
    };
    // Files reach S3 before the outage.
    poll_until(
        Duration::from_secs(30),
        "files in S3 before the outage",
        || {
            let written = counter(
                &service.metrics_text(),
                "spate_s3_lake_objects_written_total",
            );
            (written > 0.0).then_some(written)
        },
    );
    outage.take_down();
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    let during = service.metrics_text();
    assert!(
        counter(&during, "spate_s3_lake_request_errors_total") > 0.0,
        "the outage was seen: {}",
        service.output()
    );
    outage.bring_back();
    let outage_secs = down_at.elapsed().as_secs();
    let sent = sender.join().unwrap();
    let scheduled = sent["scheduled"].as_u64().unwrap();
    let acknowledged = sent["acknowledged"].as_u64().unwrap();
    assert!(acknowledged > scheduled / 2, "{sent}");

    // Everything staged is sealed and uploaded once S3 answers again.
    let lake = format!("s3://{id}/spate");
    let report_arg = send_report.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let verified = loop {
        // `verify` exits 1 while events are missing: read its report anyway.
        let out = loadgen()
            .args([
                "verify",
                "--lake",
                &lake,
                "--send-report",
                &report_arg,
                "--json",
            ])
            .output()
            .unwrap();
        let verified: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("loadgen verify: {}", String::from_utf8_lossy(&out.stderr)));
        if verified["lost"]["count"] == 0 || Instant::now() > deadline {
            break verified;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(
        verified["lost"]["count"],
        0,
        "{verified}\n{}",
        service.output()
    );
    assert_eq!(verified["duplicates"]["extra_rows"], 0, "{verified}");
    assert!(
        verified["unique"].as_u64().unwrap() >= acknowledged,
        "{verified}"
    );
    eprintln!(
        "s3 outage of {outage_secs} s: {scheduled} events sent, {acknowledged} acknowledged, \
         {} in the lake, 0 lost",
        verified["unique"]
    );
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}
