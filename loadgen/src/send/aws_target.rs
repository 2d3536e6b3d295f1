//! The SQS and Kinesis targets of `loadgen send`.
//!
//! A batch body is cut into messages by [`pack_messages`] (`events_per_message` lines a
//! message, NDJSON or a CloudWatch Logs subscription payload): the bodies Spate's SQS source
//! and the records its Kinesis source decode.
//!
//! - [`SqsTarget`] sends them with SendMessageBatch: up to 10 messages and
//!   [`SQS_MAX_BATCH_BYTES`] a request.
//! - [`KinesisTarget`] sends them as records with PutRecords: up to [`KINESIS_MAX_RECORDS`]
//!   records and [`KINESIS_MAX_REQUEST_BYTES`] a request; with KPL aggregation several
//!   messages share one record (the Kinesis Producer Library's format, which Spate's Kinesis
//!   source unpacks), up to [`KINESIS_MAX_RECORD_BYTES`].
//!
//! Entries a request reports as failed are sent again (up to [`ENTRY_ATTEMPTS`] times, with a
//! short backoff) before the batch fails; a throttled batch counts as `rejected`, so the
//! sender retries it after [`DEFAULT_RETRY_AFTER`]. A batch is delivered request by request,
//! so a retried batch may repeat messages an earlier attempt delivered: duplicates, which
//! `loadgen verify` counts, never losses.
//!
//! Credentials, region and endpoint come from the standard AWS chain; `AWS_ENDPOINT_URL`
//! points the targets at a local emulator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use bytes::Bytes;
use spate_operators::aws::{AwsClients, AwsConfig};

use super::packing::{Packing, kpl_records, pack_messages, request_groups};
use super::target::{DEFAULT_RETRY_AFTER, SendError, SendFuture, Target};

/// Messages in one SendMessageBatch request (SQS's limit).
pub const SQS_MAX_BATCH_MESSAGES: usize = 10;

/// Bytes of message bodies in one SendMessageBatch request, and of one message (SQS's
/// classic limit, which emulators enforce).
pub const SQS_MAX_BATCH_BYTES: usize = 256 * 1024;

/// Records in one PutRecords request (Kinesis's limit).
pub const KINESIS_MAX_RECORDS: usize = 500;

/// Bytes of data and partition keys in one PutRecords request (Kinesis's limit).
pub const KINESIS_MAX_REQUEST_BYTES: usize = 5 * 1024 * 1024;

/// Bytes of one Kinesis record, data and partition key (Kinesis's limit).
pub const KINESIS_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Attempts at the entries a request reports as failed before the batch fails.
pub const ENTRY_ATTEMPTS: u32 = 4;

/// Backoff before sending failed entries again; doubled for each further attempt.
const ENTRY_BACKOFF: Duration = Duration::from_millis(100);

/// [`pack_messages`] at the wall-clock time, as a target's error.
fn messages_now(body: &[u8], packing: Packing) -> Result<Vec<Vec<u8>>, SendError> {
    pack_messages(body, packing, super::wall_clock_ms()).map_err(|source| SendError::Io {
        target: "cloudwatch payload".to_owned(),
        source,
    })
}

/// Error codes AWS uses for throttling.
fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "ProvisionedThroughputExceededException"
            | "LimitExceededException"
            | "KMSThrottlingException"
            | "SlowDown"
    )
}

/// Classifies an SDK failure: throttling is a rejection, another 4xx a refusal, the rest
/// failures or transport errors.
fn sdk_error<E>(error: SdkError<E>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = aws_sdk_sqs::error::DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            if is_throttling(code) || status == 429 || status == 503 {
                SendError::Rejected {
                    status,
                    retry_after: DEFAULT_RETRY_AFTER,
                }
            } else if (400..500).contains(&status) {
                SendError::Refused { status, detail }
            } else {
                SendError::Failed { status, detail }
            }
        }
        _ => SendError::Transport(detail),
    }
}

/// What became of the entries of one request that did not go in.
enum EntryFailure {
    /// Some entries failed and may succeed when sent again (indices into the request).
    Retry(Vec<usize>),
    /// An entry was refused for what it is.
    Refused(String),
}

