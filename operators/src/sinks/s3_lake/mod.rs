//! The S3 commit target of the lake writer.
//!
//! The lake writer ([`crate::sinks::lake`]) stages rows locally and seals each
//! partition into a Parquet file; with [`LakeTarget::S3`] it then registers
//! the partition in Glue ([`glue`], if configured), uploads the file to
//! `s3://<bucket>/<prefix>logs/dt=…/hour=…/service=…/<name>`, removes the
//! local copy, and only then delivers the acks of the rows in it.
//! Files under [`S3LakeConfig::multipart_threshold`] go up with one
//! PutObject; larger ones as a multipart upload in parts of
//! [`S3LakeConfig::part_size`] (S3's minimum part is 5 MiB). Each request is
//! retried with exponential backoff; a multipart upload that fails is aborted.
//! An object appears whole or not at all, so readers never see partial files.
//! Dead-letter files take the same path, to `<prefix>deadletter/dt=…/<name>.ndjson`
//! (see [`crate::sinks::lake::dead_letters::commit_all`]).
//!
//! A commit that fails after some files were uploaded fails every held batch;
//! their redelivery writes the uploaded rows again, with the same `event_id`s
//! (at-least-once).
//!
//! [`LakeTarget::S3`]: crate::sinks::lake::LakeTarget::S3
//!
//! # Backpressure
//!
//! Uploads run inside the lake writer's commit, so while S3 is slow the writer
//! takes no new batches and the pipeline waits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde::{Deserialize, Serialize};
use spate_engine::ErrorClass;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use self::glue::{GlueCatalog, GlueConfig};
use self::sdk_retry::retry_sdk_request;
use crate::component::ConfigError;
use crate::component::units::Seconds;

pub mod glue;
mod sdk_retry;

const MIB: u64 = 1024 * 1024;
/// S3's smallest allowed part (all but the last).
const MIN_PART_BYTES: u64 = 5 * MIB;

/// `[lake.s3]`: the lake in an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3LakeConfig {
    /// Bucket of the lake.
    pub bucket: String,
    /// Key prefix of the lake (the `logs` table goes under `<prefix>logs/`);
    /// a `/` is added when missing.
    #[serde(default)]
    pub prefix: String,
    /// Files smaller than this (MiB) are uploaded with one PutObject; larger
    /// ones with a multipart upload.
    #[serde(
        rename = "multipart_threshold",
        alias = "multipart_threshold_mib",
        with = "crate::component::units::with::mib",
        default = "default_multipart_threshold_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub multipart_threshold_mib: u64,
    /// Part size of multipart uploads (MiB, at least 5).
    #[serde(
        rename = "part_size",
        alias = "part_size_mib",
        with = "crate::component::units::with::mib",
        default = "default_part_size_mib"
    )]
    #[schemars(with = "crate::component::units::MiB")]
    pub part_size_mib: u64,
    /// Attempts per request before the commit fails.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Sources are acknowledged only once their rows are sealed and uploaded
    /// (a container's disk is not durable), so a partition is sealed at the
    /// latest this long after its oldest staged row (instead of
    /// `lake.max_file_age`, when shorter): the longest a source waits for its
    /// acknowledgement. Bare numbers are seconds.
    #[serde(
        rename = "max_file_age",
        alias = "max_age",
        default = "default_s3_max_age"
    )]
    pub max_age: Seconds,
    /// Register each partition in this Glue table as files are sealed into
    /// it (`[lake.s3.glue] database = "..."`), for Athena without partition
    /// projection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue: Option<GlueConfig>,
}

fn default_multipart_threshold_mib() -> u64 {
    8
}
fn default_part_size_mib() -> u64 {
    8
}
fn default_max_attempts() -> u32 {
    5
}
fn default_s3_max_age() -> Seconds {
    Seconds::units(300)
}

impl S3LakeConfig {
    /// The defaults for `bucket`.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3LakeConfig {
            bucket: bucket.into(),
            prefix: String::new(),
            multipart_threshold_mib: default_multipart_threshold_mib(),
            part_size_mib: default_part_size_mib(),
            max_attempts: default_max_attempts(),
            max_age: default_s3_max_age(),
            glue: None,
        }
    }
}

