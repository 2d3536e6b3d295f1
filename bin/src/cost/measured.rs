//! The per-event figures of the cost model, each measured in this repository
//! (or read from Spate's own defaults), with the command that produced it.

/// CPU-seconds per million W1 events through `spate run` (HTTP push into the
/// journal, the lake, the embedded hot store, windows) on one CPU at a
/// billion events a day (11,574 events/s), loadgen on the other core:
/// `SPATE_CPUS=1 LOADGEN_CPUS=0 bash bench/scripts/http.sh 11574 60s steady`
/// (`docs/BENCHMARKS.md`, 2026-12-06: 6.7 CPU-s for 694,440 events; 7.92
/// at 100,000 events/s). The SQS source's receives and deletes replace the
/// HTTP handling; not measured separately. `spate ingest` of a file needs
/// 2.29 (W1 20 M, the generated `ingest_w1` step of 2026-12-07; 3.91 when
/// this figure was taken).
pub const CPU_SECONDS_PER_MILLION_W1: f64 = 9.65;

/// Body bytes per W1 event of an SQS message (base64 when compressed) by
/// events a message: `(events a message, none, gzip, zstd)`, what `loadgen
/// send --target sqs --compress ...` sends (gzip at its default level, zstd
/// at 3): `cargo bench -p spate-bench --bench compressed_messages`
/// (100,000 W1 events, seed 42, 2026-12-06). A Kinesis record carries the
/// compressed bytes without base64: three quarters of these.
pub const W1_BODY_BYTES_PER_EVENT: [(f64, f64, f64, f64); 2] =
    [(100.0, 338.8, 124.1, 129.5), (500.0, 338.8, 110.2, 118.9)];

/// CPU-seconds per million W1 events that unpacking compressed messages adds
/// to decoding them, `(gzip, zstd)`: the same benchmark, its compressed
/// variants against the plain ones in the same run: medians of 6 pairs
/// (messages of 100 and of 500, three runs on this noisy 2-core VM; gzip
/// 0.71-0.99, zstd 0.23-0.59).
pub const UNPACK_CPU_SECONDS_PER_MILLION_W1: (f64, f64) = (0.78, 0.34);

/// Bytes an SQS message id adds to a W1 hot event in the hot table's blocks
/// (the SQS source's ids are `sqs:<queue>:<message id>:<offset>`; a block
/// stores a message id once for a run of its events), by events a message:
/// `(events a message, bytes)`. `operators/tests/aws_dynamo_hot.rs`
/// `w1_blocks_of_a_billion_a_day_cost_under_a_twentieth_of_a_write_unit`
/// (`... --test aws_dynamo_hot billion -- --nocapture`, 2026-12-06): 62.9,
/// 55.9 and 53.8 B against 50.4 B with position ids (12.4 more in the
/// small blocks of `w1_blocks_cost_more_with_sqs_message_ids`).
pub const W1_HOT_MESSAGE_ID_BYTES: [(f64, f64); 3] = [(100.0, 12.5), (500.0, 5.5), (1000.0, 3.4)];

/// Mean bytes of a W1 event: `docs/BENCHMARKS.md` (W1 app-json, 339 B/event).
pub const W1_EVENT_BYTES: f64 = 339.0;

/// Lake (Parquet, zstd) bytes per W1 event: `docs/BENCHMARKS.md`, the same
/// ingest run. Other event sizes scale by this ratio.
pub const W1_LAKE_BYTES_PER_EVENT: f64 = 73.5;

/// Share of W1 events at WARNING and above (`/work/shared/WORKLOAD.md`:
/// 1 % critical, 7 % error, 12 % warning), what the hot writer stores by
/// default.
pub const W1_HOT_SHARE: f64 = 0.20;

/// DeleteMessageBatch calls per SQS message: 4 for 40 messages received
/// (5 in an earlier run: 0.125), `bin/tests/run_aws.rs`
/// `aws_requests_are_counted_by_service_and_operation` against moto
/// (`/work/tools/with-env.sh cargo test --workspace --locked --test run_aws
/// aws_requests -- --nocapture`).
pub const SQS_DELETE_BATCHES_PER_MESSAGE: f64 = 0.1;

/// Messages a busy receive returns: the source asks for 10
/// (`max_messages`, SQS's maximum); empty long polls are priced separately.
pub const SQS_MESSAGES_PER_RECEIVE: f64 = 10.0;

/// Seconds between the queue-depth reads (GetQueueAttributes) of an SQS
/// source (`operators/src/sources/sqs/depth.rs`, `DEPTH_EVERY`); 3 in the
/// 36 s accounting run above.
pub const SQS_DEPTH_POLL_SECS: f64 = 15.0;

/// Bytes of the DynamoDB hot table's items per W1 hot event (the
/// compressed block bodies, their keys and attributes: DynamoDB's item
/// size) when a write holds few events a service: 11,400 W1 events (2,235
/// hot, 32 services) in one write, 30 s of a billion events a month:
/// `operators/tests/aws_dynamo_hot.rs`
/// `packed_w1_hot_events_cost_under_a_tenth_of_a_write_unit`
/// (`/work/tools/with-env.sh cargo test --workspace --locked --test
/// aws_dynamo_hot packed -- --nocapture`, against moto, 2026-12-06): 70.7 B
/// of block bodies (layout 2) and 72.4 B of items per hot event (layout 1:
/// 84.1 B).
pub const W1_HOT_ITEM_BYTES_SMALL_BLOCKS: f64 = 72.4;

/// Hot events a service in that write: 2,235 / 32.
pub const W1_HOT_EVENTS_PER_SMALL_BLOCK: f64 = 2235.0 / 32.0;

