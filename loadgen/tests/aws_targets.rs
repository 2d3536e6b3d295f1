//! `loadgen send --target sqs` and `--target kinesis` against the local AWS emulator (moto,
//! started by `scripts/test.sh`, which exports `SPATE_TEST_AWS_ENDPOINT`): what arrives in the
//! queue and the stream is every event of the run, packed as asked.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use spate_operators::aws::{AwsClients, AwsConfig};
use spate_operators::sources::kinesis::kpl;

fn endpoint() -> String {
    match std::env::var("SPATE_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SPATE_TEST_AWS_ENDPOINT is not set: the AWS tests need the local emulator; \
             run them with `bash scripts/test.sh`, which starts moto and sets it"
        ),
    }
}

async fn clients() -> AwsClients {
    let config = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        ..AwsConfig::default()
    };
    AwsClients::load(&config).await
}

/// Runs `loadgen send ARGS --json` against the emulator; returns its report.
fn send(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("send")
        .args(args)
        .arg("--json")
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The `lg_seq` of each W1 line in `lines`.
fn seqs<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<u64> {
    lines
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["lg_seq"].as_u64().unwrap()
        })
        .collect()
}

/// The log event messages of a CloudWatch Logs subscription payload (base64 of gzip JSON).
fn log_events(body: &str) -> Vec<String> {
    let gzip = STANDARD.decode(body).unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_string(&mut json)
        .unwrap();
    let payload: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(payload["messageType"], "DATA_MESSAGE");
    payload["logEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_messages_are_cloudwatch_payloads_of_every_event() {
    let sqs = clients().await.sqs();
    let queue = sqs
        .create_queue()
        .queue_name(unique("lg-sqs"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let report = send(&[
        "--target",
        "sqs",
        "--queue-url",
        &queue,
        "--rate",
        "600",
        "--duration",
        "1s",
        "--batch-events",
        "100",
        "--events-per-message",
        "30",
        "--message-format",
        "cloudwatch",
        "--run-id",
        "t-sqs",
    ]);
    assert_eq!(report["acknowledged"], 600, "{report}");
    assert_eq!(report["failed"], 0, "{report}");

    let mut found = Vec::new();
    let mut largest = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if out.messages().is_empty() {
            break;
        }
        for message in out.messages() {
            let events = log_events(message.body().unwrap());
            largest = largest.max(events.len());
            found.extend(seqs(events.iter().map(String::as_str)));
            sqs.delete_message()
                .queue_url(&queue)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(largest, 30);
    found.sort_unstable();
    assert_eq!(found, (0..600).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_kpl_records_hold_every_event() {
    let kinesis = clients().await.kinesis();
    let stream = unique("lg-kinesis");
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(2)
        .send()
        .await
        .unwrap();
    let report = send(&[
        "--target",
        "kinesis",
        "--stream",
        &stream,
        "--kpl",
        "--rate",
        "1000",
        "--duration",
        "1s",
        "--batch-events",
        "250",
        "--events-per-message",
        "10",
        "--run-id",
        "t-kinesis",
    ]);
    assert_eq!(report["acknowledged"], 1000, "{report}");
    assert_eq!(report["target"], format!("kinesis:{stream} (kpl)"));

    let shards = kinesis
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    let (mut records, mut found) = (0, BTreeSet::new());
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(current) = iterator {
            let out = kinesis
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            if out.records().is_empty() {
                break;
            }
            for record in out.records() {
                records += 1;
                let messages = kpl::deaggregate(record.data().as_ref()).expect("a KPL record");
                for message in messages {
                    let text = std::str::from_utf8(message).unwrap();
                    assert_eq!(text.lines().count(), 10);
                    found.extend(seqs(text.lines()));
                }
            }
            iterator = out.next_shard_iterator;
        }
    }
    // 1,000 events, 10 a message, all messages of a 250-event batch in one record.
    assert_eq!(records, 4);
    assert_eq!(found, (0..1000).collect::<BTreeSet<_>>());
}
