//! The local AWS emulator (moto) the AWS tests run against: `bash
//! scripts/test.sh` (or `/work/tools/with-env.sh`) starts it and exports
//! `SPATE_TEST_AWS_ENDPOINT` with test credentials; without it the AWS tests
//! fail rather than skip. Clients of it (the real SDK), and boto3 snippets
//! for what the tests set up or read back.

use std::path::Path;

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use spate_operators::aws::AwsConfig;

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

/// The `[aws]` section that points `spate` at the emulator.
pub fn aws_section() -> String {
    format!(
        "[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n",
        endpoint()
    )
}

/// Runs `f` with an S3 client of the emulator, on a runtime of its own (the
/// tests that call it are synchronous: they run the `spate` binary).
pub fn with_s3<T>(f: impl AsyncFnOnce(aws_sdk_s3::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (config, sdk) = aws().await;
        f(config.s3_client(&sdk)).await
    })
}

/// Creates `bucket`.
pub fn create_bucket(bucket: &str) {
    with_s3(async |s3| {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    });
}

/// Uploads `objects` (key, body) to `bucket`.
pub fn put_objects(bucket: &str, objects: &[(String, Vec<u8>)]) {
    with_s3(async |s3| {
        for (key, body) in objects {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(ByteStream::from(body.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        }
    });
}

/// Every file under `dir` as `(<prefix><path relative to dir>, contents)`,
/// the keys `[lake.s3]` would give a local lake directory (whose dedup
/// indexes, `dedup/`, stay on the writer's disk).
pub fn objects_of_dir(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    crate::lake::walk(dir)
        .into_iter()
        .filter(|path| !path.strip_prefix(dir).unwrap().starts_with("dedup"))
        .map(|path| {
            let relative = path.strip_prefix(dir).unwrap().to_string_lossy();
            (format!("{prefix}{relative}"), std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Runs a boto3 snippet against the emulator (boto3 comes with moto in the
/// test virtualenv) and returns the one JSON value it prints. The snippet
/// has `ARGS` (the JSON `args`) and clients `sqs`, `s3`, `sns`, `kinesis`,
/// `ddb` and `secrets`.
pub fn boto(snippet: &str, args: &serde_json::Value) -> serde_json::Value {
    let script = format!(
        "import boto3, json, sys, time\n\
         ARGS = json.loads(sys.stdin.read())\n\
         kw = dict(endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                   aws_access_key_id='test', aws_secret_access_key='test')\n\
         sqs = boto3.client('sqs', **kw)\n\
         s3 = boto3.client('s3', **kw)\n\
         sns = boto3.client('sns', **kw)\n\
         kinesis = boto3.client('kinesis', **kw)\n\
         ddb = boto3.client('dynamodb', **kw)\n\
         secrets = boto3.client('secretsmanager', **kw)\n\
         glue = boto3.client('glue', **kw)\n\
         {snippet}\n\
         sys.stdout.flush()\n\
         sys.stderr.flush()\n\
         # Skip the interpreter's teardown: pyarrow's threads sometimes abort\n\
         # it (\"terminate called without an active exception\") after the\n\
         # answer was printed.\n\
         import os\n\
         os._exit(0)\n"
    );
    // The arguments go on stdin: a command-line argument holds at most 128 KiB.
    let mut child = std::process::Command::new(crate::lake::python())
        .arg("-c")
        .arg(script)
        .arg(endpoint())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = args.to_string();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(input.as_bytes())
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Ten SQS message bodies of 100 NDJSON events each, stamped from 20 minutes
/// ago: `pay` logs 3 criticals in one 5-minute window (and a warning every
/// tenth event), `web` the rest at info, and the last message moves event time
/// two windows on, so that window closes and its alert fires. Returns the
/// start of the criticals' window (ms) with the bodies.
pub fn alerting_messages() -> (i64, Vec<String>) {
    let window = 300_000i64;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 4 * window;
    let mut messages = Vec::new();
    for m in 0..10i64 {
        let mut lines = Vec::new();
        for i in 0..100i64 {
            let ts = if m == 9 {
                w0 + 2 * window + 70_000 + i
            } else {
                w0 + m * 1000 + i
            };
            let (service, level) = if m == 0 && i < 3 {
                ("pay", "critical")
            } else if i % 10 == 0 {
                ("pay", "warning")
            } else {
                ("web", "info")
            };
            lines.push(
                serde_json::json!({"ts": ts, "level": level, "service": service, "message": format!("m{m} e{i}")})
                    .to_string(),
            );
        }
        messages.push(lines.join("\n"));
    }
    (w0, messages)
}

/// Sends each of `messages` as one SQS message to `queue` (a queue URL).
pub fn send_messages(queue: &serde_json::Value, messages: &[String]) {
    boto(
        r#"
for body in ARGS['messages']:
    sqs.send_message(QueueUrl=ARGS['queue'], MessageBody=body)
print('null')
"#,
        &serde_json::json!({ "queue": queue, "messages": messages }),
    );
}

/// Waits up to `secs` seconds until `queue` (a queue URL) holds no message,
/// visible or in flight; whether it drained.
pub fn wait_drained(queue: &serde_json::Value, secs: u64) -> bool {
    let drained = boto(
        r#"
deadline = time.time() + ARGS['secs']
while time.time() < deadline:
    a = sqs.get_queue_attributes(QueueUrl=ARGS['queue'], AttributeNames=['All'])['Attributes']
    if int(a['ApproximateNumberOfMessages']) + int(a['ApproximateNumberOfMessagesNotVisible']) == 0:
        print('true'); break
    time.sleep(0.2)
else:
    print('false')
"#,
        &serde_json::json!({ "queue": queue, "secs": secs }),
    );
    drained == true
}

/// The `[aws]` table of the emulator and one `[[sources.sqs]]` table reading
/// `queue` (a queue URL) with 1 s long polls, its last line open for more
/// keys of the source.
pub fn sqs_source_config(queue: &serde_json::Value) -> String {
    format!(
        "\n[aws]\nendpoint_url = \"{}\"\nregion = \"us-east-1\"\n\n\
         [[sources.sqs]]\nqueue_url = \"{}\"\nwait_time_secs = 1\n",
        endpoint(),
        queue.as_str().unwrap()
    )
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
