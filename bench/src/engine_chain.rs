//! The 4-stage chain of the engine benchmark, as engine actors: a producer, two
//! relays and a counting sink, each batch carrying an ack token as in production.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use spate_engine::{
    Ack, AckToken, Actor, ActorOptions, ActorResult, Batch, Ctx, GraphBuilder, NoOutput, Source,
};

/// Emits `batches` batches of `batch_size` events, each with its own ack.
struct Producer {
    batches: usize,
    batch_size: usize,
    delivered: Arc<AtomicU64>,
}

impl Source for Producer {
    type Out = Vec<u64>;

    async fn run(&mut self, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
        for i in 0..self.batches {
            let batch: Vec<u64> = (0..self.batch_size as u64).map(|e| e + i as u64).collect();
            let delivered = self.delivered.clone();
            let token = AckToken::new(move |v| {
                if v.is_delivered() {
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            });
            ctx.send(Batch::new(batch, Ack::from(token))).await?;
        }
        Ok(())
    }
}

/// Passes batches on.
struct Relay;

impl Actor for Relay {
    type In = Vec<u64>;
    type Out = Vec<u64>;

    async fn handle(&mut self, batch: Batch<Vec<u64>>, ctx: &mut Ctx<Vec<u64>>) -> ActorResult {
        ctx.send(batch).await
    }
}

/// Counts events and delivers.
struct CountingSink {
    events: Arc<AtomicU64>,
}

impl Actor for CountingSink {
    type In = Vec<u64>;
    type Out = NoOutput;

    async fn handle(&mut self, batch: Batch<Vec<u64>>, _: &mut Ctx<NoOutput>) -> ActorResult {
        self.events
            .fetch_add(batch.payload.len() as u64, Ordering::Relaxed);
        batch.deliver();
        Ok(())
    }
}

/// Runs the chain to completion; returns (events that reached the sink, batches
/// whose ack came back delivered).
pub async fn run_engine_chain(batches: usize, batch_size: usize, capacity: usize) -> (u64, u64) {
    let events = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut g = GraphBuilder::new();
    let d = delivered.clone();
    g.source("producer", move || Producer {
        batches,
        batch_size,
        delivered: d.clone(),
    });
    g.actor("relay1", || Relay, ActorOptions::with_capacity(capacity));
    g.actor("relay2", || Relay, ActorOptions::with_capacity(capacity));
    let e = events.clone();
    g.actor(
        "sink",
        move || CountingSink { events: e.clone() },
        ActorOptions::with_capacity(capacity),
    );
    g.connect("producer", "relay1")
        .connect("relay1", "relay2")
        .connect("relay2", "sink");
    g.build()
        .expect("valid chain")
        .spawn()
        .join()
        .await
        .expect("chain completes");
    (
        events.load(Ordering::Relaxed),
        delivered.load(Ordering::Relaxed),
    )
}

/// The same chain on raw channels.
pub async fn run_raw_chain(batches: usize, batch_size: usize, capacity: usize) -> u64 {
    spate_engine::baseline::raw_chain(4, batches, batch_size, capacity).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_chains_move_every_event() {
        assert_eq!(run_engine_chain(50, 64, 4).await, (3200, 50));
        assert_eq!(run_raw_chain(50, 64, 4).await, 3200);
    }
}
