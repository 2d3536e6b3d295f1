//! Reading a configuration file (`${VAR}` expansion, syntax, types, with the
//! line of every key) and validating it, with errors that name the key and
//! the line.

use std::path::Path;

use anyhow::{Context, Result};
use spate_operators::component::{ConfigDocument, ConfigError, KeyLines, SourceRegistry};

use super::SpateConfig;
use super::validate::{self, ValidConfig};

/// A configuration read from a file, not yet validated.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The settings.
    pub config: SpateConfig,
    origin: String,
    lines: KeyLines,
}

impl SpateConfig {
    /// Reads TOML text with the source kinds of `registry`: `${VAR}` (and
    /// `${VAR:-fallback}`) from the environment, then syntax and types.
    pub fn read(text: &str, origin: &str, registry: &SourceRegistry) -> Result<LoadedConfig> {
        let expanded;
        let text = if text.contains("${") {
            expanded = spate_operators::aws::env_expand::expand_env(text)
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
            expanded.as_str()
        } else {
            text
        };
        let read = || -> Result<(SpateConfig, KeyLines), ConfigError> {
            let mut document = ConfigDocument::parse(text)?;
            let sources = document.take_sources(registry)?;
            let (mut config, lines): (SpateConfig, KeyLines) = document.read_rest()?;
            config.sources = sources;
            Ok((config, lines))
        };
        let (config, lines) = read().map_err(|e| located(origin, e))?;
        Ok(LoadedConfig {
            config,
            origin: origin.to_string(),
            lines,
        })
    }

    /// Reads and validates TOML text with the built-in source kinds.
    #[cfg(test)]
    pub fn parse(text: &str, origin: &str) -> Result<ValidConfig> {
        Self::read(text, origin, &spate_operators::sources::supported_sources())?.validate()
    }
}

impl LoadedConfig {
    /// The built-in defaults, as if from an empty file.
    pub fn defaults() -> Self {
        LoadedConfig {
            config: SpateConfig::default(),
            origin: "defaults".to_string(),
            lines: KeyLines::default(),
        }
    }

    /// Checks every setting, without I/O; errors name the key and line.
    pub fn validate(self) -> Result<ValidConfig> {
        let LoadedConfig {
            config,
            origin,
            lines,
        } = self;
        validate::validate(config).map_err(|e| located(&origin, lines.locate(e)))
    }
}

/// `origin (line N): key: message`.
fn located(origin: &str, error: ConfigError) -> anyhow::Error {
    let at = error
        .line()
        .map(|line| format!(" (line {line})"))
        .unwrap_or_default();
    let key = match error.key() {
        "" => String::new(),
        key => format!("{key}: "),
    };
    anyhow::anyhow!("{origin}{at}: {key}{}", error.message())
}

/// Reads `path` (the built-in defaults when `None`) with the built-in source
/// kinds; validate the result with [`LoadedConfig::validate`] after any
/// command-line overrides.
pub fn load(path: Option<&Path>) -> Result<LoadedConfig> {
    let Some(path) = path else {
        return Ok(LoadedConfig::defaults());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    SpateConfig::read(
        &text,
        &path.display().to_string(),
        &spate_operators::sources::supported_sources(),
    )
}
