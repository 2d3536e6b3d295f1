//! Fuzzing the decoders (compressed messages included) and the journal reader on stable Rust: proptest
//! strategies that mutate the seed corpora in `tests/fuzz_corpus/<target>/`
//! (see its README), with these properties for every input:
//!
//! - nothing panics;
//! - every non-blank input line ends as an event or a dead letter with a
//!   reason (the counts add up), and the decoders' counters match what they
//!   produced;
//! - memory held at once stays within a bound set by the input size and the
//!   configured limits, never by lengths or ratios the input claims.
//!
//! The normal run tries 256 cases per target; `cargo test -p spate-operators
//! --test fuzz -- --ignored fuzz` runs 50,000 per target (`SPATE_FUZZ_CASES`
//! to change) from a fresh random seed. A failing input is written to
//! `$TMPDIR/spate-fuzz-failures/`: fix the bug and add the input to the
//! target's corpus.

#[path = "fuzz/compressed.rs"]
mod compressed;
#[path = "fuzz/harness.rs"]
mod harness;
#[path = "fuzz/seeds.rs"]
mod seeds;
#[path = "fuzz/unpacked.rs"]
mod unpacked;

use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use spate_operators::classify::Classifier;
use spate_operators::decode::{DeadLetter, DecodeContext, DecoderConfig, LineDecoder};
use spate_operators::event::EventBatch;
use spate_operators::sources::journal::{DecodedSegment, decode_segment};
use spate_operators::sources::kinesis::kpl::{KPL_MAGIC, aggregate, deaggregate};

use harness::{Meter, Mutation, in_place, peak_during};

#[global_allocator]
static METER: Meter = Meter;

const MIB: usize = 1 << 20;

/// Decoder limits for fuzzing: small, so that bombs are cheap to try.
fn decoder_config() -> DecoderConfig {
    DecoderConfig {
        max_line_bytes: 64 << 10,
        max_payload_bytes: 256 << 10,
        ..DecoderConfig::default()
    }
}

/// Runs `test` on `strategy` under `config`; a short run is deterministic.
fn run<S: Strategy>(
    target: &str,
    config: Config,
    deterministic: bool,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug + AsBytes,
{
    let mut runner = if deterministic {
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    } else {
        TestRunner::new(config)
    };
    if let Err(e) = runner.run(&strategy, test) {
        let saved = match &e {
            TestError::Fail(_, value) => save_failure(target, value.as_bytes()),
            TestError::Abort(_) => String::new(),
        };
        panic!("{target}: {e}{saved}");
    }
}

/// Checks every seed as it is first: inputs that once failed stay checked.
fn each_seed(target: &str, seeds: &[Vec<u8>], test: impl Fn(&[u8]) -> Result<(), TestCaseError>) {
    for (i, seed) in seeds.iter().enumerate() {
        if let Err(e) = test(seed) {
            panic!("{target}: seed {i} of the corpus fails: {e}");
        }
    }
}

/// The bytes of a failing value, to keep in the corpus.
trait AsBytes {
    fn as_bytes(&self) -> Vec<u8>;
}

impl AsBytes for Vec<u8> {
    fn as_bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

impl AsBytes for (Vec<u8>, Vec<Mutation>) {
    fn as_bytes(&self) -> Vec<u8> {
        harness::apply(&self.0, &self.1, &[])
    }
}

impl AsBytes for Vec<Vec<u8>> {
    fn as_bytes(&self) -> Vec<u8> {
        self.concat()
    }
}

fn save_failure(target: &str, bytes: Vec<u8>) -> String {
    let dir = std::env::temp_dir().join("spate-fuzz-failures");
    let path = dir.join(format!("{target}-{:08x}.bin", crc(&bytes)));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &bytes)) {
        Ok(()) => format!("\nfailing input saved to {}", path.display()),
        Err(e) => format!("\n(cannot save the failing input: {e})"),
    }
}

fn crc(bytes: &[u8]) -> u32 {
    // FNV-1a: only to name files.
    bytes.iter().fold(0x811c9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x01000193)
    })
}

// ---------------------------------------------------------------------------
// Lines: JSON, plain text, access logs (one decoder picks per line).

