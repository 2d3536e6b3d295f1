//! The lake writer with the S3 commit target against the local emulator.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow_array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use spate_engine::testkit::{ScriptedSource, SourceLog};
use spate_engine::{ActorOptions, GraphBuilder, Pipeline, SupervisorPolicy};
use spate_operators::classify::ClassifierConfig;
use spate_operators::decode::DecoderConfig;
use spate_operators::enrich::EnrichConfig;
use spate_operators::event::wall_clock_ms;
use spate_operators::sinks::lake::partition::PartitionKey;
use spate_operators::sinks::lake::{LakeConfig, LakeSettings, LakeTarget, LakeWriter};
use spate_operators::sinks::s3_lake::{S3LakeConfig, S3Target};
use spate_operators::sources::sqs::{SqsConfig, SqsQueue};
use spate_operators::sources::{ChunkFormat, RawChunk};
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage, DecodeStageConfig};
use spate_test_support::emulator::{aws, create_queue, send_bodies};
use spate_test_support::unique;
use spate_test_support::wait::wait_until;

async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique("lake");
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

fn decode_settings() -> DecodeSettings {
    DecodeSettings::new(
        &DecoderConfig::default(),
        &ClassifierConfig::default(),
        &EnrichConfig::default(),
        &DecodeStageConfig::default(),
    )
    .expect("decode settings")
}

fn chunk(lines: &str) -> RawChunk {
    RawChunk {
        bytes: Arc::new(lines.as_bytes().to_vec()),
        source: Arc::from("test"),
        origin: Arc::from("test"),
        first_position: 0,
        ingest_ts_ms: wall_clock_ms(),
        format: ChunkFormat::Lines,
        lines: lines.lines().count(),
    }
}

/// `source` -> decode -> one lake writer committing to `target`.
fn lake_pipeline<S: spate_engine::Source<Out = RawChunk>>(
    source: impl FnMut() -> S + Send + 'static,
    lake: LakeSettings,
) -> Pipeline {
    let decode = decode_settings();
    let mut graph = GraphBuilder::new();
    graph.source("source", source);
    graph.actor_pool(
        "decode",
        1,
        move |_| DecodeStage::new(&decode),
        ActorOptions::with_capacity(4),
    );
    graph.actor(
        "lake",
        move || LakeWriter::new(lake.clone(), 0),
        ActorOptions {
            mailbox_capacity: 4,
            supervisor: SupervisorPolicy {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                ..SupervisorPolicy::default()
            },
        },
    );
    graph.connect("source", "decode").connect("decode", "lake");
    graph.build().expect("graph").spawn()
}

async fn list_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, i64)> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    out.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_string(),
                o.size().unwrap_or(0),
            )
        })
        .collect()
}

