//! `spate run` under hostile load, through the binary: gzip bombs and large
//! JSON arrays stay within the in-flight memory budget (VmHWM), slow clients
//! neither lock out other pushes nor hold up shutdown, and two SIGKILLs under
//! load lose nothing `loadgen send` saw acknowledged.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spate_loadgen::send::{HttpOptions, HttpTarget, Profile, Schedule, SendPlan};
use spate_loadgen::verify::{self, VerifyRequest};
use spate_loadgen::{RunId, Workload};
use spate_test_support::service::Service;

const BASE_CONFIG: &str = "[hot]\nretention_hours = 1000000\nalert_retention_days = 100000\n";

/// `VmHWM` (peak resident set) of `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A gzip stream of `mib` MiB of one byte, written a MiB at a time.
fn bomb(mib: usize) -> Vec<u8> {
    let chunk = vec![b'a'; 1 << 20];
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..mib {
        enc.write_all(&chunk).unwrap();
    }
    enc.finish().unwrap()
}

/// POSTs `body` until it is not refused for saturation; the final status.
async fn push_until_taken(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    gzip: bool,
) -> reqwest::StatusCode {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = client.post(format!("{url}/v1/logs")).body(body.clone());
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        let status = request.send().await.unwrap().status();
        if status != 429 || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_json_arrays_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!("{BASE_CONFIG}[http]\nmax_inflight_size = \"64MiB\"\n");
    let service = Service::start(support::SPATE, &data, &config);
    let client = reqwest::Client::new();
    // Warm up: a first push and query paths allocate what they keep.
    let status = push_until_taken(
        &client,
        &service.url,
        b"{\"msg\":\"hello\"}\n".to_vec(),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let before = peak_rss(service.pid());

    // 24 bombs at once, ~250 KiB each, 256 MiB each decompressed (more
    // than max_decoded_mib = 64): before, each reserved its compressed
    // size and 24 of them held gigabytes.
    let bomb = bomb(256);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let mut bombs = Vec::new();
    for _ in 0..24 {
        let (client, url, body) = (client.clone(), service.url.clone(), bomb.clone());
        bombs.push(tokio::spawn(async move {
            client
                .post(format!("{url}/v1/logs"))
                .header("content-encoding", "gzip")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for b in bombs {
        let status = b.await.unwrap();
        assert!(status == 413 || status == 429, "a bomb got {status}");
    }

    // Four JSON arrays of 250 k objects (~4 MB each) at once: parsed into
    // a tree each took ~90 times its size.
    let mut array = b"[".to_vec();
    for i in 0..250_000 {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(format!("{{\"i\":{i},\"msg\":\"m\"}}").as_bytes());
    }
    array.push(b']');
    let mut arrays = Vec::new();
    for _ in 0..4 {
        let (client, url, body) = (client.clone(), service.url.clone(), array.clone());
        arrays.push(tokio::spawn(async move {
            push_until_taken(&client, &url, body, false).await
        }));
    }
    for a in arrays {
        assert_eq!(a.await.unwrap(), 200);
    }
    // The same arrays gzipped (a small body, a large decoded one).
    let packed = gzip(&array);
    let status = push_until_taken(&client, &service.url, packed, true).await;
    assert_eq!(status, 200);

    let after = peak_rss(service.pid());
    let grown = after.saturating_sub(before);
    eprintln!(
        "VmHWM before {} MiB, after {} MiB (+{} MiB)",
        before >> 20,
        after >> 20,
        grown >> 20
    );
    // The budget is 64 MiB; the pipeline behind the journal holds its own
    // bounded batches. Before this bound existed the bombs alone took
    // 2.6 GB and one array ~700 MB.
    assert!(grown < 320 << 20, "peak grew by {} MiB", grown >> 20);
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

/// A connection that sent `POST /v1/logs` headers declaring 16 MiB.
fn slow_push(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 16777216\r\n\r\n"
    )
    .unwrap();
    stream
}

/// Sends `chunk` bytes every 100 ms on `stream` until it is closed or
/// `stop` is set; what the server answered.
fn trickle(
    mut stream: TcpStream,
    chunk: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let bytes = vec![b'x'; chunk];
    let mut answer = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if stream.write_all(&bytes).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_neither_lock_out_pushes_nor_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = format!(
        "{BASE_CONFIG}[http]\nmax_inflight_size = \"16MiB\"\nbody_timeout = \"2s\"\n\
         min_body_rate = \"1KiB\"\ndrain_timeout = \"1s\"\n"
    );
    let service = Service::start(support::SPATE, &data, &config);
    let addr = service.url.trim_start_matches("http://").to_string();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // 16 connections declare 16 MiB each (the whole budget, 16 times over)
    // and send 10 bytes a second.
    let slow: Vec<_> = (0..16)
        .map(|_| {
            let stream = slow_push(&addr);
            let stop = stop.clone();
            std::thread::spawn(move || trickle(stream, 1, stop))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Other pushes are taken meanwhile: the slow ones hold what they sent.
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client
            .post(format!("{}/v1/logs", service.url))
            .body(format!("{{\"msg\":\"while slow {i}\"}}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    // The slow ones are cut off at their deadline: 408, connection closed.
    let started = Instant::now();
    for thread in slow {
        let answer = tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    // One that keeps above the minimum rate (4 KiB a second), still going
    // at shutdown: SIGTERM closes it at the drain deadline.
    let stream = slow_push(&addr);
    let going = {
        let stop = stop.clone();
        std::thread::spawn(move || trickle(stream, 400, stop))
    };
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    assert!(
        !going.is_finished(),
        "a body above the minimum rate is not cut"
    );
    let started = Instant::now();
    let (status, output) = tokio::task::spawn_blocking(move || service.stop())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{output}");
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    assert!(output.contains("drain deadline"), "{output}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answer = tokio::task::spawn_blocking(move || going.join().unwrap())
        .await
        .unwrap();
    assert!(!answer.contains("200 OK"), "{answer:?}");
    let _ = std::fs::remove_dir_all(&data);
}

/// A free port on 127.0.0.1 (bound, then released for the service).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sigkills_under_load_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let addr = free_addr();
    let service = Service::start_on(support::SPATE, &data, BASE_CONFIG, &addr);
    let run_id = RunId::new("kill9").unwrap();
    let plan = SendPlan {
        workload: Workload::AppJson,
        seed: 7,
        schedule: Schedule::new(Profile::Steady, 3_000.0, Some(Duration::from_secs(9)), 150)
            .unwrap(),
        run_id: run_id.clone(),
        concurrency: 4,
        max_overdue: 64,
        progress: false,
    };
    let options = HttpOptions {
        token: None,
        compression: spate_loadgen::send::BodyCompression::None,
        timeout: Some(Duration::from_secs(10)),
        pool_size: 4,
    };
    let target = Arc::new(HttpTarget::new(&format!("http://{addr}"), options).unwrap());
    let send = tokio::spawn(spate_loadgen::send::run(
        plan,
        target,
        std::future::pending(),
    ));
    // Kill -9 at 2.5 s and 5.5 s, restarting on the same address each time.
    let restarts = {
        let (data, addr) = (data.clone(), addr.clone());
        tokio::task::spawn_blocking(move || {
            let mut service = service;
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(2_500));
                service.kill();
                service = Service::start_on(support::SPATE, &data, BASE_CONFIG, &addr);
            }
            service
        })
    };
    let report = send.await.unwrap();
    let service = restarts.await.unwrap();
    let (status, output) = tokio::task::spawn_blocking(move || service.stop())
        .await
        .unwrap();
    assert!(status.success(), "{output}");
    eprintln!("{}", report.summary());
    assert!(report.acknowledged > 10_000, "{}", report.summary());

    // What `loadgen verify --send-report` reads: the report as `send --json` writes it.
    let report_file = dir.path().join("send.json");
    std::fs::write(&report_file, serde_json::to_string(&report).unwrap()).unwrap();
    let acks = verify::read_send_report(&report_file).unwrap();
    assert_eq!(acks.run_id, "kill9");
    let verified = verify::verify(&VerifyRequest {
        lake: verify::Lake::DataDir(data.clone()),
        run_id,
        expect: None,
        acknowledged: Some(acks.acknowledged_seqs),
    })
    .unwrap();
    eprintln!("{}", verified.summary());
    assert_eq!(verified.expected_from, "send_report");
    assert_eq!(verified.expected, report.acknowledged);
    assert!(!verified.has_loss(), "{}", verified.summary());
    assert_eq!(verified.lost.count, 0);
    // Nothing twice either: journal replays keep their ids, and a batch
    // whose answer the kill cut off is retried with its Idempotency-Key, so
    // its ids too (derived from the key); the seals drop both.
    assert_eq!(verified.duplicates.seqs, 0, "{}", verified.summary());
    lake_has_no_temporaries(&data.join("lake"));
}

fn lake_has_no_temporaries(lake: &Path) {
    let left: Vec<_> = spate_test_support::lake::walk(lake)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
