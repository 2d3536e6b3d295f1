//! The `logs` table: the Parquet lake as a DataFusion listing table with its
//! Hive partitions (`dt`, `hour`, `service`, all strings as in the paths).
//!
//! Filters on the partition columns prune directories before any file is
//! opened (equality on `dt`/`hour`/`service` even narrows the listing itself).
//! Only sealed files are read: names starting with `.` (a seal's in-progress
//! `.name.tmp` files, or any hidden file or directory) never match. Rows not
//! sealed yet are read from the staging area beside them ([`super::staged`]):
//! a local lake's own (`<lake>/staging`), or, for the service's queries over
//! its S3 lake, the staging directory of that service.
//!
//! Where the lake lives is a [`LakeLocation`]: a local directory, an S3
//! prefix ([`S3Url`], read through [`S3Store`]), or any other `object_store`
//! implementation under a URL.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::object_store::ObjectStore;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::prelude::SessionContext;
use spate_operators::sinks::lake::schema::logs_file_schema;

use datafusion::datasource::TableProvider;
use spate_operators::sinks::lake::staging::{Coverage, STAGING_DIR};

use super::s3_store::S3Store;
use super::staged::{LogsTable, StagingSource};

/// The partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 3] = ["dt", "hour", "service"];

/// The file's text columns that queries read as `Utf8View`: the ones with few
/// distinct values, which the lake writes with a dictionary
/// (`sinks::lake::part_file::writer_properties`). Read as `Utf8`, each value
/// was copied out of the dictionary and hashed as bytes by `GROUP BY`; as
/// views, `spate query` of the severities of one day of a 20 M-event W1 lake
/// took 0.13–0.14 s instead of 0.18–0.24 s (five runs each,
/// `docs/BENCHMARKS.md`). Long unique text (`message`, `attrs`, ids) stays
/// `Utf8`: read as views, `lower(message)` made the benchmark's grep 30 %
/// slower. `client_ip` also gets a dictionary but has many values; it was not
/// measured and stays `Utf8`.
const VIEW_COLUMNS: [&str; 5] = ["host", "source", "log_group", "log_stream", "severity"];

/// The columns of the lake's files as queries read them: [`logs_file_schema`]
/// with the [`VIEW_COLUMNS`] as `Utf8View`.
pub fn logs_scan_schema() -> SchemaRef {
    let fields: Vec<Field> = logs_file_schema()
        .fields()
        .iter()
        .map(|field| {
            let field = field.as_ref().clone();
            match VIEW_COLUMNS.contains(&field.name().as_str()) {
                true => field.with_data_type(DataType::Utf8View),
                false => field,
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Files of the table: visible `.parquet` files only.
const FILE_GLOB: &str = "[!.]*.parquet";

/// Where the lake is: the directory (or object prefix) that holds `logs/`.
#[derive(Clone)]
pub enum LakeLocation {
    /// A local directory (`<data-dir>/lake`, or `lake.path` of the config).
    Local(PathBuf),
    /// A prefix in an object store, e.g. `s3://bucket/prefix/`, with the store
    /// that serves it.
    ObjectStore {
        /// URL of the lake root; `logs/` is under it.
        url: String,
        /// The store for the URL's scheme and bucket.
        store: Arc<dyn ObjectStore>,
        /// The staging area of the process writing the lake, when the
        /// queries are that process's.
        staging: Option<StagingSource>,
    },
}

impl fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LakeLocation::Local(dir) => f.debug_tuple("Local").field(dir).finish(),
            LakeLocation::ObjectStore { url, staging, .. } => f
                .debug_struct("ObjectStore")
                .field("url", url)
                .field("staging", staging)
                .finish(),
        }
    }
}

impl LakeLocation {
    /// A local lake directory.
    pub fn local(dir: impl AsRef<Path>) -> Self {
        LakeLocation::Local(dir.as_ref().to_path_buf())
    }

    /// The directory of a local lake.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            LakeLocation::Local(dir) => Some(dir),
            LakeLocation::ObjectStore { .. } => None,
        }
    }

    /// The lake at `lake` in S3, read with `client` (see
    /// [`AwsConfig::s3_client`](spate_operators::aws::AwsConfig::s3_client)).
    pub fn s3(client: aws_sdk_s3::Client, lake: &S3Url) -> Self {
        LakeLocation::ObjectStore {
            url: lake.url(),
            store: Arc::new(S3Store::new(client, &lake.bucket)),
            staging: None,
        }
    }

    /// Reads the rows staged in `dir` beside the sealed files (a service
    /// querying its own S3 lake), skipping those sealed files of `coverage`
    /// cover.
    pub fn with_staging(self, dir: PathBuf, coverage: Coverage) -> Self {
        match self {
            LakeLocation::ObjectStore { url, store, .. } => LakeLocation::ObjectStore {
                url,
                store,
                staging: Some(StagingSource { dir, coverage }),
            },
            local => local,
        }
    }

    /// URL of the `logs` table directory, ending in `/`.
    fn table_url(&self) -> Result<ListingTableUrl> {
        let url = match self {
            LakeLocation::Local(dir) => {
                let dir = std::path::absolute(dir.join("logs"))?;
                let text = dir.to_string_lossy();
                ListingTableUrl::parse(format!("{}/", text.trim_end_matches('/')))?
            }
            LakeLocation::ObjectStore { url, .. } => {
                ListingTableUrl::parse(format!("{}/logs/", url.trim_end_matches('/')))?
            }
        };
        url.with_glob(FILE_GLOB)
    }

    /// Registers the table `logs` (and the object store, if any) in `ctx`.
    pub fn register(&self, ctx: &SessionContext) -> Result<()> {
        let url = self.table_url()?;
        if let LakeLocation::ObjectStore { store, .. } = self {
            ctx.register_object_store(url.get_url(), store.clone());
        }
        let partition_cols = PARTITION_COLUMNS
            .iter()
            .map(|name| (name.to_string(), DataType::Utf8))
            .collect();
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(logs_scan_schema());
        let sealed = Arc::new(ListingTable::try_new(config)?);
        let table: Arc<dyn TableProvider> = match self {
            LakeLocation::Local(dir) => Arc::new(LogsTable::new(
                sealed,
                StagingSource {
                    dir: dir.join(STAGING_DIR),
                    coverage: Coverage::AnyStager,
                },
                true,
            )),
            LakeLocation::ObjectStore {
                staging: Some(staging),
                ..
            } => Arc::new(LogsTable::new(sealed, staging.clone(), false)),
            LakeLocation::ObjectStore { staging: None, .. } => sealed,
        };
        ctx.register_table("logs", table)?;
        Ok(())
    }
}

