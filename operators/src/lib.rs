//! Spate's operators: decoders, the classifier, enrichment, windows, sources and sinks.
pub mod classify;
pub mod decode;
pub mod event;
