//! `spate cost`: what running Spate on AWS costs a month, by line item, from
//! the list prices of [`prices`] and the figures measured in this repository
//! ([`measured`]). Pure functions of [`CostInputs`]; `docs/cost.md` explains
//! the model.
//!
//! A month is 730 hours (AWS's convention); storage is at its steady state
//! (the lifecycle of `deploy/aws/spate.yaml` in full swing); rates are the
//! daily average (no peak headroom beyond the target CPU utilisation).

pub mod measured;
pub mod prices;

use serde::Serialize;
use serde_json::Value;

use crate::output::Format;

use self::prices::{Price, Prices};

/// Hours in a billing month.
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
/// Compressed bytes at which the hot writer splits a block.
const HOT_BLOCK_BYTES: f64 = 128.0 * 1024.0;

/// Where events arrive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An SQS standard queue.
    Sqs,
    /// A Kinesis data stream (provisioned).
    Kinesis,
}

/// How the DynamoDB hot table is billed (`HotTableCapacity` of the stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HotCapacity {
    /// Pay per request (`PAY_PER_REQUEST`): nothing when idle, the dearer
    /// unit when busy.
    OnDemand,
    /// Provisioned write and read capacity, auto-scaled on utilisation:
    /// capacity-hours whether used or not, about a third of the on-demand
    /// price per write once the table is busy.
    Provisioned,
}

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

/// Everything the bill depends on; each one is printed with the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostInputs {
    /// Events a day (the daily average).
    pub events_per_day: f64,
    /// Bytes of one event as it arrives.
    pub event_bytes: f64,
    /// Share of events that go hot (WARNING and above by default).
    pub hot_share: f64,
    /// SQS or Kinesis.
    pub source: Source,
    /// Region of the price table.
    pub region: String,
    /// Events packed in one SQS message or Kinesis record by the producer.
    pub events_per_message: f64,
    /// Services logging (each has its own lake partition every hour).
    pub services: f64,
    /// Fewest running tasks (`MinTasks` of the stack).
    pub min_tasks: f64,
    /// vCPU of one task (`TaskCpu` / 1024).
    pub task_vcpu: f64,
    /// Memory of one task, GB (`TaskMemory` / 1024).
    pub task_memory_gb: f64,
    /// Ephemeral storage of one task, GB (`EphemeralStorageGiB`; 20 included).
    pub task_storage_gb: f64,
    /// Average CPU utilisation a task is sized for (headroom for spikes).
    pub target_cpu_utilisation: f64,
    /// SQS pollers of a task (`[[sources.sqs]] pollers`).
    pub sqs_pollers: f64,
    /// Long-poll wait of an empty receive, seconds (`wait_time`).
    pub sqs_wait_secs: f64,
    /// Hours a hot event stays in DynamoDB (`[hot_dynamodb] ttl_hours`).
    pub hot_ttl_hours: f64,
    /// On-demand or provisioned hot table (`HotTableCapacity`).
    pub hot_capacity: HotCapacity,
    /// Write utilisation the provisioned table's scaling policy keeps
    /// (`HotTableTargetUtilisation` / 100).
    pub hot_write_utilisation: f64,
    /// Fewest write capacity units of a provisioned table
    /// (`HotTableMinWriteCapacity`).
    pub hot_min_write_capacity: f64,
    /// Read capacity units of a provisioned table (its scaling minimum,
    /// `HotTableMinReadCapacity`; reads are `spate hot`, the console and
    /// alert state, a few a second).
    pub hot_min_read_capacity: f64,
    /// Days before lake objects move to Glacier (`LakeGlacierAfterDays`).
    pub lake_glacier_after_days: f64,
    /// Days before lake objects are deleted (`LakeExpireAfterDays`).
    pub lake_expire_after_days: f64,
    /// Lake file size at which a partition rolls, MiB (`[lake] file_size`).
    pub lake_file_mib: f64,
    /// S3 GET requests a day by queries (`spate query`, Athena).
    pub s3_gets_per_day: f64,
    /// EMF on (`[metrics.emf] enabled`).
    pub emf: bool,
    /// Days the task's log group keeps EMF lines (`LogRetentionDays`).
    pub log_retention_days: f64,
    /// Lambda memory of the seed's function, MB.
    pub lambda_memory_mb: f64,
    /// Billed milliseconds of one Lambda invocation.
    pub lambda_billed_ms: f64,
}