/// How many outcomes (events + dead letters) `chunk` must produce, when that
/// is knowable: `None` when a line may be a CloudWatch payload (which expands
/// to any number of events).
fn expected_outcomes(chunk: &[u8], cfg: &DecoderConfig) -> Option<usize> {
    let body = chunk.strip_prefix(b"\xef\xbb\xbf").unwrap_or(chunk);
    if body.trim_ascii_start().starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let mut n = 0;
    for line in body.split(|&b| b == b'\n') {
        if line.trim_ascii_start().starts_with(b"H4sI") {
            return None;
        }
        if line.len() > cfg.max_line_bytes {
            n += 1;
            continue;
        }
        let kept: Vec<u8> = line.iter().copied().filter(|&b| b != 0).collect();
        let kept = kept.trim_ascii();
        if kept.is_empty() {
            continue;
        }
        if memchr_find(kept, b"logEvents") {
            return None;
        }
        n += 1;
    }
    Some(n)
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_dead_letters(dead: &[DeadLetter], first: u64, len: usize) -> Result<(), TestCaseError> {
    for dl in dead {
        prop_assert!(!dl.reason.is_empty(), "dead letter without a reason");
        prop_assert!(
            dl.position >= first && dl.position <= first + len as u64,
            "dead letter position {} outside {first}..{}",
            dl.position,
            first + len as u64
        );
    }
    Ok(())
}

fn check_lines(decoder: &mut LineDecoder, chunk: &[u8]) -> Result<(), TestCaseError> {
    let cfg = decoder.config().clone();
    let ctx = DecodeContext::new("fuzz", 1_795_486_354_861);
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let (stats, peak) =
        peak_during(|| decoder.decode_chunk(chunk, 1000, &ctx, &mut out, &mut dead));
    prop_assert_eq!(out.len(), stats.events, "events counted");
    prop_assert_eq!(dead.len(), stats.dead_letters, "dead letters counted");
    check_outcomes(chunk, &cfg, &stats)?;
    check_dead_letters(&dead, 1000, chunk.len())?;
    // The batch, the dead letters (at most a line each) and the scratch
    // buffers grow with the input; a CloudWatch line may unpack up to the
    // payload limit.
    check_peak(peak, chunk.len(), 4 * cfg.max_payload_bytes)
}

/// Every non-blank line of `lines` is an event or a dead letter, when that
/// is knowable ([`expected_outcomes`]).
fn check_outcomes(
    lines: &[u8],
    cfg: &DecoderConfig,
    stats: &spate_operators::decode::DecodeStats,
) -> Result<(), TestCaseError> {
    if let Some(n) = expected_outcomes(lines, cfg) {
        prop_assert_eq!(
            stats.events + stats.dead_letters,
            n,
            "every non-blank line is an event or a dead letter"
        );
    }
    Ok(())
}

/// `peak` bytes held for `input` bytes stay within 32 times the input plus
/// `limits` (what the configured limits let a decoder hold) and 1 MiB.
fn check_peak(peak: usize, input: usize, limits: usize) -> Result<(), TestCaseError> {
    let bound = 32 * input + limits + MIB;
    prop_assert!(peak <= bound, "{peak} bytes held for {input} input bytes");
    Ok(())
}

fn lines_target(target: &str, config: Config, deterministic: bool) {
    let seeds = harness::seeds(target);
    let decoder =
        std::cell::RefCell::new(LineDecoder::new(decoder_config(), Classifier::default()));
    each_seed(target, &seeds, |s| {
        check_lines(&mut decoder.borrow_mut(), s)
    });
    run(
        target,
        config,
        deterministic,
        harness::inputs(seeds),
        |input| check_lines(&mut decoder.borrow_mut(), &input),
    );
}

#[test]
fn fuzz_json_lines() {
    lines_target("json_lines", harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_json_lines_long() {
    lines_target("json_lines", harness::long(), false);
}

#[test]
fn fuzz_text_lines() {
    lines_target("text_lines", harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_text_lines_long() {
    lines_target("text_lines", harness::long(), false);
}

#[test]
fn fuzz_access_logs() {
    lines_target("access_logs", harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_access_logs_long() {
    lines_target("access_logs", harness::long(), false);
}

// ---------------------------------------------------------------------------
// CloudWatch Logs subscription payloads: gzip, base64 of gzip, plain JSON.

/// The JSON inside a payload, unpacked independently of the decoder (the
/// compressed-messages target's reading: gzip or zstd, raw or base64, or
/// plain JSON); `None` when it cannot be unpacked.
fn unpack_cloudwatch(payload: &[u8], max: usize) -> Option<serde_json::Value> {
    serde_json::from_slice(&unpacked::unpack(payload, max)?).ok()
}

fn check_cloudwatch(decoder: &mut LineDecoder, payload: &[u8]) -> Result<(), TestCaseError> {
    let cfg = decoder.config().clone();
    let ctx = DecodeContext::new("fuzz", 1_795_486_354_861);
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let (stats, peak) =
        peak_during(|| decoder.decode_cloudwatch(payload, 7, &ctx, &mut out, &mut dead));
    prop_assert_eq!(out.len(), stats.events, "events counted");
    prop_assert_eq!(dead.len(), stats.dead_letters, "dead letters counted");
    for dl in &dead {
        prop_assert!(!dl.reason.is_empty());
        prop_assert_eq!(dl.position, 7);
        prop_assert!(dl.raw.len() <= payload.len().max(cfg.max_line_bytes));
    }
    let payload_failed = stats.events == 0
        && stats.dead_letters == 1
        && [
            "bad ",
            "gzip payload exceeds",
            "invalid cloudwatch json",
            "not a cloudwatch",
        ]
        .iter()
        .any(|p| dead[0].reason.starts_with(p));
    if !payload_failed && stats.control_messages == 0 {
        // A DATA_MESSAGE: each logEvent is an event, a dead letter, or (a
        // blank message) skipped — when an independent parser agrees on the
        // events.
        if let Some(events) = unpack_cloudwatch(payload, cfg.max_payload_bytes)
            .and_then(|v| v.get("logEvents").and_then(|e| e.as_array()).cloned())
        {
            let blank = events
                .iter()
                .filter(|e| {
                    e.get("message").and_then(|m| m.as_str()).is_some_and(|m| {
                        m.len() <= cfg.max_line_bytes
                            && m.bytes()
                                .filter(|&b| b != 0)
                                .all(|b| b.is_ascii_whitespace())
                    })
                })
                .count();
            prop_assert_eq!(
                stats.events + stats.dead_letters + blank,
                events.len(),
                "every logEvent is an event, a dead letter or blank"
            );
        }
    }
    // The decompressed payload is capped; the tape and the rows grow with it.
    let bound = 32 * payload.len() + 4 * cfg.max_payload_bytes + MIB;
    prop_assert!(
        peak <= bound,
        "{peak} bytes held for {} input bytes",
        payload.len()
    );
    Ok(())
}

fn cloudwatch_target(config: Config, deterministic: bool) {
    let seeds = harness::seeds("cloudwatch");
    let decoder =
        std::cell::RefCell::new(LineDecoder::new(decoder_config(), Classifier::default()));
    each_seed("cloudwatch", &seeds, |s| {
        check_cloudwatch(&mut decoder.borrow_mut(), s)
    });
    run(
        "cloudwatch",
        config,
        deterministic,
        cloudwatch_inputs(seeds),
        |input| check_cloudwatch(&mut decoder.borrow_mut(), &input),
    );
}

/// Mutations of the seeds as they are (gzip and base64 bytes), and of the
/// JSON inside them, packed again (so the mutations reach the JSON).
fn cloudwatch_inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let inner: Vec<Vec<u8>> = seeds
        .iter()
        .filter_map(|s| unpack_cloudwatch(s, 64 * MIB))
        .map(|v| serde_json::to_vec(&v).unwrap())
        .collect();
    prop_oneof![
        harness::inputs(seeds),
        (harness::inputs(inner), 0u8..3).prop_map(|(json, packing)| match packing {
            0 => json,
            1 => gzip(&json),
            _ => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .encode(gzip(&json))
                    .into_bytes()
            }
        }),
    ]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn fuzz_compressed_messages() {
    compressed::compressed_target(harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_compressed_messages_long() {
    compressed::compressed_target(harness::long(), false);
}

#[test]
fn fuzz_cloudwatch_envelopes() {
    cloudwatch_target(harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_cloudwatch_envelopes_long() {
    cloudwatch_target(harness::long(), false);
}

// ---------------------------------------------------------------------------
// KPL aggregated Kinesis records.

fn check_kpl(data: &[u8]) -> Result<(), TestCaseError> {
    let (records, peak) = peak_during(|| deaggregate(data));
    if let Some(records) = &records {
        prop_assert!(data.starts_with(&KPL_MAGIC));
        let total: usize = records.iter().map(|r| r.len()).sum();
        prop_assert!(
            total <= data.len(),
            "{total} record bytes from {}",
            data.len()
        );
        // Each record came from the input: its bytes lie inside `data`.
        for r in records {
            let start = r.as_ptr() as usize;
            let base = data.as_ptr() as usize;
            prop_assert!(r.is_empty() || (start >= base && start + r.len() <= base + data.len()));
        }
    }
    // One slice per record, each at least two bytes of input.
    prop_assert!(
        peak <= 16 * data.len() + 1024,
        "{peak} bytes for {}",
        data.len()
    );
    Ok(())
}

fn kpl_target(config: Config, deterministic: bool) {
    let seeds = harness::seeds("kpl");
    each_seed("kpl", &seeds, check_kpl);
    let strategy = prop_oneof![
        harness::inputs(seeds).prop_map(|d| vec![d]),
        // Aggregates of arbitrary records: deaggregating gives them back.
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..20),
    ];
    run("kpl", config, deterministic, strategy, |input| {
        if input.len() == 1 {
            return check_kpl(&input[0]);
        }
        let records: Vec<&[u8]> = input.iter().map(Vec::as_slice).collect();
        let packed = aggregate("pk", &records);
        prop_assert_eq!(deaggregate(&packed), Some(records));
        check_kpl(&packed)
    });
}

#[test]
fn fuzz_kpl_aggregates() {
    kpl_target(harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_kpl_aggregates_long() {
    kpl_target(harness::long(), false);
}

// ---------------------------------------------------------------------------
// The journal reader: segment images with disk damage (bytes changed in
// place, zeroed runs, a cut tail) and arbitrary edits.

/// Checks that the records and damaged ranges tile the image in order and
/// that positions only move forward.
fn check_tiling(decoded: &DecodedSegment, len: usize, start: u64) -> Result<(), TestCaseError> {
    let mut pieces: Vec<(u64, u64)> = decoded
        .records
        .iter()
        .map(|r| (r.offset, r.record_bytes))
        .chain(decoded.damaged.iter().map(|d| (d.offset, d.bytes)))
        .collect();
    pieces.sort_unstable();
    let mut at = 0;
    for (offset, bytes) in pieces {
        prop_assert_eq!(offset, at, "records and damage tile the image");
        prop_assert!(bytes > 0);
        at += bytes;
    }
    prop_assert_eq!(at, len as u64, "every byte is a record or damage");
    let mut position = start;
    for r in &decoded.records {
        prop_assert!(r.position >= position, "positions move forward");
        prop_assert!(r.payload.len() as u64 + 40 >= r.record_bytes);
        position = r.position + r.payload.len() as u64;
    }
    Ok(())
}

fn check_journal(
    seed: &[u8],
    mutations: &[Mutation],
    seeds: &[Vec<u8>],
) -> Result<(), TestCaseError> {
    let start = 0;
    let image = harness::apply(seed, mutations, seeds);
    let (decoded, peak) = peak_during(|| decode_segment(&image, start));
    check_tiling(&decoded, image.len(), start)?;
    // Payloads are at most the image; one read window besides.
    prop_assert!(
        peak <= 3 * image.len() + MIB,
        "{peak} bytes for {}",
        image.len()
    );
    if mutations.iter().all(in_place) {
        // Disk damage: every record whose bytes were not touched comes back
        // whole, at its position.
        let original = decode_segment(seed, start);
        let touched: Vec<bool> = seed.iter().zip(&image).map(|(a, b)| a != b).collect();
        let len = touched.len();
        for r in &original.records {
            let (from, to) = (r.offset as usize, (r.offset + r.record_bytes) as usize);
            if to > len || touched[from..to].iter().any(|&t| t) {
                continue;
            }
            prop_assert!(
                decoded
                    .records
                    .iter()
                    .any(|d| d.position == r.position && d.payload == r.payload),
                "intact record at offset {} (position {}) lost; damage: {:?}",
                r.offset,
                r.position,
                decoded.damaged
            );
        }
    }
    Ok(())
}

fn journal_target(config: Config, deterministic: bool) {
    let seeds = harness::seeds("journal");
    each_seed("journal", &seeds, |s| check_journal(s, &[], &seeds));
    let strategy = (
        any::<usize>(),
        prop_oneof![3 => harness::disk_damage(), 1 => harness::mutations().prop_map(|(_, ms)| ms)],
    )
        .prop_map(move |(i, ms)| (seeds[i % seeds.len()].clone(), ms));
    let all = harness::seeds("journal");
    run("journal", config, deterministic, strategy, |(seed, ms)| {
        check_journal(&seed, &ms, &all)
    });
}

#[test]
fn fuzz_journal_reader() {
    journal_target(harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_journal_reader_long() {
    journal_target(harness::long(), false);
}
