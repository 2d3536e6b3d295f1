//! The cost model's arithmetic on one case computed by hand: 2.4 M W1
//! events a day (73 M a month of 730 h), SQS, the stack's defaults.

use super::hot::hot_bytes_per_event;
use super::prices::US_EAST_1;
use super::*;
use crate::output::Format;

fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0),
        "{actual} != {expected}"
    );
}

fn item<'a>(bill: &'a Bill, item: &str) -> &'a LineItem {
    bill.items
        .iter()
        .find(|i| i.item == item)
        .unwrap_or_else(|| panic!("no {item} in {bill:?}"))
}

fn hand_case() -> CostInputs {
    CostInputs::new(2_400_000.0)
}

#[test]
fn a_small_case_matches_the_hand_computed_bill() {
    let inputs = hand_case();
    let bill = spate_bill(&inputs, &US_EAST_1);
    // 73 M events × 9.65 CPU-s per million is 0.0003 vCPU on average: the
    // one task of MinTasks.
    assert_eq!(tasks(&inputs), 1.0);
    // 1 task × 1 vCPU × 730 h = 730 vCPU-h × $0.04048 = $29.5504.
    close(item(&bill, "vCPU").quantity, 730.0);
    close(item(&bill, "vCPU").usd_per_month, 29.5504);
    // 2 GB × 730 h = 1,460 GB-h × $0.004445 = $6.4897.
    close(item(&bill, "memory").usd_per_month, 6.4897);
    // 10 GB above the 20 included × 730 h = 7,300 GB-h × $0.000111 = $0.8103.
    close(item(&bill, "ephemeral storage").usd_per_month, 0.8103);
    // 730,000 messages of 100 × 339 B = 33,900 B; a full receive carries
    // 339,000 B = 6 chunks of 64 KiB; 73,000 receives × 6 = 438,000 requests.
    close(item(&bill, "ReceiveMessage").quantity, 0.438);
    close(item(&bill, "ReceiveMessage").usd_per_month, 0.1752);
    // 4 pollers × 2,628,000 s / 20 s = 525,600 polls, less 73,000 busy.
    close(
        item(&bill, "ReceiveMessage (empty long polls)").quantity,
        0.4526,
    );
    // 0.1 delete batch a message: 73,000 → $0.0292.
    close(item(&bill, "DeleteMessageBatch").usd_per_month, 0.0292);
    // 2,628,000 s / 15 s = 175,200 depth reads.
    close(item(&bill, "GetQueueAttributes").quantity, 0.1752);
    // The producer: 730,000 sends of one chunk each = $0.292.
    let send = item(&bill, "SendMessage (producer)");
    assert_eq!(send.scope, Scope::Upstream);
    close(send.usd_per_month, 0.292);
    // 20 % hot = 14.6 M events a month. One task writes every 30 s: 87,600
    // writes × 30 services × 1.5 minutes = 3,942,000 blocks; 5.6 hot events
    // a service a write, below the measured small blocks: 72.4 B each, and
    // 12.5 B of SQS message id in messages of 100 events: 84.9 B, so blocks
    // of 14.6 M × 84.9 B / 3.942 M = 314 B, 1 WRU each (at least one), and
    // 30 registry entries an hour (21,900): 3,963,900 WRU × $0.625 a million.
    let writes = item(&bill, "write request units (hot events)");
    close(writes.quantity, 3.9639);
    close(writes.usd_per_month, 3.9639 * 0.625);
    // 480,000 hot events a day × 84.9 B × 3 days.
    close(
        item(&bill, "storage (hot events)").quantity,
        480_000.0 * 84.9 * 3.0 / GIB,
    );
    // 2.4 M × 73.5 B = 176.4 MB a day; 30 partitions an hour of 245,000 B
    // each: one PutObject and one LIST each, 30 × 730 × 2 = 43,800 a month
    // = $0.219.
    close(
        item(&bill, "PUT and LIST requests (lake files)").usd_per_month,
        0.219,
    );
    // Standard: 30 days of data and 8 KB per Glacier object (720 files a
    // day × 335 days).
    close(
        item(&bill, "Standard storage").quantity,
        (176.4e6 * 30.0 + 720.0 * 335.0 * 8192.0) / GIB,
    );
    close(
        item(&bill, "Glacier Flexible Retrieval storage").quantity,
        (176.4e6 + 720.0 * 32_768.0) * 335.0 / GIB,
    );
    close(
        item(&bill, "lifecycle transitions to Glacier").quantity,
        21.9,
    );
    // 62 EMF metrics × $0.30 = $18.60, and 118 of window counts: $35.40.
    close(
        item(&bill, "custom metrics (EMF default set)").usd_per_month,
        18.6,
    );
    close(
        item(&bill, "custom metrics (EMF window counts)").usd_per_month,
        35.4,
    );
    // Totals: every line, and every line but the producer's.
    let sum: f64 = bill.items.iter().map(|i| i.usd_per_month).sum();
    close(bill.total_usd_per_month, sum);
    close(bill.spate_usd_per_month, sum - 0.292);
    close(
        bill.spate_usd_per_billion_events,
        bill.spate_usd_per_month / 73e6 * 1e9,
    );
}

