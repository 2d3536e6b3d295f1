//! The Spate configuration file (TOML), read and validated in one place.
//!
//! [`load`] reads a file (or the built-in defaults): `${VAR}` expansion,
//! syntax, types, and the `[sources.<kind>]` sections through the source
//! registry. [`loaded::LoadedConfig::validate`] then checks every setting without
//! I/O and returns the [`ValidConfig`] that `spate ingest` and `spate run`
//! build from; `spate config check` runs the very same steps. Every error
//! names the key path and the line.

pub mod loaded;
pub mod reference;
#[cfg(test)]
mod reference_tests;
mod validate;

use serde::{Deserialize, Serialize};
use spate_operators::alerts::AlertsConfig;
use spate_operators::aws::AwsConfig;
use spate_operators::classify::ClassifierConfig;
use spate_operators::component::ConfiguredSource;
use spate_operators::decode::DecoderConfig;
use spate_operators::enrich::EnrichConfig;
use spate_operators::sinks::dynamo_hot::DynamoHotConfig;
use spate_operators::sinks::hot::HotConfig;
use spate_operators::sinks::lake::LakeConfig;
use spate_operators::sources::file::FileReadConfig;
use spate_operators::sources::journal::JournalConfig;
use spate_operators::transforms::decode::DecodeStageConfig;
use spate_operators::windows::WindowConfig;

pub use self::loaded::load;
pub use self::validate::{ValidConfig, ValidSource};
use crate::console::config::ConsoleConfig;
use crate::query::executor::QueryConfig;
use crate::run::emf::MetricsConfig;
use crate::run::http::HttpConfig;

/// The documented default configuration, printed by `spate config default`.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default_config.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// `spate run`: the embedded hot store.
    #[serde(default)]
    pub hot: HotConfig,
    /// `spate run`: event-time windows.
    #[serde(default)]
    pub windows: WindowConfig,
    /// `spate run`: alert rules and outputs.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// AWS region and endpoints.
    #[serde(default)]
    pub aws: AwsConfig,
    /// `spate run`: the web console (`/ui`): audit retention, sign-in
    /// through OIDC / Amazon Cognito.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// `spate run`: metric outputs besides `/metrics` (`[metrics.emf]`).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The hot store in DynamoDB instead of the embedded one
    /// (`[hot_dynamodb] table = "..."`); `spate hot` then queries it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_dynamodb: Option<DynamoHotConfig>,
    /// `spate run`: the sources besides HTTP push (`[sources.<kind>]`, read
    /// by the kinds of the source registry).
    #[serde(skip)]
    pub sources: Vec<ConfiguredSource>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<SpateConfig> {
        SpateConfig::parse(text, "x.toml").map(|v| v.config)
    }

    #[test]
    fn documented_default_matches_the_built_in_default() {
        let parsed = SpateConfig::parse(DEFAULT_CONFIG_TOML, "default").unwrap();
        assert_eq!(parsed.config, SpateConfig::default());
    }

    #[test]
    fn shared_windows_need_a_shared_store_and_a_long_enough_settle() {
        let err = parse("[windows]\nshared = true\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("needs a shared alert store"),
            "{err:#}"
        );
        let dynamo = "[hot_dynamodb]\ntable = \"hot\"\n";
        let err = parse(&format!("{dynamo}[windows]\nshared_settle_secs = 5\n")).unwrap_err();
        assert!(format!("{err:#}").contains("shared_settle"), "{err:#}");
        // Off: the settle delay is not used.
        let off = format!("{dynamo}[windows]\nshared = false\nshared_settle_secs = 5\n");
        assert!(parse(&off).is_ok());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").unwrap(), SpateConfig::default());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[lake]\nzstd_level = 3\nmax_file_gib = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml (line 3)"), "{err}");
        assert!(err.contains("max_file_gib"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_key_without_rust_types() {
        let err = parse("[ingest]\n\nchunk_size = \"big\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml (line 3): ingest.chunk_size: "),
            "{err}"
        );
        assert!(err.contains("\"big\" is not a size"), "{err}");
        let err = parse("[[sources.sqs]]\nqueue_url = \"q\"\npollers = -1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml (line 3): sources.sqs[0].pollers: "),
            "{err}"
        );
        assert!(!err.contains("usize"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key_and_line() {
        let err = parse("[lake]\nzstd_level = 40\n").unwrap_err().to_string();
        assert!(
            err.starts_with("x.toml (line 2): lake.zstd_level: "),
            "{err}"
        );
        let err = parse("[[classify.tags]]\nname = \"x\"\nregex = \"(\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("classify.tags"), "{err:#}");
        let err = parse("\n[[sources.sqs]]\nqueue_url = \"q\"\n[[sources.sqs]]\nqueue_url = \"r\"\npollers = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "x.toml (line 6): sources.sqs[1].pollers: must be at least 1"
        );
    }

    #[test]
    fn enrich_tables_on_s3_are_checked_and_use_aws() {
        let err = parse("[enrich]\ntable = \"s3://bucket-only\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml (line 2): enrich.table: ") && err.contains("s3://BUCKET/KEY"),
            "{err}"
        );
        let err = parse("[enrich]\nreload_interval_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("enrich.reload_interval_secs: must be at least 1"),
            "{err}"
        );
        let valid =
            SpateConfig::parse("[enrich]\ntable = \"s3://ref/hosts.csv\"\n", "x.toml").unwrap();
        assert!(valid.uses_aws());
        assert!(valid.preflight().is_ok(), "S3 tables are read at start-up");
        let err = parse("[metrics.emf]\nwindow_top_services = 0\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("window_top_services"),
            "{err:#}"
        );
        let err = parse("[metrics.emf]\nwindow_dimensions = [\"stack\"]\n").unwrap_err();
        assert!(format!("{err:#}").contains("window_dimensions"), "{err:#}");
        let ok = "[metrics.emf]\nwindow_dimensions = [\"stack\"]\n[metrics.emf.dimensions]\nstack = \"s\"\n";
        assert!(parse(ok).is_ok());
    }

    #[test]
    fn unknown_source_kinds_are_named_with_the_known_ones() {
        let err = parse("[sources.kafka]\nbrokers = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("x.toml (line 1): sources.kafka: unknown source kind"),
            "{err}"
        );
        assert!(err.contains("sqs"), "{err}");
    }

    #[test]
    fn old_top_level_tail_and_stdin_sections_are_read() {
        let config =
            parse("[tail]\npaths = [\"/var/log/*.log\"]\n[stdin]\nenabled = true\n").unwrap();
        let kinds: Vec<&str> = config.sources.iter().map(|s| s.kind()).collect();
        assert_eq!(kinds, ["tail", "stdin"]);
        let tail = config.sources[0]
            .settings::<spate_operators::sources::tail::TailKind>()
            .unwrap();
        assert_eq!(tail.paths, ["/var/log/*.log"]);
        let both = parse("[tail]\npaths = [\"a\"]\n[sources.tail]\npaths = [\"b\"]\n");
        assert!(format!("{:#}", both.unwrap_err()).contains("configured twice"));
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
        let kinds: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(kinds, ["kinesis-0", "sqs-0"]);
        assert_eq!(config.config.hot_dynamodb.unwrap().table, "spate-hot");
        assert_eq!(config.config.lake.s3.unwrap().bucket, "spate-lake");
    }
}