impl CostInputs {
    /// The defaults of `deploy/aws/spate.yaml` and of W1 for `events_per_day`.
    pub fn new(events_per_day: f64) -> CostInputs {
        CostInputs {
            events_per_day,
            event_bytes: measured::W1_EVENT_BYTES,
            hot_share: measured::W1_HOT_SHARE,
            source: Source::Sqs,
            region: prices::REGION.to_string(),
            events_per_message: 100.0,
            services: 30.0,
            min_tasks: 1.0,
            task_vcpu: 1.0,
            task_memory_gb: 2.0,
            task_storage_gb: 30.0,
            target_cpu_utilisation: 0.5,
            sqs_pollers: 4.0,
            sqs_wait_secs: 20.0,
            hot_ttl_hours: 72.0,
            hot_capacity: HotCapacity::OnDemand,
            hot_write_utilisation: 0.7,
            hot_min_write_capacity: 25.0,
            hot_min_read_capacity: 5.0,
            lake_glacier_after_days: 30.0,
            lake_expire_after_days: 365.0,
            lake_file_mib: 256.0,
            s3_gets_per_day: 0.0,
            emf: true,
            log_retention_days: 30.0,
            lambda_memory_mb: 128.0,
            lambda_billed_ms: 1.0,
        }
    }

    /// Checks what would make the arithmetic meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--events-per-day", self.events_per_day),
            ("--event-bytes", self.event_bytes),
            ("--events-per-message", self.events_per_message),
            ("--services", self.services),
            ("--min-tasks", self.min_tasks),
        ];
        for (flag, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("{flag} must be above 0"));
            }
        }
        if !(0.0..=1.0).contains(&self.hot_share) {
            return Err("--hot-share must be between 0 and 1".into());
        }

        Ok(())
    }

    fn events_per_month(&self) -> f64 {
        self.events_per_day * DAYS_PER_MONTH
    }
}

/// Checks a task size the way Fargate does: `cpu` one of the stack's
/// `TaskCpu` values, `memory_mib` within that size's range, in whole GB
/// (`check_task_size(1024, 2048)` is fine, `check_task_size(2048, 2048)` is
/// not).
pub fn check_task_size(cpu: u32, memory_mib: u32) -> Result<(), String> {
    let (low, high) = match cpu {
        512 => (1024, 4096),
        1024 => (2048, 8192),
        2048 => (4096, 16384),
        4096 => (8192, 30720),
        other => {
            return Err(format!(
                "--task-cpu {other} is not a Fargate size: expected 512, 1024, 2048 or 4096"
            ));
        }
    };
    if !(low..=high).contains(&memory_mib) || !memory_mib.is_multiple_of(1024) {
        return Err(format!(
            "--task-memory {memory_mib} does not go with --task-cpu {cpu}: expected {low} to {high} MiB in steps of 1024"
        ));
    }
    Ok(())
}

/// Whose bill a line is: Spate's own, or the producer's (upstream ingestion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Spate's consumption: compute, reads, hot and cold storage, metrics.
    Spate,
    /// Putting the events into the queue or stream (paid by the producer).
    Upstream,
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineItem {
    /// The service.
    pub service: &'static str,
    /// What is billed.
    pub item: &'static str,
    /// How many units a month.
    pub quantity: f64,
    /// The unit (the price's).
    pub unit: &'static str,
    /// US dollars per unit.
    pub unit_usd: f64,
    /// `quantity × unit_usd`.
    pub usd_per_month: f64,
    /// Spate's or upstream.
    pub scope: Scope,
    /// How the quantity follows from the inputs.
    pub basis: String,
}

