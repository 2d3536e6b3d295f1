//! The `logs` table as queries see it: the sealed Parquet files (a listing
//! table) plus the rows still in the lake's staging area, each row once.
//!
//! A scan takes its snapshot of staging first (every segment opened, with
//! the length of its whole messages), then plans the Parquet scan (which
//! lists the sealed files), then drops the segments that the listed files
//! cover (see `spate_operators::sinks::lake::staging`). Whatever step of a
//! seal the scan lands between, a row is read from the sealed file or from
//! its segment, never both and never neither: a segment deleted after the
//! snapshot is still read through its open file, and a file renamed into
//! place after the listing is not read, its segments being.
//!
//! Staged rows are filtered here with every filter of the query (the
//! listing table may have applied the partition filters exactly, by pruning
//! directories), and read with only the columns the query needs.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use spate_operators::sinks::lake::staging::{
    Coverage, OpenSegment, StagingSnapshot, read_segment_projected,
};

/// Columns stored in the files (and the staged segments); the partition
/// columns follow them in the table.
fn file_columns() -> usize {
    spate_operators::sinks::lake::schema::logs_file_schema()
        .fields()
        .len()
}

/// A staging area to read beside the sealed files.
#[derive(Debug, Clone)]
pub struct StagingSource {
    /// The staging directory (`<lake>/staging`).
    pub dir: PathBuf,
    /// Which sealed files cover its segments.
    pub coverage: Coverage,
}

/// `logs`: sealed files plus staged rows.
#[derive(Debug)]
pub struct LogsTable {
    sealed: Arc<ListingTable>,
    staging: StagingSource,
    /// Whether the listing's paths are percent-encoded file names (a local
    /// lake, through `object_store`'s file system), or object keys as they
    /// are (S3).
    encoded_paths: bool,
}

impl LogsTable {
    /// The sealed files of `sealed` and the staged rows of `staging`.
    pub fn new(sealed: Arc<ListingTable>, staging: StagingSource, encoded_paths: bool) -> Self {
        LogsTable {
            sealed,
            staging,
            encoded_paths,
        }
    }
}

#[async_trait]
impl TableProvider for LogsTable {
    fn schema(&self) -> SchemaRef {
        self.sealed.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.sealed.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // First the snapshot of staging, then the listing of sealed files.
        let dir = self.staging.dir.clone();
        let snapshot = tokio::task::spawn_blocking(move || StagingSnapshot::take(&dir))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let sealed = self.sealed.scan(state, projection, filters, limit).await?;
        if snapshot.partitions.is_empty() {
            return Ok(sealed);
        }
        let listed = sealed_names_by_partition(&sealed, self.encoded_paths);
        let snapshot = snapshot.without_covered(
            |path| listed.get(path).into_iter().flatten().map(String::as_str),
            &self.staging.coverage,
        );
        if snapshot.partitions.is_empty() {
            return Ok(sealed);
        }
        let staged = staged_plan(
            state,
            &self.schema(),
            snapshot,
            projection,
            filters,
            !self.encoded_paths,
        )?;
        UnionExec::try_new(vec![sealed, staged])
    }
}

/// The names of the files a plan reads, by partition path
/// (`dt=…/hour=…/service=…`, as the staging directories are named).
fn sealed_names_by_partition(
    plan: &Arc<dyn ExecutionPlan>,
    encoded: bool,
) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut stack = vec![plan.clone()];
    while let Some(plan) = stack.pop() {
        if let Some(scan) = plan
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        {
            for file in scan.file_groups.iter().flat_map(|g| g.iter()) {
                let parts: Vec<&str> = file.object_meta.location.as_ref().rsplit('/').collect();
                if parts.len() < 4 {
                    continue;
                }
                let decode = |part: &str| match encoded {
                    true => percent_decode(part),
                    false => part.to_string(),
                };
                let partition = format!(
                    "{}/{}/{}",
                    decode(parts[3]),
                    decode(parts[2]),
                    decode(parts[1])
                );
                out.entry(partition).or_default().push(decode(parts[0]));
            }
        }
        stack.extend(plan.children().into_iter().cloned());
    }
    out
}

