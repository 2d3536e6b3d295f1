use std::io::Write;

use base64::Engine as _;
use flate2::{Compression, write::GzEncoder};

use super::*;
use crate::classify::{Classifier, ClassifierConfig};
use Severity::*;

const INGEST: i64 = 1_700_000_000_000;

fn decoder() -> LineDecoder {
    LineDecoder::new(DecoderConfig::default(), Classifier::default())
}

fn ctx() -> DecodeContext<'static> {
    DecodeContext::new("test", INGEST)
}

fn run(input: &[u8]) -> (EventBatch, Vec<DeadLetter>, DecodeStats) {
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let stats = decoder().decode_chunk(input, 0, &ctx(), &mut out, &mut dead);
    check_columns(&out);
    assert_eq!(stats.events, out.len());
    assert_eq!(stats.dead_letters, dead.len());
    (out, dead, stats)
}

fn check_columns(b: &EventBatch) {
    let n = b.len();
    for c in b.str_columns() {
        assert_eq!(c.len(), n);
        assert!(c.validity.as_ref().is_none_or(|v| v.len() == n));
    }
    assert_eq!(
        (
            b.ingest_ts.len(),
            b.severity.len(),
            b.tags.len(),
            b.status.len()
        ),
        (n, n, n, n)
    );
}

fn tags(b: &EventBatch, i: usize) -> Vec<&str> {
    b.row_tags(i).collect()
}

