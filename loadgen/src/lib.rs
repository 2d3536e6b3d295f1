//! Deterministic benchmark workloads for Spate.
//!
//! This crate writes the workloads described in `WORKLOAD.md` — W1 app-json, W2 access,
//! W3 cloudwatch — so that every performance figure is measured on the same bytes: the same
//! workload, event count and seed always produce byte-identical output (for a given version of
//! this crate on a 64-bit platform; the generator is `rand`'s `SmallRng`, which makes no
//! promise across its own versions). Event times start at the fixed instant
//! 2026-11-23T10:00:00.000Z and advance a few milliseconds per event; the wall clock is never
//! read.
//!
//! Alongside the bytes, [`generate`] returns [`GenerateStats`]: what the generator *intended*
//! each event to classify as under the DESIGN.md rules (severity ladder and the built-in
//! `http_5xx` / `failed_login` tags). The generator constructs every event so that the rules
//! give exactly that answer — events meant to be INFO contain none of the severity keywords,
//! events without a level field carry a keyword or status that decides them — so a test of
//! the classifier can compare its counts with these for equality, not within a tolerance.
//!
//! What it is for: producing input files and streams for benchmarks, smoke tests and
//! classifier tests. What it is not for: it does not parse or classify logs itself (that is
//! `spate-operators`).
//!
//! On top of the generators:
//! - [`send`] drives a workload into a target (Spate's HTTP ingest, an SQS queue, a Kinesis
//!   stream, a file, stdout) at a rate profile (steady, ramp, W4 spike, sine) with open-loop
//!   pacing, and reports achieved rate, rejections, errors and latency; [`BatchGenerator`]
//!   stamps each event with the run marks `lg_run`, `lg_seq` and `lg_sent_ms`.
//! - [`verify`] reads Spate's Parquet lake (local or on S3) back and reports, for one run,
//!   lost and duplicated sequence numbers and send→archive latency; given `send`'s report,
//!   only the sequence numbers `send` saw acknowledged ([`SeqRanges`]) can be lost.
//!
//! ```
//! use spate_loadgen::{Severity, Workload, generate};
//!
//! let mut out = Vec::new();
//! let stats = generate(Workload::AppJson, 1_000, 7, &mut out).unwrap();
//! assert_eq!(stats.events, 1_000);
//! assert_eq!(stats.bytes, out.len() as u64);
//! assert_eq!(stats.expected_severity.iter().sum::<u64>(), 1_000);
//! assert!(stats.severity(Severity::Info) > stats.severity(Severity::Warning));
//! ```

use std::io::{self, Write};

pub mod send;
mod seq_ranges;
pub mod verify;
mod workload;

pub use seq_ranges::SeqRanges;
pub use workload::expected::{ExpectedTags, GenerateStats, Severity};
pub use workload::kind::Workload;
pub use workload::marks::{
    MAX_RUN_ID_LEN, RUN_FIELD, RunId, SENT_MS_FIELD, SEQ_FIELD, is_valid_run_id,
};
pub use workload::stream::BatchGenerator;

/// Writes `events` events of `workload`, generated from `seed`, to `writer`.
///
/// Output is buffered internally (pass the raw file or stdout; a `&mut Vec<u8>` works too) and
/// flushed before returning. The same `(workload, events, seed)` always writes the same bytes,
/// and W1/W2 output for `n` events is a prefix of the output for any larger count.
pub fn generate<W: Write>(
    workload: Workload,
    events: u64,
    seed: u64,
    writer: W,
) -> io::Result<GenerateStats> {
    workload::run(workload, events, seed, writer)
}
