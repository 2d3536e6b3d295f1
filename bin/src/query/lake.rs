//! The `logs` table: the Parquet lake as a DataFusion listing table with its
//! Hive partitions (`dt`, `hour`, `service`, all strings as in the paths).
//!
//! Filters on the partition columns prune directories before any file is
//! opened (equality on `dt`/`hour`/`service` even narrows the listing itself).
//! Only committed files are read: names starting with `.` (the writer's
//! in-progress `.name.tmp` files, or any hidden file or directory) never match.
//!
//! Where the lake lives is a [`LakeLocation`]: a local directory, or any
//! `object_store` implementation under a URL (S3 plugs in here).

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
use datafusion::prelude::SessionContext;
use spate_operators::sinks::lake::schema::logs_file_schema;

/// The partition columns, outermost first.
pub const PARTITION_COLUMNS: [&str; 3] = ["dt", "hour", "service"];

/// Files of the table: visible `.parquet` files only.
const FILE_GLOB: &str = "[!.]*.parquet";

/// Where the lake is: the directory (or object prefix) that holds `logs/`.
#[derive(Clone)]
pub enum LakeLocation {
    /// A local directory (`<data-dir>/lake`, or `lake.path` of the config).
    Local(PathBuf),
    /// A prefix in an object store, e.g. `s3://bucket/prefix/`, with the store
    /// that serves it.
    #[allow(dead_code, reason = "the S3 lake (`--lake s3://...`) plugs in here")]
    ObjectStore {
        /// URL of the lake root; `logs/` is under it.
        url: String,
        /// The store for the URL's scheme and bucket.
        store: Arc<dyn ObjectStore>,
    },
}

impl fmt::Debug for LakeLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LakeLocation::Local(dir) => f.debug_tuple("Local").field(dir).finish(),
            LakeLocation::ObjectStore { url, .. } => {
                f.debug_struct("ObjectStore").field("url", url).finish()
            }
        }
    }
}

impl LakeLocation {
    /// A local lake directory.
    pub fn local(dir: impl AsRef<Path>) -> Self {
        LakeLocation::Local(dir.as_ref().to_path_buf())
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
            .with_schema(logs_file_schema());
        ctx.register_table("logs", Arc::new(ListingTable::try_new(config)?))?;
        Ok(())
    }
}

/// Schema of the `logs` table as queries see it: the file columns, then the
/// partition columns.
pub fn logs_table_schema() -> SchemaRef {
    let mut fields: Vec<Field> = logs_file_schema()
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
