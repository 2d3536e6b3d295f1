//! `loadgen verify`: reads Spate's Parquet lake back and checks one `loadgen send` run.
//!
//! Every Parquet file under `<data-dir>/lake/logs/` is read (files whose names start with
//! `.` are being written and are skipped), or, for a lake on S3 (`s3://bucket/prefix`, the
//! `[lake.s3]` bucket and prefix), every `.parquet` object under `<prefix>logs/` (see
//! [`s3`]). For each row whose `attrs` JSON carries the run's
//! `lg_run`, the sequence number `lg_seq` and send time `lg_sent_ms` are taken, and the report
//! says:
//!
//! - **found**: rows of the run (duplicates included) and distinct sequence numbers;
//! - **expected**: the sequence numbers `loadgen send` saw acknowledged, read from its
//!   `--json` report (`--send-report FILE`); else `--expect N` (all of `0..N`); else the
//!   highest sequence number found + 1;
//! - **lost**: expected sequence numbers that are missing (count and the first few). With a
//!   send report, a batch that was never acknowledged (refused, given up on, cut by a
//!   restart) is not lost when it is missing: only what Spate acknowledged must be there;
//! - **unexpected**: distinct sequence numbers found that were not expected (at or above
//!   `--expect`, or not acknowledged in the send report: accepted, but the answer never
//!   reached `send`);
//! - **duplicates**: sequence numbers found more than once (Spate is at-least-once, so
//!   duplicates are allowed but worth knowing) and the extra rows they make;
//! - **latency_accepted**: `ingest_ts − lg_sent_ms` per row: from the batch's scheduled send
//!   time to Spate accepting it (its ingest clock), not to durability;
//! - **latency_durable**: `file mtime − lg_sent_ms` per row: from scheduled send to the
//!   Parquet file holding the row being complete in the lake (the object's LastModified on
//!   S3).
//!
//! `lg_sent_ms` is the scheduled send time, so both latencies include any time the batch
//! waited in loadgen (see [`crate::send`]). Negative differences (clock skew between hosts)
//! count as 0.
//!
//! Only W1 and W3 events carry marks; a W2 (access log) run cannot be verified.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMillisecondArray};
use hdrhistogram::Histogram;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use serde::Deserialize;

use crate::send::{LatencySummary, new_histogram, record};
use crate::{RunId, SeqRanges};

mod report;
pub mod s3;

pub use report::{Duplicates, Lost, VerifyReport};
pub use s3::S3Lake;

/// Where the lake's log files are under a data directory.
pub const LAKE_LOGS_DIR: &str = "lake/logs";

/// How many lost sequence numbers the report lists.
pub const FIRST_LOST_SHOWN: usize = 20;

/// Sequence numbers beyond this are treated as corrupt marks, not as evidence of loss
/// (a bitmap up to it stays within a few hundred MiB).
pub const MAX_SEQ: u64 = 1 << 32;

/// Why the lake cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The send report cannot be used.
    #[error("send report {path}: {reason}")]
    SendReport {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The lake on S3 cannot be listed or read.
    #[error("cannot read s3://{bucket}/{key}: {reason}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The data directory has no lake.
    #[error("no lake at {0}: expected <data-dir>/lake/logs")]
    NoLake(PathBuf),
    /// A directory or file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not readable Parquet of the lake schema.
    #[error("cannot read parquet file {path}: {reason}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Where the lake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lake {
    /// Spate's data directory (the lake is under `lake/logs/`).
    DataDir(PathBuf),
    /// A lake on S3.
    S3(S3Lake),
}

/// What to check.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The lake to read.
    pub lake: Lake,
    /// The run to look for.
    pub run_id: RunId,
    /// Events the run sent; the highest sequence number found + 1 when absent.
    pub expect: Option<u64>,
    /// The sequence numbers `send` saw acknowledged (overrides `expect`).
    pub acknowledged: Option<SeqRanges>,
}

/// What `verify` uses of a `loadgen send --json` report.
#[derive(Debug, Clone, Deserialize)]
pub struct SendReportAcks {
    /// The run.
    pub run_id: String,
    /// Events acknowledged.
    pub acknowledged: u64,
    /// Their sequence numbers.
    pub acknowledged_seqs: SeqRanges,
}

