//! Where the reference table comes from, and how a new version is noticed.
//!
//! - A local file: its modification time is the version; a check reads the
//!   file only when the time differs from the version in force.
//! - An S3 object (`s3://bucket/key`): its ETag is the version; a check is a
//!   GetObject with `If-None-Match: <ETag in force>`, which S3 answers with 304
//!   (no body) while the object is unchanged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::error::EnrichError;

/// What one check of the source found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// The version in force is still current.
    Unchanged,
    /// Another version, with its text.
    Changed {
        /// ETag or modification time.
        version: String,
        /// When it was last modified (Unix ms), if known.
        modified_ms: Option<i64>,
        /// The table text.
        text: String,
    },
    /// The source could not be read.
    Unreachable(String),
}

/// A table's location.
pub enum TableSource {
    /// A local file.
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The client that reads it.
        client: aws_sdk_s3::Client,
    },
}

impl fmt::Display for TableSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableSource::File(path) => write!(f, "{}", path.display()),
            TableSource::S3 { bucket, key, .. } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// The bucket and key of `s3://bucket/key`.
///
/// ```
/// use spate_operators::enrich::source::parse_s3_url;
/// assert_eq!(parse_s3_url("s3://ref/hosts.csv"), Ok(("ref", "hosts.csv")));
/// assert!(parse_s3_url("s3://ref/").is_err());
/// ```
pub fn parse_s3_url(url: &str) -> Result<(&str, &str), String> {
    url.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .ok_or_else(|| format!("{url:?} is not s3://BUCKET/KEY"))
}

impl TableSource {
    /// The source `path` names: `s3://bucket/key` (read with `s3`) or a file.
    pub fn new(path: &Path, s3: Option<aws_sdk_s3::Client>) -> Result<Self, EnrichError> {
        let text = path.to_string_lossy();
        if !text.starts_with("s3://") {
            return Ok(TableSource::File(path.to_path_buf()));
        }
        let location = |reason: String| EnrichError::Location {
            path: text.to_string(),
            reason,
        };
        let (bucket, key) = parse_s3_url(&text).map_err(location)?;
        let client = s3.ok_or_else(|| location("no S3 client (AWS is not set up)".into()))?;
        Ok(TableSource::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            client,
        })
    }

    /// Checks for a version other than `current`.
    pub async fn poll(&self, current: Option<&str>) -> Poll {
        match self {
            TableSource::File(_) => self.poll_file(current),
            TableSource::S3 {
                bucket,
                key,
                client,
            } => poll_s3(client, bucket, key, current).await,
        }
    }

    /// [`TableSource::poll`] of a local file (blocking; the file is small).
    pub fn poll_file(&self, current: Option<&str>) -> Poll {
        let TableSource::File(path) = self else {
            return Poll::Unreachable("not a local file".into());
        };
        let modified = match std::fs::metadata(path).and_then(|m| m.modified()) {
            Ok(modified) => modified,
            Err(e) => return Poll::Unreachable(e.to_string()),
        };
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let version = since_epoch.as_nanos().to_string();
        if current == Some(version.as_str()) {
            return Poll::Unchanged;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Poll::Changed {
                version,
                modified_ms: i64::try_from(since_epoch.as_millis()).ok(),
                text,
            },
            Err(e) => Poll::Unreachable(e.to_string()),
        }
    }
}

/// A conditional GET of the object: 304 is [`Poll::Unchanged`].
async fn poll_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    current: Option<&str>,
) -> Poll {
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_none_match(current.map(str::to_owned))
        .send()
        .await;
    let object = match response {
        Ok(object) => object,
        Err(error) => {
            if error.raw_response().map(|r| r.status().as_u16()) == Some(304) {
                return Poll::Unchanged;
            }
            return Poll::Unreachable(aws_sdk_s3::error::DisplayErrorContext(&error).to_string());
        }
    };
    let version = object.e_tag().unwrap_or_default().to_owned();
    // A store that ignores If-None-Match sends the same version again.
    if current == Some(version.as_str()) {
        return Poll::Unchanged;
    }
    let modified_ms = object.last_modified().and_then(|t| t.to_millis().ok());
    let bytes = match object.body.collect().await {
        Ok(body) => body.into_bytes(),
        Err(error) => return Poll::Unreachable(error.to_string()),
    };
    Poll::Changed {
        version,
        modified_ms,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}
