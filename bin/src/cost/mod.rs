//! `spate cost`: what running Spate on AWS costs a month, by line item, from
//! the list prices of [`prices`] and the figures measured in this repository
//! ([`measured`]). Pure functions of [`CostInputs`]; `docs/cost.md` explains
//! the model.
//!
//! A month is 730 hours (AWS's convention); storage is at its steady state
//! (the lifecycle of `deploy/aws/spate.yaml` in full swing); rates are the
//! daily average (no peak headroom beyond the target CPU utilisation).

mod bill;
mod hot;
mod inputs;
pub mod measured;
pub mod prices;
mod report;

use serde::Serialize;
use serde_json::Value;

use self::bill::line;
pub use self::bill::{Bill, LineItem, Scope};
pub use self::inputs::{
    Compression, CostInputs, HOURS_PER_MONTH, HotCapacity, Source, check_task_size, tasks,
};
use self::inputs::{DAYS_PER_MONTH, GIB, MIB, SECONDS_PER_MONTH};
use self::prices::Prices;
pub use self::report::write;

/// Which architecture to price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Spate on Fargate: the default graph of `deploy/aws/spate.yaml`.
    Spate,
    /// The seed's design: one Lambda invocation and one DynamoDB write per
    /// event.
    SeedLambda,
}

/// The monthly bill of Spate on Fargate for `inputs`, with a note when the
/// hot table's other billing mode would be cheaper, and one when the
/// producer compressing its message bodies would be.
pub fn spate_bill(inputs: &CostInputs, prices: &Prices) -> Bill {
    let mut bill = Bill::of(spate_lines(inputs, prices), inputs.events_per_month());
    let mut other = inputs.clone();
    let (other_name, flag) = match inputs.hot_capacity {
        HotCapacity::OnDemand => {
            other.hot_capacity = HotCapacity::Provisioned;
            ("provisioned", "provisioned")
        }
        HotCapacity::Provisioned => {
            other.hot_capacity = HotCapacity::OnDemand;
            ("on demand", "on-demand")
        }
    };
    let hot_usd = |items: &[LineItem]| -> f64 {
        items
            .iter()
            .filter(|i| i.service == "DynamoDB")
            .map(|i| i.usd_per_month)
            .sum()
    };
    let saving = hot_usd(&bill.items) - hot_usd(&spate_lines(&other, prices));
    if saving > 0.5 {
        bill.notes.push(format!(
            "the hot table {other_name} would cost {saving:.2} USD a month less (HotTableCapacity={flag} in the stack, --hot-capacity {flag} here)"
        ));
    }
    if inputs.compression == Compression::None {
        let compressed = CostInputs {
            compression: Compression::Zstd,
            ..inputs.clone()
        };
        let other = Bill::of(spate_lines(&compressed, prices), inputs.events_per_month());
        let spate = bill.spate_usd_per_month - other.spate_usd_per_month;
        let upstream = (bill.total_usd_per_month - bill.spate_usd_per_month)
            - (other.total_usd_per_month - other.spate_usd_per_month);
        if spate + upstream > 0.5 {
            let sends = if upstream >= 0.005 {
                format!(" and {upstream:.2} less to send")
            } else {
                String::new()
            };
            bill.notes.push(format!(
                "message bodies compressed with zstd by the producer would cost {spate:.2} USD a month less here{sends} (--compression zstd; docs/aws.md)"
            ));
        }
    }
    bill
}

fn spate_lines(inputs: &CostInputs, prices: &Prices) -> Vec<LineItem> {
    let mut items = compute(inputs, prices);
    items.extend(match inputs.source {
        Source::Sqs => sqs(inputs, prices),
        Source::Kinesis => kinesis(inputs, prices),
    });
    items.extend(hot::lines(inputs, prices));
    items.extend(lake(inputs, prices));
    items.extend(cloudwatch(inputs, prices));
    items
}

