//! Fuzzing how `POST /v1/logs` reads a body (`bin/src/run/body.rs`: gzip, zstd,
//! NDJSON, JSON arrays, CloudWatch payloads, Firehose requests) with the
//! harness of `operators/tests/fuzz.rs`: mutated seeds from
//! `operators/tests/fuzz_corpus/{firehose,json_lines,cloudwatch}/`.
//!
//! Properties: nothing panics; a body is refused only with a reason; every
//! line of an accepted body is in a record (line records end with a newline
//! and count their lines); every Firehose record that holds something
//! becomes a record; the decoded size stays within `max_decoded`; memory held
//! at once stays within a bound of the input and the limit.

#[path = "../src/run/body.rs"]
#[allow(dead_code)]
mod body;

#[path = "../../operators/tests/fuzz/harness.rs"]
mod harness;

use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use spate_operators::sources::ChunkFormat;

use body::{BodyError, parse};
use harness::{Meter, peak_during};

#[global_allocator]
static METER: Meter = Meter;

/// The decoded-size limit while fuzzing.
const MAX_DECODED: usize = 256 << 10;

/// How the request arrives: the body, `Content-Encoding`, and the Firehose
/// request id header.
#[derive(Debug, Clone)]
struct Request {
    body: Vec<u8>,
    encoding: Option<&'static str>,
    firehose_id: Option<&'static str>,
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn requests() -> impl Strategy<Value = Request> {
    let mut seeds = harness::seeds("firehose");
    seeds.extend(harness::seeds("json_lines"));
    seeds.extend(harness::seeds("cloudwatch"));
    (
        harness::inputs(seeds),
        0u8..3,
        prop_oneof![
            Just(None),
            Just(Some("gzip")),
            Just(Some("zstd")),
            Just(Some("identity")),
            Just(Some("br"))
        ],
        prop_oneof![3 => Just(None), 1 => Just(Some("req-1"))],
    )
        .prop_map(|(body, pack, encoding, firehose_id)| Request {
            body: match pack {
                0 => body,
                1 => gzip(&body),
                _ => zstd::bulk::compress(&body, 3).unwrap(),
            },
            encoding,
            firehose_id,
        })
}

/// The records a Firehose request should give, by an independent reading:
/// those whose data decodes to something other than whitespace.
fn firehose_records(text: &[u8]) -> Option<usize> {
    use base64::Engine as _;
    let value: serde_json::Value = serde_json::from_slice(text).ok()?;
    let records = value.get("records")?.as_array()?;
    let mut n = 0;
    for r in records {
        let data = r.get("data")?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        n += usize::from(bytes.iter().any(|b| !b.is_ascii_whitespace()));
    }
    Some(n)
}

fn check(request: &Request) -> Result<(), TestCaseError> {
    let (parsed, peak) = peak_during(|| {
        parse(
            &request.body,
            request.encoding,
            request.firehose_id,
            MAX_DECODED,
        )
    });
    match &parsed {
        Ok(parsed) => {
            prop_assert!(!parsed.records.is_empty());
            let mut total = 0;
            for r in &parsed.records {
                prop_assert!(!r.bytes.is_empty());
                total += r.bytes.len();
                if r.format == ChunkFormat::Lines {
                    prop_assert_eq!(r.bytes.last(), Some(&b'\n'));
                    prop_assert_eq!(r.lines, r.bytes.iter().filter(|&&b| b == b'\n').count());
                }
            }
            if parsed.firehose_request_id.is_some() {
                // Each Firehose record that holds something is one record.
                let text = plain_body(request);
                if let Some(n) = text.as_deref().and_then(firehose_records) {
                    prop_assert_eq!(parsed.records.len(), n, "firehose records conserved");
                }
                // The decoded data, plus a newline added per line record.
                prop_assert!(
                    total <= MAX_DECODED + parsed.records.len(),
                    "{total} decoded bytes"
                );
            }
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            if let BodyError::TooLarge { limit_mib } = e {
                prop_assert_eq!(*limit_mib, MAX_DECODED >> 20);
            }
        }
    }
    // Bodies are small here; the decoded text is capped at MAX_DECODED. A
    // JSON array is parsed into values before it is written out again (many
    // times its size: the subject of issue 13's memory accounting work).
    let input = request.body.len().max(1);
    let bound = 128 * input + 8 * MAX_DECODED + (1 << 20);
    prop_assert!(peak <= bound, "{peak} bytes held for a {input}-byte body");
    Ok(())
}

/// The body after decompression, when it decompresses within the limit.
fn plain_body(request: &Request) -> Option<Vec<u8>> {
    use std::io::Read;
    let body = &request.body[..];
    let (gzip, zstd) = match request.encoding {
        Some("gzip") => (true, false),
        Some("zstd") => (false, true),
        _ => (
            body.starts_with(&[0x1f, 0x8b]),
            body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        ),
    };
    let mut out = Vec::new();
    let limit = MAX_DECODED as u64 + 1;
    if gzip {
        flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .ok()?;
    } else if zstd {
        zstd::stream::read::Decoder::new(body)
            .and_then(|d| d.take(limit).read_to_end(&mut out))
            .ok()?;
    } else {
        return Some(request.body.clone());
    }
    let start = out.iter().position(|b| !b.is_ascii_whitespace())?;
    Some(out[start..].to_vec())
}

fn run(config: Config, deterministic: bool) {
    let mut runner = if deterministic {
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
    } else {
        TestRunner::new(config)
    };
    if let Err(e) = runner.run(&requests(), |r| check(&r)) {
        panic!("firehose bodies: {e}");
    }
}

#[test]
fn fuzz_firehose_bodies() {
    run(harness::short(), true);
}

#[test]
#[ignore = "long fuzz run: cargo test -- --ignored fuzz"]
fn fuzz_firehose_bodies_long() {
    run(harness::long(), false);
}