fn parquet_files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                parquet_files_under(&path)
            } else {
                usize::from(path.to_string_lossy().contains(".parquet"))
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_file_is_uploaded_under_its_partition_and_reads_back() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let bucket = bucket(&s3).await;
    let staging = tempfile::tempdir().unwrap();
    let target = S3Target::new(
        s3.clone(),
        &S3LakeConfig {
            prefix: "archive".into(),
            ..S3LakeConfig::new(&bucket)
        },
    )
    .unwrap();
    let lake = LakeSettings::new(
        &LakeConfig::default(),
        staging.path(),
        &staging.path().join("deadletter"),
    )
    .unwrap()
    .with_target(LakeTarget::S3(Arc::new(target)));

    let ts = 1_763_892_000_123i64; // 2025-11-23 10:00 UTC
    let lines = format!(
        "{{\"ts\":{ts},\"service\":\"api\",\"level\":\"error\",\"msg\":\"boom\"}}\n{{\"ts\":{ts},\"service\":\"api\",\"msg\":\"ok\"}}\n"
    );
    let source = ScriptedSource::new([chunk(&lines)]);
    let log = source.log();
    let pipeline = lake_pipeline(move || source.clone(), lake);
    pipeline.join().await.expect("pipeline");
    assert_eq!(log.delivered(), 1, "{:?}", log.verdicts());

    let keys = list_keys(&s3, &bucket).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let expected_dir = format!("archive/logs/{}/", PartitionKey::of(ts, "api").path());
    assert_eq!(
        expected_dir,
        "archive/logs/dt=2025-11-23/hour=10/service=api/"
    );
    let key = &keys[0].0;
    assert!(
        key.starts_with(&expected_dir) && key.ends_with(".parquet"),
        "{key}"
    );
    assert_eq!(
        parquet_files_under(staging.path()),
        0,
        "staged file removed"
    );

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut messages = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch
            .column(batch.schema().index_of("message").unwrap())
            .clone();
        let col = col.as_any().downcast_ref::<StringArray>().unwrap();
        messages.extend((0..col.len()).map(|i| col.value(i).to_string()));
    }
    assert_eq!(messages, ["boom", "ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_goes_up_in_parts() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let bucket = bucket(&s3).await;
    let target = S3Target::new(
        s3.clone(),
        &S3LakeConfig {
            multipart_threshold_mib: 8,
            part_size_mib: 5,
            ..S3LakeConfig::new(&bucket)
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.parquet");
    let data: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();

    let key = target.key_for("logs/dt=2026-01-01/hour=00/service=x/big.parquet");
    let uploaded = target.upload_and_remove(&path, &key).await.unwrap();
    assert_eq!(uploaded.parts, 3, "5 + 5 + 2 MiB");
    assert_eq!(uploaded.bytes, data.len() as u64);
    assert!(!path.exists(), "local copy removed after the upload");
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    let back = object.body.collect().await.unwrap().into_bytes();
    assert!(back.as_ref() == data.as_slice(), "object equals the file");

    // A small file is one PutObject.
    let small = dir.path().join("small.parquet");
    std::fs::write(&small, b"PAR1 tiny").unwrap();
    let uploaded = target
        .upload_and_remove(&small, "small.parquet")
        .await
        .unwrap();
    assert_eq!(uploaded.parts, 1);
}

/// Runs one chunk through a lake whose bucket does not exist; returns the
/// source's log and the staging directory.
async fn through_a_missing_bucket(
    input: &str,
    max_attempts: u32,
) -> (Arc<SourceLog>, tempfile::TempDir) {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let staging = tempfile::tempdir().unwrap();
    let target = S3Target::new(
        s3,
        &S3LakeConfig {
            max_attempts,
            ..S3LakeConfig::new(unique("no-such-bucket"))
        },
    )
    .unwrap();
    let lake = LakeSettings::new(
        &LakeConfig::default(),
        staging.path(),
        &staging.path().join("deadletter"),
    )
    .unwrap()
    .with_target(LakeTarget::S3(Arc::new(target)));
    let source = ScriptedSource::new([chunk(input)]);
    let log = source.log();
    let pipeline = lake_pipeline(move || source.clone(), lake);
    // The writer could not deliver at the end of its input: the pipeline
    // says so (and the source was told, see the callers).
    match pipeline.join().await {
        Err(spate_engine::PipelineError::DrainFailed { actor, reason }) => {
            assert_eq!(actor, "lake");
            assert!(reason.contains("NoSuchBucket"), "{reason}");
        }
        other => panic!("expected the lake's drain to fail, got {other:?}"),
    }
    (log, staging)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_fails_the_batches_and_leaves_no_staged_files() {
    let (log, staging) = through_a_missing_bucket("{\"msg\":\"lost?\"}\n", 2).await;
    assert_eq!(log.delivered(), 0);
    assert_eq!(
        log.failed(),
        1,
        "the source learns the failure and can redeliver"
    );
    assert_eq!(parquet_files_under(staging.path()), 0);
}

/// SQS -> decode -> lake on S3: messages are deleted only once their file is
/// in the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_messages_are_deleted_after_their_file_is_in_s3() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let sqs = aws_config.sqs_client(&sdk);
    let bucket = bucket(&s3).await;
    let url = create_queue(&sqs, &unique("to-lake"), None).await;
    let bodies: Vec<String> = (0..5)
        .map(|m| format!("{{\"service\":\"web\",\"msg\":\"m{m}\"}}\n"))
        .collect();
    send_bodies(&sqs, &url, &bodies).await;

    let staging = tempfile::tempdir().unwrap();
    let lake = s3_lake(&s3, &bucket, staging.path(), 1);
    let queue = SqsQueue::new(
        aws_config.sqs_client(&sdk),
        SqsConfig {
            pollers: 1,
            wait_time_secs: 1,
            ..SqsConfig::new(&url)
        },
    )
    .unwrap();
    let q = queue.clone();
    let pipeline = lake_pipeline(move || q.source(), lake.clone());
    let progress = queue.progress().clone();
    wait_until(
        Duration::from_secs(30),
        "every message deleted",
        async || progress.deleted.load(Ordering::Relaxed) == 5,
    )
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();

    let keys = list_keys(&s3, &bucket).await;
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|(k, _)| k.starts_with("logs/dt=") && k.contains("/service=web/"))
    );
    let totals = lake.totals().lock().unwrap().clone();
    assert_eq!(totals.counts.events, 5);
    assert_eq!(totals.files_written as usize, keys.len());
}

/// Malformed lines through the S3 lake: the dead letters land in the bucket
/// under `<prefix>deadletter/dt=…/`, each with its line and reason, before the
/// batch is acknowledged; nothing stays in the staging directories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_uploaded_next_to_the_lake() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let bucket = bucket(&s3).await;
    let staging = tempfile::tempdir().unwrap();
    let dead_dir = staging.path().join("deadletter");
    let target = S3Target::new(
        s3.clone(),
        &S3LakeConfig {
            prefix: "archive".into(),
            ..S3LakeConfig::new(&bucket)
        },
    )
    .unwrap();
    let lake = LakeSettings::new(&LakeConfig::default(), staging.path(), &dead_dir)
        .unwrap()
        .with_target(LakeTarget::S3(Arc::new(target)));
    let lines =
        "{\"service\":\"api\",\"msg\":\"fine\"}\n{\"service\": broken\n{\"unterminated\":\"x\n";
    let source = ScriptedSource::new([chunk(lines)]);
    let log = source.log();
    let pipeline = lake_pipeline(move || source.clone(), lake.clone());
    pipeline.join().await.expect("pipeline");
    assert_eq!(log.delivered(), 1, "{:?}", log.verdicts());

    let keys = list_keys(&s3, &bucket).await;
    let date = PartitionKey::of(wall_clock_ms(), "").date();
    let dead_keys: Vec<&String> = keys
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("archive/deadletter/"))
        .collect();
    assert_eq!(dead_keys.len(), 1, "{keys:?}");
    assert!(
        dead_keys[0].starts_with(&format!("archive/deadletter/dt={date}/"))
            && dead_keys[0].ends_with(".ndjson"),
        "{}",
        dead_keys[0]
    );
    assert_eq!(
        keys.len(),
        2,
        "one parquet file and one dead-letter file: {keys:?}"
    );

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(dead_keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_type(), Some("application/x-ndjson"));
    let body = object.body.collect().await.unwrap().into_bytes();
    let letters: Vec<serde_json::Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let raws: Vec<&str> = letters.iter().map(|l| l["raw"].as_str().unwrap()).collect();
    assert_eq!(raws, ["{\"service\": broken", "{\"unterminated\":\"x"]);
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.contains("json"), "the decoder's reason: {reason}");
    }
    let totals = lake.totals().lock().unwrap().clone();
    assert_eq!(totals.counts.dead_letters, 2);
    assert_eq!(totals.dead_letter_files, 1);
    assert!(
        staged_files(staging.path()).is_empty(),
        "nothing left in staging: {:?}",
        staged_files(staging.path())
    );
}

