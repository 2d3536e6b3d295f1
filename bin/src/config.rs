//! The Spate configuration file (TOML) and its validation.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use spate_operators::alerts::AlertsConfig;
use spate_operators::aws::AwsConfig;
use spate_operators::classify::{ClassifierConfig, ClassifierError};
use spate_operators::decode::DecoderConfig;
use spate_operators::enrich::{EnrichConfig, Enricher};
use spate_operators::sinks::dynamo_hot::DynamoHotConfig;
use spate_operators::sinks::hot::HotConfig;
use spate_operators::sinks::lake::LakeConfig;
use spate_operators::sources::file::FileReadConfig;
use spate_operators::sources::journal::JournalConfig;
use spate_operators::sources::kinesis::KinesisConfig;
use spate_operators::sources::sqs::SqsConfig;
use spate_operators::sources::tail::TailConfig;
use spate_operators::transforms::decode::DecodeStageConfig;
use spate_operators::windows::WindowConfig;

use crate::query::executor::QueryConfig;
use crate::run::StdinConfig;
use crate::run::emf::MetricsConfig;
use crate::run::http::HttpConfig;

/// The documented default configuration, printed by `spate config default`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_config.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpateConfig {
    /// How `spate ingest` reads its inputs.
    #[serde(default)]
    pub ingest: FileReadConfig,
    /// How stages run.
    #[serde(default)]
    pub pipeline: DecodeStageConfig,
    /// Decoder limits.
    #[serde(default)]
    pub decode: DecoderConfig,
    /// Severity and tag rules.
    #[serde(default)]
    pub classify: ClassifierConfig,
    /// The reference table for enrichment.
    #[serde(default)]
    pub enrich: EnrichConfig,
    /// The Parquet lake.
    #[serde(default)]
    pub lake: LakeConfig,
    /// `spate run`: the HTTP listener.
    #[serde(default)]
    pub http: HttpConfig,
    /// SQL queries (`POST /v1/query`, `spate query`): threads, concurrency,
    /// memory and time limits.
    #[serde(default)]
    pub query: QueryConfig,
    /// `spate run`: the journal behind HTTP push.
    #[serde(default)]
    pub journal: JournalConfig,
    /// `spate run`: files to tail.
    #[serde(default)]
    pub tail: TailConfig,
    /// `spate run`: standard input as a source.
    #[serde(default)]
    pub stdin: StdinConfig,
    /// `spate run`: the embedded hot store.
    #[serde(default)]
    pub hot: HotConfig,
    /// `spate run`: event-time windows.
    #[serde(default)]
    pub windows: WindowConfig,
    /// `spate run`: alert rules and outputs.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// AWS region and endpoints (for SQS, S3, SNS).
    #[serde(default)]
    pub aws: AwsConfig,
    /// `spate run`: sources besides HTTP, tail and stdin.
    #[serde(default)]
    pub sources: SourcesConfig,
    /// `spate run`: metric outputs besides `/metrics` (`[metrics.emf]`).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The hot store in DynamoDB instead of the embedded one
    /// (`[hot_dynamodb] table = "..."`); `spate hot` then queries it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_dynamodb: Option<DynamoHotConfig>,
}

/// `[sources]`: pull sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    /// SQS queues to consume (`[[sources.sqs]]`).
    #[serde(default)]
    pub sqs: Vec<SqsConfig>,
    /// Kinesis streams to read (`[[sources.kinesis]]`), shards split across
    /// Spate processes through DynamoDB leases.
    #[serde(default)]
    pub kinesis: Vec<KinesisConfig>,
}