impl S3LakeConfig {
    /// Checks the settings without I/O (S3's 5 MiB part minimum included).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bucket.is_empty() {
            return Err(ConfigError::new("bucket", "must not be empty"));
        }
        if self.part_size_mib * MIB < MIN_PART_BYTES {
            return Err(ConfigError::new("part_size", "must be at least 5"));
        }
        if self.multipart_threshold_mib == 0 {
            return Err(ConfigError::new(
                "multipart_threshold",
                "must be at least 1",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::new("max_attempts", "must be at least 1"));
        }
        if self.max_age.is_zero() {
            return Err(ConfigError::new("max_file_age", "must be more than 0s"));
        }
        if let Some(glue) = &self.glue {
            glue.validate().map_err(|e| e.within("glue"))?;
        }
        Ok(())
    }
}

impl Default for S3LakeConfig {
    /// The defaults with an empty bucket (which [`S3Target::new`] rejects).
    fn default() -> Self {
        S3LakeConfig::new("")
    }
}

/// Failures of an upload.
#[derive(Debug, thiserror::Error)]
pub enum S3UploadError {
    /// The configuration is unusable.
    #[error("s3 lake config: {0}")]
    Config(String),
    /// The committed local file cannot be read or removed.
    #[error("cannot {op} {path}: {source}")]
    Local {
        /// What was being done.
        op: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// S3 refused or did not answer, after every attempt.
    #[error("s3 {op} of s3://{bucket}/{key} failed after {attempts} attempts: {message}")]
    Request {
        /// The S3 operation.
        op: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
}

impl S3UploadError {
    /// Whose fault it is: a bad config is bad input; S3 and the disk are
    /// external.
    pub fn class(&self) -> ErrorClass {
        match self {
            S3UploadError::Config(_) => ErrorClass::BadInput,
            S3UploadError::Local { .. } | S3UploadError::Request { .. } => ErrorClass::External,
        }
    }
}

/// An object written to S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedObject {
    /// Its key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// Parts it was uploaded in (1 for a PutObject).
    pub parts: usize,
}

/// Where committed lake files go: a bucket and prefix, with an S3 client.
#[derive(Debug, Clone)]
pub struct S3Target {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    multipart_threshold: u64,
    part_size: u64,
    max_attempts: u32,
    catalog: Option<Arc<GlueCatalog>>,
}

impl S3Target {
    /// A target from settings checked by [`S3LakeConfig::validate`]; see
    /// [`crate::aws::AwsConfig::s3_client`].
    pub fn new(client: aws_sdk_s3::Client, config: &S3LakeConfig) -> Result<Self, S3UploadError> {
        config
            .validate()
            .map_err(|e| S3UploadError::Config(e.to_string()))?;
        Ok(S3Target {
            client,
            bucket: config.bucket.clone(),
            prefix: normalize_prefix(&config.prefix),
            multipart_threshold: config.multipart_threshold_mib * MIB,
            part_size: config.part_size_mib * MIB,
            max_attempts: config.max_attempts,
            catalog: None,
        })
    }

    /// Registers the partitions of sealed files in `catalog` before their
    /// upload.
    pub fn with_catalog(mut self, catalog: Arc<GlueCatalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// The Glue catalog partitions are registered in, if any.
    pub fn catalog(&self) -> Option<&Arc<GlueCatalog>> {
        self.catalog.as_ref()
    }

    /// `s3://bucket/<prefix>logs/`: where the `logs` table is.
    pub fn table_location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key_for("logs/"))
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of a file at `relative` (`/`-separated) inside the lake.
    ///
    /// ```
    /// # use spate_operators::sinks::s3_lake::object_key;
    /// assert_eq!(object_key("archive/", "logs/dt=2026-01-01/x.parquet"), "archive/logs/dt=2026-01-01/x.parquet");
    /// ```
    pub fn key_for(&self, relative: &str) -> String {
        object_key(&self.prefix, relative)
    }

