//! Partitions of the S3 lake registered in the Glue Data Catalog as files are
//! sealed, so Athena prunes by `dt`, `hour` and `service` without partition
//! projection (whose `injected` type made every query name a service).
//!
//! The table (`deploy/glue/`) is created once by the operator; Spate reads its
//! storage descriptor once and registers each partition it seals into, the
//! first time this process does, with `BatchCreatePartition` and the table's
//! descriptor pointed at `s3://bucket/prefix/logs/dt=…/hour=…/service=…/`.
//! A partition that already exists (another task, an earlier run) is fine.
//! Registration happens *before* the file is uploaded: a partition without
//! files reads as empty, while a file in an unregistered partition would be
//! invisible to Athena.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::component::ConfigError;
use crate::sinks::lake::partition::PartitionKey;

/// `[lake.s3.glue]`: the Glue table whose partitions the lake registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlueConfig {
    /// Glue database of the table.
    pub database: String,
    /// The table (as created from `deploy/glue/logs_table.json`).
    #[serde(default = "default_table")]
    pub table: String,
}

fn default_table() -> String {
    "logs".to_string()
}

impl GlueConfig {
    /// Checks the settings without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database.is_empty() {
            return Err(ConfigError::new("database", "must not be empty"));
        }
        if self.table.is_empty() {
            return Err(ConfigError::new("table", "must not be empty"));
        }
        Ok(())
    }
}

/// Failures of the catalog.
#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    /// A request failed after its attempts.
    #[error("glue {op} of {database}.{table} failed after {attempts} attempts: {message}")]
    Request {
        /// The operation.
        op: &'static str,
        /// The database.
        database: String,
        /// The table.
        table: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// The table has no storage descriptor to copy.
    #[error("glue table {database}.{table} has no storage descriptor")]
    NoStorageDescriptor {
        /// The database.
        database: String,
        /// The table.
        table: String,
    },
}

/// The catalog a lake registers its partitions in.
#[derive(Debug)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    config: GlueConfig,
    /// `s3://bucket/prefix/logs/`.
    table_location: String,
    max_attempts: u32,
    descriptor: OnceCell<StorageDescriptor>,
    registered: Mutex<HashSet<PartitionKey>>,
}

impl GlueCatalog {
    /// The catalog of `config`, for a lake whose `logs` table is at
    /// `table_location` (`s3://bucket/prefix/logs/`).
    pub fn new(
        client: aws_sdk_glue::Client,
        config: &GlueConfig,
        table_location: &str,
        max_attempts: u32,
    ) -> Self {
        GlueCatalog {
            client,
            config: config.clone(),
            table_location: format!("{}/", table_location.trim_end_matches('/')),
            max_attempts: max_attempts.max(1),
            descriptor: OnceCell::new(),
            registered: Mutex::new(HashSet::new()),
        }
    }

    /// `database.table`.
    pub fn table_name(&self) -> String {
        format!("{}.{}", self.config.database, self.config.table)
    }

    /// Reads the table's storage descriptor (once); also a check at start-up
    /// that the table exists and can be read.
    pub async fn check(&self) -> Result<(), GlueError> {
        self.descriptor().await.map(|_| ())
    }

    async fn descriptor(&self) -> Result<&StorageDescriptor, GlueError> {
        self.descriptor
            .get_or_try_init(|| async {
                let table = self
                    .retry("get_table", || {
                        self.client
                            .get_table()
                            .database_name(&self.config.database)
                            .name(&self.config.table)
                            .send()
                    })
                    .await?;
                table
                    .table()
                    .and_then(|t| t.storage_descriptor())
                    .cloned()
                    .ok_or_else(|| GlueError::NoStorageDescriptor {
                        database: self.config.database.clone(),
                        table: self.config.table.clone(),
                    })
            })
            .await
    }

    /// Registers `key`'s partition unless this process already did.
    pub async fn ensure_partition(&self, key: &PartitionKey) -> Result<(), GlueError> {
        if self.lock().contains(key) {
            return Ok(());
        }
        let mut descriptor = self.descriptor().await?.clone();
        let path = key.path();
        descriptor.location = Some(format!("{}{path}/", self.table_location));
        let values: Vec<String> = path
            .split('/')
            .filter_map(|part| part.split_once('=').map(|(_, v)| v.to_string()))
            .collect();
        let input = PartitionInput::builder()
            .set_values(Some(values))
            .storage_descriptor(descriptor)
            .build();
        let out = self
            .retry("batch_create_partition", || {
                self.client
                    .batch_create_partition()
                    .database_name(&self.config.database)
                    .table_name(&self.config.table)
                    .partition_input_list(input.clone())
                    .send()
            })
            .await?;
        let failed: Vec<String> = out
            .errors()
            .iter()
            .filter_map(|e| e.error_detail())
            .filter(|d| d.error_code() != Some("AlreadyExistsException"))
            .map(|d| {
                format!(
                    "{}: {}",
                    d.error_code().unwrap_or("error"),
                    d.error_message().unwrap_or("")
                )
            })
            .collect();
        if !failed.is_empty() {
            metrics::counter!("spate_glue_request_errors_total", "op" => "batch_create_partition")
                .increment(1);
            return Err(GlueError::Request {
                op: "batch_create_partition",
                database: self.config.database.clone(),
                table: self.config.table.clone(),
                attempts: 1,
                message: failed.join("; "),
            });
        }
        metrics::counter!("spate_glue_partitions_registered_total").increment(1);
        self.lock().insert(key.clone());
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<PartitionKey>> {
        self.registered.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn retry<T, E, F, Fut>(&self, op: &'static str, request: F) -> Result<T, GlueError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let delay = |attempt: u32| Duration::from_millis(200 << attempt.min(5));
        super::sdk_retry::retry_sdk_request(self.max_attempts, delay, request, |attempt, message| {
            metrics::counter!("spate_glue_request_errors_total", "op" => op).increment(1);
            if attempt < self.max_attempts {
                tracing::warn!(table = %self.table_name(), op, attempt, error = %message, "glue request failed; retrying");
            }
        })
        .await
        .map_err(|(attempts, message)| GlueError::Request {
            op,
            database: self.config.database.clone(),
            table: self.config.table.clone(),
            attempts,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_with_a_default_table() {
        let config: GlueConfig =
            serde_json::from_value(serde_json::json!({"database": "logs_db"})).unwrap();
        assert_eq!(config.table, "logs");
        assert!(config.validate().is_ok());
        let empty = GlueConfig {
            database: String::new(),
            table: "t".into(),
        };
        assert_eq!(empty.validate().unwrap_err().key(), "database");
    }
}
