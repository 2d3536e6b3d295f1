//! Unit tests of the S3 store's pure parts: ranges, listings, errors, metadata.

use super::*;

#[test]
fn ranges_become_range_headers() {
    // What `get_opts` sends: object_store's own rendering, checked here
    // because S3 must see exactly this.
    assert_eq!(GetRange::Bounded(0..100).to_string(), "bytes=0-99");
    assert_eq!(GetRange::Offset(7).to_string(), "bytes=7-");
    assert_eq!(GetRange::Suffix(8).to_string(), "bytes=-8");
}

#[test]
fn content_range_parses_and_rejects_nonsense() {
    assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0..100, 1234)));
    assert_eq!(
        parse_content_range("bytes 1226-1233/1234"),
        Some((1226..1234, 1234))
    );
    for bad in [
        "bytes 5-4/10",
        "bytes 0-10/10",
        "bytes */10",
        "bytes 0-9/*",
        "items 0-9/10",
        "",
    ] {
        assert_eq!(parse_content_range(bad), None, "{bad}");
    }
}

#[test]
fn response_range_matches_the_request() {
    // A whole object.
    assert_eq!(response_range(None, None, Some(1234)), Ok((0..1234, 1234)));
    assert!(response_range(None, None, None).is_err());
    // A footer read: the last 8 bytes.
    let suffix = GetRange::Suffix(8);
    assert_eq!(
        response_range(Some(&suffix), Some("bytes 1226-1233/1234"), Some(8)),
        Ok((1226..1234, 1234))
    );
    // A suffix longer than the object is the whole object.
    assert_eq!(
        response_range(Some(&GetRange::Suffix(100)), Some("bytes 0-9/10"), Some(10)),
        Ok((0..10, 10))
    );
    // A bounded range past the end is cut at the end.
    assert_eq!(
        response_range(
            Some(&GetRange::Bounded(5..100)),
            Some("bytes 5-9/10"),
            Some(5)
        ),
        Ok((5..10, 10))
    );
    let offset = GetRange::Offset(4);
    assert_eq!(
        response_range(Some(&offset), Some("bytes 4-9/10"), Some(6)),
        Ok((4..10, 10))
    );
    // A server that ignores the range, or answers another one, is an error
    // rather than wrong bytes.
    let bounded = GetRange::Bounded(0..4);
    let ignored = response_range(Some(&bounded), None, Some(10)).unwrap_err();
    assert!(ignored.contains("no range"), "{ignored}");
    let other = response_range(Some(&bounded), Some("bytes 0-9/10"), Some(10)).unwrap_err();
    assert!(other.contains("bytes=0-3"), "{other}");
}

#[test]
fn listing_prefixes_are_directories() {
    assert_eq!(list_prefix(None), "");
    assert_eq!(list_prefix(Some(&Path::from(""))), "");
    assert_eq!(list_prefix(Some(&Path::from("lake/logs"))), "lake/logs/");
    assert_eq!(
        list_prefix(Some(&Path::parse("lake/logs/dt=2026-11-23").unwrap())),
        "lake/logs/dt=2026-11-23/"
    );
}

#[test]
fn pages_follow_continuation_tokens() {
    assert_eq!(next_page(Some(false), None), Ok(None));
    assert_eq!(next_page(None, None), Ok(None));
    assert_eq!(next_page(Some(false), Some("t")), Ok(None));
    assert_eq!(next_page(Some(true), Some("t2")), Ok(Some("t2".into())));
    assert!(next_page(Some(true), None).is_err());
    assert!(next_page(Some(true), Some("")).is_err());
}

#[test]
fn errors_map_by_code_then_status() {
    assert_eq!(
        error_kind(Some(404), Some("NoSuchKey")),
        ErrorKind::NotFound
    );
    // HeadObject answers 404 without a body, hence without a code.
    assert_eq!(error_kind(Some(404), None), ErrorKind::NotFound);
    assert_eq!(
        error_kind(Some(404), Some("NoSuchBucket")),
        ErrorKind::Other
    );
    assert_eq!(error_kind(Some(304), None), ErrorKind::NotModified);
    assert_eq!(
        error_kind(Some(412), Some("PreconditionFailed")),
        ErrorKind::Precondition
    );
    assert_eq!(error_kind(Some(401), None), ErrorKind::Unauthenticated);
    assert_eq!(
        error_kind(Some(403), Some("AccessDenied")),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        error_kind(Some(500), Some("InternalError")),
        ErrorKind::Other
    );
    // No response at all (connection refused, timeout).
    assert_eq!(error_kind(None, None), ErrorKind::Other);
}

#[test]
fn object_meta_needs_a_size_and_a_valid_key() {
    let time = AwsDateTime::from_secs(1_795_428_000);
    let meta = object_meta(
        "lake/logs/dt=2026-11-23/hour=10/service=api/part-1.parquet",
        Some(42),
        Some(&time),
        Some("\"abc\""),
        None,
    )
    .unwrap();
    assert_eq!(
        meta.location.as_ref(),
        "lake/logs/dt=2026-11-23/hour=10/service=api/part-1.parquet"
    );
    assert_eq!(meta.size, 42);
    assert_eq!(meta.last_modified.timestamp(), 1_795_428_000);
    assert_eq!(meta.e_tag.as_deref(), Some("\"abc\""));
    assert!(object_meta("a/b", None, None, None, None).is_err());
    assert!(object_meta("a/b", Some(-1), None, None, None).is_err());
    assert!(matches!(
        object_meta("a//b", Some(1), None, None, None),
        Err(Error::InvalidPath { .. })
    ));
}

#[tokio::test]
async fn writes_are_refused_as_not_supported() {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .build();
    let store = S3Store::new(aws_sdk_s3::Client::from_conf(config), "bucket");
    let path = Path::from("logs/x.parquet");
    let put = store
        .put_opts(&path, PutPayload::from_static(b"x"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(put, Error::NotSupported { .. }), "{put}");
    assert!(put.to_string().contains("read-only"), "{put}");
    let copy = store
        .copy_opts(&path, &Path::from("y"), CopyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(copy, Error::NotSupported { .. }), "{copy}");
    let deleted: Vec<Result<Path>> = store
        .delete_stream(stream::iter([Ok(path.clone())]).boxed())
        .collect()
        .await;
    assert!(matches!(deleted[..], [Err(Error::NotSupported { .. })]));
    assert_eq!(store.to_string(), "S3Store(s3://bucket)");
}
