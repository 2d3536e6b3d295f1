use super::*;
use std::io::Write;

const MIB: usize = 1 << 20;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A budget of `limit` bytes that remembers the most it held.
struct Metered {
    limit: usize,
    now: usize,
    peak: usize,
}

impl Metered {
    fn new(limit: usize) -> Self {
        Metered {
            limit,
            now: 0,
            peak: 0,
        }
    }
}

impl Budget for Metered {
    fn hold(&mut self, bytes: usize) -> Result<(), BodyError> {
        if bytes > self.limit {
            return Err(BodyError::Busy);
        }
        self.now = bytes;
        self.peak = self.peak.max(bytes);
        Ok(())
    }
}

fn parse_metered(
    raw: Vec<u8>,
    firehose: Option<&str>,
    limits: Limits,
    budget: &mut Metered,
) -> Result<ParsedBody, BodyError> {
    budget.hold(raw.capacity()).unwrap();
    parse_within(Cow::Owned(raw), None, firehose, limits, budget)
}

#[test]
fn ndjson_becomes_one_line_record_ending_in_a_newline() {
    let body = parse(b"{\"a\":1}\n{\"a\":2}", None, None, MIB).unwrap();
    assert_eq!(body.records.len(), 1);
    assert_eq!(body.records[0].format, ChunkFormat::Lines);
    assert_eq!(body.records[0].bytes, b"{\"a\":1}\n{\"a\":2}\n");
    assert_eq!(body.lines(), 2);
    assert!(body.firehose_request_id.is_none());
}

#[test]
fn an_owned_body_becomes_its_record_without_a_copy() {
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(b"  line one\nline two");
    let mut budget = Metered::new(usize::MAX);
    let body = parse_metered(raw, None, Limits::uniform(MIB), &mut budget).unwrap();
    assert_eq!(body.records[0].bytes, b"line one\nline two\n");
    assert_eq!(budget.peak, 64, "the buffer is reused");
    assert_eq!(budget.now, body.held_bytes());
}

#[test]
fn gzip_is_found_by_header_or_by_magic() {
    let packed = gzip(b"plain line one\nline two\n");
    for encoding in [Some("gzip"), None, Some("identity")] {
        let body = parse(&packed, encoding, None, MIB).unwrap();
        assert_eq!(body.records[0].bytes, b"plain line one\nline two\n");
    }
    assert!(matches!(
        parse(b"not gzip at all", Some("gzip"), None, MIB),
        Err(BodyError::Gzip(_))
    ));
    assert!(matches!(
        parse(b"x", Some("br"), None, MIB),
        Err(BodyError::Encoding(_))
    ));
}

#[test]
fn zstd_is_found_by_header_or_by_magic() {
    let packed = zstd::bulk::compress(b"plain line one\nline two\n", 3).unwrap();
    for encoding in [Some("zstd"), Some("ZSTD"), None, Some("identity")] {
        let body = parse(&packed, encoding, None, MIB).unwrap();
        assert_eq!(body.records[0].bytes, b"plain line one\nline two\n");
    }
    let broken = parse(&packed[..packed.len() - 3], Some("zstd"), None, MIB);
    assert!(matches!(broken, Err(BodyError::Zstd(_))), "{broken:?}");
    assert!(matches!(
        parse(b"not zstd", Some("zstd"), None, MIB),
        Err(BodyError::Zstd(_))
    ));
    // A zstd body holding a CloudWatch payload is one CloudWatch record.
    let cw = br#"{"messageType":"DATA_MESSAGE","logGroup":"/g","logStream":"s","logEvents":[]}"#;
    let body = parse(&zstd::bulk::compress(cw, 3).unwrap(), None, None, MIB).unwrap();
    assert_eq!(body.records[0].format, ChunkFormat::CloudWatchPayload);
}

#[test]
fn decompressed_size_is_bounded() {
    let packed = gzip(&vec![b'a'; 3 * MIB]);
    assert_eq!(
        parse(&packed, None, None, 2 * MIB).unwrap_err(),
        BodyError::TooLarge { limit_mib: 2 }
    );
    let packed = zstd::bulk::compress(&vec![b'a'; 3 * MIB], 3).unwrap();
    assert_eq!(
        parse(&packed, Some("zstd"), None, 2 * MIB).unwrap_err(),
        BodyError::TooLarge { limit_mib: 2 }
    );
}

