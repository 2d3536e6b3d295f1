//! Every metric the operators emit, one list per component (see
//! [`spate_engine::catalog`]): the service describes them all and registers
//! at 0 the lists of the components it runs, so their series exist from
//! start-up.

use spate_engine::catalog::{DELIVERY_BUCKETS, MetricDef};

const SEVERITIES: &[&[&str]] = &[&["CRITICAL"], &["ERROR"], &["WARNING"], &["INFO"]];

/// Decoding and classification.
pub const DECODE: &[MetricDef] = &[
    MetricDef::counter(
        "spate_events_total",
        &["severity"],
        "Events decoded and classified, by severity (CRITICAL, ERROR, WARNING, INFO).",
    )
    .at_start(SEVERITIES),
    MetricDef::counter(
        "spate_decode_dead_letters_total",
        &[],
        "Input lines the decoder could not read (sent to the dead-letter output with their reason).",
    ),
    MetricDef::counter(
        "spate_enrich_matched_total",
        &[],
        "Events the reference table matched (host IP or CIDR).",
    ),
    MetricDef::counter(
        "spate_enrich_reloads_total",
        &[],
        "Reloads of the enrichment reference table after it changed.",
    ),
    MetricDef::counter(
        "spate_enrich_reload_errors_total",
        &[],
        "Failed reloads of the enrichment reference table: a broken new version or an unreachable source (the previous table stays in use).",
    ),
    MetricDef::gauge(
        "spate_enrich_table_rows",
        &[],
        "Rows (IP addresses and CIDR blocks) of the enrichment reference table in force.",
    ),
    MetricDef::gauge(
        "spate_enrich_table_age_seconds",
        &[],
        "Seconds since the enrichment reference table in force was last modified (file mtime or S3 LastModified).",
    ),
];

/// The Parquet lake writer (local directory; the staging area of S3).
pub const LAKE: &[MetricDef] = &[
    MetricDef::counter(
        "spate_lake_rows_written_total",
        &[],
        "Rows committed to lake Parquet files.",
    ),
    MetricDef::counter(
        "spate_lake_duplicates_dropped_total",
        &["source"],
        "Staged rows dropped when sealed because their event_id was already in the partition (a redelivery, replay or keyed retry within lake.dedup_horizon), by source (http, sqs:NAME, kinesis:STREAM, file, stdin).",
    )
    .at_start(&[&["http"]]),
    MetricDef::counter(
        "spate_lake_files_written_total",
        &[],
        "Lake Parquet files committed.",
    ),
    MetricDef::counter(
        "spate_lake_bytes_written_total",
        &[],
        "Bytes of lake Parquet files committed.",
    ),
    MetricDef::counter(
        "spate_dead_letters_total",
        &[],
        "Dead letters committed to the dead-letter output by the lake writer.",
    ),
    MetricDef::histogram(
        "spate_lake_commit_seconds",
        &[],
        "Time of one staging commit of a lake writer (stage the buffered rows, fsynced when the commit acknowledges them, and fsync dead letters), in seconds.",
    )
    .buckets(DELIVERY_BUCKETS),
    MetricDef::counter(
        "spate_lake_seals_total",
        &["reason"],
        "Staged partitions sealed into Parquet files, by reason (size, hour_closed, age, staging_full, flush).",
    )
    .at_start(&[
        &["size"],
        &["hour_closed"],
        &["age"],
        &["staging_full"],
        &["flush"],
    ]),
    MetricDef::counter(
        "spate_lake_seal_failures_total",
        &[],
        "Seals that failed (the rows stay staged and the seal is retried).",
    ),
    MetricDef::histogram(
        "spate_lake_seal_seconds",
        &[],
        "Time to seal one partition (read staging, write and publish the Parquet file), in seconds.",
    )
    .buckets(DELIVERY_BUCKETS),
    MetricDef::gauge(
        "spate_lake_staged_bytes",
        &["writer"],
        "Bytes staged (Arrow IPC) and not yet sealed, per lake writer.",
    ),
];

