//! The cost model's inputs: what the bill depends on (the command's flags
//! and the stack's defaults), the units of a billing month, and the task
//! count that follows from the measured CPU-seconds.

use serde::Serialize;

use super::{measured, prices};

/// Hours in a billing month.
pub const HOURS_PER_MONTH: f64 = 730.0;
pub const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
pub const DAYS_PER_MONTH: f64 = HOURS_PER_MONTH / 24.0;
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
pub const MIB: f64 = 1024.0 * 1024.0;
/// Compressed bytes at which the DynamoDB hot writer splits a block.
pub const HOT_BLOCK_BYTES: f64 = spate_operators::sinks::dynamo_hot::block::MAX_BLOCK_BYTES as f64;

/// Where events arrive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An SQS standard queue.
    Sqs,
    /// A Kinesis data stream (provisioned).
    Kinesis,
}

/// How the producer compresses message bodies (`loadgen send --compress`);
/// Spate's SQS and Kinesis sources unpack either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain NDJSON.
    None,
    /// gzip (base64 on SQS).
    Gzip,
    /// zstd (base64 on SQS).
    Zstd,
}

/// How the DynamoDB hot table is billed (`HotTableCapacity` of the stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HotCapacity {
    /// Pay per request (`PAY_PER_REQUEST`): nothing when idle, the dearer
    /// unit when busy.
    OnDemand,
    /// Provisioned write and read capacity, auto-scaled on utilisation:
    /// capacity-hours whether used or not, less than half the on-demand
    /// price per write once the table is busy.
    Provisioned,
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
    /// Compression of the message bodies by the producer.
    pub compression: Compression,
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
            compression: Compression::None,
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

    pub fn events_per_month(&self) -> f64 {
        self.events_per_day * DAYS_PER_MONTH
    }

    /// Bytes an event adds to a message body: the measured W1 figure of the
    /// compression at these events a message (log-interpolated), scaled by
    /// the event size; without base64 on Kinesis.
    pub fn body_bytes_per_event(&self) -> f64 {
        let column = |row: &(f64, f64, f64, f64)| match self.compression {
            Compression::None => row.1,
            Compression::Gzip => row.2,
            Compression::Zstd => row.3,
        };
        let table: Vec<(f64, f64)> = measured::W1_BODY_BYTES_PER_EVENT
            .iter()
            .map(|row| (row.0, column(row)))
            .collect();
        let w1 = measured::log_interpolate(&table, self.events_per_message);
        let base64 = match (self.compression, self.source) {
            (Compression::None, _) | (_, Source::Sqs) => 1.0,
            (_, Source::Kinesis) => 0.75,
        };
        w1 * base64 * self.event_bytes / measured::W1_EVENT_BYTES
    }

    /// CPU-seconds per million events: the measured `spate run` figure,
    /// plus the unpacking of compressed messages.
    pub fn cpu_seconds_per_million(&self) -> f64 {
        let (gzip, zstd) = measured::UNPACK_CPU_SECONDS_PER_MILLION_W1;
        measured::CPU_SECONDS_PER_MILLION_W1
            + match self.compression {
                Compression::None => 0.0,
                Compression::Gzip => gzip,
                Compression::Zstd => zstd,
            }
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

/// Tasks running: enough vCPU for the measured CPU-seconds at the target
/// utilisation, never fewer than `min_tasks`.
pub fn tasks(inputs: &CostInputs) -> f64 {
    let cpu_seconds = inputs.events_per_month() / 1e6 * inputs.cpu_seconds_per_million();
    let average_vcpu = cpu_seconds / SECONDS_PER_MONTH;
    let needed = (average_vcpu / (inputs.task_vcpu * inputs.target_cpu_utilisation)).ceil();
    needed.max(inputs.min_tasks)
}
