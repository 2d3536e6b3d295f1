//! Damaged journal bytes: a copy in the dead-letter area, an honest log line
//! and counters.
//!
//! Every damaged range the journal skips is first copied, fsynced, to
//! `<data-dir>/deadletter/journal/<segment start>-<offset>-<bytes>-<crc32>.ndjson`:
//! one JSON line with the dead-letter fields of the lake (`reason`, `source`,
//! `position`, `raw_base64`) and where the bytes were (`segment`, `offset`,
//! `bytes`, `end_position`, `kind`, and `record` when the damaged record's
//! header was intact). The name depends only on the place and the content, so
//! finding the same damage again (at the next start, or when the reader
//! passes it) keeps one copy.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::checkpoint::sync_dir;
use super::error::JournalError;
use super::scan::{DamagedRange, LostRecord, SegmentBytes};
use super::segment::segment_name;

/// Where a damaged range is, which says what it most likely was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// At the end of the newest segment, after its last valid record: most
    /// likely an append torn by a crash before its fsync, which was never
    /// acknowledged. Recovery cuts it off (after keeping a copy).
    TornTail,
    /// Followed by valid records, or in an older segment: the records it held
    /// were fsynced and may have been acknowledged. Skipped; the bytes stay in
    /// the segment until the checkpoint passes it.
    Middle,
}

impl DamageKind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DamageKind::TornTail => "torn_tail",
            DamageKind::Middle => "middle",
        }
    }
}

/// One damaged range, where it is and what it cost.
#[derive(Debug, Clone, Copy)]
pub(super) struct Damage<'a> {
    /// The segment file.
    pub segment: &'a Path,
    /// Its start position.
    pub segment_start: u64,
    /// The range.
    pub range: &'a DamagedRange,
    /// What it most likely is.
    pub kind: DamageKind,
    /// Position where valid records resume (the next record in the segment,
    /// or the start of the next segment); `None` when unknown (a torn tail).
    pub resume_position: Option<u64>,
    /// The journal's checkpoint: lost positions below it were already
    /// committed by the sinks.
    pub checkpoint: u64,
}

impl Damage<'_> {
    /// True when every position the damage held was committed by the sinks
    /// before (nothing is lost).
    pub fn committed(&self) -> bool {
        self.resume_position
            .is_some_and(|resume| resume <= self.checkpoint)
    }
}

#[derive(Serialize)]
struct CopyLine {
    reason: String,
    source: &'static str,
    position: u64,
    kind: DamageKind,
    segment: String,
    offset: u64,
    bytes: u64,
    end_position: Option<u64>,
    record: Option<LostRecord>,
}

/// The damaged bytes at their place in the segment.
fn damaged_bytes(damage: &Damage<'_>) -> Result<SegmentBytes<File>, JournalError> {
    let path = damage.segment;
    let file = File::open(path).map_err(|e| JournalError::io("read", path, e))?;
    Ok(SegmentBytes::new(file, damage.range.end_offset()))
}

/// Where the copy of `damage` goes in `dead_dir`: named by the segment, the
/// offset, the length and the CRC32 of the bytes (which are read for it).
pub(super) fn copy_path(dead_dir: &Path, damage: &Damage<'_>) -> Result<PathBuf, JournalError> {
    let range = damage.range;
    let mut crc = crc32fast::Hasher::new();
    damaged_bytes(damage)?
        .each_piece(range.offset, range.bytes, |p| crc.update(p))
        .map_err(|e| JournalError::io("read", damage.segment, e))?;
    Ok(dead_dir.join(format!(
        "{:020}-{}-{}-{:08x}.ndjson",
        damage.segment_start,
        range.offset,
        range.bytes,
        crc.finalize()
    )))
}