/// The S3 target of the lake (`[lake.s3]`).
pub const S3_LAKE: &[MetricDef] = &[
    MetricDef::counter(
        "spate_s3_lake_objects_written_total",
        &[],
        "Objects uploaded to the S3 lake (Parquet files and dead letters).",
    ),
    MetricDef::counter(
        "spate_s3_lake_bytes_written_total",
        &[],
        "Bytes uploaded to the S3 lake.",
    ),
    MetricDef::counter(
        "spate_s3_lake_request_errors_total",
        &["op"],
        "Failed S3 requests of the lake, by operation (each retry counted).",
    )
    .at_start(&[
        &["put_object"],
        &["create_multipart_upload"],
        &["upload_part"],
        &["complete_multipart_upload"],
    ]),
    MetricDef::counter(
        "spate_glue_partitions_registered_total",
        &[],
        "Partitions registered in the Glue catalog (`[lake.s3.glue]`) as files were sealed.",
    ),
    MetricDef::counter(
        "spate_glue_request_errors_total",
        &["op"],
        "Failed Glue catalog requests, by operation (each retry counted).",
    )
    .at_start(&[&["get_table"], &["batch_create_partition"]]),
    MetricDef::histogram(
        "spate_s3_lake_upload_seconds",
        &[],
        "Time to upload one object to the S3 lake (single PUT or multipart), in seconds.",
    ),
];

/// The embedded hot store (SQLite).
pub const HOT: &[MetricDef] = &[
    MetricDef::counter(
        "spate_hot_commits_total",
        &[],
        "Transactions committed to the embedded hot store.",
    ),
    MetricDef::counter(
        "spate_hot_rows_written_total",
        &[],
        "Events written to the embedded hot store (packed in blocks).",
    ),
    MetricDef::histogram(
        "spate_hot_commit_seconds",
        &[],
        "Time to commit one transaction to the embedded hot store, in seconds.",
    ),
    MetricDef::counter(
        "spate_hot_commit_failures_total",
        &[],
        "Failed commits to the embedded hot store (the batches fail and are redelivered).",
    ),
    MetricDef::counter(
        "spate_hot_rows_expired_total",
        &["table"],
        "Events, windows and alerts removed from the embedded hot store past their retention, by table.",
    )
    .at_start(&[&["events"], &["windows"], &["alerts"]]),
    MetricDef::counter(
        "spate_hot_expire_failures_total",
        &[],
        "Failed retention passes of the embedded hot store.",
    ),
    MetricDef::counter(
        "spate_hot_truncated_total",
        &[],
        "Hot events whose message or attributes were cut to 64 KiB (either hot store; the lake keeps them whole).",
    ),
    MetricDef::gauge(
        "spate_hot_buffered_rows",
        &[],
        "Rows buffered by the hot writer, not yet committed.",
    ),
];

/// The DynamoDB hot store (`[hot_dynamodb]`).
pub const DYNAMO_HOT: &[MetricDef] = &[
    MetricDef::counter(
        "spate_dynamo_hot_items_written_total",
        &[],
        "Items written to the DynamoDB hot table.",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_blocks_written_total",
        &[],
        "Packed blocks of hot events written to the DynamoDB hot table.",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_events_written_total",
        &[],
        "Hot events written to the DynamoDB hot table (in blocks).",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_write_units_total",
        &[],
        "Write units of the hot items written, from their sizes (one per started KB of an item).",
    ),
    MetricDef::histogram(
        "spate_dynamo_hot_commit_seconds",
        &[],
        "Time to write one buffer of items to DynamoDB, retries included, in seconds.",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_commit_failures_total",
        &[],
        "Failed DynamoDB commits (the batches fail and are redelivered).",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_batch_writes_total",
        &[],
        "BatchWriteItem calls made.",
    ),
    MetricDef::histogram(
        "spate_dynamo_hot_batch_write_seconds",
        &[],
        "Time of one BatchWriteItem call, in seconds.",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_unprocessed_items_total",
        &[],
        "Items DynamoDB returned unprocessed (retried with backoff).",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_write_retries_total",
        &[],
        "BatchWriteItem calls retried after a retryable error.",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_alerts_won_total",
        &[],
        "Alert notices this process claimed in DynamoDB (conditional write won).",
    ),
    MetricDef::counter(
        "spate_dynamo_hot_alerts_lost_total",
        &[],
        "Alert notices another process had already claimed in DynamoDB.",
    ),
    MetricDef::gauge(
        "spate_dynamo_hot_buffered_rows",
        &[],
        "Items buffered by the DynamoDB hot writer, not yet written.",
    ),
];

