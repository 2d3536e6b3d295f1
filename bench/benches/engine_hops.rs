//! Events/s through a 4-stage actor chain at batch sizes 1, 64 and 1024, beside
//! the same chain on raw channels.
//!
//! Run: `cargo bench -p spate-bench --bench engine_hops`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use spate_bench::engine_chain::{run_engine_chain, run_raw_chain};

const CAPACITY: usize = 16;

fn engine_hops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("chain4");
    group.sample_size(20);
    for (batch_size, events) in [(1usize, 200_000usize), (64, 2_000_000), (1024, 8_000_000)] {
        let batches = events / batch_size;
        group.throughput(Throughput::Elements(events as u64));
        group.bench_with_input(
            BenchmarkId::new("engine", batch_size),
            &batch_size,
            |b, &size| {
                b.to_async(&rt)
                    .iter(|| async move { run_engine_chain(batches, size, CAPACITY).await })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("raw", batch_size),
            &batch_size,
            |b, &size| {
                b.to_async(&rt)
                    .iter(|| async move { run_raw_chain(batches, size, CAPACITY).await })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, engine_hops);
criterion_main!(benches);