fn line(
    service: &'static str,
    item: &'static str,
    quantity: f64,
    price: Price,
    scope: Scope,
    basis: String,
) -> LineItem {
    // Prices per thousand or million units: the quantity is in those units.
    LineItem {
        service,
        item,
        quantity,
        unit: price.unit,
        unit_usd: price.usd,
        usd_per_month: quantity * price.usd,
        scope,
        basis,
    }
}

/// The bill: line items and totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bill {
    /// The lines.
    pub items: Vec<LineItem>,
    /// Sum of every line.
    pub total_usd_per_month: f64,
    /// Sum of Spate's lines (upstream ingestion left out).
    pub spate_usd_per_month: f64,
    /// Spate's lines per billion events.
    pub spate_usd_per_billion_events: f64,
    /// What would make the same load cheaper (the hot table's other
    /// billing mode when it saves more than 0.50 USD a month).
    pub notes: Vec<String>,
}

impl Bill {
    fn of(items: Vec<LineItem>, events_per_month: f64) -> Bill {
        let total = items.iter().map(|i| i.usd_per_month).sum();
        let spate: f64 = items
            .iter()
            .filter(|i| i.scope == Scope::Spate)
            .map(|i| i.usd_per_month)
            .sum();
        Bill {
            items,
            total_usd_per_month: total,
            spate_usd_per_month: spate,
            spate_usd_per_billion_events: spate / events_per_month * 1e9,
            notes: Vec::new(),
        }
    }
}

/// Tasks running: enough vCPU for the measured CPU-seconds at the target
/// utilisation, never fewer than `min_tasks`.
pub fn tasks(inputs: &CostInputs) -> f64 {
    let cpu_seconds = inputs.events_per_month() / 1e6 * measured::CPU_SECONDS_PER_MILLION_W1;
    let average_vcpu = cpu_seconds / SECONDS_PER_MONTH;
    let needed = (average_vcpu / (inputs.task_vcpu * inputs.target_cpu_utilisation)).ceil();
    needed.max(inputs.min_tasks)
}

/// The monthly bill of Spate on Fargate for `inputs`, with a note when the
/// hot table's other billing mode would be cheaper.
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
    bill
}

fn spate_lines(inputs: &CostInputs, prices: &Prices) -> Vec<LineItem> {
    let mut items = compute(inputs, prices);
    items.extend(match inputs.source {
        Source::Sqs => sqs(inputs, prices),
        Source::Kinesis => kinesis(inputs, prices),
    });
    items.extend(hot(inputs, prices));
    items.extend(lake(inputs, prices));
    items.extend(cloudwatch(inputs, prices));
    items
}