/// Reads the report `loadgen send --json` printed (the last JSON object in the file).
pub fn read_send_report(path: &Path) -> Result<SendReportAcks, VerifyError> {
    let bad = |reason: String| VerifyError::SendReport {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| bad("no JSON report in it (write it with `loadgen send --json`)".into()))?;
    let report: SendReportAcks = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    report.acknowledged_seqs.validate().map_err(bad)?;
    if report.acknowledged_seqs.len() != report.acknowledged {
        return Err(bad(format!(
            "acknowledged_seqs hold {} numbers but acknowledged is {}",
            report.acknowledged_seqs.len(),
            report.acknowledged
        )));
    }
    Ok(report)
}

/// The marks of one `attrs` object; numbers are checked after parsing so that a row of the
/// run with a malformed mark still counts (as a bad mark).
#[derive(Deserialize)]
struct Marks {
    lg_run: Option<String>,
    lg_seq: Option<serde_json::Value>,
    lg_sent_ms: Option<serde_json::Value>,
}

/// Accumulates rows of the run.
struct Tally {
    counts: Vec<u8>,
    rows_scanned: u64,
    found: u64,
    bad_marks: u64,
    accepted_ms: Histogram<u64>,
    durable_ms: Histogram<u64>,
}

impl Tally {
    fn add(&mut self, seq: u64) {
        let slot = seq as usize;
        if self.counts.len() <= slot {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] = self.counts[slot].saturating_add(1);
    }

    fn into_report(
        self,
        run_id: &RunId,
        files: u64,
        expect: Option<u64>,
        acknowledged: Option<&SeqRanges>,
    ) -> VerifyReport {
        if let Some(acknowledged) = acknowledged {
            return self.into_report_against(run_id, files, acknowledged);
        }
        let expected = expect.unwrap_or(self.counts.len() as u64);
        let mut lost = Lost::default();
        let mut duplicates = Duplicates::default();
        let mut unique = 0;
        let mut unexpected = 0;
        for (seq, &count) in self.counts.iter().enumerate() {
            let seq = seq as u64;
            if count == 0 {
                if seq < expected {
                    lost.count += 1;
                    if lost.first.len() < FIRST_LOST_SHOWN {
                        lost.first.push(seq);
                    }
                }
                continue;
            }
            unique += 1;
            if seq >= expected {
                unexpected += 1;
            }
            if count > 1 {
                duplicates.seqs += 1;
                duplicates.extra_rows += u64::from(count) - 1;
            }
        }
        // With --expect beyond the highest seq found, the tail is lost too.
        for seq in (self.counts.len() as u64)..expected {
            lost.count += 1;
            if lost.first.len() < FIRST_LOST_SHOWN {
                lost.first.push(seq);
            }
        }
        VerifyReport {
            run_id: run_id.to_string(),
            files,
            rows_scanned: self.rows_scanned,
            found: self.found,
            unique,
            expected,
            expected_from: if expect.is_some() {
                "expect"
            } else {
                "max_seq"
            },
            lost,
            duplicates,
            unexpected,
            bad_marks: self.bad_marks,
            latency_accepted: LatencySummary::from_millis(&self.accepted_ms),
            latency_durable: LatencySummary::from_millis(&self.durable_ms),
        }
    }
}

impl Tally {
    /// The report when exactly the numbers in `acknowledged` are expected.
    fn into_report_against(
        self,
        run_id: &RunId,
        files: u64,
        acknowledged: &SeqRanges,
    ) -> VerifyReport {
        let mut lost = Lost::default();
        for seq in acknowledged.iter() {
            if self.counts.get(seq as usize).copied().unwrap_or(0) == 0 {
                lost.count += 1;
                if lost.first.len() < FIRST_LOST_SHOWN {
                    lost.first.push(seq);
                }
            }
        }
        let mut duplicates = Duplicates::default();
        let (mut unique, mut unexpected) = (0, 0);
        for (seq, &count) in self.counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            unique += 1;
            if !acknowledged.contains(seq as u64) {
                unexpected += 1;
            }
            if count > 1 {
                duplicates.seqs += 1;
                duplicates.extra_rows += u64::from(count) - 1;
            }
        }
        VerifyReport {
            run_id: run_id.to_string(),
            files,
            rows_scanned: self.rows_scanned,
            found: self.found,
            unique,
            expected: acknowledged.len(),
            expected_from: "send_report",
            lost,
            duplicates,
            unexpected,
            bad_marks: self.bad_marks,
            latency_accepted: LatencySummary::from_millis(&self.accepted_ms),
            latency_durable: LatencySummary::from_millis(&self.durable_ms),
        }
    }
}