#[test]
fn hot_bytes_follow_the_events_a_block_holds() {
    let (few, many) = (2235.0 / 32.0, 69_640.0 / 32.0);
    close(hot_bytes_per_event(few, 339.0), 72.4);
    close(hot_bytes_per_event(many, 339.0), 50.5);
    // Halfway on the logarithm: halfway between the bytes.
    close(hot_bytes_per_event((few * many).sqrt(), 339.0), 61.45);
    close(hot_bytes_per_event(1.0, 339.0), 72.4);
    close(hot_bytes_per_event(1e9, 339.0), 50.5);
    close(hot_bytes_per_event(few, 678.0), 144.8);
}

#[test]
fn packed_hot_writes_follow_the_measured_w1_figure() {
    // A billion W1 events a month: 200 M hot, 87,600 writes of 30 services:
    // 76.1 hot events a service a write, 71.85 B each with position ids,
    // and 12.5 B of SQS message id (messages of 100 events): 84.35 B;
    // 3,942,000 blocks (1.5 minutes a write) of 200 M × 84.35 B / 3.942 M =
    // 4,280 B, 4.68 WRU each on average, and 21,900 registry entries:
    // 0.0923 WRU per hot event. The measured run (one write, one block a
    // service, message ids) came to 0.0904 WRU per hot event for its
    // blocks.
    let inputs = CostInputs::new(1e9 / (730.0 / 24.0));
    let bill = spate_bill(&inputs, &US_EAST_1);
    let writes = item(&bill, "write request units (hot events)").quantity * 1e6;
    let per_event = writes / 2e8;
    let bytes = hot_bytes_per_event(2e8 / (87_600.0 * 30.0), 339.0);
    assert!((bytes - 71.85).abs() < 0.01, "{bytes}");
    let bytes = bytes + 12.5;
    close(
        per_event,
        (3_942_000.0 * (2e8 * bytes / 3_942_000.0 / 1024.0 + 0.5) + 21_900.0) / 2e8,
    );
    assert!((per_event - 0.0923).abs() < 0.0001, "{per_event}");
    assert!(
        (per_event - measured::W1_HOT_WRU_PER_EVENT).abs() < 0.015,
        "{per_event}"
    );
    // A billion a day: 6.08 G hot events, 2,315 a service a write: the full
    // blocks' 50.5 B and 12.5 B of message id; 3,942,000 blocks of 97,222 B
    // (under the 128 KiB split), 95.4 WRU each: 0.0619 WRU per hot event
    // (0.0620 measured with message ids).
    let busy = CostInputs::new(1e9);
    let hot_events = 1e9 * 730.0 / 24.0 * 0.2;
    // The write units of `inputs` against those of blocks of `bytes` an event.
    let check = |inputs: &CostInputs, bytes: f64| {
        let block_bytes = hot_events * bytes / 3_942_000.0;
        let writes = 3_942_000.0 * (block_bytes / 1024.0 + 0.5) + 21_900.0;
        let bill = spate_bill(inputs, &US_EAST_1);
        close(
            item(&bill, "write request units (hot events)").quantity * 1e6,
            writes,
        );
        writes / hot_events
    };
    assert!((check(&busy, 63.0) - 0.0619).abs() < 0.0005);
    // Messages of 1,000 events share a message id among 6 hot events of a
    // service: 3.4 B of it an event, 53.9 B, 0.0532 WRU per hot event.
    let mut big_messages = busy.clone();
    big_messages.events_per_message = 1000.0;
    assert!((check(&big_messages, 53.9) - 0.0532).abs() < 0.0005);
    // Kinesis's ids are priced as position ids (not measured).
    let mut kinesis = busy.clone();
    kinesis.source = Source::Kinesis;
    check(&kinesis, 50.5);
    // No hot events, no writes.
    let mut cold = inputs.clone();
    cold.hot_share = 0.0;
    let bill = spate_bill(&cold, &US_EAST_1);
    assert_eq!(
        item(&bill, "write request units (hot events)").quantity,
        0.0
    );
}

