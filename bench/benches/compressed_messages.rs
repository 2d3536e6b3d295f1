//! What compressed SQS message bodies cost to decode: W1 events packed into
//! messages as `loadgen send --target sqs` packs them (NDJSON, gzip or zstd,
//! base64), each message decoded as the SQS source's decode stage does it
//! ([`LineDecoder::decode_chunk`] for plain bodies,
//! [`LineDecoder::decode_compressed`] for compressed ones).
//!
//! Run: `cargo bench -p spate-bench --bench compressed_messages`
//!
//! Input: 100,000 W1 events (seed 42) in messages of 100 and of 500 events.
//! Before timing, one pass checks that every message decodes to its events
//! with no dead letter, and prints the body bytes per event (what SQS bills
//! by the 64 KiB; `spate cost --compression`). Criterion reports time per
//! pass and events/s; the difference from the plain bodies is the CPU the
//! unpacking adds per event.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spate_loadgen::send::{BodyCompression, Packing, pack_messages};
use spate_loadgen::{Workload, generate};
use spate_operators::classify::Classifier;
use spate_operators::decode::{DecodeContext, DecoderConfig, LineDecoder};
use spate_operators::event::EventBatch;

/// Events generated.
const EVENTS: u64 = 100_000;

/// Decodes every message into a fresh batch; returns the events decoded.
fn decode_all(decoder: &mut LineDecoder, messages: &[Vec<u8>], compressed: bool) -> u64 {
    let mut dead = Vec::new();
    let mut events = 0;
    for (i, message) in messages.iter().enumerate() {
        let source = format!("sqs:logs:{i:08}-0000-4000-8000-000000000000");
        let ctx = DecodeContext::new(&source, 1_800_000_000_000);
        let mut out = EventBatch::default();
        let stats = if compressed {
            decoder.decode_compressed(message, 0, &ctx, &mut out, &mut dead)
        } else {
            decoder.decode_chunk(message, 0, &ctx, &mut out, &mut dead)
        };
        events += stats.events;
        std::hint::black_box(&out);
    }
    assert!(dead.is_empty(), "dead letter: {:?}", dead.first());
    events as u64
}

fn compressed_messages(c: &mut Criterion) {
    let mut input = Vec::new();
    generate(Workload::AppJson, EVENTS, 42, &mut input).expect("generate");
    let mut group = c.benchmark_group("compressed_messages");
    group.sample_size(20);
    group.throughput(Throughput::Elements(EVENTS));
    for per_message in [100, 500] {
        for (name, compression) in [
            ("none", BodyCompression::None),
            ("gzip", BodyCompression::Gzip),
            ("zstd", BodyCompression::Zstd),
        ] {
            let packing = Packing {
                compression,
                ..Packing::ndjson(per_message)
            };
            let messages = pack_messages(&input, packing, 0).expect("pack");
            let bytes: usize = messages.iter().map(Vec::len).sum();
            let compressed = compression != BodyCompression::None;
            let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
            assert_eq!(decode_all(&mut decoder, &messages, compressed), EVENTS);
            println!(
                "{name}/{per_message}: {:.1} body bytes per event (base64), {} messages",
                bytes as f64 / EVENTS as f64,
                messages.len()
            );
            group.bench_function(format!("{name}/{per_message}"), |b| {
                b.iter(|| decode_all(&mut decoder, &messages, compressed))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, compressed_messages);
criterion_main!(benches);
