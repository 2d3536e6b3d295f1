//! The SQS source against the local emulator: decode, delete on delivery,
//! return on failure, dead-letter queue, body formats, throughput.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use spate_test_support::emulator::{aws, create_queue, queue_depth, send_bodies};

use spate_test_support::decode::{column, column_once, decode_pipeline};

use spate_test_support::unique;

use base64::Engine;
use spate_engine::Pipeline;
use spate_engine::testkit::{CaptureSink, SinkStep};
use spate_operators::log_batch::LogBatch;
use spate_operators::sources::sqs::{SqsConfig, SqsProgress, SqsQueue, SqsSource};
use spate_test_support::acks::{AckedUpstream, check_acknowledgements};
use spate_test_support::wait::wait_until;

/// Short polls keep the tests quick; the defaults are for production.
fn test_config(queue_url: &str) -> SqsConfig {
    SqsConfig {
        pollers: 2,
        wait_time_secs: 1,
        // Short, so that a message whose delete failed comes back within a
        // test's wait; held messages are extended at half of it.
        visibility_timeout_secs: 10,
        ..SqsConfig::new(queue_url)
    }
}

/// SQS source -> decode (2 workers) -> capture sink.
fn pipeline(queue: &Arc<SqsQueue>, sink: &CaptureSink<LogBatch>) -> Pipeline {
    let q = queue.clone();
    decode_pipeline(move || q.source(), 2, sink)
}

/// Runs the pipeline until `messages` messages are deleted, then shuts it
/// down and waits for the queue's settling; returns the queue's progress.
///
/// SQS delivers at least once, and so does the emulator (its receive is not
/// atomic: two pollers can both take a message): a message handed out twice
/// is decoded and deleted twice, so the count may pass `messages`; the tests
/// read the captured rows once per event id ([`column_once`]). A failed
/// delete brings its message back after the visibility timeout.
async fn consume_until_deleted(
    queue: &Arc<SqsQueue>,
    sink: &CaptureSink<LogBatch>,
    messages: usize,
) -> Arc<SqsProgress> {
    let pipeline = pipeline(queue, sink);
    let progress = queue.progress().clone();
    wait_until(
        Duration::from_secs(60),
        DeleteCounts(&progress),
        async || progress.deleted.load(Ordering::Relaxed) >= messages as u64,
    )
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(queue.settled(Duration::from_secs(5)).await);
    progress
}

/// What the queue did, read when a wait times out.
struct DeleteCounts<'a>(&'a SqsProgress);

impl std::fmt::Display for DeleteCounts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.0;
        write!(
            f,
            "every message deleted (received {}, deleted {}, delete errors {}, returned {}, receive errors {})",
            p.received.load(Ordering::Relaxed),
            p.deleted.load(Ordering::Relaxed),
            p.delete_errors.load(Ordering::Relaxed),
            p.returned.load(Ordering::Relaxed),
            p.receive_errors.load(Ordering::Relaxed),
        )
    }
}

fn cloudwatch_body(group: &str, messages: &[&str]) -> String {
    let events: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": format!("cw-{i}"), "timestamp": 1_763_892_000_000i64 + i as i64, "message": m}))
        .collect();
    let payload = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "stream-1",
        "subscriptionFilters": ["all"],
        "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(payload.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_messages_are_decoded_then_deleted() {
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let name = unique("deliver");
    let url = create_queue(&sqs, &name, None).await;

    let ndjson: Vec<String> = (0..6)
        .map(|m| {
            (0..5)
                .map(|i| {
                    format!(
                        "{{\"service\":\"api\",\"level\":\"info\",\"msg\":\"m{m} line {i}\"}}\n"
                    )
                })
                .collect()
        })
        .collect();
    let sns_wrapped = serde_json::json!({
        "Type": "Notification",
        "MessageId": "n-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:logs",
        "Message": "{\"service\":\"billing\",\"level\":\"error\",\"msg\":\"via sns\"}",
    })
    .to_string();
    let cloudwatch = cloudwatch_body("/aws/lambda/checkout", &["cw one", "ERROR cw two"]);
    let mut bodies = ndjson.clone();
    bodies.push(sns_wrapped);
    bodies.push(cloudwatch);
    send_bodies(&sqs, &url, &bodies).await;

    let queue = SqsQueue::new(aws_config.sqs_client(&sdk), test_config(&url)).unwrap();
    let sink = CaptureSink::new();
    let progress = consume_until_deleted(&queue, &sink, bodies.len()).await;

    let messages = column_once(&sink, "message");
    assert_eq!(messages.len(), 6 * 5 + 1 + 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m == "via sns"),
        "sns envelope unwrapped"
    );
    assert!(
        messages.iter().any(|m| m == "ERROR cw two"),
        "cloudwatch payload decoded"
    );
    let groups = column_once(&sink, "log_group");
    assert_eq!(
        groups
            .iter()
            .filter(|g| *g == "/aws/lambda/checkout")
            .count(),
        2
    );
    let ids = column_once(&sink, "event_id");
    let prefix = format!("sqs:{name}:");
    let line_ids = ids.iter().filter(|id| id.starts_with(&prefix)).count();
    assert_eq!(
        line_ids,
        6 * 5 + 1,
        "line events carry sqs:<queue>:<message id>:<offset>"
    );
    // Every event's source is the queue; its position the rest of its id.
    let origin = format!("sqs:{name}");
    let sources = column_once(&sink, "source");
    assert_eq!(sources.len(), ids.len());
    assert!(sources.iter().all(|s| *s == origin), "{sources:?}");
    let positions = column_once(&sink, "position");
    for (id, position) in ids.iter().zip(&positions) {
        assert!(
            *id == *position || id.ends_with(&format!(":{position}")),
            "{id} vs {position}"
        );
    }
    assert_eq!(progress.returned.load(Ordering::Relaxed), 0);
    assert_eq!(
        queue_depth(&sqs, &url).await,
        0,
        "nothing left on the queue"
    );
}