/// Sends `count` entries with `attempt`, sending again the ones it reports failed.
async fn send_with_entry_retries<F, Fut>(count: usize, mut attempt: F) -> Result<(), SendError>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<Option<EntryFailure>, SendError>>,
{
    let mut pending: Vec<usize> = (0..count).collect();
    for round in 0..ENTRY_ATTEMPTS {
        match attempt(pending.clone()).await? {
            None => return Ok(()),
            Some(EntryFailure::Refused(detail)) => {
                return Err(SendError::Refused {
                    status: 400,
                    detail,
                });
            }
            Some(EntryFailure::Retry(failed)) => {
                pending = failed
                    .into_iter()
                    .filter_map(|i| pending.get(i).copied())
                    .collect();
                if pending.is_empty() {
                    return Err(SendError::Failed {
                        status: 500,
                        detail: "entries failed that the request did not hold".into(),
                    });
                }
            }
        }
        if round + 1 < ENTRY_ATTEMPTS {
            tokio::time::sleep(ENTRY_BACKOFF * 2u32.pow(round)).await;
        }
    }
    Err(SendError::Rejected {
        status: 503,
        retry_after: DEFAULT_RETRY_AFTER,
    })
}

/// Where an AWS target delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsDestination {
    /// An SQS queue, by URL.
    Sqs {
        /// The queue URL.
        queue_url: String,
    },
    /// A Kinesis stream, by name.
    Kinesis {
        /// The stream name.
        stream: String,
        /// Aggregate messages into KPL records.
        kpl: bool,
    },
}

/// Builds the target for `destination` with clients of the standard AWS chain.
pub async fn open_aws_target(destination: AwsDestination, packing: Packing) -> Box<dyn Target> {
    let clients = AwsClients::load(&AwsConfig::default()).await;
    match destination {
        AwsDestination::Sqs { queue_url } => {
            Box::new(SqsTarget::new(clients.sqs(), queue_url, packing))
        }
        AwsDestination::Kinesis { stream, kpl } => {
            // Kinesis records are bytes: compressed ones need no base64.
            let packing = Packing {
                text: false,
                ..packing
            };
            Box::new(KinesisTarget::new(clients.kinesis(), stream, packing, kpl))
        }
    }
}

/// Sends batches to an SQS queue with SendMessageBatch.
pub struct SqsTarget {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    packing: Packing,
}

impl SqsTarget {
    /// A target for `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, packing: Packing) -> Self {
        SqsTarget {
            client,
            queue_url,
            packing,
        }
    }

    async fn send_group(&self, bodies: &[String]) -> Result<(), SendError> {
        send_with_entry_retries(bodies.len(), |pending| async move {
            let entries = pending
                .iter()
                .enumerate()
                .map(|(slot, &i)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(slot.to_string())
                        .message_body(&bodies[i])
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
            if out.failed().is_empty() {
                return Ok(None);
            }
            if let Some(refused) = out.failed().iter().find(|f| f.sender_fault()) {
                return Ok(Some(EntryFailure::Refused(format!(
                    "{}: {}",
                    refused.code(),
                    refused.message().unwrap_or_default()
                ))));
            }
            let failed = out
                .failed()
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok())
                .collect();
            Ok(Some(EntryFailure::Retry(failed)))
        })
        .await
    }
}

impl Target for SqsTarget {
    fn describe(&self) -> String {
        format!("sqs:{}", self.queue_url)
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            let messages = messages_now(body, self.packing)?;
            let bodies: Vec<String> = messages
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned())
                .collect();
            let sizes: Vec<usize> = bodies.iter().map(String::len).collect();
            let groups = request_groups(&sizes, SQS_MAX_BATCH_MESSAGES, SQS_MAX_BATCH_BYTES)
                .map_err(|i| SendError::Refused {
                    status: 400,
                    detail: format!(
                        "a message of {} bytes is over SQS's {SQS_MAX_BATCH_BYTES}: lower --events-per-message",
                        sizes[i]
                    ),
                })?;
            for group in groups {
                self.send_group(&bodies[group]).await?;
            }
            Ok(())
        })
    }
}

/// Sends batches to a Kinesis stream with PutRecords.
pub struct KinesisTarget {
    client: aws_sdk_kinesis::Client,
    stream: String,
    packing: Packing,
    kpl: bool,
    /// Makes partition keys, so records spread over the shards.
    next_key: AtomicU64,
}