fn compute(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let tasks = tasks(inputs);
    let basis = format!(
        "{tasks} task(s) × 730 h: {} CPU-s per million W1 events (measured{}) at {} % of {} vCPU",
        inputs.cpu_seconds_per_million(),
        if inputs.compression == Compression::None {
            ""
        } else {
            ", unpacking included"
        },
        inputs.target_cpu_utilisation * 100.0,
        inputs.task_vcpu
    );
    let extra_storage = (inputs.task_storage_gb - 20.0).max(0.0);
    vec![
        line(
            "Fargate",
            "vCPU",
            tasks * inputs.task_vcpu * HOURS_PER_MONTH,
            p.fargate_vcpu_hour,
            Scope::Spate,
            basis,
        ),
        line(
            "Fargate",
            "memory",
            tasks * inputs.task_memory_gb * HOURS_PER_MONTH,
            p.fargate_gb_hour,
            Scope::Spate,
            format!("{tasks} task(s) × {} GB × 730 h", inputs.task_memory_gb),
        ),
        line(
            "Fargate",
            "ephemeral storage",
            tasks * extra_storage * HOURS_PER_MONTH,
            p.fargate_storage_gb_hour,
            Scope::Spate,
            format!("{tasks} task(s) × {extra_storage} GB above the 20 GB included × 730 h"),
        ),
    ]
}

/// SQS bills every 64 KiB of a payload as one request.
fn chunks(bytes: f64) -> f64 {
    (bytes / 65_536.0).ceil().max(1.0)
}

fn sqs(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let messages = inputs.events_per_month() / inputs.events_per_message;
    let message_bytes = inputs.events_per_message * inputs.body_bytes_per_event();
    let per_receive = measured::SQS_MESSAGES_PER_RECEIVE;
    let receives = messages / per_receive;
    let receive_requests = receives * chunks(per_receive * message_bytes);
    let tasks = tasks(inputs);
    let empty =
        (inputs.sqs_pollers * tasks * SECONDS_PER_MONTH / inputs.sqs_wait_secs - receives).max(0.0);
    let deletes = messages * measured::SQS_DELETE_BATCHES_PER_MESSAGE;
    let depth = tasks * SECONDS_PER_MONTH / measured::SQS_DEPTH_POLL_SECS;
    let million = 1e6;
    vec![
        line(
            "SQS",
            "ReceiveMessage",
            receive_requests / million,
            p.sqs_requests_million,
            Scope::Spate,
            format!(
                "{messages:.0} messages of {message_bytes:.0} B, {per_receive} a receive, each 64 KiB of a receive one request"
            ),
        ),
        line(
            "SQS",
            "ReceiveMessage (empty long polls)",
            empty / million,
            p.sqs_requests_million,
            Scope::Spate,
            format!(
                "{} poller(s) × {tasks} task(s), one {} s poll each when idle, less the busy receives",
                inputs.sqs_pollers, inputs.sqs_wait_secs
            ),
        ),
        line(
            "SQS",
            "DeleteMessageBatch",
            deletes / million,
            p.sqs_requests_million,
            Scope::Spate,
            format!(
                "{} per message (measured)",
                measured::SQS_DELETE_BATCHES_PER_MESSAGE
            ),
        ),
        line(
            "SQS",
            "GetQueueAttributes",
            depth / million,
            p.sqs_requests_million,
            Scope::Spate,
            format!(
                "queue depth every {} s per task",
                measured::SQS_DEPTH_POLL_SECS
            ),
        ),
        line(
            "SQS",
            "SendMessage (producer)",
            messages * chunks(message_bytes) / million,
            p.sqs_requests_million,
            Scope::Upstream,
            format!(
                "{} events a message, each 64 KiB one request",
                inputs.events_per_message
            ),
        ),
    ]
}

