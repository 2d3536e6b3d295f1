//! `loadgen send`: drives a workload into a target at a rate profile and reports what
//! happened.
//!
//! A scheduler walks the open-loop [`Schedule`]: at each batch's due time it generates the
//! batch (run marks included, `lg_sent_ms` = the batch's scheduled time on the wall clock) and
//! queues it. `concurrency` senders take queued batches and deliver them to the [`Target`].
//! Latency is measured from the *scheduled* time to the target's acceptance, so time a batch
//! spends waiting for a sender counts: a slow target shows up in the latency instead of
//! silently slowing the offered load (no coordinated omission).
//!
//! # Backpressure
//!
//! The queue holds at most `max_overdue` batches. When it is full at a batch's due time the
//! batch is not generated: its events count as `dropped_by_generator` and take no sequence
//! numbers, so `loadgen verify` does not report them lost. Memory stays bounded by
//! `(max_overdue + concurrency) × batch size`.
//!
//! # Retries
//!
//! - 429/503 (`Rejected`): counted in `rejected`, the same body is sent again after
//!   `Retry-After` (default 1 s, at most 60 s), up to [`MAX_REJECTIONS`] times per batch; after
//!   that the batch's events count as `failed`.
//! - Other failures (5xx, connection, write errors): counted in `errors`, retried up to
//!   [`MAX_ERROR_RETRIES`] times with exponential backoff from [`FIRST_BACKOFF`], then
//!   `failed`. A refusal of the body itself (4xx other than 429: bad request, unauthorized,
//!   too large) is not retried, since the same body gets the same answer.
//!
//! # Shutdown
//!
//! When the schedule ends no more batches are generated; the queued ones are delivered, with
//! their retries, and then the report is built. When the `stop` future completes (Ctrl-C),
//! at any point, scheduling ends too and retries stop: queued and in-flight batches get the
//! attempt they are on, and a batch waiting for or needing another attempt counts as
//! `failed`. The report says `interrupted`.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use crate::{BatchGenerator, RunId, Workload};

mod aws_target;
mod packing;
mod report;
mod schedule;
mod target;

pub use aws_target::{
    AwsDestination, ENTRY_ATTEMPTS, KINESIS_MAX_RECORD_BYTES, KINESIS_MAX_RECORDS,
    KINESIS_MAX_REQUEST_BYTES, KinesisTarget, SQS_MAX_BATCH_BYTES, SQS_MAX_BATCH_MESSAGES,
    SqsTarget, open_aws_target,
};
pub use packing::{
    BodyCompression, MessageFormat, Packing, kpl_records, pack_messages, request_groups,
};
pub use report::{LatencySummary, Report, Second};
pub use schedule::{
    DEFAULT_SINE_AMPLITUDE, DEFAULT_SINE_PERIOD, PlannedBatch, Profile, SPIKE_PHASES,
    SPIKE_SECONDS, Schedule, ScheduleError,
};
pub use target::{
    DEFAULT_RETRY_AFTER, DEFAULT_TARGET, FileTarget, HttpOptions, HttpTarget, INGEST_PATH,
    MAX_RETRY_AFTER, SendError, SendFuture, StdoutTarget, Target, TargetSpecError, open_target,
    parse_retry_after,
};

use report::{Tally, achieved_rate, per_second};
pub(crate) use report::{new_histogram, record};

/// Saturation answers tolerated per batch before its events count as failed.
pub const MAX_REJECTIONS: u32 = 100;

/// Retries of a batch after errors other than saturation.
pub const MAX_ERROR_RETRIES: u32 = 3;

/// Wait before the first retry after an error; doubled for each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Default number of concurrent senders.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Default events per batch.
pub const DEFAULT_BATCH_EVENTS: u64 = 500;

/// Default event lines per SQS message or Kinesis record.
pub const DEFAULT_EVENTS_PER_MESSAGE: usize = 100;