/// Copies the damaged bytes into `dead_dir` (created if needed) unless an
/// identical copy is there; returns its path. Blocking; memory stays at one
/// read window whatever the size of the damage.
pub(super) fn preserve(dead_dir: &Path, damage: &Damage<'_>) -> Result<PathBuf, JournalError> {
    let range = damage.range;
    let target = copy_path(dead_dir, damage)?;
    if target.exists() {
        return Ok(target);
    }
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::create_dir_all(dead_dir).map_err(|e| JournalError::io("create", dead_dir, e))?;
    let tmp = dead_dir.join(format!(".{name}.tmp"));
    let head = serde_json::to_string(&CopyLine {
        reason: format!("journal: {}", range.reason),
        source: "journal",
        position: range.position,
        kind: damage.kind,
        segment: segment_name(damage.segment_start),
        offset: range.offset,
        bytes: range.bytes,
        end_position: damage.resume_position,
        record: range.record,
    })
    .map_err(|e| JournalError::Corrupt(format!("cannot encode a dead letter: {e}")))?;
    let write = |file: File| -> std::io::Result<File> {
        let mut out = BufWriter::new(file);
        // The fields, then the bytes as the last one, streamed.
        out.write_all(&head.as_bytes()[..head.len() - 1])?;
        out.write_all(b",\"raw_base64\":\"")?;
        let mut encoder =
            base64::write::EncoderWriter::new(&mut out, &base64::engine::general_purpose::STANDARD);
        let mut failed = None;
        damaged_bytes(damage)
            .map_err(std::io::Error::other)?
            .each_piece(range.offset, range.bytes, |p| {
                if failed.is_none()
                    && let Err(e) = encoder.write_all(p)
                {
                    failed = Some(e);
                }
            })?;
        if let Some(e) = failed {
            return Err(e);
        }
        encoder.finish()?;
        drop(encoder);
        out.write_all(b"\"}\n")?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    };
    File::create(&tmp).and_then(write).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        JournalError::io("write", &tmp, e)
    })?;
    fs::rename(&tmp, &target).map_err(|e| JournalError::io("rename", &tmp, e))?;
    sync_dir(dead_dir)?;
    Ok(target)
}

