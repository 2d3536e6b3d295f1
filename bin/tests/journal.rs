//! The ingest journal through the binary: `spate journal check` on a clean
//! and a damaged journal, and `spate run` recovering a journal damaged in the
//! middle — the events of every undamaged record reach the lake, the damaged
//! bytes are copied to the dead-letter area.

mod support;

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use spate_operators::sources::journal::{Journal, JournalConfig, JournalRecord};
use spate_test_support::service::Service;
use support::spate;

/// Bytes of a record header (format v1).
const HEADER_LEN: usize = 40;
const RECORDS: usize = 20;
const LINES: usize = 5;

fn line(record: usize, n: usize) -> String {
    format!(
        "{{\"ts\":\"2026-11-23T10:00:00Z\",\"service\":\"journaltest\",\"level\":\"info\",\"msg\":\"record {record:02} line {n}\"}}\n"
    )
}

/// Writes RECORDS records of LINES lines into `<data>/journal` (nothing
/// committed), the way `spate run` appends pushes; returns each record's
/// (file offset, file bytes).
async fn journal_with_records(data: &Path) -> Vec<(usize, usize)> {
    let journal = Journal::open(&JournalConfig::default(), &data.join("journal")).unwrap();
    let writer = journal.writer();
    let mut placed = Vec::new();
    let mut offset = 0;
    for r in 0..RECORDS {
        let text: String = (0..LINES).map(|n| line(r, n)).collect();
        writer
            .append(vec![JournalRecord::lines(text.clone().into_bytes(), LINES)])
            .await
            .unwrap();
        placed.push((offset, HEADER_LEN + text.len()));
        offset += HEADER_LEN + text.len();
    }
    journal.close();
    placed
}

fn segment(data: &Path) -> std::path::PathBuf {
    data.join("journal").join(format!("{:020}.seg", 0))
}

fn check(data: &Path, format: &str) -> (i32, String) {
    let out = spate()
        .args(["journal", "check", "--format", format, "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_check_reports_damage_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let placed = journal_with_records(&data).await;
    let (code, text) = check(&data, "table");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no damaged bytes"), "{text}");
    assert!(
        text.contains(&format!("1 segments, {RECORDS} records")),
        "{text}"
    );

    let path = segment(&data);
    let mut bytes = std::fs::read(&path).unwrap();
    let (at, _) = placed[9];
    bytes[at + HEADER_LEN + 7..at + HEADER_LEN + 11].copy_from_slice(b"XXXX");
    let torn = bytes.len() - 10;
    bytes.truncate(torn);
    std::fs::write(&path, &bytes).unwrap();

    let (code, json) = check(&data, "json");
    assert_eq!(code, 3, "{json}");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["records"], RECORDS - 2);
    assert_eq!(report["damaged_ranges"], 2);
    let damaged = &report["segments"][0]["damaged"];
    assert_eq!(damaged[0]["kind"], "middle");
    assert_eq!(damaged[0]["offset"], at);
    assert_eq!(damaged[0]["bytes"], placed[9].1);
    assert_eq!(damaged[0]["reason"], "record checksum mismatch");
    assert_eq!(damaged[0]["record"]["lines"], LINES);
    assert_eq!(damaged[0]["copy"], Value::Null);
    assert_eq!(damaged[1]["kind"], "torn_tail");
    assert_eq!(damaged[1]["offset"], placed[RECORDS - 1].0);
    // Read-only: nothing changed, nothing copied.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!data.join("deadletter").exists());

    let (code, table) = check(&data, "table");
    assert_eq!(code, 3);
    assert!(table.contains("2 damaged ranges"), "{table}");
    assert!(table.contains("torn tail"), "{table}");
    assert!(
        table.contains(&format!("positions {}..", 9 * LINES * line(0, 0).len())),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spate_run_recovers_every_undamaged_record_and_keeps_the_damaged_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let placed = journal_with_records(&data).await;
    let path = segment(&data);
    let original = std::fs::read(&path).unwrap();
    let mut bytes = original.clone();
    // Four bytes overwritten in the payload of record 7, and a zeroed header
    // in record 13.
    let (r7, r13) = (placed[7], placed[13]);
    bytes[r7.0 + HEADER_LEN + 30..r7.0 + HEADER_LEN + 34]
        .copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    bytes[r13.0..r13.0 + HEADER_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    let service = Service::start(support::SPATE, &data, "");
    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
    assert!(
        output.contains("skipped") && output.contains("damaged bytes in the middle of the journal"),
        "{output}"
    );

    // Every event of the other 18 records is in the lake, none of 7 and 13.
    let out = spate()
        .args(["query", "--format", "json", "--data-dir"])
        .arg(&data)
        .arg("select message from logs order by message")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..RECORDS)
        .filter(|r| *r != 7 && *r != 13)
        .flat_map(|r| (0..LINES).map(move |n| format!("record {r:02} line {n}")))
        .collect();
    assert_eq!(got.len(), (RECORDS - 2) * LINES);
    assert_eq!(got, expected);

    // The damaged bytes are in the dead-letter area, byte for byte.
    let dead = data.join("deadletter/journal");
    let mut copies: Vec<_> = std::fs::read_dir(&dead)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    copies.sort();
    assert_eq!(copies.len(), 2, "{copies:?}");
    for (copy, (offset, len)) in copies.iter().zip([r7, r13]) {
        let letter: Value = serde_json::from_str(&std::fs::read_to_string(copy).unwrap()).unwrap();
        assert_eq!(letter["segment"], "00000000000000000000.seg");
        assert_eq!(letter["offset"], offset);
        assert_eq!(letter["bytes"], len);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(letter["raw_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, &bytes[offset..offset + len]);
    }

    // The checkpoint passed the damage: a check says so and exits 0.
    let (code, text) = check(&data, "table");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("none (committed)"), "{text}");
    assert!(text.contains(&copies[0].display().to_string()), "{text}");
}