/// The same when a write holds many: 347,222 W1 events (69,640 hot) in one
/// write, 30 s of a billion events a day, split at 128 KB into 51 blocks:
/// 50.4 B of block bodies per hot event, plus about 60 B of key and
/// attributes a block (`w1_blocks_of_a_billion_a_day_cost_under_a_twentieth_of_a_write_unit`
/// in the same file, `... --test aws_dynamo_hot billion -- --nocapture`,
/// 2026-12-06). With the SQS source's message ids in the event ids: 62.9 B.
pub const W1_HOT_ITEM_BYTES_FULL_BLOCKS: f64 = 50.5;

/// Hot events a service in that write: 69,640 / 32.
pub const W1_HOT_EVENTS_PER_FULL_BLOCK: f64 = 69_640.0 / 32.0;

/// Write units per W1 hot event in the small write (one per started KB of
/// each item): 203 for 2,235 hot events, 171 of them for the 32 blocks (one
/// per service) and 32 for the services' first registry entries (layout 1:
/// 232). The model recomputes the rounding for other rates; this is the
/// check.
pub const W1_HOT_WRU_PER_EVENT: f64 = 0.0908;

/// Seconds between the writes of the DynamoDB hot writer (`[hot_dynamodb]
/// commit_interval` default): each write stores one block per service and
/// minute of event time it holds.
pub const HOT_COMMIT_SECS: f64 = 30.0;

/// Bytes a DynamoDB item of one event adds to the event (the seed's design,
/// one item per event): attribute names (~80 B) and the `pk`/`sk` keys
/// (~70 B). An estimate from an item layout, not a measurement: W1 items
/// stay under 1 KB (one write unit) either way.
pub const HOT_ITEM_OVERHEAD_BYTES: f64 = 150.0;

/// Files above this go up by multipart upload (`[lake.s3]
/// multipart_threshold` default).
pub const S3_MULTIPART_THRESHOLD_MIB: f64 = 8.0;

/// Part size of a multipart upload (`[lake.s3] part_size` default).
pub const S3_PART_MIB: f64 = 8.0;

/// CloudWatch custom metrics (metric name × dimension values) of the
/// default `[metrics.emf] include` list in an SQS + S3 lake `spate run`
/// (the per-actor series summed over the actors): the accounting test
/// above, 2026-12-06 (114 before the list was trimmed, 2026-12-05).
pub const EMF_DEFAULT_CUSTOM_METRICS: f64 = 62.0;

/// Custom metrics of the window counts (`[metrics.emf] windows`, on by
/// default) in the same run: `WindowEvents` and `WindowTagEvents` of W1's
/// 32 services (20 named, the rest `other`), 4,000 events.
pub const EMF_WINDOW_CUSTOM_METRICS: f64 = 118.0;

/// Bytes of the EMF lines of one emission in that run (window lines
/// included).
pub const EMF_BYTES_PER_EMISSION: f64 = 45_509.0;

/// `table`'s value at `x`, interpolated on the logarithm of `x` between its
/// rows (sorted by `x`), the nearer row's outside them.
pub fn log_interpolate(table: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (table[0], table[table.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    let i = table
        .iter()
        .position(|&(at, _)| at >= x)
        .unwrap_or(1)
        .max(1);
    let ((x0, y0), (x1, y1)) = (table[i - 1], table[i]);
    y0 + (x.ln() - x0.ln()) / (x1.ln() - x0.ln()) * (y1 - y0)
}

/// The figures as (name, value) rows.
pub fn rows() -> Vec<(String, f64)> {
    [
        (
            "measured.cpu_seconds_per_million_w1",
            CPU_SECONDS_PER_MILLION_W1,
        ),
        ("measured.w1_lake_bytes_per_event", W1_LAKE_BYTES_PER_EVENT),
        (
            "measured.unpack_cpu_seconds_per_million_w1.gzip",
            UNPACK_CPU_SECONDS_PER_MILLION_W1.0,
        ),
        (
            "measured.unpack_cpu_seconds_per_million_w1.zstd",
            UNPACK_CPU_SECONDS_PER_MILLION_W1.1,
        ),
        (
            "measured.sqs_delete_batches_per_message",
            SQS_DELETE_BATCHES_PER_MESSAGE,
        ),
        ("sqs_messages_per_receive", SQS_MESSAGES_PER_RECEIVE),
        ("sqs_depth_poll_secs", SQS_DEPTH_POLL_SECS),
        (
            "measured.w1_hot_item_bytes_small_blocks",
            W1_HOT_ITEM_BYTES_SMALL_BLOCKS,
        ),
        (
            "measured.w1_hot_events_per_small_block",
            W1_HOT_EVENTS_PER_SMALL_BLOCK,
        ),
        (
            "measured.w1_hot_item_bytes_full_blocks",
            W1_HOT_ITEM_BYTES_FULL_BLOCKS,
        ),
        (
            "measured.w1_hot_events_per_full_block",
            W1_HOT_EVENTS_PER_FULL_BLOCK,
        ),
        ("measured.w1_hot_wru_per_event", W1_HOT_WRU_PER_EVENT),
        ("hot_commit_secs", HOT_COMMIT_SECS),
        ("estimated.hot_item_overhead_bytes", HOT_ITEM_OVERHEAD_BYTES),
        ("s3_multipart_threshold_mib", S3_MULTIPART_THRESHOLD_MIB),
        ("s3_part_mib", S3_PART_MIB),
        (
            "measured.emf_default_custom_metrics",
            EMF_DEFAULT_CUSTOM_METRICS,
        ),
        (
            "measured.emf_window_custom_metrics",
            EMF_WINDOW_CUSTOM_METRICS,
        ),
        ("measured.emf_bytes_per_emission", EMF_BYTES_PER_EMISSION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