#[test]
fn a_provisioned_hot_table_pays_capacity_hours() {
    // The hand case: 3,963,900 WRU a month is 1.51 WRU/s, 2.15 WCU at 70 %:
    // the minimum of 25 WCU × 730 h × $0.00065 = $11.8625, and 5 RCU ×
    // 730 h × $0.00013 = $0.4745; no request units.
    let mut inputs = hand_case();
    inputs.hot_capacity = HotCapacity::Provisioned;
    let bill = spate_bill(&inputs, &US_EAST_1);
    let writes = item(&bill, "write capacity (hot events, provisioned)");
    close(writes.quantity, 25.0 * 730.0);
    close(writes.usd_per_month, 11.8625);
    close(
        item(&bill, "read capacity (provisioned)").usd_per_month,
        0.4745,
    );
    assert!(
        bill.items
            .iter()
            .all(|i| i.item != "write request units (hot events)")
    );
    // A billion a day: 376.3 M WRU a month (the on-demand test above) is
    // 143.2 WRU/s, 204.5 WCU at 70 %: $97.05 a month, where on demand
    // the same writes cost $235.16.
    let mut busy = CostInputs::new(1e9);
    let on_demand = spate_bill(&busy, &US_EAST_1);
    let wru = item(&on_demand, "write request units (hot events)").quantity * 1e6;
    close(
        item(&on_demand, "write request units (hot events)").usd_per_month,
        wru / 1e6 * 0.625,
    );
    busy.hot_capacity = HotCapacity::Provisioned;
    let bill = spate_bill(&busy, &US_EAST_1);
    let wcu = wru / (730.0 * 3600.0) / 0.7;
    assert!((wcu - 204.5).abs() < 0.1, "{wcu}");
    close(
        item(&bill, "write capacity (hot events, provisioned)").usd_per_month,
        wcu * 730.0 * 0.00065,
    );
    assert!((wcu * 730.0 * 0.00065 - 97.05).abs() < 0.05);
    assert!((wru / 1e6 * 0.625 - 235.16).abs() < 0.05, "{wru}");
    // Each bill says when the other mode is cheaper: provisioned at a
    // billion a day (235.16 − 97.05 − 0.47 = 137.64 less), on demand at 2.4 M.
    // (Both also say what zstd bodies would save: the compression test.)
    let hot_notes = |bill: &Bill| -> Vec<String> {
        bill.notes
            .iter()
            .filter(|n| n.contains("hot table"))
            .cloned()
            .collect()
    };
    assert!(hot_notes(&bill).is_empty(), "{:?}", bill.notes);
    assert_eq!(hot_notes(&on_demand).len(), 1);
    assert!(
        hot_notes(&on_demand)[0].contains("provisioned would cost 137.64 USD a month less"),
        "{:?}",
        on_demand.notes
    );
    let small = spate_bill(&inputs, &US_EAST_1);
    assert!(
        hot_notes(&small)[0].contains("on demand would cost")
            && hot_notes(&small)[0].contains("--hot-capacity on-demand"),
        "{:?}",
        small.notes
    );
    // At 2.4 M a day neither the other mode nor compression saves 0.50 USD.
    assert!(spate_bill(&hand_case(), &US_EAST_1).notes.is_empty());
}