/// A dead-letter upload that fails fails the batch (the source redelivers) and
/// leaves no staged dead-letter file behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_dead_letter_upload_fails_the_batch() {
    // Only a dead letter: no Parquet file is uploaded before it.
    let (log, staging) = through_a_missing_bucket("{\"broken\n", 1).await;
    assert_eq!(log.delivered(), 0);
    assert_eq!(log.failed(), 1, "{:?}", log.verdicts());
    assert!(
        staged_files(staging.path()).is_empty(),
        "{:?}",
        staged_files(staging.path())
    );
}

/// Every file under `dir`, recursively.
/// The files under the S3 lake's local directory, but for the dedup indexes
/// (`dedup/`), which stay there by design.
fn staged_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.ends_with(spate_operators::sinks::lake::dedup::DEDUP_DIR) {
            continue;
        }
        if path.is_dir() {
            out.extend(staged_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The `event_id` of every row of every lake object in `bucket`.
async fn event_ids_in_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for (key, _) in list_keys(s3, bucket).await {
        if !key.ends_with(".parquet") {
            continue;
        }
        let object = s3.get_object().bucket(bucket).key(&key).send().await;
        let bytes = object.unwrap().body.collect().await.unwrap().into_bytes();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column(batch.schema().index_of("event_id").unwrap());
            let col = col.as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..col.len()).map(|i| col.value(i).to_string()));
        }
    }
    ids.sort();
    ids
}

