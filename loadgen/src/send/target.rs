//! Where `loadgen send` delivers batches: Spate's HTTP ingest, a file, or stdout.
//!
//! A [`Target`] takes one NDJSON body at a time and answers whether it was accepted. The
//! sender owns pacing, retries and counting; a target only translates the answer of the
//! thing behind it into a [`SendError`] with a retry hint. The queue and stream targets
//! (SQS, Kinesis) in `aws_target` implement the same trait.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;

use super::packing::BodyCompression;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// Spate's HTTP ingest address when `--target` is not given.
pub const DEFAULT_TARGET: &str = "http://127.0.0.1:8470";

/// The ingest path appended to an `http://HOST:PORT` target without a path.
pub const INGEST_PATH: &str = "/v1/logs";

/// Longest `Retry-After` honoured; longer answers are cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What a target waits for when a rejection names no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The future of one delivery.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A place that accepts NDJSON bodies.
pub trait Target: Send + Sync {
    /// The target as the report names it (`http://127.0.0.1:8470/v1/logs`, `file:out.ndjson`).
    fn describe(&self) -> String;

    /// Turns a batch body into what [`Target::send`] takes, once per batch (retries reuse
    /// it): e.g. gzip for an HTTP target asked to compress. The default passes it through.
    fn prepare(&self, body: Bytes) -> Result<Bytes, SendError> {
        Ok(body)
    }

    /// Delivers one prepared body; `Ok` means the target accepted it (for Spate: durably).
    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a>;
}

/// Why a delivery did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The target is saturated (HTTP 429 or 503): try the same body again after the wait.
    #[error("target saturated (status {status}), retry after {retry_after:?}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The target's `Retry-After`, or [`DEFAULT_RETRY_AFTER`], at most [`MAX_RETRY_AFTER`].
        retry_after: Duration,
    },
    /// The target refused the body itself (4xx other than 429): sending it again gives the
    /// same answer.
    #[error("target refused the batch with status {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        detail: String,
    },
    /// The target failed (5xx other than 503).
    #[error("target failed with status {status}: {detail}")]
    Failed {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        detail: String,
    },
    /// The target could not be reached or the connection broke.
    #[error("cannot reach target: {0}")]
    Transport(String),
    /// Writing to a file or stdout failed.
    #[error("cannot write to {target}: {source}")]
    Io {
        /// The target's description.
        target: String,
        /// The error.
        source: std::io::Error,
    },
}

impl SendError {
    /// Whether sending the same body again may succeed (bad input is never retried).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SendError::Refused { .. })
    }
}

/// Options of the HTTP target.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Compress bodies (`Content-Encoding: gzip` or `zstd`).
    pub compression: BodyCompression,
    /// Per-request timeout; `None` waits as long as the server takes.
    pub timeout: Option<Duration>,
    /// Idle connections kept per host (the pool), normally the sender concurrency.
    pub pool_size: usize,
}

/// Why `--target` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetSpecError {
    /// Not one of the known forms.
    #[error(
        "unknown target {0:?}: expected http://HOST:PORT[/PATH], https://..., file:PATH or stdout"
    )]
    Unknown(String),
    /// A queue or stream given in URL form instead of with its options.
    #[error(
        "target {0:?}: name queues with `--target sqs --queue-url URL` and streams with `--target kinesis --stream NAME`"
    )]
    AwsForm(String),
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Client(String),
    /// The output file cannot be opened.
    #[error("cannot open {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Builds the target named by `spec`: `http://HOST:PORT` (POST to [`INGEST_PATH`]) or a URL
/// with its own path, `file:PATH` (append NDJSON), or `stdout`.
pub async fn open_target(
    spec: &str,
    http: HttpOptions,
) -> Result<Box<dyn Target>, TargetSpecError> {
    let spec = spec.trim();
    if spec == "stdout" || spec == "-" {
        return Ok(Box::new(StdoutTarget::default()));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        return Ok(Box::new(FileTarget::open(PathBuf::from(path)).await?));
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(Box::new(HttpTarget::new(spec, http)?));
    }
    if ["sqs://", "kinesis://", "sqs:", "kinesis:"]
        .iter()
        .any(|p| spec.starts_with(p))
    {
        return Err(TargetSpecError::AwsForm(spec.to_owned()));
    }
    Err(TargetSpecError::Unknown(spec.to_owned()))
}

