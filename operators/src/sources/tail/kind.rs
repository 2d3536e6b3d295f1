//! `[[sources.tail]]` as a registered component kind: validation and building.

use super::TailSource;
use super::config::{TailConfig, ValidTail};
use super::discover::FileMatcher;
use super::error::TailError;
use crate::component::{BuildContext, BuildError, ConfigError, SourceKind};
/// The tail source kind: `[sources.tail]`, node `tail`; its checkpoints are
/// in `<data dir>/checkpoints/tail.json`.
pub struct TailKind;

impl SourceKind for TailKind {
    const KIND: &'static str = "tail";
    const METRICS: &'static [spate_engine::catalog::MetricDef] = crate::metric_catalog::TAIL;
    const MULTIPLE: bool = false;
    const LEGACY_SECTION: Option<&'static str> = Some("tail");
    type Config = TailConfig;
    type Validated = ValidTail;

    fn validate(config: &TailConfig) -> Result<Option<ValidTail>, ConfigError> {
        if !config.enabled() {
            return Ok(None);
        }
        for (key, value) in [
            ("chunk_size", config.chunk_kib),
            ("max_line", config.max_line_kib),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        let matcher = FileMatcher::new(&config.paths, &config.exclude).map_err(|e| {
            let key = match &e {
                TailError::Glob { pattern, .. } if config.exclude.contains(pattern) => "exclude",
                _ => "paths",
            };
            ConfigError::new(key, e.to_string())
        })?;
        Ok(Some(ValidTail {
            config: config.clone(),
            matcher,
        }))
    }

    fn describe(valid: &ValidTail) -> String {
        format!("tailing {}", valid.config.paths.join(", "))
    }

    fn build(valid: &ValidTail, name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        let tail = TailSource::from_valid(valid, &ctx.data_dir().join("checkpoints"))
            .map_err(|e| BuildError::external(name, e))?;
        let checkpoints = tail.checkpoints();
        ctx.add_source(name, move || tail.clone());
        // Everything the sinks committed is acknowledged once drained: save it.
        ctx.after_drain(async move {
            checkpoints
                .save_now()
                .map(|_| ())
                .map_err(|e| BuildError::external("tail checkpoint", e))
        });
        Ok(())
    }
}