#[test]
fn compressed_bodies_are_billed_by_their_bytes() {
    // A billion W1 events a day, zstd in messages of 500 (base64): 118.9 B
    // an event, 59,450 B a message; a full receive of 10 carries 594,500 B =
    // 10 chunks of 64 KiB (9.07, rounded up). 30.42 G events a month are
    // 60.83 M messages, 6.083 M receives: 60.83 M requests.
    let mut inputs = CostInputs::new(1e9);
    inputs.events_per_message = 500.0;
    inputs.compression = Compression::Zstd;
    close(inputs.body_bytes_per_event(), 118.9);
    let bill = spate_bill(&inputs, &US_EAST_1);
    let messages = 1e9 * 730.0 / 24.0 / 500.0;
    close(
        item(&bill, "ReceiveMessage").quantity,
        messages / 10.0 * 10.0 / 1e6,
    );
    // The producer sends one chunk a message; 0.1 delete batch a message.
    close(
        item(&bill, "SendMessage (producer)").quantity,
        messages / 1e6,
    );
    close(
        item(&bill, "DeleteMessageBatch").quantity,
        messages * 0.1 / 1e6,
    );
    // Uncompressed, the same messages (169,400 B) are 3 chunks each to send
    // and 26 a receive.
    let mut plain = inputs.clone();
    plain.compression = Compression::None;
    let plain_bill = spate_bill(&plain, &US_EAST_1);
    close(
        item(&plain_bill, "ReceiveMessage").quantity,
        messages / 10.0 * 26.0 / 1e6,
    );
    close(
        item(&plain_bill, "SendMessage (producer)").quantity,
        messages * 3.0 / 1e6,
    );
    // The plain bill says what compressing would save: its own difference
    // from the compressed bill, Spate's lines and the producer's.
    let saving = plain_bill.spate_usd_per_month - bill.spate_usd_per_month;
    let sends = (plain_bill.total_usd_per_month - plain_bill.spate_usd_per_month)
        - (bill.total_usd_per_month - bill.spate_usd_per_month);
    let note = plain_bill
        .notes
        .iter()
        .find(|n| n.contains("zstd"))
        .unwrap();
    assert!(
        note.contains(&format!(
            "{saving:.2} USD a month less here and {sends:.2} less to send"
        )),
        "{note}"
    );
    assert!(
        bill.notes.iter().all(|n| !n.contains("zstd")),
        "{:?}",
        bill.notes
    );
    // In messages of 100 (33,880 B, one chunk to send either way) only the
    // receives get cheaper, and the note says nothing of the sends.
    let default = spate_bill(&CostInputs::new(1e9), &US_EAST_1);
    let note = default.notes.iter().find(|n| n.contains("zstd")).unwrap();
    assert!(
        note.contains("USD a month less here (--compression zstd"),
        "{note}"
    );
    // Unpacking costs CPU: 9.65 + 0.34 CPU-s per million.
    close(inputs.cpu_seconds_per_million(), 9.99);
    close(plain.cpu_seconds_per_million(), 9.65);
    // Between the measured sizes, interpolated on the logarithm: messages of
    // √(100 × 500) events are halfway between 129.5 and 118.9 B.
    inputs.events_per_message = (100.0f64 * 500.0).sqrt();
    close(inputs.body_bytes_per_event(), (129.5 + 118.9) / 2.0);
    // Kinesis records carry the compressed bytes without base64: gzip in
    // records of 100 is 124.1 × ¾ = 93.075 B an event; a billion a day is
    // 1.08 MB/s: 2 shards, where plain records need 4.
    let mut kinesis = CostInputs::new(1e9);
    kinesis.source = Source::Kinesis;
    kinesis.compression = Compression::Gzip;
    close(kinesis.body_bytes_per_event(), 93.075);
    let bill = spate_bill(&kinesis, &US_EAST_1);
    close(item(&bill, "shard-hours").quantity, 2.0 * 730.0);
    kinesis.compression = Compression::None;
    let bill = spate_bill(&kinesis, &US_EAST_1);
    close(item(&bill, "shard-hours").quantity, 4.0 * 730.0);
}

#[test]
fn task_sizes_are_fargate_pairs() {
    assert!(check_task_size(512, 1024).is_ok());
    assert!(check_task_size(1024, 2048).is_ok());
    assert!(check_task_size(4096, 30720).is_ok());
    let err = check_task_size(2048, 2048).unwrap_err();
    assert!(err.contains("4096 to 16384"), "{err}");
    assert!(check_task_size(1024, 2500).is_err());
    assert!(
        check_task_size(768, 2048)
            .unwrap_err()
            .contains("--task-cpu 768")
    );
}

