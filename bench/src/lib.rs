//! `spate-bench`: Spate's benchmarks.
//!
//! - `benches/engine_hops.rs` (criterion): events/s through a 4-stage actor chain
//!   beside the same chain on raw channels.
//! - `benches/decode_classify.rs` (criterion): events/s of decode + classify on one
//!   core for the W1 and W2 workloads.
//! - `run.sh` (the harness): runs the whole suite on the release build and rewrites
//!   `docs/benchmarks.json`, the generated section of `docs/BENCHMARKS.md` and
//!   `docs/spike.svg`; see `bench/README.md`.
//!
//! Benchmarks measure; they never assert a throughput. Figures and the commands
//! that produced them are recorded in `docs/BENCHMARKS.md`.
//!
//! This crate is not shipped; nothing depends on it.

pub mod engine_chain;
