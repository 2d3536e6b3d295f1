//! Email and SMS alert subscriptions of the console through SNS, against a
//! real `spate run` with `[alerts.sns]` on the emulator's (moto) topic: a
//! viewer signs in (the HTTP forms, as a browser posts them), a malformed
//! address or number is refused with a clear message, an email and an SMS
//! subscription become SNS subscriptions whose filter policies (on the
//! `service` and `severity` message attributes) `GetSubscriptionAttributes`
//! shows; an SQS queue subscribed with the same filter policy receives the
//! matching alert message and not the others; the admin sees everyone's
//! subscriptions; unsubscribing removes the SNS subscription; all of it is
//! audited.

mod support;

use serde_json::{Value, json};
use spate_test_support::console::{Browser, add_user, query};
use spate_test_support::emulator::{aws_section, boto};
use spate_test_support::service::Service;
use spate_test_support::unique;

const TOKEN: &str = "t0ken";

/// The topic's subscriptions: endpoint → (protocol, arn, attributes).
fn topic_subscriptions(topic: &str) -> Value {
    boto(
        r#"
out = {}
for s in sns.list_subscriptions_by_topic(TopicArn=ARGS['topic'])['Subscriptions']:
    attrs = sns.get_subscription_attributes(SubscriptionArn=s['SubscriptionArn'])['Attributes']
    out[s['Endpoint']] = {'protocol': s['Protocol'], 'arn': s['SubscriptionArn'], 'attributes': attrs}
print(json.dumps(out))
"#,
        &json!({ "topic": topic }),
    )
}

