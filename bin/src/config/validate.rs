//! The one validation of a configuration: every setting `spate run` or
//! `spate ingest` could reject, checked without I/O, in one pass.
//!
//! It returns a [`ValidConfig`]: the settings plus what the checks produced
//! (validated sources, the compiled classifier and alert rules, the bearer
//! token, the window mode), which the pipeline is then built from without
//! checking again.

use spate_operators::alerts::rules::Rule;
use spate_operators::classify::{Classifier, ClassifierError};
use spate_operators::component::{ConfigError, ValidatedSource};

use super::SpateConfig;

/// A source that passed validation, with its node name.
#[derive(Debug)]
pub struct ValidSource {
    /// Node name in the pipeline (`sqs-0`, `tail`).
    pub name: String,
    /// Where it is configured (`sources.sqs[0]`).
    pub key: String,
    /// What its build needs.
    pub source: Box<dyn ValidatedSource>,
}

/// A configuration that passed [`validate`].
#[derive(Debug)]
pub struct ValidConfig {
    /// The settings.
    pub config: SpateConfig,
    /// The sources besides HTTP push that are on.
    pub sources: Vec<ValidSource>,
    /// The bearer token in force on `/v1/*`, if any.
    pub token: Option<String>,
    /// Whether windows are shared across processes (rules run on counts
    /// merged in DynamoDB).
    pub shared_windows: bool,
    /// The classifier, compiled.
    pub classifier: Classifier,
    /// The alert rules, compiled.
    pub rules: Vec<Rule>,
}

impl ValidConfig {
    /// Whether anything configured talks to AWS (the SDK configuration is then
    /// loaded once, before the build).
    pub fn uses_aws(&self) -> bool {
        let config = &self.config;
        self.sources.iter().any(|s| s.source.uses_aws())
            || config.hot_dynamodb.is_some()
            || config.lake.s3.is_some()
            || config.enrich.table_on_s3()
            || config.alerts.sns.is_some()
            || config
                .alerts
                .webhook
                .as_ref()
                .is_some_and(|w| w.needs_secret())
            || config
                .alerts
                .pagerduty
                .as_ref()
                .is_some_and(|p| p.needs_secret())
    }
}

impl ValidConfig {
    /// Opens the local files the settings name (the enrichment table, when
    /// not on S3), as the build does; `spate config check` runs it after the
    /// validation.
    pub fn preflight(&self) -> anyhow::Result<()> {
        if self.config.enrich.table_on_s3() {
            return Ok(());
        }
        spate_operators::enrich::Enricher::new(
            &self.config.enrich,
            &self.config.pipeline.default_service,
        )
        .map_err(|e| anyhow::anyhow!("enrich.table: {e}"))?;
        Ok(())
    }
}

fn at_least_one(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(key, "must be at least 1"));
    }
    Ok(())
}

/// A message from an older `validate` that starts with its key, placed in
/// `section`.
fn keyed(section: &str, message: impl std::fmt::Display) -> ConfigError {
    let message = message.to_string();
    // Older messages carry a "... config:" prefix or their section themselves.
    let message = message
        .split_once("config: ")
        .map_or(message.as_str(), |(_, rest)| rest);
    let message = message
        .strip_prefix(&format!("{section}: "))
        .unwrap_or(message);
    ConfigError::from_keyed_message(message).within(section)
}

/// Checks every setting of `config` without I/O.
pub(super) fn validate(config: SpateConfig) -> Result<ValidConfig, ConfigError> {
    at_least_one("ingest.chunk_size", config.ingest.chunk_kib as u64)?;
    at_least_one(
        "enrich.reload_interval_secs",
        config.enrich.reload_interval_secs,
    )?;
    if let Some(table) = config.enrich.table.as_ref().map(|t| t.to_string_lossy())
        && table.starts_with("s3://")
    {
        spate_operators::enrich::source::parse_s3_url(&table)
            .map_err(|reason| ConfigError::new("enrich.table", reason))?;
    }

    let classifier = Classifier::new(&config.classify).map_err(|e| match &e {
        ClassifierError::BadRule { name, reason } => {
            let index = config
                .classify
                .tags
                .iter()
                .position(|t| &t.name == name)
                .map(|i| format!("[{i}]"))
                .unwrap_or_default();
            ConfigError::new(format!("tags{index}"), format!("rule {name}: {reason}"))
                .within("classify")
        }
        ClassifierError::TooManyTags(_) => {
            ConfigError::new("tags", e.to_string()).within("classify")
        }
    })?;

    config.lake.validate().map_err(|e| e.within("lake"))?;
    config.http.validate().map_err(|e| e.within("http"))?;
    config.query.validate().map_err(|e| e.within("query"))?;
    config.console.validate().map_err(|e| e.within("console"))?;
    let token = config.http.token().map_err(|e| e.within("http"))?;
    config.journal.validate().map_err(|e| keyed("journal", e))?;
    config.hot.validate().map_err(|e| keyed("hot", e))?;
    if let Some(dynamo) = &config.hot_dynamodb {
        dynamo.validate().map_err(|e| keyed("hot_dynamodb", e))?;
    }
    config.windows.validate().map_err(|e| keyed("windows", e))?;
    let shared_windows = config
        .windows
        .shared_mode(config.hot_dynamodb.is_some())
        .map_err(|e| keyed("windows", e))?;
    let rules = config.alerts.validate().map_err(|e| e.within("alerts"))?;
    if let Some(sns) = &config.alerts.sns {
        sns.validate().map_err(|e| e.within("alerts.sns"))?;
    }
    config
        .metrics
        .emf
        .validate()
        .map_err(|e| keyed("metrics.emf", e))?;

    let mut sources = Vec::new();
    for configured in &config.sources {
        if let Some(source) = configured.validate()? {
            sources.push(ValidSource {
                name: configured.name().to_string(),
                key: configured.key().to_string(),
                source,
            });
        }
    }
    Ok(ValidConfig {
        config,
        sources,
        token,
        shared_windows,
        classifier,
        rules,
    })
}