/// The HTTP journal (the source `http`).
pub const JOURNAL: &[MetricDef] = &[
    MetricDef::counter(
        "spate_journal_appended_bytes_total",
        &[],
        "Bytes of accepted pushes appended to the journal.",
    ),
    MetricDef::counter(
        "spate_journal_records_total",
        &[],
        "Records appended to the journal.",
    ),
    MetricDef::counter(
        "spate_journal_empty_records_total",
        &[],
        "Pushes with no line, not appended.",
    ),
    MetricDef::counter("spate_journal_fsyncs_total", &[], "Journal fsyncs."),
    MetricDef::gauge(
        "spate_journal_backlog_bytes",
        &[],
        "Journal bytes accepted and not yet read by the pipeline (pushes are refused with 429 at the limit).",
    ),
    MetricDef::gauge(
        "spate_journal_uncommitted_bytes",
        &[],
        "Journal bytes not yet committed by every sink.",
    ),
    MetricDef::gauge(
        "spate_journal_disk_bytes",
        &[],
        "Bytes of journal segments on disk.",
    ),
    MetricDef::counter(
        "spate_journal_rejected_total",
        &["reason"],
        "Appends the journal refused, by reason.",
    )
    .at_start(&[
        &["saturated"],
        &["disk_limit"],
        &["io"],
        &["too_large"],
        &["closed"],
    ]),
    MetricDef::counter(
        "spate_journal_torn_records_total",
        &[],
        "Torn tails cut off the newest journal segment at open (also counted in spate_journal_damaged_records_total{kind=\"torn_tail\"}).",
    ),
    MetricDef::counter(
        "spate_journal_damaged_records_total",
        &["kind"],
        "Damaged journal ranges skipped (one or more records each), by kind: torn_tail (end of the newest segment, most likely never acknowledged) or middle (may have been acknowledged); a copy of each is in deadletter/journal/.",
    )
    .at_start(&[&["torn_tail"], &["middle"]]),
    MetricDef::counter(
        "spate_journal_damaged_bytes_total",
        &["kind"],
        "Bytes of damaged journal ranges skipped, by kind (torn_tail, middle); copied to deadletter/journal/.",
    )
    .at_start(&[&["torn_tail"], &["middle"]]),
    MetricDef::counter(
        "spate_journal_resent_ranges_total",
        &[],
        "Journal ranges sent again after the pipeline failed them.",
    ),
    MetricDef::counter(
        "spate_journal_checkpoint_errors_total",
        &[],
        "Failed saves of the journal checkpoint (retried at the next interval).",
    ),
    MetricDef::counter(
        "spate_journal_bad_checkpoints_total",
        &[],
        "Unreadable journal checkpoints found at start-up.",
    ),
];

/// The tail source (`[tail]`).
pub const TAIL: &[MetricDef] = &[
    MetricDef::gauge("spate_tail_files", &[], "Files being tailed."),
    MetricDef::gauge(
        "spate_tail_behind_bytes",
        &[],
        "Bytes written to the tailed files and not yet read.",
    ),
    MetricDef::counter(
        "spate_tail_read_bytes_total",
        &[],
        "Bytes read from tailed files.",
    ),
    MetricDef::counter(
        "spate_tail_resent_bytes_total",
        &[],
        "Bytes of tailed files read again after the pipeline failed them.",
    ),
    MetricDef::counter(
        "spate_tail_rotations_total",
        &[],
        "Tailed files renamed or rotated away.",
    ),
    MetricDef::counter(
        "spate_tail_truncations_total",
        &[],
        "Tailed files truncated in place (read again from the start).",
    ),
    MetricDef::counter(
        "spate_tail_long_lines_split_total",
        &[],
        "Lines longer than max_line_kib, split.",
    ),
    MetricDef::counter(
        "spate_tail_open_errors_total",
        &[],
        "Failures to open a file to tail.",
    ),
    MetricDef::counter(
        "spate_tail_read_errors_total",
        &[],
        "Failures to read a tailed file.",
    ),
    MetricDef::counter(
        "spate_tail_checkpoint_writes_total",
        &[],
        "Tail checkpoint saves.",
    ),
    MetricDef::counter(
        "spate_tail_checkpoint_errors_total",
        &[],
        "Failed tail checkpoint saves.",
    ),
];

