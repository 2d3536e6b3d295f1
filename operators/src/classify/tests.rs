use super::*;
use Severity::*;

fn sev(c: &Classifier, message: &str, level: Option<Severity>, status: u16) -> Severity {
    c.classify(&RowInput {
        message,
        level,
        status,
        ..RowInput::default()
    })
    .severity
}

fn tags<'c>(c: &'c Classifier, row: RowInput<'_>) -> Vec<&'c str> {
    let bits = c.classify(&row).tags;
    (0..64)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| c.tag_names()[b].as_str())
        .collect()
}

fn msg(message: &str) -> RowInput<'_> {
    RowInput {
        message,
        ..RowInput::default()
    }
}

#[test]
fn explicit_level_beats_keywords_and_status() {
    let c = Classifier::default();
    assert_eq!(sev(&c, "fatal error, panic!", Some(Info), 503), Info);
    assert_eq!(sev(&c, "all fine", Some(Critical), 200), Critical);
    assert_eq!(sev(&c, "deprecated call", Some(Error), 0), Error);
}

#[test]
fn without_level_the_strongest_signal_wins() {
    let c = Classifier::default();
    assert_eq!(sev(&c, "warning: slow", None, 503), Error);
    assert_eq!(sev(&c, "fatal: out of memory", None, 404), Critical);
    assert_eq!(sev(&c, "all good", None, 404), Warning);
    assert_eq!(sev(&c, "all good", None, 200), Info);
    assert_eq!(sev(&c, "request failed", None, 404), Error);
    assert_eq!(
        sev(&c, "Deprecated API used; emergency shutdown", None, 0),
        Critical
    );
    assert_eq!(sev(&c, "an exception occurred", None, 0), Error);
    assert_eq!(sev(&c, "job failure", None, 0), Error);
    assert_eq!(sev(&c, "WARN disk", None, 0), Warning);
    assert_eq!(sev(&c, "kernel PANIC", None, 0), Critical);
    assert_eq!(sev(&c, "CRITICAL battery", None, 0), Critical);
}

#[test]
fn keywords_are_word_bounded() {
    let c = Classifier::default();
    for m in [
        "terrorist attack movie",
        "0 errors, 0 warnings",
        "error_code=0",
        "the user was warned",
        "unfailed",
        "fatalistic view",
        "panicked? no: unpanicky",
        "xerror",
        "error2",
        "\u{e9}error",
    ] {
        assert_eq!(sev(&c, m, None, 0), Info, "{m}");
    }
    for (m, want) in [
        ("ERROR: boom", Error),
        ("(error)", Error),
        ("[Error] x", Error),
        ("error", Error),
        ("got error.", Error),
        ("mirror-error-free", Error),
        ("TypeError: x is undefined", Error),
        ("java.lang.NullPointerException", Error),
        ("at Foo.bar(IOException)", Error),
        ("warn", Warning),
        ("FAILED", Error),
    ] {
        assert_eq!(sev(&c, m, None, 0), want, "{m}");
    }
}

#[test]
fn keyword_severity_can_be_disabled() {
    let cfg = ClassifierConfig {
        keyword_severity: false,
        ..ClassifierConfig::default()
    };
    let c = Classifier::new(&cfg).unwrap();
    assert_eq!(sev(&c, "fatal error", None, 0), Info);
    assert_eq!(sev(&c, "fatal error", None, 502), Error);
}

#[test]
fn builtin_http_5xx_tag() {
    let c = Classifier::default();
    let row = |status| RowInput {
        message: "GET /",
        status,
        ..RowInput::default()
    };
    assert_eq!(tags(&c, row(500)), ["http_5xx"]);
    assert_eq!(tags(&c, row(599)), ["http_5xx"]);
    assert!(tags(&c, row(404)).is_empty());
    assert!(tags(&c, row(0)).is_empty());
}

#[test]
fn builtin_failed_login_tag() {
    let c = Classifier::default();
    for m in [
        "sshd[1]: Failed password for root from 10.0.0.1 port 22 ssh2",
        "sshd[1]: Invalid user admin from 10.0.0.1",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0",
        "Login failed for user 'sa'.",
        "FAILED LOGIN 3 FROM tty1 FOR bob",
    ] {
        assert_eq!(tags(&c, msg(m)), ["failed_login"], "{m}");
    }
    assert!(tags(&c, msg("login succeeded")).is_empty());
    assert!(
        tags(&c, msg("invalid username format")).is_empty(),
        "word-bounded"
    );
    let with = |path, status| RowInput {
        message: "x",
        status,
        path: Some(path),
        ..RowInput::default()
    };
    assert_eq!(tags(&c, with("/api/Login", 401)), ["failed_login"]);
    assert_eq!(tags(&c, with("/oauth/token", 401)), ["failed_login"]);
    assert_eq!(tags(&c, with("/users/signin", 401)), ["failed_login"]);
    assert!(tags(&c, with("/api/items", 401)).is_empty());
    assert!(tags(&c, with("/login", 200)).is_empty());
    // Path taken from an access-log message when not given.
    let access = r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "POST /auth/login HTTP/1.1" 401 0"#;
    let row = RowInput {
        message: access,
        status: 401,
        ..RowInput::default()
    };
    assert_eq!(tags(&c, row), ["failed_login"]);
}