#[test]
fn tasks_follow_the_measured_cpu_seconds() {
    // 1 vCPU at 50 %: one task carries 0.5 vCPU-s a second = 0.5 / 9.65e-6
    // events/s ≈ 51,813 events/s ≈ 4.48 billion a day.
    let mut inputs = CostInputs::new(4.47e9);
    assert_eq!(tasks(&inputs), 1.0);
    inputs.events_per_day = 4.49e9;
    assert_eq!(tasks(&inputs), 2.0);
}

#[test]
fn kinesis_shards_follow_bytes_and_records() {
    // 1 billion events a day of 339 B = 3.92 MB/s: 4 shards; records of 100
    // events (11,574/s... / 100 = 116/s) stay under 1,000 a shard.
    let mut inputs = CostInputs::new(1e9);
    inputs.source = Source::Kinesis;
    let bill = spate_bill(&inputs, &US_EAST_1);
    close(item(&bill, "shard-hours").quantity, 4.0 * 730.0);
    close(
        item(&bill, "shard-hours").usd_per_month,
        4.0 * 730.0 * 0.015,
    );
    // 100 × 339 B = 33,900 B a record = 2 units of 25 KB.
    let records = 1e9 * 730.0 / 24.0 / 100.0;
    close(
        item(&bill, "PUT payload units (producer)").quantity,
        records * 2.0 / 1e6,
    );
    assert!(bill.items.iter().all(|i| i.service != "SQS"));
}

#[test]
fn large_files_go_up_in_parts() {
    // 30 billion a day: 2.2 TB of lake a day, 3.06 GB a partition-hour:
    // 12 files of 255 MiB, each 2 + 32 part requests, and the LIST before
    // its seal.
    let inputs = CostInputs::new(30e9);
    let bill = spate_bill(&inputs, &US_EAST_1);
    let bytes = 30e9 * 73.5 / 24.0 / 30.0;
    let files = (bytes / (256.0 * MIB)).ceil();
    let per_file = 1.0 + 2.0 + (bytes / files / (8.0 * MIB)).ceil();
    close(
        item(&bill, "PUT and LIST requests (lake files)").quantity,
        30.0 * files * 730.0 * per_file / 1000.0,
    );
}

#[test]
fn the_seed_pays_per_event() {
    // A billion events a month: $200 of invocations, 1e9 × 0.125 GB ×
    // 0.001 s = 125,000 GB-s × $0.0000166667, and $625 of writes.
    let inputs = CostInputs::new(1e9 / (730.0 / 24.0));
    let bill = seed_lambda_bill(&inputs, &US_EAST_1);
    close(item(&bill, "requests").usd_per_month, 200.0);
    close(item(&bill, "duration").quantity, 125_000.0);
    close(item(&bill, "write request units").usd_per_month, 625.0);
    close(bill.spate_usd_per_billion_events, bill.total_usd_per_month);
}

#[test]
fn inputs_are_checked_and_all_printed() {
    let mut inputs = hand_case();
    inputs.hot_share = 1.5;
    assert!(inputs.validate().unwrap_err().contains("--hot-share"));
    inputs.hot_share = 0.2;
    inputs.events_per_day = 0.0;
    assert!(inputs.validate().unwrap_err().contains("--events-per-day"));
    let rows = input_rows(&hand_case(), Architecture::Spate);
    for name in [
        "events_per_day",
        "event_bytes",
        "hot_share",
        "source",
        "region",
        "prices",
        "measured.cpu_seconds_per_million_w1",
    ] {
        assert!(rows.iter().any(|(k, _)| k == name), "{name}: {rows:?}");
    }
}

#[test]
fn json_has_the_items_and_the_total() {
    let inputs = hand_case();
    let bill = spate_bill(&inputs, &US_EAST_1);
    let mut out = Vec::new();
    write(
        &mut out,
        Format::Json,
        &bill,
        &input_rows(&inputs, Architecture::Spate),
    )
    .unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    close(
        json["total_usd_per_month"].as_f64().unwrap(),
        bill.total_usd_per_month,
    );
    assert_eq!(json["items"].as_array().unwrap().len(), bill.items.len());
    assert_eq!(json["inputs"]["events_per_day"], 2_400_000.0);
    let mut table = Vec::new();
    write(&mut table, Format::Table, &bill, &[]).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("DeleteMessageBatch") && table.contains("total "),
        "{table}"
    );
}