    /// Uploads the file at `path` as `key`, then removes the local file.
    pub async fn upload_and_remove(
        &self,
        path: &Path,
        key: &str,
    ) -> Result<UploadedObject, S3UploadError> {
        let local = |op, source| S3UploadError::Local {
            op,
            path: path.to_path_buf(),
            source,
        };
        let started = tokio::time::Instant::now();
        let bytes = tokio::fs::metadata(path)
            .await
            .map_err(|e| local("stat", e))?
            .len();
        let uploaded = if bytes < self.multipart_threshold {
            let body = tokio::fs::read(path).await.map_err(|e| local("read", e))?;
            self.put(key, body).await?;
            UploadedObject {
                key: key.to_string(),
                bytes,
                parts: 1,
            }
        } else {
            self.multipart(path, key, bytes).await?
        };
        tokio::fs::remove_file(path)
            .await
            .map_err(|e| local("remove", e))?;
        metrics::counter!("spate_s3_lake_objects_written_total").increment(1);
        metrics::counter!("spate_s3_lake_bytes_written_total").increment(bytes);
        metrics::histogram!("spate_s3_lake_upload_seconds").record(started.elapsed().as_secs_f64());
        Ok(uploaded)
    }

    /// Every object under `prefix`: key and size.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3UploadError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .retry("list_objects_v2", prefix, || {
                    self.client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    out.push((key.to_string(), object.size().unwrap_or(0).max(0) as u64));
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The body of the object `key`.
    pub async fn get(&self, key: &str) -> Result<bytes::Bytes, S3UploadError> {
        let object = self
            .retry("get_object", key, || {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
            })
            .await?;
        object
            .body
            .collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| self.request_error("get_object", key, 1, e.to_string()))
    }

    /// Deletes the objects `keys` (at most 1,000 per request).
    pub async fn delete(&self, keys: &[String]) -> Result<(), S3UploadError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> = chunk
                .iter()
                .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
                .collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| S3UploadError::Config(e.to_string()))?;
            let out = self
                .retry("delete_objects", &chunk[0], || {
                    self.client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete.clone())
                        .send()
                })
                .await?;
            if let Some(error) = out.errors().first() {
                return Err(self.request_error(
                    "delete_objects",
                    error.key().unwrap_or_default(),
                    1,
                    error.message().unwrap_or("delete refused").to_string(),
                ));
            }
        }
        Ok(())
    }

    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), S3UploadError> {
        let body = bytes::Bytes::from(body);
        self.retry("put_object", key, || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type(key))
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn multipart(
        &self,
        path: &Path,
        key: &str,
        bytes: u64,
    ) -> Result<UploadedObject, S3UploadError> {
        let created = self
            .retry("create_multipart_upload", key, || {
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type(key))
                    .send()
            })
            .await?;
        let Some(upload_id) = created.upload_id else {
            return Err(self.request_error(
                "create_multipart_upload",
                key,
                1,
                "no upload id".into(),
            ));
        };
        match self.upload_parts(path, key, &upload_id, bytes).await {
            Ok(parts) => Ok(UploadedObject {
                key: key.to_string(),
                bytes,
                parts,
            }),
            Err(e) => {
                // Best effort: an upload left open is also removed by a bucket
                // lifecycle rule for incomplete multipart uploads.
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                if let Err(abort) = aborted {
                    let abort = aws_sdk_s3::error::DisplayErrorContext(abort);
                    tracing::warn!(bucket = %self.bucket, %key, error = %abort, "cannot abort multipart upload");
                }
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        path: &Path,
        key: &str,
        upload_id: &str,
        bytes: u64,
    ) -> Result<usize, S3UploadError> {
        let local = |op, source| S3UploadError::Local {
            op,
            path: path.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| local("open", e))?;
        let mut completed = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < bytes {
            let len = self.part_size.min(bytes - offset) as usize;
            let mut buf = vec![0u8; len];
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| local("seek", e))?;
            file.read_exact(&mut buf)
                .await
                .map_err(|e| local("read", e))?;
            let body = bytes::Bytes::from(buf);
            let part = self
                .retry("upload_part", key, || {
                    self.client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(body.clone()))
                        .send()
                })
                .await?;
            completed.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag)
                    .build(),
            );
            offset += len as u64;
            number += 1;
        }
        let parts = completed.len();
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(completed))
            .build();
        self.retry("complete_multipart_upload", key, || {
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .multipart_upload(upload.clone())
                .send()
        })
        .await?;
        Ok(parts)
    }

    /// Runs `request` until it succeeds or `max_attempts` are used, waiting
    /// 200 ms, 400 ms, ... (at most 5 s) between attempts.
    async fn retry<T, E, F, Fut>(
        &self,
        op: &'static str,
        key: &str,
        request: F,
    ) -> Result<T, S3UploadError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        retry_sdk_request(self.max_attempts, retry_delay, request, |attempt, message| {
            metrics::counter!("spate_s3_lake_request_errors_total", "op" => op).increment(1);
            if attempt < self.max_attempts {
                tracing::warn!(bucket = %self.bucket, %key, op, attempt, error = %message, "s3 request failed; retrying");
            }
        })
        .await
        .map_err(|(attempts, message)| self.request_error(op, key, attempts, message))
    }

    fn request_error(
        &self,
        op: &'static str,
        key: &str,
        attempts: u32,
        message: String,
    ) -> S3UploadError {
        S3UploadError::Request {
            op,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            attempts,
            message,
        }
    }
}

