//! The DynamoDB hot tier's lines: packed blocks priced on demand (write
//! request units) or provisioned (capacity-hours), and their storage.

use super::bill::{LineItem, Scope, line};
use super::inputs::{
    CostInputs, GIB, HOT_BLOCK_BYTES, HOURS_PER_MONTH, HotCapacity, SECONDS_PER_MONTH, Source,
    tasks,
};
use super::measured;
use super::prices::Prices;

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
pub(super) fn lines(inputs: &CostInputs, p: &Prices) -> Vec<LineItem> {
    let hot_events = inputs.events_per_month() * inputs.hot_share;
    let tasks = tasks(inputs);
    let commits = tasks * SECONDS_PER_MONTH / measured::HOT_COMMIT_SECS;
    let per_block = hot_events / (commits * inputs.services);
    // The SQS source's event ids carry the message id (measured by events a
    // message); Kinesis's carry the record's sequence number, not measured:
    // priced as position ids.
    let message_ids = match inputs.source {
        Source::Sqs => measured::log_interpolate(
            &measured::W1_HOT_MESSAGE_ID_BYTES,
            inputs.events_per_message,
        ),
        Source::Kinesis => 0.0,
    };
    let bytes_per_event = hot_bytes_per_event(per_block, inputs.event_bytes) + message_ids;
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
        "{} of events hot, packed: {per_block:.0} hot events a service in each {}s write, {bytes_per_event:.1} B each (measured W1 figures, {message_ids:.1} B of it the SQS message id), {blocks:.0} blocks (per service and minute) of ~{block_bytes:.0} B, {wru_per_block:.2} WRU each, and {registry:.0} registry entries: {per_event:.4} WRU per hot event",
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
