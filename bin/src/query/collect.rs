//! Gathering a query's result: at most `limit` rows and at most so many
//! bytes, read batch by batch so that neither is exceeded by much before the
//! query stops.
//!
//! # Backpressure
//!
//! The result is read as a stream: rows past the limit are not asked for
//! (DataFusion gets the limit too), and once the rows held pass the byte limit
//! the stream is dropped and the query fails with
//! [`QueryError::ResultTooLarge`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::DataFrame;
use futures_util::StreamExt;
// Arrow memory of a batch's rows (of a slice: its rows only).
use spate_operators::sinks::lake::partition::sliced_bytes;

use super::{QueryBatches, QueryError};

/// Where a streaming query sends the rows it keeps as they come (the
/// console's search): each kept batch, in order, as soon as it is read.
pub struct BatchSink {
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
    sent: AtomicUsize,
}

impl BatchSink {
    /// A sink into `tx`.
    pub fn new(tx: tokio::sync::mpsc::Sender<RecordBatch>) -> Self {
        BatchSink {
            tx,
            sent: AtomicUsize::new(0),
        }
    }

    /// Batches sent so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// Sends `batch`, waiting while the reader is behind; an error once the
    /// reader is gone (which ends the query).
    async fn send(&self, batch: RecordBatch) -> Result<(), QueryError> {
        self.tx
            .send(batch)
            .await
            .map_err(|_| QueryError::Internal("the reader of the rows went away".into()))?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Collects at most `limit` rows (asking for one more to know whether rows
/// were left off) of at most `max_bytes` (Arrow memory of the rows kept), and
/// counts the lake files the plan reads. With a `sink`, every batch kept is
/// also sent there as it is read.
pub async fn collect_limited(
    df: DataFrame,
    limit: usize,
    max_bytes: usize,
    sink: Option<&BatchSink>,
) -> Result<QueryBatches, QueryError> {
    let task = Arc::new(df.task_ctx());
    // One more than asked, to tell whether rows were left off; a limit beyond
    // what DataFusion takes (i64) is no limit.
    let df = match i64::try_from(limit) {
        Ok(n) if n < i64::MAX => df.limit(0, Some(limit + 1))?,
        _ => df,
    };
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let plan = df.create_physical_plan().await?;
    let files_scanned = files_scanned(&plan);
    let mut stream = execute_stream(plan, task)?;
    let mut result = Limited::new(limit, max_bytes);
    while let Some(batch) = stream.next().await {
        let kept = result.batches.len();
        let more = result.push(batch?)?;
        if let Some(sink) = sink
            && result.batches.len() > kept
            && let Some(batch) = result.batches.last()
        {
            sink.send(batch.clone()).await?;
        }
        if !more {
            break;
        }
    }
    Ok(QueryBatches {
        schema,
        batches: result.batches,
        truncated: result.truncated,
        files_scanned,
    })
}

/// The rows kept so far, within the row and byte limits.
struct Limited {
    batches: Vec<RecordBatch>,
    remaining: usize,
    bytes: usize,
    max_bytes: usize,
    truncated: bool,
}

impl Limited {
    fn new(limit: usize, max_bytes: usize) -> Self {
        Limited {
            batches: Vec::new(),
            remaining: limit,
            bytes: 0,
            max_bytes,
            truncated: false,
        }
    }

    /// Keeps what fits of `batch`; `false` once no more rows are wanted.
    fn push(&mut self, mut batch: RecordBatch) -> Result<bool, QueryError> {
        if batch.num_rows() > self.remaining {
            batch = batch.slice(0, self.remaining);
            self.truncated = true;
        }
        self.remaining -= batch.num_rows();
        self.bytes = self.bytes.saturating_add(sliced_bytes(&batch));
        if self.bytes > self.max_bytes {
            return Err(QueryError::ResultTooLarge(format!(
                "query result too large: more than {} MiB (query.max_result_size); select fewer \
                 rows or columns, or aggregate",
                self.max_bytes >> 20
            )));
        }
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
        Ok(!self.truncated)
    }
}

/// Files the physical plan reads, over every file scan in it.
pub fn files_scanned(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let own = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .map_or(0, |scan| scan.file_groups.iter().map(|g| g.len()).sum());
    own + plan
        .children()
        .into_iter()
        .map(files_scanned)
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};

    fn numbers(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "n",
            Arc::new(Int64Array::from_iter_values(0..n)) as Arc<dyn Array>,
        )])
        .unwrap()
    }

    #[test]
    fn rows_past_the_limit_are_left_off_and_said_so() {
        let mut kept = Limited::new(5, usize::MAX);
        assert!(kept.push(numbers(3)).unwrap());
        assert!(!kept.push(numbers(3)).unwrap());
        assert!(kept.truncated);
        let rows: usize = kept.batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 5);

        // Exactly the limit, then the end: nothing left off.
        let mut exact = Limited::new(3, usize::MAX);
        assert!(exact.push(numbers(3)).unwrap());
        assert!(!exact.truncated);
        // The extra row asked for arrives: the limit was passed.
        assert!(!exact.push(numbers(1)).unwrap());
        assert!(exact.truncated);
        assert_eq!(exact.batches.len(), 1);
    }

    #[test]
    fn bytes_past_the_limit_fail_the_query() {
        let big = RecordBatch::try_from_iter([(
            "s",
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                "x".repeat(1024),
                2048,
            ))) as Arc<dyn Array>,
        )])
        .unwrap();
        let mut kept = Limited::new(usize::MAX, 3 << 20);
        assert!(kept.push(big.clone()).unwrap());
        let err = kept.push(big.clone()).unwrap_err();
        assert!(matches!(err, QueryError::ResultTooLarge(_)), "{err:?}");
        assert!(err.to_string().contains("more than 3 MiB"), "{err}");
        assert_eq!(err.http_status(), 400);
        // A slice counts its own rows, not the whole batch it shares.
        let mut sliced = Limited::new(10, 1 << 20);
        assert!(!sliced.push(big.slice(0, 11)).unwrap());
    }
}
