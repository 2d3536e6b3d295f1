//! The Kinesis source against the local emulator: reading while records are
//! put, checkpoints only after delivery, two workers splitting the shards, a
//! crashed worker's shards taken over, resharding, and CloudWatch Logs
//! subscription payloads and KPL aggregated records.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use spate_test_support::emulator::aws;

use spate_test_support::decode::{column, decode_pipeline};

use spate_test_support::unique;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use spate_engine::Pipeline;
use spate_engine::testkit::CaptureSink;
use spate_operators::log_batch::LogBatch;
use spate_operators::sources::kinesis::lease::SHARD_END;
use spate_operators::sources::kinesis::{KinesisConfig, KinesisSource, KinesisStream};
use spate_test_support::acks::{AckedUpstream, check_acknowledgements};
use spate_test_support::wait::wait_until;

struct Clients {
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sdk: aws_config::SdkConfig,
}

async fn clients() -> Clients {
    let (aws, sdk) = aws().await;
    Clients {
        kinesis: aws.kinesis_client(&sdk),
        dynamodb: aws.dynamodb_client(&sdk),
        sdk,
    }
}

/// Creates a stream and waits until it is active.
async fn create_stream(c: &Clients, name: &str, shards: i32) {
    c.kinesis
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .expect("create stream");
    wait_until(Duration::from_secs(10), "stream active", async || {
        c.kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stream_description_summary)
            .is_some_and(|s| s.stream_status.as_str() == "ACTIVE")
    })
    .await;
}

async fn create_lease_table(c: &Clients, name: &str) {
    c.dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("lease_key")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("lease_key")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create lease table");
}

/// Puts one NDJSON record per message (partition keys spread them over the
/// shards); returns the last sequence number put to each shard.
async fn put(c: &Clients, stream: &str, messages: &[String]) -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    for chunk in messages.chunks(100) {
        let entries = chunk
            .iter()
            .map(|m| {
                PutRecordsRequestEntry::builder()
                    .partition_key(m.clone())
                    .data(Blob::new(format!(
                        "{{\"service\":\"api\",\"level\":\"info\",\"msg\":\"{m}\"}}\n"
                    )))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = c
            .kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .expect("put records");
        assert_eq!(out.failed_record_count(), Some(0));
        for r in out.records() {
            if let (Some(shard), Some(seq)) = (r.shard_id(), r.sequence_number()) {
                last.insert(shard.to_string(), seq.to_string());
            }
        }
    }
    last
}

fn messages(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i:04}")).collect()
}

fn config(stream: &str, table: &str, worker: &str) -> KinesisConfig {
    KinesisConfig {
        worker_id: worker.to_string(),
        lease_duration_secs: 3,
        renew_every_secs: 1,
        poll_interval_ms: 100,
        ..KinesisConfig::new(stream, table)
    }
}

/// A reader of `stream` as `worker`, with its leases in `table`.
fn reader(c: &Clients, stream: &str, table: &str, worker: &str) -> Arc<KinesisStream> {
    KinesisStream::new(
        c.kinesis.clone(),
        c.dynamodb.clone(),
        config(stream, table, worker),
    )
    .unwrap()
}

/// Kinesis source -> decode (one worker, to keep order) -> sink.
fn pipeline(stream: &Arc<KinesisStream>, sink: &CaptureSink<LogBatch>) -> Pipeline {
    let s = stream.clone();
    decode_pipeline(move || s.source(), 1, sink)
}

fn distinct(sinks: &[&CaptureSink<LogBatch>]) -> BTreeSet<String> {
    sinks.iter().flat_map(|s| column(s, "message")).collect()
}

