//! A `spate run` process for tests: started on a free port, stopped with
//! SIGTERM, its stderr kept for assertions.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `--data-dir DATA --config DATA.toml`: the data dir and the config file of
/// a service [`Service::start`] ran, for the commands that read them.
pub fn data_and_config_args(data_dir: &Path) -> [std::ffi::OsString; 4] {
    [
        "--data-dir".into(),
        data_dir.into(),
        "--config".into(),
        data_dir.with_extension("toml").into(),
    ]
}

/// A running `spate run`.
pub struct Service {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data dir.
    pub data_dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    /// The threads copying stderr and stdout into `stderr`; they end when
    /// the process closes its pipes.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Starts `spate run --listen 127.0.0.1:0` with `config` (TOML) and waits
    /// until it prints the address it listens on. `spate`: the binary
    /// (`env!("CARGO_BIN_EXE_spate")` in the test file; a library cannot
    /// find it).
    pub fn start(spate: impl AsRef<Path>, data_dir: &Path, config: &str) -> Service {
        Service::start_on(spate, data_dir, config, "127.0.0.1:0")
    }

    /// [`Service::start`] on `listen` (to restart on the same address).
    pub fn start_on(
        spate: impl AsRef<Path>,
        data_dir: &Path,
        config: &str,
        listen: &str,
    ) -> Service {
        std::fs::create_dir_all(data_dir).unwrap();
        let config_path = data_dir.with_extension("toml");
        std::fs::write(&config_path, config).unwrap();
        let mut command = Command::new(spate.as_ref());
        command
            .arg("run")
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(&config_path)
            .env("SPATE_LOG", "warn");
        Service::spawn(command, data_dir)
    }

    /// Starts `command`, a `spate run` the caller set up (arguments and
    /// environment), and waits until it prints the address it listens on.
    pub fn spawn(mut command: Command, data_dir: &Path) -> Service {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let log = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = addr_tx.send(addr);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        // Stdout (alert lines) is kept too.
        let out = BufReader::new(child.stdout.take().unwrap());
        let log = stderr.clone();
        let out_reader = std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str("stdout: ");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "spate run did not start: {}",
                    stderr.lock().unwrap().as_str()
                );
            }
        };
        Service {
            child: Some(child),
            url: format!("http://{addr}"),
            data_dir: data_dir.to_path_buf(),
            stderr,
            readers: vec![err_reader, out_reader],
        }
    }

    /// The process id (for `/proc/PID/...`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything printed so far (stderr, and stdout lines prefixed `stdout: `).
    pub fn output(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills the process with SIGKILL (no drain, no shutdown of anything).
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit (at most 60 s).
    pub fn stop(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("spate run did not exit after SIGTERM: {}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader threads take the last lines, up to the pipes' end.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        (status, self.output())
    }

    /// `POST /v1/query` with `body` (no token), which must answer 200; the
    /// response.
    pub fn query(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, text) = post(
            &self.url,
            "/v1/query",
            Some("application/json"),
            body.to_string(),
            None,
        );
        assert_eq!(status, 200, "{body}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// `POST /v1/logs` with `ndjson` (no token), which must be accepted.
    pub fn post_logs(&self, ndjson: &str) {
        self.push(ndjson, None);
    }

    /// `POST /v1/logs` with `body` (and `token`), which must answer 200.
    pub fn push(&self, body: &str, token: Option<&str>) {
        let (status, text) = post(
            &self.url,
            "/v1/logs",
            Some("application/x-ndjson"),
            body.to_owned(),
            token,
        );
        assert_eq!(status, 200, "{text}");
    }

    /// Waits up to `secs` seconds until `/metrics` shows `name` at `at_least`
    /// or more; its last value.
    pub fn wait_metric(&self, name: &str, at_least: f64, secs: u64) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.metric(name);
            if value.is_some_and(|v| v >= at_least) || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        plain_http::blocking_get_text(&format!("{}/metrics", self.url))
            .unwrap_or_else(|| panic!("GET /metrics failed: {}", self.output()))
    }

    /// Fetches `/metrics` and returns the value of the first sample whose line
    /// starts with `name` (labels included in `name` if given).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = plain_http::blocking_get_text(&format!("{}/metrics", self.url))?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Minimal blocking GET without pulling reqwest's blocking feature.
mod plain_http {
    use std::io::{Read, Write};

    pub fn blocking_get_text(url: &str) -> Option<String> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
        let mut stream = std::net::TcpStream::connect(host).ok()?;
        write!(
            stream,
            "GET /{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
            path.trim_start_matches('/')
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let body = response.split_once("\r\n\r\n")?.1;
        Some(body.to_string())
    }
}

/// POSTs `body` (of `content_type`, when given) to `url` + `path`, with
/// `token` as the bearer when given; the status and the response text.
pub fn post(
    url: &str,
    path: &str,
    content_type: Option<&str>,
    body: String,
    token: Option<&str>,
) -> (reqwest::StatusCode, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!("{url}{path}"))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    })
}
