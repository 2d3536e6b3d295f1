//! [`LogBatch`]: decoded, classified events on their way to the sinks.
//!
//! The decoder splits each batch by lake partition and converts it to Arrow in
//! its own worker, so the sinks receive ready record batches. Cloning (fan-out to
//! several sinks) shares the Arrow buffers; nothing is copied.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use serde::Serialize;
use spate_engine::Payload;

use crate::decode::{DeadLetter, DecodeStats};
use crate::event::{EventBatch, Severity};
use crate::sinks::lake::partition::{PartitionKey, partition_rows, split_record_batch};
use crate::sinks::lake::schema::to_record_batch;

/// Events of one partition, in the lake's file schema.
#[derive(Debug, Clone)]
pub struct LakePart {
    /// Which partition the rows belong to.
    pub key: PartitionKey,
    /// The rows, without the `service` partition column.
    pub records: RecordBatch,
}

/// Counts of what a batch (or a run) holds: the ingest summary's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    /// Events decoded.
    pub events: u64,
    /// Events per severity, indexed by [`Severity::index`].
    pub severity: [u64; 4],
    /// Events per tag.
    pub tags: BTreeMap<String, u64>,
    /// Inputs dead-lettered.
    pub dead_letters: u64,
    /// CloudWatch Logs control messages skipped.
    pub control_messages: u64,
}

impl EventCounts {
    /// Counts the rows of `batch` plus the decoder's stats.
    pub fn of(batch: &EventBatch, stats: &DecodeStats) -> Self {
        let mut severity = [0u64; 4];
        for s in &batch.severity {
            severity[s.index()] += 1;
        }
        let mut per_bit = [0u64; 64];
        for bits in &batch.tags {
            let mut bits = *bits;
            while bits != 0 {
                per_bit[bits.trailing_zeros() as usize] += 1;
                bits &= bits - 1;
            }
        }
        let tags = batch
            .tag_names
            .iter()
            .enumerate()
            .filter(|(i, _)| per_bit[*i] > 0)
            .map(|(i, name)| (name.clone(), per_bit[i]))
            .collect();
        EventCounts {
            events: batch.len() as u64,
            severity,
            tags,
            dead_letters: stats.dead_letters as u64,
            control_messages: stats.control_messages as u64,
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &EventCounts) {
        self.events += other.events;
        for (a, b) in self.severity.iter_mut().zip(other.severity) {
            *a += b;
        }
        for (tag, n) in &other.tags {
            *self.tags.entry(tag.clone()).or_default() += n;
        }
        self.dead_letters += other.dead_letters;
        self.control_messages += other.control_messages;
    }

    /// Count of one severity.
    pub fn severity(&self, s: Severity) -> u64 {
        self.severity[s.index()]
    }
}

/// Decoded events split by partition, the dead letters of the same input, and
/// their counts.
#[derive(Debug, Clone, Default)]
pub struct LogBatch {
    /// One record batch per lake partition.
    pub parts: Vec<LakePart>,
    /// Inputs that could not be decoded.
    pub dead_letters: Arc<Vec<DeadLetter>>,
    /// What the batch holds.
    pub counts: Arc<EventCounts>,
}

impl LogBatch {
    /// Converts a decoded batch: counts, splits by partition, moves to Arrow.
    pub fn from_events(
        events: EventBatch,
        dead_letters: Vec<DeadLetter>,
        stats: &DecodeStats,
    ) -> Result<Self, ArrowError> {
        let counts = EventCounts::of(&events, stats);
        let parts = if events.is_empty() {
            Vec::new()
        } else {
            let rows = partition_rows(&events);
            let records = to_record_batch(events)?;
            split_record_batch(records, rows)?
                .into_iter()
                .map(|(key, records)| LakePart { key, records })
                .collect()
        };
        Ok(LogBatch {
            parts,
            dead_letters: Arc::new(dead_letters),
            counts: Arc::new(counts),
        })
    }
}

impl LogBatch {
    /// Splits the batch across `shards` writers by partition
    /// ([`PartitionKey::shard`]), as `(writer, part)` pairs: the lake writers'
    /// key function for
    /// [`GraphBuilder::connect_keyed`](spate_engine::GraphBuilder::connect_keyed).
    /// Writer 0 always gets a part: it also carries the dead letters and the
    /// counts. Writers with nothing to write get none.
    pub fn split_by_partition(self, shards: usize) -> Vec<(usize, LogBatch)> {
        let mut out: Vec<LogBatch> = (0..shards.max(1)).map(|_| LogBatch::default()).collect();
        for part in self.parts {
            out[part.key.shard(shards)].parts.push(part);
        }
        out[0].dead_letters = self.dead_letters;
        out[0].counts = self.counts;
        out.into_iter()
            .enumerate()
            .filter(|(i, b)| *i == 0 || !b.parts.is_empty())
            .collect()
    }
}

impl Payload for LogBatch {
    /// Rows to archive (a shard without the counts still has rows).
    fn len(&self) -> usize {
        self.parts.iter().map(|p| p.records.num_rows()).sum()
    }
}