fn kinesis(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let records = inputs.events_per_month() / inputs.events_per_message;
    let record_bytes = inputs.events_per_message * inputs.body_bytes_per_event();
    let bytes_per_sec =
        inputs.events_per_month() * inputs.body_bytes_per_event() / SECONDS_PER_MONTH;
    let records_per_sec = records / SECONDS_PER_MONTH;
    // Write limits of a shard: 1 MB/s and 1,000 records/s.
    let shards = (bytes_per_sec / 1e6)
        .ceil()
        .max((records_per_sec / 1000.0).ceil())
        .max(1.0);
    let put_units = records * (record_bytes / 25_000.0).ceil().max(1.0);
    vec![
        line(
            "Kinesis",
            "shard-hours",
            shards * HOURS_PER_MONTH,
            p.kinesis_shard_hour,
            Scope::Spate,
            format!(
                "{shards} shard(s): {bytes_per_sec:.0} B/s and {records_per_sec:.1} records/s on average (1 MB/s, 1,000 records/s a shard)"
            ),
        ),
        line(
            "Kinesis",
            "PUT payload units (producer)",
            put_units / 1e6,
            p.kinesis_put_units_million,
            Scope::Upstream,
            format!("{records:.0} records of {record_bytes:.0} B, 25 KB a unit"),
        ),
    ]
}

fn lake(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let lake_bytes_per_event =
        inputs.event_bytes * measured::W1_LAKE_BYTES_PER_EVENT / measured::W1_EVENT_BYTES;
    let bytes_per_day = inputs.events_per_day * lake_bytes_per_event;
    // Each service's partition seals at least once an hour.
    let partition_bytes = bytes_per_day / 24.0 / inputs.services;
    let files_per_partition = (partition_bytes / (inputs.lake_file_mib * MIB))
        .ceil()
        .max(1.0);
    let file_bytes = partition_bytes / files_per_partition;
    let part = measured::S3_PART_MIB * MIB;
    // The upload (one PutObject, or a multipart upload's create, parts and
    // complete), plus the LIST of the partition that checks the dedup index
    // against the bucket before each seal.
    let requests_per_file = 1.0
        + if file_bytes <= measured::S3_MULTIPART_THRESHOLD_MIB * MIB {
            1.0
        } else {
            2.0 + (file_bytes / part).ceil()
        };
    let files = inputs.services * files_per_partition * HOURS_PER_MONTH;
    let glacier_after = inputs
        .lake_glacier_after_days
        .min(inputs.lake_expire_after_days);
    let glacier_days = inputs.lake_expire_after_days - glacier_after;
    let files_per_day = files / DAYS_PER_MONTH;
    // Glacier keeps 32 KB of index per object at its rate and 8 KB at Standard's.
    let standard_gb = (bytes_per_day * glacier_after + files_per_day * glacier_days * 8192.0) / GIB;
    let glacier_gb = (bytes_per_day + files_per_day * 32_768.0) * glacier_days / GIB;
    let transitions = if glacier_days > 0.0 { files } else { 0.0 };
    vec![
        line(
            "S3",
            "PUT and LIST requests (lake files)",
            files * requests_per_file / 1000.0,
            p.s3_put_thousand,
            Scope::Spate,
            format!(
                "{files:.0} files of {:.1} MiB ({} service partitions an hour, {} MiB roll), {requests_per_file} request(s) each",
                file_bytes / MIB,
                inputs.services,
                inputs.lake_file_mib
            ),
        ),
        line(
            "S3",
            "GET requests (queries)",
            inputs.s3_gets_per_day * DAYS_PER_MONTH / 1000.0,
            p.s3_get_thousand,
            Scope::Spate,
            format!("{} a day (--s3-gets-per-day)", inputs.s3_gets_per_day),
        ),
        line(
            "S3",
            "Standard storage",
            standard_gb,
            p.s3_standard_gb_month,
            Scope::Spate,
            format!(
                "{lake_bytes_per_event:.1} lake B/event (W1 Parquet, measured), {glacier_after} days"
            ),
        ),
        line(
            "S3",
            "Glacier Flexible Retrieval storage",
            glacier_gb,
            p.s3_glacier_gb_month,
            Scope::Spate,
            format!(
                "days {glacier_after} to {}, 32 KB index an object",
                inputs.lake_expire_after_days
            ),
        ),
        line(
            "S3",
            "lifecycle transitions to Glacier",
            transitions / 1000.0,
            p.s3_glacier_transition_thousand,
            Scope::Spate,
            "one per lake file".into(),
        ),
    ]
}

