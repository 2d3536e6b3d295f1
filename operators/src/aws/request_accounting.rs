//! Counts every AWS API call Spate makes, by service and operation, with the
//! bytes sent and received, so that what a deployment costs in requests
//! follows from measurement (`spate cost` turns the figures into a bill).
//!
//! [`RequestAccounting`] is an SDK interceptor; [`super::AwsConfig`] adds it
//! to the client of every service it builds, so no call site counts by hand.
//!
//! Each *attempt* is counted, retries included: AWS bills every request it
//! receives. Bytes are the HTTP bodies (headers left out) where their length
//! is known: a body's own length when buffered, else its `Content-Length`.
//!
//! | metric | labels |
//! | --- | --- |
//! | `spate_aws_requests_total` | `service`, `operation` |
//! | `spate_aws_request_errors_total` | `service`, `operation` |
//! | `spate_aws_request_bytes_total` | `service`, `operation`, `direction` (`sent`, `received`) |

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Headers;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

/// The SDK interceptor that counts requests and bytes (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestAccounting;

/// The `service` and `operation` labels of the call being made:
/// the service in lower case without spaces (`sqs`, `s3`, `dynamodb`,
/// `secretsmanager`), the operation as AWS names it (`ReceiveMessage`).
fn labels(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(meta) => (service_label(meta.service()), meta.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

/// `"Secrets Manager"` → `secretsmanager`, `"DynamoDB"` → `dynamodb`.
///
/// ```
/// use spate_operators::aws::request_accounting::service_label;
/// assert_eq!(service_label("Secrets Manager"), "secretsmanager");
/// assert_eq!(service_label("SQS"), "sqs");
/// ```
pub fn service_label(service: &str) -> String {
    service
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The length of a body: its own when known (a buffered body), else its
/// `Content-Length` header (a streamed one), else 0.
fn body_length(body: &SdkBody, headers: &Headers) -> u64 {
    body.content_length()
        .or_else(|| headers.get("content-length")?.parse().ok())
        .unwrap_or(0)
}

fn add_bytes(service: &str, operation: &str, direction: &'static str, bytes: u64) {
    if bytes > 0 {
        metrics::counter!(
            "spate_aws_request_bytes_total",
            "service" => service.to_string(),
            "operation" => operation.to_string(),
            "direction" => direction
        )
        .increment(bytes);
    }
}

impl Intercept for RequestAccounting {
    fn name(&self) -> &'static str {
        "SpateRequestAccounting"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = labels(cfg);
        let request = context.request();
        let sent = body_length(request.body(), request.headers());
        add_bytes(&service, &operation, "sent", sent);
        metrics::counter!(
            "spate_aws_requests_total",
            "service" => service,
            "operation" => operation
        )
        .increment(1);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = labels(cfg);
        let response = context.response();
        let received = body_length(response.body(), response.headers());
        add_bytes(&service, &operation, "received", received);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let failed = match context.response() {
            Some(response) => !response.status().is_success(),
            // No response: the request never reached AWS or the connection
            // broke; only count it when a request was sent.
            None => context.request().is_some(),
        };
        if failed {
            let (service, operation) = labels(cfg);
            metrics::counter!(
                "spate_aws_request_errors_total",
                "service" => service,
                "operation" => operation
            )
            .increment(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_labels_are_lower_case_without_spaces() {
        assert_eq!(service_label("S3"), "s3");
        assert_eq!(service_label("DynamoDB"), "dynamodb");
        assert_eq!(service_label("Secrets Manager"), "secretsmanager");
        assert_eq!(service_label("CloudWatch Logs"), "cloudwatchlogs");
    }

    #[test]
    fn labels_come_from_the_operation_metadata() {
        let mut layer = aws_smithy_types::config_bag::Layer::new("test");
        layer.store_put(Metadata::new("ReceiveMessage", "SQS"));
        let bag = ConfigBag::of_layers(vec![layer]);
        assert_eq!(labels(&bag), ("sqs".into(), "ReceiveMessage".into()));
        assert_eq!(
            labels(&ConfigBag::base()),
            ("unknown".into(), "unknown".into())
        );
    }
}