/// Default number of overdue batches queued before the generator drops batches.
pub const DEFAULT_MAX_OVERDUE: usize = 64;

/// What to send, how fast, and how.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// The workload to generate.
    pub workload: Workload,
    /// Its seed.
    pub seed: u64,
    /// When batches are due.
    pub schedule: Schedule,
    /// Stamped on every event as `lg_run`.
    pub run_id: RunId,
    /// Concurrent senders (at least 1).
    pub concurrency: usize,
    /// Overdue batches queued before further ones are dropped (at least 1).
    pub max_overdue: usize,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

/// A batch waiting for a sender.
struct DueBatch {
    due: Instant,
    /// Sequence number of its first event.
    first_seq: u64,
    events: u64,
    body: Bytes,
}

/// Wall-clock Unix milliseconds (what `lg_sent_ms` and the lake's `ingest_ts` use).
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether stderr is a terminal, i.e. whether a live progress line makes sense.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Runs `plan` against `target` until the schedule ends or `stop` completes, and reports.
pub async fn run(
    plan: SendPlan,
    target: Arc<dyn Target>,
    stop: impl Future<Output = ()>,
) -> Report {
    let start = Instant::now();
    let start_wall_ms = wall_clock_ms();
    let tally = Arc::new(Tally::default());
    let (tx, rx) = mpsc::channel::<DueBatch>(plan.max_overdue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let (stopping, stop_seen) = watch::channel(false);
    let mut senders = JoinSet::new();
    for _ in 0..plan.concurrency.max(1) {
        let (rx, target, tally) = (rx.clone(), target.clone(), tally.clone());
        let mut stop_seen = stop_seen.clone();
        senders.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                tally.queued.fetch_sub(1, Ordering::Relaxed);
                deliver(target.as_ref(), batch, &tally, start, &mut stop_seen).await;
            }
        });
    }
    let progress = plan
        .progress
        .then(|| tokio::spawn(show_progress(tally.clone(), start)));

    let mut generator = BatchGenerator::new(plan.workload, plan.seed);
    let mut next_seq = 0u64;
    let mut interrupted = false;
    tokio::pin!(stop);
    for planned in plan.schedule.batches() {
        let due = start + planned.due;
        tokio::select! {
            biased;
            () = &mut stop => {
                interrupted = true;
                stopping.send_replace(true);
                break;
            }
            () = sleep_until(due) => {}
        }
        let Ok(permit) = tx.try_reserve() else {
            tally
                .dropped_by_generator
                .fetch_add(planned.events, Ordering::Relaxed);
            continue;
        };
        let sent_ms = start_wall_ms + u64::try_from(planned.due.as_millis()).unwrap_or(0);
        let mut body = Vec::with_capacity(planned.events as usize * 448);
        if let Err(error) =
            generator.next_batch(planned.events, &plan.run_id, next_seq, sent_ms, &mut body)
        {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            tally.failed.fetch_add(planned.events, Ordering::Relaxed);
            tally.note_error(&format_args!("cannot generate a batch: {error}"));
            continue;
        }
        next_seq += planned.events;
        tally.queued.fetch_add(1, Ordering::Relaxed);
        permit.send(DueBatch {
            due,
            first_seq: next_seq - planned.events,
            events: planned.events,
            body: Bytes::from(body),
        });
    }
    drop(tx);
    loop {
        tokio::select! {
            biased;
            () = &mut stop, if !interrupted => {
                interrupted = true;
                stopping.send_replace(true);
            }
            joined = senders.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                Some(Err(error)) => tally.note_error(&format_args!("a sender stopped: {error}")),
            },
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }

    let schedule = &plan.schedule;
    let duration_s = schedule.duration().as_secs_f64();
    let acknowledged = Tally::get(&tally.acknowledged);
    Report {
        run_id: plan.run_id.to_string(),
        workload: plan.workload.short_name().to_owned(),
        profile: schedule.profile().name().to_owned(),
        target: target.describe(),
        rate: schedule.rate(),
        duration_s,
        batch_events: schedule.batch_events(),
        concurrency: plan.concurrency.max(1),
        scheduled: schedule.total_events(),
        sent: Tally::get(&tally.sent),
        acknowledged,
        rejected: Tally::get(&tally.rejected),
        retries: Tally::get(&tally.retries),
        errors: Tally::get(&tally.errors),
        failed: Tally::get(&tally.failed),
        dropped_by_generator: Tally::get(&tally.dropped_by_generator),
        interrupted,
        elapsed_s,
        achieved_rate_per_s: achieved_rate(acknowledged, duration_s, elapsed_s),
        latency: tally.latency(),
        acknowledged_seqs: tally.acknowledged_seqs(),
        per_second: per_second(
            &schedule.offered_per_second(),
            &tally.acknowledged_per_second(),
        ),
        last_error: tally.last_error(),
    }
}