#[test]
fn a_gzip_bomb_holds_its_budget_and_no_more() {
    // 1 KiB of gzip per MiB of text: 64 MiB decompressed from ~64 KiB.
    let packed = gzip(&vec![b'a'; 64 * MIB]);
    // Within the decoded limit but not the memory budget: refused while
    // growing, having held no more than the budget.
    let mut budget = Metered::new(8 * MIB);
    let err = parse_metered(
        packed.clone(),
        None,
        Limits::uniform(128 * MIB),
        &mut budget,
    )
    .unwrap_err();
    assert_eq!(err, BodyError::Busy);
    assert!(budget.peak <= 8 * MIB);
    // Over the decoded limit: refused once past it, holding about twice the
    // limit at most while the buffer doubles.
    let mut budget = Metered::new(usize::MAX);
    let err =
        parse_metered(packed.clone(), None, Limits::uniform(4 * MIB), &mut budget).unwrap_err();
    assert_eq!(err, BodyError::TooLarge { limit_mib: 4 });
    assert!(
        budget.peak <= packed.len() + 2 * (4 * MIB + 2) + MIB,
        "{}",
        budget.peak
    );
    // Accepted: the budget ends at the record's size.
    let mut budget = Metered::new(usize::MAX);
    let body = parse_metered(
        gzip(&vec![b'b'; 3 * MIB]),
        None,
        Limits::uniform(4 * MIB),
        &mut budget,
    )
    .unwrap();
    assert_eq!(body.records[0].bytes.len(), 3 * MIB + 1);
    assert_eq!(budget.now, body.held_bytes());
    assert!(budget.peak <= 3 * (4 * MIB), "{}", budget.peak);
}

#[test]
fn json_array_elements_become_lines() {
    let body = parse(
        b" [ {\"level\":\"error\",\n \"msg\":\"x y\"}, \"raw text line\", [1, 2],\r\n null, \"esc\\\"aped\\nline\" ]",
        None,
        None,
        MIB,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(body.records[0].bytes.clone()).unwrap(),
        "{\"level\":\"error\",\"msg\":\"x y\"}\nraw text line\n[1, 2]\nnull\nesc\"aped line\n"
    );
    assert_eq!(body.lines(), 5);
    for broken in [&b"[{\"a\":"[..], b"[1 2]", b"[1] x", b"[1,]"] {
        assert!(
            matches!(parse(broken, None, None, MIB), Err(BodyError::JsonArray(_))),
            "{:?}",
            String::from_utf8_lossy(broken)
        );
    }
    assert_eq!(parse(b"[]", None, None, MIB).unwrap_err(), BodyError::Empty);
}

#[test]
fn a_big_json_array_holds_about_twice_its_size() {
    // 100 k small objects: parsed into values this took ~90 times the text.
    let mut text = b"[".to_vec();
    for i in 0..100_000 {
        if i > 0 {
            text.push(b',');
        }
        text.extend_from_slice(format!("{{\"i\":{i},\"level\":\"info\"}}").as_bytes());
    }
    text.push(b']');
    text.shrink_to_fit();
    let size = text.len();
    let mut budget = Metered::new(usize::MAX);
    let body = parse_metered(text, None, Limits::uniform(64 * MIB), &mut budget).unwrap();
    assert_eq!(body.lines(), 100_000);
    assert!(budget.peak <= 2 * size + 1, "{} for {size}", budget.peak);
    assert_eq!(budget.now, body.held_bytes());
}

#[test]
fn cloudwatch_payload_is_one_record_plain_or_gzipped() {
    let payload = br#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":"m"}]}"#;
    for raw in [payload.to_vec(), gzip(payload)] {
        let body = parse(&raw, None, None, MIB).unwrap();
        assert_eq!(body.records.len(), 1);
        assert_eq!(body.records[0].format, ChunkFormat::CloudWatchPayload);
        assert_eq!(body.records[0].bytes, payload);
    }
}

fn firehose_body(records: &[Vec<u8>]) -> Vec<u8> {
    let data: Vec<String> = records
        .iter()
        .map(|r| format!("{{\"data\":\"{}\"}}", b64(r)))
        .collect();
    format!(
        r#"{{"requestId":"req-1","timestamp":1,"records":[{}]}}"#,
        data.join(",")
    )
    .into_bytes()
}

