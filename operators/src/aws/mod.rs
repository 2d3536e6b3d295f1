//! AWS client setup shared by the AWS sources and sinks.
//!
//! [`AwsConfig`] (`[aws]` in the config file) names the region and, for a local
//! emulator, endpoint overrides; [`AwsConfig::load`] turns it into an
//! [`aws_config::SdkConfig`] with the standard credential chain (environment,
//! profile, web identity, ECS task role, instance metadata), and the
//! `*_client` methods build per-service clients from it.
//!
//! With an endpoint override (from the config, `AWS_ENDPOINT_URL`, or
//! `AWS_ENDPOINT_URL_S3`) S3 uses path-style addressing, which emulators need.
//!
//! [`env_expand`] substitutes `${VAR}` in configuration text; [`secrets`]
//! reads values from Secrets Manager; [`request_accounting`] counts every
//! request the clients built here make (`spate_aws_requests_total`).

pub mod env_expand;
pub mod request_accounting;
pub mod secrets;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde::{Deserialize, Serialize};

use self::request_accounting::RequestAccounting;

/// `[aws]`: how Spate reaches AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region. Default: the standard chain (`AWS_REGION`, profile, instance
    /// metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint of every service (a local emulator such as
    /// `http://127.0.0.1:5000`). Default: `AWS_ENDPOINT_URL` from the
    /// environment, else the real AWS endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Per-service endpoints, overriding `endpoint_url` for one service.
    #[serde(default)]
    pub endpoints: ServiceEndpoints,
}

/// `[aws.endpoints]`: endpoint overrides per service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceEndpoints {
    /// Endpoint of SQS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs: Option<String>,
    /// Endpoint of S3 (path-style addressing is used when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    /// Endpoint of SNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<String>,
    /// Endpoint of Kinesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<String>,
    /// Endpoint of DynamoDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamodb: Option<String>,
    /// Endpoint of Secrets Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secretsmanager: Option<String>,
    /// Endpoint of Glue (the lake's partitions, `[lake.s3.glue]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glue: Option<String>,
}

impl AwsConfig {
    /// Resolves region, credentials and endpoint into the shared SDK settings.
    ///
    /// Credentials are resolved lazily, on the first request, by the standard
    /// chain; a missing region is only an error when a client makes a call.
    pub async fn load(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        loader.load().await
    }

    /// An SQS client.
    pub fn sqs_client(&self, sdk: &SdkConfig) -> aws_sdk_sqs::Client {
        let mut builder = aws_sdk_sqs::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.sqs {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_sqs::Client::from_conf(builder.build())
    }

    /// An S3 client; path-style addressing whenever an endpoint is overridden.
    pub fn s3_client(&self, sdk: &SdkConfig) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.s3 {
            builder = builder.endpoint_url(url.clone());
        }
        let overridden = self.endpoints.s3.is_some()
            || sdk.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        if overridden {
            builder = builder.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// An SNS client.
    pub fn sns_client(&self, sdk: &SdkConfig) -> aws_sdk_sns::Client {
        let mut builder = aws_sdk_sns::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.sns {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_sns::Client::from_conf(builder.build())
    }

    /// A Kinesis client.
    pub fn kinesis_client(&self, sdk: &SdkConfig) -> aws_sdk_kinesis::Client {
        let mut builder =
            aws_sdk_kinesis::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.kinesis {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_kinesis::Client::from_conf(builder.build())
    }

    /// A DynamoDB client.
    pub fn dynamodb_client(&self, sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
        let mut builder =
            aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.dynamodb {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }

    /// A Secrets Manager client.
    pub fn secretsmanager_client(&self, sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
        let mut builder =
            aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.secretsmanager {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    }

    /// A Glue client.
    pub fn glue_client(&self, sdk: &SdkConfig) -> aws_sdk_glue::Client {
        let mut builder = aws_sdk_glue::config::Builder::from(sdk).interceptor(RequestAccounting);
        if let Some(url) = &self.endpoints.glue {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_glue::Client::from_conf(builder.build())
    }
}

/// The AWS settings with the SDK configuration loaded once: the clients of
/// every service, sharing credentials and HTTP connections.
#[derive(Debug, Clone)]
pub struct AwsClients {
    config: AwsConfig,
    sdk: SdkConfig,
}

impl AwsClients {
    /// Loads the SDK configuration for `config` ([`AwsConfig::load`]).
    pub async fn load(config: &AwsConfig) -> Self {
        AwsClients {
            sdk: config.load().await,
            config: config.clone(),
        }
    }

    /// The loaded SDK configuration.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// An SQS client.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        self.config.sqs_client(&self.sdk)
    }

    /// An S3 client (path-style with an endpoint override).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.config.s3_client(&self.sdk)
    }

    /// An SNS client.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        self.config.sns_client(&self.sdk)
    }

    /// A Kinesis client.
    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        self.config.kinesis_client(&self.sdk)
    }

    /// A DynamoDB client.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.config.dynamodb_client(&self.sdk)
    }

    /// A Secrets Manager client.
    pub fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        self.config.secretsmanager_client(&self.sdk)
    }

    /// A Glue client.
    pub fn glue(&self) -> aws_sdk_glue::Client {
        self.config.glue_client(&self.sdk)
    }
}

/// The last path segment of an SQS queue URL: its name.
///
/// ```
/// use spate_operators::aws::queue_name;
/// assert_eq!(queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/logs"), "logs");
/// assert_eq!(queue_name("logs"), "logs");
/// ```
pub fn queue_name(queue_url: &str) -> &str {
    let trimmed = queue_url.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_with_per_service_endpoints() {
        let config: AwsConfig = serde_json::from_value(serde_json::json!({
            "region": "eu-west-1",
            "endpoint_url": "http://127.0.0.1:5000",
            "endpoints": { "s3": "http://127.0.0.1:9000" }
        }))
        .unwrap();
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            config.endpoints.s3.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(config.endpoints.sqs, None);
        let unknown = serde_json::from_value::<AwsConfig>(serde_json::json!({ "regoin": "x" }));
        assert!(unknown.is_err(), "unknown fields are rejected");
    }

    #[test]
    fn default_equals_empty_table() {
        let parsed: AwsConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(parsed, AwsConfig::default());
    }

    #[tokio::test]
    async fn explicit_region_and_endpoint_reach_the_clients() {
        let config = AwsConfig {
            region: Some("eu-central-1".into()),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            endpoints: ServiceEndpoints::default(),
        };
        let sdk = config.load().await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-central-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        let sqs = config.sqs_client(&sdk);
        assert_eq!(
            sqs.config().region().map(|r| r.as_ref()),
            Some("eu-central-1")
        );
        let kinesis = config.kinesis_client(&sdk);
        assert_eq!(
            kinesis.config().region().map(|r| r.as_ref()),
            Some("eu-central-1")
        );
        let dynamodb = config.dynamodb_client(&sdk);
        assert_eq!(
            dynamodb.config().region().map(|r| r.as_ref()),
            Some("eu-central-1")
        );
    }

    #[test]
    fn queue_name_is_last_segment() {
        assert_eq!(queue_name("http://127.0.0.1:5000/123456789012/q-1/"), "q-1");
    }
}