/// A slow seal lets the visibility timeout of SQS messages expire: SQS
/// redelivers them (same message ids, so the same event ids), they are
/// staged twice, and the seal keeps one row of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_message_redelivered_after_its_visibility_timeout_lands_once() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let sqs = aws_config.sqs_client(&sdk);
    let bucket = bucket(&s3).await;
    let url = create_queue(&sqs, &unique("redelivered"), None).await;
    // An event time of their own: a redelivery lands in the same partition
    // even if the hour turns meanwhile.
    let ts = wall_clock_ms();
    let bodies: Vec<String> = (0..4)
        .map(|m| {
            format!(
                "{{\"ts\":{ts},\"service\":\"web\",\"msg\":\"m{m}\"}}\n\
                 {{\"ts\":{ts},\"service\":\"web\",\"msg\":\"n{m}\"}}\n"
            )
        })
        .collect();
    send_bodies(&sqs, &url, &bodies).await;

    let staging = tempfile::tempdir().unwrap();
    // Rows are acknowledged once sealed and uploaded, after 6 s; the
    // messages become visible again after 1 s.
    let lake = s3_lake(&s3, &bucket, staging.path(), 6);
    let queue = SqsQueue::new(
        aws_config.sqs_client(&sdk),
        SqsConfig {
            pollers: 1,
            wait_time_secs: 1,
            visibility_timeout_secs: 1,
            extend_visibility: false,
            ..SqsConfig::new(&url)
        },
    )
    .unwrap();
    let q = queue.clone();
    let pipeline = lake_pipeline(move || q.source(), lake.clone());
    let progress = queue.progress().clone();
    wait_until(
        Duration::from_secs(30),
        "every message received twice",
        async || progress.received.load(Ordering::Relaxed) >= 8,
    )
    .await;
    wait_until(Duration::from_secs(30), "a seal", async || {
        lake.totals().lock().unwrap().files_written > 0
    })
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    queue.settled(Duration::from_secs(10)).await;

    let ids = event_ids_in_bucket(&s3, &bucket).await;
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(ids.len(), 8, "{ids:?}");
    assert_eq!(distinct.len(), 8, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("sqs:")), "{ids:?}");
    let totals = lake.totals().lock().unwrap().clone();
    assert!(
        totals.duplicates_dropped >= 8,
        "redelivered rows dropped: {}",
        totals.duplicates_dropped
    );
}