/// Delivers one batch with the retry policy of the module docs.
async fn deliver(
    target: &dyn Target,
    batch: DueBatch,
    tally: &Tally,
    start: Instant,
    stop_seen: &mut watch::Receiver<bool>,
) {
    let fail = |error: &dyn std::fmt::Display| {
        tally.failed.fetch_add(batch.events, Ordering::Relaxed);
        tally.note_error(error);
    };
    let body = match target.prepare(batch.body) {
        Ok(body) => body,
        Err(error) => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            fail(&error);
            return;
        }
    };
    tally.sent.fetch_add(batch.events, Ordering::Relaxed);
    let (mut rejections, mut error_retries) = (0u32, 0u32);
    loop {
        let wait = match target.send(&body).await {
            Ok(()) => {
                let now = Instant::now();
                tally.acknowledge(batch.first_seq, batch.events, now - start, now - batch.due);
                return;
            }
            Err(SendError::Rejected { retry_after, .. }) => {
                tally.rejected.fetch_add(1, Ordering::Relaxed);
                rejections += 1;
                if rejections > MAX_REJECTIONS {
                    fail(&format_args!(
                        "batch still rejected after {MAX_REJECTIONS} retries"
                    ));
                    return;
                }
                retry_after
            }
            Err(error) => {
                tally.errors.fetch_add(1, Ordering::Relaxed);
                if !error.is_retryable() || error_retries >= MAX_ERROR_RETRIES {
                    fail(&error);
                    return;
                }
                tally.note_error(&error);
                error_retries += 1;
                FIRST_BACKOFF * 2u32.pow(error_retries - 1)
            }
        };
        let interrupted = || fail(&"interrupted before the batch was accepted");
        if *stop_seen.borrow() {
            interrupted();
            return;
        }
        tokio::select! {
            () = sleep(wait) => {}
            _ = stop_seen.wait_for(|stop| *stop) => {
                interrupted();
                return;
            }
        }
        tally.retries.fetch_add(1, Ordering::Relaxed);
    }
}

/// Prints one status line on stderr every second, overwriting the previous one.
async fn show_progress(tally: Arc<Tally>, start: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut previous = 0;
    loop {
        tick.tick().await;
        let acknowledged = Tally::get(&tally.acknowledged);
        let line = format!(
            "\r{:>5.0} s  acknowledged {acknowledged} ({} ev/s)  rejected {}  errors {}  \
             retries {}  failed {}  dropped {}  queued {}   ",
            start.elapsed().as_secs_f64(),
            acknowledged - previous,
            Tally::get(&tally.rejected),
            Tally::get(&tally.errors),
            Tally::get(&tally.retries),
            Tally::get(&tally.failed),
            Tally::get(&tally.dropped_by_generator),
            Tally::get(&tally.queued),
        );
        previous = acknowledged;
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line.as_bytes());
        let _ = stderr.flush();
    }
}

#[cfg(test)]
mod tests;
