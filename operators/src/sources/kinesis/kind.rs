//! `[[sources.kinesis]]` as a registered component kind: validation and building.

use std::time::Duration;

use super::KinesisStream;
use super::config::KinesisConfig;
use crate::component::{BuildContext, BuildError, ConfigError, SourceKind};
/// The Kinesis source kind: `[[sources.kinesis]]`, one node `kinesis-<i>`
/// per stream.
pub struct KinesisKind;

impl SourceKind for KinesisKind {
    const KIND: &'static str = "kinesis";
    const METRICS: &'static [spate_engine::catalog::MetricDef] = crate::metric_catalog::KINESIS;
    const AWS_CALLS: &'static [(&'static str, &'static str)] = &[
        ("kinesis", "ListShards"),
        ("kinesis", "GetShardIterator"),
        ("kinesis", "GetRecords"),
        ("dynamodb", "UpdateItem"),
    ];
    const MULTIPLE: bool = true;
    type Config = KinesisConfig;
    type Validated = KinesisConfig;

    fn validate(config: &KinesisConfig) -> Result<Option<KinesisConfig>, ConfigError> {
        config.validate()?;
        Ok(Some(config.clone()))
    }

    fn describe(config: &KinesisConfig) -> String {
        format!(
            "reading kinesis stream {} (leases in {})",
            config.stream, config.lease_table
        )
    }

    fn uses_aws(_: &KinesisConfig) -> bool {
        true
    }

    fn build(
        config: &KinesisConfig,
        name: &str,
        ctx: &mut BuildContext<'_>,
    ) -> Result<(), BuildError> {
        let aws = ctx.aws(name)?;
        let stream = KinesisStream::new(aws.kinesis(), aws.dynamodb(), config.clone())
            .map_err(|e| BuildError::internal(name, e))?;
        let source = stream.clone();
        ctx.add_source(name, move || source.source());
        // The readers write their last checkpoints and release their leases.
        ctx.after_drain(async move {
            if !stream.settled(Duration::from_secs(10)).await {
                tracing::warn!(
                    "kinesis readers still settling at exit; their leases expire and another process resumes from the last checkpoint"
                );
            }
            Ok(())
        });
        Ok(())
    }
}