/// Bodies a producer compressed to pay for fewer 64 KiB chunks: base64 of
/// gzip and of zstd decode to the same events as the plain body, with the
/// same offsets in their ids; a corrupt one is one dead letter, and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_decode_like_plain_ones() {
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let name = unique("compressed");
    let url = create_queue(&sqs, &name, None).await;

    let lines: String = (0..40)
        .map(|i| {
            let level = if i % 4 == 0 { "error" } else { "info" };
            format!("{{\"service\":\"api\",\"level\":\"{level}\",\"msg\":\"line {i}\"}}\n")
        })
        .collect();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines.as_bytes()).unwrap();
    let gzip = b64(gz.finish().unwrap());
    let zstd_bytes = zstd::bulk::compress(lines.as_bytes(), 3).unwrap();
    let corrupt = b64(zstd_bytes[..zstd_bytes.len() / 2].to_vec());
    let zstd = b64(zstd_bytes);
    assert!(
        zstd.len() < lines.len() / 2,
        "{} of {}",
        zstd.len(),
        lines.len()
    );
    let bodies = vec![lines.clone(), gzip, zstd, corrupt.clone()];
    send_bodies(&sqs, &url, &bodies).await;

    let queue = SqsQueue::new(aws_config.sqs_client(&sdk), test_config(&url)).unwrap();
    let sink = CaptureSink::new();
    let progress = consume_until_deleted(&queue, &sink, bodies.len()).await;

    let messages = column_once(&sink, "message");
    assert_eq!(messages.len(), 3 * 40, "{messages:?}");
    for i in 0..40 {
        let line = format!("line {i}");
        assert_eq!(messages.iter().filter(|m| **m == line).count(), 3, "{line}");
    }
    // The same offsets under three message ids.
    let mut offsets: Vec<String> = column_once(&sink, "event_id")
        .iter()
        .map(|id| id.rsplit(':').next().unwrap().to_string())
        .collect();
    offsets.sort();
    offsets.dedup();
    assert_eq!(offsets.len(), 40);
    let mut dead: Vec<_> = sink
        .delivered()
        .iter()
        .flat_map(|b| b.dead_letters.iter().cloned().collect::<Vec<_>>())
        .collect();
    // Once, even if its message was delivered twice.
    dead.dedup_by(|a, b| a.raw == b.raw);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].reason.starts_with("bad zstd: "),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].raw, corrupt.as_bytes());
    // The corrupt body is a dead letter, deleted with the rest: not returned.
    assert_eq!(progress.returned.load(Ordering::Relaxed), 0);
    assert_eq!(queue_depth(&sqs, &url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_batch_is_returned_and_redelivered() {
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let url = create_queue(&sqs, &unique("retry"), None).await;
    send_bodies(
        &sqs,
        &url,
        &["{\"service\":\"api\",\"msg\":\"once\"}".to_string()],
    )
    .await;

    let queue = SqsQueue::new(aws_config.sqs_client(&sdk), test_config(&url)).unwrap();
    let sink = CaptureSink::scripted([SinkStep::Fail]);
    let pipeline = pipeline(&queue, &sink);
    let progress = queue.progress().clone();
    wait_until(
        Duration::from_secs(30),
        "the retried message deleted",
        async || progress.deleted.load(Ordering::Relaxed) == 1,
    )
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(
        progress.returned.load(Ordering::Relaxed),
        1,
        "the failure returned it"
    );
    assert_eq!(
        progress.received.load(Ordering::Relaxed),
        2,
        "received twice"
    );
    assert_eq!(sink.state().seen.load(Ordering::SeqCst), 2);
    assert_eq!(column(&sink, "message"), ["once"]);
    assert_eq!(queue_depth(&sqs, &url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_ends_in_the_dead_letter_queue() {
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let dlq = create_queue(&sqs, &unique("poison-dlq"), None).await;
    let url = create_queue(&sqs, &unique("poison"), Some((&dlq, 2))).await;
    send_bodies(&sqs, &url, &["{\"msg\":\"poison\"}".to_string()]).await;

    let queue = SqsQueue::new(aws_config.sqs_client(&sdk), test_config(&url)).unwrap();
    // A sink that fails everything it gets.
    let sink = CaptureSink::scripted([SinkStep::Fail; 20]);
    let pipeline = pipeline(&queue, &sink);
    let progress = queue.progress().clone();
    wait_until(
        Duration::from_secs(30),
        "the message moved to the DLQ",
        async || {
            progress.returned.load(Ordering::Relaxed) >= 2 && queue_depth(&sqs, &dlq).await == 1
        },
    )
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();

    assert_eq!(progress.deleted.load(Ordering::Relaxed), 0, "never deleted");
    assert_eq!(
        progress.received.load(Ordering::Relaxed),
        2,
        "maxReceiveCount receives"
    );
    let moved = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
    assert_eq!(moved.messages()[0].body(), Some("{\"msg\":\"poison\"}"));
    assert_eq!(queue_depth(&sqs, &url).await, 0);
}

/// Produces while consuming (moto slows with queue depth), 100 events a
/// message, and reports the rate. Bounded by moto's request rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_against_the_emulator() {
    const MESSAGES: usize = 300;
    const EVENTS_PER_MESSAGE: usize = 100;
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let url = create_queue(&sqs, &unique("rate"), None).await;
    let queue = SqsQueue::new(
        aws_config.sqs_client(&sdk),
        SqsConfig {
            pollers: 4,
            ..test_config(&url)
        },
    )
    .unwrap();
    let sink = CaptureSink::new();
    let pipeline = pipeline(&queue, &sink);
    let started = Instant::now();
    let producer = {
        let (sqs, url) = (sqs.clone(), url.clone());
        tokio::spawn(async move {
            for batch in 0..MESSAGES / 10 {
                let bodies: Vec<String> = (0..10)
                    .map(|m| {
                        (0..EVENTS_PER_MESSAGE)
                            .map(|i| format!("{{\"service\":\"svc{m}\",\"level\":\"info\",\"msg\":\"b{batch} m{m} e{i}\"}}\n"))
                            .collect()
                    })
                    .collect();
                send_bodies(&sqs, &url, &bodies).await;
            }
        })
    };
    let progress = queue.progress().clone();
    let mut polls = 0u32;
    wait_until(
        Duration::from_secs(120),
        "every message deleted",
        async || {
            polls += 1;
            if polls.is_multiple_of(40) {
                eprintln!(
                    "after {:.0?}: received {}, deleted {}, returned {}, receive errors {}",
                    started.elapsed(),
                    progress.received.load(Ordering::Relaxed),
                    progress.deleted.load(Ordering::Relaxed),
                    progress.returned.load(Ordering::Relaxed),
                    progress.receive_errors.load(Ordering::Relaxed),
                );
            }
            progress.deleted.load(Ordering::Relaxed) >= MESSAGES as u64
        },
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    producer.await.unwrap();
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    // At least once: a message SQS hands out twice is decoded twice, with the
    // same event ids.
    let events: u64 = sink.delivered().iter().map(|b| b.counts.events).sum();
    let unique_ids: std::collections::HashSet<String> =
        column(&sink, "event_id").into_iter().collect();
    assert_eq!(unique_ids.len(), MESSAGES * EVENTS_PER_MESSAGE);
    eprintln!(
        "sqs -> decode against moto: {MESSAGES} messages, {events} events in {elapsed:.2}s: {:.0} messages/s, {:.0} events/s",
        MESSAGES as f64 / elapsed,
        events as f64 / elapsed
    );
}

/// A queue of the emulator as the acknowledgement compliance check's
/// upstream: fed by sending messages, committed when none is left (visible
/// or in flight).
struct Queue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    queue: Arc<SqsQueue>,
}

impl AckedUpstream for Queue {
    type Source = SqsSource;

    fn source(&self) -> impl FnMut() -> SqsSource + Send + 'static {
        let queue = self.queue.clone();
        move || queue.source()
    }

    async fn feed(&mut self, line: &str) {
        send_bodies(&self.sqs, &self.url, &[line.to_string()]).await;
    }

    async fn committed(&mut self) -> bool {
        queue_depth(&self.sqs, &self.url).await == 0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_delete_delivered_messages_and_return_failed_ones() {
    let (aws_config, sdk) = aws().await;
    let sqs = aws_config.sqs_client(&sdk);
    let url = create_queue(&sqs, &unique("acks"), None).await;
    let queue = SqsQueue::new(sqs.clone(), test_config(&url)).unwrap();
    let mut upstream = Queue {
        sqs,
        url,
        queue: queue.clone(),
    };
    check_acknowledgements(&mut upstream, "sqs", Duration::from_secs(30)).await;
    assert!(queue.settled(Duration::from_secs(10)).await);
}
