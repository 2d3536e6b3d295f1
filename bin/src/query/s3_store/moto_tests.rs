//! [`S3Store`] against the local AWS emulator (moto, started by
//! `scripts/test.sh`, which exports `SPATE_TEST_AWS_ENDPOINT` and test
//! credentials): ranges, heads, listings page by page, and the error mapping.

use std::sync::atomic::{AtomicU32, Ordering};

use datafusion::object_store::ObjectStoreExt;
use spate_operators::aws::AwsConfig;

use super::*;

fn endpoint() -> String {
    match std::env::var("SPATE_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SPATE_TEST_AWS_ENDPOINT is not set: the AWS tests need the local emulator; \
             run them with `bash scripts/test.sh`, which starts moto and sets it"
        ),
    }
}

async fn client() -> aws_sdk_s3::Client {
    let config = AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        ..AwsConfig::default()
    };
    let sdk = config.load().await;
    config.s3_client(&sdk)
}

/// A bucket name no other test (or earlier run on the same emulator) uses.
fn unique_bucket() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "s3store-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// 1,000 bytes: 0, 1, …, 255, 0, 1, …
fn content() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 256) as u8).collect()
}

/// A bucket with three objects under `lake/logs/`, a folder marker, and a key
/// that shares the prefix text but not the directory.
async fn seeded() -> (aws_sdk_s3::Client, String) {
    let client = client().await;
    let bucket = unique_bucket();
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    for (key, body) in [
        ("lake/logs/a=1/x.parquet", content()),
        ("lake/logs/a=1/y.parquet", b"yy".to_vec()),
        ("lake/logs/a=2/z.parquet", b"zzz".to_vec()),
        ("lake/logs/", Vec::new()),
        ("lake/logsextra/w.parquet", b"w".to_vec()),
    ] {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    (client, bucket)
}

fn keys(objects: &[ObjectMeta]) -> Vec<&str> {
    let mut keys: Vec<&str> = objects.iter().map(|o| o.location.as_ref()).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn ranges_and_heads_read_the_right_bytes() {
    let (client, bucket) = seeded().await;
    let store = S3Store::new(client, &bucket);
    let x = Path::from("lake/logs/a=1/x.parquet");
    let all = content();

    let bounded = store.get_range(&x, 10..20).await.unwrap();
    assert_eq!(bounded.as_ref(), &all[10..20]);
    // A Parquet footer read: the last 8 bytes, with the object's size.
    let footer = store
        .get_opts(&x, GetOptions::new().with_range(Some(GetRange::Suffix(8))))
        .await
        .unwrap();
    assert_eq!(footer.range, 992..1000);
    assert_eq!(footer.meta.size, 1000);
    assert_eq!(footer.bytes().await.unwrap().as_ref(), &all[992..]);
    let offset = store
        .get_opts(
            &x,
            GetOptions::new().with_range(Some(GetRange::Offset(990))),
        )
        .await
        .unwrap();
    assert_eq!(offset.range, 990..1000);
    // Past the end: cut at the end.
    let past = store
        .get_opts(
            &x,
            GetOptions::new().with_range(Some(GetRange::Bounded(995..2000))),
        )
        .await
        .unwrap();
    assert_eq!(past.range, 995..1000);
    assert_eq!(past.bytes().await.unwrap().as_ref(), &all[995..]);
    // Several ranges (coalesced by object_store where close).
    let ranges = store
        .get_ranges(&x, &[0..4, 500..508, 996..1000])
        .await
        .unwrap();
    assert_eq!(ranges[0].as_ref(), &all[0..4]);
    assert_eq!(ranges[1].as_ref(), &all[500..508]);
    assert_eq!(ranges[2].as_ref(), &all[996..1000]);
    // The whole object.
    let whole = store.get(&x).await.unwrap();
    assert_eq!(whole.range, 0..1000);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), &all[..]);

    let head = store.head(&x).await.unwrap();
    assert_eq!(head.size, 1000);
    assert_eq!(head.location, x);
    assert!(head.e_tag.is_some());
    assert!(head.last_modified.timestamp() > 0);
    // A matching If-None-Match is "not modified".
    let unchanged = store
        .get_opts(&x, GetOptions::new().with_if_none_match(head.e_tag.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(unchanged, Error::NotModified { .. }),
        "{unchanged}"
    );

    let missing = Path::from("lake/logs/a=1/nope.parquet");
    let err = store.get(&missing).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = store.head(&missing).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn listings_follow_pages_and_directories() {
    let (client, bucket) = seeded().await;
    // Two keys a page: every listing here takes several pages.
    let store = S3Store::new(client, &bucket).with_page_size(2);

    let logs = Path::from("lake/logs");
    let listed: Vec<ObjectMeta> = store.list(Some(&logs)).try_collect().await.unwrap();
    assert_eq!(
        keys(&listed),
        [
            "lake/logs/a=1/x.parquet",
            "lake/logs/a=1/y.parquet",
            "lake/logs/a=2/z.parquet"
        ]
    );
    let x = listed
        .iter()
        .find(|o| o.location.as_ref().ends_with("x.parquet"));
    assert_eq!(x.unwrap().size, 1000);
    let everything: Vec<ObjectMeta> = store.list(None).try_collect().await.unwrap();
    assert_eq!(everything.len(), 4, "the folder marker is not an object");

    let top = store.list_with_delimiter(Some(&logs)).await.unwrap();
    let mut prefixes: Vec<&str> = top.common_prefixes.iter().map(|p| p.as_ref()).collect();
    prefixes.sort();
    assert_eq!(prefixes, ["lake/logs/a=1", "lake/logs/a=2"]);
    assert!(top.objects.is_empty(), "{:?}", top.objects);
    let a1 = store
        .list_with_delimiter(Some(&Path::from("lake/logs/a=1")))
        .await
        .unwrap();
    assert_eq!(
        keys(&a1.objects),
        ["lake/logs/a=1/x.parquet", "lake/logs/a=1/y.parquet"]
    );
    assert!(a1.common_prefixes.is_empty());

    let nothing: Vec<ObjectMeta> = store
        .list(Some(&Path::from("elsewhere")))
        .try_collect()
        .await
        .unwrap();
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_an_empty_listing() {
    let store = S3Store::new(client().await, unique_bucket());
    let err = store
        .list(Some(&Path::from("lake")))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Generic { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = store
        .list_with_delimiter(Some(&Path::from("lake")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
