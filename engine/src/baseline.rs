//! The same work as an actor chain, on raw channels, for the engine benchmark's
//! baseline (feature `bench-baseline`). Not part of the public API.

/// Pushes `batches` batches of `batch_size` events through a chain of `stages`
/// tasks (a producer, `stages - 2` forwarders and a consumer) joined by raw
/// bounded async channels of `capacity`; returns the events that reached the end.
pub async fn raw_chain(stages: usize, batches: usize, batch_size: usize, capacity: usize) -> u64 {
    let (first_tx, mut rx) = kanal::bounded_async::<Vec<u64>>(capacity);
    let mut handles = Vec::new();
    for _ in 0..stages.saturating_sub(2) {
        let (tx, next_rx) = kanal::bounded_async::<Vec<u64>>(capacity);
        let stage_rx = std::mem::replace(&mut rx, next_rx);
        handles.push(tokio::spawn(async move {
            while let Ok(batch) = stage_rx.recv().await {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
        }));
    }
    let sink = tokio::spawn(async move {
        let mut events = 0u64;
        while let Ok(batch) = rx.recv().await {
            events += batch.len() as u64;
        }
        events
    });
    let producer = tokio::spawn(async move {
        for i in 0..batches {
            let batch: Vec<u64> = (0..batch_size as u64).map(|e| e + i as u64).collect();
            if first_tx.send(batch).await.is_err() {
                break;
            }
        }
    });
    let _ = producer.await;
    for h in handles {
        let _ = h.await;
    }
    sink.await.unwrap_or(0)
}
