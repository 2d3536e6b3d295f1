//! Batch-by-batch generation for `loadgen send`: the same events as [`crate::generate`],
//! cut into batches and stamped with run marks.

use super::marks::{Marker, RunId};
use super::w1_app_json::AppJson;
use super::w2_access::AccessLog;
use super::w3_cloudwatch::CloudWatchStream;
use crate::{GenerateStats, Workload};

enum Generator {
    AppJson(AppJson),
    Access(AccessLog),
    CloudWatch(CloudWatchStream),
}

/// Generates a workload as NDJSON bodies of a chosen number of events each, with the run
/// marks (`lg_run`, `lg_seq`, `lg_sent_ms`) on every event that can carry them.
///
/// - W1: the marks are the last top-level fields of each JSON line, so Spate archives them
///   in `attrs`. Apart from the marks the lines are byte-identical to `loadgen generate`'s.
/// - W2: access log lines have no place for extra fields that Spate's access decoder keeps,
///   so they go out unmarked and `loadgen verify` cannot follow a W2 run.
/// - W3: the marks go into each logEvent's W1 message. A batch is cut into payloads of
///   100–500 log events (the last one smaller), one base64 line each, with a control message
///   every 35–65 payloads as in `loadgen generate`; so payload boundaries, and with them the
///   events, depend on the batch size as well as the seed.
///
/// ```
/// use spate_loadgen::{BatchGenerator, RunId, Workload};
///
/// let run = RunId::new("doc-run").unwrap();
/// let mut generator = BatchGenerator::new(Workload::AppJson, 7);
/// let mut body = Vec::new();
/// generator.next_batch(3, &run, 0, 1_700_000_000_000, &mut body).unwrap();
/// let lines: Vec<&str> = std::str::from_utf8(&body).unwrap().lines().collect();
/// assert_eq!(lines.len(), 3);
/// assert!(lines[2].ends_with(r#","lg_run":"doc-run","lg_seq":2,"lg_sent_ms":1700000000000}"#));
/// ```
pub struct BatchGenerator {
    generator: Generator,
    line: Vec<u8>,
    stats: GenerateStats,
}

impl BatchGenerator {
    /// A generator of `workload` from `seed`.
    pub fn new(workload: Workload, seed: u64) -> Self {
        let generator = match workload {
            Workload::AppJson => Generator::AppJson(AppJson::new(seed)),
            Workload::Access => Generator::Access(AccessLog::new(seed)),
            Workload::CloudWatch => Generator::CloudWatch(CloudWatchStream::new(seed)),
        };
        BatchGenerator {
            generator,
            line: Vec::with_capacity(1024),
            stats: GenerateStats::default(),
        }
    }

    /// Whether events of `workload` carry the run marks (W1 and W3; not W2).
    pub fn carries_marks(workload: Workload) -> bool {
        workload != Workload::Access
    }

