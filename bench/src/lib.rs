//! `spate-bench`: Spate's benchmarks.
//!
//! - `benches/engine_hops.rs` (criterion): events/s through a 4-stage actor chain
//!   beside the same chain on raw channels.
//!
//! Benchmarks measure; they never assert a throughput. Figures and the commands
//! that produced them are recorded in `docs/BENCHMARKS.md`.
//!
//! This crate is not shipped; nothing depends on it.

pub mod engine_chain;
