//! The SNS alert publisher: one message per alert notice.
//!
//! The message is the [`AlertRecord`] as JSON; the subject a short line
//! (`[FIRING] ERROR error_burst: api`); message attributes `service`,
//! `severity`, `rule` and `state` (all `String`) let subscriptions filter
//! (for example only `CRITICAL` to a pager). The alert router calls
//! [`SnsPublisher::publish`] and acknowledges only after it returns `Ok`.

use serde::{Deserialize, Serialize};
use spate_engine::{ActorError, ErrorClass};

use crate::alerts::record::AlertRecord;
use crate::component::ConfigError;

use aws_sdk_sns::types::MessageAttributeValue;

/// SNS allows subjects of at most 100 characters.
const MAX_SUBJECT: usize = 100;

/// `[alerts.sns]`: where alerts are published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    /// ARN of the topic (`arn:aws:sns:<region>:<account>:<name>`).
    pub topic_arn: String,
}

impl SnsConfig {
    /// Checks the settings without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.topic_arn.starts_with("arn:") {
            return Err(ConfigError::new(
                "topic_arn",
                format!("{:?} is not an arn", self.topic_arn),
            ));
        }
        Ok(())
    }
}

/// Failures of a publish.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    /// The configuration is unusable.
    #[error("sns config: {0}")]
    Config(String),
    /// The alert cannot be encoded (a bug).
    #[error("cannot encode alert {id}: {message}")]
    Encode {
        /// The alert's id.
        id: String,
        /// The encoder's error.
        message: String,
    },
    /// SNS refused the message or did not answer.
    #[error("sns publish to {topic_arn} failed: {message}")]
    Publish {
        /// The topic.
        topic_arn: String,
        /// The SDK's error.
        message: String,
    },
}

impl SnsError {
    /// Whose fault it is.
    pub fn class(&self) -> ErrorClass {
        match self {
            SnsError::Config(_) => ErrorClass::BadInput,
            SnsError::Encode { .. } => ErrorClass::Internal,
            SnsError::Publish { .. } => ErrorClass::External,
        }
    }
}

impl From<SnsError> for ActorError {
    fn from(e: SnsError) -> Self {
        ActorError::classified(e.class(), e.to_string())
    }
}

/// Publishes alert notices to one topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    /// A publisher to the configured topic; see
    /// [`crate::aws::AwsConfig::sns_client`].
    pub fn new(client: aws_sdk_sns::Client, config: &SnsConfig) -> Result<Self, SnsError> {
        if !config.topic_arn.starts_with("arn:") {
            return Err(SnsError::Config(format!(
                "topic_arn {:?} is not an arn",
                config.topic_arn
            )));
        }
        Ok(SnsPublisher {
            client,
            topic_arn: config.topic_arn.clone(),
        })
    }

    /// Publishes one notice; `Ok` once SNS has accepted it.
    pub async fn publish(&self, alert: &AlertRecord) -> Result<(), SnsError> {
        let body = serde_json::to_string(alert).map_err(|e| SnsError::Encode {
            id: alert.id.clone(),
            message: e.to_string(),
        })?;
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject(alert))
            .message(body);
        for (name, value) in attributes(alert) {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| SnsError::Encode {
                    id: alert.id.clone(),
                    message: e.to_string(),
                })?;
            request = request.message_attributes(name, attribute);
        }
        match request.send().await {
            Ok(_) => {
                metrics::counter!("spate_sns_alerts_published_total").increment(1);
                Ok(())
            }
            Err(e) => {
                metrics::counter!("spate_sns_publish_errors_total").increment(1);
                Err(SnsError::Publish {
                    topic_arn: self.topic_arn.clone(),
                    message: aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
                })
            }
        }
    }
}

/// The subject line: `[FIRING] ERROR error_burst: api`, cut to SNS's limit.
///
/// SNS subjects must be printable ASCII without newlines, so anything else
/// becomes `?`.
pub fn subject(alert: &AlertRecord) -> String {
    let line = format!(
        "[{}] {} {}: {}",
        alert.state.as_str().to_ascii_uppercase(),
        alert.severity,
        alert.rule,
        alert.service
    );
    line.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_SUBJECT)
        .collect()
}

/// The message attributes subscriptions filter on.
pub fn attributes(alert: &AlertRecord) -> [(&'static str, String); 4] {
    [
        ("service", alert.service.clone()),
        ("severity", alert.severity.clone()),
        ("rule", alert.rule.clone()),
        ("state", alert.state.as_str().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::record::AlertState;

    fn alert(service: &str) -> AlertRecord {
        AlertRecord {
            id: format!("error_burst:{service}:0:firing"),
            rule: "error_burst".into(),
            service: service.into(),
            state: AlertState::Firing,
            severity: "ERROR".into(),
            window_start_ms: 0,
            window_end_ms: 300_000,
            raised_at_ms: 300_500,
            value: 12.0,
            threshold: 10.0,
            message: "12 errors in 5 min".into(),
        }
    }

    #[test]
    fn subject_is_short_printable_ascii() {
        assert_eq!(subject(&alert("api")), "[FIRING] ERROR error_burst: api");
        let long = subject(&alert(&"é\n".repeat(200)));
        assert_eq!(long.chars().count(), MAX_SUBJECT);
        assert!(long.chars().all(|c| c.is_ascii() && c != '\n'));
    }

    #[test]
    fn attributes_name_service_severity_rule_state() {
        let a = attributes(&alert("api"));
        assert_eq!(
            a.map(|(k, v)| format!("{k}={v}")),
            [
                "service=api",
                "severity=ERROR",
                "rule=error_burst",
                "state=firing"
            ]
        );
    }

    #[test]
    fn topic_must_be_an_arn() {
        let conf = aws_sdk_sns::Config::builder()
            .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
            .region(aws_sdk_sns::config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_sns::Client::from_conf(conf);
        let err = SnsPublisher::new(client.clone(), &SnsConfig::default()).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadInput);
        let ok = SnsPublisher::new(
            client,
            &SnsConfig {
                topic_arn: "arn:aws:sns:us-east-1:123456789012:alerts".into(),
            },
        );
        assert!(ok.is_ok());
    }
}
