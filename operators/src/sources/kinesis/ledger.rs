//! Per-shard bookkeeping: the chunks of each GetRecords batch until every
//! sink delivered them, and the checkpoint they allow.
//!
//! Batches are numbered in read order (so in sequence-number order) and
//! tracked by a [`CommitTracker`] as ranges `[n, n + 1)`; the checkpoint is
//! the last sequence number of the newest batch of the delivered prefix. A
//! failed batch keeps its chunks and is sent again under a fresh token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::types::Record;
use spate_engine::{AckToken, Verdict};

use super::kpl::{KPL_MAGIC, deaggregate};
use crate::event::wall_clock_ms;
use crate::sources::commit_tracker::CommitTracker;
use crate::sources::sqs::body::{classify_body, count_lines};
use crate::sources::{ChunkFormat, RawChunk};

/// Chunks of one GetRecords batch, kept until delivered.
#[derive(Debug)]
struct PendingBatch {
    chunks: Vec<RawChunk>,
    last_sequence: String,
}

/// See the module docs.
#[derive(Debug)]
pub struct Ledger {
    tracker: CommitTracker,
    batches: BTreeMap<u64, PendingBatch>,
    next: u64,
    checkpoint: Option<String>,
    in_flight: Arc<AtomicUsize>,
}

impl Ledger {
    /// A ledger resuming after `checkpoint` (the lease's, if any).
    pub fn new(checkpoint: Option<String>) -> Self {
        Ledger {
            tracker: CommitTracker::new(0),
            batches: BTreeMap::new(),
            next: 0,
            checkpoint,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The last sequence number every sink committed.
    pub fn checkpoint(&self) -> Option<&str> {
        self.checkpoint.as_deref()
    }

    /// Registers a batch read from the shard; returns the token to send its
    /// chunks with (one share per chunk).
    pub fn push(&mut self, chunks: Vec<RawChunk>, last_sequence: String) -> AckToken {
        let n = self.next;
        self.next += 1;
        let token = self.token(n);
        self.batches.insert(
            n,
            PendingBatch {
                chunks,
                last_sequence,
            },
        );
        token
    }

    /// A token for batch `n` that also counts it as in flight.
    fn token(&self, n: u64) -> AckToken {
        let inner = self.tracker.track(n, n + 1);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let in_flight = self.in_flight.clone();
        AckToken::new(move |verdict| {
            in_flight.fetch_sub(1, Ordering::AcqRel);
            match verdict {
                Verdict::Delivered => inner.deliver(),
                Verdict::Failed(reason) => inner.fail(reason),
            }
        })
    }

    /// Batches that failed since the last call, each with its chunks and a
    /// fresh token to send them again.
    pub fn retries(&mut self) -> Vec<(Vec<RawChunk>, AckToken)> {
        let mut out = Vec::new();
        for failed in self.tracker.take_failed() {
            tracing::debug!(reason = %failed.reason, "kinesis batch failed; sending it again");
            if let Some(batch) = self.batches.get(&failed.start) {
                let chunks = batch.chunks.clone();
                out.push((chunks, self.token(failed.start)));
            }
        }
        out
    }

    /// Forgets delivered batches; returns the new checkpoint when it moved.
    pub fn advance(&mut self) -> Option<String> {
        let committed = self.tracker.committed();
        let mut moved = None;
        while let Some(entry) = self.batches.first_entry() {
            if *entry.key() >= committed {
                break;
            }
            moved = Some(entry.remove().last_sequence);
        }
        if let Some(seq) = &moved {
            self.checkpoint = Some(seq.clone());
        }
        moved
    }

    /// Batches sent and waiting for a verdict.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// True when every batch read was delivered.
    pub fn is_drained(&self) -> bool {
        self.batches.is_empty()
    }

    /// Waits for the next verdict (or at most `limit`).
    pub async fn changed(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.tracker.changed()).await;
    }
}

/// The chunks of one record, named `kinesis:<stream>:<shard>:<sequence
/// number>` (origin `kinesis:<stream>`): one chunk (a CloudWatch Logs subscription payload, gzip, or
/// lines), or, for a KPL aggregated record, one chunk per user record named
/// `...:<sequence number>/<index>`.
pub fn record_chunks(stream: &str, shard_id: &str, record: &Record) -> Vec<RawChunk> {
    let data = record.data().as_ref();
    let name = format!("kinesis:{stream}:{shard_id}:{}", record.sequence_number());
    let origin: Arc<str> = Arc::from(format!("kinesis:{stream}"));
    match deaggregate(data) {
        Some(user_records) => {
            metrics::counter!("spate_kinesis_kpl_records_total").increment(1);
            user_records
                .into_iter()
                .enumerate()
                .map(|(i, bytes)| chunk(format!("{name}/{i}"), &origin, bytes.to_vec()))
                .collect()
        }
        None => {
            if data.starts_with(&KPL_MAGIC) {
                metrics::counter!("spate_kinesis_kpl_invalid_total").increment(1);
            }
            vec![chunk(name, &origin, data.to_vec())]
        }
    }
}

fn chunk(source: String, origin: &Arc<str>, data: Vec<u8>) -> RawChunk {
    let body = classify_body(data);
    let lines = match body.format {
        ChunkFormat::Lines => count_lines(&body.bytes),
        ChunkFormat::CloudWatchPayload | ChunkFormat::Compressed => 1,
    };
    RawChunk {
        bytes: Arc::new(body.bytes),
        source: Arc::from(source),
        origin: origin.clone(),
        first_position: 0,
        ingest_ts_ms: wall_clock_ms(),
        format: body.format,
        lines,
    }
}

/// Wait after `failures` consecutive throttled or failed calls: exponential
/// from 100 ms, capped at 10 s, with "equal jitter" (half fixed, half random;
/// `jitter` is a sample in `[0, 1)`).
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let base = 100u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    let capped = base.min(10_000) as f64;
    Duration::from_millis((capped / 2.0 + capped / 2.0 * jitter.clamp(0.0, 1.0)) as u64)
}

