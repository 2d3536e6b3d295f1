//! What packing hot events into the embedded store's blocks costs: W1
//! events decoded and classified as the decode stage does it, their hot rows
//! (WARNING and above) picked as the hot writer picks them
//! ([`HotRows::select_all`]), then turned into `event_blocks` rows
//! ([`hot_block_rows`]: each row viewed in its Arrow columns, grouped by service and
//! minute, deduplicated, encoded and compressed), which is the work of the
//! hot store's thread at each commit before SQLite.
//!
//! Run: `cargo bench -p spate-bench --bench hot_blocks`
//!
//! Input: 100,000 W1 events (seed 42) in one commit, as `spate run` commits
//! them at a few hundred thousand events a second. Before timing, one pass
//! checks that the blocks hold every hot event once. Criterion reports the
//! time per commit and hot events/s. `hot_select` times the step before it,
//! the same events' hot rows picked batch by batch.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use spate_loadgen::{Workload, generate};
use spate_operators::classify::Classifier;
use spate_operators::decode::{DecodeContext, DecoderConfig, LineDecoder};
use spate_operators::event::{EventBatch, Severity};
use spate_operators::log_batch::LogBatch;
use spate_operators::sinks::hot::blocks::hot_block_rows;
use spate_operators::sinks::hot::rows::HotRows;

/// Events generated.
const EVENTS: u64 = 100_000;

fn hot_blocks(c: &mut Criterion) {
    let mut input = Vec::new();
    generate(Workload::AppJson, EVENTS, 42, &mut input).expect("generate");
    let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let ctx = DecodeContext::new("http:bench", 1_800_000_000_000);
    let mut events = EventBatch::default();
    let mut dead = Vec::new();
    let stats = decoder.decode_chunk(&input, 0, &ctx, &mut events, &mut dead);
    assert!(dead.is_empty(), "dead letter: {:?}", dead.first());
    assert_eq!(stats.events as u64, EVENTS);
    let batch = LogBatch::from_events(events, dead, &stats).expect("arrow");
    let rows = HotRows::select_all(&batch, Severity::Warning).expect("hot rows");
    let hot: usize = rows.iter().map(HotRows::len).sum();
    let blocks = hot_block_rows(&rows).expect("blocks");
    let packed: usize = blocks.iter().map(|b| b.events).sum();
    assert_eq!(packed, hot, "every hot event in one block");
    let bytes: usize = blocks.iter().map(|b| b.body.len()).sum();
    println!(
        "{hot} hot events of {EVENTS} in {} blocks, {:.1} bytes per hot event",
        blocks.len(),
        bytes as f64 / hot as f64
    );
    let mut group = c.benchmark_group("hot_blocks");
    group.sample_size(20);
    group.throughput(Throughput::Elements(hot as u64));
    group.bench_function("w1_commit", |b| {
        b.iter(|| hot_block_rows(std::hint::black_box(&rows)).expect("blocks"))
    });
    group.finish();
    select_hot_rows(c, &input);
}

/// Picking the hot rows of each batch as the hot writers do at every batch
/// (`HotBuffer::add`): the input decoded in batches of 1,000 events (the
/// size of an HTTP push in the benchmarks), each split into its ~30 lake
/// partitions.
fn select_hot_rows(c: &mut Criterion, input: &[u8]) {
    let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let ctx = DecodeContext::new("http:bench", 1_800_000_000_000);
    let text = std::str::from_utf8(input).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let batches: Vec<LogBatch> = lines
        .chunks(1000)
        .map(|chunk| {
            let bytes: String = chunk.iter().map(|l| format!("{l}\n")).collect();
            let mut events = EventBatch::default();
            let mut dead = Vec::new();
            let stats = decoder.decode_chunk(bytes.as_bytes(), 0, &ctx, &mut events, &mut dead);
            LogBatch::from_events(events, dead, &stats).expect("arrow")
        })
        .collect();
    let mut group = c.benchmark_group("hot_select");
    group.sample_size(20);
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("w1_batches_of_1000", |b| {
        b.iter(|| {
            let mut hot = 0;
            for batch in std::hint::black_box(&batches) {
                let rows = HotRows::select_all(batch, Severity::Warning).expect("hot rows");
                hot += rows.iter().map(HotRows::len).sum::<usize>();
            }
            hot
        })
    });
    group.finish();
}

criterion_group!(benches, hot_blocks);
criterion_main!(benches);