fn cloudwatch(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    if !inputs.emf {
        return Vec::new();
    }
    let tasks = tasks(inputs);
    let emissions = tasks * SECONDS_PER_MONTH / 60.0;
    let ingested_gb = emissions * measured::EMF_BYTES_PER_EMISSION / GIB;
    let stored_gb = ingested_gb / DAYS_PER_MONTH * inputs.log_retention_days;
    vec![
        line(
            "CloudWatch",
            "custom metrics (EMF default set)",
            measured::EMF_DEFAULT_CUSTOM_METRICS,
            p.cloudwatch_metric_month,
            Scope::Spate,
            "the default [metrics.emf] include list of an SQS + S3 lake run, per-actor series summed (measured); tasks share them unless a per-task dimension is added".into(),
        ),
        line(
            "CloudWatch",
            "custom metrics (EMF window counts)",
            measured::EMF_WINDOW_CUSTOM_METRICS,
            p.cloudwatch_metric_month,
            Scope::Spate,
            "WindowEvents and WindowTagEvents of W1's services ([metrics.emf] windows, on by default; measured); windows = false leaves them out".into(),
        ),
        line(
            "CloudWatch",
            "logs ingested (EMF lines)",
            ingested_gb,
            p.cloudwatch_logs_ingest_gb,
            Scope::Spate,
            format!(
                "{} B an emission (measured), one a minute per task",
                measured::EMF_BYTES_PER_EMISSION
            ),
        ),
        line(
            "CloudWatch",
            "logs stored (EMF lines)",
            stored_gb,
            p.cloudwatch_logs_store_gb_month,
            Scope::Spate,
            format!("{} days retention", inputs.log_retention_days),
        ),
    ]
}

/// The seed's design priced by the same table: per event one Lambda
/// invocation and one DynamoDB write (no queue, no lake, no metrics).
pub fn seed_lambda_bill(inputs: &CostInputs, prices: &Prices) -> Bill {
    let events = inputs.events_per_month();
    let item_bytes = inputs.event_bytes + measured::HOT_ITEM_OVERHEAD_BYTES;
    let wru_per_item = (item_bytes / 1024.0).ceil();
    let gb_seconds = events * inputs.lambda_memory_mb / 1024.0 * inputs.lambda_billed_ms / 1000.0;
    let items = vec![
        line(
            "Lambda",
            "requests",
            events / 1e6,
            prices.lambda_requests_million,
            Scope::Spate,
            "one invocation per event".into(),
        ),
        line(
            "Lambda",
            "duration",
            gb_seconds,
            prices.lambda_gb_second,
            Scope::Spate,
            format!(
                "{} MB × {} ms billed per invocation",
                inputs.lambda_memory_mb, inputs.lambda_billed_ms
            ),
        ),
        line(
            "DynamoDB",
            "write request units",
            events * wru_per_item / 1e6,
            prices.dynamodb_wru_million,
            Scope::Spate,
            format!("one write per event of ~{item_bytes:.0} B, {wru_per_item} WRU"),
        ),
    ];
    Bill::of(items, events)
}

/// The inputs as (name, value) rows, for printing beside the bill: the
/// command's, the price table's date and the measured figures.
pub fn input_rows(inputs: &CostInputs, architecture: Architecture) -> Vec<(String, Value)> {
    let mut rows = vec![(
        "architecture".to_string(),
        serde_json::to_value(architecture).unwrap_or_default(),
    )];
    if let Value::Object(fields) = serde_json::to_value(inputs).unwrap_or_default() {
        rows.extend(fields);
    }
    rows.push((
        "prices".to_string(),
        Value::String(format!(
            "{} list prices recorded {} (bin/src/cost/prices.rs)",
            prices::REGION,
            prices::PRICES_AS_OF
        )),
    ));
    rows.extend(measured::rows().into_iter().map(|(k, v)| (k, v.into())));
    rows
}

#[cfg(test)]
mod tests;