/// Wait before attempt `attempt + 1`: 200 ms doubling, at most 5 s.
fn retry_delay(attempt: u32) -> Duration {
    let ms = 200u64.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(5_000))
}

/// The object's content type, by its extension: NDJSON for dead letters,
/// Parquet otherwise.
fn content_type(key: &str) -> &'static str {
    if key.ends_with(".ndjson") {
        "application/x-ndjson"
    } else {
        "application/vnd.apache.parquet"
    }
}

/// `prefix` with a trailing `/` (empty stays empty, leading `/` removed).
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

/// The key of `relative` under `prefix` (normalized as in [`S3LakeConfig::prefix`]).
pub fn object_key(prefix: &str, relative: &str) -> String {
    format!(
        "{}{}",
        normalize_prefix(prefix),
        relative.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    #[test]
    fn keys_join_prefix_and_relative_path() {
        assert_eq!(object_key("", "logs/a.parquet"), "logs/a.parquet");
        assert_eq!(object_key("/lake", "logs/a.parquet"), "lake/logs/a.parquet");
        assert_eq!(object_key("a/b/", "/logs/a.parquet"), "a/b/logs/a.parquet");
    }

    #[test]
    fn config_defaults_match_serde_defaults() {
        let parsed: S3LakeConfig =
            serde_json::from_value(serde_json::json!({ "bucket": "b" })).unwrap();
        assert_eq!(parsed, S3LakeConfig::new("b"));
        assert!(
            serde_json::from_value::<S3LakeConfig>(
                serde_json::json!({"bucket": "b", "part_mib": 5})
            )
            .is_err()
        );
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(matches!(
            S3Target::new(client(), &S3LakeConfig::default()),
            Err(S3UploadError::Config(_))
        ));
        let small_parts = S3LakeConfig {
            part_size_mib: 4,
            ..S3LakeConfig::new("b")
        };
        let err = S3Target::new(client(), &small_parts).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadInput);
        let target = S3Target::new(
            client(),
            &S3LakeConfig {
                prefix: "p".into(),
                ..S3LakeConfig::new("b")
            },
        )
        .unwrap();
        assert_eq!(target.key_for("logs/x.parquet"), "p/logs/x.parquet");
        assert_eq!(target.bucket(), "b");
    }

    #[test]
    fn dead_letters_are_ndjson_and_lake_files_parquet() {
        assert_eq!(
            content_type("deadletter/dt=2026-01-01/part-1.ndjson"),
            "application/x-ndjson"
        );
        assert_eq!(
            content_type("logs/dt=2026-01-01/part-1.parquet"),
            "application/vnd.apache.parquet"
        );
    }

    #[test]
    fn retry_delays_grow_and_cap() {
        assert_eq!(retry_delay(1), Duration::from_millis(200));
        assert_eq!(retry_delay(3), Duration::from_millis(800));
        assert_eq!(retry_delay(20), Duration::from_millis(5_000));
    }
}