impl KinesisTarget {
    /// A target for the stream named `stream`; `kpl` aggregates messages into KPL records.
    pub fn new(
        client: aws_sdk_kinesis::Client,
        stream: String,
        packing: Packing,
        kpl: bool,
    ) -> Self {
        KinesisTarget {
            client,
            stream,
            packing,
            kpl,
            next_key: AtomicU64::new(0),
        }
    }

    fn partition_key(&self) -> String {
        format!("lg-{}", self.next_key.fetch_add(1, Ordering::Relaxed))
    }

    async fn send_group(&self, records: &[(String, Vec<u8>)]) -> Result<(), SendError> {
        send_with_entry_retries(records.len(), |pending| async move {
            let entries = pending
                .iter()
                .map(|&i| {
                    let (key, data) = &records[i];
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data.clone()))
                        .build()
                        .expect("key and data are set")
                })
                .collect();
            let out = self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(entries))
                .send()
                .await
                .map_err(sdk_error)?;
            if out.failed_record_count().unwrap_or(0) == 0 {
                return Ok(None);
            }
            let failed = out
                .records()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.error_code().is_some())
                .map(|(slot, _)| slot)
                .collect();
            Ok(Some(EntryFailure::Retry(failed)))
        })
        .await
    }
}

impl Target for KinesisTarget {
    fn describe(&self) -> String {
        let kpl = if self.kpl { " (kpl)" } else { "" };
        format!("kinesis:{}{kpl}", self.stream)
    }

    fn send<'a>(&'a self, body: &'a Bytes) -> SendFuture<'a> {
        Box::pin(async move {
            let messages = messages_now(body, self.packing)?;
            let data = if self.kpl {
                kpl_records(messages, "lg", KINESIS_MAX_RECORD_BYTES)
            } else {
                messages
            };
            let records: Vec<(String, Vec<u8>)> = data
                .into_iter()
                .map(|d| (self.partition_key(), d))
                .collect();
            let sizes: Vec<usize> = records.iter().map(|(k, d)| k.len() + d.len()).collect();
            let too_big = |i: usize| SendError::Refused {
                status: 400,
                detail: format!(
                    "a record of {} bytes is over Kinesis's {KINESIS_MAX_RECORD_BYTES}: lower --events-per-message",
                    sizes[i]
                ),
            };
            if let Some(i) = sizes.iter().position(|&s| s > KINESIS_MAX_RECORD_BYTES) {
                return Err(too_big(i));
            }
            let groups = request_groups(&sizes, KINESIS_MAX_RECORDS, KINESIS_MAX_REQUEST_BYTES)
                .map_err(too_big)?;
            for group in groups {
                self.send_group(&records[group]).await?;
            }
            Ok(())
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_entries_are_sent_again_then_the_batch_is_rejected() {
        // Entries 1 and 3 fail once, then everything goes in.
        let mut seen = Vec::new();
        let result = send_with_entry_retries(4, |pending| {
            seen.push(pending.clone());
            let failed = (seen.len() == 1).then(|| EntryFailure::Retry(vec![1, 3]));
            async move { Ok(failed) }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(seen, [vec![0, 1, 2, 3], vec![1, 3]]);

        // Slot 0 of the retried request is entry 2.
        let mut seen = Vec::new();
        let result = send_with_entry_retries(3, |pending| {
            seen.push(pending.clone());
            let failed = match seen.len() {
                1 => Some(EntryFailure::Retry(vec![2])),
                _ => Some(EntryFailure::Retry(vec![0])),
            };
            async move { Ok(failed) }
        })
        .await;
        assert!(matches!(result, Err(SendError::Rejected { .. })));
        assert_eq!(seen.len(), ENTRY_ATTEMPTS as usize);
        assert!(seen[1..].iter().all(|p| p == &[2]));

        let refused = send_with_entry_retries(2, |_| async {
            Ok(Some(EntryFailure::Refused("InvalidMessageContents".into())))
        })
        .await;
        assert!(matches!(refused, Err(SendError::Refused { .. })));
        let nonsense =
            send_with_entry_retries(2, |_| async { Ok(Some(EntryFailure::Retry(vec![7]))) }).await;
        assert!(matches!(nonsense, Err(SendError::Failed { .. })));
    }
}