/// The SQS source (`[[sources.sqs]]`).
pub const SQS: &[MetricDef] = &[
    MetricDef::counter(
        "spate_sqs_messages_received_total",
        &[],
        "SQS messages received.",
    ),
    MetricDef::counter(
        "spate_sqs_messages_deleted_total",
        &[],
        "SQS messages deleted after every sink committed them.",
    ),
    MetricDef::counter(
        "spate_sqs_messages_returned_total",
        &[],
        "SQS messages made visible again after a failure or at shutdown.",
    ),
    MetricDef::counter(
        "spate_sqs_messages_invalid_total",
        &[],
        "SQS messages without a receipt handle, skipped.",
    ),
    MetricDef::counter(
        "spate_sqs_visibility_extended_total",
        &[],
        "Visibility extensions of SQS messages still in flight.",
    ),
    MetricDef::counter(
        "spate_sqs_receive_errors_total",
        &[],
        "Failed SQS receive calls.",
    ),
    MetricDef::counter(
        "spate_sqs_delete_errors_total",
        &[],
        "SQS messages whose delete failed (redelivered after their visibility timeout).",
    ),
    MetricDef::counter(
        "spate_sqs_visibility_errors_total",
        &[],
        "SQS messages whose visibility change failed.",
    ),
    MetricDef::counter(
        "spate_sqs_settle_lost_total",
        &[],
        "SQS deletes or returns lost at shutdown (redelivered after their visibility timeout).",
    ),
    MetricDef::gauge(
        "spate_sqs_messages_held",
        &["queue"],
        "SQS messages this process received and has not yet deleted or returned.",
    ),
    MetricDef::gauge(
        "spate_sqs_queue_visible_messages",
        &["queue"],
        "Messages waiting in the SQS queue (ApproximateNumberOfMessages), read every 15 s.",
    ),
    MetricDef::gauge(
        "spate_sqs_queue_inflight_messages",
        &["queue"],
        "Messages received from the SQS queue by any consumer and not yet deleted (ApproximateNumberOfMessagesNotVisible), read every 15 s.",
    ),
    MetricDef::counter(
        "spate_sqs_queue_attribute_errors_total",
        &[],
        "Failed reads of the SQS queue's depth (GetQueueAttributes).",
    ),
];

/// The Kinesis source (`[[sources.kinesis]]`).
pub const KINESIS: &[MetricDef] = &[
    MetricDef::counter("spate_kinesis_records_total", &[], "Kinesis records read."),
    MetricDef::counter(
        "spate_kinesis_kpl_records_total",
        &[],
        "KPL-aggregated Kinesis records unpacked.",
    ),
    MetricDef::counter(
        "spate_kinesis_kpl_invalid_total",
        &[],
        "KPL-aggregated Kinesis records that did not parse (read as plain records).",
    ),
    MetricDef::gauge(
        "spate_kinesis_behind_latest_seconds",
        &["shard"],
        "How far the shard's reader is behind the tip of the stream (MillisBehindLatest), in seconds.",
    ),
    MetricDef::counter(
        "spate_kinesis_throttles_total",
        &[],
        "GetRecords calls throttled by Kinesis.",
    ),
    MetricDef::counter(
        "spate_kinesis_batches_retried_total",
        &[],
        "Kinesis batches read again after the pipeline failed them.",
    ),
    MetricDef::counter(
        "spate_kinesis_checkpoint_writes_total",
        &[],
        "Kinesis checkpoints written to the lease table.",
    ),
    MetricDef::gauge(
        "spate_kinesis_leases_owned",
        &[],
        "Kinesis shard leases this process holds.",
    ),
    MetricDef::counter(
        "spate_kinesis_leases_stolen_total",
        &[],
        "Kinesis shard leases taken over from another process.",
    ),
    MetricDef::counter(
        "spate_kinesis_leases_lost_total",
        &[],
        "Kinesis shard leases lost to another process.",
    ),
];

