//! The compressed-message target: whole SQS messages or Kinesis records that
//! a producer compressed (gzip or zstd, raw or base64), as
//! `LineDecoder::decode_compressed` reads them. Inputs are the JSON and text
//! line seeds packed in every way, mutated as packed bytes (so the unpacking
//! sees broken frames, bad base64 and bombs) and as lines packed again (so
//! the mutations reach the decoder).

use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use spate_operators::classify::Classifier;
use spate_operators::decode::{DecodeContext, LineDecoder};
use spate_operators::event::EventBatch;

use super::harness::{self, peak_during};
use super::unpacked::unpack;
use super::{
    check_dead_letters, check_outcomes, check_peak, decoder_config, each_seed, expected_outcomes,
    gzip, run,
};

/// `lines` packed one way of four: gzip or zstd, raw or base64.
fn pack(lines: &[u8], way: u8) -> Vec<u8> {
    let packed = if way.is_multiple_of(2) {
        gzip(lines)
    } else {
        zstd::bulk::compress(lines, 3).unwrap()
    };
    if way >= 2 {
        base64::engine::general_purpose::STANDARD
            .encode(packed)
            .into_bytes()
    } else {
        packed
    }
}

fn check_compressed(decoder: &mut LineDecoder, payload: &[u8]) -> Result<(), TestCaseError> {
    let cfg = decoder.config().clone();
    let ctx = DecodeContext::new("sqs:fuzz:m1", 1_795_486_354_861);
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let (stats, peak) =
        peak_during(|| decoder.decode_compressed(payload, 0, &ctx, &mut out, &mut dead));
    prop_assert_eq!(out.len(), stats.events, "events counted");
    prop_assert_eq!(dead.len(), stats.dead_letters, "dead letters counted");
    match unpack(payload, cfg.max_payload_bytes) {
        // What does not unpack is one dead letter saying why.
        None => {
            prop_assert_eq!((stats.events, stats.dead_letters), (0, 1));
            prop_assert!(
                dead[0].reason.starts_with("bad ") || dead[0].reason.contains(" exceeds "),
                "{}",
                dead[0].reason
            );
            prop_assert!(dead[0].raw.len() <= payload.len());
        }
        // What does is read as the same lines uncompressed would be.
        Some(lines) => {
            check_outcomes(&lines, &cfg, &stats)?;
            if expected_outcomes(&lines, &cfg).is_some() {
                check_dead_letters(&dead, 0, lines.len())?;
            }
        }
    }
    // The decompressed bytes are capped; the rows grow with them.
    check_peak(peak, payload.len(), 8 * cfg.max_payload_bytes)
}

pub fn compressed_target(config: Config, deterministic: bool) {
    let lines: Vec<Vec<u8>> = ["json_lines", "text_lines"]
        .into_iter()
        .flat_map(harness::seeds)
        .collect();
    // The lines packed every way, and the inputs once found failing.
    let packed: Vec<Vec<u8>> = lines
        .iter()
        .flat_map(|l| (0..4).map(move |way| pack(l, way)))
        .chain(harness::seeds("compressed"))
        .collect();
    let decoder =
        std::cell::RefCell::new(LineDecoder::new(decoder_config(), Classifier::default()));
    each_seed("compressed", &packed, |s| {
        check_compressed(&mut decoder.borrow_mut(), s)
    });
    let inputs = prop_oneof![
        harness::inputs(packed),
        (harness::inputs(lines), 0u8..4).prop_map(|(lines, way)| pack(&lines, way)),
    ];
    run("compressed", config, deterministic, inputs, |input| {
        check_compressed(&mut decoder.borrow_mut(), &input)
    });
}
