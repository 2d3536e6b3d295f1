//! Batches: the only thing that crosses an actor boundary.
//!
//! A [`Batch`] is a payload (a `Vec` of events, an Arrow record batch, ...) plus the
//! [`Ack`] of the source batches it came from and an optional [`InFlightBytes`]
//! guard that keeps the source's in-flight byte gauge up until every copy of the
//! batch is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ack::Ack;

/// What a batch can carry.
///
/// `len` is the number of events, used for the `events_in`/`events_out` metrics.
/// Fan-out to several actors clones the payload, so large payloads should be cheap
/// to clone (`Arc` inside).
pub trait Payload: Send + 'static {
    /// Number of events in the payload.
    fn len(&self) -> usize;

    /// Bytes of input the payload stands for, as its source counts them (for
    /// the source's in-flight bytes); 0 when unknown.
    fn bytes(&self) -> usize {
        0
    }

    /// True when the payload holds no events.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send + 'static> Payload for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Send + Sync + 'static> Payload for Arc<Vec<T>> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
}

/// The output type of a sink: it sends nothing downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoOutput {}

impl Payload for NoOutput {
    fn len(&self) -> usize {
        match *self {}
    }
}

/// A payload with its acknowledgement and in-flight accounting.
///
/// ```
/// use spate_engine::{Ack, AckToken, Batch};
/// let (token, mut verdict) = AckToken::channel();
/// let batch = Batch::new(vec![1u64, 2, 3], Ack::from(token));
/// let doubled = batch.map(|v| v.into_iter().map(|x| x * 2).collect::<Vec<_>>());
/// assert_eq!(doubled.payload, vec![2, 4, 6]);
/// doubled.deliver();
/// assert!(verdict.try_recv().unwrap().is_delivered());
/// ```
#[derive(Debug)]
pub struct Batch<P> {
    /// The events.
    pub payload: P,
    /// The acknowledgement of every source batch this one came from.
    pub ack: Ack,
    /// Keeps the source's in-flight byte gauge up while any copy lives.
    pub in_flight: Option<Arc<InFlightBytes>>,
}

impl<P> Batch<P> {
    /// A batch with the given acknowledgement and no in-flight accounting.
    pub fn new(payload: P, ack: Ack) -> Self {
        Batch {
            payload,
            ack,
            in_flight: None,
        }
    }

    /// A batch whose verdict nobody waits for.
    pub fn unacked(payload: P) -> Self {
        Self::new(payload, Ack::none())
    }

    /// Attaches an in-flight byte guard.
    pub fn with_in_flight(mut self, guard: InFlightBytes) -> Self {
        self.in_flight = Some(Arc::new(guard));
        self
    }

    /// Transforms the payload, keeping the ack and the in-flight guard.
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> Batch<Q> {
        Batch {
            payload: f(self.payload),
            ack: self.ack,
            in_flight: self.in_flight,
        }
    }

    /// Replaces the payload, returning the old one and the re-labelled batch.
    pub fn replace<Q>(self, payload: Q) -> (P, Batch<Q>) {
        (
            self.payload,
            Batch {
                payload,
                ack: self.ack,
                in_flight: self.in_flight,
            },
        )
    }

    /// Splits off the payload from its ack and guard.
    pub fn into_parts(self) -> (P, Ack, Option<Arc<InFlightBytes>>) {
        (self.payload, self.ack, self.in_flight)
    }

    /// Settles the batch as durably committed (for sinks).
    pub fn deliver(self) {
        self.ack.deliver();
    }

    /// Settles the batch as failed (for sinks).
    pub fn fail(self, reason: impl Into<String>) {
        self.ack.fail(reason);
    }
}

impl<P: Clone> Batch<P> {
    /// A copy for another downstream actor: same payload, its own ack share.
    pub fn share(&self) -> Batch<P> {
        Batch {
            payload: self.payload.clone(),
            ack: self.ack.share(),
            in_flight: self.in_flight.clone(),
        }
    }
}

/// A byte gauge shared by a source and the batches it has in flight.
///
/// Sources consult [`InFlightGauge::bytes`] against their limit to decide whether
/// to accept more (the HTTP source answers 429 above it).
///
/// ```
/// use spate_engine::InFlightGauge;
/// let gauge = InFlightGauge::new();
/// let guard = gauge.acquire(1024);
/// assert_eq!(gauge.bytes(), 1024);
/// drop(guard);
/// assert_eq!(gauge.bytes(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct InFlightGauge {
    bytes: Arc<AtomicUsize>,
}

impl InFlightGauge {
    /// A gauge at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes currently in flight.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Counts `bytes` as in flight until the returned guard drops.
    pub fn acquire(&self, bytes: usize) -> InFlightBytes {
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
        InFlightBytes {
            gauge: self.bytes.clone(),
            bytes,
        }
    }
}

/// Bytes counted in an [`InFlightGauge`] until dropped.
#[derive(Debug)]
pub struct InFlightBytes {
    gauge: Arc<AtomicUsize>,
    bytes: usize,
}

impl InFlightBytes {
    /// The bytes this guard holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for InFlightBytes {
    fn drop(&mut self) {
        self.gauge.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckToken;

    #[test]
    fn shared_copies_keep_bytes_in_flight_until_all_drop() {
        let gauge = InFlightGauge::new();
        let batch = Batch::unacked(vec![1u8; 10]).with_in_flight(gauge.acquire(10));
        let copy = batch.share();
        drop(batch);
        assert_eq!(gauge.bytes(), 10);
        drop(copy);
        assert_eq!(gauge.bytes(), 0);
    }

    #[test]
    fn map_keeps_ack_and_guard() {
        let gauge = InFlightGauge::new();
        let (token, mut rx) = AckToken::channel();
        let batch = Batch::new(vec![1u32], Ack::from(token)).with_in_flight(gauge.acquire(4));
        let mapped = batch.map(|v| v.len());
        assert_eq!(gauge.bytes(), 4);
        mapped.fail("sink down");
        assert_eq!(gauge.bytes(), 0);
        assert!(!rx.try_recv().unwrap().is_delivered());
    }
}
