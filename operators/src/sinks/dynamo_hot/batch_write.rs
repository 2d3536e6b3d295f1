//! BatchWriteItem with retries: 25 items a call, `UnprocessedItems` and
//! throttling retried with exponential backoff and full jitter, for a bounded
//! number of attempts.
//!
//! The call itself is behind the small [`BatchWrite`] trait, so the retry
//! logic is tested with a fake (DynamoDB rarely returns unprocessed items
//! on demand).

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::DynamoHotError;
use super::items::Item;

/// DynamoDB takes at most this many requests per BatchWriteItem.
pub const BATCH_LIMIT: usize = 25;

/// One BatchWriteItem call.
pub trait BatchWrite: Send + Sync + 'static {
    /// Writes up to [`BATCH_LIMIT`] requests; returns those DynamoDB left
    /// unprocessed.
    fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> impl Future<Output = Result<Vec<WriteRequest>, DynamoHotError>> + Send;
}

/// [`BatchWrite`] into a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoBatchWriter {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoBatchWriter {
    /// Writes into `table`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoBatchWriter {
            client,
            table: table.into(),
        }
    }
}

impl BatchWrite for DynamoBatchWriter {
    async fn batch_write(
        &self,
        requests: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, DynamoHotError> {
        let out = self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await
            .map_err(|e| DynamoHotError::dynamo("batch write", e))?;
        Ok(out
            .unprocessed_items
            .and_then(|mut m| m.remove(&self.table))
            .unwrap_or_default())
    }
}

/// How hard to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls per batch of 25 before giving up.
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; doubles each retry.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts, 50 ms doubling to 5 s (about 20 s at worst).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): uniform in
    /// `[0, min(cap, base × 2^(retry-1)))` ("full jitter"; `jitter` in
    /// `[0, 1)`).
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(self.cap);
        ceiling.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// A put request of `item`.
pub fn put(item: Item) -> Result<WriteRequest, DynamoHotError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| DynamoHotError::Data(format!("put request: {e}")))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Writes every request, 25 a call, retrying unprocessed items and
/// retryable failures per `policy`; returns the number written.
pub async fn write_all<W: BatchWrite>(
    writer: &W,
    requests: Vec<WriteRequest>,
    policy: &RetryPolicy,
) -> Result<u64, DynamoHotError> {
    let total = requests.len() as u64;
    let mut requests = requests.into_iter();
    loop {
        let mut batch: Vec<WriteRequest> = requests.by_ref().take(BATCH_LIMIT).collect();
        if batch.is_empty() {
            return Ok(total);
        }
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = batch.len();
            let started = tokio::time::Instant::now();
            let outcome = writer.batch_write(batch.clone()).await;
            metrics::histogram!("spate_dynamo_hot_batch_write_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("spate_dynamo_hot_batch_writes_total").increment(1);
            let retry_reason = match outcome {
                Ok(unprocessed) if unprocessed.is_empty() => break,
                Ok(unprocessed) => {
                    metrics::counter!("spate_dynamo_hot_unprocessed_items_total")
                        .increment(unprocessed.len() as u64);
                    tracing::debug!(
                        sent,
                        unprocessed = unprocessed.len(),
                        "dynamodb left items unprocessed"
                    );
                    batch = unprocessed;
                    None
                }
                Err(e) if e.is_retryable() => Some(e),
                Err(e) => return Err(e),
            };
            if attempt >= policy.max_attempts {
                return Err(retry_reason.unwrap_or(DynamoHotError::Unprocessed {
                    items: batch.len(),
                    attempts: attempt,
                }));
            }
            if let Some(e) = retry_reason {
                metrics::counter!("spate_dynamo_hot_write_retries_total").increment(1);
                tracing::debug!(error = %e, attempt, "dynamodb batch write failed; retrying");
            }
            tokio::time::sleep(policy.delay(attempt, jitter_sample())).await;
        }
    }
}