/// POSTs NDJSON to Spate's `/v1/logs` over a pooled HTTP client.
///
/// Each batch carries an `Idempotency-Key` derived from its bytes (with keys
/// random to this process): a retry of a batch whose answer was lost sends
/// the same key, and Spate answers it without appending the batch again, or,
/// after a restart of Spate, appends it with the same event ids (derived
/// from the key), which the lake drops when it seals.
pub struct HttpTarget {
    client: reqwest::Client,
    url: String,
    options: HttpOptions,
    key_hashers: [std::hash::RandomState; 2],
}

/// The `Idempotency-Key` of a batch: 128 bits of hashes of its bytes.
fn idempotency_key(hashers: &[std::hash::RandomState; 2], body: &[u8]) -> String {
    use std::hash::BuildHasher;
    format!(
        "{:016x}{:016x}",
        hashers[0].hash_one(body),
        hashers[1].hash_one(body)
    )
}

impl HttpTarget {
    /// A target for `base` (`http://HOST:PORT` gets [`INGEST_PATH`]; a URL with a path is used
    /// as is).
    pub fn new(base: &str, options: HttpOptions) -> Result<Self, TargetSpecError> {
        let url = match base.split_once("://") {
            Some((_, rest)) if rest.trim_end_matches('/').contains('/') => base.to_owned(),
            _ => format!("{}{INGEST_PATH}", base.trim_end_matches('/')),
        };
        let mut builder = reqwest::Client::builder().pool_max_idle_per_host(options.pool_size);
        if let Some(timeout) = options.timeout {
            builder = builder.timeout(timeout);
        }
        let client = builder
            .build()
            .map_err(|e| TargetSpecError::Client(e.to_string()))?;
        Ok(HttpTarget {
            client,
            url,
            options,
            key_hashers: Default::default(),
        })
    }
}

/// The start of a response body, for error messages.
fn detail(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Spate and falls back).
pub fn parse_retry_after(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

impl Target for HttpTarget {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn prepare(&self, body: Bytes) -> Result<Bytes, SendError> {
        let (name, packed) = match self.options.compression {
            BodyCompression::None => return Ok(body),
            BodyCompression::Gzip => {
                let gzip = |body: &[u8]| {
                    let mut encoder =
                        GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
                    encoder.write_all(body)?;
                    encoder.finish()
                };
                ("gzip", gzip(&body))
            }
            BodyCompression::Zstd => ("zstd", zstd::bulk::compress(&body, 3)),
        };
        packed.map(Bytes::from).map_err(|source| SendError::Io {
            target: name.to_owned(),
            source,
        })
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            let mut request = self
                .client
                .post(&self.url)
                .header(CONTENT_TYPE, "application/x-ndjson")
                .header("idempotency-key", idempotency_key(&self.key_hashers, body))
                .body(body.clone());
            match self.options.compression {
                BodyCompression::None => {}
                BodyCompression::Gzip => request = request.header(CONTENT_ENCODING, "gzip"),
                BodyCompression::Zstd => request = request.header(CONTENT_ENCODING, "zstd"),
            }
            if let Some(token) = &self.options.token {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let response = request
                .send()
                .await
                .map_err(|e| SendError::Transport(e.to_string()))?;
            let status = response.status();
            if status.is_success() {
                // Read the body so the connection goes back to the pool.
                response
                    .bytes()
                    .await
                    .map_err(|e| SendError::Transport(e.to_string()))?;
                return Ok(());
            }
            // 409: the same batch (a retry) is still being accepted.
            if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || status == StatusCode::CONFLICT
            {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = response.bytes().await;
                return Err(SendError::Rejected {
                    status: status.as_u16(),
                    retry_after: parse_retry_after(retry_after.as_deref()),
                });
            }
            let text = response.text().await.unwrap_or_default();
            let (status, detail) = (status.as_u16(), detail(&text));
            if (400..500).contains(&status) {
                Err(SendError::Refused { status, detail })
            } else {
                Err(SendError::Failed { status, detail })
            }
        })
    }
}

