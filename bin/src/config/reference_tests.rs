//! The reference, the docs page and the default file against the code.

use std::collections::BTreeSet;

use serde_json::Value;

use super::reference::{markdown, sections};
use super::{DEFAULT_CONFIG_TOML, SpateConfig};

/// Every key path of the reference (`lake.s3.bucket`, `sources.sqs.queue_url`).
fn reference_keys() -> BTreeSet<String> {
    sections(&spate_operators::sources::supported_sources())
        .into_iter()
        .flat_map(|s| {
            s.keys
                .into_iter()
                .map(move |k| format!("{}.{}", s.path, k.name))
        })
        .map(|k| k.trim_start_matches('.').to_string())
        .collect()
}

/// Leaf key paths of a JSON value (arrays of tables counted through their
/// first element).
fn leaves(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, v, out);
            }
        }
        Value::Array(items) if items.first().is_some_and(Value::is_object) => {
            leaves(prefix, &items[0], out);
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// A configuration with every optional table present, serialized: an
/// enumeration of the keys independent of the schema.
fn every_key_by_serde() -> BTreeSet<String> {
    use spate_operators::alerts::outputs::webhook::WebhookConfig;
    use spate_operators::sinks::dynamo_hot::DynamoHotConfig;
    use spate_operators::sinks::lake::StagingCompression;
    use spate_operators::sinks::s3_lake::S3LakeConfig;
    use spate_operators::sinks::sns::SnsConfig;

    let mut config = SpateConfig::default();
    config.lake.path = Some("/lake".into());
    let mut s3 = S3LakeConfig::new("bucket");
    s3.glue = Some(spate_operators::sinks::s3_lake::glue::GlueConfig {
        database: "db".into(),
        table: "logs".into(),
    });
    config.lake.s3 = Some(s3);
    config.hot.path = Some("/hot.db".into());
    config.hot_dynamodb = Some(DynamoHotConfig::new("table"));
    config.journal.dir = Some("/journal".into());
    config.alerts.file = Some("/alerts.ndjson".into());
    config.alerts.sns = Some(SnsConfig {
        topic_arn: "arn:x".into(),
    });
    config.alerts.webhook = Some(WebhookConfig {
        bearer_token: Some("t".into()),
        bearer_token_secret: Some("s".into()),
        bearer_token_secret_key: Some("k".into()),
        ..WebhookConfig::default()
    });
    config.alerts.pagerduty = Some(
        serde_json::from_value(serde_json::json!({
            "routing_key": "k", "routing_key_secret": "s", "routing_key_secret_key": "k"
        }))
        .unwrap(),
    );
    config.alerts.routes = vec![
        serde_json::from_value(serde_json::json!({
            "services": ["s"], "severities": ["CRITICAL"], "rules": ["r"], "tags": ["t"],
            "outputs": ["pagerduty"], "continue": true, "repeat": "1h"
        }))
        .unwrap(),
    ];
    let mut oidc = crate::console::config::OidcConfig::new("https://i", "c");
    oidc.jwks_url = Some("https://j".into());
    oidc.authorization_endpoint = Some("https://a".into());
    oidc.token_endpoint = Some("https://t".into());
    oidc.redirect_uri = Some("https://r".into());
    oidc.client_secret_env = Some("S".into());
    config.console.oidc = Some(oidc);
    config.windows.shared = Some(true);
    config.aws.region = Some("r".into());
    config.aws.endpoint_url = Some("http://e".into());
    config.http.auth_token = Some("t".into());
    config.http.auth_token_env = Some("T".into());
    config.enrich.table = Some("/hosts.csv".into());
    config.lake.seal_threads = Some(1);
    config.lake.staging_compression = Some(StagingCompression::Lz4);
    config.classify.tags = vec![
        serde_json::from_value(serde_json::json!({"name": "oom", "keywords": ["oom"]})).unwrap(),
    ];
    let mut json = serde_json::to_value(&config).unwrap();
    json["aws"]["endpoints"] = serde_json::json!({
        "sqs": "x", "s3": "x", "sns": "x", "kinesis": "x", "dynamodb": "x", "secretsmanager": "x",
        "glue": "x"
    });
    json["metrics"]["emf"]["dimensions"] = serde_json::json!({});
    json["alerts"]["webhook"]["headers"] = serde_json::json!({});
    // Every optional key of a rule.
    json["alerts"]["rules"] = serde_json::json!([{
        "name": "x", "kind": "tag", "threshold": 1.0, "min_events": 1,
        "tag": "t", "service": "s", "severity": "ERROR", "metric": "tag", "k": 4.0,
        "min_history": "2d", "seasonality": "daily", "direction": "both", "labels": ["l"],
        "min_active_windows": 3, "rhythm_windows": 12
    }]);
    let mut keys = BTreeSet::new();
    leaves("", &json, &mut keys);
    // A tag rule holds one of keywords, regex or metric_filter.
    keys.insert("classify.tags.regex".into());
    keys.insert("classify.tags.metric_filter".into());
    for kind in spate_operators::sources::supported_sources().kinds() {
        let mut source = BTreeSet::new();
        leaves(
            &format!("sources.{}", kind.kind()),
            &kind.default_json(),
            &mut source,
        );
        keys.extend(source);
    }
    keys
}

#[test]
fn the_reference_lists_every_key_of_every_config_struct() {
    let reference = reference_keys();
    let by_serde = every_key_by_serde();
    let missing: Vec<&String> = by_serde.difference(&reference).collect();
    assert!(
        missing.is_empty(),
        "keys missing from the reference: {missing:?}"
    );
    let extra: Vec<&String> = reference.difference(&by_serde).collect();
    assert!(extra.is_empty(), "reference keys no struct has: {extra:?}");
    let text = markdown(&spate_operators::sources::supported_sources());
    for key in &reference {
        let name = key.rsplit('.').next().unwrap();
        assert!(text.contains(&format!("**`{name}`**")), "{key} not printed");
    }
}

#[test]
fn the_docs_page_is_the_generated_reference() {
    let generated = markdown(&spate_operators::sources::supported_sources());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let page = std::fs::read_to_string(path).unwrap_or_default();
    if page != generated && std::env::var_os("SPATE_UPDATE_DOCS").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    assert!(
        page == generated,
        "docs/configuration.md is stale: run `spate config reference > docs/configuration.md` \
         (or this test with SPATE_UPDATE_DOCS=1)"
    );
}

/// `(section, key)` pairs written in the default file, commented or not.
fn default_file_keys() -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in DEFAULT_CONFIG_TOML.lines() {
        let line = line.trim_start_matches('#').trim();
        if line.starts_with('[') && line.ends_with(']') && !line.contains(' ') {
            section = line.trim_matches(['[', ']']).to_string();
            // A table-valued key may be shown as its own table.
            keys.insert(section.clone());
            continue;
        }
        if let Some((key, _)) = line.split_once(" = ")
            && !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            keys.insert(if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    keys
}

#[test]
fn the_default_file_shows_every_key() {
    let written = default_file_keys();
    let missing: Vec<String> = reference_keys()
        .into_iter()
        .filter(|k| !written.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from bin/src/default_config.toml: {missing:?}"
    );
}