/// A uniform sample in `[0, 1)` from the standard library's randomly keyed
/// hasher.
pub fn jitter_sample() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::primitives::Blob;

    fn record(seq: &str, data: &[u8]) -> Record {
        Record::builder()
            .sequence_number(seq)
            .partition_key("k")
            .data(Blob::new(data))
            .build()
            .unwrap()
    }

    fn chunk(seq: &str) -> RawChunk {
        record_chunks("logs", "shardId-0", &record(seq, b"x\n")).remove(0)
    }

    #[test]
    fn checkpoint_follows_the_delivered_prefix() {
        let mut ledger = Ledger::new(Some("10".into()));
        let a = ledger.push(vec![chunk("11")], "12".into());
        let b = ledger.push(vec![chunk("13")], "14".into());
        assert_eq!(ledger.in_flight(), 2);
        b.deliver();
        assert_eq!(ledger.advance(), None);
        assert_eq!(ledger.checkpoint(), Some("10"));
        a.deliver();
        assert_eq!(ledger.advance(), Some("14".into()));
        assert_eq!(ledger.checkpoint(), Some("14"));
        assert!(ledger.is_drained());
        assert_eq!(ledger.in_flight(), 0);
    }

    #[test]
    fn a_failed_batch_is_retried_with_its_chunks() {
        let mut ledger = Ledger::new(None);
        let a = ledger.push(vec![chunk("1"), chunk("2")], "2".into());
        let b = ledger.push(vec![chunk("3")], "3".into());
        let share = a.clone();
        share.deliver();
        drop(a); // one of two chunks lost: the batch fails
        b.deliver();
        assert_eq!(ledger.advance(), None);
        assert_eq!(ledger.in_flight(), 0);
        let retries = ledger.retries();
        assert_eq!(retries.len(), 1);
        let (chunks, token) = retries.into_iter().next().unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(&*chunks[1].source, "kinesis:logs:shardId-0:2");
        assert_eq!(ledger.in_flight(), 1);
        token.deliver();
        assert_eq!(ledger.advance(), Some("3".into()));
        assert!(ledger.retries().is_empty());
    }

    #[test]
    fn records_become_named_chunks() {
        let c = chunk("4955");
        assert_eq!(&*c.source, "kinesis:logs:shardId-0:4955");
        assert_eq!(&*c.origin, "kinesis:logs");
        assert_eq!(c.format, ChunkFormat::Lines);
        assert_eq!(c.lines, 1);
        let gz = record_chunks("logs", "s", &record("1", &[0x1f, 0x8b, 8, 0]));
        assert_eq!(gz.len(), 1);
        assert_eq!(gz[0].format, ChunkFormat::Compressed);
    }

    #[test]
    fn kpl_aggregates_become_one_chunk_per_user_record() {
        let packed = super::super::kpl::aggregate("pk", &[b"a\nb\n".as_slice(), b"c\n"]);
        let chunks = record_chunks("logs", "s", &record("7", &packed));
        let names: Vec<&str> = chunks.iter().map(|c| &*c.source).collect();
        assert_eq!(names, ["kinesis:logs:s:7/0", "kinesis:logs:s:7/1"]);
        assert_eq!(chunks.iter().map(|c| c.lines).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(&chunks[1].bytes[..], b"c\n");

        // A broken aggregate is passed on whole, not dropped.
        let mut broken = packed.clone();
        broken.truncate(packed.len() - 1);
        let whole = record_chunks("logs", "s", &record("8", &broken));
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].bytes.len(), broken.len());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(1, 0.999_999), Duration::from_millis(99));
        assert_eq!(backoff(3, 0.5), Duration::from_millis(300));
        assert_eq!(backoff(50, 1.0), Duration::from_millis(10_000));
        let j = jitter_sample();
        assert!((0.0..1.0).contains(&j));
    }
}
