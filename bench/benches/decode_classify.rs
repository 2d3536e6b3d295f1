//! Decode + classify throughput on one core: W1 (app-json) and W2 (access) from
//! `spate-loadgen` decoded with [`LineDecoder`] as the decode stage does it.
//!
//! Run: `cargo bench -p spate-bench --bench decode_classify`
//!
//! Input: 200 000 events of each workload (seed 1), cut at line ends into 1 MiB
//! chunks (the file source's default), each decoded into a fresh [`EventBatch`]
//! with the default decoder limits and classifier. Before timing, one pass checks
//! that nothing went to the dead-letter output and that the severity counts are the
//! ones the generator intended, so a faster but wrong decoder does not pass
//! unnoticed. Criterion reports time per pass and events/s (`Throughput::Elements`).
//!
//! A second group, `to_arrow`, times the step after decoding on the same W1
//! batches: [`LogBatch::from_events`] (partitioning the rows by hour and
//! service, building the Arrow columns, splitting them by partition), with the
//! batches' copies made outside the timing.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use spate_loadgen::{Workload, generate};
use spate_operators::classify::Classifier;
use spate_operators::decode::DecodeStats;
use spate_operators::decode::{DecodeContext, DecoderConfig, LineDecoder};
use spate_operators::event::EventBatch;
use spate_operators::log_batch::LogBatch;

/// Events generated per workload.
const EVENTS: u64 = 200_000;
/// Chunk size, as the file source reads.
const CHUNK: usize = 1 << 20;

/// Cuts `input` into chunks of at most [`CHUNK`] bytes ending at a newline (a
/// longer line is one chunk).
fn chunks(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let cut = if rest.len() <= CHUNK {
            rest.len()
        } else {
            rest[..CHUNK]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1)
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// Decodes every chunk once into fresh batches; returns the events decoded and
/// the severity counts (INFO, WARNING, ERROR, CRITICAL).
fn decode_all(decoder: &mut LineDecoder, parts: &[&[u8]], check: bool) -> (u64, [u64; 4]) {
    let ctx = DecodeContext::new("file:/var/log/app.log", 1_800_000_000_000);
    let mut dead = Vec::new();
    let mut severity = [0u64; 4];
    let mut events = 0;
    let mut position = 0u64;
    for part in parts {
        let mut out = EventBatch::default();
        events += decoder
            .decode_chunk(part, position, &ctx, &mut out, &mut dead)
            .events;
        position += part.len() as u64;
        if check {
            for s in &out.severity {
                severity[s.index()] += 1;
            }
        }
        std::hint::black_box(&out);
    }
    assert!(dead.is_empty(), "dead letter: {:?}", dead.first());
    (events as u64, severity)
}

fn decode_classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_classify");
    group.sample_size(20);
    for workload in [Workload::AppJson, Workload::Access] {
        let mut input = Vec::new();
        let expected = generate(workload, EVENTS, 1, &mut input).expect("generate");
        let parts = chunks(&input);
        let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
        let (events, severity) = decode_all(&mut decoder, &parts, true);
        assert_eq!(events, EVENTS, "{} events decoded", workload.short_name());
        assert_eq!(
            severity,
            expected.expected_severity,
            "{} severity counts",
            workload.short_name()
        );
        group.throughput(Throughput::Elements(EVENTS));
        group.bench_function(workload.short_name(), |b| {
            b.iter(|| decode_all(&mut decoder, &parts, false))
        });
    }
    group.finish();
}

/// Decodes every chunk into its own batch, as the decode stage hands them on.
fn decoded_batches(decoder: &mut LineDecoder, parts: &[&[u8]]) -> Vec<EventBatch> {
    let ctx = DecodeContext::new("file:/var/log/app.log", 1_800_000_000_000);
    let mut dead = Vec::new();
    let mut position = 0u64;
    let batches = parts
        .iter()
        .map(|part| {
            let mut out = EventBatch::default();
            decoder.decode_chunk(part, position, &ctx, &mut out, &mut dead);
            position += part.len() as u64;
            out
        })
        .collect();
    assert!(dead.is_empty(), "dead letter: {:?}", dead.first());
    batches
}

fn to_arrow(c: &mut Criterion) {
    let mut group = c.benchmark_group("to_arrow");
    group.sample_size(20);
    let mut input = Vec::new();
    generate(Workload::AppJson, EVENTS, 1, &mut input).expect("generate");
    let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let batches = decoded_batches(&mut decoder, &chunks(&input));
    let convert = |batches: Vec<EventBatch>| -> (usize, usize) {
        let (mut rows, mut parts) = (0, 0);
        for batch in batches {
            let out = LogBatch::from_events(batch, Vec::new(), &DecodeStats::default())
                .expect("W1 rows convert");
            rows += out
                .parts
                .iter()
                .map(|p| p.records.num_rows())
                .sum::<usize>();
            parts += out.parts.len();
        }
        (rows, parts)
    };
    let (rows, parts) = convert(batches.clone());
    assert_eq!(rows as u64, EVENTS, "rows after the split");
    assert!(parts > batches.len(), "W1 batches span several partitions");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("w1", |b| {
        b.iter_batched(|| batches.clone(), convert, BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, decode_classify, to_arrow);
criterion_main!(benches);
