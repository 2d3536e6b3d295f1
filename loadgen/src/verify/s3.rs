//! `loadgen verify --lake s3://bucket/prefix`: the lake on S3.
//!
//! Spate's S3 lake puts the `logs` table under `<prefix>logs/` (`[lake.s3]`); every object
//! there whose key ends in `.parquet` is read whole into memory, one at a time, and scanned
//! as a local file would be, with the object's LastModified as the time it became durable.
//! Credentials, region and endpoint come from the standard AWS chain (`AWS_ENDPOINT_URL` for
//! an emulator).

use std::path::PathBuf;

use spate_operators::aws::{AwsClients, AwsConfig};

use super::{Tally, VerifyError, VerifyReport, VerifyRequest, scan_parquet};

/// A lake on S3: the bucket and key prefix of `[lake.s3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Lake {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, empty or ending in `/`.
    pub prefix: String,
}

impl S3Lake {
    /// Parses `s3://bucket[/prefix]`; a `/` is added to a prefix without one, as Spate does.
    ///
    /// ```
    /// use spate_loadgen::verify::S3Lake;
    /// let lake = S3Lake::parse("s3://logs-bucket/spate").unwrap();
    /// assert_eq!((lake.bucket.as_str(), lake.prefix.as_str()), ("logs-bucket", "spate/"));
    /// assert_eq!(lake.logs_prefix(), "spate/logs/");
    /// assert!(S3Lake::parse("logs-bucket/spate").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .trim()
            .strip_prefix("s3://")
            .ok_or_else(|| format!("invalid lake {url:?}: expected s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("invalid lake {url:?}: no bucket"));
        }
        let prefix = match prefix.trim_start_matches('/') {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        Ok(S3Lake {
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// Where the `logs` table's objects are.
    pub fn logs_prefix(&self) -> String {
        format!("{}logs/", self.prefix)
    }
}

/// Whether a key under the logs prefix is a finished Parquet file of the lake.
fn is_lake_file(key: &str) -> bool {
    key.ends_with(".parquet") && !key.split('/').any(|part| part.starts_with('.'))
}

/// Checks one run against the lake in `lake` (the request's other fields as for a local
/// lake), with clients of the standard AWS chain.
pub async fn verify_s3(
    lake: &S3Lake,
    request: &VerifyRequest,
) -> Result<VerifyReport, VerifyError> {
    let s3 = AwsClients::load(&AwsConfig::default()).await.s3();
    let prefix = lake.logs_prefix();
    let s3_error = |key: &str, error: &dyn std::fmt::Display| VerifyError::S3 {
        bucket: lake.bucket.clone(),
        key: key.to_owned(),
        reason: error.to_string(),
    };
    let mut objects = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(&lake.bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| s3_error(&prefix, &aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        for object in page.contents() {
            let Some(key) = object.key().filter(|k| is_lake_file(k)) else {
                continue;
            };
            let modified_ms = object
                .last_modified()
                .and_then(|t| u64::try_from(t.to_millis().ok()?).ok());
            objects.push((key.to_owned(), modified_ms));
        }
    }
    objects.sort();
    let mut tally = Tally::new();
    for (key, modified_ms) in &objects {
        let object = s3
            .get_object()
            .bucket(&lake.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(key, &aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| s3_error(key, &e))?
            .into_bytes();
        let name = PathBuf::from(format!("s3://{}/{key}", lake.bucket));
        scan_parquet(body, &name, *modified_ms, &request.run_id, &mut tally)?;
    }
    Ok(tally.into_report(
        &request.run_id,
        objects.len() as u64,
        request.expect,
        request.acknowledged.as_ref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_urls_parse_like_the_lake_config() {
        let lake = S3Lake::parse("s3://b").unwrap();
        assert_eq!((lake.bucket.as_str(), lake.prefix.as_str()), ("b", ""));
        assert_eq!(lake.logs_prefix(), "logs/");
        assert_eq!(S3Lake::parse("s3://b/").unwrap().prefix, "");
        assert_eq!(S3Lake::parse("s3://b/a/b/").unwrap().prefix, "a/b/");
        assert!(S3Lake::parse("s3:///x").is_err());
        assert!(S3Lake::parse("/data").is_err());
    }

    #[test]
    fn only_finished_parquet_objects_are_read() {
        assert!(is_lake_file(
            "p/logs/dt=2026-12-05/hour=10/service=pay/a.parquet"
        ));
        assert!(!is_lake_file("p/logs/dt=2026-12-05/.a.parquet"));
        assert!(!is_lake_file("p/logs/dt=2026-12-05/a.parquet.tmp"));
    }
}
