//! Transforms: stages between sources and sinks.

pub mod decode;