/// The window aggregator.
pub const WINDOWS: &[MetricDef] = &[
    MetricDef::gauge("spate_window_open", &[], "Event-time windows open."),
    MetricDef::counter(
        "spate_windows_closed_total",
        &[],
        "Windows closed (counts final).",
    ),
    MetricDef::counter(
        "spate_window_late_events_total",
        &[],
        "Events older than a closed window (archived, not counted).",
    ),
    MetricDef::gauge(
        "spate_window_watermark_lag_seconds",
        &[],
        "Processing time minus the watermark, in seconds (large when replaying old data).",
    ),
    MetricDef::counter(
        "spate_window_emf_lines_total",
        &[],
        "CloudWatch EMF lines printed for closed windows (`[metrics.emf]` with `windows`).",
    ),
];

/// The alert router and its outputs.
pub const ALERTS: &[MetricDef] = &[
    MetricDef::counter(
        "spate_alerts_total",
        &["rule", "state"],
        "Alert notices sent, by rule and state (firing, resolved).",
    ),
    MetricDef::counter(
        "spate_alert_deliveries_failed_total",
        &["output"],
        "Alert notices an output failed to deliver, by output.",
    ),
    MetricDef::counter(
        "spate_alerts_dropped_total",
        &["output"],
        "Alert notices dropped because an output's queue was full, by output.",
    ),
    MetricDef::counter(
        "spate_alert_store_failures_total",
        &[],
        "Failures to record or claim an alert in the hot store.",
    ),
    MetricDef::counter(
        "spate_alerts_silenced_total",
        &[],
        "Alert notices a silence kept from every output (still recorded in the hot store).",
    ),
    MetricDef::counter(
        "spate_alerts_unrouted_total",
        &[],
        "Alert notices no route matched, so no output received them.",
    ),
    MetricDef::counter(
        "spate_alert_baseline_conflicts_total",
        &[],
        "Anomaly baselines another process saved first (this one reloads them).",
    ),
];

/// Shared-window mode (`[hot_dynamodb]` with `[windows] shared`).
pub const SHARED_WINDOWS: &[MetricDef] = &[
    MetricDef::gauge(
        "spate_alert_windows_pending",
        &[],
        "Closed windows waiting for their settle delay before the rules run on the merged counts.",
    ),
    MetricDef::counter(
        "spate_alert_claims_won_total",
        &[],
        "Alert notices this process claimed and sent.",
    ),
    MetricDef::counter(
        "spate_alert_claims_lost_total",
        &[],
        "Alert notices another process claimed first (normal with several processes).",
    ),
];

/// The SNS alert output (`[alerts.sns]`).
pub const SNS: &[MetricDef] = &[
    MetricDef::counter(
        "spate_sns_alerts_published_total",
        &[],
        "Alert notices published to SNS.",
    ),
    MetricDef::counter(
        "spate_sns_publish_errors_total",
        &[],
        "Failed SNS publishes.",
    ),
];

/// Every AWS API call, counted by the SDK interceptor of
/// [`crate::aws::request_accounting`] (each attempt, retries included).
pub const AWS: &[MetricDef] = &[
    MetricDef::counter(
        "spate_aws_requests_total",
        &["service", "operation"],
        "AWS API requests sent (each attempt, retries included), by service (sqs, s3, dynamodb, kinesis, sns, glue, secretsmanager) and operation (ReceiveMessage, PutObject...).",
    ),
    MetricDef::counter(
        "spate_aws_request_errors_total",
        &["service", "operation"],
        "AWS API request attempts that failed (an error status or no response), by service and operation.",
    ),
    MetricDef::counter(
        "spate_aws_request_bytes_total",
        &["service", "operation", "direction"],
        "Bytes of AWS API request and response bodies where their length is known, by service, operation and direction (sent, received).",
    ),
];

/// Every list, for describing them all.
pub const ALL: &[&[MetricDef]] = &[
    DECODE,
    LAKE,
    S3_LAKE,
    HOT,
    DYNAMO_HOT,
    JOURNAL,
    TAIL,
    SQS,
    KINESIS,
    WINDOWS,
    ALERTS,
    SHARED_WINDOWS,
    SNS,
    AWS,
];