#[test]
fn json_line_fills_every_column() {
    let line = br#"{"ts":"2024-01-01T00:00:00.123Z","level":"err","service":"api","host":"h1","msg":"db timeout","status":"503","ip":"10.1.2.3","trace_id":"t-1"}"#;
    let (b, dead, _) = run(line);
    assert!(dead.is_empty());
    assert_eq!(b.len(), 1);
    assert_eq!(b.event_id.get(0), Some("test:0"));
    assert_eq!(b.ts[0], 1_704_067_200_123);
    assert_eq!(b.ingest_ts[0], INGEST);
    assert_eq!(b.service.get(0), Some("api"));
    assert_eq!(b.host.get(0), Some("h1"));
    assert_eq!(b.source.get(0), Some("test"));
    assert_eq!(b.log_group.get(0), None);
    assert_eq!(b.severity[0], Error);
    assert_eq!(b.status[0], 503);
    assert_eq!(tags(&b, 0), ["http_5xx"]);
    assert_eq!(b.client_ip.get(0), Some("10.1.2.3"));
    assert_eq!(b.message.get(0), Some("db timeout"));
    assert_eq!(b.attrs.get(0), Some(r#"{"trace_id":"t-1"}"#));
}

#[test]
fn the_source_column_holds_the_origin_and_ids_the_chunk_prefix() {
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let c = DecodeContext {
        source: "sqs:orders:m-1",
        origin: "sqs:orders",
        ..ctx()
    };
    decoder().decode_chunk(b"a\nb\n", 0, &c, &mut out, &mut dead);
    assert_eq!(out.source.get(0), Some("sqs:orders"));
    assert_eq!(out.source.get(1), Some("sqs:orders"));
    assert_eq!(out.event_id.get(0), Some("sqs:orders:m-1:0"));
    assert_eq!(out.event_id.get(1), Some("sqs:orders:m-1:2"));
}

#[test]
fn json_defaults_when_fields_are_missing() {
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let c = DecodeContext {
        default_service: "svc",
        default_host: Some("node-7"),
        ..ctx()
    };
    decoder().decode_chunk(br#"{"msg":"hello"}"#, 0, &c, &mut out, &mut dead);
    assert_eq!(out.ts[0], INGEST);
    assert_eq!(out.service.get(0), Some("svc"));
    assert_eq!(out.host.get(0), Some("node-7"));
    assert_eq!(out.attrs.get(0), None);
    assert_eq!(out.status[0], 0);
    assert_eq!(out.severity[0], Info);
    // No message key: empty message, everything in attrs.
    let (b, _, _) = run(br#"{"a":1}"#);
    assert_eq!(
        (b.message.get(0), b.attrs.get(0)),
        (Some(""), Some(r#"{"a":1}"#))
    );
}

#[test]
fn lines_crlf_empty_and_positions() {
    let input = b"\xEF\xBB\xBFfirst line\r\n\r\n   \n{\"msg\":\"second\"}\r\nthird";
    let (b, dead, stats) = run(input);
    assert!(dead.is_empty());
    assert_eq!(stats.events, 3);
    assert_eq!(b.message.get(0), Some("first line"));
    assert_eq!(b.message.get(1), Some("second"));
    assert_eq!(b.message.get(2), Some("third"));
    assert_eq!(b.event_id.get(0), Some("test:3"));
    assert_eq!(b.event_id.get(1), Some("test:21"));
    assert_eq!(b.event_id.get(2), Some("test:39"));
    let mut out = EventBatch::default();
    decoder().decode_chunk(b"x\ny\n", 1000, &ctx(), &mut out, &mut Vec::new());
    assert_eq!(out.event_id.get(1), Some("test:1002"));
}

#[test]
fn empty_input_gives_nothing() {
    for input in [&b""[..], b"\n\n", b"\r\n", b"\xEF\xBB\xBF", b"  \t \n"] {
        let (b, dead, _) = run(input);
        assert!(b.is_empty() && dead.is_empty());
    }
}

#[test]
fn invalid_utf8_is_a_dead_letter_and_later_lines_survive() {
    let (b, dead, _) = run(b"ok one\nbad \xff\xfe line\nok two");
    assert_eq!(b.len(), 2);
    assert_eq!(b.message.get(1), Some("ok two"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "invalid utf-8");
    assert_eq!(dead[0].raw, b"bad \xff\xfe line");
    assert_eq!(dead[0].position, 7);
    assert_eq!(dead[0].source, "test");
    // Invalid UTF-8 inside a JSON string too.
    let (_, dead, _) = run(b"{\"msg\":\"\xc3\x28\"}");
    assert_eq!(dead[0].reason, "invalid utf-8");
}

#[test]
fn truncated_and_invalid_json_are_dead_letters() {
    let (b, dead, _) = run(b"{\"msg\":\"cut off\nafter");
    assert_eq!(b.len(), 1);
    assert_eq!(b.message.get(0), Some("after"));
    assert!(
        dead[0].reason.starts_with("truncated json: "),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].raw, b"{\"msg\":\"cut off");
    let (_, dead, _) = run(b"{\"a\":1,\"b\":2");
    assert!(
        dead[0].reason.starts_with("truncated json"),
        "{}",
        dead[0].reason
    );
    let (_, dead, _) = run(b"{\"a\":}");
    assert!(
        dead[0].reason.starts_with("invalid json: "),
        "{}",
        dead[0].reason
    );
    let (_, dead, _) = run(b"{\"a\":1} trailing}");
    assert!(
        dead[0].reason.starts_with("invalid json"),
        "{}",
        dead[0].reason
    );
    assert_eq!(dead[0].reason, dead[0].reason.to_lowercase());
}

#[test]
fn deep_nesting_is_a_dead_letter() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let (b, dead, _) = run(deep.as_bytes());
    assert!(b.is_empty());
    assert_eq!(dead[0].reason, "json nesting deeper than 64");
    let ok = format!("{{\"a\":{}1{}}}", "[".repeat(30), "]".repeat(30));
    let (b, dead, _) = run(ok.as_bytes());
    assert!(dead.is_empty());
    assert!(b.attrs.get(0).unwrap().starts_with(r#"{"a":[[[["#));
}

#[test]
fn oversized_line_is_truncated_into_a_dead_letter() {
    let mut input = vec![b'x'; 2 << 20];
    input.extend_from_slice(b"\nnext");
    let (b, dead, _) = run(&input);
    assert_eq!(b.message.get(0), Some("next"));
    assert_eq!(
        dead[0].reason,
        "line exceeds 1048576 bytes (raw truncated to 65536 bytes)"
    );
    assert_eq!(dead[0].raw.len(), 65_536);
}

#[test]
fn nul_bytes_are_stripped() {
    let (b, dead, _) = run(b"\0\0\0\0real\0 line\n\0\0\0\n{\"msg\":\"j\0\"}");
    assert!(dead.is_empty(), "{dead:?}");
    assert_eq!(b.len(), 2);
    assert_eq!(b.message.get(0), Some("real line"));
    assert_eq!(b.message.get(1), Some("j"));
}

#[test]
fn non_object_json_is_text() {
    let (b, dead, _) = run(b"[1,2,\"error\"]\n42\n\"just a string\"");
    assert!(dead.is_empty());
    assert_eq!(b.len(), 3);
    assert_eq!(b.message.get(0), Some("[1,2,\"error\"]"));
    assert_eq!(b.severity[0], Error, "keywords still apply");
    assert_eq!(b.attrs.get(0), None);
    assert_eq!(b.message.get(2), Some("\"just a string\""));
}

#[test]
fn json_level_precedence() {
    let (b, _, _) = run(concat!(
        r#"{"level":"info","msg":"fatal error in test fixture"}"#,
        "\n",
        r#"{"level":true,"msg":"request failed"}"#,
        "\n",
        r#"{"msg":"ok","status":404}"#,
        "\n",
        r#"{"msg":"deprecated flag","status":502}"#,
        "\n",
        r#"{"log":{"level":"FATAL"},"msg":"x"}"#,
        "\n",
        r#"{"level":50,"msg":"x"}"#,
        "\n",
        r#"{"severity":"Warning","msg":"x"}"#,
        "\n",
        r#"{"levelname":"CRITICAL","msg":"x"}"#,
    )
    .as_bytes());
    assert_eq!(
        b.severity,
        [
            Info, Error, Warning, Error, Critical, Error, Warning, Critical
        ]
    );
    assert_eq!(b.attrs.get(1), Some(r#"{"level":true}"#));
}

#[test]
fn access_log_lines() {
    let input = concat!(
        r#"203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.1" 200 2326 "-" "curl/8""#,
        "\n",
        r#"203.0.113.9 - - [10/Oct/2000:13:55:37 -0700] "GET /missing HTTP/1.1" 404 0 "-" "curl/8""#,
        "\n",
        r#"203.0.113.9 - - [10/Oct/2000:13:55:38 -0700] "POST /api HTTP/1.1" 503 0 "-" "curl/8""#,
        "\n",
        r#"198.51.100.7 - - [10/Oct/2000:13:55:39 -0700] "POST /login HTTP/1.1" 401 0 "-" "curl/8""#,
    );
    let (b, dead, _) = run(input.as_bytes());
    assert!(dead.is_empty());
    assert_eq!(b.len(), 4);
    assert_eq!(b.ts[0], 971_211_336_000);
    assert_eq!(b.client_ip.get(0), Some("203.0.113.9"));
    assert_eq!(b.message.get(0), input.lines().next());
    assert_eq!(b.status[..], [200, 404, 503, 401]);
    assert_eq!(b.severity, [Info, Warning, Error, Warning]);
    assert_eq!(
        b.attrs.get(0),
        Some(
            r#"{"method":"GET","path":"/index.html","protocol":"HTTP/1.1","user_agent":"curl/8","bytes":2326}"#
        )
    );
    assert_eq!(tags(&b, 2), ["http_5xx"]);
    assert_eq!(tags(&b, 3), ["failed_login"]);
    assert!(tags(&b, 1).is_empty());
}

#[test]
fn text_lines_get_levels_and_headers() {
    let input = concat!(
        "2015-10-18 18:01:47,978 WARN [main] o.a.Foo: slow\n",
        "<11>Oct 11 22:14:15 web1 nginx[42]: upstream gone\n",
        "Nov 20 10:00:00 bastion sshd[99]: Failed password for root from 1.2.3.4\n",
        "E1123 12:00:00.000000 1 main.go:1] boom\n",
        "plain words only\n",
        "2024-01-01T00:00:00Z host app[12]: INFO retry failed\n",
    );
    let (b, _, _) = run(input.as_bytes());
    assert_eq!(b.severity, [Warning, Error, Error, Error, Info, Info]);
    assert_eq!(b.ts[0], 1_445_191_307_978);
    assert_eq!(b.service.get(1), Some("nginx"));
    assert_eq!(b.host.get(1), Some("web1"));
    assert_eq!(tags(&b, 2), ["failed_login"]);
    assert_eq!(b.service.get(2), Some("sshd"));
    assert_eq!(b.service.get(4), Some("unknown"));
    assert_eq!(b.ts[4], INGEST);
    assert_eq!(b.attrs.get(4), None);
    assert_eq!(b.ts[5], 1_704_067_200_000);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(data)
        .into_bytes()
}

const CW_DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/checkout","logStream":"2024/01/01/[$LATEST]abc","subscriptionFilters":["f"],"logEvents":[
 {"id":"36000000000000000000000000000000000000000000000000000001","timestamp":1704067200000,"message":"{\"level\":\"error\",\"msg\":\"payment failed\",\"service\":\"pay\"}"},
 {"id":"36000000000000000000000000000000000000000000000000000002","timestamp":1704067201000,"message":"START RequestId: 1 Version: $LATEST\n"},
 {"id":"36000000000000000000000000000000000000000000000000000003","timestamp":1704067202000,"message":"{\"ts\":\"2024-01-01T00:00:05Z\",\"msg\":\"hi\"}"},
 {"id":"36000000000000000000000000000000000000000000000000000004","timestamp":1704067203000,"message":""}
]}"#;

fn check_cw(b: &EventBatch, stats: DecodeStats) {
    assert_eq!(stats.events, 3);
    assert_eq!(b.len(), 3);
    assert_eq!(
        b.event_id.get(0),
        Some("36000000000000000000000000000000000000000000000000000001")
    );
    assert_eq!(b.log_group.get(0), Some("/aws/lambda/checkout"));
    assert_eq!(b.log_stream.get(2), Some("2024/01/01/[$LATEST]abc"));
    assert_eq!(b.severity[..], [Error, Info, Info]);
    assert_eq!(b.service.get(0), Some("pay"));
    assert_eq!(
        b.message.get(1),
        Some("START RequestId: 1 Version: $LATEST")
    );
    assert_eq!(
        b.ts[..],
        [1_704_067_200_000, 1_704_067_201_000, 1_704_067_205_000]
    );
}

#[test]
fn cloudwatch_gzip_base64_and_plain() {
    let gz = gzip(CW_DATA.as_bytes());
    for payload in [gz.clone(), b64(&gz), CW_DATA.as_bytes().to_vec()] {
        let mut out = EventBatch::default();
        let mut dead = Vec::new();
        let stats = decoder().decode_cloudwatch(&payload, 0, &ctx(), &mut out, &mut dead);
        assert!(dead.is_empty(), "{dead:?}");
        check_columns(&out);
        check_cw(&out, stats);
    }
    // decode_chunk recognises whole gzip / base64-gzip payloads.
    for payload in [gz.clone(), b64(&gz)] {
        let (b, _, stats) = run(&payload);
        check_cw(&b, stats);
    }
    // One line of NDJSON holding a payload.
    let one_line = CW_DATA.replace('\n', "");
    let (b, _, stats) = run(format!("before\n{one_line}\nafter").as_bytes());
    assert_eq!(stats.events, 5);
    assert_eq!(b.message.get(0), Some("before"));
    assert_eq!(b.message.get(4), Some("after"));
    assert_eq!(b.log_group.get(4), None);
}

#[test]
fn cloudwatch_control_message_is_skipped() {
    let ctl = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#;
    let (b, dead, stats) = run(&b64(&gzip(ctl)));
    assert!(b.is_empty() && dead.is_empty());
    assert_eq!(stats.control_messages, 1);
}

#[test]
fn cloudwatch_bad_payloads_are_one_dead_letter() {
    let mut d = decoder();
    let mut cases: Vec<(Vec<u8>, &str)> = vec![
        (b"H4sI!!!not base64!!!".to_vec(), "bad base64"),
        (
            b64(b"\x1f\x8b\x08\x00garbage that is not deflate"),
            "bad gzip",
        ),
        (b64(b"neither gzip nor json"), "bad gzip"),
        (gzip(b"{\"logEvents\":[1,"), "invalid cloudwatch json"),
        (gzip(b"{\"hello\":1}"), "not a cloudwatch logs payload"),
    ];
    cases.push((
        gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"x","timestamp":1}]}"#),
        "cloudwatch log event without message",
    ));
    for (payload, want) in cases {
        let mut out = EventBatch::default();
        let mut dead = Vec::new();
        let stats = d.decode_cloudwatch(&payload, 7, &ctx(), &mut out, &mut dead);
        assert_eq!(stats.dead_letters, 1, "{want}");
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with(want),
            "{} vs {want}",
            dead[0].reason
        );
        assert_eq!(dead[0].position, 7);
        assert!(out.is_empty());
    }
}

#[test]
fn gzip_bombs_are_refused() {
    let cfg = DecoderConfig {
        max_payload_bytes: 1000,
        ..DecoderConfig::default()
    };
    let mut d = LineDecoder::new(cfg, Classifier::default());
    let big = format!(
        r#"{{"logEvents":[{{"id":"1","timestamp":1,"message":"{}"}}]}}"#,
        "a".repeat(5000)
    );
    let mut dead = Vec::new();
    let stats = d.decode_cloudwatch(
        &gzip(big.as_bytes()),
        0,
        &ctx(),
        &mut EventBatch::default(),
        &mut dead,
    );
    assert_eq!(stats.dead_letters, 1);
    assert_eq!(
        dead[0].reason,
        "gzip payload exceeds 1000 bytes decompressed"
    );
}

#[test]
fn configured_tags_flow_into_the_batch() {
    let cfg: ClassifierConfig =
        serde_json::from_str(r#"{"tags":[{"name":"oom","keywords":["out of memory"]}]}"#).unwrap();
    let mut d = LineDecoder::new(DecoderConfig::default(), Classifier::new(&cfg).unwrap());
    let mut out = EventBatch::default();
    d.decode_chunk(
        b"java: Out of memory\nfine",
        0,
        &ctx(),
        &mut out,
        &mut Vec::new(),
    );
    assert_eq!(out.row_tags(0).collect::<Vec<_>>(), ["oom"]);
    assert_eq!(out.tags[1], 0);
    assert_eq!(out.tag_names, ["oom"]);
}

#[test]
fn decoder_config_serde() {
    let c: DecoderConfig = serde_json::from_str(r#"{"max_line_bytes":10}"#).unwrap();
    assert_eq!((c.max_line_bytes, c.max_json_depth), (10, 64));
    assert!(serde_json::from_str::<DecoderConfig>(r#"{"max_lines":10}"#).is_err());
}

#[test]
fn reusing_the_decoder_across_chunks() {
    let mut d = decoder();
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    for i in 0..50 {
        let chunk = format!("{{\"msg\":\"m{i}\",\"n\":{i}}}\n{{broken\nplain {i}\n");
        d.decode_chunk(chunk.as_bytes(), i * 100, &ctx(), &mut out, &mut dead);
    }
    check_columns(&out);
    assert_eq!((out.len(), dead.len()), (100, 50));
    assert_eq!(out.message.get(98), Some("m49"));
    assert_eq!(out.attrs.get(98), Some(r#"{"n":49}"#));
}

#[test]
fn never_panics_on_garbage() {
    let mut d = decoder();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = EventBatch::default();
    let mut dead = Vec::new();
    let alphabet = b"{}[]\":,\\ \n\r\0\xff\xc3<>0123456789eE-+.aZ/Hs4I\x1f\x8b";
    for round in 0..3000 {
        let len = (round % 97) + 1;
        let chunk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        d.decode_chunk(&chunk, 0, &ctx(), &mut out, &mut dead);
        d.decode_cloudwatch(&chunk, 0, &ctx(), &mut out, &mut dead);
    }
    check_columns(&out);
    assert!(!out.is_empty() && !dead.is_empty());
}

/// Rough single-core throughput: `cargo test -p spate-operators --release -- --ignored --nocapture`.
#[test]
#[ignore = "throughput smoke test; run in release"]
fn throughput_smoke() {
    let levels = ["INFO", "err", "Warning", "debug", "FATAL", "notice"];
    let mut w1 = String::new();
    for i in 0..20_000 {
        let lvl = levels[i % levels.len()];
        w1.push_str(&format!(
            r#"{{"@timestamp":"2024-05-01T12:00:{:02}.{:03}Z","level":"{lvl}","service":"svc-{}","host":"10.0.{}.{}","trace_id":"4bf92f3577b34da6a3ce929d0e0e{i:04}","msg":"GET /api/v1/orders/{i} completed in {}ms for user {}","status":{},"region":"eu-west-1"}}"#,
            i % 60, i % 1000, i % 30, i % 4, i % 250, i % 900, i * 7, if i % 10 == 0 { 503 } else { 200 }
        ));
        w1.push('\n');
    }
    let mut access = String::new();
    for i in 0..20_000 {
        access.push_str(&format!(
            r#"10.0.{}.{} - - [10/Oct/2023:13:55:36 +0000] "GET /api/items/{i} HTTP/1.1" {} 2326 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)""#,
            i % 4, i % 250, if i % 20 == 0 { 404 } else { 200 }
        ));
        access.push('\n');
    }
    for (name, input) in [("w1-json", &w1), ("w2-access", &access)] {
        let mut d = decoder();
        let mut dead = Vec::new();
        let t = std::time::Instant::now();
        let mut n = 0;
        for _ in 0..10 {
            let mut out = EventBatch::default();
            n += d
                .decode_chunk(input.as_bytes(), 0, &ctx(), &mut out, &mut dead)
                .events;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name}: {:.0} events/s, {:.0} MiB/s",
            n as f64 / s,
            (input.len() * 10) as f64 / s / (1 << 20) as f64
        );
        assert!(dead.is_empty());
    }
}
