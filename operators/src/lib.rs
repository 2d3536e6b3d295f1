//! Spate's operators: decoders, the classifier, enrichment, windows, sources and sinks.
pub mod event;