async fn checkpoints(stream: &KinesisStream) -> BTreeMap<String, Option<String>> {
    stream
        .leases()
        .await
        .expect("leases")
        .into_iter()
        .map(|l| (l.shard_id, l.checkpoint))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_while_reading_arrive_and_checkpoint_after_delivery() {
    let c = clients().await;
    let name = unique("kin-read");
    let table = unique("kin-leases");
    create_stream(&c, &name, 2).await;
    create_lease_table(&c, &table).await;
    put(&c, &name, &messages("before", 0..20)).await;

    let stream = reader(&c, &name, &table, "w1");
    let sink = CaptureSink::gated();
    let pipeline = pipeline(&stream, &sink);
    wait_until(Duration::from_secs(15), "both shards leased", async || {
        stream.owned_shards().len() == 2
    })
    .await;
    let last = put(&c, &name, &messages("during", 0..20)).await;
    // Records of both shards are read and wait at the closed sink: nothing
    // is checkpointed while they await their verdicts.
    wait_until(
        Duration::from_secs(15),
        "a batch of each shard read and awaiting its verdict",
        async || {
            pipeline
                .source_lag("source")
                .is_some_and(|lag| lag.batches >= 2 && lag.delivered == 0)
        },
    )
    .await;
    assert!(
        checkpoints(&stream).await.values().all(Option::is_none),
        "no checkpoint before delivery"
    );
    sink.open(10_000);
    wait_until(
        Duration::from_secs(20),
        "all 40 records delivered",
        async || distinct(&[&sink]).len() == 40,
    )
    .await;
    assert_eq!(column(&sink, "message").len(), 40, "each record once");
    // The ids are kinesis:<stream>:<shard>:<sequence>:<offset>.
    let prefix = format!("kinesis:{name}:shardId-");
    assert!(
        column(&sink, "event_id")
            .iter()
            .all(|id| id.starts_with(&prefix))
    );
    // The source column names the stream; the position column the rest.
    let origin = format!("kinesis:{name}");
    assert!(column(&sink, "source").iter().all(|s| *s == origin));
    let positions = column(&sink, "position");
    assert_eq!(positions.len(), 40);
    assert!(positions.iter().all(|p| p.starts_with("shardId-")));
    // Checkpoints reach the last record of each shard.
    wait_until(
        Duration::from_secs(10),
        "checkpoints at the last records",
        async || {
            let cps = checkpoints(&stream).await;
            last.iter()
                .all(|(shard, seq)| cps.get(shard).cloned().flatten().as_ref() == Some(seq))
        },
    )
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(stream.settled(Duration::from_secs(10)).await);
    let leases = stream.leases().await.unwrap();
    assert!(
        leases.iter().all(|l| l.owner.is_none()),
        "leases released at shutdown: {leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_the_shards_and_take_over_a_crashed_one() {
    let c = clients().await;
    let name = unique("kin-split");
    let table = unique("kin-leases");
    create_stream(&c, &name, 2).await;
    create_lease_table(&c, &table).await;

    let w1 = reader(&c, &name, &table, "w1");
    let w2 = reader(&c, &name, &table, "w2");
    let (sink1, sink2) = (CaptureSink::new(), CaptureSink::new());
    let p1 = pipeline(&w1, &sink1);
    let p2 = pipeline(&w2, &sink2);
    wait_until(Duration::from_secs(20), "one shard each", async || {
        w1.owned_shards().len() == 1 && w2.owned_shards().len() == 1
    })
    .await;
    assert_ne!(w1.owned_shards(), w2.owned_shards());

    let mut sent = messages("a", 0..40);
    put(&c, &name, &sent).await;
    wait_until(
        Duration::from_secs(20),
        "both workers deliver",
        async || !sink1.delivered().is_empty() && !sink2.delivered().is_empty(),
    )
    .await;

    // w2 crashes: no checkpoint, no release.
    let crashed = w2.owned_shards();
    w2.abort();
    let more = messages("b", 0..40);
    put(&c, &name, &more).await;
    sent.extend(more);
    p2.shutdown(Duration::from_secs(5)).await.unwrap();

    wait_until(
        Duration::from_secs(20),
        "w1 takes over after expiry",
        async || w1.owned_shards().len() == 2,
    )
    .await;
    assert!(w1.owned_shards().contains(&crashed[0]));
    let tail = messages("c", 0..20);
    put(&c, &name, &tail).await;
    sent.extend(tail);
    wait_until(
        Duration::from_secs(30),
        "every record delivered",
        async || {
            let got = distinct(&[&sink1, &sink2]);
            sent.iter().all(|m| got.contains(m))
        },
    )
    .await;
    p1.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(w1.settled(Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshard_reads_parents_before_children() {
    let c = clients().await;
    let name = unique("kin-reshard");
    let table = unique("kin-leases");
    create_stream(&c, &name, 1).await;
    create_lease_table(&c, &table).await;
    let before = messages("parent", 0..20);
    put(&c, &name, &before).await;

    let stream = reader(&c, &name, &table, "w1");
    let sink = CaptureSink::new();
    let pipeline = pipeline(&stream, &sink);
    wait_until(Duration::from_secs(15), "parent records", async || {
        distinct(&[&sink]).len() == 20
    })
    .await;

    let shards = c
        .kinesis
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let parent = shards.shards()[0].clone();
    let mid = (u128::MAX / 2).to_string();
    c.kinesis
        .split_shard()
        .stream_name(&name)
        .shard_to_split(parent.shard_id())
        .new_starting_hash_key(mid)
        .send()
        .await
        .expect("split shard");
    wait_until(Duration::from_secs(10), "stream active again", async || {
        c.kinesis
            .describe_stream_summary()
            .stream_name(&name)
            .send()
            .await
            .ok()
            .and_then(|o| o.stream_description_summary)
            .is_some_and(|s| s.stream_status.as_str() == "ACTIVE")
    })
    .await;
    // moto routes puts after a reshard to the closed parent (its shard
    // lookup does not skip closed shards), so these land in the parent and
    // move its ending sequence number; on AWS they go to the children.
    let after = messages("late", 0..40);
    put(&c, &name, &after).await;
    let children: BTreeSet<String> = c
        .kinesis
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .shards()
        .iter()
        .filter(|s| s.parent_shard_id() == Some(parent.shard_id()))
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(children.len(), 2);
    // Until both children are read: a child is never leased while its
    // parent has not finished (SHARD_END is written before, and stays).
    wait_until(
        Duration::from_secs(30),
        "children leased after the parent finished",
        async || {
            let owned: BTreeSet<String> = stream.owned_shards().into_iter().collect();
            let parent_done = checkpoints(&stream)
                .await
                .get(parent.shard_id())
                .cloned()
                .flatten()
                == Some(SHARD_END.to_string());
            assert!(
                parent_done || owned.is_disjoint(&children),
                "a child was leased before its parent finished"
            );
            parent_done && owned == children
        },
    )
    .await;
    assert_eq!(distinct(&[&sink]).len(), 60, "every record arrived");
    let leases = stream.leases().await.unwrap();
    let leased_children: Vec<_> = leases
        .iter()
        .filter(|l| l.parents.iter().any(|p| p == parent.shard_id()))
        .collect();
    assert_eq!(leased_children.len(), 2, "{leases:?}");
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(stream.settled(Duration::from_secs(10)).await);
}

/// One worker reads `stream` until `events` events are delivered, then shuts
/// down with every batch settled.
async fn read_events(
    c: &Clients,
    stream: &str,
    table: &str,
    events: usize,
) -> CaptureSink<LogBatch> {
    let stream = reader(c, stream, table, "w1");
    let sink = CaptureSink::new();
    let pipeline = pipeline(&stream, &sink);
    wait_until(Duration::from_secs(20), "the events", async || {
        column(&sink, "message").len() >= events
    })
    .await;
    pipeline.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(stream.settled(Duration::from_secs(10)).await);
    sink
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudwatch_subscription_payloads_are_decoded() {
    let c = clients().await;
    let logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&c.sdk).build(),
    );
    let name = unique("kin-cw");
    let table = unique("kin-leases");
    create_stream(&c, &name, 1).await;
    create_lease_table(&c, &table).await;
    let arn = c
        .kinesis
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn;
    let group = format!("/aws/lambda/{}", unique("checkout"));
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("log group");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("2026/01/01/[1]abc")
        .send()
        .await
        .expect("log stream");
    logs.put_subscription_filter()
        .log_group_name(&group)
        .filter_name("to-kinesis")
        .filter_pattern("")
        .destination_arn(arn)
        .role_arn("arn:aws:iam::123456789012:role/cwl-to-kinesis")
        .send()
        .await
        .expect("subscription filter");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let events = [
        "START RequestId: 1",
        "ERROR payment declined",
        "END RequestId: 1",
    ];
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("2026/01/01/[1]abc")
        .set_log_events(Some(
            events
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(now + i as i64)
                        .message(*m)
                        .build()
                        .unwrap()
                })
                .collect(),
        ))
        .send()
        .await
        .expect("put log events");

    let sink = read_events(&c, &name, &table, events.len()).await;

    let got = column(&sink, "message");
    for e in events {
        assert!(got.iter().any(|m| m == e), "{e} in {got:?}");
    }
    assert!(column(&sink, "log_group").iter().all(|g| *g == group));
    let severities = column(&sink, "severity");
    assert!(severities.iter().any(|s| s == "ERROR"), "{severities:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_are_unpacked() {
    let c = clients().await;
    let name = unique("kin-kpl");
    let table = unique("kin-leases");
    create_stream(&c, &name, 1).await;
    create_lease_table(&c, &table).await;
    // One aggregated record of 50 user records (as the KPL puts them), and
    // one plain record beside it.
    let user: Vec<String> = messages("kpl", 0..50)
        .iter()
        .map(|m| format!("{{\"service\":\"api\",\"level\":\"error\",\"msg\":\"{m}\"}}\n"))
        .collect();
    let user: Vec<&[u8]> = user.iter().map(|u| u.as_bytes()).collect();
    let packed = spate_operators::sources::kinesis::kpl::aggregate("pk", &user);
    for data in [
        packed,
        b"{\"service\":\"api\",\"msg\":\"plain\"}\n".to_vec(),
    ] {
        c.kinesis
            .put_record()
            .stream_name(&name)
            .partition_key("pk")
            .data(Blob::new(data))
            .send()
            .await
            .expect("put record");
    }

    let sink = read_events(&c, &name, &table, 51).await;

    let mut expected: BTreeSet<String> = messages("kpl", 0..50).into_iter().collect();
    expected.insert("plain".to_string());
    let got = column(&sink, "message");
    assert_eq!(got.len(), 51, "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    let ids: BTreeSet<String> = column(&sink, "event_id").into_iter().collect();
    assert_eq!(ids.len(), 51, "event ids are distinct per user record");
    assert_eq!(
        column(&sink, "severity")
            .iter()
            .filter(|s| *s == "ERROR")
            .count(),
        50
    );
}

/// A one-shard stream of the emulator as the acknowledgement compliance
/// check's upstream: fed by putting records, committed when the lease's
/// checkpoint is the last record's sequence number.
struct Stream {
    clients: Clients,
    name: String,
    reader: Arc<KinesisStream>,
    last: BTreeMap<String, String>,
}

impl AckedUpstream for Stream {
    type Source = KinesisSource;

    fn source(&self) -> impl FnMut() -> KinesisSource + Send + 'static {
        let reader = self.reader.clone();
        move || reader.source()
    }

    async fn feed(&mut self, line: &str) {
        let out = self
            .clients
            .kinesis
            .put_record()
            .stream_name(&self.name)
            .partition_key("acks")
            .data(Blob::new(format!("{line}\n")))
            .send()
            .await
            .expect("put record");
        self.last.insert(
            out.shard_id().to_string(),
            out.sequence_number().to_string(),
        );
    }

    async fn committed(&mut self) -> bool {
        let cps = checkpoints(&self.reader).await;
        self.last
            .iter()
            .all(|(shard, seq)| cps.get(shard).cloned().flatten().as_ref() == Some(seq))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_move_the_checkpoint_and_failed_batches_are_sent_again() {
    let c = clients().await;
    let name = unique("kin-acks");
    let table = unique("kin-acks-leases");
    create_stream(&c, &name, 1).await;
    create_lease_table(&c, &table).await;
    let reader = reader(&c, &name, &table, "w1");
    let mut upstream = Stream {
        clients: c,
        name,
        reader: reader.clone(),
        last: BTreeMap::new(),
    };
    check_acknowledgements(&mut upstream, "kinesis", Duration::from_secs(30)).await;
    assert!(reader.settled(Duration::from_secs(10)).await);
}