#[test]
fn email_and_sms_subscriptions_are_sns_subscriptions_with_filter_policies() {
    let topic = boto(
        "print(json.dumps(sns.create_topic(Name=ARGS['name'])['TopicArn']))",
        &json!({ "name": unique("spate-alerts") }),
    );
    let topic = topic.as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(support::SPATE, &data, "ada", "admin", "admin-pass-9f2k");
    add_user(support::SPATE, &data, "vic", "viewer", "viewer-pass-3u8q");
    let config = format!(
        "{}[http]\nauth_token = \"{TOKEN}\"\n[alerts.sns]\ntopic_arn = \"{topic}\"\n",
        aws_section()
    );
    let service = Service::start(support::SPATE, &data, &config);
    let vic = Browser::sign_in(&service.url, "vic", "viewer-pass-3u8q");
    let (_, page) = vic.get("/ui/subscriptions");
    assert!(page.contains(r#"id="sns-subscribe-form""#), "{page}");
    assert!(page.contains(&topic), "{page}");

    // Malformed addresses and numbers are refused with what is wrong.
    let sns = "/ui/subscriptions/sns";
    for (protocol, endpoint, says) in [
        ("email", "vic at example.com", "is not an email address"),
        ("email", "+14155550123", "is not an email address"),
        ("sms", "4155550123", "E.164"),
        ("sms", "+1 415 555 0123", "E.164"),
        ("pager", "x", "email or sms"),
    ] {
        let (status, body) = vic.post(
            sns,
            &[
                ("protocol", protocol),
                ("endpoint", endpoint),
                ("services", ""),
                ("severities", ""),
            ],
        );
        assert_eq!(status, 400, "{protocol} {endpoint}");
        assert!(body.contains(says), "{protocol} {endpoint}: {body}");
    }
    let (status, body) = vic.post(
        sns,
        &[
            ("protocol", "email"),
            ("endpoint", "vic@example.com"),
            ("severities", "FATAL"),
        ],
    );
    assert_eq!(status, 400);
    assert!(body.contains("unknown severity"), "{body}");
    // Without the CSRF token: refused.
    let (forged, _) = vic.post_as_is(
        sns,
        &[("protocol", "email"), ("endpoint", "evil@example.com")],
    );
    assert_eq!(forged, 403);
    assert_eq!(topic_subscriptions(&topic), json!({}));

    // Good ones become SNS subscriptions with the filter policy.
    let (status, _) = vic.post(
        sns,
        &[
            ("protocol", "email"),
            ("endpoint", "vic@example.com"),
            ("services", "pay, web"),
            ("severities", "critical"),
        ],
    );
    assert_eq!(status, 303);
    let (status, _) = vic.post(
        sns,
        &[
            ("protocol", "sms"),
            ("endpoint", "+14155550123"),
            ("services", ""),
            ("severities", "ERROR"),
        ],
    );
    assert_eq!(status, 303);
    let subs = topic_subscriptions(&topic);
    let email = &subs["vic@example.com"];
    assert_eq!(email["protocol"], "email", "{subs}");
    let policy: Value =
        serde_json::from_str(email["attributes"]["FilterPolicy"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy,
        json!({"service": ["pay", "web"], "severity": ["CRITICAL"]})
    );
    assert_eq!(
        email["attributes"]["FilterPolicyScope"],
        "MessageAttributes"
    );
    let sms = &subs["+14155550123"];
    assert_eq!(sms["protocol"], "sms", "{subs}");
    let policy: Value =
        serde_json::from_str(sms["attributes"]["FilterPolicy"].as_str().unwrap()).unwrap();
    assert_eq!(policy, json!({"severity": ["ERROR"]}));

    // The filter matches the alert messages it should, and only those: an
    // SQS queue subscribed with the email's very filter policy receives the
    // messages published with spate's attributes.
    let received = boto(
        r#"
sqs_q = sqs.create_queue(QueueName=ARGS['queue'])['QueueUrl']
q_arn = sqs.get_queue_attributes(QueueUrl=sqs_q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sns.subscribe(TopicArn=ARGS['topic'], Protocol='sqs', Endpoint=q_arn,
    Attributes={'FilterPolicy': ARGS['policy'], 'FilterPolicyScope': ARGS['scope'],
                'RawMessageDelivery': 'true'})
for service, severity in [('pay', 'CRITICAL'), ('pay', 'ERROR'), ('api', 'CRITICAL'), ('web', 'CRITICAL')]:
    attrs = {k: {'DataType': 'String', 'StringValue': v} for k, v in
             [('service', service), ('severity', severity), ('rule', 'error_burst'), ('state', 'firing')]}
    sns.publish(TopicArn=ARGS['topic'], Message=json.dumps({'service': service, 'severity': severity}),
        Subject='[FIRING] %s error_burst: %s' % (severity, service), MessageAttributes=attrs)
got = []
for _ in range(5):
    r = sqs.receive_message(QueueUrl=sqs_q, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    got += [json.loads(m['Body']) for m in r.get('Messages', [])]
print(json.dumps(sorted([m['service'] + '/' + m['severity'] for m in got])))
"#,
        &json!({
            "topic": topic,
            "queue": unique("spate-filter"),
            "policy": email["attributes"]["FilterPolicy"],
            "scope": email["attributes"]["FilterPolicyScope"],
        }),
    );
    assert_eq!(received, json!(["pay/CRITICAL", "web/CRITICAL"]));

    // The viewer sees theirs; the admin sees everyone's.
    let (_, page) = vic.get("/ui/subscriptions");
    assert!(page.contains(r#"id="sns-subscriptions""#), "{page}");
    assert!(
        page.contains("vic@example.com") && page.contains("+14155550123"),
        "{page}"
    );
    let ada = Browser::sign_in(&service.url, "ada", "admin-pass-9f2k");
    let (_, page) = ada.get("/ui/subscriptions");
    assert!(page.contains("vic@example.com"), "{page}");

    // Unsubscribing removes the SNS subscription (the admin removes the
    // viewer's SMS one).
    let (status, _) = vic.post("/ui/subscriptions/sns/remove", &[("id", "1")]);
    assert_eq!(status, 303);
    let (status, _) = ada.post("/ui/subscriptions/sns/remove", &[("id", "2")]);
    assert_eq!(status, 303);
    let (status, _) = vic.post("/ui/subscriptions/sns/remove", &[("id", "2")]);
    assert_eq!(status, 404, "already gone");
    let left = topic_subscriptions(&topic);
    assert!(left.get("vic@example.com").is_none(), "{left}");
    assert!(left.get("+14155550123").is_none(), "{left}");
    let (_, page) = vic.get("/ui/subscriptions");
    assert!(page.contains(r#"id="sns-subscriptions-none""#), "{page}");

    // The audit trail.
    let (status, audit) = query(
        &service.url,
        "SELECT actor, action, outcome, detail FROM audit \
         WHERE action IN ('subscribe', 'unsubscribe') ORDER BY ts",
        TOKEN,
    );
    assert_eq!(status, 200, "{audit}");
    let rows: Vec<(String, String, String, String)> = audit["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_string();
            (s(0), s(1), s(2), s(3))
        })
        .collect();
    let ok = |actor: &str, action: &str, needle: &str| {
        rows.iter()
            .any(|r| r.0 == actor && r.1 == action && r.2 == "ok" && r.3.contains(needle))
    };
    assert!(ok("vic", "subscribe", "email vic@example.com"), "{rows:?}");
    assert!(ok("vic", "subscribe", "sms +14155550123"), "{rows:?}");
    assert!(ok("vic", "unsubscribe", "sns#1"), "{rows:?}");
    assert!(ok("ada", "unsubscribe", "sns#2"), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.0 == "vic" && r.1 == "subscribe" && r.2 == "denied"),
        "{rows:?}"
    );
    service.stop();
}