impl SpateConfig {
    /// Parses and validates TOML text; errors name the key and line.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        // `${VAR}` (and `${VAR:-fallback}`) come from the environment.
        let expanded;
        let text = if text.contains("${") {
            expanded = spate_operators::aws::env_expand::expand_env(text)
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            expanded.as_str()
        } else {
            text
        };
        let config: SpateConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            anyhow::anyhow!("{origin}{at}: {}", e.message())
        })?;
        config.validate().with_context(|| origin.to_string())?;
        Ok(config)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<()> {
        if let Err(e) = spate_operators::classify::Classifier::new(&self.classify) {
            match e {
                ClassifierError::BadRule { .. } => bail!("classify.tags: {e}"),
                other => bail!("classify: {other}"),
            }
        }
        if let Err(e) = Enricher::new(&self.enrich, &self.pipeline.default_service) {
            bail!("enrich.table: {e}");
        }
        if !(1..=22).contains(&self.lake.zstd_level) {
            bail!(
                "lake.zstd_level: must be between 1 and 22, got {}",
                self.lake.zstd_level
            );
        }
        if let Err(e) = self.windows.shared_mode(self.hot_dynamodb.is_some()) {
            bail!("{e}");
        }
        if let Err(e) = self.metrics.emf.validate() {
            bail!("metrics.emf.{e}");
        }
        if let Err(e) = self.query.validate() {
            bail!("{e}");
        }
        for (i, sqs) in self.sources.sqs.iter().enumerate() {
            if let Err(e) = sqs.validate() {
                bail!("sources.sqs[{i}]: {e}");
            }
        }
        for (key, value) in [
            ("lake.max_file_mib", self.lake.max_file_mib),
            ("lake.max_open_mib", self.lake.max_open_mib),
            ("lake.max_file_age_secs", self.lake.max_file_age_secs),
            ("lake.writers", self.lake.writers as u64),
            ("lake.row_group_rows", self.lake.row_group_rows as u64),
            ("ingest.chunk_kib", self.ingest.chunk_kib as u64),
        ] {
            if value == 0 {
                bail!("{key}: must be at least 1");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_default_matches_the_built_in_default() {
        let parsed = SpateConfig::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
        assert_eq!(parsed, SpateConfig::default());
    }

    #[test]
    fn shared_windows_need_a_shared_store_and_a_long_enough_settle() {
        let err = SpateConfig::parse("[windows]\nshared = true\n", "t").unwrap_err();
        assert!(
            format!("{err:#}").contains("needs a shared alert store"),
            "{err:#}"
        );
        let dynamo = "[hot_dynamodb]\ntable = \"hot\"\n";
        let err = SpateConfig::parse(&format!("{dynamo}[windows]\nshared_settle_secs = 5\n"), "t")
            .unwrap_err();
        assert!(format!("{err:#}").contains("shared_settle_secs"), "{err:#}");
        // Off: the settle delay is not used.
        let off = format!("{dynamo}[windows]\nshared = false\nshared_settle_secs = 5\n");
        assert!(SpateConfig::parse(&off, "t").is_ok());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(
            SpateConfig::parse("", "empty").unwrap(),
            SpateConfig::default()
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = SpateConfig::parse("[lake]\nzstd_level = 3\nmax_file_gib = 1\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml (line 3)"), "{err}");
        assert!(err.contains("max_file_gib"), "{err}");
    }

    #[test]
    fn wrong_type_names_line() {
        let err = SpateConfig::parse("[ingest]\n\nchunk_kib = \"big\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml (line 3)"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let err = SpateConfig::parse("[lake]\nzstd_level = 40\n", "x.toml").unwrap_err();
        assert!(format!("{err:#}").contains("lake.zstd_level"), "{err:#}");
        let err = SpateConfig::parse("[[classify.tags]]\nname = \"x\"\nregex = \"(\"\n", "x.toml")
            .unwrap_err();
        assert!(format!("{err:#}").contains("classify.tags"), "{err:#}");
    }

    #[test]
    fn local_aws_config_is_valid_with_what_up_sh_exports() {
        let text = include_str!("../../deploy/local/aws.toml");
        let values = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            (
                "SPATE_SQS_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/spate-logs",
            ),
            ("SPATE_KINESIS_STREAM", "spate-logs"),
            ("SPATE_BUCKET", "spate-lake"),
            ("SPATE_HOT_TABLE", "spate-hot"),
            (
                "SPATE_ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:spate-alerts",
            ),
        ];
        let expanded = spate_operators::aws::env_expand::expand_with(text, |name| {
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
        .unwrap();
        let config = SpateConfig::parse(&expanded, "aws.toml").unwrap();
        assert_eq!(config.sources.sqs.len(), 1);
        assert_eq!(config.sources.kinesis[0].stream, "spate-logs");
        assert_eq!(config.hot_dynamodb.unwrap().table, "spate-hot");
        assert_eq!(config.lake.s3.unwrap().bucket, "spate-lake");
    }
}