fn compute(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let tasks = tasks(inputs);
    let basis = format!(
        "{tasks} task(s) × 730 h: {} CPU-s per million W1 events (measured) at {} % of {} vCPU",
        measured::CPU_SECONDS_PER_MILLION_W1,
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
    let message_bytes = inputs.events_per_message * inputs.event_bytes;
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
    let record_bytes = inputs.events_per_message * inputs.event_bytes;
    let bytes_per_sec = inputs.events_per_month() * inputs.event_bytes / SECONDS_PER_MONTH;
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

/// Item bytes per hot event when a write holds `per_block` hot events of a
/// service: the two measured W1 figures, interpolated on the logarithm of
/// `per_block` (zstd learns a block's repeats once a block), the nearer one
/// outside them; scaled by the event size.
pub fn hot_bytes_per_event(per_block: f64, event_bytes: f64) -> f64 {
    let (few, many) = (
        measured::W1_HOT_EVENTS_PER_SMALL_BLOCK,
        measured::W1_HOT_EVENTS_PER_FULL_BLOCK,
    );
    let t = ((per_block.max(1.0) / few).ln() / (many / few).ln()).clamp(0.0, 1.0);
    let w1 = measured::W1_HOT_ITEM_BYTES_SMALL_BLOCKS
        + t * (measured::W1_HOT_ITEM_BYTES_FULL_BLOCKS - measured::W1_HOT_ITEM_BYTES_SMALL_BLOCKS);
    w1 * event_bytes / measured::W1_EVENT_BYTES
}

/// The DynamoDB hot tier, packed: each task's writer writes every
/// [`measured::HOT_COMMIT_SECS`], one block item per service and minute of
/// event time in the write (a write of 30 s touches 1.5 minutes on average;
/// more when blocks pass 128 KB), each rounded up to whole KB; the bytes per
/// hot event follow from the hot events a service in a write
/// ([`hot_bytes_per_event`]). Plus the service registry: one entry per
/// service and task an hour.
fn hot(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let hot_events = inputs.events_per_month() * inputs.hot_share;
    let tasks = tasks(inputs);
    let commits = tasks * SECONDS_PER_MONTH / measured::HOT_COMMIT_SECS;
    let per_block = hot_events / (commits * inputs.services);
    let bytes_per_event = hot_bytes_per_event(per_block, inputs.event_bytes);
    let spans = 1.0 + measured::HOT_COMMIT_SECS.min(60.0) / 60.0;
    // Blocks above 128 KB are split.
    let blocks = (commits * inputs.services * spans)
        .max(hot_events * bytes_per_event / HOT_BLOCK_BYTES)
        .min(hot_events);
    let block_bytes = if blocks > 0.0 {
        hot_events * bytes_per_event / blocks
    } else {
        0.0
    };
    // A block of b bytes costs ceil(b / 1 KB): b / 1 KB + ½ on average, 1 at
    // least.
    let wru_per_block = (block_bytes / 1024.0 + 0.5).max(1.0);
    let registry = (tasks * inputs.services * HOURS_PER_MONTH).min(blocks);
    let writes = blocks * wru_per_block + registry;
    let stored_gb = inputs.events_per_day * inputs.hot_share * bytes_per_event / GIB
        * (inputs.hot_ttl_hours / 24.0);
    let per_event = if hot_events > 0.0 {
        writes / hot_events
    } else {
        0.0
    };
    let packing = format!(
        "{} of events hot, packed: {per_block:.0} hot events a service in each {}s write, {bytes_per_event:.1} B each (measured W1 figures), {blocks:.0} blocks (per service and minute) of ~{block_bytes:.0} B, {wru_per_block:.2} WRU each, and {registry:.0} registry entries: {per_event:.4} WRU per hot event",
        inputs.hot_share,
        measured::HOT_COMMIT_SECS
    );
    let mut lines = match inputs.hot_capacity {
        HotCapacity::OnDemand => vec![line(
            "DynamoDB",
            "write request units (hot events)",
            writes / 1e6,
            p.dynamodb_wru_million,
            Scope::Spate,
            packing,
        )],
        HotCapacity::Provisioned => {
            let (wcu, rcu) = provisioned_capacity(inputs, writes);
            vec![
                line(
                    "DynamoDB",
                    "write capacity (hot events, provisioned)",
                    wcu * HOURS_PER_MONTH,
                    p.dynamodb_wcu_hour,
                    Scope::Spate,
                    format!(
                        "{wcu:.1} WCU × 730 h: {:.1} WRU/s on average at {} % utilisation, {} WCU at least; {packing}",
                        writes / SECONDS_PER_MONTH,
                        inputs.hot_write_utilisation * 100.0,
                        inputs.hot_min_write_capacity
                    ),
                ),
                line(
                    "DynamoDB",
                    "read capacity (provisioned)",
                    rcu * HOURS_PER_MONTH,
                    p.dynamodb_rcu_hour,
                    Scope::Spate,
                    format!("{rcu} RCU × 730 h (the scaling minimum)"),
                ),
            ]
        }
    };
    lines.push(line(
        "DynamoDB",
        "storage (hot events)",
        stored_gb,
        p.dynamodb_gb_month,
        Scope::Spate,
        format!(
            "{} h of hot blocks (TTL), {bytes_per_event:.1} B per hot event",
            inputs.hot_ttl_hours
        ),
    ));
    lines
}

/// Write and read capacity units a provisioned hot table runs at: the
/// average write rate over the scaling policy's target utilisation, never
/// below the scaling minimums. A write of 30 s lands at once; DynamoDB's
/// burst capacity (up to 300 s of unused capacity) and the writer's
/// backoff on throttling absorb it.
pub fn provisioned_capacity(inputs: &CostInputs, writes_per_month: f64) -> (f64, f64) {
    let wcu = (writes_per_month / SECONDS_PER_MONTH / inputs.hot_write_utilisation)
        .max(inputs.hot_min_write_capacity);
    (wcu, inputs.hot_min_read_capacity)
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
    let requests_per_file = if file_bytes <= measured::S3_MULTIPART_THRESHOLD_MIB * MIB {
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
            "PUT requests (lake files)",
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

/// Columns of a line item in `ndjson` and `csv`.
const COLUMNS: [&str; 8] = [
    "service",
    "item",
    "quantity",
    "unit",
    "unit_usd",
    "usd_per_month",
    "scope",
    "basis",
];

/// Prints `bill` in `format`: `table` the lines, totals and inputs as text;
/// `json` one object (`items`, the totals, `inputs`); `ndjson` and `csv` a
/// row per line item, then a `total` row.
pub fn write(
    out: &mut dyn std::io::Write,
    format: Format,
    bill: &Bill,
    inputs: &[(String, Value)],
) -> std::io::Result<()> {
    match format {
        Format::Table => out.write_all(render(bill, inputs).as_bytes()),
        Format::Json => {
            let report = serde_json::json!({
                "items": bill.items,
                "total_usd_per_month": bill.total_usd_per_month,
                "spate_usd_per_month": bill.spate_usd_per_month,
                "spate_usd_per_billion_events": bill.spate_usd_per_billion_events,
                "notes": bill.notes,
                "inputs": inputs.iter().cloned().collect::<serde_json::Map<_, _>>(),
            });
            crate::output::write_report(out, format, &report, String::new)
        }
        Format::Ndjson | Format::Csv => {
            let mut rows: Vec<Value> = bill
                .items
                .iter()
                .map(|i| serde_json::to_value(i).unwrap_or_default())
                .collect();
            rows.push(serde_json::json!({
                "service": "total",
                "usd_per_month": bill.total_usd_per_month,
                "basis": format!("Spate's lines: {:.2} USD a month", bill.spate_usd_per_month),
            }));
            crate::output::write_objects(out, format, &COLUMNS, &rows)
        }
    }
}

/// The `table` text: the lines, the totals, then every input.
pub fn render(bill: &Bill, inputs: &[(String, Value)]) -> String {
    let columns = [
        "service",
        "item",
        "quantity",
        "unit",
        "USD/unit",
        "USD/month",
        "scope",
    ];
    let rows: Vec<Vec<String>> = bill
        .items
        .iter()
        .map(|i| {
            vec![
                i.service.to_string(),
                i.item.to_string(),
                format!("{:.4}", i.quantity),
                i.unit.to_string(),
                i.unit_usd.to_string(),
                format!("{:.2}", i.usd_per_month),
                format!("{:?}", i.scope).to_lowercase(),
            ]
        })
        .collect();
    let mut out = crate::output::text_table(&columns, &rows);
    out.push_str(&format!(
        "\ntotal {:.2} USD/month; Spate's lines {:.2} USD/month ({:.2} USD per billion events)\n",
        bill.total_usd_per_month, bill.spate_usd_per_month, bill.spate_usd_per_billion_events
    ));
    for note in &bill.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str("\ninputs:\n");
    for (name, value) in inputs {
        match value {
            Value::String(text) => out.push_str(&format!("  {name} = {text}\n")),
            other => out.push_str(&format!("  {name} = {other}\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests;