/// Appends bodies to a file.
pub struct FileTarget {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

impl FileTarget {
    /// Opens `path` for appending, creating it if needed.
    pub async fn open(path: PathBuf) -> Result<Self, TargetSpecError> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|source| TargetSpecError::File {
                path: path.clone(),
                source,
            })?;
        Ok(FileTarget {
            path,
            file: Mutex::new(file),
        })
    }
}

impl Target for FileTarget {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            let mut file = self.file.lock().await;
            let written = async {
                file.write_all(body).await?;
                file.flush().await
            };
            written.await.map_err(|source| SendError::Io {
                target: self.describe(),
                source,
            })
        })
    }
}

/// Writes bodies to standard output.
#[derive(Default)]
pub struct StdoutTarget {
    out: Mutex<()>,
}

impl Target for StdoutTarget {
    fn describe(&self) -> String {
        "stdout".to_owned()
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            let _turn = self.out.lock().await;
            let mut out = tokio::io::stdout();
            let written = async {
                out.write_all(body).await?;
                out.flush().await
            };
            written.await.map_err(|source| SendError::Io {
                target: "stdout".to_owned(),
                source,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_its_idempotency_key_across_retries() {
        let hashers: [std::hash::RandomState; 2] = Default::default();
        let key = idempotency_key(&hashers, b"a\nb\n");
        assert_eq!(key, idempotency_key(&hashers, b"a\nb\n"));
        assert_eq!(key.len(), 32);
        assert_ne!(key, idempotency_key(&hashers, b"a\nc\n"));
    }

    #[test]
    fn retry_after_is_seconds_with_a_default_and_a_cap() {
        assert_eq!(parse_retry_after(Some("3")), Duration::from_secs(3));
        assert_eq!(parse_retry_after(Some(" 0 ")), Duration::ZERO);
        assert_eq!(parse_retry_after(None), DEFAULT_RETRY_AFTER);
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(parse_retry_after(Some("86400")), MAX_RETRY_AFTER);
    }

    #[test]
    fn only_refusals_are_final() {
        let refused = SendError::Refused {
            status: 400,
            detail: String::new(),
        };
        assert!(!refused.is_retryable());
        assert!(SendError::Transport("reset".into()).is_retryable());
        assert!(
            SendError::Failed {
                status: 500,
                detail: String::new()
            }
            .is_retryable()
        );
    }

    #[tokio::test]
    async fn targets_are_chosen_by_spec() {
        let http = |spec: &str| {
            HttpTarget::new(spec, HttpOptions::default())
                .unwrap()
                .describe()
        };
        assert_eq!(
            http("http://127.0.0.1:8470"),
            "http://127.0.0.1:8470/v1/logs"
        );
        assert_eq!(http("http://h:1/"), "http://h:1/v1/logs");
        assert_eq!(http("http://h:1/custom/in"), "http://h:1/custom/in");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let spec = format!("file:{}", path.display());
        let file = open_target(&spec, HttpOptions::default()).await.unwrap();
        assert_eq!(file.describe(), spec);
        file.send(&Bytes::from_static(b"{\"a\":1}\n"))
            .await
            .unwrap();
        file.send(&Bytes::from_static(b"{\"a\":2}\n"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        let stdout = open_target("stdout", HttpOptions::default()).await.unwrap();
        assert_eq!(stdout.describe(), "stdout");
        assert!(matches!(
            open_target("sqs://queue", HttpOptions::default()).await,
            Err(TargetSpecError::AwsForm(_))
        ));
        assert!(matches!(
            open_target("ftp://x", HttpOptions::default()).await,
            Err(TargetSpecError::Unknown(_))
        ));
    }

    #[test]
    fn gzip_is_applied_once_in_prepare() {
        let options = HttpOptions {
            compression: BodyCompression::Gzip,
            ..HttpOptions::default()
        };
        let target = HttpTarget::new("http://h:1", options).unwrap();
        let body = Bytes::from(vec![b'x'; 10_000]);
        let prepared = target.prepare(body.clone()).unwrap();
        assert!(prepared.starts_with(&[0x1f, 0x8b]));
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&prepared[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, body);
        let options = HttpOptions {
            compression: BodyCompression::Zstd,
            ..HttpOptions::default()
        };
        let target = HttpTarget::new("http://h:1", options).unwrap();
        let prepared = target.prepare(body.clone()).unwrap();
        assert_eq!(zstd::decode_all(&prepared[..]).unwrap(), body);
    }
}
