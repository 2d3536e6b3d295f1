//! Tests of the `loadgen` command line: parsing and the checks before any I/O.

use super::*;

#[test]
fn counts_accept_suffixes_and_separators() {
    assert_eq!(parse_count("1000"), Ok(1000));
    assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
    assert_eq!(parse_count("20m"), Ok(20_000_000));
    assert_eq!(parse_count("500K"), Ok(500_000));
    assert!(
        parse_count("lots")
            .unwrap_err()
            .starts_with("invalid event count")
    );
    assert!(parse_count("99999999999999999999m").is_err());
}

#[test]
fn rates_and_durations_parse() {
    assert_eq!(parse_rate("20k"), Ok(20_000.0));
    assert_eq!(parse_rate("0.5"), Ok(0.5));
    assert_eq!(parse_rate("1_000"), Ok(1_000.0));
    assert!(parse_rate("0").is_err());
    assert!(parse_rate("fast").unwrap_err().starts_with("invalid rate"));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("soon").is_err());
}

fn send_args(extra: &[&str]) -> SendArgs {
    let mut argv = vec!["loadgen", "send", "--rate", "1k"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Send(args) => args,
        _ => panic!("not send"),
    }
}

#[test]
fn cli_parses_send_with_defaults() {
    let args = send_args(&["--duration", "10s"]);
    assert_eq!(args.workload, Workload::AppJson);
    assert_eq!(args.profile, Profile::Steady);
    assert_eq!(args.target, "http://127.0.0.1:8470");
    assert_eq!((args.concurrency, args.batch_events), (8, 500));
    assert_eq!((args.max_overdue, args.seed), (64, 1));
    assert!(!args.gzip && !args.json && args.token.is_none());
    let plan = send_plan(&args, false).unwrap();
    assert_eq!(plan.schedule.total_events(), 10_000);
    assert!(plan.run_id.as_str().starts_with("lg-"));

    let args = send_args(&[
        "--profile",
        "sine",
        "--duration",
        "2m",
        "--amplitude",
        "0.25",
        "--period",
        "30s",
        "--run-id",
        "r-7",
        "--workload",
        "w3",
        "--target",
        "file:/tmp/x",
        "--json",
    ]);
    let plan = send_plan(&args, false).unwrap();
    assert_eq!(
        plan.schedule.profile(),
        Profile::Sine {
            amplitude: 0.25,
            period: Duration::from_secs(30)
        }
    );
    assert_eq!(plan.run_id.as_str(), "r-7");
    assert_eq!(plan.workload, Workload::CloudWatch);

    // Spike needs no duration; steady does.
    assert!(send_plan(&send_args(&["--profile", "spike"]), false).is_ok());
    let err = send_plan(&send_args(&[]), false).unwrap_err().to_string();
    assert_eq!(err, "profile steady needs a positive --duration");
    let err = send_plan(
        &send_args(&["--duration", "1s", "--target", "stdout", "--json"]),
        false,
    );
    assert!(err.is_err());
    assert!(Cli::try_parse_from(["loadgen", "send", "--rate", "1", "--run-id", "a b"]).is_err());
}

#[test]
fn aws_targets_need_their_options() {
    let plan = |extra: &[&str]| {
        let mut all = vec!["--duration", "1s"];
        all.extend_from_slice(extra);
        send_plan(&send_args(&all), false).map_err(|e| e.to_string())
    };
    let args = send_args(&["--target", "sqs", "--queue-url", "http://q/1"]);
    assert_eq!(
        aws_destination(&args).unwrap(),
        Some(AwsDestination::Sqs {
            queue_url: "http://q/1".into()
        })
    );
    assert_eq!(args.events_per_message, 100);
    assert_eq!(args.message_format, MessageFormat::Ndjson);
    let args = send_args(&[
        "--target",
        "kinesis",
        "--stream",
        "s",
        "--kpl",
        "--message-format",
        "cloudwatch",
    ]);
    assert_eq!(
        aws_destination(&args).unwrap(),
        Some(AwsDestination::Kinesis {
            stream: "s".into(),
            kpl: true
        })
    );
    assert_eq!(args.message_format, MessageFormat::CloudWatch);
    assert_eq!(
        plan(&["--target", "sqs"]).unwrap_err(),
        "--target sqs needs --queue-url URL"
    );
    assert_eq!(
        plan(&["--target", "kinesis"]).unwrap_err(),
        "--target kinesis needs --stream NAME"
    );
    assert!(plan(&["--target", "sqs", "--queue-url", "u", "--kpl"]).is_err());
    assert!(plan(&["--queue-url", "u"]).is_err());
    assert!(
        plan(&[
            "--target",
            "sqs",
            "--queue-url",
            "u",
            "--events-per-message",
            "0"
        ])
        .is_err()
    );
}

#[test]
fn cli_parses_verify_of_an_s3_lake() {
    let cli =
        Cli::try_parse_from(["loadgen", "verify", "--lake", "s3://b/spate", "--run", "r"]).unwrap();
    let Command::Verify(args) = cli.command else {
        panic!("not verify");
    };
    assert_eq!(args.lake, Some(S3Lake::parse("s3://b/spate/").unwrap()));
    assert!(args.data_dir.is_none());
    let both = [
        "loadgen",
        "verify",
        "--lake",
        "s3://b",
        "--data-dir",
        "/d",
        "--run",
        "r",
    ];
    assert!(Cli::try_parse_from(both).is_err());
    assert!(Cli::try_parse_from(["loadgen", "verify", "--run", "r"]).is_err());
    assert!(Cli::try_parse_from(["loadgen", "verify", "--lake", "b/x", "--run", "r"]).is_err());
}

#[test]
fn cli_parses_verify() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "verify",
        "--data-dir",
        "/d",
        "--run",
        "r1",
        "--expect",
        "1m",
    ])
    .unwrap();
    let Command::Verify(args) = cli.command else {
        panic!("not verify");
    };
    assert_eq!(args.data_dir, Some(PathBuf::from("/d")));
    assert_eq!(args.run_id.unwrap().as_str(), "r1");
    assert_eq!((args.expect, args.json), (Some(1_000_000), false));
    let cli = Cli::try_parse_from([
        "loadgen",
        "verify",
        "--data-dir",
        "/d",
        "--send-report",
        "send.json",
    ])
    .unwrap();
    let Command::Verify(args) = cli.command else {
        panic!("not verify");
    };
    assert_eq!(args.send_report, Some(PathBuf::from("send.json")));
    assert!(args.run_id.is_none());
    // --expect and --send-report say different things.
    let both = [
        "loadgen",
        "verify",
        "--data-dir",
        "/d",
        "--send-report",
        "s",
        "--expect",
        "5",
    ];
    assert!(Cli::try_parse_from(both).is_err());
}

#[test]
fn cli_parses_generate() {
    let cli = Cli::try_parse_from([
        "loadgen",
        "generate",
        "--workload",
        "cloudwatch",
        "--events",
        "1k",
        "--seed",
        "9",
        "--json",
    ])
    .unwrap();
    let Command::Generate(args) = cli.command else {
        panic!("not generate");
    };
    assert_eq!(args.workload, Workload::CloudWatch);
    assert_eq!((args.events, args.seed, args.json), (1000, 9, true));
    assert!(args.out.is_none());
    assert!(
        Cli::try_parse_from(["loadgen", "generate", "--workload", "w7", "--events", "1"]).is_err()
    );
}
