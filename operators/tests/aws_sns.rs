//! The SNS alert publisher against the local emulator: a topic with SQS
//! subscriptions, one of them filtered by severity.

use spate_test_support::emulator::{aws, create_queue, queue_arn};

use spate_operators::alerts::record::{AlertRecord, AlertState};
use spate_operators::sinks::sns::{SnsConfig, SnsPublisher};
use spate_test_support::unique;

fn alert(severity: &str, service: &str) -> AlertRecord {
    AlertRecord {
        id: format!("error_burst:{service}:0:firing"),
        rule: "error_burst".into(),
        service: service.into(),
        state: AlertState::Firing,
        severity: severity.into(),
        window_start_ms: 1_763_892_000_000,
        window_end_ms: 1_763_892_300_000,
        raised_at_ms: 1_763_892_300_500,
        value: 12.0,
        threshold: 10.0,
        message: "12 errors in 5 min".into(),
    }
}

async fn receive_all(sqs: &aws_sdk_sqs::Client, url: &str, wait_secs: i32) -> Vec<String> {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_secs)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_reaches_subscribers_with_filterable_attributes() {
    let (aws_config, sdk) = aws().await;
    let sns = aws_config.sns_client(&sdk);
    let sqs = aws_config.sqs_client(&sdk);
    let topic_arn = sns
        .create_topic()
        .name(unique("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let all = create_queue(&sqs, &unique("all-alerts"), None).await;
    let pager = create_queue(&sqs, &unique("pager"), None).await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(&sqs, &all).await)
        .send()
        .await
        .unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn(&sqs, &pager).await)
        .attributes("FilterPolicy", r#"{"severity": ["CRITICAL"]}"#)
        .send()
        .await
        .unwrap();

    let publisher = SnsPublisher::new(
        sns,
        &SnsConfig {
            topic_arn: topic_arn.clone(),
        },
    )
    .unwrap();
    publisher.publish(&alert("ERROR", "api")).await.unwrap();

    let bodies = receive_all(&sqs, &all, 2).await;
    assert_eq!(bodies.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    assert_eq!(envelope["Subject"], "[FIRING] ERROR error_burst: api");
    let message: AlertRecord = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message, alert("ERROR", "api"));
    let attrs = &envelope["MessageAttributes"];
    for (name, value) in [
        ("service", "api"),
        ("severity", "ERROR"),
        ("rule", "error_burst"),
        ("state", "firing"),
    ] {
        assert_eq!(attrs[name]["Type"], "String", "{name}");
        assert_eq!(attrs[name]["Value"], value, "{name}");
    }
    assert!(
        receive_all(&sqs, &pager, 0).await.is_empty(),
        "filtered out"
    );

    publisher.publish(&alert("CRITICAL", "db")).await.unwrap();
    let paged = receive_all(&sqs, &pager, 2).await;
    assert_eq!(paged.len(), 1, "the filter policy matched severity");
    let envelope: serde_json::Value = serde_json::from_str(&paged[0]).unwrap();
    assert_eq!(envelope["MessageAttributes"]["service"]["Value"], "db");
}
