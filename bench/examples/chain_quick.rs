//! Quick A/B of the engine chain against raw channels, without criterion.
//!
//! Run: `cargo run --release -p spate-bench --example chain_quick [BATCH_SIZE] [engine|raw] [ITERATIONS]`
//!
//! With `ITERATIONS`, one side runs 8 M events that many times inside one
//! `block_on` after 20 warm-up runs, as criterion does, and prints the time per
//! batch.

use std::time::Instant;

use spate_bench::engine_chain::{run_engine_chain, run_raw_chain};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = match args.get(1).and_then(|a| a.parse().ok()) {
        Some(size) => vec![size],
        None => vec![1, 64, 1024],
    };
    let only = args.get(2).map(String::as_str);
    if let (Some(which), Some(iterations)) = (only, args.get(3).and_then(|a| a.parse().ok())) {
        let size = sizes[0];
        let per_batch = repeated(&rt, which == "raw", size, iterations);
        println!("{which} batch {size}: {per_batch:.0} ns per batch");
        return;
    }
    if let Some(which) = only {
        // Profiling mode: one side only, longer.
        let size = sizes[0];
        let batches = 64_000_000 / size;
        let t = Instant::now();
        rt.block_on(one_side(which == "raw", batches, size));
        println!("{which}: {:.1} Mev/s", 64.0 / t.elapsed().as_secs_f64());
        return;
    }
    for batch_size in sizes {
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

/// Runs one chain of 8 M events `iterations` times in one `block_on` after 20
/// warm-up runs; returns the wall time per batch in nanoseconds.
fn repeated(rt: &tokio::runtime::Runtime, raw: bool, size: usize, iterations: usize) -> f64 {
    let batches = 8_000_000 / size;
    let elapsed = rt.block_on(async move {
        for _ in 0..20 {
            one_side(raw, batches, size).await;
        }
        let t = Instant::now();
        for _ in 0..iterations {
            one_side(raw, batches, size).await;
        }
        t.elapsed()
    });
    elapsed.as_secs_f64() * 1e9 / (iterations * batches) as f64
}

/// One chain of `batches` batches of `size` events: the raw channels' or the
/// engine's (mailboxes of 16 batches).
async fn one_side(raw: bool, batches: usize, size: usize) {
    if raw {
        run_raw_chain(batches, size, 16).await;
    } else {
        run_engine_chain(batches, size, 16).await;
    }
}
