//! Components: the kinds of source `spate run` builds from its configuration,
//! each registered with one line.
//!
//! A source kind implements [`SourceKind`] beside its code: the struct its
//! section of the file reads into (`[[sources.sqs]]`, `[sources.tail]`), a pure
//! [`SourceKind::validate`] (no I/O, no await) that returns everything the
//! build needs, and a [`SourceKind::build`] that adds it to the pipeline from
//! that validated value and a [`BuildContext`]. The kinds are listed in a
//! [`SourceRegistry`] (`sources::supported_sources()`); `spate config check`,
//! `spate ingest` and `spate run` all read and validate through it, so a
//! setting is checked in one place, once.
//!
//! Adding a source kind means one folder under `sources/` and one
//! registration line:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use spate_operators::component::{BuildContext, BuildError, ConfigError, SourceKind, SourceRegistry};
//!
//! /// `[sources.ticks]`: emits nothing, for the example.
//! #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct TicksConfig {
//!     /// Events per batch.
//!     #[serde(default)]
//!     per_batch: u32,
//! }
//!
//! struct Ticks;
//! impl SourceKind for Ticks {
//!     const KIND: &'static str = "ticks";
//!     const MULTIPLE: bool = false;
//!     type Config = TicksConfig;
//!     type Validated = u32;
//!     fn validate(config: &TicksConfig) -> Result<Option<u32>, ConfigError> {
//!         match config.per_batch {
//!             0 => Err(ConfigError::new("per_batch", "must be at least 1")),
//!             n => Ok(Some(n)),
//!         }
//!     }
//!     fn describe(per_batch: &u32) -> String {
//!         format!("ticking {per_batch} at a time")
//!     }
//!     fn build(_: &u32, _name: &str, _ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
//!         Ok(())
//!     }
//! }
//!
//! let mut registry = SourceRegistry::default();
//! registry.register::<Ticks>();
//! assert!(registry.get("ticks").is_some());
//! ```

mod build;
mod document;
mod error;
mod registry;
pub mod units;

pub use self::build::{AfterDrain, BuildContext};
pub use self::document::{ConfigDocument, KeyLines, clean_message};
pub use self::error::{BuildError, ConfigError};
pub use self::registry::{ConfiguredSource, RegisteredSource, SourceRegistry, ValidatedSource};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A kind of source: how its section of the configuration reads, checks and
/// builds. Implemented by a unit struct beside the source's code and listed
/// once in a [`SourceRegistry`].
pub trait SourceKind: Send + Sync + 'static {
    /// Its name: the section is `[sources.<KIND>]`, the pipeline node
    /// `<KIND>` (or `<KIND>-<i>` when [`SourceKind::MULTIPLE`]).
    const KIND: &'static str;
    /// Whether several may be configured (`[[sources.sqs]]`, one table each)
    /// or only one (`[sources.tail]`).
    const MULTIPLE: bool;
    /// A top-level section it was configured in before `[sources.<KIND>]`
    /// existed (`[tail]`), still read.
    const LEGACY_SECTION: Option<&'static str> = None;
    /// Its metrics: described, and registered at 0 when it runs, so its
    /// series exist from start-up (`spate_sqs_*`).
    const METRICS: &'static [spate_engine::catalog::MetricDef] = &[];
    /// The AWS calls it makes as it runs, as (service, operation) labels of
    /// `spate_aws_requests_total`: registered at 0 when it runs.
    const AWS_CALLS: &'static [(&'static str, &'static str)] = &[];
    /// The settings, as read from the file. Their doc comments are the
    /// configuration reference (`spate config reference`).
    type Config: DeserializeOwned
        + Serialize
        + JsonSchema
        + Default
        + Clone
        + std::fmt::Debug
        + PartialEq
        + Send
        + Sync
        + 'static;
    /// What [`SourceKind::build`] needs, checked.
    type Validated: std::fmt::Debug + Send + Sync + 'static;

    /// Checks the settings without I/O (no file, no network, no await).
    /// `Ok(None)` means configured but off (`[sources.tail] paths = []`).
    /// Errors name the key relative to the source's own table.
    fn validate(config: &Self::Config) -> Result<Option<Self::Validated>, ConfigError>;

    /// One line for the start-up banner (`consuming https://sqs...`).
    fn describe(validated: &Self::Validated) -> String;

    /// Whether it needs the AWS clients ([`BuildContext::aws`]); they are
    /// loaded once when any component does.
    fn uses_aws(_validated: &Self::Validated) -> bool {
        false
    }

    /// Adds the source to the pipeline as node `name`
    /// ([`BuildContext::add_source`]), and any work to do once the pipeline
    /// has drained ([`BuildContext::after_drain`]).
    fn build(
        validated: &Self::Validated,
        name: &str,
        ctx: &mut BuildContext<'_>,
    ) -> Result<(), BuildError>;
}