#[test]
fn firehose_records_are_decoded_one_by_one() {
    let cw = gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#);
    let body = firehose_body(&[cw.clone(), b"line a\nline b".to_vec(), b"  ".to_vec()]);
    let parsed = parse(&body, None, None, MIB).unwrap();
    assert_eq!(parsed.firehose_request_id.as_deref(), Some("req-1"));
    assert_eq!(parsed.records.len(), 2);
    assert_eq!(parsed.records[0].format, ChunkFormat::CloudWatchPayload);
    assert_eq!(parsed.records[0].bytes, cw);
    assert_eq!(parsed.records[1].bytes, b"line a\nline b\n");
    let bad = r#"{"requestId":"r","records":[{"data":"***"}]}"#;
    assert!(matches!(
        parse(bad.as_bytes(), None, None, MIB),
        Err(BodyError::Firehose(e)) if e.contains("records[0].data")
    ));
    // The header alone marks a Firehose request.
    assert!(matches!(
        parse(b"{\"x\":1}", None, Some("r"), MIB),
        Err(BodyError::Firehose(e)) if e.contains("requestId")
    ));
    assert!(matches!(
        parse(b"{\"requestId\":\"r\"}", None, Some("r"), MIB),
        Err(BodyError::Firehose(e)) if e.contains("records")
    ));
}

#[test]
fn firehose_gzip_records_count_at_their_decompressed_size() {
    // Ten records of 1 MiB each once decompressed, a few KiB as sent.
    let record = gzip(&vec![b'x'; MIB]);
    let body = firehose_body(&vec![record; 10]);
    assert!(body.len() < 256 << 10, "{}", body.len());
    let limits = Limits {
        max_decoded: 4 * MIB,
        max_record: 2 * MIB,
    };
    let mut budget = Metered::new(usize::MAX);
    let err = parse_metered(body.clone(), None, limits, &mut budget).unwrap_err();
    assert_eq!(err, BodyError::TooLarge { limit_mib: 4 });
    assert!(budget.peak < MIB, "stored compressed: {}", budget.peak);
    let ok = parse(&body, None, None, 16 * MIB).unwrap();
    assert_eq!(ok.records.len(), 10);
    // One record over the per-record limit.
    let big = firehose_body(&[gzip(&vec![b'y'; 3 * MIB])]);
    assert_eq!(
        parse_within(Cow::Borrowed(&big), None, None, limits, &mut NoBudget).unwrap_err(),
        BodyError::PayloadTooLarge {
            what: "records[0].data".into(),
            limit_bytes: 2 * MIB
        }
    );
}

#[test]
fn base64_gzip_lines_count_at_their_decompressed_size() {
    // The line decoder decompresses a line that starts H4sI (base64 of gzip).
    let line = b64(&gzip(&vec![b'z'; 3 * MIB]));
    assert!(line.starts_with("H4sI"));
    let body = format!("{{\"msg\":\"fine\"}}\n{line}\n{line}\n");
    let limits = Limits {
        max_decoded: 4 * MIB,
        max_record: 4 * MIB,
    };
    let err = parse_within(
        Cow::Borrowed(body.as_bytes()),
        None,
        None,
        limits,
        &mut NoBudget,
    )
    .unwrap_err();
    assert_eq!(err, BodyError::TooLarge { limit_mib: 4 });
    // Whitespace inside the base64 (the decoder drops it) hides nothing.
    let spaced = format!("{} {}", &line[..20], &line[20..]);
    let limits = Limits {
        max_decoded: 8 * MIB,
        max_record: 2 * MIB,
    };
    let err = parse_within(
        Cow::Borrowed(spaced.as_bytes()),
        None,
        None,
        limits,
        &mut NoBudget,
    )
    .unwrap_err();
    assert_eq!(
        err,
        BodyError::PayloadTooLarge {
            what: "line 1".into(),
            limit_bytes: 2 * MIB
        }
    );
    // In a JSON array as a string element, and gzip inside gzip.
    let array = format!("[\"{line}\"]");
    assert!(
        parse_within(
            Cow::Borrowed(array.as_bytes()),
            None,
            None,
            limits,
            &mut NoBudget
        )
        .is_err()
    );
    let twice = gzip(&gzip(&vec![b'w'; 3 * MIB]));
    assert!(matches!(
        parse_within(Cow::Borrowed(&twice), None, None, limits, &mut NoBudget),
        Err(BodyError::PayloadTooLarge { .. })
    ));
}

#[test]
fn blank_bodies_are_refused() {
    assert_eq!(parse(b"", None, None, MIB).unwrap_err(), BodyError::Empty);
    assert_eq!(
        parse(b" \n\t ", None, None, MIB).unwrap_err(),
        BodyError::Empty
    );
}