    /// Appends the next `events` events to `out` as newline-terminated lines, stamped with
    /// `run`, sequence numbers `first_seq..first_seq + events` and `sent_ms`. Fails only if
    /// compressing a W3 payload fails, which in memory it does not.
    pub fn next_batch(
        &mut self,
        events: u64,
        run: &RunId,
        first_seq: u64,
        sent_ms: u64,
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let mut marker = Marker::new(run, first_seq, sent_ms);
        match &mut self.generator {
            Generator::AppJson(app) => {
                for _ in 0..events {
                    self.line.clear();
                    app.next_event(&mut self.line, None);
                    marker.stamp(&mut self.line);
                    out.extend_from_slice(&self.line);
                    out.push(b'\n');
                }
            }
            Generator::Access(access) => {
                for _ in 0..events {
                    access.next_event(out);
                    out.push(b'\n');
                }
            }
            Generator::CloudWatch(cloudwatch) => {
                let mut remaining = events;
                let mut push = |line: &[u8]| {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                    Ok(())
                };
                while remaining > 0 {
                    remaining -= cloudwatch.next_payload(
                        remaining,
                        Some(&mut marker),
                        &mut self.stats,
                        &mut push,
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use flate2::read::GzDecoder;
    use serde_json::Value;

    use super::*;

    fn run() -> RunId {
        RunId::new("t1").unwrap()
    }

    fn strip_marks(line: &str) -> String {
        let at = line.find(",\"lg_run\"").expect("marked line");
        format!("{}}}", &line[..at])
    }

    #[test]
    fn w1_batches_are_generate_output_plus_marks() {
        let mut plain = Vec::new();
        crate::generate(Workload::AppJson, 1_000, 3, &mut plain).unwrap();
        let mut generator = BatchGenerator::new(Workload::AppJson, 3);
        let mut body = Vec::new();
        for (batch, size) in [300u64, 500, 200].into_iter().enumerate() {
            generator
                .next_batch(size, &run(), batch as u64 * 1000, 77, &mut body)
                .unwrap();
        }
        let plain = String::from_utf8(plain).unwrap();
        let body = String::from_utf8(body).unwrap();
        let mut seqs = Vec::new();
        for (marked, original) in body.lines().zip(plain.lines()) {
            assert_eq!(strip_marks(marked), original);
            let v: Value = serde_json::from_str(marked).unwrap();
            assert_eq!(v["lg_run"], "t1");
            assert_eq!(v["lg_sent_ms"], 77);
            seqs.push(v["lg_seq"].as_u64().unwrap());
        }
        assert_eq!(body.lines().count(), 1_000);
        assert_eq!(seqs[0], 0);
        assert_eq!(seqs[299], 299);
        assert_eq!(seqs[300], 1000);
        assert_eq!(seqs[999], 2199);
    }

    #[test]
    fn w2_lines_go_out_unmarked() {
        let mut plain = Vec::new();
        crate::generate(Workload::Access, 50, 4, &mut plain).unwrap();
        let mut generator = BatchGenerator::new(Workload::Access, 4);
        let mut body = Vec::new();
        generator.next_batch(20, &run(), 0, 1, &mut body).unwrap();
        generator.next_batch(30, &run(), 20, 1, &mut body).unwrap();
        assert_eq!(body, plain);
        assert!(!BatchGenerator::carries_marks(Workload::Access));
    }

    #[test]
    fn w3_messages_carry_marks_and_batches_hold_whole_payloads() {
        let mut generator = BatchGenerator::new(Workload::CloudWatch, 5);
        let mut seqs = Vec::new();
        for batch in 0..3u64 {
            let mut body = Vec::new();
            generator
                .next_batch(700, &run(), batch * 700, 99, &mut body)
                .unwrap();
            let mut events = 0;
            for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let gz = STANDARD.decode(line).unwrap();
                let mut json = String::new();
                GzDecoder::new(&gz[..]).read_to_string(&mut json).unwrap();
                let doc: Value = serde_json::from_str(&json).unwrap();
                if doc["messageType"] == "CONTROL_MESSAGE" {
                    continue;
                }
                for event in doc["logEvents"].as_array().unwrap() {
                    let message: Value =
                        serde_json::from_str(event["message"].as_str().unwrap()).unwrap();
                    assert_eq!(message["lg_run"], "t1");
                    assert_eq!(message["lg_sent_ms"], 99);
                    seqs.push(message["lg_seq"].as_u64().unwrap());
                    events += 1;
                }
            }
            assert_eq!(events, 700);
        }
        assert_eq!(seqs, (0..2100).collect::<Vec<u64>>());
    }

    #[test]
    fn same_seed_same_batches() {
        let body = |seed| {
            let mut generator = BatchGenerator::new(Workload::CloudWatch, seed);
            let mut body = Vec::new();
            generator.next_batch(600, &run(), 0, 5, &mut body).unwrap();
            body
        };
        assert_eq!(body(8), body(8));
        assert_ne!(body(8), body(9));
    }
}
