//! `[sources.stdin]` (formerly `[stdin]`): standard input as a source of
//! `spate run`, read until it closes.
//!
//! Lines are read in chunks cut at newlines, like a file given to
//! `spate ingest`; event ids are `stdin:<offset>`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::{FileReadConfig, FileSource, Input, ReadProgress};
use crate::component::{BuildContext, BuildError, ConfigError, SourceKind};

/// `[sources.stdin]`: read log lines from standard input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// Read stdin (until it closes) besides the other sources.
    #[serde(default)]
    pub enabled: bool,
}

/// The stdin source kind: `[sources.stdin] enabled = true`, node `stdin`.
pub struct StdinKind;

impl SourceKind for StdinKind {
    const KIND: &'static str = "stdin";
    const MULTIPLE: bool = false;
    const LEGACY_SECTION: Option<&'static str> = Some("stdin");
    type Config = StdinConfig;
    type Validated = ();

    fn validate(config: &StdinConfig) -> Result<Option<()>, ConfigError> {
        Ok(config.enabled.then_some(()))
    }

    fn describe(_: &()) -> String {
        "reading standard input".to_string()
    }

    fn build(_: &(), name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        let inputs = Arc::new(vec![Input::Stdin]);
        let read = FileReadConfig::default();
        let progress = Arc::new(ReadProgress::default());
        ctx.add_source(name, move || {
            FileSource::new(inputs.clone(), &read, progress.clone())
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_only_when_enabled() {
        assert_eq!(StdinKind::validate(&StdinConfig::default()), Ok(None));
        assert_eq!(
            StdinKind::validate(&StdinConfig { enabled: true }),
            Ok(Some(()))
        );
    }
}