impl Tally {
    fn new() -> Self {
        Tally {
            counts: Vec::new(),
            rows_scanned: 0,
            found: 0,
            bad_marks: 0,
            accepted_ms: new_histogram(),
            durable_ms: new_histogram(),
        }
    }
}

/// Checks one run against the lake `request.lake` names. For a lake on S3 this blocks on
/// a runtime of its own (see [`s3::verify_s3`] to call from async code).
pub fn verify(request: &VerifyRequest) -> Result<VerifyReport, VerifyError> {
    let data_dir = match &request.lake {
        Lake::DataDir(dir) => dir,
        Lake::S3(lake) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| VerifyError::Io {
                    path: PathBuf::from("tokio runtime"),
                    source,
                })?;
            return runtime.block_on(s3::verify_s3(lake, request));
        }
    };
    let root = data_dir.join(LAKE_LOGS_DIR);
    if !root.is_dir() {
        return Err(VerifyError::NoLake(root));
    }
    let mut files = Vec::new();
    collect_parquet_files(&root, &mut files)?;
    files.sort();
    let mut tally = Tally::new();
    for path in &files {
        scan_file(path, &request.run_id, &mut tally)?;
    }
    Ok(tally.into_report(
        &request.run_id,
        files.len() as u64,
        request.expect,
        request.acknowledged.as_ref(),
    ))
}

/// Finds `*.parquet` files below `dir`, skipping names that start with `.`.
fn collect_parquet_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), VerifyError> {
    let io = |source| VerifyError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            collect_parquet_files(&path, out)?;
        } else if kind.is_file() && name.ends_with(".parquet") {
            out.push(path);
        }
    }
    Ok(())
}

fn scan_file(path: &Path, run: &RunId, tally: &mut Tally) -> Result<(), VerifyError> {
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mtime_ms = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64);
    scan_parquet(file, path, mtime_ms, run, tally)
}

/// Adds the rows of `run` in one Parquet file (`name` for errors, `mtime_ms` when it was
/// complete) to `tally`.
fn scan_parquet<R: ChunkReader + 'static>(
    reader: R,
    name: &Path,
    mtime_ms: Option<u64>,
    run: &RunId,
    tally: &mut Tally,
) -> Result<(), VerifyError> {
    let parquet_error = |reason: String| VerifyError::Parquet {
        path: name.to_owned(),
        reason,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader)
        .map_err(|e| parquet_error(e.to_string()))?;
    let schema = builder.parquet_schema();
    let columns: BTreeMap<&str, usize> = schema
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name(), i))
        .collect();
    let (Some(&attrs_at), Some(&ingest_at)) = (columns.get("attrs"), columns.get("ingest_ts"))
    else {
        return Err(parquet_error("no attrs or ingest_ts column".to_owned()));
    };
    let mask = ProjectionMask::leaves(schema, [ingest_at, attrs_at]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| parquet_error(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(e.to_string()))?;
        scan_batch(&batch, run, mtime_ms, tally).map_err(parquet_error)?;
    }
    Ok(())
}

