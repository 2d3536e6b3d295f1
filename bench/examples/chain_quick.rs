//! Quick A/B of the engine chain against raw channels, without criterion.
//!
//! Run: `cargo run --release -p spate-bench --example chain_quick`

use std::time::Instant;

use spate_bench::engine_chain::{run_engine_chain, run_raw_chain};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for batch_size in [1usize, 64, 1024] {
        let events = if batch_size == 1 { 200_000 } else { 8_000_000 };
        let batches = events / batch_size;
        for round in 0..3 {
            let t = Instant::now();
            rt.block_on(run_engine_chain(batches, batch_size, 16));
            let engine = t.elapsed();
            let t = Instant::now();
            rt.block_on(run_raw_chain(batches, batch_size, 16));
            let raw = t.elapsed();
            println!(
                "batch {batch_size:>5} round {round}: engine {:>8.1} Mev/s  raw {:>8.1} Mev/s  ratio {:.2}",
                events as f64 / engine.as_secs_f64() / 1e6,
                events as f64 / raw.as_secs_f64() / 1e6,
                engine.as_secs_f64() / raw.as_secs_f64()
            );
        }
    }
}
