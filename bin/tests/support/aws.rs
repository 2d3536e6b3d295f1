//! The local AWS emulator (moto) the AWS tests run against: `bash
//! scripts/test.sh` starts it and exports `SPATE_TEST_AWS_ENDPOINT` with test
//! credentials; without it the AWS tests fail rather than skip.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// A name no other test (or earlier run against the same emulator) uses;
/// lowercase, so it is a valid bucket name.
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

/// Runs `f` with an S3 client of the emulator, on a runtime of its own (the
/// tests that call it are synchronous: they run the `spate` binary).
pub fn with_s3<T>(f: impl AsyncFnOnce(aws_sdk_s3::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = AwsConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint()),
            ..AwsConfig::default()
        };
        let sdk = config.load().await;
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
/// the keys `[lake.s3]` would give a local lake directory.
pub fn objects_of_dir(dir: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    super::walk(dir)
        .into_iter()
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
         ARGS = json.loads(sys.argv[1])\n\
         kw = dict(endpoint_url=sys.argv[2], region_name='us-east-1',\n\
                   aws_access_key_id='test', aws_secret_access_key='test')\n\
         sqs = boto3.client('sqs', **kw)\n\
         s3 = boto3.client('s3', **kw)\n\
         sns = boto3.client('sns', **kw)\n\
         kinesis = boto3.client('kinesis', **kw)\n\
         ddb = boto3.client('dynamodb', **kw)\n\
         secrets = boto3.client('secretsmanager', **kw)\n\
         glue = boto3.client('glue', **kw)\n\
         {snippet}\n"
    );
    let out = std::process::Command::new(super::python())
        .arg("-c")
        .arg(script)
        .arg(args.to_string())
        .arg(endpoint())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
