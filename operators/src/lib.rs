//! `spate-operators`: the stages of Spate's pipelines.
//!
//! - [`sources`]: where raw bytes come from (files and stdin so far).
//! - [`decode`] and [`classify`]: bytes to classified events ([`event::EventBatch`]),
//!   with dead letters for what cannot be read; [`enrich`]: host IP or CIDR →
//!   service, owner, contact from a reference table.
//! - [`transforms`]: the engine actors wrapping them ([`transforms::decode::DecodeStage`]).
//! - [`log_batch`]: the payload between decode and the sinks (Arrow, split by partition).
//! - [`sinks`]: where events end up (the Parquet lake, dead letters).
//!
//! It is not the CLI or the configuration file format: `spate` (bin/) wires these
//! into pipelines.

pub mod alerts;
pub mod aws;
pub mod classify;
pub mod component;
pub mod decode;
pub mod enrich;
pub mod event;
pub mod log_batch;
pub mod sinks;
pub mod sources;
pub mod transforms;
pub mod windows;
