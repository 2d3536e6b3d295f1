//! Access to the local AWS emulator (moto) the AWS tests run against.
//!
//! `bash scripts/test.sh` starts moto and exports `SPATE_TEST_AWS_ENDPOINT`
//! with test credentials; without it the AWS tests fail rather than skip.

#![allow(dead_code)] // each test binary uses a different part

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arrow_array::{Array, StringArray};
use aws_config::SdkConfig;
use spate_engine::testkit::CaptureSink;
use spate_engine::{ActorOptions, GraphBuilder, Pipeline, Source};
use spate_operators::aws::AwsConfig;
use spate_operators::classify::ClassifierConfig;
use spate_operators::decode::DecoderConfig;
use spate_operators::enrich::EnrichConfig;
use spate_operators::log_batch::LogBatch;
use spate_operators::sources::RawChunk;
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage, DecodeStageConfig};

/// The emulator's endpoint, or a failure saying how to run the AWS tests.
pub fn endpoint() -> String {
    match std::env::var("SPATE_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SPATE_TEST_AWS_ENDPOINT is not set: the AWS tests need the local emulator; \
             run them with `bash scripts/test.sh`, which starts moto and sets it"
        ),
    }
}

/// The client settings for the emulator (credentials from the environment,
/// as `scripts/test.sh` exports them).
pub async fn aws() -> (AwsConfig, SdkConfig) {
    let config = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        ..AwsConfig::default()
    };
    let sdk = config.load().await;
    (config, sdk)
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits (real time: the emulator is another process) until `done` holds,
/// failing after `limit` with `what`.
pub async fn wait_until(limit: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a queue (optionally with a dead-letter queue after
/// `max_receive_count` receives); returns its URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive: Option<(&str, u32)>,
) -> String {
    let mut request = sqs.create_queue().queue_name(name).attributes(
        aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
        "30",
    );
    if let Some((dlq_url, max_receive_count)) = redrive {
        let arn = queue_arn(sqs, dlq_url).await;
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        request = request.attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            policy.to_string(),
        );
    }
    request
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url")
}

/// The ARN of a queue.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    attrs
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
}

/// Messages in the queue, visible plus in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|k| attrs.get(k)?.parse::<u64>().ok())
    .sum()
}

/// Sends bodies with SendMessageBatch, 10 at a time.
pub async fn send_bodies(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[String]) {
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .expect("entry")
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("send batch");
        assert!(out.failed().is_empty(), "sends failed: {:?}", out.failed());
    }
}

/// `source` -> decode (`workers` competing workers, default settings) ->
/// `sink`, spawned.
pub fn decode_pipeline<S, F>(source: F, workers: usize, sink: &CaptureSink<LogBatch>) -> Pipeline
where
    S: Source<Out = RawChunk>,
    F: FnMut() -> S + Send + 'static,
{
    let settings = DecodeSettings::new(
        &DecoderConfig::default(),
        &ClassifierConfig::default(),
        &EnrichConfig::default(),
        &DecodeStageConfig::default(),
    )
    .expect("decode settings");
    let mut graph = GraphBuilder::new();
    graph.source("source", source);
    graph.actor_pool(
        "decode",
        workers,
        move |_| DecodeStage::new(&settings),
        ActorOptions::with_capacity(8),
    );
    let sink = sink.clone();
    graph.actor("sink", move || sink.clone(), ActorOptions::with_capacity(8));
    graph.connect("source", "decode").connect("decode", "sink");
    graph.build().expect("graph").spawn()
}

/// Every non-null string of `column` in the delivered batches, in order.
pub fn column(sink: &CaptureSink<LogBatch>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in sink.delivered() {
        for part in &batch.parts {
            let idx = part.records.schema().index_of(name).expect("column");
            let strings = part
                .records
                .column(idx)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings")
                .clone();
            for i in 0..strings.len() {
                if strings.is_valid(i) {
                    out.push(strings.value(i).to_string());
                }
            }
        }
    }
    out
}