/// `%XX` decoded once (a malformed escape is kept as it is).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// Staged rows: read with the columns the projection and the filters need,
/// filtered, then projected as the sealed scan is.
fn staged_plan(
    state: &dyn Session,
    table_schema: &SchemaRef,
    snapshot: StagingSnapshot,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    decode_values: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    let all: Vec<usize> = (0..table_schema.fields().len()).collect();
    let wanted = projection.cloned().unwrap_or_else(|| all.clone());
    let predicate = conjunction(filters.iter().cloned().map(unnormalize_col));
    let mut needed = wanted.clone();
    if let Some(predicate) = &predicate {
        for column in predicate.column_refs() {
            needed.push(table_schema.index_of(&column.name)?);
        }
    }
    needed.sort_unstable();
    needed.dedup();
    let schema = Arc::new(table_schema.project(&needed)?);
    let partitions: Vec<Arc<dyn PartitionStream>> = snapshot
        .partitions
        .into_iter()
        .map(|partition| {
            let values: Vec<String> = partition
                .path
                .split('/')
                .map(|part| {
                    let value = part.split_once('=').map_or(part, |(_, v)| v);
                    match decode_values {
                        true => percent_decode(value),
                        false => value.to_string(),
                    }
                })
                .collect();
            Arc::new(StagedPartition {
                schema: schema.clone(),
                columns: needed.clone(),
                values,
                segments: partition.segments.into(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    let mut plan: Arc<dyn ExecutionPlan> = Arc::new(StreamingTableExec::try_new(
        schema.clone(),
        partitions,
        None,
        [],
        false,
        None,
    )?);
    if let Some(predicate) = predicate {
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let predicate = state.create_physical_expr(predicate, &df_schema)?;
        plan = Arc::new(FilterExec::try_new(predicate, plan)?);
    }
    if needed != wanted {
        let exprs: Vec<(Arc<dyn datafusion::physical_expr::PhysicalExpr>, String)> = wanted
            .iter()
            .map(|index| {
                let name = table_schema.field(*index).name().clone();
                let position = needed.iter().position(|n| n == index).expect("needed");
                (
                    Arc::new(Column::new(&name, position))
                        as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                    name,
                )
            })
            .collect();
        plan = Arc::new(ProjectionExec::try_new(exprs, plan)?);
    }
    Ok(plan)
}

/// The staged segments of one partition.
struct StagedPartition {
    /// Output schema: the table's `columns`.
    schema: SchemaRef,
    /// Table column indexes to produce, ascending.
    columns: Vec<usize>,
    /// The partition values (`dt`, `hour`, `service`).
    values: Vec<String>,
    segments: Arc<[OpenSegment]>,
}

impl fmt::Debug for StagedPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedPartition")
            .field("values", &self.values)
            .field("segments", &self.segments.len())
            .finish()
    }
}

impl PartitionStream for StagedPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStream::builder(self.schema.clone(), 2);
        let tx = builder.tx();
        let (schema, columns, values, segments) = (
            self.schema.clone(),
            self.columns.clone(),
            self.values.clone(),
            self.segments.clone(),
        );
        builder.spawn_blocking(move || {
            let files = file_columns();
            let from_file: Vec<usize> = columns.iter().copied().filter(|&c| c < files).collect();
            // Nothing from the file (count(*)): read the narrowest column.
            let read: Vec<usize> = if from_file.is_empty() {
                vec![1]
            } else {
                from_file.clone()
            };
            for segment in segments.iter() {
                let external = |e: spate_operators::sinks::lake::LakeError| {
                    DataFusionError::External(Box::new(e))
                };
                let file = segment
                    .file
                    .try_clone()
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                let reader = read_segment_projected(file, segment.len, read.clone(), &segment.path)
                    .map_err(external)?;
                for batch in reader {
                    let batch = batch?;
                    let rows = batch.num_rows();
                    let mut out: Vec<ArrayRef> = Vec::with_capacity(columns.len());
                    for &column in &columns {
                        if column < files {
                            let at = from_file.iter().position(|&c| c == column).expect("read");
                            // Staged as the file schema; some columns are read as views.
                            let wanted = schema.field(out.len()).data_type();
                            let array = batch.column(at);
                            out.push(match array.data_type() == wanted {
                                true => array.clone(),
                                false => cast(array, wanted)?,
                            });
                        } else {
                            let value = ScalarValue::Utf8(Some(values[column - files].clone()));
                            out.push(value.to_array_of_size(rows)?);
                        }
                    }
                    let options = RecordBatchOptions::new().with_row_count(Some(rows));
                    let batch = RecordBatch::try_new_with_options(schema.clone(), out, &options)?;
                    if tx.blocking_send(Ok(batch)).is_err() {
                        // The query stopped reading (a limit, a cancel).
                        return Ok(());
                    }
                }
            }
            Ok(())
        });
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_one_level() {
        assert_eq!(percent_decode("service=a%252Fb"), "service=a%2Fb");
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("plain"), "plain");
    }
}
