//! `[[sources.sqs]]` as a registered component kind: validation and building.

use std::sync::Arc;
use std::time::Duration;

use super::SqsQueue;
use super::config::SqsConfig;
use crate::component::{BuildContext, BuildError, ConfigError, SourceKind};
/// The SQS source kind: `[[sources.sqs]]`, one node `sqs-<i>` per queue.
pub struct SqsKind;

impl SourceKind for SqsKind {
    const KIND: &'static str = "sqs";
    const METRICS: &'static [spate_engine::catalog::MetricDef] = crate::metric_catalog::SQS;
    const AWS_CALLS: &'static [(&'static str, &'static str)] = &[
        ("sqs", "ReceiveMessage"),
        ("sqs", "DeleteMessageBatch"),
        ("sqs", "ChangeMessageVisibilityBatch"),
        ("sqs", "GetQueueAttributes"),
    ];
    const MULTIPLE: bool = true;
    type Config = SqsConfig;
    type Validated = SqsConfig;

    fn validate(config: &SqsConfig) -> Result<Option<SqsConfig>, ConfigError> {
        config.validate()?;
        Ok(Some(config.clone()))
    }

    fn describe(config: &SqsConfig) -> String {
        format!("consuming {}", config.queue_url)
    }

    fn uses_aws(_: &SqsConfig) -> bool {
        true
    }

    fn build(config: &SqsConfig, name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        let client = ctx.aws(name)?.sqs();
        let queue: Arc<SqsQueue> =
            SqsQueue::new(client, config.clone()).map_err(|e| BuildError::internal(name, e))?;
        let source = queue.clone();
        ctx.add_source(name, move || source.source());
        // Let the last deletes finish once the pipeline has drained.
        ctx.after_drain(async move {
            if !queue.settled(Duration::from_secs(10)).await {
                tracing::warn!(
                    "sqs deletes still pending at exit; those messages will be redelivered"
                );
            }
            Ok(())
        });
        Ok(())
    }
}
