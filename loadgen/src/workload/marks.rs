//! Run marks: the `lg_run`, `lg_seq` and `lg_sent_ms` fields `loadgen send` adds to every
//! event it can, so that `loadgen verify` finds the run's events in the lake and detects loss,
//! duplicates and latency.

use super::format::{push_iso8601, push_u64};

/// Field names of the marks, as they appear in the lake's `attrs` column.
pub const RUN_FIELD: &str = "lg_run";
/// See [`RUN_FIELD`].
pub const SEQ_FIELD: &str = "lg_seq";
/// See [`RUN_FIELD`].
pub const SENT_MS_FIELD: &str = "lg_sent_ms";

/// Longest run id accepted.
pub const MAX_RUN_ID_LEN: usize = 64;

/// Whether `run` can be a run id: 1–64 ASCII letters, digits, `-`, `_`, `.` or `:` (so it
/// never needs JSON escaping and can be matched as a plain substring).
pub fn is_valid_run_id(run: &str) -> bool {
    !run.is_empty()
        && run.len() <= MAX_RUN_ID_LEN
        && run
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A run id: checked by [`is_valid_run_id`], so it can be written into JSON as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// Checks `run` and wraps it.
    pub fn new(run: impl Into<String>) -> Result<Self, String> {
        let run = run.into();
        if is_valid_run_id(&run) {
            Ok(RunId(run))
        } else {
            Err(format!(
                "invalid run id {run:?}: expected 1-{MAX_RUN_ID_LEN} ASCII letters, digits, '-', '_', '.' or ':'"
            ))
        }
    }

    /// An id from a wall-clock instant (Unix ms): `lg-20261123T100000.123Z`.
    pub fn from_wall_clock(ms: u64) -> Self {
        let mut iso = Vec::with_capacity(24);
        push_iso8601(&mut iso, ms);
        let compact: String = iso
            .iter()
            .filter(|&&b| b != b'-' && b != b':')
            .map(|&b| char::from(b))
            .collect();
        RunId(format!("lg-{compact}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Stamps consecutive sequence numbers of one run onto W1 JSON lines.
#[derive(Debug)]
pub(crate) struct Marker<'a> {
    run: &'a str,
    next_seq: u64,
    sent_ms: u64,
}

impl<'a> Marker<'a> {
    /// A marker whose first stamp carries `first_seq`.
    pub(crate) fn new(run: &'a RunId, first_seq: u64, sent_ms: u64) -> Self {
        Marker {
            run: run.as_str(),
            next_seq: first_seq,
            sent_ms,
        }
    }

    /// Adds the marks as the last top-level fields of the JSON object in `line` (which must
    /// end with its closing `}`) and advances the sequence number.
    pub(crate) fn stamp(&mut self, line: &mut Vec<u8>) {
        debug_assert_eq!(line.last(), Some(&b'}'));
        line.pop();
        line.extend_from_slice(b",\"lg_run\":\"");
        line.extend_from_slice(self.run.as_bytes());
        line.extend_from_slice(b"\",\"lg_seq\":");
        push_u64(line, self.next_seq);
        line.extend_from_slice(b",\"lg_sent_ms\":");
        push_u64(line, self.sent_ms);
        line.push(b'}');
        self.next_seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_add_top_level_fields_with_consecutive_seqs() {
        let run = RunId::new("run-1").unwrap();
        let mut marker = Marker::new(&run, 41, 1_700_000_000_123);
        let mut lines = Vec::new();
        for _ in 0..2 {
            let mut line = br#"{"message":"hi","log":{"level":"info"}}"#.to_vec();
            marker.stamp(&mut line);
            lines.push(serde_json::from_slice::<serde_json::Value>(&line).unwrap());
        }
        assert_eq!(lines[0][RUN_FIELD], "run-1");
        assert_eq!(lines[0][SEQ_FIELD], 41);
        assert_eq!(lines[1][SEQ_FIELD], 42);
        assert_eq!(lines[1][SENT_MS_FIELD], 1_700_000_000_123u64);
        assert_eq!(lines[1]["log"]["level"], "info");
    }

    #[test]
    fn run_ids_are_plain_tokens() {
        assert!(is_valid_run_id("2026-11-23T10:00:00.spike_1"));
        assert!(!is_valid_run_id(""));
        assert!(!is_valid_run_id("has space"));
        assert!(!is_valid_run_id("quote\""));
        assert!(!is_valid_run_id(&"x".repeat(MAX_RUN_ID_LEN + 1)));
        assert!(RunId::new("a b").unwrap_err().starts_with("invalid run id"));
        assert_eq!(RunId::new("r1").unwrap().to_string(), "r1");
        let generated = RunId::from_wall_clock(1_795_428_000_123);
        assert_eq!(generated.as_str(), "lg-20261123T100000.123Z");
        assert!(is_valid_run_id(generated.as_str()));
    }
}