fn scan_batch(
    batch: &RecordBatch,
    run: &RunId,
    mtime_ms: Option<u64>,
    tally: &mut Tally,
) -> Result<(), String> {
    let attrs = batch
        .column_by_name("attrs")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or("attrs is not a string column")?;
    let ingest = batch
        .column_by_name("ingest_ts")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or("ingest_ts is not a millisecond timestamp column")?;
    let needle = format!("\"{}\"", run.as_str());
    tally.rows_scanned += batch.num_rows() as u64;
    for row in 0..batch.num_rows() {
        if attrs.is_null(row) {
            continue;
        }
        let text = attrs.value(row);
        // Cheap filter before parsing: the run id must appear as a JSON string.
        if !text.contains(&needle) {
            continue;
        }
        let Ok(marks) = serde_json::from_str::<Marks>(text) else {
            continue;
        };
        if marks.lg_run.as_deref() != Some(run.as_str()) {
            continue;
        }
        tally.found += 1;
        let number = |v: Option<serde_json::Value>| v.and_then(|v| v.as_u64());
        let (Some(seq), Some(sent_ms)) = (number(marks.lg_seq), number(marks.lg_sent_ms)) else {
            tally.bad_marks += 1;
            continue;
        };
        if seq >= MAX_SEQ {
            tally.bad_marks += 1;
            continue;
        }
        tally.add(seq);
        if !ingest.is_null(row) {
            let ingest_ms = u64::try_from(ingest.value(row)).unwrap_or(0);
            record(&mut tally.accepted_ms, ingest_ms.saturating_sub(sent_ms));
        }
        if let Some(mtime_ms) = mtime_ms {
            record(&mut tally.durable_ms, mtime_ms.saturating_sub(sent_ms));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::ArrayRef;
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use parquet::arrow::ArrowWriter;

    use super::*;

    /// Writes a lake file with the lake's column names for `attrs` and `ingest_ts` (plus
    /// `event_id`), one row per `(attrs, ingest_ts)`.
    fn write_lake_file(path: &Path, rows: &[(Option<String>, i64)]) {
        write_lake_file_at(path, rows, None);
    }

    /// [`write_lake_file`] with the file's mtime set to `mtime_ms` (Unix ms) when given.
    fn write_lake_file_at(path: &Path, rows: &[(Option<String>, i64)], mtime_ms: Option<u64>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Utf8, false),
            Field::new("ingest_ts", ts, false),
            Field::new("attrs", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows.len()).map(|i| format!("e{i}")),
        ));
        let ingest: ArrayRef = Arc::new(
            TimestampMillisecondArray::from_iter_values(rows.iter().map(|r| r.1))
                .with_timezone("UTC"),
        );
        let attrs: ArrayRef = Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.clone())));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids, ingest, attrs]).unwrap();
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        if let Some(ms) = mtime_ms {
            let when = UNIX_EPOCH + std::time::Duration::from_millis(ms);
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }

    fn row(run: &str, seq: u64, sent_ms: u64, ingest_ms: i64) -> (Option<String>, i64) {
        (
            Some(format!(
                r#"{{"trace_id":"ab","lg_run":"{run}","lg_seq":{seq},"lg_sent_ms":{sent_ms}}}"#
            )),
            ingest_ms,
        )
    }

    fn request(dir: &Path, expect: Option<u64>) -> VerifyRequest {
        VerifyRequest {
            lake: Lake::DataDir(dir.to_owned()),
            run_id: RunId::new("r1").unwrap(),
            expect,
            acknowledged: None,
        }
    }

    fn lake() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir
            .path()
            .join("lake/logs/dt=2026-11-23/hour=10/service=checkout");
        // Seqs 0..10 except 3 and 7; 5 twice (once in each file); another run's rows; a row
        // without marks; a hidden file being written that must be skipped.
        let mut first: Vec<_> = (0..6u64)
            .filter(|&s| s != 3)
            .map(|s| row("r1", s, 1_000, 1_000 + 10 * s as i64))
            .collect();
        first.push(row("r2", 3, 1_000, 1_000));
        first.push((None, 5));
        first.push((Some(r#"{"user":"r1"}"#.into()), 5));
        write_lake_file_at(&partition.join("part-0001.parquet"), &first, Some(1_100));
        let second: Vec<_> = (5..10u64)
            .filter(|&s| s != 7)
            .map(|s| row("r1", s, 2_000, 2_500))
            .collect();
        write_lake_file_at(
            &dir.path()
                .join("lake/logs/dt=2026-11-23/hour=11/service=api/part-0002.parquet"),
            &second,
            Some(3_000),
        );
        write_lake_file(
            &partition.join(".part-0003.parquet.tmp"),
            &[row("r1", 3, 1_000, 1_000)],
        );
        dir
    }

    #[test]
    fn lost_and_duplicate_sequence_numbers_are_found() {
        let dir = lake();
        let report = verify(&request(dir.path(), None)).unwrap();
        assert_eq!(report.files, 2);
        assert_eq!(report.rows_scanned, 8 + 4);
        assert_eq!(report.found, 9);
        assert_eq!(report.unique, 8);
        assert_eq!((report.expected, report.expected_from), (10, "max_seq"));
        assert_eq!(
            report.lost,
            Lost {
                count: 2,
                first: vec![3, 7]
            }
        );
        assert_eq!(
            report.duplicates,
            Duplicates {
                seqs: 1,
                extra_rows: 1
            }
        );
        assert_eq!((report.unexpected, report.bad_marks), (0, 0));
        assert!(report.has_loss());
        // ingest − sent: 0, 10, 20, 40, 50 ms in the first file, 500 ms × 4 in the second.
        assert_eq!(report.latency_accepted.count, 9);
        assert_eq!(report.latency_accepted.max_ms, 500.0);
        assert_eq!(report.latency_accepted.p50_ms, 50.0);
        // mtime − sent: 100 ms for the 5 rows of the first file, 1000 ms for the 4 others.
        assert_eq!(report.latency_durable.count, 9);
        assert_eq!(report.latency_durable.p50_ms, 100.0);
        assert_eq!(report.latency_durable.max_ms, 1_000.0);
        assert!(report.summary().contains("first lost: 3, 7"));
    }

    #[test]
    fn expect_extends_or_limits_the_range() {
        let dir = lake();
        let more = verify(&request(dir.path(), Some(12))).unwrap();
        assert_eq!(more.expected_from, "expect");
        assert_eq!(more.lost.first, vec![3, 7, 10, 11]);
        let fewer = verify(&request(dir.path(), Some(8))).unwrap();
        assert_eq!(fewer.lost.count, 2);
        assert_eq!(fewer.unexpected, 2);
    }

    #[test]
    fn with_a_send_report_only_acknowledged_numbers_can_be_lost() {
        let dir = lake();
        // The lake holds 0..10 except 3 and 7. send saw 0..3 and 5..7 acknowledged: 3 and 7
        // were never acknowledged (a restart cut them), so nothing is lost; 4, 7.. found
        // but unacknowledged are unexpected.
        let report_file = dir.path().join("send.json");
        std::fs::write(
            &report_file,
            "progress noise\n{\"run_id\":\"r1\",\"acknowledged\":5,\"acknowledged_seqs\":[[0,3],[5,7]],\"rejected\":0}\n",
        )
        .unwrap();
        let acks = read_send_report(&report_file).unwrap();
        assert_eq!(acks.run_id, "r1");
        let mut req = request(dir.path(), None);
        req.acknowledged = Some(acks.acknowledged_seqs.clone());
        let report = verify(&req).unwrap();
        assert_eq!((report.expected, report.expected_from), (5, "send_report"));
        assert_eq!(report.lost, Lost::default());
        assert!(!report.has_loss(), "{report:?}");
        assert_eq!(report.unexpected, 3, "4, 8 and 9");
        // An acknowledged number missing is lost.
        let mut acked = acks.acknowledged_seqs;
        acked.insert(7, 8);
        req.acknowledged = Some(acked);
        let report = verify(&req).unwrap();
        assert_eq!(report.lost.first, vec![7]);
        // A report whose ranges disagree with its count is refused.
        std::fs::write(
            &report_file,
            "{\"run_id\":\"r1\",\"acknowledged\":9,\"acknowledged_seqs\":[[0,3]]}",
        )
        .unwrap();
        assert!(matches!(
            read_send_report(&report_file),
            Err(VerifyError::SendReport { .. })
        ));
    }

    #[test]
    fn a_complete_run_has_no_loss() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<_> = (0..100u64).map(|s| row("r1", s, 5, 6)).collect();
        write_lake_file(
            &dir.path()
                .join("lake/logs/dt=2026-11-23/hour=10/service=a/p.parquet"),
            &rows,
        );
        let report = verify(&request(dir.path(), Some(100))).unwrap();
        assert!(!report.has_loss(), "{report:?}");
        assert_eq!(
            (report.found, report.unique, report.lost.count),
            (100, 100, 0)
        );
        assert_eq!(report.latency_accepted.max_ms, 1.0);
    }

    #[test]
    fn an_absent_run_or_lake_is_reported() {
        let dir = lake();
        let mut other = request(dir.path(), None);
        other.run_id = RunId::new("nobody").unwrap();
        let report = verify(&other).unwrap();
        assert_eq!((report.found, report.expected), (0, 0));
        assert!(report.has_loss());
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            verify(&request(empty.path(), None)),
            Err(VerifyError::NoLake(_))
        ));
    }

    #[test]
    fn rows_with_unusable_marks_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        write_lake_file(
            &dir.path().join("lake/logs/x/p.parquet"),
            &[
                (
                    Some(r#"{"lg_run":"r1","lg_seq":"zero","lg_sent_ms":1}"#.into()),
                    1,
                ),
                (Some(r#"{"lg_run":"r1","lg_sent_ms":1}"#.into()), 1),
                (
                    Some(format!(
                        r#"{{"lg_run":"r1","lg_seq":{MAX_SEQ},"lg_sent_ms":1}}"#
                    )),
                    1,
                ),
                row("r1", 0, 1, 1),
            ],
        );
        let report = verify(&request(dir.path(), None)).unwrap();
        assert_eq!((report.found, report.bad_marks, report.unique), (4, 3, 1));
    }
}
