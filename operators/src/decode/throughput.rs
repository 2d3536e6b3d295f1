//! Single-core decode + classify throughput on the loadgen workloads.
//!
//! `cargo test -p spate-operators --release --lib -- --ignored --nocapture --test-threads=1 throughput`
//!
//! Input is W1/W2 from `spate_loadgen` (200 000 events, seed 1), cut into 512 KiB
//! chunks at line ends (the file source's default), each decoded into a fresh
//! [`EventBatch`] as the decode stage does. Prints events/s, MiB/s, an output
//! digest (to compare revisions) and the severity/tag counts against what the
//! generator intended.

use std::hash::{DefaultHasher, Hash, Hasher};

use spate_loadgen::{Workload, generate};

use super::*;
use crate::event::StrColumn;

const EVENTS: u64 = 200_000;
const CHUNK: usize = 512 << 10;
const PASSES: usize = 5;

fn chunks(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let cut = if rest.len() <= CHUNK {
            rest.len()
        } else {
            memchr::memrchr(b'\n', &rest[..CHUNK]).map_or(rest.len(), |i| i + 1)
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

fn hash_col(h: &mut DefaultHasher, c: &StrColumn) {
    c.data.hash(h);
    c.offsets.hash(h);
    c.validity.hash(h);
}

fn digest(h: &mut DefaultHasher, b: &EventBatch) {
    for c in b.str_columns() {
        hash_col(h, c);
    }
    (&b.ts, &b.ingest_ts, &b.severity, &b.status).hash(h);
    for (i, bits) in b.tags.iter().enumerate() {
        (i, bits.count_ones()).hash(h);
        for t in b.row_tags(i) {
            t.hash(h);
        }
    }
}

/// CPU time of this thread in seconds (Linux `schedstat`), so that other work
/// on the machine does not count; wall time elsewhere.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split(' ').next()?.parse::<f64>().ok()? / 1e9)
}

fn run(name: &str, workload: Workload) {
    let mut input = Vec::new();
    let expected = generate(workload, EVENTS, 1, &mut input).unwrap();
    let parts = chunks(&input);
    let ctx = DecodeContext::new("file:/var/log/app.log", 1_800_000_000_000);
    let mut d = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let mut dead = Vec::new();
    // One untimed pass for the digest and counts.
    let mut h = DefaultHasher::new();
    let (mut sev, mut tags) = ([0u64; 4], std::collections::BTreeMap::new());
    let mut pos = 0u64;
    for p in &parts {
        let mut out = EventBatch::default();
        d.decode_chunk(p, pos, &ctx, &mut out, &mut dead);
        pos += p.len() as u64;
        digest(&mut h, &out);
        for s in &out.severity {
            sev[s.index()] += 1;
        }
        for i in 0..out.len() {
            for t in out.row_tags(i) {
                *tags.entry(t.to_string()).or_insert(0u64) += 1;
            }
        }
    }
    assert!(dead.is_empty(), "{:?}", dead.first());
    let t = std::time::Instant::now();
    let cpu0 = cpu_seconds();
    let mut n = 0;
    for _ in 0..PASSES {
        let mut pos = 0u64;
        for p in &parts {
            let mut out = EventBatch::default();
            n += d.decode_chunk(p, pos, &ctx, &mut out, &mut dead).events;
            pos += p.len() as u64;
            std::hint::black_box(&out);
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let s = cpu_seconds().zip(cpu0).map_or(wall, |(b, a)| b - a);
    println!(
        "{name}: {:.0} events/s, {:.1} MiB/s per CPU-second ({} events, {:.0} B/event, {PASSES} passes, {wall:.2} s wall), digest {:016x}",
        n as f64 / s,
        (input.len() * PASSES) as f64 / s / (1 << 20) as f64,
        EVENTS,
        input.len() as f64 / EVENTS as f64,
        h.finish()
    );
    println!(
        "{name}: severity INFO/WARNING/ERROR/CRITICAL {sev:?} (intended {:?}), tags {tags:?} (intended http_5xx {} failed_login {})",
        expected.expected_severity,
        expected.expected_tags.http_5xx,
        expected.expected_tags.failed_login
    );
    assert_eq!(sev, expected.expected_severity);
    assert_eq!(
        tags.get("http_5xx").copied().unwrap_or(0),
        expected.expected_tags.http_5xx
    );
    assert_eq!(
        tags.get("failed_login").copied().unwrap_or(0),
        expected.expected_tags.failed_login
    );
}

#[test]
#[ignore = "throughput benchmark; run in release"]
fn throughput_w1_json() {
    run("w1-json", Workload::AppJson);
}

#[test]
#[ignore = "throughput benchmark; run in release"]
fn throughput_w2_access() {
    run("w2-access", Workload::Access);
}