/// Where a lake is in S3: `s3://bucket/prefix`, the prefix that holds `logs/`
/// (as `[lake.s3]` writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, without leading or trailing `/` (empty: the bucket's
    /// root).
    pub prefix: String,
}

impl S3Url {
    /// The lake under `prefix` in `bucket` (leading and trailing `/` of the
    /// prefix do not matter, as in `[lake.s3]`).
    pub fn new(bucket: &str, prefix: &str) -> Result<Self, String> {
        let valid_bucket = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid_bucket {
            return Err(format!("`{bucket}` is not an s3 bucket name"));
        }
        let prefix = prefix.trim_matches('/');
        ObjectPath::parse(prefix).map_err(|e| format!("s3 prefix `{prefix}`: {e}"))?;
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    ///
    /// ```text
    /// s3://logs-archive/spate/  → bucket logs-archive, prefix spate
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{text}` is not an s3:// url (s3://bucket/prefix)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        S3Url::new(bucket, prefix)
    }

    /// The URL DataFusion sees: key characters outside the URL-safe set are
    /// percent-encoded, so the object keys it derives are exactly the prefix.
    fn url(&self) -> String {
        let mut url = format!("s3://{}/", self.bucket);
        for byte in self.prefix.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~/=".contains(&byte) {
                url.push(byte as char);
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
        url
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Schema of the `logs` table as queries see it: the file columns, then the
/// partition columns.
pub fn logs_table_schema() -> SchemaRef {
    let mut fields: Vec<Field> = logs_scan_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.extend(
        PARTITION_COLUMNS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, false)),
    );
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_parse_into_bucket_and_prefix() {
        let url = S3Url::parse("s3://logs-archive/spate/").unwrap();
        assert_eq!(url.bucket, "logs-archive");
        assert_eq!(url.prefix, "spate");
        assert_eq!(S3Url::parse("s3://b").unwrap().prefix, "");
        assert_eq!(S3Url::parse("s3://b/").unwrap().prefix, "");
        assert_eq!(S3Url::parse("s3://b/a/b").unwrap().prefix, "a/b");
        assert_eq!(
            S3Url::parse("s3://b/a/b").unwrap().to_string(),
            "s3://b/a/b"
        );
        // As `[lake.s3]` writes it.
        assert_eq!(S3Url::new("b", "/spate/").unwrap().prefix, "spate");
        for bad in [
            "b/prefix",
            "file:///tmp/lake",
            "s3://",
            "s3:///prefix",
            "s3://b b/x",
            "s3://b/a//c",
            "s3://b/a/../c",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
        let err = S3Url::parse("/var/lake").unwrap_err();
        assert!(err.contains("s3://bucket/prefix"), "{err}");
    }

    #[test]
    fn table_urls_keep_the_prefix_exact() {
        for (prefix, expected) in [
            ("", "logs"),
            ("spate", "spate/logs"),
            ("a/b=c", "a/b=c/logs"),
            ("my lake/100%", "my lake/100%/logs"),
        ] {
            let url = S3Url::new("bucket", prefix).unwrap();
            let location = LakeLocation::ObjectStore {
                url: url.url(),
                store: Arc::new(datafusion::object_store::memory::InMemory::new()),
                staging: None,
            };
            let table = location.table_url().unwrap();
            assert_eq!(table.prefix().as_ref(), expected, "{prefix}");
            assert_eq!(table.get_url().host_str(), Some("bucket"));
        }
    }
}
