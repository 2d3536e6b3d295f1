//! The list of source kinds, and sources as configured and validated.
//!
//! [`SourceRegistry`] erases each [`SourceKind`] behind [`RegisteredSource`],
//! so the document reader, the validation and the builder handle every kind
//! the same way.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{BuildContext, BuildError, ConfigError, SourceKind};

/// A registered source kind, its types erased.
pub trait RegisteredSource: Send + Sync {
    /// The kind's name (`sqs`).
    fn kind(&self) -> &'static str;
    /// Whether several may be configured.
    fn multiple(&self) -> bool;
    /// The top-level section still read for it (`tail`).
    fn legacy_section(&self) -> Option<&'static str>;
    /// Reads one instance's table; `Err` is serde's error, located by the caller.
    fn read(
        &self,
        table: toml::de::ValueDeserializer<'_>,
    ) -> Result<Arc<dyn Any + Send + Sync>, serde_path_to_error::Error<toml::de::Error>>;
    /// [`SourceKind::validate`].
    fn validate(
        &self,
        config: &(dyn Any + Send + Sync),
    ) -> Result<Option<Box<dyn ValidatedSource>>, ConfigError>;
    /// The settings as JSON (for comparing and printing).
    fn to_json(&self, config: &(dyn Any + Send + Sync)) -> serde_json::Value;
    /// The default settings as JSON.
    fn default_json(&self) -> serde_json::Value;
    /// The JSON schema of the settings, with their doc comments.
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
}

/// A validated source, ready to build.
pub trait ValidatedSource: std::fmt::Debug + Send + Sync {
    /// [`SourceKind::describe`].
    fn describe(&self) -> String;
    /// [`SourceKind::uses_aws`].
    fn uses_aws(&self) -> bool;
    /// [`SourceKind::METRICS`].
    fn metrics(&self) -> &'static [spate_engine::catalog::MetricDef];
    /// [`SourceKind::AWS_CALLS`].
    fn aws_calls(&self) -> &'static [(&'static str, &'static str)];
    /// [`SourceKind::build`].
    fn build(&self, name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError>;
}

struct Registration<K>(PhantomData<fn() -> K>);

struct Checked<K: SourceKind>(K::Validated);

impl<K: SourceKind> std::fmt::Debug for Checked<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple(K::KIND).field(&self.0).finish()
    }
}

impl<K: SourceKind> ValidatedSource for Checked<K> {
    fn describe(&self) -> String {
        K::describe(&self.0)
    }
    fn uses_aws(&self) -> bool {
        K::uses_aws(&self.0)
    }
    fn metrics(&self) -> &'static [spate_engine::catalog::MetricDef] {
        K::METRICS
    }
    fn aws_calls(&self) -> &'static [(&'static str, &'static str)] {
        K::AWS_CALLS
    }
    fn build(&self, name: &str, ctx: &mut BuildContext<'_>) -> Result<(), BuildError> {
        K::build(&self.0, name, ctx)
    }
}

fn typed<K: SourceKind>(config: &(dyn Any + Send + Sync)) -> &K::Config {
    config
        .downcast_ref::<K::Config>()
        .expect("a configured source keeps the registration that read it")
}

impl<K: SourceKind> RegisteredSource for Registration<K> {
    fn kind(&self) -> &'static str {
        K::KIND
    }
    fn multiple(&self) -> bool {
        K::MULTIPLE
    }
    fn legacy_section(&self) -> Option<&'static str> {
        K::LEGACY_SECTION
    }
    fn read(
        &self,
        table: toml::de::ValueDeserializer<'_>,
    ) -> Result<Arc<dyn Any + Send + Sync>, serde_path_to_error::Error<toml::de::Error>> {
        let config: K::Config = serde_path_to_error::deserialize(table)?;
        Ok(Arc::new(config))
    }
    fn validate(
        &self,
        config: &(dyn Any + Send + Sync),
    ) -> Result<Option<Box<dyn ValidatedSource>>, ConfigError> {
        Ok(K::validate(typed::<K>(config))?
            .map(|v| Box::new(Checked::<K>(v)) as Box<dyn ValidatedSource>))
    }
    fn to_json(&self, config: &(dyn Any + Send + Sync)) -> serde_json::Value {
        serde_json::to_value(typed::<K>(config)).unwrap_or(serde_json::Value::Null)
    }
    fn default_json(&self) -> serde_json::Value {
        serde_json::to_value(K::Config::default()).unwrap_or(serde_json::Value::Null)
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<K::Config>()
    }
}

/// The source kinds a program knows, each registered with one line.
///
/// ```
/// let registry = spate_operators::sources::supported_sources();
/// assert!(registry.get("sqs").is_some());
/// assert!(registry.get("tail").is_some());
/// ```
#[derive(Clone, Default)]
pub struct SourceRegistry {
    kinds: Vec<Arc<dyn RegisteredSource>>,
}

impl SourceRegistry {
    /// Adds kind `K` (replacing a kind of the same name).
    pub fn register<K: SourceKind>(&mut self) -> &mut Self {
        self.kinds.retain(|k| k.kind() != K::KIND);
        self.kinds.push(Arc::new(Registration::<K>(PhantomData)));
        self
    }

    /// The kind named `kind`.
    pub fn get(&self, kind: &str) -> Option<&Arc<dyn RegisteredSource>> {
        self.kinds.iter().find(|k| k.kind() == kind)
    }

    /// Every kind, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn RegisteredSource>> {
        self.kinds.iter()
    }

    /// The names of every kind, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.kind()).collect()
    }
}

/// One source as read from the file, not yet validated.
#[derive(Clone)]
pub struct ConfiguredSource {
    kind: Arc<dyn RegisteredSource>,
    key: String,
    name: String,
    config: Arc<dyn Any + Send + Sync>,
}

impl ConfiguredSource {
    pub(super) fn new(
        kind: Arc<dyn RegisteredSource>,
        key: String,
        name: String,
        config: Arc<dyn Any + Send + Sync>,
    ) -> Self {
        ConfiguredSource {
            kind,
            key,
            name,
            config,
        }
    }

    /// The kind (`sqs`).
    pub fn kind(&self) -> &'static str {
        self.kind.kind()
    }

    /// Where it is configured (`sources.sqs[0]`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Its node name in the pipeline (`sqs-0`, `tail`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The typed settings, when they are of kind `K`.
    pub fn settings<K: SourceKind>(&self) -> Option<&K::Config> {
        self.config.downcast_ref::<K::Config>()
    }

    /// Checks it; errors carry its full key path.
    pub fn validate(&self) -> Result<Option<Box<dyn ValidatedSource>>, ConfigError> {
        self.kind
            .validate(self.config.as_ref())
            .map_err(|e| e.within(&self.key))
    }

    /// The settings as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        self.kind.to_json(self.config.as_ref())
    }
}

impl std::fmt::Debug for ConfiguredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredSource")
            .field("key", &self.key)
            .field("settings", &self.to_json())
            .finish()
    }
}

impl PartialEq for ConfiguredSource {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.key == other.key && self.to_json() == other.to_json()
    }
}