/// Logs what was damaged, how many bytes, where the copy is and what it most
/// likely means, and counts it.
pub(super) fn report(damage: &Damage<'_>, copy: &Path) {
    let range = damage.range;
    let segment = damage.segment.display();
    let lost = match damage.resume_position {
        Some(resume) => format!("positions {}..{resume}", range.position),
        None => format!("positions from {}", range.position),
    };
    let lines = range.record.map_or(0, |r| r.lines);
    metrics::counter!("spate_journal_damaged_records_total", "kind" => damage.kind.label())
        .increment(1);
    metrics::counter!("spate_journal_damaged_bytes_total", "kind" => damage.kind.label())
        .increment(range.bytes);
    match damage.kind {
        DamageKind::TornTail => {
            metrics::counter!("spate_journal_torn_records_total").increment(1);
            tracing::warn!(%segment, offset = range.offset, bytes = range.bytes, why = range.reason,
                copy = %copy.display(),
                "journal: cut {} damaged bytes at the end of the newest segment ({lost}): most likely an append torn by a crash before its fsync, never acknowledged; if the process did not crash, acknowledged data was damaged",
                range.bytes);
        }
        DamageKind::Middle if damage.committed() => {
            tracing::warn!(%segment, offset = range.offset, bytes = range.bytes, why = range.reason,
                copy = %copy.display(),
                "journal: skipped {} damaged bytes ({lost}) whose events the sinks had already committed: nothing lost",
                range.bytes);
        }
        DamageKind::Middle => {
            tracing::error!(%segment, offset = range.offset, bytes = range.bytes, why = range.reason,
                lines, copy = %copy.display(),
                "journal: skipped {} damaged bytes in the middle of the journal ({lost}); the records after them are kept; the damaged records were fsynced and may have been acknowledged: their events are lost unless recovered from the copy",
                range.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use spate_engine::testkit::CaptureSink;

    use super::super::fixtures::{delivered, record, spawn, stop};
    use super::super::segment::{HEADER_LEN, segment_path};
    use super::super::{Journal, JournalConfig};
    use super::*;

    /// A journal in `<data>/journal` whose chunks hold one 600-byte record.
    fn open(data: &Path) -> Journal {
        let cfg = JournalConfig {
            chunk_kib: 1,
            ..JournalConfig::default()
        };
        Journal::open(&cfg, &data.join("journal")).unwrap()
    }

    /// File offset of record `n` of 600-byte records.
    fn offset_of(n: u64) -> u64 {
        n * (HEADER_LEN as u64 + 600)
    }

    fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
        let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(bytes).unwrap();
        file.sync_all().unwrap();
    }

    fn copies(data: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<_> = fs::read_dir(data.join("deadletter/journal"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        paths.sort();
        paths
    }

    async fn append(journal: &Journal, n: usize) -> u64 {
        let writer = journal.writer();
        let mut end = 0;
        for i in 0..n {
            end = writer.append(vec![record(i)]).await.unwrap().end_position;
        }
        end
    }

    #[tokio::test]
    async fn damage_found_at_open_is_skipped_and_the_rest_delivered() {
        let data = tempfile::tempdir().unwrap();
        let end = {
            let journal = open(data.path());
            let end = append(&journal, 10).await;
            journal.close();
            end
        };
        let segment = segment_path(&data.path().join("journal"), 0);
        overwrite(&segment, offset_of(4) + 100, b"\xde\xad\xbe\xef");
        let journal = open(data.path());
        assert_eq!(copies(data.path()).len(), 1);
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        // The checkpoint passes the damaged range: nothing waits for it.
        journal
            .shared
            .wait_until("the commit", |s| s.committed_position == end)
            .await;
        stop(pipeline).await;
        let expected: Vec<_> = (0..10)
            .filter(|&n| n != 4)
            .map(|n| (n as u64 * 600, record(n).bytes.to_vec()))
            .collect();
        assert_eq!(delivered(&sink), expected);
        assert_eq!(journal.checkpoint_now().await.unwrap(), end);
        // Found at open, reported once: the reader skips it quietly.
        assert_eq!(copies(data.path()).len(), 1);
        assert_eq!(journal.shared.damaged.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn damage_appearing_while_running_is_copied_and_skipped() {
        let data = tempfile::tempdir().unwrap();
        let journal = open(data.path());
        let end = append(&journal, 6).await;
        let segment = segment_path(&data.path().join("journal"), 0);
        // Record 2's header and the last record's header go bad after they
        // were acknowledged, before the pipeline reads them.
        overwrite(&segment, offset_of(2) + 9, b"\0\0");
        overwrite(&segment, offset_of(5) + 1, b"\0");
        let sink = CaptureSink::new();
        let pipeline = spawn(&journal, &sink, 16);
        journal
            .shared
            .wait_until("the commit", |s| s.committed_position == end)
            .await;
        let more = journal
            .writer()
            .append(vec![record(6)])
            .await
            .unwrap()
            .end_position;
        journal
            .shared
            .wait_until("the next commit", |s| s.committed_position == more)
            .await;
        stop(pipeline).await;
        let firsts: Vec<u64> = delivered(&sink).iter().map(|c| c.0 / 600).collect();
        assert_eq!(firsts, vec![0, 1, 3, 4, 6]);
        let copies = copies(data.path());
        assert_eq!(copies.len(), 2);
        let second: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&copies[1]).unwrap()).unwrap();
        // Damage up to the durable end: the positions up to it are lost.
        assert_eq!(second["offset"], offset_of(5));
        assert_eq!(second["position"], 5 * 600);
        assert_eq!(second["end_position"], end);
        assert_eq!(second["kind"], "middle");
    }

    #[tokio::test]
    async fn reading_stops_when_damaged_bytes_cannot_be_copied() {
        let data = tempfile::tempdir().unwrap();
        let journal = open(data.path());
        let end = append(&journal, 3).await;
        let segment = segment_path(&data.path().join("journal"), 0);
        overwrite(&segment, offset_of(1) + 50, b"!");
        fs::create_dir_all(data.path().join("deadletter")).unwrap();
        fs::write(data.path().join("deadletter/journal"), b"in the way").unwrap();
        let read = super::super::reader::locate(&journal.shared, 0).and_then(|at| {
            super::super::reader::read_chunk(&journal.shared, at, end, 1 << 20, false)
        });
        // The first record comes; the damage stops the next read.
        let (chunk, after) = read.unwrap();
        assert_eq!(chunk.unwrap().end_position, 600);
        let err = super::super::reader::read_chunk(&journal.shared, after, end, 1 << 20, false)
            .unwrap_err();
        assert!(matches!(err, JournalError::Io { .. }), "{err}");
        assert!(journal.shared.damaged.lock().unwrap().is_empty());
    }
}