/// With `[lake.s3]` the dedup index is on the task's disk: when it is lost
/// (a new container), the next seal of the partition rebuilds it from the
/// `event_id` column of the partition's objects, and a redelivery of rows
/// already sealed still lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_dedup_index_is_rebuilt_from_the_bucket() {
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let bucket = bucket(&s3).await;
    let staging = tempfile::tempdir().unwrap();
    let target = Arc::new(S3Target::new(s3.clone(), &S3LakeConfig::new(&bucket)).unwrap());
    let lake = LakeSettings::new(
        &LakeConfig::default(),
        staging.path(),
        &staging.path().join("dl"),
    )
    .unwrap()
    .with_target(LakeTarget::S3(target));
    let ts = 1_763_892_000_123i64;
    let lines: String = (0..3)
        .map(|i| format!("{{\"ts\":{ts},\"service\":\"api\",\"msg\":\"m{i}\"}}\n"))
        .collect();
    for life in 0..2 {
        let source = ScriptedSource::new([chunk(&lines)]);
        let log = source.log();
        let pipeline = lake_pipeline(move || source.clone(), lake.clone());
        pipeline.join().await.expect("pipeline");
        assert_eq!(log.delivered(), 1, "life {life}: {:?}", log.verdicts());
        // The container is replaced: its disk (and the index) is gone.
        let index_dir = lake.dedup_dir();
        assert!(index_dir.exists(), "life {life}");
        std::fs::remove_dir_all(&index_dir).unwrap();
    }
    let ids = event_ids_in_bucket(&s3, &bucket).await;
    // One row per event (lines of 48 bytes: ids at offsets 0, 48, 96).
    assert_eq!(ids, ["test:0", "test:48", "test:96"]);
    let totals = lake.totals().lock().unwrap().clone();
    assert_eq!(totals.duplicates_dropped, 3);
}

/// Lake settings staging in `staging` and sealing into `bucket` once a
/// partition's oldest row is `max_age_secs` old.
fn s3_lake(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    staging: &std::path::Path,
    max_age_secs: u64,
) -> LakeSettings {
    let target = S3Target::new(s3.clone(), &S3LakeConfig::new(bucket)).unwrap();
    let lake_config = LakeConfig {
        max_age: spate_operators::component::units::Seconds::units(max_age_secs),
        ..LakeConfig::default()
    };
    LakeSettings::new(&lake_config, staging, &staging.join("dl"))
        .unwrap()
        .with_target(LakeTarget::S3(Arc::new(target)))
}

/// Rows of partition `api` at 2025-11-23 10:00 with event ids `e:<i>`, `i`
/// in `ids`.
fn rows_with_ids(ids: std::ops::Range<usize>) -> arrow_array::RecordBatch {
    use spate_operators::event::{EventBatch, Severity};
    let mut b = EventBatch::default();
    for i in ids {
        b.event_id.push(&format!("e:{i}"));
        b.ts.push(1_763_892_000_000 + i as i64);
        b.ingest_ts.push(1_763_892_000_000);
        b.service.push("api");
        b.source.push("e");
        b.severity.push(Severity::Info);
        b.tags.push(0);
        b.status.push(0);
        b.message.push(&format!("m{i}"));
        for c in [
            &mut b.host,
            &mut b.log_group,
            &mut b.log_stream,
            &mut b.client_ip,
            &mut b.attrs,
        ] {
            c.push_null();
        }
    }
    spate_operators::sinks::lake::schema::to_record_batch(b).unwrap()
}

