//! `spate journal check`: read the ingest journal of a data dir and report its
//! segments, records and damaged ranges, without changing anything.
//!
//! Exit status: 0 when no segment has damaged bytes whose events were not yet
//! committed (damage the checkpoint has passed is listed but was handled), 3
//! when some have, 1 when the journal cannot be read. Run it on a stopped service: while `spate run`
//! appends, the newest segment may end in an append still being written,
//! which reads as a torn tail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::output::{Format, text_table, write_objects, write_report};
use spate_operators::sources::journal::{
    DamageKind, JournalCheck, JournalConfig, check, dead_letter_dir,
};

/// The exit status when damage was found.
pub const DAMAGE_FOUND: u8 = 3;

/// The columns of `spate journal check --format csv`, one row a segment.
const SEGMENT_COLUMNS: [&str; 9] = [
    "name",
    "start",
    "bytes",
    "records",
    "v0_records",
    "end_position",
    "damaged_ranges",
    "damaged_bytes",
    "obsolete",
];

/// Where the journal of `data_dir` is (`[journal] dir`, else
/// `<data-dir>/journal`) and where copies of its damaged bytes go.
pub fn locations(config: &JournalConfig, data_dir: &Path) -> (PathBuf, PathBuf) {
    let default_dir = data_dir.join("journal");
    let dir = config.dir.clone().unwrap_or_else(|| default_dir.clone());
    (dir, dead_letter_dir(&default_dir))
}

/// Checks the journal and prints the report to `out`; the exit status.
pub fn run(
    config: &JournalConfig,
    data_dir: &Path,
    format: Format,
    out: &mut impl Write,
) -> Result<ExitCode> {
    let (dir, dead_dir) = locations(config, data_dir);
    let report = check(&dir, &dead_dir).with_context(|| format!("journal {}", dir.display()))?;
    match format {
        // One row per segment.
        Format::Csv => {
            let segments: Vec<serde_json::Value> = report
                .segments
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?;
            write_objects(out, format, &SEGMENT_COLUMNS, &segments)?;
        }
        _ => write_report(out, format, &serde_json::to_value(&report)?, || {
            render(&report)
        })?,
    }
    Ok(if !report.needs_attention() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DAMAGE_FOUND)
    })
}

/// The report as aligned text.
pub fn render(report: &JournalCheck) -> String {
    let mut out = format!(
        "journal {}: {} segments, {} records, positions {}..{} (checkpoint {})\n",
        report.dir.display(),
        report.segments.len(),
        report.records,
        report
            .segments
            .iter()
            .find(|s| !s.obsolete)
            .map_or(report.checkpoint, |s| s.start),
        report.end_position,
        report.checkpoint,
    );
    out.push_str(&table(
        &[
            "segment", "bytes", "records", "v0", "end", "damaged", "note",
        ],
        report.segments.iter().map(|s| {
            vec![
                s.name.clone(),
                s.bytes.to_string(),
                s.records.to_string(),
                s.v0_records.to_string(),
                s.end_position.to_string(),
                s.damaged_ranges.to_string(),
                if s.obsolete {
                    "below the checkpoint: deleted at the next start".into()
                } else {
                    String::new()
                },
            ]
        }),
    ));
    if report.is_clean() {
        out.push_str("no damaged bytes\n");
        return out;
    }
    out.push_str(&format!(
        "\n{} damaged ranges, {} bytes:\n",
        report.damaged_ranges, report.damaged_bytes
    ));
    let ranges = report
        .segments
        .iter()
        .flat_map(|s| s.damaged.iter().map(move |d| (s, d)));
    out.push_str(&table(
        &[
            "segment", "offset", "bytes", "lost", "kind", "reason", "copy",
        ],
        ranges.map(|(s, d)| {
            let lost = match d.resume_position {
                _ if d.committed => "none (committed)".to_string(),
                Some(resume) => format!("positions {}..{resume}", d.range.position),
                None => format!("positions {}..", d.range.position),
            };
            let lost = match d.range.record {
                Some(r) if !d.committed => format!("{lost} ({} lines)", r.lines),
                _ => lost,
            };
            vec![
                s.name.clone(),
                d.range.offset.to_string(),
                d.range.bytes.to_string(),
                lost,
                match d.kind {
                    DamageKind::TornTail => "torn tail".into(),
                    DamageKind::Middle => "middle".into(),
                },
                d.range.reason.to_string(),
                d.copy
                    .as_ref()
                    .map_or("none yet".into(), |p| p.display().to_string()),
            ]
        }),
    ));
    let listed: u64 = report.segments.iter().map(|s| s.damaged.len() as u64).sum();
    if listed < report.damaged_ranges {
        out.push_str(&format!(
            "({} more not listed)\n",
            report.damaged_ranges - listed
        ));
    }
    out.push_str(&format!(
        "torn tail: the end of the newest segment, most likely an append cut by a crash before its fsync (never acknowledged); cut at the next start.\n\
         middle: records that were fsynced and may have been acknowledged; skipped at the next start.\n\
         Either way `spate run` first copies the bytes to {}.\n",
        report.dead_letter_dir.display()
    ));
    out
}

/// Left-aligned columns separated by two spaces.
fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    text_table(headers, &rows.collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_where_run_puts_it() {
        let (dir, dead) = locations(&JournalConfig::default(), Path::new("/data"));
        assert_eq!(dir, Path::new("/data/journal"));
        assert_eq!(dead, Path::new("/data/deadletter/journal"));
        let custom = JournalConfig {
            dir: Some("/fast/journal".into()),
            ..JournalConfig::default()
        };
        let (dir, dead) = locations(&custom, Path::new("/data"));
        assert_eq!(dir, Path::new("/fast/journal"));
        assert_eq!(dead, Path::new("/data/deadletter/journal"));
    }

    #[test]
    fn a_missing_journal_is_an_error() {
        let data = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let err = run(
            &JournalConfig::default(),
            data.path(),
            Format::Table,
            &mut out,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("no journal directory"),
            "{err:#}"
        );
    }

    #[test]
    fn columns_line_up() {
        let text = table(
            &["a", "long header"],
            [vec!["wide cell".to_string(), "x".to_string()]].into_iter(),
        );
        assert_eq!(text, "a          long header\nwide cell  x\n");
    }
}
