//! The decode stage: raw chunks in, classified and enriched [`LogBatch`]es out.
//!
//! Runs as a pool (one worker per core): each worker decodes, classifies,
//! enriches from the reference table, splits by lake partition and converts to Arrow, so every CPU-heavy step
//! before Parquet encoding happens in parallel.
//!
//! It sends each batch with one [`Ctx::send`]: the engine routes it to the
//! stages after it (the lake writers split by partition with
//! [`LogBatch::split_by_partition`], the hot store and windows whole), so the
//! stage does not know their layout.
//!
//! # Backpressure
//!
//! A worker sends its output with a waiting send; while the sinks are slow it
//! stops taking chunks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spate_engine::{Actor, ActorError, ActorResult, Batch, Ctx};

use std::time::Duration;

use crate::classify::{Classifier, ClassifierConfig};
use crate::decode::{DecodeContext, DecoderConfig, LineDecoder};
use crate::enrich::{EnrichConfig, Enricher};
use crate::event::EventBatch;
use crate::log_batch::LogBatch;
use crate::sources::{ChunkFormat, RawChunk};
use crate::tap::{self, TapItem, TapStage};

/// `[pipeline]`: how stages run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeStageConfig {
    /// Decode workers; 0 means one per CPU core.
    #[serde(default)]
    pub decode_workers: usize,
    /// Service name for events that name none.
    #[serde(default = "default_service")]
    pub default_service: String,
}

fn default_service() -> String {
    "unknown".to_string()
}

impl Default for DecodeStageConfig {
    fn default() -> Self {
        DecodeStageConfig {
            decode_workers: 0,
            default_service: default_service(),
        }
    }
}

impl DecodeStageConfig {
    /// Workers to run: the configured number, or one per core.
    pub fn workers(&self) -> usize {
        if self.decode_workers > 0 {
            self.decode_workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

/// What a decode worker is built from; cheap to clone into each worker.
#[derive(Clone)]
pub struct DecodeSettings {
    decoder: DecoderConfig,
    classifier: Classifier,
    default_service: Arc<str>,
    enricher: Option<Enricher>,
}

/// The decode stage cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum DecodeSetupError {
    /// A classifier rule is invalid.
    #[error("classify: {0}")]
    Classifier(#[from] crate::classify::ClassifierError),
    /// The reference table cannot be loaded.
    #[error("enrich: {0}")]
    Enrich(#[from] crate::enrich::EnrichError),
}

impl DecodeSettings {
    /// Compiles the classifier and loads the reference table once for every
    /// worker.
    pub fn new(
        decoder: &DecoderConfig,
        classifier: &ClassifierConfig,
        enrich: &EnrichConfig,
        stage: &DecodeStageConfig,
    ) -> Result<Self, DecodeSetupError> {
        Self::with_classifier(decoder, Classifier::new(classifier)?, enrich, stage)
    }

    /// Settings with a classifier compiled by the configuration's validation;
    /// loads the reference table (the only I/O).
    pub fn with_classifier(
        decoder: &DecoderConfig,
        classifier: Classifier,
        enrich: &EnrichConfig,
        stage: &DecodeStageConfig,
    ) -> Result<Self, DecodeSetupError> {
        let enricher = Enricher::new(enrich, &stage.default_service)?;
        Ok(Self::with_enricher(decoder, classifier, enricher, stage))
    }

    /// [`DecodeSettings::with_classifier`] for a reference table that may be
    /// an S3 object (read with `s3`).
    pub async fn load(
        decoder: &DecoderConfig,
        classifier: Classifier,
        enrich: &EnrichConfig,
        stage: &DecodeStageConfig,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Result<Self, DecodeSetupError> {
        let enricher = Enricher::load(enrich, &stage.default_service, s3).await?;
        Ok(Self::with_enricher(decoder, classifier, enricher, stage))
    }

    /// Settings with a classifier and a reference table already loaded.
    pub fn with_enricher(
        decoder: &DecoderConfig,
        classifier: Classifier,
        enricher: Option<Enricher>,
        stage: &DecodeStageConfig,
    ) -> Self {
        DecodeSettings {
            decoder: decoder.clone(),
            classifier,
            default_service: Arc::from(stage.default_service.as_str()),
            enricher,
        }
    }
}

/// One decode worker.
pub struct DecodeStage {
    decoder: LineDecoder,
    default_service: Arc<str>,
    enricher: Option<Enricher>,
}

impl DecodeStage {
    /// A worker with its own scratch buffers.
    pub fn new(settings: &DecodeSettings) -> Self {
        DecodeStage {
            decoder: LineDecoder::new(settings.decoder.clone(), settings.classifier.clone()),
            default_service: settings.default_service.clone(),
            enricher: settings.enricher.clone(),
        }
    }
}

/// `spate_events_total{severity}` and `spate_decode_dead_letters_total`.
fn count_events(batch: &LogBatch) {
    for severity in crate::event::Severity::ALL {
        let n = batch.counts.severity(severity);
        if n > 0 {
            metrics::counter!("spate_events_total", "severity" => severity.as_str()).increment(n);
        }
    }
    if batch.counts.dead_letters > 0 {
        metrics::counter!("spate_decode_dead_letters_total").increment(batch.counts.dead_letters);
    }
}

impl Actor for DecodeStage {
    type In = RawChunk;
    type Out = LogBatch;

    async fn handle(&mut self, batch: Batch<RawChunk>, ctx: &mut Ctx<LogBatch>) -> ActorResult {
        let chunk = &batch.payload;
        let mut events = EventBatch::default();
        let mut dead = Vec::new();
        let decode_ctx = DecodeContext {
            source: &chunk.source,
            origin: &chunk.origin,
            ingest_ts_ms: chunk.ingest_ts_ms,
            default_service: &self.default_service,
            default_host: None,
        };
        let stats = match chunk.format {
            ChunkFormat::Lines => self.decoder.decode_chunk(
                &chunk.bytes,
                chunk.first_position,
                &decode_ctx,
                &mut events,
                &mut dead,
            ),
            ChunkFormat::CloudWatchPayload => self.decoder.decode_cloudwatch(
                &chunk.bytes,
                chunk.first_position,
                &decode_ctx,
                &mut events,
                &mut dead,
            ),
            ChunkFormat::Compressed => self.decoder.decode_compressed(
                &chunk.bytes,
                chunk.first_position,
                &decode_ctx,
                &mut events,
                &mut dead,
            ),
        };
        if let Some(enricher) = &self.enricher {
            enricher.apply(&mut events);
        }
        let out = LogBatch::from_events(events, dead, &stats)
            .map_err(|e| ActorError::internal(format!("arrow conversion failed: {e}")))?;
        count_events(&out);
        tap::point(TapStage::Decode).offer(|| TapItem::Events(out.clone()));
        ctx.send(batch.map(|_| out)).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.enricher.as_ref().map(Enricher::reload_interval)
    }

    async fn tick(&mut self, _ctx: &mut Ctx<LogBatch>) -> ActorResult {
        if let Some(enricher) = &self.enricher {
            enricher.refresh().await;
        }
        Ok(())
    }
}
