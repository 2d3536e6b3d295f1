//! The binary seeds of `tests/fuzz_corpus`, written by code: `cargo test -p
//! spate-operators --test fuzz -- --ignored write_seed_corpus`. The text seeds
//! are written by hand.

use std::io::Write;

use spate_operators::sources::kinesis::kpl::aggregate;

use super::harness;

const MIB: usize = 1 << 20;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A record in the pre-v1 journal format (see `segment.rs`).
fn journal_v0(out: &mut Vec<u8>, position: u64, format: u8, lines: u32, payload: &[u8]) -> u64 {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(&1_795_486_354_861i64.to_le_bytes());
    out.extend_from_slice(&lines.to_le_bytes());
    out.push(format);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    payload.len() as u64
}

fn cloudwatch_json(kind: &str, events: &[(&str, &str)]) -> Vec<u8> {
    let events: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(i, (id, message))| {
            serde_json::json!({"id": id, "timestamp": 1_795_486_354_861i64 + i as i64, "message": message})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "messageType": kind,
        "owner": "123456789012",
        "logGroup": "/ecs/app",
        "logStream": "app/1",
        "subscriptionFilters": ["all"],
        "logEvents": events,
    }))
    .unwrap()
}

#[tokio::test]
#[ignore = "writes the binary seeds of tests/fuzz_corpus"]
async fn write_seed_corpus() {
    use base64::Engine as _;
    use spate_operators::sources::journal::{Journal, JournalConfig, JournalRecord};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::write(harness::corpus_dir(target).join(name), bytes).unwrap();
    };

    // CloudWatch Logs payloads as they arrive.
    let data = cloudwatch_json(
        "DATA_MESSAGE",
        &[
            ("1", r#"{"level":"error","msg":"boom","service":"api"}"#),
            (
                "2",
                "10.0.0.1 - - [23/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 500 12 \"-\" \"-\"",
            ),
            ("3", "plain WARNING text"),
            ("4", "   "),
        ],
    );
    write("cloudwatch", "data.gz", &gzip(&data));
    write("cloudwatch", "data.b64", b64(&gzip(&data)).as_bytes());
    write("cloudwatch", "data.json", &data);
    write(
        "cloudwatch",
        "control.gz",
        &gzip(&cloudwatch_json(
            "CONTROL_MESSAGE",
            &[("c", "CWL CONTROL MESSAGE: Checking health of destination")],
        )),
    );
    // 8 MiB of zeros: a bomb against the 256 KiB payload limit.
    write("cloudwatch", "bomb.gz", &gzip(&vec![0u8; 8 * MIB]));

    // Firehose HTTP endpoint requests (bin/tests/fuzz_body.rs).
    let firehose = serde_json::json!({
        "requestId": "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
        "timestamp": 1_795_486_354_861i64,
        "records": [
            {"data": b64(&gzip(&data))},
            {"data": b64(b"{\"level\":\"info\",\"msg\":\"one\"}\n{\"msg\":\"two\"}")},
            {"data": b64(b"   ")},
        ],
    });
    write(
        "firehose",
        "request.json",
        &serde_json::to_vec_pretty(&firehose).unwrap(),
    );
    write(
        "firehose",
        "request.json.gz",
        &gzip(&serde_json::to_vec(&firehose).unwrap()),
    );

    // KPL aggregates.
    write(
        "kpl",
        "three.bin",
        &aggregate("pk", &[b"{\"msg\":\"a\"}", b"plain b", b""]),
    );
    let many: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    let many: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    write("kpl", "fifty.bin", &aggregate("partition-key", &many));

    // Journal segments: v1 written by the journal itself, v0 as older
    // versions wrote it, and v0 continued by v1.
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&JournalConfig::default(), &dir.path().join("journal")).unwrap();
    let writer = journal.writer();
    for i in 0..12 {
        let lines: String = (0..1 + i % 4)
            .map(|l| format!("{{\"n\":{i},\"l\":{l},\"msg\":\"record\"}}\n"))
            .collect();
        let record = if i % 5 == 4 {
            JournalRecord::cloudwatch(gzip(&data), 4)
        } else {
            JournalRecord::lines(lines.into_bytes(), 1 + i % 4)
        };
        writer.append(vec![record]).await.unwrap();
    }
    journal.close();
    drop(writer);
    let v1 = std::fs::read(dir.path().join("journal").join(format!("{:020}.seg", 0))).unwrap();
    write("journal", "v1.seg", &v1);
    let mut v0 = Vec::new();
    let mut position = 0;
    for i in 0..8 {
        let text = format!("{{\"old\":{i}}}\n");
        position += journal_v0(&mut v0, position, 0, 1, text.as_bytes());
    }
    write("journal", "v0.seg", &v0);
    // An upgraded process appends v1 records to the v0 segment it found.
    let upgraded = tempfile::tempdir().unwrap();
    let jdir = upgraded.path().join("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    std::fs::write(jdir.join(format!("{:020}.seg", 0)), &v0).unwrap();
    let journal = Journal::open(&JournalConfig::default(), &jdir).unwrap();
    for i in 0..4 {
        let text = format!("{{\"new\":{i}}}\n");
        journal
            .writer()
            .append(vec![JournalRecord::lines(text.into_bytes(), 1)])
            .await
            .unwrap();
    }
    journal.close();
    write(
        "journal",
        "v0_then_v1.seg",
        &std::fs::read(jdir.join(format!("{:020}.seg", 0))).unwrap(),
    );
}
