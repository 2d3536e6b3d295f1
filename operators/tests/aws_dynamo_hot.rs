//! The DynamoDB hot store against the local emulator: hot rows written by the
//! writer actor and queried newest first, windows merged across processes,
//! an alert raised once by two processes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ReturnConsumedCapacity, ScalarAttributeType, WriteRequest,
};
use spate_engine::testkit::ScriptedSource;
use spate_engine::{ActorOptions, GraphBuilder};
use spate_operators::alerts::record::{AlertRecord, AlertState, AlertStore, WindowRecord};
use spate_operators::alerts::window_store::WindowStore;
use spate_operators::classify::{Classifier, ClassifierConfig};
use spate_operators::decode::DecoderConfig;
use spate_operators::decode::{DecodeContext, LineDecoder};
use spate_operators::enrich::EnrichConfig;
use spate_operators::event::EventBatch;
use spate_operators::event::Severity;
use spate_operators::log_batch::LogBatch;
use spate_operators::sinks::dynamo_hot::block::{MAX_BLOCK_BYTES, StoredEvent, pack, unpack};
use spate_operators::sinks::dynamo_hot::block_v1;
use spate_operators::sinks::dynamo_hot::items::{
    Item, event_sk, item_bytes, item_events, write_units,
};
use spate_operators::sinks::dynamo_hot::{
    DynamoBatchWriter, DynamoHotConfig, DynamoHotStore, DynamoHotWriter,
};
use spate_operators::sinks::hot::{HotEvent, HotRows, RecentQuery};
use spate_operators::sources::{ChunkFormat, RawChunk};
use spate_operators::transforms::decode::{DecodeSettings, DecodeStage, DecodeStageConfig};
use spate_test_support::emulator::aws;
use spate_test_support::unique;
use spate_test_support::wait::wait_until;

async fn create_hot_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create hot table");
}

/// 2025-11-23T10:00:00.000Z
const T0: i64 = 1_763_892_000_000;

fn chunk(name: &str, lines: &[String]) -> RawChunk {
    let bytes: String = lines.iter().map(|l| format!("{l}\n")).collect();
    RawChunk {
        bytes: Arc::new(bytes.into_bytes()),
        source: Arc::from(name),
        origin: Arc::from(name),
        first_position: 0,
        ingest_ts_ms: T0,
        format: ChunkFormat::Lines,
        lines: lines.len(),
    }
}

/// A JSON line at `t0 + ms`.
fn line(t0: i64, service: &str, level: &str, ms: i64, msg: &str) -> String {
    format!(
        "{{\"ts\":{},\"service\":\"{service}\",\"level\":\"{level}\",\"msg\":\"{msg}\"}}",
        t0 + ms
    )
}

/// Runs `chunks` through decode into the DynamoDB hot writer until every
/// batch is delivered.
async fn write(dynamodb: &aws_sdk_dynamodb::Client, table: &str, chunks: Vec<RawChunk>) {
    let config = DynamoHotConfig {
        commit_interval_ms: 50,
        ..DynamoHotConfig::new(table)
    };
    write_with(dynamodb, config, chunks).await;
}

