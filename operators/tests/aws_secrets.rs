//! The webhook bearer token from Secrets Manager, against the local emulator:
//! a plain secret and a JSON one are read at startup and sent as the
//! `Authorization` header; a missing secret is an error naming it. The
//! PagerDuty routing key likewise, sent in the event body.

use std::sync::{Arc, Mutex};

use spate_test_support::emulator::aws;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use spate_operators::alerts::outputs::webhook::{WebhookConfig, WebhookOutput};
use spate_operators::alerts::record::{AlertRecord, AlertState};
use spate_operators::aws::secrets::SecretError;
use spate_test_support::unique;
use tokio::sync::Notify;

fn alert() -> AlertRecord {
    AlertRecord {
        id: "critical:pay:0:firing".into(),
        rule: "critical".into(),
        service: "pay".into(),
        state: AlertState::Firing,
        severity: "CRITICAL".into(),
        window_start_ms: 1_763_892_000_000,
        window_end_ms: 1_763_892_300_000,
        raised_at_ms: 1_763_892_300_500,
        value: 1.0,
        threshold: 0.0,
        message: "1 critical".into(),
    }
}

/// A receiver recording the `Authorization` header of each request.
async fn receiver() -> (String, Arc<Mutex<Vec<Option<String>>>>, Arc<Notify>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let arrived = Arc::new(Notify::new());
    let (state, notify) = (seen.clone(), arrived.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let (seen, notify) = (state.clone(), notify.clone());
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                seen.lock().unwrap().push(auth);
                notify.notify_one();
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen, arrived)
}

/// Resolves `config`'s secret, delivers one notice, returns the header seen.
async fn delivered_authorization(
    client: &aws_sdk_secretsmanager::Client,
    config: WebhookConfig,
    seen: &Mutex<Vec<Option<String>>>,
    arrived: &Notify,
) -> Option<String> {
    config.validate().unwrap();
    let resolved = config.resolve_secret(client).await.unwrap();
    assert!(!resolved.needs_secret());
    let output = WebhookOutput::spawn(&resolved).unwrap();
    assert!(output.enqueue(&alert()));
    arrived.notified().await;
    output.close().await;
    seen.lock().unwrap().pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_read_from_secrets_manager() {
    let (aws_config, sdk) = aws().await;
    let client = aws_config.secretsmanager_client(&sdk);
    let plain = unique("hook-token");
    let created = client
        .create_secret()
        .name(&plain)
        .secret_string("plain-s3cret\n")
        .send()
        .await
        .expect("create secret");
    let arn = created.arn().unwrap().to_string();
    let json = unique("hook-json");
    client
        .create_secret()
        .name(&json)
        .secret_string(r#"{"user":"spate","token":"json-s3cret"}"#)
        .send()
        .await
        .expect("create secret");
    let (url, seen, arrived) = receiver().await;

    // By ARN, the whole (trimmed) secret string.
    let config = WebhookConfig {
        url: url.clone(),
        bearer_token_secret: Some(arn),
        ..WebhookConfig::default()
    };
    assert_eq!(
        delivered_authorization(&client, config, &seen, &arrived)
            .await
            .as_deref(),
        Some("Bearer plain-s3cret")
    );

    // By name, one key of a JSON secret.
    let config = WebhookConfig {
        url,
        bearer_token_secret: Some(json),
        bearer_token_secret_key: Some("token".into()),
        ..WebhookConfig::default()
    };
    assert_eq!(
        delivered_authorization(&client, config, &seen, &arrived)
            .await
            .as_deref(),
        Some("Bearer json-s3cret")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_or_key_is_an_error_naming_it() {
    let (aws_config, sdk) = aws().await;
    let client = aws_config.secretsmanager_client(&sdk);
    let missing = unique("no-such-secret");
    let config = WebhookConfig {
        url: "http://127.0.0.1:1/hook".into(),
        bearer_token_secret: Some(missing.clone()),
        ..WebhookConfig::default()
    };
    let err = config.resolve_secret(&client).await.unwrap_err();
    assert!(matches!(err, SecretError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing), "{err}");

    let name = unique("hook-json");
    client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"user":"spate"}"#)
        .send()
        .await
        .expect("create secret");
    let config = WebhookConfig {
        url: "http://127.0.0.1:1/hook".into(),
        bearer_token_secret: Some(name.clone()),
        bearer_token_secret_key: Some("token".into()),
        ..WebhookConfig::default()
    };
    let err = config.resolve_secret(&client).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("secret {name}: has no key \"token\"")
    );
}

/// The PagerDuty routing key from a JSON secret: resolved at startup, sent
/// in the event body of a trigger, and never in the config's debug form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_routing_key_is_read_from_secrets_manager() {
    use spate_operators::alerts::outputs::pagerduty::{PagerDutyConfig, PagerDutyOutput};

    let (aws_config, sdk) = aws().await;
    let client = aws_config.secretsmanager_client(&sdk);
    let name = unique("pagerduty");
    client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"routing_key":"R0UTING-key"}"#)
        .send()
        .await
        .expect("create secret");
    let bodies = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let arrived = Arc::new(Notify::new());
    let (state, notify) = (bodies.clone(), arrived.clone());
    let app = Router::new().route(
        "/v2/enqueue",
        post(move |body: String| {
            let (seen, notify) = (state.clone(), notify.clone());
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                notify.notify_one();
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config: PagerDutyConfig = serde_json::from_value(serde_json::json!({
        "routing_key_secret": name,
        "routing_key_secret_key": "routing_key",
        "url": format!("http://{addr}/v2/enqueue"),
    }))
    .unwrap();
    config.validate().unwrap();
    assert!(config.needs_secret());
    let resolved = config.resolve_secret(&client).await.unwrap();
    assert!(!resolved.needs_secret());
    assert!(!format!("{resolved:?}").contains("R0UTING"), "{resolved:?}");
    let output = PagerDutyOutput::spawn(&resolved).unwrap();
    output.enqueue_all(&[alert()]);
    arrived.notified().await;
    output.close().await;
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies[0]["routing_key"], "R0UTING-key");
    assert_eq!(bodies[0]["event_action"], "trigger");
    assert_eq!(bodies[0]["dedup_key"], "spate/critical/pay");
}
