//! The report of `loadgen verify`.

use serde::Serialize;

use crate::send::LatencySummary;

/// Lost sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// How many.
    pub count: u64,
    /// The first few, ascending.
    pub first: Vec<u64>,
}

/// Duplicated sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Duplicates {
    /// Sequence numbers found more than once.
    pub seqs: u64,
    /// Rows beyond the first for those numbers.
    pub extra_rows: u64,
}

/// The result of `loadgen verify`; `--json` prints it as one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The run checked.
    pub run_id: String,
    /// Parquet files read.
    pub files: u64,
    /// Rows read in total (all runs).
    pub rows_scanned: u64,
    /// Rows of this run, duplicates included.
    pub found: u64,
    /// Distinct sequence numbers of this run.
    pub unique: u64,
    /// Events expected.
    pub expected: u64,
    /// Whether `expected` came from the send report's acknowledged numbers
    /// (`"send_report"`), `--expect` (`"expect"`) or the highest seq (`"max_seq"`).
    pub expected_from: &'static str,
    /// Expected sequence numbers that are missing.
    pub lost: Lost,
    /// Sequence numbers found more than once.
    pub duplicates: Duplicates,
    /// Distinct sequence numbers found but not expected (at or above `--expect`, or not
    /// acknowledged in the send report).
    pub unexpected: u64,
    /// Rows of this run whose `lg_seq`/`lg_sent_ms` are missing or unusable.
    pub bad_marks: u64,
    /// Scheduled send → accepted by Spate (`ingest_ts − lg_sent_ms`), per row.
    pub latency_accepted: LatencySummary,
    /// Scheduled send → durable in the lake (Parquet file mtime − `lg_sent_ms`), per row.
    pub latency_durable: LatencySummary,
}

impl VerifyReport {
    /// Whether anything is lost (or nothing of the run was found at all).
    pub fn has_loss(&self) -> bool {
        self.lost.count > 0 || self.found == 0
    }

    /// The report as a few human-readable lines.
    pub fn summary(&self) -> String {
        let latency = |l: &LatencySummary| {
            format!(
                "p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
                l.p50_ms, l.p99_ms, l.max_ms
            )
        };
        let mut text = format!(
            "run {}: found {} rows ({} distinct) in {} files ({} rows scanned); expected {} ({})\n\
             lost {}  duplicates {} (+{} rows)  unexpected {}  bad marks {}\n\
             latency send->accepted {}\n\
             latency send->durable  {}",
            self.run_id,
            self.found,
            self.unique,
            self.files,
            self.rows_scanned,
            self.expected,
            self.expected_from,
            self.lost.count,
            self.duplicates.seqs,
            self.duplicates.extra_rows,
            self.unexpected,
            self.bad_marks,
            latency(&self.latency_accepted),
            latency(&self.latency_durable),
        );
        if !self.lost.first.is_empty() {
            let first: Vec<String> = self.lost.first.iter().map(u64::to_string).collect();
            text.push_str(&format!("\nfirst lost: {}", first.join(", ")));
        }
        if self.found == 0 {
            text.push_str("\nno events of this run were found");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(found: u64, lost: u64) -> VerifyReport {
        VerifyReport {
            run_id: "r".into(),
            files: 1,
            rows_scanned: found,
            found,
            unique: found,
            expected: found + lost,
            expected_from: "expect",
            lost: Lost {
                count: lost,
                first: (found..found + lost).collect(),
            },
            duplicates: Duplicates::default(),
            unexpected: 0,
            bad_marks: 0,
            latency_accepted: LatencySummary::default(),
            latency_durable: LatencySummary::default(),
        }
    }

    #[test]
    fn loss_means_missing_seqs_or_nothing_found() {
        assert!(!report(10, 0).has_loss());
        assert!(report(10, 2).has_loss());
        assert!(report(10, 2).summary().contains("first lost: 10, 11"));
        let nothing = report(0, 0);
        assert!(nothing.has_loss());
        assert!(
            nothing
                .summary()
                .ends_with("no events of this run were found")
        );
    }
}