/// [`write`] with the writer's `config`.
async fn write_with(
    dynamodb: &aws_sdk_dynamodb::Client,
    config: DynamoHotConfig,
    chunks: Vec<RawChunk>,
) {
    let settings = DecodeSettings::new(
        &DecoderConfig::default(),
        &ClassifierConfig::default(),
        &EnrichConfig::default(),
        &DecodeStageConfig::default(),
    )
    .unwrap();
    let n = chunks.len();
    let source = ScriptedSource::new(chunks).until_stopped();
    let log = source.log();
    let mut graph = GraphBuilder::new();
    graph.source("src", move || source.clone());
    graph.actor(
        "decode",
        move || DecodeStage::new(&settings),
        ActorOptions::default(),
    );
    let client = dynamodb.clone();
    let table = config.table.clone();
    graph.actor(
        "hot",
        move || DynamoHotWriter::new(DynamoBatchWriter::new(client.clone(), &table), &config),
        ActorOptions::default(),
    );
    graph.connect("src", "decode").connect("decode", "hot");
    let pipeline = graph.build().unwrap().spawn();
    wait_until(
        Duration::from_secs(60),
        "every batch delivered",
        async || log.delivered() == n,
    )
    .await;
    assert_eq!(log.failed(), 0);
    pipeline.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_rows_land_and_are_queried_newest_first() {
    let (aws, sdk) = aws().await;
    let dynamodb = aws.dynamodb_client(&sdk);
    let table = unique("hot");
    create_hot_table(&dynamodb, &table).await;

    // Recent events (older ones would be past their TTL): a minute ago.
    let t0 = crate_now() / 1000 * 1000 - 60_000;
    // 60 hot api rows (every 10th critical), 5 hot web rows, 20 cold rows.
    let api: Vec<String> = (0..60)
        .map(|i| {
            let level = if i % 10 == 0 { "critical" } else { "error" };
            line(t0, "api", level, i * 100, &format!("api-{i}"))
        })
        .collect();
    let web: Vec<String> = (0..5)
        .map(|i| line(t0, "web", "warning", 50 + i * 100, &format!("web-{i}")))
        .collect();
    let cold: Vec<String> = (0..20)
        .map(|i| line(t0, "api", "info", i, &format!("cold-{i}")))
        .collect();
    let chunks = vec![chunk("a", &api), chunk("b", &web), chunk("c", &cold)];
    write(&dynamodb, &table, chunks.clone()).await;
    // Redelivery overwrites.
    write(&dynamodb, &table, chunks).await;

    let store = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();
    let q = |service: Option<&str>, limit: usize| RecentQuery {
        service: service.map(str::to_string),
        limit,
        ..RecentQuery::since(t0 - 1000)
    };
    let newest = store.recent(&q(Some("api"), 10)).await.unwrap();
    assert_eq!(newest.len(), 10);
    assert_eq!(newest[0].event.message, "api-59");
    assert_eq!(newest[0].event.ts_ms, t0 + 5_900);
    assert!(
        newest
            .windows(2)
            .all(|w| w[0].event.ts_ms >= w[1].event.ts_ms)
    );
    assert_eq!(newest[0].service, "api");
    assert_eq!(newest[0].event.severity, Severity::Error);

    let all_api = store.recent(&q(Some("api"), 1000)).await.unwrap();
    assert_eq!(all_api.len(), 60, "no duplicates, no cold rows");

    let critical = store
        .recent(&RecentQuery {
            min_severity: Some(Severity::Critical),
            ..q(Some("api"), 100)
        })
        .await
        .unwrap();
    assert_eq!(critical.len(), 6);
    assert!(
        critical
            .iter()
            .all(|e| e.event.severity == Severity::Critical)
    );

    let everywhere = store.recent(&q(None, 1000)).await.unwrap();
    assert_eq!(everywhere.len(), 65);
    assert!(
        everywhere
            .windows(2)
            .all(|w| w[0].event.ts_ms >= w[1].event.ts_ms)
    );
    let first_two: Vec<&str> = everywhere[..2]
        .iter()
        .map(|e| e.event.message.as_str())
        .collect();
    assert_eq!(first_two, ["api-59", "api-58"]);

    let window = store
        .recent(&RecentQuery {
            until_ms: Some(t0 + 1_000),
            ..q(None, 1000)
        })
        .await
        .unwrap();
    // api-0..9 (0.0 s to 0.9 s) and every web row (0.05 s to 0.45 s).
    assert_eq!(window.len(), 15);
    assert_eq!(window[0].event.message, "api-9");
}

/// Every item of `table` (one paginated Scan).
async fn scan_all(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    out
}

/// W1 events, hot ones (WARNING and above, about 20 %) packed: the write
/// units of the stored items come to about 0.08 of a unit per hot event
/// (two units before blocks: an item by service and one by day), every hot
/// event reads back once per service, a redelivery adds none, and the same
/// blocks stored in layout 1 (as written before layout 2) read back alike
/// and as fast.
///
/// 11,400 W1 events in one commit are 30 s of a billion W1 events a month
/// (380 a second; W1's own clock runs at about 330 a second, so they span
/// 34 s of event time: one block per service). DynamoDB bills a put by the
/// item's size (one write unit per started KB); moto's `ConsumedCapacity` is
/// a constant 1.0 a call whatever the items (printed below), so the units are
/// computed from the stored items with DynamoDB's rule. Two figures: every
/// item of this commit, and the blocks alone (the steady state: a writer
/// lists a service in the day's registry once, and again about hourly).
///
/// Issue 20's target of 0.05 is not met: a W1 hot event carries about 26.5 B
/// of random ids as bytes (`trace_id` always, `span_id` and `request_id`
/// often) and numbers in its message and fields, and one service's 30 s
/// (16 to 140 events here) is too little text for zstd to learn the
/// message templates from (see docs/cost.md for the figures of each step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_w1_hot_events_cost_under_a_tenth_of_a_write_unit() {
    let (aws, sdk) = aws().await;
    let dynamodb = aws.dynamodb_client(&sdk);
    let table = unique("packed");
    create_hot_table(&dynamodb, &table).await;

    const EVENTS: u64 = 11_400;
    let mut ndjson = Vec::new();
    let stats =
        spate_loadgen::generate(spate_loadgen::Workload::AppJson, EVENTS, 42, &mut ndjson).unwrap();
    let lines: Vec<String> = String::from_utf8(ndjson)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // SQS messages of 100 events, as loadgen sends them; positions are byte
    // offsets in the whole input, so every event id differs.
    let mut offset = 0;
    let chunks: Vec<RawChunk> = lines
        .chunks(100)
        .map(|part| {
            let c = RawChunk {
                first_position: offset,
                ingest_ts_ms: crate_now(),
                ..chunk("sqs:w1", part)
            };
            offset += c.bytes.len() as u64;
            c
        })
        .collect();
    // One commit: the interval is longer than decoding the whole input.
    let config = DynamoHotConfig {
        commit_interval_ms: 5_000,
        max_buffered_rows: 50_000,
        ..DynamoHotConfig::new(&table)
    };
    write_with(&dynamodb, config.clone(), chunks.clone()).await;

    let items = scan_all(&dynamodb, &table).await;
    let blocks: Vec<&Item> = items.iter().filter(|i| i.contains_key("blk")).collect();
    let hot: u64 = blocks
        .iter()
        .map(|b| b["n"].as_n().unwrap().parse::<u64>().unwrap())
        .sum();
    let expected_hot: u64 = [
        spate_loadgen::Severity::Warning,
        spate_loadgen::Severity::Error,
        spate_loadgen::Severity::Critical,
    ]
    .iter()
    .map(|&s| stats.severity(s))
    .sum();
    let units: u64 = items.iter().map(write_units).sum();
    let block_bytes: usize = blocks
        .iter()
        .map(|b| b["blk"].as_b().unwrap().as_ref().len())
        .sum();
    let per_event = units as f64 / hot as f64;
    let block_units: u64 = blocks.iter().map(|b| write_units(b)).sum();
    let per_event_blocks = block_units as f64 / hot as f64;
    let stored: usize = items.iter().map(item_bytes).sum();
    println!(
        "measured: {EVENTS} W1 events, {hot} hot ({expected_hot} intended by the generator), \
         {} items ({} blocks), {units} write units: {per_event:.4} WCU per hot event \
         ({per_event_blocks:.4} for the blocks alone), \
         {:.1} compressed bytes and {:.1} item bytes per hot event",
        items.len(),
        blocks.len(),
        block_bytes as f64 / hot as f64,
        stored as f64 / hot as f64
    );
    assert_eq!(hot, expected_hot);
    // Measured 0.0908 and 0.0765 (2026-12-06; the same blocks in layout 1
    // are printed below); the bounds keep a margin for the generator's
    // randomness.
    assert!(per_event <= 0.10, "{per_event} write units per hot event");
    assert!(
        per_event_blocks <= 0.085,
        "{per_event_blocks} write units per hot event in blocks"
    );

    // Every hot event reads back once, newest first, per service.
    let store = DynamoHotStore::new(dynamodb.clone(), config.clone()).unwrap();
    let services: Vec<String> = items
        .iter()
        .filter_map(|i| {
            let pk = i["pk"].as_s().ok()?;
            pk.starts_with("svcs#")
                .then(|| i["sk"].as_s().unwrap().clone())
        })
        .collect();
    assert!(services.len() > 10, "{services:?}");
    let read_all = async || {
        let mut counts = BTreeMap::new();
        for service in &services {
            let events = store
                .recent(&RecentQuery {
                    service: Some(service.clone()),
                    limit: 100_000,
                    ..RecentQuery::since(0)
                })
                .await
                .unwrap();
            assert!(
                events
                    .windows(2)
                    .all(|w| w[0].event.ts_ms >= w[1].event.ts_ms)
            );
            let mut ids: Vec<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), events.len(), "{service}: an event twice");
            counts.insert(service.clone(), events.len() as u64);
        }
        counts
    };
    let counts = read_all().await;
    assert_eq!(counts.values().sum::<u64>(), hot);
    // The newest few of the busiest service come from its newest blocks.
    let busiest = counts.iter().max_by_key(|(_, n)| **n).unwrap().0;
    let started = std::time::Instant::now();
    let newest = store
        .recent(&RecentQuery {
            service: Some(busiest.clone()),
            limit: 100,
            ..RecentQuery::since(0)
        })
        .await
        .unwrap();
    let one_service = started.elapsed();
    assert_eq!(newest.len(), 100);
    // Across services: the registry of every day back to the W1 events (a
    // TTL long enough to reach them), then each service's newest blocks.
    let everywhere = DynamoHotStore::new(
        dynamodb.clone(),
        DynamoHotConfig {
            ttl_hours: 24 * 60,
            ..config.clone()
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let across = everywhere
        .recent(&RecentQuery {
            limit: 100,
            ..RecentQuery::since(0)
        })
        .await
        .unwrap();
    let all_services = started.elapsed();
    assert_eq!(across.len(), 100);
    assert!(
        across
            .windows(2)
            .all(|w| w[0].event.ts_ms >= w[1].event.ts_ms)
    );
    let newest_ts = blocks
        .iter()
        .flat_map(|b| {
            let service = b["pk"].as_s().unwrap().strip_prefix("svc#").unwrap();
            item_events(b, service).unwrap()
        })
        .map(|e| e.event.ts_ms)
        .max()
        .unwrap();
    assert_eq!(across[0].event.ts_ms, newest_ts);
    println!(
        "measured: recent of one service (limit 100) {:.1} ms, across {} services (limit 100) {:.1} ms",
        one_service.as_secs_f64() * 1e3,
        services.len(),
        all_services.as_secs_f64() * 1e3
    );

    // A redelivery of everything: new blocks, no event twice.
    write_with(&dynamodb, config, chunks).await;
    assert_eq!(read_all().await, counts);

    // The blocks of the first write in layout 1 (as written before layout 2)
    // in a table of their own, with an event item as written before blocks:
    // every event reads back alike, and the reads take about as long as of
    // the same blocks in layout 2 (a copy without the redelivered blocks).
    let new_table = unique("layout2");
    create_hot_table(&dynamodb, &new_table).await;
    put_all(&dynamodb, &new_table, items.clone()).await;
    let old_table = unique("layout1");
    create_hot_table(&dynamodb, &old_table).await;
    let mut old_items: Vec<Item> = items
        .iter()
        .map(|item| {
            let mut copy = item.clone();
            if let Some(blk) = item.get("blk") {
                let events = unpack(blk.as_b().unwrap().as_ref(), None).unwrap();
                let (bytes, raw_len) = block_v1::encode(&events).unwrap();
                copy.insert("blk".into(), AttributeValue::B(Blob::new(bytes)));
                copy.insert("raw".into(), AttributeValue::N(raw_len.to_string()));
            }
            copy
        })
        .collect();
    let old_units: u64 = old_items.iter().map(write_units).sum();
    let old_block_units: u64 = old_items
        .iter()
        .filter(|i| i.contains_key("blk"))
        .map(write_units)
        .sum();
    println!(
        "measured: the same blocks in layout 1: {old_units} write units, {:.4} WCU per hot event \
         ({:.4} for the blocks alone)",
        old_units as f64 / hot as f64,
        old_block_units as f64 / hot as f64
    );
    assert!(old_block_units > block_units);
    let lone = pre_block_item(busiest, newest_ts + 1, "sqs:w1:lone");
    old_items.push(lone);
    put_all(&dynamodb, &old_table, old_items).await;
    let reader = |table: &str, ttl_hours| {
        DynamoHotStore::new(
            dynamodb.clone(),
            DynamoHotConfig {
                ttl_hours,
                ..DynamoHotConfig::new(table)
            },
        )
        .unwrap()
    };
    let (old_one, old_everywhere) = (reader(&old_table, 72), reader(&old_table, 24 * 60));
    let (new_one, new_everywhere) = (reader(&new_table, 72), reader(&new_table, 24 * 60));
    let of_busiest = RecentQuery {
        service: Some(busiest.clone()),
        limit: 100,
        ..RecentQuery::since(0)
    };
    let old_newest = old_one.recent(&of_busiest).await.unwrap();
    assert_eq!(old_newest[0].event.event_id, "sqs:w1:lone");
    assert_eq!(old_newest[0].event.message, "written before blocks");
    assert_eq!(old_newest[1..], newest[..99]);
    let across_all = RecentQuery {
        limit: 100,
        ..RecentQuery::since(0)
    };
    let old_across = old_everywhere.recent(&across_all).await.unwrap();
    assert_eq!(old_across[0].event.event_id, "sqs:w1:lone");
    assert_eq!(old_across[1..], across[..99]);
    for service in &services {
        let q = RecentQuery {
            service: Some(service.clone()),
            limit: 100_000,
            ..RecentQuery::since(0)
        };
        let ids = |events: Vec<HotEvent>| -> Vec<String> {
            events.into_iter().map(|e| e.event.event_id).collect()
        };
        let mut old_ids = ids(old_one.recent(&q).await.unwrap());
        old_ids.retain(|id| id != "sqs:w1:lone");
        assert_eq!(old_ids, ids(store.recent(&q).await.unwrap()), "{service}");
    }
    // Read latency, layout 1 against layout 2, the same events: medians of
    // runs taken in turn.
    const RUNS: usize = 9;
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..RUNS {
        let runs = [
            (&old_one, &of_busiest),
            (&new_one, &of_busiest),
            (&old_everywhere, &across_all),
            (&new_everywhere, &across_all),
        ];
        for (i, (s, q)) in runs.into_iter().enumerate() {
            let started = std::time::Instant::now();
            assert_eq!(s.recent(q).await.unwrap().len(), 100);
            times[i].push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let median = |t: &mut Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let [a, b, c, d] = &mut times;
    println!(
        "measured: recent (limit 100), medians of {RUNS} runs, layout 1 then layout 2: \
         one service {:.1} ms, {:.1} ms; across {} services {:.1} ms, {:.1} ms",
        median(a),
        median(b),
        services.len(),
        median(c),
        median(d)
    );

    // What moto says a BatchWriteItem of one block costs.
    let mut block = blocks[0].clone();
    block.insert(
        "sk".into(),
        AttributeValue::S("0000000000000#probe#1".into()),
    );
    let size_units = write_units(&block);
    let answer = dynamodb
        .batch_write_item()
        .request_items(
            &table,
            vec![
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(block)).build().unwrap())
                    .build(),
            ],
        )
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    println!(
        "moto ConsumedCapacity of one block of {size_units} write units by size: {:?}",
        answer
            .consumed_capacity()
            .iter()
            .map(|c| c.capacity_units())
            .collect::<Vec<_>>()
    );
}

/// An event item of `service` as written before blocks.
fn pre_block_item(service: &str, ts_ms: i64, event_id: &str) -> Item {
    let s = |v: &str| AttributeValue::S(v.to_string());
    Item::from([
        ("pk".into(), s(&format!("svc#{service}"))),
        ("sk".into(), s(&event_sk(ts_ms, event_id))),
        ("event_id".into(), s(event_id)),
        ("ts".into(), AttributeValue::N(ts_ms.to_string())),
        ("service".into(), s(service)),
        ("severity".into(), s("ERROR")),
        ("source".into(), s("sqs:w1")),
        ("message".into(), s("written before blocks")),
        (
            "expires_at".into(),
            AttributeValue::N((crate_now() / 1000 + 3600).to_string()),
        ),
    ])
}

/// Puts `items` into `table`, 25 a call, until none is left unprocessed.
async fn put_all(dynamodb: &aws_sdk_dynamodb::Client, table: &str, items: Vec<Item>) {
    let mut requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    while !requests.is_empty() {
        let rest = requests.split_off(requests.len().min(25));
        let answer = dynamodb
            .batch_write_item()
            .request_items(table, std::mem::replace(&mut requests, rest))
            .send()
            .await
            .unwrap();
        if let Some(mut left) = answer.unprocessed_items {
            requests.extend(left.remove(table).unwrap_or_default());
        }
    }
}

/// The hot events of `events` W1 events by service, decoded from SQS
/// messages of 100 events, each message's events with ids
/// `sqs:w1:<message id>:<offset>` (as the SQS source names them) when
/// `message_ids`, else `sqs:w1:<byte offset in the whole input>`.
/// The hot events of `events` W1 events decoded in messages of 100, with
/// position ids (`sqs:w1:<position>`) or, given `Some(n)`, in messages of
/// `n` with the SQS source's ids (`sqs:w1:<message id>:<offset>`).
fn w1_hot_events(
    events: u64,
    seed: u64,
    message_ids: Option<usize>,
) -> BTreeMap<String, Vec<StoredEvent>> {
    let mut ndjson = Vec::new();
    spate_loadgen::generate(spate_loadgen::Workload::AppJson, events, seed, &mut ndjson).unwrap();
    let text = String::from_utf8(ndjson).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut decoder = LineDecoder::new(DecoderConfig::default(), Classifier::default());
    let mut out: BTreeMap<String, Vec<StoredEvent>> = BTreeMap::new();
    let mut offset = 0;
    for (i, part) in lines.chunks(message_ids.unwrap_or(100)).enumerate() {
        let bytes: String = part.iter().map(|l| format!("{l}\n")).collect();
        // A UUID-shaped message id from the message number.
        let h = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (source, first) = if message_ids.is_some() {
            let id = format!(
                "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xfff,
                (h >> 20) & 0xfff,
                h.rotate_left(17) & 0xffff_ffff_ffff
            );
            (format!("sqs:w1:{id}"), 0)
        } else {
            ("sqs:w1".to_string(), offset)
        };
        offset += bytes.len() as u64;
        let ctx = DecodeContext {
            origin: "sqs:w1",
            ..DecodeContext::new(&source, crate_now())
        };
        let mut events = EventBatch::default();
        let mut dead = Vec::new();
        let stats = decoder.decode_chunk(bytes.as_bytes(), first, &ctx, &mut events, &mut dead);
        let batch = LogBatch::from_events(events, dead, &stats).unwrap();
        for rows in HotRows::select_all(&batch, Severity::Warning).unwrap() {
            for (event, _) in StoredEvent::of_rows(&rows).unwrap() {
                out.entry(rows.service.to_string()).or_default().push(event);
            }
        }
    }
    out
}

/// Packed W1 hot events of 30 s (one block per service) with the ids the
/// SQS source gives them: a message id in every event id costs about 13 B
/// an event more than the `sqs:w1:<position>` ids of the emulator test.
/// The units are the blocks' (a key and attributes of about 60 B each).
#[test]
fn w1_blocks_cost_more_with_sqs_message_ids() {
    let mut per_event = Vec::new();
    for message_ids in [None, Some(100)] {
        per_event.push(pack_w1(11_400, 42, message_ids));
    }
    assert!(per_event[0].0 < 75.0, "{per_event:?}");
    assert!(per_event[1].0 > per_event[0].0 + 8.0, "{per_event:?}");
    assert!(per_event[1].1 < 0.10, "{per_event:?}");
}

/// Packs the hot events of `events` W1 events as one commit (a block per
/// service, split at 128 KB), checks they read back, and prints and returns
/// the compressed bytes and block write units per hot event.
fn pack_w1(events: u64, seed: u64, message_ids: Option<usize>) -> (f64, f64) {
    let by_service = w1_hot_events(events, seed, message_ids);
    let hot: usize = by_service.values().map(Vec::len).sum();
    let (mut bytes, mut units, mut blocks) = (0, 0, 0);
    let mut packing = Duration::ZERO;
    for (service, events) in by_service {
        let started = std::time::Instant::now();
        let packed = pack(
            events.iter().map(StoredEvent::view).collect(),
            MAX_BLOCK_BYTES,
        )
        .unwrap();
        packing += started.elapsed();
        let back: usize = packed
            .iter()
            .map(|p| unpack(&p.bytes, None).unwrap().len())
            .sum();
        assert_eq!(back, events.len(), "{service}");
        for p in packed {
            assert!(p.bytes.len() <= MAX_BLOCK_BYTES);
            bytes += p.bytes.len();
            // The key and attributes of a block item: about 60 B.
            units += (p.bytes.len() + 60 + service.len()).div_ceil(1024);
            blocks += 1;
        }
    }
    let figures = (bytes as f64 / hot as f64, units as f64 / hot as f64);
    println!(
        "measured: {events} W1 events in one commit, {hot} hot in {blocks} blocks, \
         message ids in event ids: {}: {:.1} compressed bytes, {:.4} WCU per hot event; \
         packing {:.0} µs per hot event (this build)",
        message_ids.map_or("no".to_string(), |n| format!("yes, {n} events a message")),
        figures.0,
        figures.1,
        packing.as_secs_f64() * 1e6 / hot as f64
    );
    figures
}

/// 30 s of a billion W1 events a day (347,222) in one commit: blocks of one
/// service fill up to the 128 KB split, and a hot event costs under 0.05
/// write units with position ids (0.0496 measured), about 0.062 with SQS
/// message ids in its id in messages of 100 events, 0.055 in messages of
/// 500 and 0.053 of 1,000 (a message id is shared by the more hot events of
/// a service: `spate cost` prices them by `--events-per-message`).
#[test]
fn w1_blocks_of_a_billion_a_day_cost_under_a_twentieth_of_a_write_unit() {
    let (bytes, units) = pack_w1(347_222, 7, None);
    assert!(
        units <= 0.05,
        "{units} write units per hot event ({bytes} B)"
    );
    let mut previous = f64::MAX;
    for per_message in [100, 500, 1000] {
        let (bytes, units) = pack_w1(347_222, 7, Some(per_message));
        assert!(
            units <= 0.07 && bytes < previous,
            "{units} write units per hot event ({bytes} B)"
        );
        previous = bytes;
    }
}

fn alert(id_suffix: &str) -> AlertRecord {
    AlertRecord {
        id: format!("error_burst:api:{T0}:firing{id_suffix}"),
        rule: "error_burst".into(),
        service: "api".into(),
        state: AlertState::Firing,
        severity: "ERROR".into(),
        window_start_ms: T0,
        window_end_ms: T0 + 300_000,
        raised_at_ms: crate_now(),
        value: 12.0,
        threshold: 10.0,
        message: "12 errors in 5 min".into(),
    }
}

fn crate_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_raised_once_and_windows_merge() {
    let (aws, sdk) = aws().await;
    let dynamodb = aws.dynamodb_client(&sdk);
    let table = unique("hot");
    create_hot_table(&dynamodb, &table).await;
    let one = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();
    let two = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();

    let a = alert("");
    let mut b = a.clone();
    b.raised_at_ms += 7; // the other process saw it a little later
    let (won_one, won_two) = tokio::join!(one.record_alert(&a), two.record_alert(&b));
    let wins = [won_one.unwrap(), won_two.unwrap()];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    assert!(
        !one.record_alert(&a).await.unwrap(),
        "a second record loses"
    );

    let listed = one.alerts(a.raised_at_ms - 60_000, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0] == a || listed[0] == b);

    // Windows: each process adds its partial counts; through the
    // AlertStore trait, as the router calls it (on the blocking pool).
    let window = WindowRecord {
        window_start_ms: T0,
        window_end_ms: T0 + 300_000,
        service: "api".into(),
        events: 10,
        severity: [4, 3, 2, 1],
        tags: BTreeMap::from([("http_5xx".to_string(), 2)]),
    };
    for store in [one.clone(), two.clone()] {
        let w = window.clone();
        let other = alert("-2");
        tokio::task::spawn_blocking(move || store.record(&[w], &[other]))
            .await
            .unwrap()
            .unwrap();
    }
    let item = dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("win#api".into()))
        .key("sk", AttributeValue::S(format!("{T0:013}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("window item");
    let num = |k: &str| item[k].as_n().unwrap().parse::<u64>().unwrap();
    assert_eq!(num("events"), 20);
    assert_eq!(num("severity_error"), 4);
    assert_eq!(num("tag:http_5xx"), 4);
    let listed = one.alerts(a.raised_at_ms - 60_000, None, 10).await.unwrap();
    assert_eq!(
        listed.len(),
        2,
        "the second alert recorded once: {listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_windows_read_back_merged_and_claims_know_their_owner() {
    let (aws, sdk) = aws().await;
    let dynamodb = aws.dynamodb_client(&sdk);
    let table = unique("shared");
    create_hot_table(&dynamodb, &table).await;
    let one = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();
    let two = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();

    // Two processes add 7 errors each to one window; one adds a next window.
    let partial = |start: i64, service: &str, severity: [u64; 4]| WindowRecord {
        window_start_ms: start,
        window_end_ms: start + 300_000,
        service: service.into(),
        events: severity.iter().sum(),
        severity,
        tags: BTreeMap::from([("http_5xx".to_string(), 1)]),
    };
    let adds = [
        (one.clone(), vec![partial(T0, "api", [1, 0, 7, 0])]),
        (
            two.clone(),
            vec![
                partial(T0, "api", [0, 0, 7, 0]),
                partial(T0 + 300_000, "api", [3, 0, 0, 0]),
            ],
        ),
    ];
    for (store, windows) in adds {
        tokio::task::spawn_blocking(move || WindowStore::add(&store, &windows))
            .await
            .unwrap()
            .unwrap();
    }
    let reader = one.clone();
    let merged = tokio::task::spawn_blocking(move || {
        WindowStore::merged(
            &reader,
            &["api".to_string(), "web".to_string()],
            T0,
            T0 + 600_000,
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert_eq!(merged[0].window_start_ms, T0);
    assert_eq!(merged[0].severity, [1, 0, 14, 0]);
    assert_eq!((merged[0].events, merged[0].tags["http_5xx"]), (15, 2));
    assert_eq!(merged[1].window_start_ms, T0 + 300_000);
    assert_eq!(merged[1].severity, [3, 0, 0, 0]);
    // The range's end is exclusive.
    let only_first = one
        .merged_windows(&["api".into()], T0, T0 + 300_000)
        .await
        .unwrap();
    assert_eq!(only_first.len(), 1);

    // Claims: one winner; asking again, the winner still holds it (a retry
    // after a lost answer), the other still does not.
    let a = alert("-shared");
    let (won_one, won_two) = tokio::join!(one.claim_alert(&a), two.claim_alert(&a));
    let (won_one, won_two) = (won_one.unwrap(), won_two.unwrap());
    assert!(won_one ^ won_two, "{won_one} {won_two}");
    let (winner, loser) = if won_one { (&one, &two) } else { (&two, &one) };
    assert!(winner.claim_alert(&a).await.unwrap());
    assert!(!loser.claim_alert(&a).await.unwrap());
    let listed = one.alerts(a.raised_at_ms - 60_000, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().filter(|l| l.id == a.id).count(),
        1,
        "{listed:?}"
    );
}

/// Anomaly baselines and silences in the DynamoDB hot table, as two
/// processes sharing it see them: of two saves learnt from the same stored
/// version exactly one wins, and a silence set by `spate alerts silence` on
/// one machine is read (and ended) from another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_save_conditionally_and_silences_are_shared() {
    use spate_operators::alerts::anomaly::store::{BaselineKey, BaselineSave};
    use spate_operators::alerts::anomaly::{Baseline, Seasonality};
    use spate_operators::alerts::silence::Silence;

    let (aws, sdk) = aws().await;
    let dynamodb = aws.dynamodb_client(&sdk);
    let table = unique("alertstate");
    create_hot_table(&dynamodb, &table).await;
    let one = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();
    let two = DynamoHotStore::new(dynamodb.clone(), DynamoHotConfig::new(&table)).unwrap();

    let key = BaselineKey::new("errors_anomaly", "payments");
    let mut learnt = Baseline::new("errors:daily", Seasonality::Daily);
    learnt.level = 210.5;
    learnt.season[3] = -12.25;
    learnt.dev[3] = 14.0;
    learnt.seen[3] = 12;
    learnt.first_ms = Some(T0);
    learnt.trained_until_ms = T0 + 300_000;
    learnt.updates = 1;
    let save = |baseline: &Baseline, previous_updates| BaselineSave {
        key: key.clone(),
        baseline: baseline.clone(),
        previous_updates,
    };
    // Both processes learnt the first window: one save wins.
    let (first_one, first_two) = ([save(&learnt, None)], [save(&learnt, None)]);
    let (a, b) = tokio::join!(
        one.save_baselines_now(&first_one),
        two.save_baselines_now(&first_two)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a[0] ^ b[0], "{a:?} {b:?}");
    // The next step, learnt from version 1, saves; a stale copy does not.
    let mut next = learnt.clone();
    next.level = 211.0;
    next.updates = 2;
    assert_eq!(
        two.save_baselines_now(&[save(&next, Some(1))])
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(
        one.save_baselines_now(&[save(&next, Some(1))])
            .await
            .unwrap(),
        [false]
    );
    // Read back (a restart, or the other process): the whole state, and
    // nothing for a service never saved.
    let other = BaselineKey::new("errors_anomaly", "web");
    let loaded = one.baselines(&[key.clone(), other]).await.unwrap();
    assert_eq!(loaded, [(key.clone(), next)]);

    // Silences: set on one, listed on the other, replaced, ended.
    let now = crate_now();
    let silence = |service: &str, until_ms: i64, reason: &str| Silence {
        service: service.into(),
        created_ms: now,
        until_ms,
        reason: reason.into(),
    };
    one.set_silence(&silence("payments", now + 3_600_000, "db migration"))
        .await
        .unwrap();
    one.set_silence(&silence("web", now + 60_000, ""))
        .await
        .unwrap();
    // Ended already: not listed, whether or not TTL removed it yet.
    one.set_silence(&silence("old", now - 1, "")).await.unwrap();
    let listed = two.silences(now).await.unwrap();
    assert_eq!(
        listed,
        [
            silence("payments", now + 3_600_000, "db migration"),
            silence("web", now + 60_000, "")
        ]
    );
    two.set_silence(&silence("payments", now + 7_200_000, "longer"))
        .await
        .unwrap();
    let listed = one.silences(now).await.unwrap();
    assert_eq!(listed[0], silence("payments", now + 7_200_000, "longer"));
    assert!(two.end_silence("web").await.unwrap());
    assert!(!two.end_silence("web").await.unwrap());
    assert!(!two.end_silence("old").await.unwrap());
    assert_eq!(one.silences(now).await.unwrap().len(), 1);
}
