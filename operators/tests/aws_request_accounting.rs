//! The request accounting of every AWS client against the local emulator:
//! the counters match the calls the test makes, by service and operation,
//! with the bytes of the bodies, and a refused call counts as an error.

use spate_test_support::emulator::aws;

use spate_engine::PrometheusExporter;
use spate_operators::aws::AwsClients;
use spate_operators::metric_catalog::AWS;
use spate_test_support::unique;

/// The value of the sample of `family` with exactly `labels` (as rendered,
/// in order), or 0.
fn sample(text: &str, family: &str, labels: &str) -> f64 {
    let series = format!("{family}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_match_the_calls_made() {
    // The only test of this binary: the process-wide recorder is its own.
    let exporter = PrometheusExporter::install_with(&[AWS]).unwrap();
    let (config, _) = aws().await;
    let clients = AwsClients::load(&config).await;
    let (sqs, s3) = (clients.sqs(), clients.s3());

    let queue = sqs
        .create_queue()
        .queue_name(unique("acct"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(format!("message {i}"))
            .send()
            .await
            .unwrap();
    }
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(!received.messages().is_empty());
    let missing = sqs
        .get_queue_url()
        .queue_name(unique("no-such-queue"))
        .send()
        .await;
    assert!(missing.is_err());

    let bucket = unique("acct");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key("k")
        .body(vec![7u8; 1000].into())
        .send()
        .await
        .unwrap();

    let text = exporter.render();
    let requests = |service: &str, op: &str| {
        sample(
            &text,
            "spate_aws_requests_total",
            &format!("service=\"{service}\",operation=\"{op}\""),
        )
    };
    assert_eq!(requests("sqs", "CreateQueue"), 1.0, "{text}");
    assert_eq!(requests("sqs", "SendMessage"), 3.0, "{text}");
    assert_eq!(requests("sqs", "ReceiveMessage"), 1.0, "{text}");
    assert_eq!(requests("sqs", "GetQueueUrl"), 1.0, "{text}");
    assert_eq!(requests("s3", "CreateBucket"), 1.0, "{text}");
    assert_eq!(requests("s3", "PutObject"), 1.0, "{text}");
    // The refused call is the only error.
    assert_eq!(
        sample(
            &text,
            "spate_aws_request_errors_total",
            "service=\"sqs\",operation=\"GetQueueUrl\""
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("spate_aws_request_errors_total{"))
            .count(),
        1,
        "{text}"
    );
    // The object's body went up; the received messages came back.
    let bytes = |service: &str, op: &str, direction: &str| {
        sample(
            &text,
            "spate_aws_request_bytes_total",
            &format!("service=\"{service}\",operation=\"{op}\",direction=\"{direction}\""),
        )
    };
    assert_eq!(bytes("s3", "PutObject", "sent"), 1000.0, "{text}");
    assert!(
        bytes("sqs", "ReceiveMessage", "received") > "message 0".len() as f64,
        "{text}"
    );
    assert!(bytes("sqs", "SendMessage", "sent") > 0.0, "{text}");
}