/// A uniform sample in `[0, 1)` from the standard library's randomly keyed
/// hasher.
fn jitter_sample() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::sinks::dynamo_hot::items::s;

    /// What the fake answers to each call, in order; afterwards everything
    /// is processed.
    #[derive(Debug, Clone)]
    enum Answer {
        /// Leave the last `n` requests of the call unprocessed.
        Unprocessed(usize),
        /// Fail the call with this error code.
        Fail(&'static str),
    }

    #[derive(Default)]
    struct FakeWriter {
        answers: Mutex<VecDeque<Answer>>,
        calls: Mutex<Vec<Vec<String>>>,
        written: Mutex<Vec<String>>,
    }

    fn id_of(r: &WriteRequest) -> String {
        r.put_request()
            .and_then(|p| p.item().get("pk"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    }

    impl BatchWrite for FakeWriter {
        async fn batch_write(
            &self,
            requests: Vec<WriteRequest>,
        ) -> Result<Vec<WriteRequest>, DynamoHotError> {
            assert!(requests.len() <= BATCH_LIMIT);
            self.calls
                .lock()
                .unwrap()
                .push(requests.iter().map(id_of).collect());
            let answer = self.answers.lock().unwrap().pop_front();
            let (done, left) = match answer {
                None => (requests, Vec::new()),
                Some(Answer::Unprocessed(n)) => {
                    let mut done = requests;
                    let left = done.split_off(done.len().saturating_sub(n));
                    (done, left)
                }
                Some(Answer::Fail(code)) => {
                    return Err(DynamoHotError::Dynamo {
                        op: "batch write",
                        code: Some(code.into()),
                        message: code.into(),
                    });
                }
            };
            self.written.lock().unwrap().extend(done.iter().map(id_of));
            Ok(left)
        }
    }

    fn fake(answers: impl IntoIterator<Item = Answer>) -> FakeWriter {
        FakeWriter {
            answers: Mutex::new(answers.into_iter().collect()),
            ..FakeWriter::default()
        }
    }

    fn requests(n: usize) -> Vec<WriteRequest> {
        (0..n)
            .map(|i| put(Item::from([("pk".to_string(), s(format!("i{i:03}")))])).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn writes_in_batches_of_25() {
        let w = fake([]);
        assert_eq!(
            write_all(&w, requests(60), &RetryPolicy::default())
                .await
                .unwrap(),
            60
        );
        let sizes: Vec<usize> = w.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [25, 25, 10]);
        assert_eq!(w.written.lock().unwrap().len(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_retried_until_written() {
        let w = fake([
            Answer::Unprocessed(10),
            Answer::Unprocessed(3),
            Answer::Fail("ProvisionedThroughputExceededException"),
        ]);
        let started = tokio::time::Instant::now();
        write_all(&w, requests(25), &RetryPolicy::default())
            .await
            .unwrap();
        let calls = w.calls.lock().unwrap().clone();
        assert_eq!(
            calls.iter().map(Vec::len).collect::<Vec<_>>(),
            [25, 10, 3, 3]
        );
        // Only the unprocessed ones are sent again.
        assert_eq!(calls[2], ["i022", "i023", "i024"]);
        let mut written = w.written.lock().unwrap().clone();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), 25);
        // Three backoffs, each below its ceiling (50, 100, 200 ms).
        assert!(started.elapsed() < Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_attempts() {
        let w = fake(std::iter::repeat_n(Answer::Unprocessed(2), 100));
        let policy = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let err = write_all(&w, requests(5), &policy).await.unwrap_err();
        assert!(
            matches!(
                err,
                DynamoHotError::Unprocessed {
                    items: 2,
                    attempts: 4
                }
            ),
            "{err}"
        );
        assert_eq!(w.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_errors_fail_at_once() {
        let w = fake([Answer::Fail("ValidationException")]);
        let err = write_all(&w, requests(3), &RetryPolicy::default())
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(w.calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn delay_has_full_jitter_under_a_doubling_capped_ceiling() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 0.0), Duration::ZERO);
        assert_eq!(p.delay(1, 0.5), Duration::from_millis(25));
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(100));
        assert_eq!(p.delay(30, 0.5), Duration::from_millis(2500));
    }
}