/// A seal whose upload reached the bucket but whose answer was lost (the
/// connection cut after the request went out) failed, so its rows stay
/// staged and the index does not cover its object. The next seal of the
/// partition, with one more segment and so another name, finds that object
/// among the writer's own and drops its rows; a retry of a seal with the
/// same segments finds its own file and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_answer_was_lost_is_not_sealed_twice() {
    use spate_engine::work_threads::WorkThreads;
    use spate_operators::sinks::lake::part_file::writer_properties;
    use spate_operators::sinks::lake::seal::{DedupSpec, Publish, SealJob};
    use spate_operators::sinks::lake::staging::{
        ClosedSegment, SegmentWriter, StagingCompression, StagingDurability, sealed_file_name,
    };
    let (aws_config, sdk) = aws().await;
    let s3 = aws_config.s3_client(&sdk);
    let bucket = bucket(&s3).await;
    let target = Arc::new(S3Target::new(s3.clone(), &S3LakeConfig::new(&bucket)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let key = PartitionKey::of(1_763_892_000_000, "api");
    let staging = dir.path().join("staging").join(key.path());
    let index = dir.path().join("dedup").join("ids.idx");
    let threads = WorkThreads::spawn("lake-seal-test", 1).unwrap();
    let segment = |seq: u64, ids: std::ops::Range<usize>| -> ClosedSegment {
        let mut seg = SegmentWriter::create(
            &staging,
            seq,
            StagingCompression::None,
            StagingDurability::EachCommit,
        )
        .unwrap();
        seg.append(&rows_with_ids(ids)).unwrap();
        seg.finish().unwrap()
    };
    let seal = |segments: Vec<ClosedSegment>, hi: u64| SealJob {
        key: key.clone(),
        segments,
        table_dir: dir.path().join("logs"),
        name: sealed_file_name("0000abcd", hi),
        props: writer_properties(1, 4_096).unwrap(),
        publish: Publish::S3 {
            target: target.clone(),
        },
        dedup: Some(DedupSpec {
            index: index.clone(),
            check_files: false,
        }),
    };
    // An earlier file, so the index exists.
    let first = seal(vec![segment(1, 1_000..1_010)], 1)
        .run(threads.clone())
        .await
        .unwrap();
    assert_eq!(first.rows, 10);
    let index_before = std::fs::read(&index).unwrap();
    // Segments 2 and 3 go up as part-…-3; then its answer is "lost": the
    // index is as it was and the segments are staged again.
    let lost = seal(vec![segment(2, 0..100), segment(3, 100..200)], 3)
        .run(threads.clone())
        .await
        .unwrap();
    assert_eq!(lost.rows, 200);
    std::fs::write(&index, &index_before).unwrap();
    let staged = vec![
        segment(2, 0..100),
        segment(3, 100..200),
        segment(4, 200..250),
    ];
    let next = seal(staged.clone(), 4).run(threads.clone()).await.unwrap();
    assert_eq!((next.rows, next.duplicates), (50, 200), "{next:?}");
    assert!(staged.iter().all(|s| !s.path.exists()), "segments removed");
    let expected: Vec<String> = {
        let mut ids: Vec<String> = (0..250)
            .chain(1_000..1_010)
            .map(|i| format!("e:{i}"))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(event_ids_in_bucket(&s3, &bucket).await, expected);

    // The same seal again, its answer lost too: its file is found under its
    // own name and left as it is.
    std::fs::write(&index, &index_before).unwrap();
    let again_staged = vec![
        segment(2, 0..100),
        segment(3, 100..200),
        segment(4, 200..250),
    ];
    let again = seal(again_staged.clone(), 4)
        .run(threads.clone())
        .await
        .unwrap();
    assert_eq!((again.rows, again.duplicates), (50, 0), "{again:?}");
    assert!(again.location.ends_with(&sealed_file_name("0000abcd", 4)));
    assert!(
        again_staged.iter().all(|s| !s.path.exists()),
        "segments removed"
    );
    assert_eq!(event_ids_in_bucket(&s3, &bucket).await, expected);
    assert_ne!(
        std::fs::read(&index).unwrap(),
        index_before,
        "the index caught up"
    );
}