#[test]
fn builtin_tags_can_be_disabled() {
    let cfg = ClassifierConfig {
        builtin_tags: false,
        ..ClassifierConfig::default()
    };
    let c = Classifier::new(&cfg).unwrap();
    assert!(c.tag_names().is_empty());
    let row = RowInput {
        message: "Failed password",
        status: 503,
        ..RowInput::default()
    };
    assert_eq!(c.classify(&row).tags, 0);
    assert_eq!(c.classify(&row).severity, Error);
}

fn rule(name: &str, kind: TagRuleKind) -> TagRule {
    TagRule {
        name: name.into(),
        kind,
    }
}

#[test]
fn configured_rules() {
    let cfg = ClassifierConfig {
        tags: vec![
            rule(
                "oom",
                TagRuleKind::Keyword(vec!["out of memory".into(), "OOMKilled".into()]),
            ),
            rule("slow", TagRuleKind::Regex(r"took \d{4,}ms".into())),
            rule(
                "db",
                TagRuleKind::MetricFilter("?postgres ?mysql -healthcheck".into()),
            ),
            rule(
                "big",
                TagRuleKind::MetricFilter("{ $.bytes > 1000000 }".into()),
            ),
            rule(
                "api_err",
                TagRuleKind::MetricFilter(r#"{ $.level = "error" && $.service = "api" }"#.into()),
            ),
            rule("oom", TagRuleKind::Regex("killed process \\d+".into())),
        ],
        ..ClassifierConfig::default()
    };
    let c = Classifier::new(&cfg).unwrap();
    assert_eq!(
        c.tag_names(),
        [
            "http_5xx",
            "failed_login",
            "oom",
            "slow",
            "db",
            "big",
            "api_err"
        ]
    );
    assert_eq!(tags(&c, msg("Out Of Memory: kill")), ["oom"]);
    assert_eq!(tags(&c, msg("pod OOMKilled")), ["oom"]);
    assert!(
        tags(&c, msg("xout of memoryx")).is_empty(),
        "keywords are word-bounded"
    );
    assert_eq!(tags(&c, msg("oom: killed process 42")), ["oom"]);
    assert_eq!(tags(&c, msg("query took 12000ms")), ["slow"]);
    assert!(tags(&c, msg("query took 12ms")).is_empty());
    assert_eq!(tags(&c, msg("postgres down")), ["db"]);
    assert!(tags(&c, msg("postgres healthcheck ok")).is_empty());
    let row = RowInput {
        message: "sent",
        attrs: Some(r#"{"bytes":2000000}"#),
        ..RowInput::default()
    };
    assert_eq!(tags(&c, row), ["big"]);
    let row = RowInput {
        message: "boom",
        level: Some(Error),
        service: Some("api"),
        ..RowInput::default()
    };
    assert_eq!(tags(&c, row), ["api_err"]);
    let row = RowInput {
        service: Some("web"),
        ..row
    };
    assert!(tags(&c, row).is_empty());
}

#[test]
fn bad_rules_are_config_errors() {
    let bad = |kind| {
        Classifier::new(&ClassifierConfig {
            tags: vec![rule("x", kind)],
            ..ClassifierConfig::default()
        })
    };
    assert!(matches!(
        bad(TagRuleKind::Regex("(".into())),
        Err(ClassifierError::BadRule { .. })
    ));
    let e = bad(TagRuleKind::MetricFilter("[a, b]".into())).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tag rule x: space-delimited metric filter patterns are not supported"
    );
    let many = ClassifierConfig {
        tags: (0..70)
            .map(|i| {
                rule(
                    &format!("t{i}"),
                    TagRuleKind::Keyword(vec![format!("k{i}")]),
                )
            })
            .collect(),
        ..ClassifierConfig::default()
    };
    assert_eq!(
        Classifier::new(&many).unwrap_err(),
        ClassifierError::TooManyTags(72)
    );
}

#[test]
fn config_deserializes_and_rejects_unknown_fields() {
    let cfg: ClassifierConfig = serde_json::from_str(
        r#"{"tags":[{"name":"oom","keywords":["oom"]},{"name":"e","regex":"x+"},{"name":"m","metric_filter":"ERROR"}]}"#,
    )
    .unwrap();
    assert!(cfg.builtin_tags && cfg.keyword_severity);
    assert_eq!(cfg.tags[1].kind, TagRuleKind::Regex("x+".into()));
    assert_eq!(cfg.tags[2].kind, TagRuleKind::MetricFilter("ERROR".into()));
    let back = serde_json::to_string(&cfg.tags[0]).unwrap();
    assert_eq!(back, r#"{"name":"oom","keywords":["oom"]}"#);
    assert!(serde_json::from_str::<ClassifierConfig>(r#"{"bogus":1}"#).is_err());
    assert!(serde_json::from_str::<TagRule>(r#"{"name":"a","keywords":[],"extra":1}"#).is_err());
    let e = serde_json::from_str::<TagRule>(r#"{"name":"a","keywords":["x"],"regex":"y"}"#);
    assert!(e.unwrap_err().to_string().contains("set exactly one of"));
}

fn batch(rows: &[(&str, Severity, u16)]) -> EventBatch {
    let mut b = EventBatch::default();
    for (m, s, st) in rows {
        b.event_id.push("id");
        b.ts.push(0);
        b.ingest_ts.push(0);
        b.service.push("svc");
        b.host.push_null();
        b.source.push("t");
        b.log_group.push_null();
        b.log_stream.push_null();
        b.severity.push(*s);
        b.tags.push(0);
        b.status.push(*st);
        b.client_ip.push_null();
        b.message.push(m);
        b.attrs.push_null();
    }
    b
}

#[test]
fn classify_batch_in_place() {
    let c = Classifier::default();
    let mut b = batch(&[
        ("fatal crash", Info, 0),
        ("all good", Warning, 0),
        ("fine", Info, 503),
        ("Failed password for x", Info, 0),
    ]);
    b.tag_names.push("preexisting".into());
    b.tags[1] = 1;
    c.classify_batch(&mut b);
    assert_eq!(b.severity, [Critical, Warning, Error, Error]);
    assert_eq!(b.row_tags(1).collect::<Vec<_>>(), ["preexisting"]);
    assert_eq!(b.row_tags(2).collect::<Vec<_>>(), ["http_5xx"]);
    assert_eq!(b.row_tags(3).collect::<Vec<_>>(), ["failed_login"]);
    assert_eq!(b.tag_names, ["preexisting", "http_5xx", "failed_login"]);
    assert!(b.row_tags(0).next().is_none());
}

#[test]
fn batch_tag_bits_respects_the_64_name_limit() {
    let c = Classifier::default();
    let mut b = EventBatch::default();
    for i in 0..64 {
        b.tag_index(&format!("t{i}"));
    }
    assert_eq!(c.batch_tag_bits(0b11, &mut b), 0);
    let mut b = EventBatch::default();
    assert_eq!(c.batch_tag_bits(0b10, &mut b), 1);
    assert_eq!(b.tag_names, ["failed_login"]);
}

#[test]
fn word_scan_agrees_with_the_automaton() {
    let pieces = [
        "error",
        "ERROR",
        "Error",
        "errors",
        "TypeError",
        "typeERROR",
        "ERRORERROR",
        "x_error",
        "9Error",
        "Exception",
        "NullPointerException",
        "exceptional",
        "critical",
        "Fatal",
        "PANIC",
        "emergency",
        "failed",
        "failure",
        "Warning",
        "warn",
        "warned",
        "deprecated",
        "Failed",
        "password",
        "publickey",
        "invalid",
        "user",
        "authentication",
        "login",
        "logon",
        "incorrect",
        "INVALID",
        "USER",
        "é",
        "ü",
        "x",
        "9",
        "_",
        "-",
        ".",
        "  ",
        " ",
        ":",
        "\"",
        "terrorist",
        "information",
        "a",
        "Login",
        "FAILED",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut messages: Vec<String> = Vec::new();
    for _ in 0..20_000 {
        let mut m = String::new();
        for _ in 0..next(8) + 1 {
            m.push_str(pieces[next(pieces.len())]);
            if next(3) > 0 {
                m.push(' ');
            }
        }
        messages.push(m);
    }
    for w in [
        spate_loadgen::Workload::AppJson,
        spate_loadgen::Workload::Access,
    ] {
        let mut out = Vec::new();
        spate_loadgen::generate(w, 5_000, 9, &mut out).unwrap();
        messages.extend(String::from_utf8(out).unwrap().lines().map(str::to_string));
    }
    for (severity, builtin) in [(true, true), (false, true), (true, false)] {
        let cfg = ClassifierConfig {
            builtin_tags: builtin,
            keyword_severity: severity,
            tags: Vec::new(),
        };
        let fast = Classifier::build(&cfg, true).unwrap();
        let reference = Classifier::build(&cfg, false).unwrap();
        assert!(fast.words.is_some() && reference.words.is_none());
        for m in &messages {
            for level in [None, Some(Warning)] {
                let row = RowInput {
                    message: m,
                    level,
                    ..RowInput::default()
                };
                assert_eq!(fast.classify(&row), reference.classify(&row), "{m:?}");
            }
        }
    }
}
